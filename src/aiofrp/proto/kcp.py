"""Sans-I/O KCP (the ARQ protocol of skywind3000/kcp as used by xtaci/kcp-go) and kcp-go's FEC framing.

:class:`KCP` is fed received packets with :meth:`KCP.input`, application bytes with
:meth:`KCP.send`, and the clock with :meth:`KCP.update` (milliseconds); it hands packets to send
to the ``output`` callable and received bytes out of :meth:`KCP.recv`. :meth:`KCP.check` says
when ``update`` is next due. frp runs it in stream mode (fragment numbers always 0).

Segment header (24 bytes, little-endian): conv u32, cmd u8, frg u8, wnd u16, ts u32, sn u32,
una u32, len u32, then ``len`` data bytes; several segments may share one datagram.

kcp-go wraps every datagram in an FEC header: seqid u32 LE, flag u16 LE (0xF1 data, 0xF2 parity),
and for data packets a u16 LE size (counting itself) before the KCP bytes. frp configures 10 data
+ 3 parity shards: :class:`FECEncoder` sends Reed–Solomon parity (``proto/reedsolomon.py``,
klauspost's code) after every 10 data shards and :class:`FECDecoder` rebuilds lost data shards
from it, so a lost datagram need not wait for KCP's retransmission.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice

from .errors import ProtocolError
from .reedsolomon import ReedSolomon

__all__ = ["KCP", "FECDecoder", "FECEncoder", "KCPError", "fec_decode"]

CMD_PUSH = 81
CMD_ACK = 82
CMD_WASK = 83
CMD_WINS = 84
ASK_SEND = 1
ASK_TELL = 2

RTO_NDL = 30
RTO_MIN = 100
RTO_DEF = 200
RTO_MAX = 60000
WND_SND = 32
WND_RCV = 128
MTU_DEF = 1400
OVERHEAD = 24
INTERVAL = 100
DEADLINK = 20
THRESH_INIT = 2
THRESH_MIN = 2
PROBE_INIT = 7000
# Beyond kcp-go: a receive window that reopens after being full is told this many more times
# (one per interval) until data arrives, not once: a sender that saw window 0 otherwise waits
# PROBE_INIT (7 s) to ask again when that one WINS datagram is lost
WINDOW_TELLS = 8
PROBE_LIMIT = 120000
FASTACK_LIMIT = 5
RESCAN_MAX = 10_000  # ms: the longest a flush goes without looking at every segment of snd_buf

_HDR = struct.Struct("<IBBHIIII")
_MASK = 0xFFFFFFFF

FEC_DATA = 0xF1
FEC_PARITY = 0xF2
FEC_HEADER = 6
FEC_HEADER_PLUS2 = 8
FEC_MAX_LATENCY = 500  # ms: kcp-go's maxFECEncodeLatency
FEC_GROUPS = 3  # open groups kept by the decoder (kcp-go keeps 3 groups' worth of shards)
FEC_MAX_SHARD = 1500  # bytes: kcp-go's mtuLimit; larger datagrams are not shards
_FEC_HDR = struct.Struct("<IH")
_FEC_DATA_HDR = struct.Struct("<IHH")  # seqid, flag, size: a data shard's first 8 bytes


class KCPError(ProtocolError):
    """A datagram that is not KCP for this conversation."""


_HALF = 0x80000000  # (a - b) & _MASK below this: a is b or after it (hot loops test it inline)


def _diff(later: int, earlier: int) -> int:
    """Signed 32-bit difference (sequence numbers and timestamps wrap)."""
    d = (later - earlier) & _MASK
    return d - (1 << 32) if d & 0x80000000 else d


@dataclass(slots=True)
class _Seg:
    cmd: int = 0
    frg: int = 0
    wnd: int = 0
    ts: int = 0
    sn: int = 0
    una: int = 0
    data: bytes = b""
    resendts: int = 0
    rto: int = 0
    fastack: int = 0
    xmit: int = 0
    acked: bool = False  # acknowledged out of order, still in snd_buf until the ones before go


class KCP:
    def __init__(self, conv: int, output: Callable[[bytes], None], *, stream: bool = True) -> None:
        self.conv = conv
        self.output = output
        self.stream = stream
        self.mtu = MTU_DEF
        self.mss = self.mtu - OVERHEAD
        self.snd_una = 0
        self.snd_nxt = 0
        self.rcv_nxt = 0
        self.ssthresh = THRESH_INIT
        self.rx_rttval = 0
        self.rx_srtt = 0
        self.rx_rto = RTO_DEF
        self.rx_minrto = RTO_MIN
        self.snd_wnd = WND_SND
        self.rcv_wnd = WND_RCV
        self.rmt_wnd = WND_RCV
        self.cwnd = 0
        self.incr = 0
        self.probe = 0
        self.current = 0
        self.interval = INTERVAL
        self.ts_flush = INTERVAL
        self.nodelay = 0
        self.updated = False
        self.ts_probe = 0
        self.probe_wait = 0
        self.dead_link = DEADLINK
        self.state = 0
        self.fastresend = 0
        self.nocwnd = False
        self.snd_queue: deque[_Seg] = deque()
        self.rcv_queue: deque[_Seg] = deque()
        self.snd_buf: deque[_Seg] = deque()
        self._acked = 0  # segments of snd_buf marked acked
        self._resend_at = 0  # no segment of snd_buf is due for a timeout resend before this (ms)
        self._fastack_due = True  # a segment may have collected its fast acknowledgements
        self._tells = 0  # flushes that still tell the peer our window reopened
        self._tell_at = 0  # not before this (ms): one tell per interval
        self.rcv_buf: list[_Seg] = []
        self.acklist: list[tuple[int, int]] = []
        self.fast_retransmits = 0
        """Segments sent again because later ones were acknowledged first: the link lost (or
        reordered) something."""
        self.timeout_retransmits = 0
        """Segments sent again after their retransmission timeout (lost, or only late)."""
        self.out_of_order = 0
        """Segments that arrived ahead of one still missing: the link lost (or reordered) something."""

    # -- configuration (kcp-go's SetNoDelay / SetWindowSize / SetMtu) --------------------------

    def set_nodelay(self, nodelay: int, interval: int, resend: int, nc: bool) -> None:
        self.nodelay = nodelay
        self.rx_minrto = RTO_NDL if nodelay else RTO_MIN
        self.interval = min(max(interval, 10), 5000)
        self.fastresend = resend
        self.nocwnd = nc

    def set_wndsize(self, snd: int, rcv: int) -> None:
        if snd > 0:
            self.snd_wnd = snd
        if rcv > 0:
            self.rcv_wnd = max(rcv, WND_RCV)

    def set_mtu(self, mtu: int) -> None:
        if mtu < 50:
            raise ValueError(f"KCP mtu {mtu} is too small")
        self.mtu = mtu
        self.mss = mtu - OVERHEAD

    # -- application side --------------------------------------------------------------------

    def send(self, data: bytes | bytearray | memoryview) -> None:
        """Queue bytes (stream mode: appended to the last unsent segment first)."""
        view = memoryview(data if isinstance(data, bytes) else bytes(data))  # bytes: no copy
        if not view:
            return
        mss = self.mss
        if self.stream and self.snd_queue:
            last = self.snd_queue[-1]
            room = mss - len(last.data)
            if room > 0:
                take = view[:room]
                last.data = last.data + take.tobytes()
                view = view[len(take):]
        append = self.snd_queue.append
        for start in range(0, len(view), mss):
            append(_Seg(data=view[start:start + mss].tobytes()))

    def recv(self) -> bytes:
        """All bytes received in order so far (b"" if none)."""
        if not self.rcv_queue:
            return b""
        recover = len(self.rcv_queue) >= self.rcv_wnd
        out = b"".join(seg.data for seg in self.rcv_queue)
        self.rcv_queue.clear()
        self._move_rcv_buf()
        if recover and len(self.rcv_queue) < self.rcv_wnd:
            self.probe |= ASK_TELL  # tell the peer our window opened again
            self._tells = WINDOW_TELLS
            self._tell_at = (self.current + self.interval) & _MASK
        return out

    def wait_snd(self) -> int:
        """Segments not yet acknowledged (queued or in flight)."""
        return len(self.snd_buf) - self._acked + len(self.snd_queue)

    # -- packets in --------------------------------------------------------------------------

    def input(self, data: bytes | bytearray | memoryview) -> bool:
        """Process one received datagram's KCP payload; KCPError if it is not ours. True when
        acknowledgements moved the send window (kcp-go then flushes at once: queued data need
        not wait for the next interval)."""
        if len(data) < OVERHEAD:
            raise KCPError(f"KCP packet of {len(data)} bytes is shorter than a segment header")
        prev_una = self.snd_una
        max_ack = -1
        latest_ts = 0
        pos = 0
        n = len(data)
        while n - pos >= OVERHEAD:
            conv, cmd, frg, wnd, ts, sn, una, length = _HDR.unpack_from(data, pos)
            if conv != self.conv:
                raise KCPError(f"KCP conversation {conv} is not ours ({self.conv})")
            pos += OVERHEAD
            if n - pos < length:
                raise KCPError(f"KCP segment of {length} bytes overruns the packet")
            if cmd not in (CMD_PUSH, CMD_ACK, CMD_WASK, CMD_WINS):
                raise KCPError(f"unknown KCP command {cmd}")
            self.rmt_wnd = wnd
            self._parse_una(una)
            self._shrink_buf()
            if cmd == CMD_ACK:
                if _diff(self.current, ts) >= 0:
                    self._update_ack(_diff(self.current, ts))
                self._parse_ack(sn)
                self._shrink_buf()
                if max_ack < 0 or _diff(sn, max_ack) > 0:
                    max_ack, latest_ts = sn, ts
            elif cmd == CMD_PUSH:
                self._tells = 0  # the peer is sending again: it knows the window
                if _diff(sn, self.rcv_nxt + self.rcv_wnd) < 0:
                    self.acklist.append((sn, ts))
                    ahead = (sn - self.rcv_nxt) & _MASK  # inside the window: below rcv_wnd
                    if ahead < self.rcv_wnd:
                        if ahead:
                            self.out_of_order += 1
                        self._parse_data(_Seg(cmd, frg, wnd, ts, sn, una, bytes(data[pos:pos + length])))
            elif cmd == CMD_WASK:
                self.probe |= ASK_TELL
            pos += length
        if max_ack >= 0:
            self._parse_fastack(max_ack, latest_ts)
        if _diff(self.snd_una, prev_una) > 0 and self.cwnd < self.rmt_wnd:
            mss = self.mss
            if self.cwnd < self.ssthresh:
                self.cwnd += 1
                self.incr += mss
            else:
                self.incr = max(self.incr, mss)
                self.incr += (mss * mss) // self.incr + mss // 16
                if (self.cwnd + 1) * mss <= self.incr:
                    self.cwnd = (self.incr + mss - 1) // mss if mss > 0 else self.cwnd + 1
            if self.cwnd > self.rmt_wnd:
                self.cwnd = self.rmt_wnd
                self.incr = self.rmt_wnd * mss
        return _diff(self.snd_una, prev_una) > 0

    def _update_ack(self, rtt: int) -> None:
        if self.rx_srtt == 0:
            self.rx_srtt = rtt
            self.rx_rttval = rtt // 2
        else:
            delta = abs(rtt - self.rx_srtt)
            self.rx_rttval = (3 * self.rx_rttval + delta) // 4
            self.rx_srtt = max(1, (7 * self.rx_srtt + rtt) // 8)
        rto = self.rx_srtt + max(self.interval, 4 * self.rx_rttval)
        self.rx_rto = min(max(self.rx_minrto, rto), RTO_MAX)

    def _shrink_buf(self) -> None:
        self.snd_una = self.snd_buf[0].sn if self.snd_buf else self.snd_nxt

    def _parse_ack(self, sn: int) -> None:
        buf = self.snd_buf
        if not buf:
            return
        i = (sn - buf[0].sn) & _MASK
        if i >= len(buf):
            return
        seg = buf[i]
        if seg.sn != sn:  # not consecutive (cannot happen: segments enter in sn order)
            return
        if i == 0:
            buf.popleft()
            while buf and buf[0].acked:
                buf.popleft()
                self._acked -= 1
        elif not seg.acked:
            seg.acked = True
            self._acked += 1

    def _parse_una(self, una: int) -> None:
        buf = self.snd_buf
        while buf and (_diff(una, buf[0].sn) > 0 or buf[0].acked):
            if buf.popleft().acked:
                self._acked -= 1

    def _parse_fastack(self, sn: int, ts: int) -> None:
        if _diff(sn, self.snd_una) < 0 or _diff(sn, self.snd_nxt) >= 0:
            return
        buf = self.snd_buf
        if not buf:
            return
        resent = self.fastresend
        # snd_buf holds consecutive sns from its first: the segments below sn are its first n
        for seg in islice(buf, (sn - buf[0].sn) & _MASK):
            if not seg.acked and (ts - seg.ts) & _MASK < _HALF:  # ts at or after the segment's send
                seg.fastack += 1
                if seg.fastack == resent:
                    self._fastack_due = True

    def _parse_data(self, seg: _Seg) -> None:
        """File a segment inside the receive window (:meth:`input` checked that) in sn order."""
        sn = seg.sn
        buf = self.rcv_buf
        i = len(buf)
        while i > 0:
            other = buf[i - 1].sn
            if other == sn:
                return  # duplicate
            if (sn - other) & _MASK < _HALF:  # sn after other
                break
            i -= 1
        buf.insert(i, seg)
        self._move_rcv_buf()

    def _move_rcv_buf(self) -> None:
        buf = self.rcv_buf
        moved = 0
        while moved < len(buf) and buf[moved].sn == self.rcv_nxt and len(self.rcv_queue) < self.rcv_wnd:
            self.rcv_queue.append(buf[moved])
            self.rcv_nxt = (self.rcv_nxt + 1) & _MASK
            moved += 1
        if moved:
            del buf[:moved]

    # -- packets out -------------------------------------------------------------------------

    def _wnd_unused(self) -> int:
        return max(0, self.rcv_wnd - len(self.rcv_queue))

    def flush(self, ack_only: bool = False) -> None:
        """kcp-go's flush: acknowledgements, window probes, then new and due segments.
        ``ack_only``: the acknowledgements alone (kcp-go's ``flush(true)``)."""
        if not self.updated:
            return
        current = self.current
        conv = self.conv
        wnd = self._wnd_unused()
        una = self.rcv_nxt
        mtu = self.mtu
        out = bytearray()
        pack = _HDR.pack

        def emit(cmd: int, ts: int, sn: int, data: bytes = b"") -> None:
            if len(out) + OVERHEAD + len(data) > mtu and out:
                self.output(bytes(out))
                out.clear()
            out.extend(pack(conv, cmd, 0, wnd, ts, sn, una, len(data)))
            if data:
                out.extend(data)

        # as kcp-go: an ACK below rcv_nxt is already carried by every header's una, so only the
        # ones at or above it go out, and the list's last (a fresh RTT sample, and the ack a sender
        # stuck on its window's first segment waits for). A bulk receiver sent one 24-byte ACK per
        # segment before: ~2 % of the data volume back through the link, each parsed by the sender
        acks = self.acklist
        if acks:
            rcv_nxt = una
            last = len(acks) - 1
            for i, (sn, ts) in enumerate(acks):
                if i == last or _diff(sn, rcv_nxt) >= 0:
                    emit(CMD_ACK, ts, sn)
            acks.clear()
        if ack_only:
            if out:
                self.output(bytes(out))
            return

        if self.rmt_wnd == 0:
            if self.probe_wait == 0:
                self.probe_wait = PROBE_INIT
                self.ts_probe = (current + self.probe_wait) & _MASK
            elif _diff(current, self.ts_probe) >= 0:
                self.probe_wait = min(max(self.probe_wait, PROBE_INIT) + self.probe_wait // 2, PROBE_LIMIT)
                self.ts_probe = (current + self.probe_wait) & _MASK
                self.probe |= ASK_SEND
        else:
            self.ts_probe = 0
            self.probe_wait = 0
        if self._tells and _diff(current, self._tell_at) >= 0:
            self._tells -= 1
            self._tell_at = (current + self.interval) & _MASK
            self.probe |= ASK_TELL
        if self.probe & ASK_SEND:
            emit(CMD_WASK, 0, 0)
        if self.probe & ASK_TELL:
            emit(CMD_WINS, 0, 0)
        self.probe = 0

        cwnd = min(self.snd_wnd, self.rmt_wnd)
        if not self.nocwnd:
            cwnd = min(self.cwnd, cwnd)
        moved = 0
        while self.snd_queue and _diff(self.snd_nxt, (self.snd_una + cwnd) & _MASK) < 0:
            seg = self.snd_queue.popleft()
            seg.cmd = CMD_PUSH
            seg.sn = self.snd_nxt
            self.snd_nxt = (self.snd_nxt + 1) & _MASK
            self.snd_buf.append(seg)
            moved += 1

        resent = self.fastresend if self.fastresend > 0 else 0xFFFFFFFF
        rtomin = (self.rx_rto >> 3) if self.nodelay == 0 else 0
        change = lost = False
        buf = self.snd_buf
        # Segments already sent wait for their resend time or their fast acknowledgements. When
        # neither can be due (the earliest resend time is ahead, no segment reached ``resent``
        # fast acks since the last full pass), only the ones moved in above are looked at: a
        # flush per acknowledgement then costs what it sends, not the whole window.
        full = self._fastack_due or _diff(current, self._resend_at) >= 0
        self._fastack_due = False
        earliest = (current + RESCAN_MAX) & _MASK if full else self._resend_at
        for seg in buf if full else islice(buf, len(buf) - moved, None):
            if seg.acked:
                continue
            need = False
            if seg.xmit == 0:
                need = True
                seg.rto = self.rx_rto
                seg.resendts = (current + seg.rto + rtomin) & _MASK
            elif (current - seg.resendts) & _MASK < _HALF:  # due
                need = True
                if self.nodelay == 0:
                    seg.rto += max(seg.rto, self.rx_rto)
                else:
                    seg.rto += (seg.rto if self.nodelay < 2 else self.rx_rto) // 2
                seg.resendts = (current + seg.rto) & _MASK
                seg.fastack = 0  # as kcp-go: the resend starts its count again (ikcp.c keeps it)
                lost = True
                self.timeout_retransmits += 1
            elif seg.fastack >= resent and (seg.xmit <= FASTACK_LIMIT or FASTACK_LIMIT <= 0):
                need = True
                seg.fastack = 0
                seg.resendts = (current + seg.rto) & _MASK
                change = True
                self.fast_retransmits += 1
            if need:
                seg.xmit += 1
                seg.ts = current
                data = seg.data
                if len(out) + OVERHEAD + len(data) > mtu and out:
                    self.output(bytes(out))
                    out.clear()
                if not out and 2 * OVERHEAD + len(data) > mtu:
                    # no other segment fits beside this one: its datagram leaves as it is built
                    self.output(pack(conv, CMD_PUSH, seg.frg, wnd, current, seg.sn, una, len(data)) + data)
                else:
                    out.extend(pack(conv, CMD_PUSH, seg.frg, wnd, current, seg.sn, una, len(data)))
                    out.extend(data)
                if seg.xmit >= self.dead_link:
                    self.state = -1
            if (seg.resendts - earliest) & _MASK >= _HALF:  # before earliest
                earliest = seg.resendts
        self._resend_at = earliest
        if out:
            self.output(bytes(out))

        if not self.nocwnd:
            if change:
                inflight = _diff(self.snd_nxt, self.snd_una)
                self.ssthresh = max(inflight // 2, THRESH_MIN)
                self.cwnd = self.ssthresh + resent
                self.incr = self.cwnd * self.mss
            if lost:
                self.ssthresh = max(cwnd // 2, THRESH_MIN)
                self.cwnd = 1
                self.incr = self.mss
            if self.cwnd < 1:
                self.cwnd = 1
                self.incr = self.mss

    def update(self, current: int) -> None:
        """Advance the clock (ms) and flush when an interval has passed."""
        self.current = current & _MASK
        if not self.updated:
            self.updated = True
            self.ts_flush = self.current
        slap = _diff(self.current, self.ts_flush)
        if slap >= 10000 or slap < -10000:
            self.ts_flush = self.current
            slap = 0
        if slap >= 0:
            self.ts_flush = (self.ts_flush + self.interval) & _MASK
            if _diff(self.current, self.ts_flush) >= 0:
                self.ts_flush = (self.current + self.interval) & _MASK
            self.flush()

    def next_flush(self, current: int) -> int:
        """When (ms) :meth:`update` next flushes: what :meth:`check` returns minus the early
        wake-ups for segment timeouts, which :meth:`update` does not act on before the flush
        tick anyway (it resends only from a flush)."""
        current &= _MASK
        if not self.updated:
            return current
        d = _diff(self.ts_flush, current)
        if d <= 0 or d >= 10000:
            return current
        return (current + min(d, self.interval)) & _MASK

    def check(self, current: int) -> int:
        """When (ms) :meth:`update` should run next."""
        current &= _MASK
        if not self.updated:
            return current
        ts_flush = self.ts_flush
        if _diff(current, ts_flush) >= 10000 or _diff(current, ts_flush) < -10000:
            ts_flush = current
        if _diff(current, ts_flush) >= 0:
            return current
        tm_flush = _diff(ts_flush, current)
        tm_packet = 0x7FFFFFFF
        for seg in self.snd_buf:
            if seg.acked:
                continue
            d = _diff(seg.resendts, current)
            if d <= 0:
                return current
            tm_packet = min(tm_packet, d)
        minimal = min(tm_packet, tm_flush, self.interval)
        return (current + minimal) & _MASK


class FECEncoder:
    """kcp-go's FEC on outgoing datagrams: every KCP packet becomes a data shard
    (``seqid, 0xF1, size`` + packet); after each ``data_shards`` data shards come
    ``parity_shards`` Reed–Solomon parity shards (``seqid, 0xF2`` + parity of the zero-padded
    ``size + packet`` parts), seqids counting on through them.

    Like kcp-go, a group whose last data shard comes more than :data:`FEC_MAX_LATENCY` ms after
    the one before gets no parity (it would arrive too late to help). kcp-go then leaves the
    parity seqids unused, which shifts its later groups out of line with the receiver's; we skip
    them instead, so the peer's decoder stays in step.
    """

    def __init__(self, data_shards: int = 10, parity_shards: int = 3) -> None:
        self.data_shards = data_shards
        self.parity_shards = parity_shards
        self.shard_size = data_shards + parity_shards
        self.paws = (0xFFFFFFFF // self.shard_size) * self.shard_size  # seqids wrap here, at a parity
        self.codec = ReedSolomon(data_shards, parity_shards)
        self.seqid = 0
        self._shards: list[bytes] = []  # the group's data datagrams so far
        self._last_ms: int | None = None

    def encode(self, kcp_packet: bytes, now_ms: int = 0, parity: bool = True) -> list[bytes]:
        """The datagrams to send for one KCP packet: its data shard, then any parity shards.
        ``parity=False`` when the group completes: no parity for it (its seqids are skipped, as
        for a slow group; the receiver just has nothing to rebuild from)."""
        datagram = _FEC_DATA_HDR.pack(self.seqid, FEC_DATA, len(kcp_packet) + 2) + kcp_packet
        out = [datagram]
        self.seqid += 1
        self._shards.append(datagram)
        continuous = self._last_ms is None or ((now_ms - self._last_ms) & _MASK) < FEC_MAX_LATENCY
        self._last_ms = now_ms
        if len(self._shards) == self.data_shards:
            datagrams, self._shards = self._shards, []
            if continuous and parity:
                # the ``size + packet`` parts, cut out only for a group that gets parity
                width = max(len(d) for d in datagrams) - FEC_HEADER
                padded = [d[FEC_HEADER:].ljust(width, b"\0") for d in datagrams]
                for p in self.codec.encode(padded):
                    out.append(_FEC_HDR.pack(self.seqid, FEC_PARITY) + p)
                    self.seqid = (self.seqid + 1) % self.paws
            else:
                self.seqid = (self.seqid + self.parity_shards) % self.paws
        return out


class FECDecoder:
    """kcp-go's FEC on incoming datagrams: strips the header of data shards and rebuilds lost
    data shards of a group from any ``data_shards`` of its shards.

    :meth:`decode` returns the KCP bytes of the datagram itself (None for a parity shard) and
    those of the data shards it made recoverable. Shards are grouped by ``seqid // (data +
    parity)``; a shard whose type does not match its position (a sender whose groups slipped) is
    not used for recovery. At most :data:`FEC_GROUPS` groups are kept open.
    """

    def __init__(self, data_shards: int = 10, parity_shards: int = 3) -> None:
        self.data_shards = data_shards
        self.shard_size = data_shards + parity_shards
        self.codec = ReedSolomon(data_shards, parity_shards)
        self._groups: dict[int, dict[int, bytes | memoryview]] = {}
        self._done: dict[int, None] = {}  # recently completed groups (ordered, bounded)
        self.recovered = 0
        """Data shards rebuilt from parity so far."""

    def decode(self, datagram: bytes) -> tuple[bytes | memoryview | None, list[bytes]]:
        """Payload and kept shards are views of ``datagram`` (no copies per datagram)."""
        n = len(datagram)
        if n < FEC_HEADER_PLUS2:
            return datagram, []
        flag = datagram[4] | (datagram[5] << 8)
        view = memoryview(datagram)
        payload: memoryview | None
        if flag == FEC_DATA:
            size = datagram[6] | (datagram[7] << 8)
            end = FEC_HEADER + size
            payload = view[FEC_HEADER_PLUS2:end] if size >= 2 and end <= n else view[FEC_HEADER_PLUS2:]
        elif flag == FEC_PARITY:
            payload = None
        else:
            return datagram, []  # no FEC header: bytes 4..5 are a KCP cmd/frg pair
        seqid = datagram[0] | (datagram[1] << 8) | (datagram[2] << 16) | (datagram[3] << 24)
        group, pos = divmod(seqid, self.shard_size)
        if (pos < self.data_shards) != (flag == FEC_DATA) or group in self._done or n > FEC_MAX_SHARD:
            return payload, []
        shards = self._groups.get(group)
        if shards is None:
            shards = self._groups[group] = {}
            if len(self._groups) > FEC_GROUPS:
                del self._groups[min(self._groups)]
        shards[pos] = view[FEC_HEADER:]
        if len(shards) < self.data_shards:
            return payload, []
        self._finish(group)
        missing = [k for k in range(self.data_shards) if k not in shards]
        if not missing:
            return payload, []
        width = max(len(s) for s in shards.values())
        slots: list[bytes | None] = [None] * self.shard_size
        for k, s in shards.items():
            slots[k] = bytes(s).ljust(width, b"\0")
        try:
            data = self.codec.reconstruct_data(slots)
        except ValueError:
            return payload, []
        rebuilt = []
        for k in missing:
            r = data[k]
            size = r[0] | (r[1] << 8)
            if 2 <= size <= len(r):
                rebuilt.append(r[2:size])
        self.recovered += len(rebuilt)
        return payload, rebuilt

    def _finish(self, group: int) -> None:
        del self._groups[group]
        self._done[group] = None
        if len(self._done) > 4 * FEC_GROUPS:
            del self._done[next(iter(self._done))]


def fec_decode(datagram: bytes) -> bytes | None:
    """The KCP bytes of a received datagram without FEC recovery (None for parity).

    Datagrams without an FEC header (bytes 4..5 are a KCP cmd/frg pair then) pass unchanged.
    """
    if len(datagram) >= FEC_HEADER_PLUS2:
        flag = datagram[4] | (datagram[5] << 8)
        if flag == FEC_PARITY:
            return None
        if flag == FEC_DATA:
            size = datagram[6] | (datagram[7] << 8)
            end = FEC_HEADER + size
            if size < 2 or end > len(datagram):
                return datagram[FEC_HEADER_PLUS2:]
            return datagram[FEC_HEADER_PLUS2:end]
    return datagram


def peek_conv(datagram: bytes) -> tuple[int, int] | None:
    """(conv, sn) of the first segment of a datagram that is well-formed KCP (bare or an FEC data
    shard: every segment's command known and its length inside the packet), else None. Parity
    shards give None: they cannot open a conversation (kcp-go's listener rule)."""
    payload = fec_decode(datagram)
    if payload is None or len(payload) < OVERHEAD:
        return None
    pos, n = 0, len(payload)
    first: tuple[int, int] | None = None
    while n - pos >= OVERHEAD:
        conv, cmd, _frg, _wnd, _ts, sn, _una, length = _HDR.unpack_from(payload, pos)
        if cmd not in (CMD_PUSH, CMD_ACK, CMD_WASK, CMD_WINS) or length > n - pos - OVERHEAD:
            return None
        if first is None:
            first = (conv, sn)
        elif conv != first[0]:
            return None
        pos += OVERHEAD + length
    return first if pos == n else None
