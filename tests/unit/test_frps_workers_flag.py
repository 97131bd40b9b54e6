"""``frps --workers N``: a count of at least 1; with more than 1 the keys that need one process
(server/workers: NOT_SHARED) are refused naming the key, exit status 1, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiofrp.cli import frps as frps_cli
from aiofrp.server.workers import NOT_SHARED


def test_workers_default_is_one() -> None:
    assert frps_cli.build_parser().parse_args([]).workers == 1


@pytest.mark.parametrize(("argv", "n"), [(["--workers", "1"], 1), (["--workers=1"], 1), (["--workers", "8"], 8)])
def test_workers_accepted(argv: list[str], n: int) -> None:
    assert frps_cli.build_parser().parse_args(argv).workers == n


@pytest.mark.parametrize(("value", "reason"), [
    ("0", "must be at least 1"),
    ("x", "invalid count"),
])
def test_workers_refused(value: str, reason: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        frps_cli.main(["--workers", value])
    assert exc.value.code == 1  # a usage error: 1, as cobra
    err = capsys.readouterr().err
    assert "--workers" in err and reason in err
    assert "Traceback" not in err


CONFIG_LINES = {
    "transport.tcpMux": "transport.tcpMux = false",
}


def test_every_refused_key_has_a_case() -> None:
    assert set(CONFIG_LINES) == set(NOT_SHARED)


@pytest.mark.parametrize("key", sorted(CONFIG_LINES))
def test_key_refused_with_workers(key: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "frps.toml"
    cfg.write_text(CONFIG_LINES[key] + "\n")
    with pytest.raises(SystemExit) as exc:
        frps_cli.main(["verify", "-c", str(cfg), "--workers", "2"])
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert err.startswith(f"{cfg}: {key}: not supported with --workers 2 by aiofrp yet (")
    assert err.endswith("); use --workers 1")


@pytest.mark.parametrize("key", sorted(CONFIG_LINES))
def test_key_accepted_with_one_worker(key: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "frps.toml"
    cfg.write_text(CONFIG_LINES[key] + "\n")
    assert frps_cli.main(["verify", "-c", str(cfg), "--workers", "1"]) == 0


def test_worker_flags_go_together(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        frps_cli.main(["--worker", "1"])
    assert exc.value.code == 1
    assert "--worker and --registry" in capsys.readouterr().err
