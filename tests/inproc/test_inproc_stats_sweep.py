"""frps forgets the statistics of proxies offline for more than 7 days, every 12 hours, as Go's
statistics collector does, with or without a dashboard (server/service.py: Server._sweep_stats).
The interval is shortened here; the 7 days are the proxies' own clocks, set back."""

from __future__ import annotations

import asyncio

import pytest
from support.inproc import DEADLINE, InProc

from aiofrp.server import service
from aiofrp.server.stats import OFFLINE_KEEP


async def test_offline_proxies_are_forgotten_without_a_dashboard(inproc: InProc,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "STATS_SWEEP_INTERVAL", 0.05)
    server = await inproc.start_server()
    assert server.dashboard is None
    stats = server.stats
    for name in ("old", "recent", "online"):
        stats.new_proxy(name, "tcp", "", "", None, False)
    for name in ("old", "recent"):
        stats.close_proxy(name, "tcp")
    old = stats.proxies["old"]
    old.last_close -= OFFLINE_KEEP + 60  # offline for a little more than 7 days
    old.last_start -= OFFLINE_KEEP + 120
    deadline = asyncio.get_running_loop().time() + DEADLINE
    while "old" in stats.proxies:
        assert asyncio.get_running_loop().time() < deadline, "the sweep did not run"
        await asyncio.sleep(0.02)
    assert set(stats.proxies) == {"recent", "online"}
