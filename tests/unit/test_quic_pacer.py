"""net/quic.py: quic-go's pacing (burst size, minimum delay) in place of qh3's, and quic-go's UDP
socket buffers."""

from __future__ import annotations

import os
import socket
from typing import Any

import pytest

from aiofrp.net import quic


def _pacer(cwnd: int, rtt: float) -> Any:
    p = quic.BurstPacer(1350)
    p.update_rate(cwnd, rtt)
    return p


def test_fast_path_bursts_two_milliseconds_and_waits_at_least_one() -> None:
    p = _pacer(1 << 20, 0.001)  # 1 GB/s: qh3's pacer would allow 16 packets, then one per 1.35 us
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


def test_start_pacing_fills_the_bucket() -> None:
    p = quic.BurstPacer(1350)
    assert p.next_send_time(1.0) is None  # no rate yet: no pacing
    p.start_pacing(2.0, 10 * 1350, 0.1)
    assert p.evaluation_time == 2.0 and p.bucket_time == p.bucket_max
    assert p.next_send_time(2.0) is None


def test_sessions_use_it() -> None:
    import asyncio

    from qh3.quic.connection import QuicConnection

    async def main() -> None:
        cfg = quic.quic_configuration(is_client=True, server_name="x")
        s = quic.QuicSession(QuicConnection(configuration=cfg), ("127.0.0.1", 1), lambda d, a: None)
        assert isinstance(s._conn._loss._pacer, quic.BurstPacer)

    asyncio.run(main())


def _rcvbuf_goal() -> int:
    with open("/proc/sys/net/core/rmem_max") as f:
        return min(quic.SOCKET_BUFFER, int(f.read()))


@pytest.mark.skipif(not os.path.exists("/proc/sys/net/core/rmem_max"), reason="Linux only: reads net.core.rmem_max")
def test_the_listener_socket_gets_quic_gos_buffers_and_a_dialer_connects() -> None:
    """A default ~200 KiB receive buffer dropped datagrams of a loopback burst (each drop halved the
    sender's congestion window): the listener's socket asks for quic-go's 7 MiB (dial_quic too)."""
    import asyncio

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
                assert s.handshake.done()
            finally:
                s.close()
        finally:
            transport.close()

    asyncio.run(main())
