"""net/listen.py FdGuard: accepted connections near the fd limit are aborted, with a line a second
at most, and one line when connections are admitted again."""

from __future__ import annotations

import logging
import re

import pytest

from aiofrp.net import listen
from aiofrp.net.listen import FdGuard


class _Sock:
    def __init__(self, fd: int) -> None:
        self.fd = fd

    def fileno(self) -> int:
        return self.fd


class _Transport:
    def __init__(self, fd: int) -> None:
        self.sock = _Sock(fd)
        self.aborted = False

    def get_extra_info(self, name: str) -> object:
        return self.sock if name == "socket" else None

    def abort(self) -> None:
        self.aborted = True


def test_refuses_near_the_limit_logging_once_a_second(monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(listen, "_fd_limit", lambda: 256)
    now = [100.0]
    guard = FdGuard(clock=lambda: now[0])
    caplog.set_level(logging.INFO, "aiofrp.net")
    assert FdGuard.headroom(256) == 16 and FdGuard.headroom(1 << 20) == 64 and FdGuard.headroom(64) == 8
    ok = _Transport(239)
    assert guard.admit(ok) and not ok.aborted  # type: ignore[arg-type]
    for i in range(1000):
        t = _Transport(240 + i % 16)
        assert not guard.admit(t) and t.aborted  # type: ignore[arg-type]
        now[0] += 0.0025  # 1000 refusals in 2.5 s
    assert guard.refused == 1000
    assert guard.admit(_Transport(20))  # type: ignore[arg-type]
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "too many open files (fd 240 of the limit 256): refusing new connections"
    assert re.fullmatch(r"too many open files \(fd limit 256\): 40\d more connections refused in the last 1\.0s",
                        lines[1]), lines[1]
    assert len(lines) == 4, lines  # 3 lines in 2.5 s, then:
    assert lines[-1] == "accepting new connections again, 1000 refused while at the fd limit"


def test_no_limit_admits_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(listen, "_fd_limit", lambda: None)
    guard = FdGuard()
    assert guard.admit(_Transport(10**6))  # type: ignore[arg-type]
