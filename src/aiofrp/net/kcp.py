"""asyncio driver for the sans-I/O KCP: a reliable byte stream over datagrams, as a Transport.

Datagrams come in through :meth:`KCPConn.datagram_received` and go out through ``send``, so the
connection can run on an already-punched UDP socket. Settings are frp's (kcp-go): stream mode,
NoDelay(1, 20 ms, 2, no congestion window), MTU 1350 including kcp-go's 8-byte FEC header,
windows 1024/1024, conversation 1. KCP has no close handshake: the layer above (yamux) ends the
session; a peer that stops acknowledging is detected by KCP's dead-link limit.

Beyond kcp-go: Reed–Solomon parity (10 + 3) is sent while the link shows loss (see
:meth:`KCPConn._lossy`), not on a clean one; data shards always carry the FEC header and keep their
seqid positions, so Go peers decode either way. A flush's datagrams leave together
(``net/udp_batch.py``: UDP GSO where Linux has it).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import Any

from ..proto.addr import fmt_addr
from ..proto.kcp import KCP, FECDecoder, FECEncoder, KCPError, peek_conv
from .datagram_listener import DatagramListener
from .listen import unmap
from .transport import PausableTransport
from .udp_batch import MAX_SEGMENTS, DatagramBatcher, enlarge_buffers

log = logging.getLogger("aiofrp.net.kcp")

MTU = 1350
# bench/transports.py --impls nofec: ours without FEC parity on both sides, to measure what parity
# buys under loss. Not wire-compatible with Go (kcp-go in frp always runs 10 + 3 shards); no config key.
BENCH_NO_FEC = os.environ.get("AIOFRP_BENCH_KCP_NOFEC") == "1"
PARITY_HOLD_MS = 10_000  # parity goes on at the first sign of loss and stays on this long after the last
FEC_OVERHEAD = 8
WINDOW = 1024
WRITE_HIGH_SEGMENTS = 2 * WINDOW  # pause the protocol above this many unacknowledged segments
WRITE_LOW_SEGMENTS = WINDOW


class KCPConn(PausableTransport):
    """While reading is paused, received data waits in KCP's receive queue: the window KCP
    advertises shrinks and the peer slows down."""

    def __init__(self, send: Callable[[bytes], None], *, conv: int = 1, fec: bool = True,
                 peer: Any = None, window: tuple[int, int] = (WINDOW, WINDOW),
                 send_many: Callable[[list[bytes]], None] | None = None) -> None:
        super().__init__(asyncio.get_running_loop())
        self._send = send
        self._send_many = send_many
        self._out: list[bytes] = []  # datagrams of the current flush, sent together by _push
        self._loss_signal = 0
        self._loss_at: int | None = None  # ms (KCP clock) when loss was last seen
        self.conv = conv
        self._fec = FECEncoder() if fec and not BENCH_NO_FEC else None
        self.fec_decoder = FECDecoder()
        self._kcp = k = KCP(conv, self._output, stream=True)
        k.set_nodelay(1, 20, 2, True)
        k.set_mtu(MTU - FEC_OVERHEAD if self._fec is not None else MTU)
        k.set_wndsize(*window)
        self.peer = peer
        self._closed = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = -1
        self._flush_scheduled = False
        self._input_scheduled = False
        self.closed: asyncio.Future[None] = self._loop.create_future()

    def _now(self) -> int:
        return int(self._loop.time() * 1000) & 0xFFFFFFFF

    def _output(self, packet: bytes) -> None:
        out = self._out
        if self._fec is None:
            out.append(packet)
        else:
            out.extend(self._fec.encode(packet, self._kcp.current, self._lossy()))
        if len(out) >= MAX_SEGMENTS:
            # a flush that fills a whole window produces hundreds of datagrams (and their parity):
            # each GSO-sized run leaves as soon as it is ready, not after the last is built
            self._push()

    def _lossy(self) -> bool:
        """Whether the link lost datagrams within :data:`PARITY_HOLD_MS`: our fast
        retransmissions (later segments were acknowledged first), segments arriving past a gap,
        or shards the FEC decoder rebuilt. Timeouts do not count: on a busy machine they fire for
        acknowledgements that are only late. Parity is sent only then: on a clean link it costs
        a third more datagrams and the Reed–Solomon work for nothing (the peer's decoder needs
        no parity; the group's seqids are skipped)."""
        k = self._kcp
        signal = k.fast_retransmits + k.out_of_order + self.fec_decoder.recovered
        now = k.current
        if signal != self._loss_signal:
            self._loss_signal = signal
            self._loss_at = now
            return True
        return self._loss_at is not None and ((now - self._loss_at) & 0xFFFFFFFF) < PARITY_HOLD_MS

    def _push(self) -> None:
        """Send what the last flush produced: all at once when a batch sender is given."""
        out = self._out
        if not out:
            return
        self._out = []
        try:
            if self._send_many is not None:
                self._send_many(out)
            else:
                send = self._send
                for datagram in out:
                    send(datagram)
        except OSError as exc:
            log.debug("kcp send: %s", exc)

    # -- input ------------------------------------------------------------------------------

    def datagram_received(self, data: bytes) -> None:
        if self._closed:
            return
        payload, rebuilt = self.fec_decoder.decode(data)
        if rebuilt:
            n = self.fec_decoder.recovered
            if n == len(rebuilt) or n // 1000 != (n - len(rebuilt)) // 1000:
                log.debug("kcp: FEC rebuilt %d lost datagrams from %s so far", n, fmt_addr(self.peer))
        k = self._kcp
        k.current = self._now()
        slid = False
        for p in (payload, *rebuilt):
            if p is None:
                continue
            try:
                slid |= k.input(p)
            except KCPError as exc:
                log.debug("kcp: dropping datagram: %s", exc)
        if slid and not self._flush_scheduled:
            # like kcp-go: acknowledgements opened the window, send now (once per loop iteration)
            self._flush_scheduled = True
            self._loop.call_soon(self._flush_now)
        if not self._input_scheduled:
            # the loop reads datagrams in bursts: hand the burst's bytes up in one piece (one TLS
            # read, one relay write) instead of one segment at a time
            self._input_scheduled = True
            self._loop.call_soon(self._after_input)

    def _after_input(self) -> None:
        self._input_scheduled = False
        if self._closed:
            return
        self._drain()
        k = self._kcp
        if k.acklist and k.updated:
            # Beyond kcp-go (frp runs it with ackNoDelay off: acknowledgements wait for the next
            # 20 ms interval): the burst's acknowledgements leave now, in one datagram, with the
            # window as it is after the drain above. The sender's round trip is then the link's,
            # not the link's plus up to an interval, and a window-limited sender (frp's KCP has no
            # congestion window) moves that much more per round trip.
            k.current = self._now()
            k.flush(ack_only=True)
            self._push()
        self._schedule()

    # PausableTransport: the held data is KCP's receive queue
    def _next_buffered(self) -> bytes | None:
        # recv() refills the queue from out-of-order segments: _drain keeps going until it is dry
        return self._kcp.recv() or None

    def _has_buffered(self) -> bool:
        return bool(self._kcp.rcv_queue)

    def _drained(self) -> None:
        self._update_write_pause()

    # -- clock ------------------------------------------------------------------------------

    def _schedule(self) -> None:
        if self._closed:
            return
        now = self._now()
        at = self._kcp.next_flush(now)
        delay = ((at - now) & 0xFFFFFFFF) / 1000
        if delay > 5:
            delay = 0
        target = now + int(delay * 1000)
        if self._timer is not None:
            if self._timer_at <= target:
                return
            self._timer.cancel()
        self._timer_at = target
        self._timer = self._loop.call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = -1
        if self._closed:
            return
        k = self._kcp
        k.update(self._now())
        self._push()
        if k.state == -1:
            log.debug("kcp: dead link to %s", fmt_addr(self.peer))
            self._lose(ConnectionResetError("kcp peer stopped acknowledging"))
            return
        self._update_write_pause()
        self._schedule()

    def _flush_now(self) -> None:
        self._flush_scheduled = False
        if self._closed:
            return
        k = self._kcp
        k.current = self._now()
        if not k.updated:
            k.update(k.current)
        else:
            k.flush()
        self._push()
        self._schedule()

    # -- transport API ------------------------------------------------------------------------

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return self.peer
        return default

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closed or not data:
            return
        self._kcp.send(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush_now)
        self._update_write_pause()

    def can_write_eof(self) -> bool:
        return False

    def write_eof(self) -> None:
        raise NotImplementedError("KCP has no half-close")

    def is_closing(self) -> bool:
        return self._closed

    def get_write_buffer_size(self) -> int:
        return self._kcp.wait_snd() * self._kcp.mss

    def close(self) -> None:
        if not self._closed:
            k = self._kcp
            k.current = self._now()
            if k.updated:
                k.flush()  # last acknowledgements / data
                self._push()
        self._lose(None)

    def abort(self) -> None:
        self._lose(None)

    def _lose(self, exc: Exception | None) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop_reading()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        proto, self._protocol = self._protocol, None
        if proto is not None:
            self._loop.call_soon(proto.connection_lost, exc)
        if not self.closed.done():
            self.closed.set_result(None)

    def _update_write_pause(self) -> None:
        if self._protocol is None:
            return
        waiting = self._kcp.wait_snd()
        self._set_write_paused(waiting > WRITE_HIGH_SEGMENTS or (self._write_paused and waiting > WRITE_LOW_SEGMENTS))


# -- frp's kcp transport (frpc transport.protocol = "kcp", frps kcpBindPort) ----------------------

SOCKET_BUFFER = 4 << 20  # frp sets 4 MiB UDP socket buffers on both sides
SERVER_WINDOW = (1024, 1024)  # frps (pkg/util/net/kcp.go)
CLIENT_WINDOW = (128, 512)  # frpc (golib net dial)
MAX_SESSIONS = 4096


def _conv_of(data: bytes) -> int | None:
    """The conv a datagram names (None: a parity shard or too short), without validating it."""
    n = len(data)
    if n >= 8 and data[5] == 0 and data[4] in (0xF1, 0xF2):
        if data[4] == 0xF2 or n < 12:
            return None
        return int.from_bytes(data[8:12], "little")
    return int.from_bytes(data[0:4], "little") if n >= 4 else None


class KCPListener(DatagramListener[KCPConn]):
    """frps ``kcpBindPort``: one KCP conversation per remote address (kcp-go's listener).

    A new address opens a conversation only with a well-formed KCP datagram; a datagram of another
    conversation with sn 0 from a known address replaces the old one (a restarted client on the
    same port). Anything else is dropped and logged (rate-limited). ``on_conn`` gets each new
    :class:`KCPConn` before its first datagram is fed in.
    """

    kind = "kcp"
    log = log

    def __init__(self, on_conn: Callable[[KCPConn], None], *, window: tuple[int, int] = SERVER_WINDOW) -> None:
        super().__init__()
        self.on_conn = on_conn
        self.window = window
        self.batcher: DatagramBatcher | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        enlarge_buffers(transport.get_extra_info("socket"), SOCKET_BUFFER)
        self.batcher = DatagramBatcher(transport)  # type: ignore[arg-type]

    def close(self) -> None:
        super().close()
        if self.batcher is not None:
            self.batcher.close()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        conn = self.sessions.get(addr)
        head = None
        if conn is not None:
            if _conv_of(data) in (conn.conv, None):
                conn.datagram_received(data)  # parity, or this conversation (KCP checks the rest)
                return
            head = peek_conv(data)
            if head is None or head[0] == conn.conv:
                conn.datagram_received(data)
                return
            if head[1] != 0:
                self._drop(addr, f"conversation {head[0]} is not this address's ({conn.conv})")
                return
            log.info("kcp: %s started a new conversation, closing the old one", fmt_addr(addr))
            self._forget(addr, conn)
            conn.abort()
        if head is None:
            head = peek_conv(data)
        if head is None:
            self._drop(addr, f"not a KCP datagram ({len(data)} bytes)")
            return
        if len(self.sessions) >= MAX_SESSIONS:
            self._drop(addr, f"{MAX_SESSIONS} KCP sessions already")
            return
        transport, batcher = self.transport, self.batcher
        assert transport is not None and batcher is not None
        conn = KCPConn(lambda d: transport.sendto(d, addr), conv=head[0], peer=unmap(addr), window=self.window,
                       send_many=lambda ds: batcher.send(ds, addr))
        self.sessions[addr] = conn
        conn.closed.add_done_callback(lambda _f: self._forget(addr, conn))
        self.on_conn(conn)
        conn.datagram_received(data)

    def _end(self, session: KCPConn) -> None:
        session.abort()


class _KCPClientEndpoint(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.conn: KCPConn | None = None

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if self.conn is not None:
            self.conn.datagram_received(data)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable on the connected socket: nobody listens there
        if self.conn is not None and isinstance(exc, ConnectionRefusedError):
            self.conn._lose(exc)


async def dial_kcp(host: str, port: int, *, local_addr: tuple[str, int] | None = None,
                   window: tuple[int, int] = CLIENT_WINDOW) -> KCPConn:
    """A KCP conversation with a random conv on a fresh UDP socket connected to ``host:port``
    (golib's ``dialKCPServer``). KCP has no handshake: this returns at once; a silent server
    shows as the layer above timing out (or as ConnectionRefusedError on an ICMP error)."""

    loop = asyncio.get_running_loop()
    transport, ep = await loop.create_datagram_endpoint(_KCPClientEndpoint, remote_addr=(host, port),
                                                        local_addr=local_addr)
    enlarge_buffers(transport.get_extra_info("socket"), SOCKET_BUFFER)
    conv = int.from_bytes(os.urandom(4), "little")
    batcher = DatagramBatcher(transport, on_error=ep.error_received)
    conn = KCPConn(lambda d: transport.sendto(d), conv=conv, peer=transport.get_extra_info("peername"),
                   window=window, send_many=batcher.send)
    ep.conn = conn

    def _closed(_f: object) -> None:
        batcher.close()
        transport.close()

    conn.closed.add_done_callback(_closed)
    return conn
