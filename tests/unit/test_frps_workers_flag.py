"""``frps --workers N``: 1 takes effect (one process), anything else is refused with a clear
error instead of being silently served by one process."""

from __future__ import annotations

import pytest

from aiofrp.cli import frps as frps_cli


def test_workers_default_is_one() -> None:
    assert frps_cli.build_parser().parse_args([]).workers == 1


@pytest.mark.parametrize("argv", [["--workers", "1"], ["--workers=1"]])
def test_workers_one_accepted(argv: list[str]) -> None:
    assert frps_cli.build_parser().parse_args(argv).workers == 1


@pytest.mark.parametrize(("value", "reason"), [
    ("2", "2 workers not supported by aiofrp yet"),
    ("8", "8 workers not supported by aiofrp yet"),
    ("0", "must be at least 1"),
    ("x", "invalid count"),
])
def test_workers_refused(value: str, reason: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        frps_cli.main(["--workers", value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--workers" in err and reason in err
    assert "Traceback" not in err
