"""net/quic.py: which QUIC library serves which connection, the incoming-stream limit on both,
quic-go's pacing (burst size, minimum delay) in place of aioquic's, and quic-go's UDP socket
buffers."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable
from typing import Any

import pytest

from aiofrp.net import quic


def _pacer(cwnd: int, rtt: float) -> Any:
    p = quic.BurstPacer(1350)
    p.update_rate(cwnd, rtt)
    return p


def test_fast_path_bursts_two_milliseconds_and_waits_at_least_one() -> None:
    p = _pacer(1 << 20, 0.001)  # 1 GB/s: aioquic's pacer would allow 16 packets, then one per 1.35 us
    assert p.bucket_max == quic.PACING_BURST_TIME
    p.evaluation_time = 10.0
    p.bucket_time = p.bucket_max  # a full bucket: send now
    assert p.next_send_time(10.0) is None
    sent = 0
    while p.next_send_time(10.0) is None:
        p.update_after_send(10.0)
        sent += 1
    assert abs(sent - quic.PACING_BURST_TIME / p.packet_time) <= 1  # 2 ms of the rate in one burst
    assert p.next_send_time(10.0) == 10.0 + quic.PACING_MIN_DELAY


def test_slow_path_keeps_ten_packets_and_the_packet_time() -> None:
    p = _pacer(20 * 1350, 0.2)  # 135 kB/s: 10 ms per packet
    assert p.packet_time == pytest.approx(0.01)
    assert p.bucket_max == pytest.approx(quic.PACING_BURST_PACKETS * p.packet_time)
    p.evaluation_time = 5.0
    p.bucket_time = 0.0
    assert p.next_send_time(5.0) == pytest.approx(5.0 + p.packet_time)


def _initial(scid: bytes, dcid: bytes = b"\x11" * 8) -> bytes:
    """A client Initial's long header (then padding): enough for the backend choice."""
    head = bytes([0xC0]) + (1).to_bytes(4, "big") + bytes([len(dcid)]) + dcid + bytes([len(scid)]) + scid
    return head + bytes(1200 - len(head))


def test_parse_initial() -> None:
    assert quic.parse_initial(_initial(b"\x22" * 4)) == (1, b"\x11" * 8, b"\x22" * 4)
    assert quic.parse_initial(_initial(b"")) == (1, b"\x11" * 8, b"")
    assert quic.parse_initial(_initial(b"")[:1199]) is None  # a client's Initial fills 1200 bytes
    assert quic.parse_initial(b"\x40" + bytes(1300)) is None  # short header
    assert quic.parse_initial(b"\xd0" + _initial(b"")[1:]) is None  # long header, not Initial (0-RTT)
    assert quic.parse_initial(b"\xc0\x00\x00\x00\x02" + _initial(b"")[5:]) is None  # another version
    assert quic.parse_initial(_initial(b"")[:5] + bytes([21]) + bytes(1300)) is None  # id too long


Pump = Callable[[], None]


async def _pair(max_incoming_streams: int) -> tuple[quic.QuicSession, quic.QuicSession, Pump]:
    """A client and a server session (both qh3), datagrams handed across in memory."""
    to_server: list[bytes] = []
    to_client: list[bytes] = []
    server: list[quic.QuicSession] = []
    scfg = quic.quic_configuration(is_client=False)
    client = quic.QuicSession.connect(("127.0.0.1", 2), lambda d, a: to_server.append(d),
                                      quic.quic_configuration(is_client=True, server_name="x"))

    def pump() -> None:
        for _ in range(10):
            while to_server:
                d = to_server.pop(0)
                if not server:
                    s = quic.QuicSession.accept(d, ("127.0.0.1", 1), lambda d, a: to_client.append(d), scfg,
                                                max_incoming_streams=max_incoming_streams, on_stream=lambda st: None)
                    assert s is not None
                    server.append(s)
                else:
                    server[0].datagram_received(d, ("127.0.0.1", 1))
            if server:
                server[0]._transmit()
            while to_client:
                client.datagram_received(to_client.pop(0), ("127.0.0.1", 2))
            client._transmit()

    pump()
    await asyncio.wait_for(client.handshake, 5)
    return client, server[0], pump


def test_qh3_server_advertises_max_incoming_streams_and_the_client_can_use_them() -> None:
    """qh3 2.1 has no option for it (it advertises 100) and refuses to open a stream past the
    peer's limit, so frps's maxIncomingStreams (Go's default 100000) must reach the client."""

    async def main() -> None:
        client, server, pump = await _pair(777)
        assert server.backend is quic.QH3 and server.handshake.done() and not server.closed.done()
        assert client._conn._core.stream_limits[0] == 777  # what the client may open
        accepted: list[quic.QuicStream] = []

        def on_stream(st: quic.QuicStream) -> None:
            st.set_protocol(asyncio.Protocol())
            accepted.append(st)

        server._on_stream = on_stream
        for st in [client.open_stream() for _ in range(150)]:  # more than qh3's own 100, at once
            st.write(b"x")
        deadline = asyncio.get_running_loop().time() + 10
        while len(accepted) < 150 and asyncio.get_running_loop().time() < deadline:
            pump()
            await asyncio.sleep(0.005)  # the pacer's clock moves
        assert len(accepted) == 150
        client.close()
        server.close()

    asyncio.run(main())


def test_opening_past_the_peers_stream_limit_fails_cleanly() -> None:
    """qh3 2.1 raises ValueError past the peer's limit instead of waiting: a ConnectionResetError
    naming the limit, which the caller logs as a failed work connection."""

    async def main() -> None:
        client, server, _ = await _pair(3)
        opened = [client.open_stream() for _ in range(3)]
        with pytest.raises(ConnectionResetError, match="allows 3 streams"):
            client.open_stream()
        assert len(opened) == 3 and not client.closed.done()
        client.close()
        server.close()

    asyncio.run(main())


def _first_initial() -> bytes:
    """A real client Initial (qh3's, with an 8-byte source connection id)."""
    out: list[bytes] = []

    async def main() -> None:
        s = quic.QuicSession.connect(("127.0.0.1", 2), lambda d, a: out.append(d),
                                     quic.quic_configuration(is_client=True, server_name="x"))
        s.close()

    asyncio.run(main())
    return out[0]


def test_the_server_library_follows_the_clients_source_id() -> None:
    """A client with a source connection id gets qh3; one with an empty id (quic-go: Go frpc, Go's
    xtcp visitor) gets aioquic, with the burst pacer and the stream limit. qh3 2.1 answers such a
    client at its original destination id, which quic-go drops. (The handshakes with real quic-go
    clients: tests/compat/test_go_transports.py and test_go_xtcp.py.)"""
    data = _first_initial()
    _, dcid, scid = quic.parse_initial(data) or (0, b"", b"")
    assert len(scid) == 8
    # the same header with an empty source id (the payload no longer decrypts: only the choice matters)
    at = 6 + len(dcid)
    empty = data[:at] + b"\x00" + data[at + 1 + len(scid):]
    empty += bytes(max(0, 1200 - len(empty)))

    async def main() -> None:
        cfg = quic.quic_configuration(is_client=False)
        a = quic.QuicSession.accept(data, ("127.0.0.1", 1), lambda d, a: None, cfg, max_incoming_streams=777)
        b = quic.QuicSession.accept(empty, ("127.0.0.1", 1), lambda d, a: None, cfg, max_incoming_streams=777)
        assert a is not None and b is not None
        assert a.backend is quic.QH3 and b.backend is quic.AIOQUIC
        assert isinstance(b._conn._loss._pacer, quic.BurstPacer)
        assert b._conn._local_max_streams_bidi.value == 777
        a.close()
        b.close()

    asyncio.run(main())


def _rcvbuf_goal() -> int:
    with open("/proc/sys/net/core/rmem_max") as f:
        return min(quic.SOCKET_BUFFER, int(f.read()))


@pytest.mark.skipif(not os.path.exists("/proc/sys/net/core/rmem_max"), reason="Linux only: reads net.core.rmem_max")
def test_the_listener_socket_gets_quic_gos_buffers_and_a_dialer_connects() -> None:
    """A default ~200 KiB receive buffer dropped datagrams of a loopback burst (each drop halved the
    sender's congestion window): the listener's socket asks for quic-go's 7 MiB (dial_quic too)."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        cfg = quic.quic_configuration(is_client=False)
        transport, _ = await loop.create_datagram_endpoint(
            lambda: quic.QuicListener(cfg, lambda s: None, on_stream=lambda s, st: None),
            local_addr=("127.0.0.1", 0))
        try:
            sock = transport.get_extra_info("socket")
            # the kernel reports twice what was set (its bookkeeping share)
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) >= 2 * _rcvbuf_goal()
            port = sock.getsockname()[1]
            s = await asyncio.wait_for(quic.dial_quic("127.0.0.1", port, server_name="x"), 10)
            try:
                assert s.handshake.done() and s.backend is quic.QH3
            finally:
                s.close()
        finally:
            transport.close()

    asyncio.run(main())
