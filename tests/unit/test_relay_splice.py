"""net/relay.py over two plain TCP connections: the sockets are taken over and spliced in the
kernel (os.splice), with the bytes held before the relay first, half-close, back-pressure, live
byte counters, and the callback relay when splicing is off or a codec is in the path.

Real sockets on 127.0.0.1, on asyncio's loop and on uvloop's.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from aiofrp.net import relay as relay_mod
from aiofrp.net.relay import PendingConn, Relay

DEADLINE = 10.0

Pair = tuple[asyncio.Transport, asyncio.StreamReader, asyncio.StreamWriter]


async def _accepted_pair() -> Pair:
    """A loop transport (the accepted side, protocol PendingConn, paused) and a stream client."""
    loop = asyncio.get_running_loop()
    pending = PendingConn()

    def factory() -> asyncio.Protocol:
        return pending

    server = await loop.create_server(factory, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    while pending.transport is None:
        await asyncio.sleep(0)
    server.close()
    t = pending.transport
    t.pause_reading()
    return t, reader, writer


def _run(body: Callable[[], Coroutine[Any, Any, None]], use_uvloop: bool) -> None:
    if use_uvloop:
        uvloop.run(body())
    else:
        asyncio.run(body())


@pytest.fixture(params=[False, True], ids=["asyncio", "uvloop"])
def use_uvloop(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.mark.parametrize("splice", [True, False], ids=["splice", "callbacks"])
def test_relay_both_ways_half_close_counts(use_uvloop: bool, splice: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(relay_mod, "SPLICE", splice)
    monkeypatch.setattr(relay_mod, "SPLICE_AFTER", 0)  # spliced from the start
    big = os.urandom(8 << 20)

    async def body() -> None:
        a, ra, wa = await _accepted_pair()
        b, rb, wb = await _accepted_pair()
        relay = Relay(a, b, a_data=b"held-a", b_data=b"held-b", name="t")
        assert (relay._spliced is not None) == splice
        assert await asyncio.wait_for(rb.readexactly(6), DEADLINE) == b"held-a"
        assert await asyncio.wait_for(ra.readexactly(6), DEADLINE) == b"held-b"

        # back-pressure: b's peer reads nothing while a's peer sends far more than the buffers
        # hold; nothing is lost and the relay stops reading instead of buffering it all
        wa.write(big)
        await asyncio.sleep(0.2)
        assert relay.bytes_a_to_b < len(big)
        got = await asyncio.wait_for(rb.readexactly(len(big)), DEADLINE)
        assert got == big
        await asyncio.wait_for(wa.drain(), DEADLINE)

        # half-close a -> b; b -> a still flows, then its EOF ends the relay
        wa.write_eof()
        assert await asyncio.wait_for(rb.read(), DEADLINE) == b""
        wb.write(b"late reply")
        assert await asyncio.wait_for(ra.readexactly(10), DEADLINE) == b"late reply"
        wb.write_eof()
        assert await asyncio.wait_for(ra.read(), DEADLINE) == b""
        await asyncio.wait_for(relay.done, DEADLINE)
        assert relay.bytes_a_to_b == 6 + len(big)
        assert relay.bytes_b_to_a == relay.bytes_out == 6 + 10
        for w in (wa, wb):
            w.close()

    _run(body, use_uvloop)


def test_close_and_peer_reset_end_the_spliced_relay(use_uvloop: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(relay_mod, "SPLICE_AFTER", 0)

    async def body() -> None:
        a, ra, wa = await _accepted_pair()
        b, rb, wb = await _accepted_pair()
        relay = Relay(a, b, name="t")
        assert relay._spliced is not None
        wa.write(b"x" * 1000)
        assert await asyncio.wait_for(rb.readexactly(1000), DEADLINE) == b"x" * 1000
        sock = wb.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        wb.transport.abort()  # RST toward the relay
        await asyncio.wait_for(relay.done, DEADLINE)
        assert await asyncio.wait_for(ra.read(), DEADLINE) == b""  # a's peer sees the close
        wa.close()

        # an explicit close (proxy removed) closes both connections
        a, ra, wa = await _accepted_pair()
        b, rb, wb = await _accepted_pair()
        relay = Relay(a, b, name="t")
        relay.close()
        assert await asyncio.wait_for(ra.read(), DEADLINE) == b""
        assert await asyncio.wait_for(rb.read(), DEADLINE) == b""
        assert relay.done.done()
        for w in (wa, wb):
            w.close()

    _run(body, use_uvloop)


def test_a_short_relay_stays_on_callbacks_and_a_long_one_is_spliced_midway(use_uvloop: bool) -> None:
    """Splicing starts only after SPLICE_AFTER bytes: a short exchange never sets pipes up; a
    bulk transfer switches over between two chunks with nothing lost, reordered or miscounted,
    in both directions and with the other direction's bytes in flight."""
    after = relay_mod.SPLICE_AFTER
    assert after > 0
    first = os.urandom(after // 2)
    rest = os.urandom(4 * after + 12345)
    back = os.urandom(after)

    async def body() -> None:
        a, ra, wa = await _accepted_pair()
        b, rb, wb = await _accepted_pair()
        relay = Relay(a, b, a_data=b"held", name="t")
        assert relay._spliced is None
        wa.write(first)
        assert await asyncio.wait_for(rb.readexactly(4 + len(first)), DEADLINE) == b"held" + first
        assert relay._spliced is None  # under SPLICE_AFTER: still callbacks
        wa.write(rest)
        wb.write(back)
        got_b, got_a = await asyncio.wait_for(
            asyncio.gather(rb.readexactly(len(rest)), ra.readexactly(len(back))), DEADLINE)
        assert got_b == rest and got_a == back
        assert relay._spliced is not None
        wa.write(b"after")
        assert await asyncio.wait_for(rb.readexactly(5), DEADLINE) == b"after"
        wa.write_eof()
        assert await asyncio.wait_for(rb.read(), DEADLINE) == b""
        wb.write_eof()
        assert await asyncio.wait_for(ra.read(), DEADLINE) == b""
        await asyncio.wait_for(relay.done, DEADLINE)
        assert relay.bytes_a_to_b == 4 + len(first) + len(rest) + 5
        assert relay.bytes_b_to_a == relay.bytes_out == len(back)
        for w in (wa, wb):
            w.close()

    _run(body, use_uvloop)


def test_a_codec_keeps_the_callback_relay() -> None:
    async def body() -> None:
        a, _ra, wa = await _accepted_pair()
        b, rb, wb = await _accepted_pair()
        relay = Relay(a, b, a_to_b=lambda d: bytes(d).upper(), name="t")
        assert relay._spliced is None
        wa.write(b"abc")
        assert await asyncio.wait_for(rb.readexactly(3), DEADLINE) == b"ABC"
        relay.close()
        for w in (wa, wb):
            w.close()

    asyncio.run(body())


def test_out_of_descriptors_keeps_the_callback_relay(monkeypatch: pytest.MonkeyPatch) -> None:
    """No descriptor for the pipes: the held bytes are written once and callbacks relay the rest."""

    def no_pipe(flags: int) -> tuple[int, int]:
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(os, "pipe2", no_pipe)
    monkeypatch.setattr(relay_mod, "SPLICE_AFTER", 0)

    async def body() -> None:
        a, ra, wa = await _accepted_pair()
        b, rb, wb = await _accepted_pair()
        relay = Relay(a, b, a_data=b"held", name="t")
        assert relay._spliced is None
        wa.write(b"more")
        assert await asyncio.wait_for(rb.readexactly(8), DEADLINE) == b"heldmore"
        wb.write(b"back")
        assert await asyncio.wait_for(ra.readexactly(4), DEADLINE) == b"back"
        assert (relay.bytes_a_to_b, relay.bytes_b_to_a) == (8, 4)
        relay.close()
        assert await asyncio.wait_for(ra.read(), DEADLINE) == b""
        for w in (wa, wb):
            w.close()

    asyncio.run(body())
