"""The http vhost's per-proxy pool of idle upstreams (server/vhost/http_upstream.py): a freed
upstream goes to the first request still waiting before it may wait idle, idle ones are bounded
(MAX_IDLE) and closed with the pool."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from aiofrp.server.vhost.http_upstream import MAX_IDLE, Upstream, UpstreamPool


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.closing = False
        self.protocol: Any = None

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True


class FakeMember:
    def __init__(self) -> None:
        self.pool = UpstreamPool()
        self.done: list[Upstream] = []

    def upstream_done(self, up: Upstream) -> None:
        self.done.append(up)


class FakeClient:
    """Stands for a vhost ClientConn waiting on the pool; ``waiting=False``: it went away."""

    def __init__(self, waiting: bool = True) -> None:
        self.waiting = waiting
        self.got: list[Upstream] = []

    def take_upstream(self, up: Upstream) -> bool:
        if not self.waiting:
            return False
        self.waiting = False
        self.got.append(up)
        return True


def upstream(member: FakeMember) -> Upstream:
    return Upstream(cast(Any, member), FakeTransport(), None, None)


async def _test_a_freed_upstream_goes_to_the_first_waiting_request() -> None:
    member = FakeMember()
    pool = member.pool
    gone, first, second = FakeClient(waiting=False), FakeClient(), FakeClient()
    for c in (gone, first, second):
        pool.wait(cast(Any, c))
    up = upstream(member)
    up.nin = 10  # it has served an exchange
    pool.put(up)
    assert first.got == [up] and not second.got and not gone.got
    assert up.reused  # a retry on a fresh connection stays possible if the service closed it
    assert pool.idle == []
    fresh = upstream(member)
    pool.put(fresh)
    assert second.got == [fresh] and not fresh.reused
    # nobody waits any more: the next one waits idle and is taken by the next request
    third = upstream(member)
    pool.put(third)
    assert pool.idle == [third] and not pool.waiters
    assert pool.take() is third


async def _test_a_request_that_stops_waiting_is_not_served() -> None:
    member = FakeMember()
    pool = member.pool
    client = FakeClient()
    pool.wait(cast(Any, client))
    pool.unwait(cast(Any, client))
    up = upstream(member)
    pool.put(up)
    assert not client.got and pool.idle == [up]


async def _test_idle_upstreams_are_bounded_and_closed_with_the_pool() -> None:
    member = FakeMember()
    pool = member.pool
    ups = [upstream(member) for _ in range(MAX_IDLE + 3)]
    for up in ups:
        pool.put(up)
    assert pool.idle == ups[:MAX_IDLE]
    assert all(cast(FakeTransport, up.transport).closing for up in ups[MAX_IDLE:])
    pool.wait(cast(Any, FakeClient()))
    pool.close()
    assert pool.idle == [] and not pool.waiters
    assert all(cast(FakeTransport, up.transport).closing for up in ups)
    late = upstream(member)
    pool.put(late)  # e.g. a work connection that arrives after the proxy closed
    assert cast(FakeTransport, late.transport).closing


async def _test_an_upstream_closed_meanwhile_is_not_handed_out() -> None:
    member = FakeMember()
    pool = member.pool
    client = FakeClient()
    pool.wait(cast(Any, client))
    up = upstream(member)
    cast(FakeTransport, up.transport).closing = True
    pool.put(up)
    assert not client.got and pool.idle == [] and list(pool.waiters) == [cast(Any, client)]


def test_a_freed_upstream_goes_to_the_first_waiting_request() -> None:
    asyncio.run(_test_a_freed_upstream_goes_to_the_first_waiting_request())  # the pool arms its idle sweep on the running loop


def test_a_request_that_stops_waiting_is_not_served() -> None:
    asyncio.run(_test_a_request_that_stops_waiting_is_not_served())  # the pool arms its idle sweep on the running loop


def test_idle_upstreams_are_bounded_and_closed_with_the_pool() -> None:
    asyncio.run(_test_idle_upstreams_are_bounded_and_closed_with_the_pool())  # the pool arms its idle sweep on the running loop


def test_an_upstream_closed_meanwhile_is_not_handed_out() -> None:
    asyncio.run(_test_an_upstream_closed_meanwhile_is_not_handed_out())  # the pool arms its idle sweep on the running loop
