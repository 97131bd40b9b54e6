"""``frps --workers N``: a count of at least 1; with more than 1 a key that needs one process
(server/workers: NOT_SHARED, empty today) is refused naming the key, exit status 1, no traceback."""

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


def test_key_refused_with_workers(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A key in NOT_SHARED (none today: a stand-in) is refused in one line with N > 1."""
    monkeypatch.setitem(NOT_SHARED, "transport.tcpMux", (lambda c: not c.transport.tcp_mux, "a stand-in reason"))
    cfg = tmp_path / "frps.toml"
    cfg.write_text("transport.tcpMux = false\n")
    with pytest.raises(SystemExit) as exc:
        frps_cli.main(["verify", "-c", str(cfg), "--workers", "2"])
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert err == f"{cfg}: transport.tcpMux: not supported with --workers 2 by aiofrp yet (a stand-in reason); use --workers 1"
    assert frps_cli.main(["verify", "-c", str(cfg), "--workers", "1"]) == 0


@pytest.mark.parametrize("line", ["transport.tcpMux = false", "transport.tls.force = true\ntransport.tcpMux = false"])
def test_keys_accepted_with_workers(line: str, tmp_path: Path) -> None:
    """Every key works with N workers now (``transport.tcpMux = false`` since work connections are
    handed to their control's worker): NOT_SHARED is empty."""
    assert NOT_SHARED == {}
    cfg = tmp_path / "frps.toml"
    cfg.write_text(line + "\n")
    assert frps_cli.main(["verify", "-c", str(cfg), "--workers", "2"]) == 0


def test_worker_flags_go_together(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        frps_cli.main(["--worker", "1"])
    assert exc.value.code == 1
    assert "--worker and --registry" in capsys.readouterr().err
