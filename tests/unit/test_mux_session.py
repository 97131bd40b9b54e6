"""The asyncio yamux driver over a real loopback connection: streams as transports."""

from __future__ import annotations

import asyncio
import logging

import pytest

from aiofrp.net.mux import MuxSession, MuxStream


class Collect(asyncio.Protocol):
    def __init__(self) -> None:
        self.data = bytearray()
        self.eof = asyncio.get_running_loop().create_future()
        self.lost = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.data += data

    def eof_received(self) -> bool:
        if not self.eof.done():
            self.eof.set_result(None)
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)


class Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = transport

    def data_received(self, data: bytes) -> None:
        if bytes(data).startswith(b"boom"):
            raise RuntimeError("protocol bug")
        self.t.write(bytes(data))  # type: ignore[attr-defined]

    def eof_received(self) -> bool:
        self.t.write_eof()  # type: ignore[attr-defined]
        return True


async def _pair() -> tuple[MuxSession, MuxSession, asyncio.AbstractServer]:
    loop = asyncio.get_running_loop()

    def on_stream(st: MuxStream) -> None:
        proto = Echo()
        st.set_protocol(proto)
        proto.connection_made(st)

    server_side: list[MuxSession] = []

    def factory() -> MuxSession:
        s = MuxSession(client=False, on_stream=on_stream, keepalive_interval=0)
        server_side.append(s)
        return s

    srv = await loop.create_server(factory, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    _, client = await loop.create_connection(lambda: MuxSession(client=True, keepalive_interval=0),
                                             "127.0.0.1", port)
    return client, server_side, srv  # type: ignore[return-value]


def _open(client: MuxSession) -> tuple[MuxStream, Collect]:
    st = client.open_stream()
    proto = Collect()
    st.set_protocol(proto)
    proto.connection_made(st)
    return st, proto


async def _wait_for(cond, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.01)


def test_echo_and_half_close_over_streams() -> None:
    async def main() -> None:
        client, _, srv = await _pair()
        a, pa = _open(client)
        b, pb = _open(client)
        big = bytes(range(256)) * 40000  # 10 MB: more than the 6 MiB window, exercises window updates
        a.write(big)
        b.write(b"hello")
        a.write_eof()
        await asyncio.wait_for(pa.eof, 10)
        assert bytes(pa.data) == big
        await _wait_for(lambda: bytes(pb.data) == b"hello")
        client.close()
        srv.close()

    asyncio.run(main())


def test_failing_stream_is_reset_and_the_session_keeps_serving(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        client, _, srv = await _pair()
        bad, pbad = _open(client)
        good, pgood = _open(client)
        with caplog.at_level(logging.ERROR, logger="aiofrp.net.mux"):
            bad.write(b"boom")
            assert await asyncio.wait_for(pbad.lost, 5) is not None  # reset by the peer
        good.write(b"still here")
        await _wait_for(lambda: bytes(pgood.data) == b"still here")
        assert not client.is_closed
        assert "callback failed" in caplog.text
        client.close()
        srv.close()

    asyncio.run(main())


def test_sessions_measure_a_round_trip_and_autotune_their_windows() -> None:
    async def main() -> None:
        client, server_side, srv = await _pair()
        a, pa = _open(client)
        assert client._s.window == 256 * 1024  # 256 KiB until the peer needs more
        a.write(b"hello")
        await _wait_for(lambda: bytes(pa.data) == b"hello")
        # each side pinged once the other had spoken
        server: MuxSession = server_side[0]  # type: ignore[index]
        await _wait_for(lambda: client._s.rtt > 0 and server._s.rtt > 0)
        big = bytes(range(256)) * 40000
        a.write(big)
        a.write_eof()
        await asyncio.wait_for(pa.eof, 10)
        assert bytes(pa.data) == b"hello" + big
        assert 256 * 1024 <= server._s.window <= 6 * 1024 * 1024
        client.close()
        srv.close()

    asyncio.run(main())


class _CountingTransport:
    """Delegates to the session's real transport and counts the writes that reach it."""

    def __init__(self, inner: asyncio.Transport) -> None:
        self.inner = inner
        self.writes = 0

    def writelines(self, data: list[bytes]) -> None:
        self.writes += 1
        self.inner.writelines(data)

    def write(self, data: bytes) -> None:
        self.writes += 1
        self.inner.write(data)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def _count_writes(session: MuxSession) -> _CountingTransport:
    """Put a :class:`_CountingTransport` between ``session`` and its transport."""
    counting = _CountingTransport(session.transport)  # type: ignore[arg-type]
    session.transport = counting  # type: ignore[assignment]
    return counting


async def _a_later_lone_write_leaves_at_once(counting: _CountingTransport, stream: MuxStream) -> None:
    """In a later turn of the loop, a lone write (a ping-pong) reaches the transport at once."""
    await asyncio.sleep(0)
    before = counting.writes
    stream.write(b"ping")
    assert counting.writes == before + 1


def test_a_lone_write_leaves_at_once_and_the_rest_of_a_loop_turn_in_one_transport_write() -> None:
    async def main() -> None:
        client, _, srv = await _pair()
        opened = [_open(client) for _ in range(8)]  # each SYN leaves at once (see open_stream)
        await asyncio.sleep(0)
        counting = _count_writes(client)
        for i, (st, _) in enumerate(opened):
            st.write(b"stream %d" % i)  # 8 data frames in one turn of the loop
        assert counting.writes == 1  # the first at once, the other 7 wait for the end of the turn
        await asyncio.sleep(0)
        assert counting.writes == 2
        for i, (_, proto) in enumerate(opened):
            await _wait_for(lambda p=proto, i=i: bytes(p.data) == b"stream %d" % i)
        # a lone write in a later turn (a ping-pong) goes out at once, and what follows it in
        # the same turn waits for one flush at the turn's end
        await _a_later_lone_write_leaves_at_once(counting, opened[0][0])
        after_ping = counting.writes
        opened[1][0].write(b"a")
        opened[2][0].write(b"b")
        assert counting.writes == after_ping
        await asyncio.sleep(0)
        assert counting.writes == after_ping + 1
        await _wait_for(lambda: bytes(opened[2][1].data).endswith(b"b"))
        client.close()
        srv.close()

    asyncio.run(main())


def test_a_held_session_sends_a_new_streams_syn_with_its_first_message_in_one_write() -> None:
    async def main() -> None:
        client, _, srv = await _pair()
        counting = _count_writes(client)
        assert client.hold()
        assert not client.hold()  # already held: the first holder releases
        st, proto = _open(client)
        st.write(b"first message")
        st.write(b", and more")
        assert counting.writes == 0  # neither the SYN nor the data left yet
        client.release()
        assert counting.writes == 1  # SYN and both writes together
        await _wait_for(lambda: bytes(proto.data) == b"first message, and more")
        # unheld, a new stream's SYN leaves at once again (see open_stream)
        before = counting.writes
        _open(client)
        assert counting.writes == before + 1
        client.close()
        srv.close()

    asyncio.run(main())


def test_flush_at_end_of_turn_holds_even_the_first_write_of_the_turn() -> None:
    async def main() -> None:
        client, _, srv = await _pair()
        opened = [_open(client) for _ in range(3)]
        await asyncio.sleep(0)
        counting = _count_writes(client)
        client.flush_at_end_of_turn()
        for i, (st, _) in enumerate(opened):
            st.write(b"stream %d" % i)
        assert counting.writes == 0  # without it, the first write would have left at once
        await asyncio.sleep(0)
        assert counting.writes == 1
        for i, (_, proto) in enumerate(opened):
            await _wait_for(lambda p=proto, i=i: bytes(p.data) == b"stream %d" % i)
        # the next turn is back to a lone write leaving at once
        await _a_later_lone_write_leaves_at_once(counting, opened[0][0])
        client.close()
        srv.close()

    asyncio.run(main())


def test_a_write_then_abort_or_close_in_the_same_turn_still_delivers_the_write() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        got: list[Collect] = []

        def on_stream(st: MuxStream) -> None:
            proto = Collect()
            got.append(proto)
            st.set_protocol(proto)
            proto.connection_made(st)

        srv = await loop.create_server(
            lambda: MuxSession(client=False, on_stream=on_stream, keepalive_interval=0), "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        _, client = await loop.create_connection(lambda: MuxSession(client=True, keepalive_interval=0),
                                                 "127.0.0.1", port)
        st, _ = _open(client)
        st.write(b"last words")
        st.abort()  # RST follows the data, as when every write was flushed at once
        await _wait_for(lambda: len(got) == 1)
        assert isinstance(await asyncio.wait_for(got[0].lost, 5), ConnectionResetError)
        assert bytes(got[0].data) == b"last words"
        st2, _ = _open(client)
        st2.write(b"goodbye")
        client.close()  # the session's close writes what the streams queued first
        await _wait_for(lambda: len(got) == 2)
        await asyncio.wait_for(got[1].lost, 5)
        assert bytes(got[1].data) == b"goodbye"
        srv.close()

    asyncio.run(main())
