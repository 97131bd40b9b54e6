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
