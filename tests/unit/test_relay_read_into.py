"""net/relay.py: a busy relay from one of the loop's sockets into a yamux stream reads into buffers
of its own (READ_INTO) and hands big reads over without a copy; a buffer is read into again only
once nothing holds a view of it.

Real sockets on 127.0.0.1 and a real yamux session over loopback, on asyncio's loop and uvloop's.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import types
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from aiofrp.net import relay as relay_mod
from aiofrp.net.mux import MuxSession, MuxStream
from aiofrp.net.relay import PendingConn, Relay
from aiofrp.proto.uninit import new_bytearray

DEADLINE = 20.0


class Sink(asyncio.Protocol):
    """The far end of the yamux stream: collects what the relay sends, can stop reading."""

    def __init__(self) -> None:
        self.got = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: Any) -> None:
        self.got += data


async def until(cond: Callable[[], bool], what: str) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + DEADLINE
    while not cond():
        assert loop.time() < end, what
        await asyncio.sleep(0.001)


class Setup:
    """A user connection (``user``: a stream client; ``a``: the accepted loop transport) relayed
    into a yamux stream ``b``, whose peer stream on the other session feeds ``sink``."""

    a: asyncio.Transport
    b: MuxStream
    sink: Sink
    _msrv: asyncio.Server
    _client: MuxSession
    user_r: asyncio.StreamReader
    user_w: asyncio.StreamWriter

    @classmethod
    async def open(cls, **relay_kw: Any) -> tuple[Setup, Relay]:
        self = cls()
        loop = asyncio.get_running_loop()
        self.sink = Sink()
        peer: asyncio.Future[MuxStream] = loop.create_future()

        def on_stream(st: MuxStream) -> None:
            st.set_protocol(self.sink)
            self.sink.connection_made(st)
            peer.set_result(st)

        self._msrv = await loop.create_server(
            lambda: MuxSession(client=False, on_stream=on_stream, keepalive_interval=0), "127.0.0.1", 0)
        _, client = await loop.create_connection(lambda: MuxSession(client=True, keepalive_interval=0),
                                                 "127.0.0.1", self._msrv.sockets[0].getsockname()[1])
        self._client = client
        self.b = client.open_stream()
        self.b.write(b"!")  # the SYN with a first byte, so the peer stream shows up
        await asyncio.wait_for(peer, DEADLINE)
        await until(lambda: len(self.sink.got) == 1, "the first byte")
        self.sink.got.clear()
        pending = PendingConn()
        usrv = await loop.create_server(lambda: pending, "127.0.0.1", 0)
        self.user_r, self.user_w = await asyncio.open_connection("127.0.0.1", usrv.sockets[0].getsockname()[1])
        await until(lambda: pending.transport is not None, "the user connection")
        usrv.close()
        assert pending.transport is not None
        self.a = pending.transport
        self.a.pause_reading()
        relay = Relay(self.a, self.b, name="t", **relay_kw)
        return self, relay

    async def close(self, relay: Relay) -> None:
        relay.close()
        self.user_w.close()
        self._client.close()
        self._msrv.close()


def _run(body: Callable[[], Coroutine[Any, Any, None]], use_uvloop: bool) -> None:
    if use_uvloop:
        uvloop.run(asyncio.wait_for(body(), 60))
    else:
        asyncio.run(asyncio.wait_for(body(), 60))


@pytest.fixture(params=[False, True], ids=["asyncio", "uvloop"])
def use_uvloop(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def test_a_busy_relay_reads_into_its_buffers_and_every_byte_arrives(use_uvloop: bool) -> None:
    async def body() -> None:
        s, relay = await Setup.open()
        data = os.urandom(6 << 20)
        s.user_w.write(data)
        await until(lambda: len(s.sink.got) >= len(data), "the upload")
        assert hashlib.sha256(s.sink.got).digest() == hashlib.sha256(data).digest()
        assert type(s.a.get_protocol()).__name__ == "_ReadInto"
        assert relay.bytes_a_to_b == len(data)
        # and back: the yamux side is not a socket, it keeps data_received
        back = os.urandom(1 << 20)
        assert s.sink.transport is not None
        s.sink.transport.write(back)
        got = await asyncio.wait_for(s.user_r.readexactly(len(back)), DEADLINE)
        assert got == back
        await s.close(relay)

    _run(body, use_uvloop)


class HoldingDst:
    """A destination that keeps the views it is given, as a transport with a full socket does."""

    def __init__(self) -> None:
        self.held: list[tuple[memoryview, bytes]] = []  # each view and what it held when written
        self.copies: list[bytes] = []

    def write(self, data: Any) -> None:
        if isinstance(data, memoryview):
            self.held.append((data, bytes(data)))
        else:
            self.copies.append(data)


def _read(proto: Any, payload: bytes) -> None:
    """What the loop does for one read: get_buffer, fill, buffer_updated."""
    buf = proto.get_buffer(-1)
    buf[: len(payload)] = payload
    del buf
    proto.buffer_updated(len(payload))


def test_a_buffer_still_queued_is_not_read_into() -> None:
    dst = HoldingDst()
    side = types.SimpleNamespace(dst=dst, count=0)
    proto = relay_mod._ReadInto(side)  # type: ignore[arg-type]
    chunks = [os.urandom(relay_mod.HAND_OFF + i) for i in range(4)]
    for c in chunks:  # each handed over and still held: every read needs a buffer nobody holds
        _read(proto, c)
    assert [bytes(v) for v, _ in dst.held] == chunks  # nothing overwritten
    assert all(bytes(v) == was for v, was in dst.held)
    assert len({id(v.obj) for v, _ in dst.held}) == 4
    dst.held.clear()  # written out: the buffers are free again
    _read(proto, chunks[0])
    first = dst.held[0][0].obj
    dst.held.clear()
    _read(proto, b"short")  # a short read is copied, and leaves the buffer free
    _read(proto, chunks[1])
    assert dst.copies == [b"short"]
    assert dst.held[0][0].obj is first  # the same buffer, read into again
    assert bytes(dst.held[0][0]) == chunks[1]
    assert side.count == sum(map(len, chunks)) + len(chunks[0]) + 5 + len(chunks[1])


def test_a_short_relay_and_a_codec_stay_on_data_received(use_uvloop: bool) -> None:
    async def body() -> None:
        s, relay = await Setup.open()
        s.user_w.write(b"x" * 1000)
        await until(lambda: len(s.sink.got) >= 1000, "the short upload")
        assert type(s.a.get_protocol()).__name__ == "_Side"
        await s.close(relay)

        s, relay = await Setup.open(a_to_b=lambda b: bytes(b))
        data = os.urandom(1 << 20)
        s.user_w.write(data)
        await until(lambda: len(s.sink.got) >= len(data), "the upload through a codec")
        assert bytes(s.sink.got) == data
        assert type(s.a.get_protocol()).__name__ == "_Side"
        await s.close(relay)

    _run(body, use_uvloop)


def test_aiofrp_read_into_0_keeps_data_received(use_uvloop: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(relay_mod, "READ_INTO", False)

    async def body() -> None:
        s, relay = await Setup.open()
        data = os.urandom(1 << 20)
        s.user_w.write(data)
        await until(lambda: len(s.sink.got) >= len(data), "the upload")
        assert bytes(s.sink.got) == data
        assert type(s.a.get_protocol()).__name__ == "_Side"
        await s.close(relay)

    _run(body, use_uvloop)


def test_unshared_sees_a_live_view() -> None:
    buf = new_bytearray(None, 1000)
    assert relay_mod._unshared(buf) and len(buf) == 1000
    view = memoryview(buf)[:10]
    assert not relay_mod._unshared(buf) and len(buf) == 1000
    del view
    assert relay_mod._unshared(buf) and len(buf) == 1000
