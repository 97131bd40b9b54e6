"""net/quic.py's pacer: quic-go's burst size and minimum delay in place of aioquic's."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("aioquic")

from aiofrp.net import quic


def _pacer(cwnd: int, rtt: float) -> Any:
    quic._import_aioquic()
    p = quic._Pacer(max_datagram_size=1350)
    p.update_rate(cwnd, rtt)
    return p


def test_fast_path_bursts_two_milliseconds_and_waits_at_least_one() -> None:
    p = _pacer(1 << 20, 0.001)  # 1 GB/s: aioquic would allow 16 packets, then one per 1.35 us
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


def test_sessions_use_it() -> None:
    import asyncio

    from aioquic.quic.connection import QuicConnection

    async def main() -> None:
        cfg = quic.quic_configuration(is_client=True, server_name="x")
        s = quic.QuicSession(QuicConnection(configuration=cfg), ("127.0.0.1", 1), lambda d, a: None)
        assert isinstance(s._conn._loss._pacer, quic._Pacer)

    asyncio.run(main())
