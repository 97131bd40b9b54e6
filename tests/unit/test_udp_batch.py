"""net/udp_batch.py: runs of datagrams one GSO send can carry, and that the peer receives exactly
the datagrams sent (real loopback UDP sockets)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from aiofrp.net import udp_batch
from aiofrp.net.udp_batch import MAX_SEGMENTS, DatagramBatcher, runs


def sizes(*n: int) -> list[bytes]:
    return [bytes([i % 251]) * k for i, k in enumerate(n)]


def test_runs_group_equal_sizes_with_a_shorter_last() -> None:
    assert runs(sizes(1350, 1350, 1350, 200, 1350, 1350)) == [(0, 4), (4, 6)]
    assert runs(sizes(100, 1350, 1350)) == [(0, 1), (1, 3)]  # a longer one cannot follow
    assert runs(sizes(5)) == [(0, 1)]
    assert runs([]) == []


def test_runs_respect_segment_and_byte_limits() -> None:
    big = runs(sizes(*[1350] * 100))
    assert all(j - i <= 65000 // 1350 for i, j in big) and big[-1][1] == 100
    small = runs(sizes(*[10] * 200))
    assert all(j - i <= MAX_SEGMENTS for i, j in small) and small[-1][1] == 200


class Sink(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.got: list[bytes] = []
        self.more = asyncio.Event()

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.got.append(data)
        self.more.set()


async def _roundtrip(connected: bool) -> list[bytes]:
    loop = asyncio.get_running_loop()
    rt, sink = await loop.create_datagram_endpoint(Sink, local_addr=("127.0.0.1", 0))
    rt.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    raddr = rt.get_extra_info("sockname")
    if connected:
        st, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, remote_addr=raddr)
    else:
        st, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
    b = DatagramBatcher(st)
    sent = sizes(*([1350] * 60 + [700] + [1350] * 3 + [40, 41, 42]))
    b.send(sent, None if connected else raddr)
    async with asyncio.timeout(5):
        while len(sink.got) < len(sent):
            sink.more.clear()
            await sink.more.wait()
    b.close()
    st.close()
    rt.close()
    assert sorted(sink.got) == sorted(sent)
    return sink.got


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])  # uvloop's socket is a pseudo-socket
@pytest.mark.parametrize("connected", [True, False])
def test_peer_receives_each_datagram_as_sent(connected: bool, loop: str) -> None:
    import uvloop

    runner = uvloop.run if loop == "uvloop" else asyncio.run
    runner(_roundtrip(connected))


def test_without_gso_falls_back_to_sendto(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(udp_batch, "_gso_broken", True)
    asyncio.run(_roundtrip(False))


async def _gro_roundtrip(gro: bool) -> tuple[list[bytes], list[int]]:
    """A GSO sender to a GroUDP receiver: every datagram back, in order and as sent."""
    loop = asyncio.get_running_loop()
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    st, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
    rx.connect(st.get_extra_info("sockname"))
    got: list[bytes] = []
    reads: list[int] = []
    more = asyncio.Event()

    def on_datagrams(datagrams: list[bytes], addr: object) -> None:
        assert addr == st.get_extra_info("sockname")
        got.extend(datagrams)
        reads.append(len(datagrams))
        more.set()

    udp = udp_batch.GroUDP(rx, on_datagrams, lambda exc: None, gro=gro)
    b = DatagramBatcher(st)
    sent = sizes(*([1350] * 40 + [700] + [1350] * 3 + [40, 41, 42]))
    b.send(sent, rx.getsockname())
    async with asyncio.timeout(5):
        while len(got) < len(sent):
            more.clear()
            await more.wait()
    b.close()
    st.close()
    udp.close()
    assert got == sent  # loopback keeps the order; GRO keeps the boundaries
    return got, reads


@pytest.mark.skipif(udp_batch._gso_broken, reason="Linux only: UDP GSO/GRO")
def test_gro_reader_cuts_coalesced_runs_back_into_the_datagrams_sent() -> None:
    _, reads = asyncio.run(_gro_roundtrip(True))
    assert max(reads) > 1  # at least one read carried a coalesced run


def test_reader_without_gro_reads_one_datagram_at_a_time() -> None:
    _, reads = asyncio.run(_gro_roundtrip(False))
    assert set(reads) == {1}


def test_connected_reader_reports_a_gone_peer() -> None:
    """A send to a port nobody listens on comes back as ICMP port unreachable: on_error gets it
    (the QUIC session then ends instead of waiting for its idle timeout)."""

    async def main() -> None:
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        errors: list[Exception] = []
        seen = asyncio.Event()

        def on_error(exc: Exception) -> None:
            errors.append(exc)
            seen.set()

        udp = await udp_batch.GroUDP.connect("127.0.0.1", port, lambda d, a: None, on_error)
        async with asyncio.timeout(5):
            while not errors:
                udp.sendto(b"x")
                try:
                    await asyncio.wait_for(seen.wait(), 0.1)
                except TimeoutError:
                    pass
        udp.close()
        assert isinstance(errors[0], ConnectionRefusedError)

    asyncio.run(main())
