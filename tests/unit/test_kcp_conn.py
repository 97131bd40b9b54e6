"""net/kcp.py's driver of the sans-I/O KCP: when acknowledgements and data leave."""

from __future__ import annotations

import asyncio
import struct

from aiofrp.net.kcp import KCPConn
from aiofrp.net.udp_batch import MAX_SEGMENTS
from aiofrp.proto.kcp import CMD_ACK, CMD_PUSH, KCP, OVERHEAD, fec_decode

HDR = struct.Struct("<IBBHIIII")


class Sink(asyncio.Protocol):
    def __init__(self) -> None:
        self.data = bytearray()

    def data_received(self, data: bytes) -> None:
        self.data += data


def segments(datagrams: list[bytes]) -> list[tuple[int, int, int, int]]:
    """(cmd, wnd, sn, una) of every KCP segment in FEC-framed datagrams (parity skipped)."""
    out = []
    for d in datagrams:
        payload = fec_decode(d)
        if payload is None:
            continue
        pos = 0
        while len(payload) - pos >= OVERHEAD:
            _, cmd, _, wnd, _, sn, una, length = HDR.unpack_from(payload, pos)
            out.append((cmd, wnd, sn, una))
            pos += OVERHEAD + length
    return out


def test_a_burst_is_acknowledged_when_it_is_read_not_at_the_next_interval() -> None:
    """kcp-go (as frp runs it) acknowledges on its 20 ms flush tick; we acknowledge each burst
    of input as soon as it is handed up, with the window the drain left."""

    async def main() -> None:
        sent: list[bytes] = []
        conn = KCPConn(sent.append)
        sink = Sink()
        conn.set_protocol(sink)
        sink.connection_made(conn)
        peer_out: list[bytes] = []
        peer = KCP(1, peer_out.append)
        peer.set_nodelay(1, 20, 2, True)
        peer.set_mtu(1342)
        peer.send(b"x" * 5000)  # four segments
        peer.update(1)
        conn.write(b"hello")  # start conn's clock: its first flush goes out on this turn
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        sent.clear()
        tick = conn._kcp.ts_flush  # when the next interval flush is due
        for packet in peer_out:
            conn.datagram_received(b"\0\0\0\0\xf1\0" + struct.pack("<H", len(packet) + 2) + packet)
        for _ in range(3):
            await asyncio.sleep(0)
        assert conn._kcp.ts_flush == tick  # no interval flush ran meanwhile
        assert bytes(sink.data) == b"x" * 5000
        acks = [s for s in segments(sent) if s[0] == CMD_ACK]
        assert acks and acks[-1][2:] == (3, 4), acks  # the last segment's ACK, una past all four
        assert acks[-1][1] == 1024  # the whole receive window: nothing left queued after the drain
        conn.close()

    asyncio.run(main())


def test_a_window_wide_flush_leaves_in_gso_sized_runs_as_it_is_built() -> None:
    async def main() -> None:
        batches: list[list[bytes]] = []
        conn = KCPConn(lambda d: batches.append([d]), send_many=lambda ds: batches.append(list(ds)),
                       window=(1024, 1024))
        conn._kcp.rmt_wnd = 1024
        data = bytes(300 * 1300)
        conn.write(data)
        await asyncio.sleep(0)
        pushes = [len(b) for b in batches]
        assert sum(pushes) == -(-len(data) // conn._kcp.mss) and len(pushes) >= 300 // MAX_SEGMENTS
        assert max(pushes) <= MAX_SEGMENTS + 3  # a run, plus the parity its last group completed
        assert [s[0] for s in segments([d for b in batches for d in b])] == [CMD_PUSH] * sum(
            1 for b in batches for d in b if fec_decode(d) is not None)
        conn.close()

    asyncio.run(main())
