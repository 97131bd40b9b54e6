"""``server.ports.PortManager``: random remote ports (``remotePort = 0``) within ``allowPorts``."""

from __future__ import annotations

from collections import Counter

from aiofrp.config.server import PortsRange
from aiofrp.server.ports import RANDOM_TRIES, PortManager, _randint


def test_randint_covers_the_range_inclusively() -> None:
    seen = Counter(_randint(3, 6) for _ in range(2000))
    assert set(seen) == {3, 4, 5, 6}
    assert min(seen.values()) > 350  # about 500 each
    assert {_randint(7, 7) for _ in range(20)} == {7}


def test_random_candidates_stay_in_the_allowed_ranges() -> None:
    pm = PortManager([PortsRange(start=5000, end=5002), PortsRange(single=6000)])
    seen: set[int] = set()
    for _ in range(200):
        got = list(pm.candidates("tcp", "p", 0))
        assert len(got) == RANDOM_TRIES  # no last resort (port 0) with allowPorts
        seen.update(got)
    assert seen == {5000, 5001, 5002, 6000}
    pm.mark_used("tcp", "q", 5001)
    assert all(p != 5001 for _ in range(50) for p in pm.candidates("tcp", "p", 0))


def test_without_allow_ports_the_random_ports_are_unprivileged_then_any() -> None:
    pm = PortManager([])
    got = list(pm.candidates("udp", "p", 0))
    assert got[-1] == 0 and all(1024 <= p <= 65535 for p in got[:-1])
