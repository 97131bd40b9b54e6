"""net/transport.py: the read-pause/drain base of MuxStream, QuicStream and KCPConn.

First the base itself, driven by hand (feed, pause, resume, EOF, close), including a property
test over random operation sequences; then the same semantics through the three real transports.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiofrp.net.kcp import KCPConn
from aiofrp.net.mux import MuxSession, MuxStream
from aiofrp.net.quic import QuicSession, QuicStream, quic_configuration
from aiofrp.net.transport import PausableTransport


class Recorder(asyncio.Protocol):
    """Records what a transport delivers; can react inside data_received."""

    def __init__(self, *, keep_open: bool = True) -> None:
        self.events: list[Any] = []  # bytes chunks and "EOF"
        self.keep_open = keep_open
        self.on_data: Callable[[bytes], None] | None = None
        self.lost: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()
        self.write_events: list[str] = []

    def data_received(self, data: bytes) -> None:
        self.events.append(bytes(data))
        if self.on_data is not None:
            self.on_data(bytes(data))

    def eof_received(self) -> bool:
        self.events.append("EOF")
        return self.keep_open

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)

    def pause_writing(self) -> None:
        self.write_events.append("pause")

    def resume_writing(self) -> None:
        self.write_events.append("resume")

    @property
    def data(self) -> bytes:
        return b"".join(e for e in self.events if isinstance(e, bytes))

    @property
    def got_eof(self) -> bool:
        return "EOF" in self.events


class Fake(PausableTransport):
    """The smallest concrete transport: push mode, counts what it is told was consumed."""

    def __init__(self) -> None:
        super().__init__(asyncio.get_running_loop())
        self.consumed = 0
        self.drains = 0
        self.closed = False

    def _consumed(self, n: int) -> None:
        self.consumed += n

    def _drained(self) -> None:
        self.drains += 1

    def close(self) -> None:
        self.closed = True
        self._stop_reading()

    def abort(self) -> None:
        self.close()

    def is_closing(self) -> bool:
        return self.closed

    def write(self, data: Any) -> None:
        pass


def run(main: Callable[[], Awaitable[None]]) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(20):
            await main()

    asyncio.run(bounded())


async def turn() -> None:
    """Let the loop run the callbacks scheduled so far (call_soon)."""
    await asyncio.sleep(0)


async def until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.002)


def attach(t: asyncio.Transport, proto: asyncio.Protocol) -> None:
    t.set_protocol(proto)
    proto.connection_made(t)


# -- the base, by hand --------------------------------------------------------------------------


def test_unpaused_bytes_and_eof_go_straight_through() -> None:
    async def main() -> None:
        t, p = Fake(), Recorder()
        attach(t, p)
        t._feed_data(b"ab")
        t._feed_data(memoryview(b"cd"))
        assert p.events == [b"ab", b"cd"] and t.consumed == 4
        t._feed_eof()
        assert p.events[-1] == "EOF" and not t.closed  # eof_received returned True: stays open

    run(main)


def test_paused_bytes_and_eof_are_held_then_delivered_in_order_on_a_later_turn() -> None:
    async def main() -> None:
        t, p = Fake(), Recorder()
        attach(t, p)
        t.pause_reading()
        assert not t.is_reading()
        for chunk in (b"1", b"22", b"333"):
            t._feed_data(chunk)
        t._feed_eof()
        assert p.events == [] and t.consumed == 0  # nothing taken, nothing credited
        t.resume_reading()
        assert t.is_reading() and p.events == []  # never from inside resume_reading
        await turn()
        assert p.events == [b"1", b"22", b"333", "EOF"] and t.consumed == 6

    run(main)


def test_bytes_arriving_behind_held_ones_wait_their_turn() -> None:
    async def main() -> None:
        t, p = Fake(), Recorder()
        attach(t, p)
        t.pause_reading()
        t._feed_data(b"old")
        t.resume_reading()
        t._feed_data(b"new")  # the drain is scheduled but has not run: must not overtake
        t._feed_eof()
        assert p.events == []
        await turn()
        assert p.events == [b"old", b"new", "EOF"]

    run(main)


def test_eof_returning_false_closes_the_transport() -> None:
    async def main() -> None:
        t, p = Fake(), Recorder(keep_open=False)
        attach(t, p)
        t._feed_eof()
        assert p.events == ["EOF"] and t.closed

    run(main)


def test_pausing_inside_data_received_stops_the_drain_right_there() -> None:
    async def main() -> None:
        t, p = Fake(), Recorder()
        attach(t, p)
        t.pause_reading()
        for chunk in (b"a", b"b", b"c"):
            t._feed_data(chunk)
        t._feed_eof()
        p.on_data = lambda data: t.pause_reading() if data == b"a" else None
        t.resume_reading()
        await turn()
        assert p.events == [b"a"] and t.consumed == 1
        p.on_data = None
        t.resume_reading()
        await turn()
        assert p.events == [b"a", b"b", b"c", "EOF"] and t.consumed == 3

    run(main)


def test_closing_drops_what_is_held_and_ignores_what_comes_later() -> None:
    async def main() -> None:
        t, p = Fake(), Recorder()
        attach(t, p)
        t.pause_reading()
        t._feed_data(b"a")
        t._feed_data(b"bb")
        t._feed_eof()
        p.on_data = lambda data: t.close()
        t.resume_reading()
        await turn()
        assert p.events == [b"a"]  # closed inside data_received: b"bb" and the EOF are dropped
        assert t.consumed == 3  # every byte handed in is accounted for, delivered or dropped
        t._feed_data(b"late")
        t._feed_eof()
        t.resume_reading()
        await turn()
        assert p.events == [b"a"] and t.consumed == 7

    run(main)


def test_abort_while_paused_drops_everything() -> None:
    async def main() -> None:
        t, p = Fake(), Recorder()
        attach(t, p)
        t.pause_reading()
        t._feed_data(b"xyz")
        t._feed_eof()
        t.abort()
        t.resume_reading()
        await turn()
        assert p.events == [] and t.consumed == 3

    run(main)


def test_repeated_pause_resume_schedules_one_drain() -> None:
    async def main() -> None:
        t, p = Fake(), Recorder()
        attach(t, p)
        t.pause_reading()
        t._feed_data(b"x")
        for _ in range(5):
            t.resume_reading()
            t.pause_reading()
        t.resume_reading()
        await turn()
        await turn()
        assert p.events == [b"x"] and t.drains == 1

    run(main)


def test_resume_without_anything_held_schedules_nothing() -> None:
    async def main() -> None:
        t, p = Fake(), Recorder()
        attach(t, p)
        t.pause_reading()
        t.resume_reading()
        await turn()
        assert t.drains == 0 and p.events == []

    run(main)


class Pull(Fake):
    """Pull mode, as KCPConn: the data waits in a core queue until the drain takes it."""

    def __init__(self) -> None:
        super().__init__()
        self.core: list[bytes] = []

    def arrive(self, data: bytes) -> None:
        self.core.append(data)
        self._drain()

    def _next_buffered(self) -> bytes | None:
        return self.core.pop(0) if self.core else None

    def _has_buffered(self) -> bool:
        return bool(self.core)


def test_pull_mode_leaves_data_in_the_core_while_paused() -> None:
    async def main() -> None:
        t, p = Pull(), Recorder()
        t.arrive(b"early")  # no protocol yet: stays in the core
        attach(t, p)
        t.arrive(b"now")
        assert p.events == [b"early", b"now"]
        t.pause_reading()
        t.arrive(b"held")
        assert t.core == [b"held"] and p.events == [b"early", b"now"]
        t.resume_reading()
        await turn()
        assert p.events[-1] == b"held" and t.core == []

    run(main)


def test_write_flow_control_tells_the_protocol_once_per_change_and_survives_its_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        t, p = Fake(), Recorder()
        attach(t, p)
        t._set_write_paused(True)
        t._set_write_paused(True)
        t._set_write_paused(False)
        t._set_write_paused(False)
        assert p.write_events == ["pause", "resume"]

        def boom() -> None:
            raise RuntimeError("protocol bug")

        p.pause_writing = boom  # type: ignore[method-assign]
        with caplog.at_level(logging.ERROR, logger="aiofrp.net"):
            t._set_write_paused(True)
        assert "flow-control callback failed" in caplog.text

    run(main)


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("data"), st.binary(min_size=1, max_size=5)),
        st.sampled_from([("pause",), ("resume",), ("turn",), ("pause_in_callback",)]),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(ops=OPS, eof=st.booleans())
def test_any_sequence_delivers_a_prefix_in_order_and_everything_at_the_end(ops: list[tuple[Any, ...]],
                                                                             eof: bool) -> None:
    async def main() -> None:
        t, p = Fake(), Recorder()
        attach(t, p)
        fed = bytearray()
        pause_next = False

        def on_data(data: bytes) -> None:
            nonlocal pause_next
            if pause_next:
                pause_next = False
                t.pause_reading()

        p.on_data = on_data
        for op in ops:
            if op[0] == "data":
                fed += op[1]
                t._feed_data(op[1])
            elif op[0] == "pause":
                t.pause_reading()
            elif op[0] == "resume":
                t.resume_reading()
            elif op[0] == "pause_in_callback":
                pause_next = True
            else:
                await turn()
            assert fed.startswith(p.data) and "EOF" not in p.events
            assert t.consumed == len(p.data)  # credited exactly when delivered
        if eof:
            t._feed_eof()
        pause_next = False
        t.resume_reading()
        await turn()
        assert p.data == bytes(fed) and t.consumed == len(fed)
        assert p.events.count("EOF") == int(eof) and (not eof or p.events[-1] == "EOF")

    asyncio.run(main())


# -- the same semantics through the real transports -----------------------------------------------

Pair = tuple[asyncio.Transport, asyncio.Transport]  # (sender, receiver)


@asynccontextmanager
async def yamux_pair() -> AsyncIterator[Pair]:
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[MuxStream] = loop.create_future()

    def on_stream(st: MuxStream) -> None:  # a protocol at once, as frps's _ServerMux does
        attach(st, Recorder())
        accepted.set_result(st)

    srv = await loop.create_server(
        lambda: MuxSession(client=False, on_stream=on_stream, keepalive_interval=0), "127.0.0.1", 0
    )
    _, client = await loop.create_connection(lambda: MuxSession(client=True, keepalive_interval=0),
                                             "127.0.0.1", srv.sockets[0].getsockname()[1])
    tx = client.open_stream()
    attach(tx, Recorder())
    tx.write(b"hello")  # the SYN goes with the first frame
    rx = await accepted
    recv = rx.get_protocol()
    assert isinstance(recv, Recorder)
    await until(lambda: recv.data == b"hello")
    recv.events.clear()
    try:
        yield tx, rx
    finally:
        client.close()
        srv.close()


@asynccontextmanager
async def quic_pair() -> AsyncIterator[Pair]:
    loop = asyncio.get_running_loop()
    client_addr, server_addr = ("127.0.0.1", 1001), ("127.0.0.1", 1002)
    accepted: asyncio.Future[QuicStream] = loop.create_future()
    server: list[QuicSession] = []

    def on_stream(st: QuicStream) -> None:
        attach(st, Recorder())
        accepted.set_result(st)

    def to_server(data: bytes, addr: Any) -> None:
        def deliver() -> None:
            if not server:
                s = QuicSession.accept(data, client_addr, to_client, quic_configuration(is_client=False),
                                       on_stream=on_stream)
                assert s is not None
                server.append(s)
            else:
                server[0].datagram_received(data, client_addr)

        loop.call_soon(deliver)

    def to_client(data: bytes, addr: Any) -> None:
        loop.call_soon(client.datagram_received, data, server_addr)

    client = QuicSession.connect(server_addr, to_server, quic_configuration(is_client=True))
    await client.handshake
    tx = client.open_stream()
    attach(tx, Recorder())
    tx.write(b"hello")
    rx = await accepted
    recv = rx.get_protocol()
    assert isinstance(recv, Recorder)
    await until(lambda: recv.data == b"hello")
    recv.events.clear()
    try:
        yield tx, rx
    finally:
        client.close()
        for s in server:
            s.close()


@asynccontextmanager
async def kcp_pair() -> AsyncIterator[Pair]:
    loop = asyncio.get_running_loop()
    conns: list[KCPConn] = []

    def to(i: int) -> Callable[[bytes], None]:
        def send(datagram: bytes) -> None:
            loop.call_soon(conns[i].datagram_received, datagram)

        return send

    a = KCPConn(to(1))
    b = KCPConn(to(0))
    conns += [a, b]
    attach(a, Recorder())
    attach(b, Recorder())
    try:
        yield a, b
    finally:
        a.close()
        b.close()


PAIRS = {"yamux": yamux_pair, "quic": quic_pair, "kcp": kcp_pair}


@pytest.mark.parametrize("kind", PAIRS)
def test_real_transport_holds_while_paused_and_delivers_in_order_after_resume(kind: str) -> None:
    async def main() -> None:
        async with PAIRS[kind]() as (tx, rx):
            recv = rx.get_protocol()
            assert isinstance(recv, Recorder) and isinstance(rx, PausableTransport)
            rx.pause_reading()
            chunks = [bytes([65 + i]) * (1000 + i) for i in range(20)]
            for c in chunks:
                tx.write(c)
            half_close = tx.can_write_eof()
            if half_close:
                tx.write_eof()
            await until(lambda: rx._has_buffered() and (rx._eof_pending or not half_close))
            await until(lambda: sum(len(c) for c in chunks) <= _held(rx))
            assert recv.events == []
            rx.resume_reading()
            assert recv.events == []  # delivered from a later loop turn
            await until(lambda: recv.data == b"".join(chunks) and (recv.got_eof or not half_close))
            assert recv.events[-1] == "EOF" if half_close else True

    run(main)


def _held(t: PausableTransport) -> int:
    if isinstance(t, KCPConn):
        return sum(len(seg.data) for seg in t._kcp.rcv_queue)
    return sum(len(d) for d in t._rbuf)


def test_paused_yamux_stream_pushes_back_on_the_sender_until_resumed() -> None:
    """Held bytes are not credited: the sender's window (6 MiB) runs out and its protocol is told
    to pause writing; resuming delivers everything and the sender resumes."""

    async def main() -> None:
        async with yamux_pair() as (tx, rx):
            recv, send = rx.get_protocol(), tx.get_protocol()
            assert isinstance(recv, Recorder) and isinstance(send, Recorder)
            rx.pause_reading()
            big = bytes(range(256)) * (7 * 4096)  # 7 MiB
            tx.write(big)
            await until(lambda: send.write_events == ["pause"])
            assert recv.events == [] and tx.get_write_buffer_size() > 0
            rx.resume_reading()
            await until(lambda: recv.data == big)
            await until(lambda: send.write_events == ["pause", "resume"])
            assert tx.get_write_buffer_size() == 0

    run(main)


def test_quic_stream_both_fins_wait_for_the_held_eof() -> None:
    """The peer's FIN is held behind paused data: half-closing our side meanwhile must not end
    the stream before the held bytes and the EOF are delivered."""

    async def main() -> None:
        async with quic_pair() as (tx, rx):
            recv = rx.get_protocol()
            assert isinstance(recv, Recorder) and isinstance(rx, QuicStream)
            rx.pause_reading()
            tx.write(b"last words")
            tx.write_eof()
            await until(lambda: rx._eof_pending)
            rx.write_eof()  # our FIN too: both FINs are through, but the peer's is not delivered
            await turn()
            assert not recv.lost.done()
            rx.resume_reading()
            await until(lambda: recv.events == [b"last words", "EOF"])
            assert await asyncio.wait_for(recv.lost, 5) is None

    run(main)


@pytest.mark.parametrize("kind", PAIRS)
def test_real_transport_closed_while_paused_drops_the_held_bytes(kind: str) -> None:
    async def main() -> None:
        async with PAIRS[kind]() as (tx, rx):
            recv = rx.get_protocol()
            assert isinstance(recv, Recorder) and isinstance(rx, PausableTransport)
            rx.pause_reading()
            tx.write(b"never read")
            await until(rx._has_buffered)
            rx.close()
            rx.resume_reading()
            await turn()
            await turn()
            assert recv.events == []
            assert await asyncio.wait_for(recv.lost, 5) is None
            assert recv.events == []

    run(main)
