"""The asyncio side of UDP over frp (net/udp.py): bounded queue, read deadline, pings, per-user
local sockets with idle expiry. Fake transports for the stream; real loopback UDP sockets."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

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
