"""Where frp's example configs (``frp-conf-examples``) are: beside the checkout, else /work/shared."""

from __future__ import annotations

from pathlib import Path


def _find() -> Path:
    here = Path(__file__).resolve()
    for base in here.parents:
        cand = base / "shared" / "frp-conf-examples"
        if cand.is_dir():
            return cand
    return Path("/work/shared/frp-conf-examples")


EXAMPLES = _find()
