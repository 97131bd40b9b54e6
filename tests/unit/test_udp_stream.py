"""The asyncio side of UDP over frp (net/udp.py): bounded queue, read deadline, pings, per-user
local sockets with idle expiry. Fake transports for the stream; real loopback UDP sockets."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import pytest

from aiofrp.net.limiter import TokenBucket
from aiofrp.net.relay import work_conn_codecs
from aiofrp.net.udp import QUEUE_FRAMES, LocalForwarder, PacketConn, UserSocket
from aiofrp.proto import msg as m
from aiofrp.proto.udp import Datagram, PacketEncoder, PacketReader

pytestmark = pytest.mark.timeout(20)


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.closed = False
        self.reading = True
        self.protocol: Any = None

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def write(self, data: Any) -> None:
        self.written.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_queue_is_bounded_and_flushed_in_one_write() -> None:
    async def main() -> None:
        t = FakeTransport()
        pc = PacketConn("t", lambda d, a: None)
        pc.attach(t)
        pc.pause_writing()  # the transport pushes back: frames wait, then are dropped
        results = [pc.send_datagram(b"x" * 10, ("127.0.0.1", 1)) for _ in range(QUEUE_FRAMES + 500)]
        assert results.count(True) == QUEUE_FRAMES and pc.dropped == 500
        await asyncio.sleep(0)
        assert t.written == []
        pc.resume_writing()
        await asyncio.sleep(0)
        assert len(t.written) == 1  # one write for everything queued
        events = PacketReader().feed(t.written[0])
        assert events == [Datagram(b"x" * 10, ("127.0.0.1", 1))] * QUEUE_FRAMES
        pc.close()
        assert t.closed and pc.closed.done()

    run(main())


def test_encrypted_stream_round_trip_and_initial_bytes() -> None:
    """Bytes read behind the set-up message are decoded first; both directions use the codecs."""
    async def main() -> None:
        key = b"0123456789abcdef"
        peer_enc, peer_dec = work_conn_codecs(key, True)
        enc, dec = work_conn_codecs(key, True)
        assert peer_enc is not None and peer_dec is not None
        got: list[tuple[bytes, Any]] = []
        t = FakeTransport()
        pc = PacketConn("t", lambda d, a: got.append((d, a)), encode=enc, decode=dec)
        first = peer_enc(PacketEncoder().packet(b"early", ("10.0.0.1", 7)))
        pc.attach(t, first[:5])
        pc.data_received(first[5:] + peer_enc(PacketEncoder.ping()))
        assert got == [(b"early", ("10.0.0.1", 7))]
        pc.send_datagram(b"reply", ("10.0.0.1", 7))
        await asyncio.sleep(0)
        assert PacketReader().feed(peer_dec(b"".join(t.written))) == [Datagram(b"reply", ("10.0.0.1", 7))]

    run(main())


def test_read_deadline_and_pings() -> None:
    async def main() -> None:
        t = FakeTransport()
        pc = PacketConn("t", lambda d, a: None, read_timeout=0.2, ping_interval=0.05)
        pc.attach(t)
        for _ in range(4):  # the peer's pings keep it open past the deadline
            await asyncio.sleep(0.1)
            pc.data_received(PacketEncoder.ping())
        assert not pc.is_closed
        assert b"".join(t.written).count(PacketEncoder.ping()) >= 3
        await asyncio.wait_for(pc.closed, 1)  # silence: closed after 0.2 s
        assert t.closed

    run(main())


def test_bad_frame_closes_stream() -> None:
    async def main() -> None:
        t = FakeTransport()
        closed: list[PacketConn] = []
        pc = PacketConn("t", lambda d, a: None, on_close=closed.append)
        pc.attach(t)
        pc.data_received(b"Z" + (2).to_bytes(8, "big") + b"{}")
        assert pc.is_closed and closed == [pc] and t.closed
        assert not pc.send_datagram(b"x", ("127.0.0.1", 1))

    run(main())


def test_local_forwarder_per_user_sockets_and_idle_expiry() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        sources: set[Any] = set()

        class Echo(asyncio.DatagramProtocol):
            def connection_made(self, transport: Any) -> None:
                self.transport = transport

            def datagram_received(self, data: bytes, addr: Any) -> None:
                sources.add(addr)
                self.transport.sendto(b"re:" + data, addr)

        echo_t, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
        local = echo_t.get_extra_info("sockname")
        replies: list[tuple[bytes, Any]] = []
        fwd = LocalForwarder("t", local, 1500, lambda d, a: replies.append((d, a)), idle_timeout=0.6)
        users = [("192.0.2.1", 1000 + i) for i in range(3)]
        for i, u in enumerate(users):
            for k in range(2):
                fwd.deliver(f"{i}-{k}".encode(), u)
        for _ in range(100):
            if len(replies) == 6:
                break
            await asyncio.sleep(0.01)
        assert sorted(replies) == sorted((f"re:{i}-{k}".encode(), u) for i, u in enumerate(users) for k in range(2))
        assert fwd.peers == 3 and len(sources) == 3  # one local socket per user address
        await asyncio.sleep(1.5)  # idle: every socket expires
        assert fwd.peers == 0
        fwd.deliver(b"again", users[0])  # a new socket on demand
        for _ in range(100):
            if len(replies) == 7:
                break
            await asyncio.sleep(0.01)
        assert replies[-1] == (b"re:again", users[0])
        fwd.close()
        echo_t.close()

    run(main())


def test_user_socket_truncates_to_packet_size() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        got: list[bytes] = []
        us = UserSocket(lambda d, a: got.append(d), 100)
        t, _ = await loop.create_datagram_endpoint(lambda: us, local_addr=("127.0.0.1", 0))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"a" * 300, t.get_extra_info("sockname"))
            for _ in range(100):
                if got:
                    break
                await asyncio.sleep(0.01)
        assert got == [b"a" * 100]
        t.close()

    run(main())


def test_ping_frame_is_go_ping() -> None:
    assert PacketEncoder.ping() == m.encode(m.Ping())


# -- bandwidth limit --------------------------------------------------------------------------


async def _until(cond: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


class TimedTransport(FakeTransport):
    """Records when each write happened."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def write(self, data: Any) -> None:
        self.times.append(time.monotonic())
        super().write(data)


def test_limit_never_sends_faster_than_the_bucket_and_keeps_order() -> None:
    """Sent frames leave at most ``burst + rate * t`` bytes by time t, in order, none lost."""

    async def main() -> None:
        rate, burst = 400_000.0, 20_000.0
        t = TimedTransport()
        pc = PacketConn("t", lambda d, a: None, limiter=TokenBucket(rate, burst))
        pc.attach(t)
        t0 = time.monotonic()
        sent = [(bytes([i % 256]) * 1000, ("127.0.0.1", i + 1)) for i in range(150)]
        for data, addr in sent:
            assert pc.send_datagram(data, addr)
        total = sum(len(PacketEncoder().packet(d, a)) for d, a in sent)
        await _until(lambda: sum(map(len, t.written)) == total)
        out = 0
        for chunk, when in zip(t.written, t.times, strict=True):
            out += len(chunk)
            assert out <= burst + rate * (when - t0) + 1, (out, when - t0)
        assert len(t.written) > 3  # it did have to wait
        assert PacketReader().feed(b"".join(t.written)) == [Datagram(d, a) for d, a in sent]
        pc.close()

    run(main())


@pytest.mark.parametrize("wire", [False, True])
def test_limit_counts_messages_or_wire_bytes(wire: bool) -> None:
    """frps (Go's server mode) meters the messages inside compression, frpc (client mode) the
    compressed bytes on the connection: of compressible datagrams, the first burst carries more
    messages when the wire is metered."""

    async def main() -> None:
        burst = 10_000.0
        enc, _ = work_conn_codecs(None, True)
        _, peer_dec = work_conn_codecs(None, True)
        assert peer_dec is not None
        t = FakeTransport()
        pc = PacketConn("t", lambda d, a: None, encode=enc, limiter=TokenBucket(1.0, burst), limit_wire=wire)
        pc.attach(t)
        for i in range(40):
            pc.send_datagram(b"a" * 1000, ("127.0.0.1", i + 1))
        await asyncio.sleep(0)
        wire_bytes = sum(map(len, t.written))
        messages = len(peer_dec(b"".join(t.written)))
        assert wire_bytes <= burst
        if wire:
            assert messages > 2 * burst  # base64 of "a"s compresses well
        else:
            assert messages <= burst
        pc.close()

    run(main())


@pytest.mark.parametrize("wire", [False, True])
def test_limit_holds_received_bytes_with_reading_paused(wire: bool) -> None:
    """Received bytes beyond the bucket are held (reading paused) and handed up in order once it
    refills; an EOF while bytes are held ends the stream after they are delivered."""

    async def main() -> None:
        got: list[tuple[bytes, Any]] = []
        t = FakeTransport()
        pc = PacketConn("t", lambda d, a: got.append((d, a)), limiter=TokenBucket(200_000.0, 10_000.0),
                        limit_wire=wire)
        pc.attach(t)
        sent = [(bytes([i]) * 900, ("10.0.0.1", i + 1)) for i in range(60)]
        stream = b"".join(PacketEncoder().packet(d, a) for d, a in sent)
        pc.data_received(stream[:40_000])
        assert 0 < len(got) < 10 and not t.reading
        pc.data_received(stream[40_000:])  # a transport may deliver a little after pause_reading
        assert pc.eof_received() is True  # held: not closed yet
        assert not pc.closed.done()
        await _until(lambda: pc.closed.done())
        assert got == sent

    run(main())


# -- frps's sudp bridge between a v1 and a v2 end ---------------------------------------------------


def test_packet_bridge_reframes_messages_and_passes_pings_one_way() -> None:
    from aiofrp.net.udp import PacketBridge

    async def main() -> None:
        closed: list[Any] = []
        vt, wt = FakeTransport(), FakeTransport()
        v2, v1 = PacketEncoder(True), PacketEncoder(False)
        early = v2.packet(b"early", ("10.0.0.1", 5))  # read behind the visitor's NewVisitorConn
        bridge = PacketBridge("s", (vt, early, False), (None, None), True, (wt, b"", False), (None, None), False,
                              on_close=closed.append)
        bridge.visitor.data_received(v2.packet(b"up", ("10.0.0.1", 5)) + v2.ping_frame())
        bridge.work.data_received(v1.packet(b"down!", ("10.0.0.1", 5)) + v1.ping_frame())
        await asyncio.sleep(0)
        # the provider (v1) gets the visitor's datagrams in v1 frames, not its ping
        assert PacketReader(False).feed(b"".join(wt.written)) == [
            Datagram(b"early", ("10.0.0.1", 5)), Datagram(b"up", ("10.0.0.1", 5))]
        # the visitor (v2) gets the provider's datagram and its ping in v2 frames
        assert b"".join(vt.written) == v2.packet(b"down!", ("10.0.0.1", 5)) + v2.ping_frame()
        assert (bridge.bytes_a_to_b, bridge.bytes_out) == (7, 5)
        bridge.work.eof_received()  # one side ends: both close, the proxy hears it once
        assert vt.closed and wt.closed and bridge.done.done() and closed == [bridge]
        bridge.close()
        assert closed == [bridge]

    run(main())


def test_a_stream_logs_with_its_proxys_prefixes(caplog: pytest.LogCaptureFixture) -> None:
    """Given the proxy's logger, a stream's lines carry its ``[RUNID] [NAME] `` (Go logs them with
    the proxy's xlog); given a name, ``[NAME] ``."""
    from aiofrp.log import XLog

    async def main() -> None:
        for name, prefix in ((XLog("aiofrp.test", "0123abcd", "u1"), "[0123abcd] [u1] "), ("u2", "[u2] ")):
            pc = PacketConn(name, lambda d, a: None)
            pc.attach(FakeTransport(), b"\x00\x00\x00\x00\x00\x00\x00\x05junk!", False)  # not a frp message
            await asyncio.sleep(0)
            assert any(r.getMessage().startswith(prefix + "bad data on udp stream: ") for r in caplog.records), \
                [r.getMessage() for r in caplog.records]
            assert all(r.name == "aiofrp.net.udp" for r in caplog.records)
            caplog.clear()

    with caplog.at_level("WARNING", logger="aiofrp.net.udp"):
        run(main())
