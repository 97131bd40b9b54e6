"""The bandwidth token bucket (frp §5.13): rate, burst, pieces, waits; and a limited relay."""

from __future__ import annotations

import asyncio
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiofrp.net.limiter import TokenBucket, bucket_for
from aiofrp.net.relay import PendingConn, Relay

pytestmark = pytest.mark.timeout(60)


def test_starts_full_and_caps_at_burst():
    b = TokenBucket(1000, now=0.0)
    assert b.available(0.0) == 1000
    assert b.take(600, 0.0) == 600
    assert b.available(0.0) == 400
    assert b.available(100.0) == 1000  # never more than the burst


def test_partial_grant_and_refill():
    b = TokenBucket(10 * 1024, now=0.0)  # "10KB": rate 10240 B/s, burst 10240
    assert b.take(50 * 1024, 0.0) == 10 * 1024  # the whole burst at once
    assert b.take(1, 0.0) == 0
    assert b.available(0.5) == pytest.approx(5 * 1024)
    assert b.take(50 * 1024, 0.5) == 5 * 1024


def test_waits_for_a_quantum_not_a_byte():
    b = TokenBucket(2000, now=0.0)
    assert b.quantum == 100  # rate / 20
    b.take(2000, 0.0)
    assert b.take(5000, 0.01) == 0  # 20 tokens < one quantum: no crumbs
    assert b.wait_time(5000, 0.01) == pytest.approx(0.04)  # 80 more tokens at 2000/s
    assert b.take(5000, 0.05) == 100
    assert b.wait_time(10, 0.05) == pytest.approx(0.005)  # small writes wait only for themselves


def test_small_want_passes_when_enough():
    b = TokenBucket(100, now=0.0)
    b.take(95, 0.0)
    assert b.take(3, 0.0) == 3 and b.take(3, 0.0) == 0
    assert b.wait_time(3, 0.0) == pytest.approx(0.01)


def test_clock_starts_on_first_use():
    b = TokenBucket(1000)
    assert b.take(1000, 123.0) == 1000
    assert b.available(123.5) == pytest.approx(500)


def test_bad_parameters():
    with pytest.raises(ValueError):
        TokenBucket(0)
    with pytest.raises(ValueError):
        TokenBucket(10, 0.5)


def test_bucket_for_texts():
    assert bucket_for("") is None
    assert bucket_for("bogus") is None
    b = bucket_for("1.5MB")
    assert b is not None and b.rate == 1.5 * 1024 * 1024 and b.burst == b.rate
    assert bucket_for("10KB").rate == 10240


@given(st.integers(1, 10**7), st.lists(st.tuples(st.integers(0, 10**6), st.floats(0, 2)), max_size=40))
def test_long_run_rate_never_exceeded(rate, steps):
    """Whatever the pattern of requests, bytes granted by time t <= burst + rate * t."""
    b = TokenBucket(rate, now=0.0)
    now = granted = 0.0
    for want, dt in steps:
        now += dt
        granted += b.take(want, now)
        assert granted <= b.burst + rate * now + 1e-6
        w = b.wait_time(want, now)
        assert w >= 0
        if want and w == 0:
            assert b.take(want, now) > 0 or want == 0


# -- the relay with a bucket ------------------------------------------------------------------------


async def _pipe_through_relay(rate: int, upload: int, download: int) -> tuple[float, bytes, bytes]:
    """client <-> [relay a | b] <-> echo-ish server; returns (seconds, bytes at server, bytes at client)."""
    loop = asyncio.get_running_loop()
    got_server = bytearray()
    got_client = bytearray()
    done = loop.create_future()
    payload_down = bytes(range(256)) * (download // 256)

    async def server_side(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(payload_down)
        while len(got_server) < upload:
            chunk = await reader.read(1 << 16)
            if not chunk:
                break
            got_server.extend(chunk)
        await writer.drain()
        writer.close()

    upstream = await asyncio.start_server(server_side, "127.0.0.1", 0)
    up_port = upstream.sockets[0].getsockname()[1]

    async def relay_side(user: PendingConn) -> None:
        work, wp = await loop.create_connection(PendingConn, "127.0.0.1", up_port)
        assert user.transport is not None
        Relay(user.transport, work, a_data=user.take(), b_data=wp.take(), limiter=TokenBucket(rate))

    class Front(PendingConn):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            tasks.add(loop.create_task(relay_side(self)))

    tasks: set[asyncio.Task[None]] = set()
    front = await loop.create_server(Front, "127.0.0.1", 0)
    port = front.sockets[0].getsockname()[1]
    t0 = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(bytes(upload))

    async def read_all() -> None:
        while len(got_client) < download:
            chunk = await reader.read(1 << 16)
            if not chunk:
                break
            got_client.extend(chunk)
        done.set_result(None)

    await asyncio.wait_for(read_all(), 20)
    while len(got_server) < upload:
        await asyncio.sleep(0.01)
    elapsed = time.monotonic() - t0
    writer.close()
    front.close()
    upstream.close()
    return elapsed, bytes(got_server), bytes(got_client)


def test_relay_shares_one_bucket_between_directions():
    # 100 KiB/s, 150 KiB each way: 300 KiB through the bucket, 100 KiB of burst => ~2 s
    rate = 100 * 1024
    elapsed, up, down = asyncio.run(asyncio.wait_for(_pipe_through_relay(rate, 150 * 1024, 150 * 1024), 20))
    assert len(up) == 150 * 1024 and down == bytes(range(256)) * (150 * 1024 // 256)
    assert 1.6 < elapsed < 4.0, elapsed


def test_relay_with_a_high_limit_is_fast():
    elapsed, up, down = asyncio.run(asyncio.wait_for(_pipe_through_relay(10**12, 1 << 20, 1 << 20), 20))
    assert len(up) == len(down) == 1 << 20 and elapsed < 2.0
