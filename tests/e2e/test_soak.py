"""The soak's short version in make test (issue 13, item 4): ``bench/soak.py`` with 500 streams
for 60 s, plus a 5 s warm-up and connection churn, through real frps and frpc processes.

Asserted: no byte lost or corrupted (every stream's echo compared with its pattern and by
SHA-256), no stream or churn connection failed, and frps's and frpc's fds back to their baseline
once the load is gone. Not asserted: latency, rates or RSS (timing figures belong in bench/, and
the 10-minute run with 10,000 streams is ``make soak``, see README "Reliability / Soak").
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(240)

SOAK = Path(__file__).resolve().parents[2] / "bench" / "soak.py"


def test_soak_500_streams_60s(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    proc = subprocess.run(
        [sys.executable, str(SOAK), "--conns", "500", "--duration", "60", "--warmup", "5", "--bucket", "10",
         "--churn-workers", "4", "--drain-timeout", "30", "--settle-timeout", "30", "--json", str(out)],
        capture_output=True, text=True, timeout=230, check=False,
    )
    assert out.exists(), proc.stdout + proc.stderr
    r = json.loads(out.read_text())
    run = r["run"]
    assert run["streams"] == 500, proc.stdout
    assert run["sent"] > 0 and run["received"] == run["sent"], proc.stdout
    assert run["lost"] == 0 and run["sha_mismatch"] == 0 and r["corrupt_bytes"] == 0, proc.stdout
    assert r["warmup"]["lost"] == 0 and r["warmup"]["sha_mismatch"] == 0, proc.stdout
    assert r["errors"] == {}, proc.stdout
    assert sum(b["churn_per_s"] for b in r["buckets"]) > 0, proc.stdout  # churn ran
    assert r["fds_back"], proc.stdout
    assert proc.returncode == 0, proc.stdout + proc.stderr
