"""server/banlist.py: failed connections per address within a window ban it for a while, with one
line per ban; the durations of the ``--login-fail-*`` flags."""

from __future__ import annotations

import logging

import pytest

from aiofrp.server import banlist as bl
from aiofrp.server.banlist import BanList, FailLimit, parse_duration


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_ban_after_limit_within_window_once_per_ban(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    bans = BanList(FailLimit(3, 60, 300), clock)
    caplog.set_level(logging.INFO, "aiofrp.server")
    bans.failed("1.2.3.4")
    bans.failed("1.2.3.4")
    assert not bans.banned("1.2.3.4")
    bans.failed("1.2.3.4")
    assert bans.banned("1.2.3.4") and not bans.banned("::1")
    for _ in range(10):  # failures during the ban neither extend it nor log
        bans.failed("1.2.3.4")
    lines = [r.getMessage() for r in caplog.records if "banned for" in r.getMessage()]
    assert lines == ["address 1.2.3.4 banned for 300s: 3 failed connections within 60s"]
    clock.now += 299
    assert bans.banned("1.2.3.4")
    clock.now += 2
    assert not bans.banned("1.2.3.4")
    bans.failed("1.2.3.4")  # counting starts afresh
    assert not bans.banned("1.2.3.4")


def test_failures_outside_the_window_do_not_count() -> None:
    clock = Clock()
    bans = BanList(FailLimit(3, 60, 300), clock)
    for _ in range(10):
        bans.failed("10.0.0.1")
        clock.now += 30.5  # never 3 within 60 s
    assert not bans.banned("10.0.0.1")


def test_off_by_default() -> None:
    bans = BanList(FailLimit())
    for _ in range(1000):
        bans.failed("10.0.0.1")
    assert not bans.enabled and not bans.banned("10.0.0.1")


def test_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bl, "MAX_TRACKED", 100)
    bans = BanList(FailLimit(2, 60, 300))
    for i in range(1000):
        bans.failed(f"10.0.{i // 256}.{i % 256}")
    assert len(bans._fails) <= 100


@pytest.mark.parametrize(("text", "secs"), [("300s", 300), ("5m", 300), ("1h30m", 5400), ("1.5s", 1.5),
                                            ("250ms", 0.25), ("60", 60)])
def test_parse_duration(text: str, secs: float) -> None:
    assert parse_duration(text) == secs


@pytest.mark.parametrize("text", ["", "s", "5x", "5m3", "-1s", "0s", "1d"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)
