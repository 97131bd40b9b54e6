"""asyncio adapters for UDP over frp: the packet stream on a work/visitor connection, the bound
socket facing users, and the per-user-address sockets frpc keeps toward a local UDP service.

Nothing here ever awaits the stream's transport: the frames queued during one event-loop
iteration leave together in one write at its end (one yamux frame, one TLS record); while the
transport pushes back they wait in a bounded queue (1024 frames, like Go's channels) and beyond
that datagrams are dropped. So a slow or stalled tunnel never holds up the event loop, the
yamux session or other proxies. Received datagrams are never queued without bound either: they
go straight to a UDP socket, whose own buffer is capped as well.

A proxy's bandwidth limit (``transport.bandwidthLimit``) meters the packet stream as Go's
``limit.Reader``/``limit.Writer`` do around a udp/sudp work connection, both directions from the
proxy's one token bucket: Go's frps (``bandwidthLimitMode = "server"``) counts the message bytes
(inside encryption and compression), Go's frpc (``"client"``) the bytes on the connection. Beyond
the limit, frames to send wait in the queue (and are dropped when it is full), and received bytes
are held with the transport paused, until the bucket has room.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from ..log import XLog
from ..proto import msg as m
from ..proto.addr import fmt_addr
from ..proto.errors import ProtocolError
from ..proto.udp import Datagram, PacketEncoder, PacketReader, PacketTooLarge
from .relay import Codec
from .udp_batch import enlarge_buffers

if TYPE_CHECKING:
    from .limiter import TokenBucket

log = logging.getLogger("aiofrp.net.udp")

QUEUE_FRAMES = 1024  # Go: sendCh / readCh capacity
LOCAL_IDLE_TIMEOUT = 30.0  # Go: per-user-address socket read deadline on frpc
UDP_SEND_BUFFER_LIMIT = 1 << 20  # drop instead of buffering more toward a UDP socket
SOCKET_BUFFER = 1 << 20  # kernel buffers of our UDP sockets (capped by net.core.rmem_max/wmem_max)


def _write_buffered(t: asyncio.DatagramTransport) -> int:
    """Bytes waiting in a datagram transport (asyncio's and uvloop's have the method, typeshed's
    DatagramTransport does not declare it)."""
    return cast(asyncio.WriteTransport, t).get_write_buffer_size()


class _EmptySender:
    """Sends zero-length datagrams, which asyncio's and uvloop's ``DatagramTransport.sendto``
    silently skip (``if not data: return``) while Go writes them like any other datagram: through
    a duplicate descriptor of the transport's socket, made on first use."""

    __slots__ = ("_sock",)

    def __init__(self) -> None:
        self._sock: socket.socket | None = None

    def send(self, t: asyncio.BaseTransport, addr: Any = None) -> None:
        sock = self._sock
        try:
            if sock is None:
                raw = t.get_extra_info("socket")
                if raw is None:
                    return
                sock = self._sock = socket.socket(fileno=os.dup(raw.fileno()))
            if addr is None:
                sock.send(b"")
            else:
                sock.sendto(b"", addr)
        except (OSError, ValueError) as exc:  # ECONNREFUSED, EAGAIN, ...: a datagram lost, as any other
            log.debug("zero-length udp datagram not sent: %s", exc)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class PacketConn(asyncio.Protocol):
    """A packet stream on a connected transport (after its set-up message).

    ``on_datagram(data, addr)`` gets each received ``UDPPacket``; other messages (``Ping``) only
    feed the read deadline. ``closed`` resolves when the stream is gone, for whatever reason.
    ``limiter``: the proxy's bandwidth bucket, metering both directions (None: no limit); it counts
    the message bytes, or with ``limit_wire`` the bytes on the transport (after encryption and
    compression), which is where Go's frpc meters a udp/sudp work connection. ``on_ping`` is
    called for each Ping received.
    """

    def __init__(
        self,
        name: str | XLog,
        on_datagram: Callable[[bytes, Any], None],
        *,
        encode: Codec | None = None,
        decode: Codec | None = None,
        read_timeout: float = 0.0,
        ping_interval: float = 0.0,
        on_close: Callable[[PacketConn], None] | None = None,
        v2: bool = False,
        limiter: TokenBucket | None = None,
        limit_wire: bool = False,
        on_ping: Callable[[], None] | None = None,
    ) -> None:
        self.xl = _xlog(name)
        self._on_datagram = on_datagram
        self._encode = encode
        self._decode = decode
        self._on_close = on_close
        self._loop = asyncio.get_running_loop()
        self._reader = PacketReader(v2)  # v2: wire protocol v2 message frames (§2.4)
        self._enc = PacketEncoder(v2)
        self.transport: asyncio.Transport | None = None
        self._queue: list[bytes] = []
        self._flush_handle: asyncio.Handle | None = None
        self._paused = False
        self._closed = False
        self.closed: asyncio.Future[None] = self._loop.create_future()
        self.dropped = 0
        self._too_large_logged = False
        self._read_timeout = read_timeout
        self._last_read = self._loop.time()
        self._deadline: asyncio.TimerHandle | None = None
        self._ping_interval = ping_interval
        self._ping_timer: asyncio.TimerHandle | None = None
        self._limiter = limiter
        self._on_ping = on_ping  # a Ping received (frps's sudp bridge passes them on)
        self._limit_wire = limit_wire  # meter the bytes on the wire (encrypted, compressed), not the messages
        self._out_wire: bytes | None = None  # encoded bytes beyond the limit, to write first
        self._out_timer: asyncio.TimerHandle | None = None  # sending waits for the bucket
        self._in_timer: asyncio.TimerHandle | None = None  # received bytes wait for the bucket
        self._in_held: bytes | None = None  # received bytes beyond the limit, not yet handed up
        self._eof_pending = False  # the peer ended the stream while bytes were held

    # -- set-up ---------------------------------------------------------------------------

    def attach(self, transport: asyncio.Transport, data: bytes = b"", eof: bool = False) -> None:
        """Take over ``transport`` (detached from its MsgConn, with its unread bytes)."""
        self.transport = transport
        transport.set_protocol(self)
        self._last_read = self._loop.time()
        if self._read_timeout > 0:
            self._deadline = self._loop.call_later(self._read_timeout, self._check_deadline)
        if self._ping_interval > 0:
            self._ping_timer = self._loop.call_later(self._ping_interval, self._ping)
        if data:
            self.data_received(data)
        if eof and not self._closed:
            self.eof_received()
        if not self._closed:
            if transport.is_closing():
                self.close()
            else:
                transport.resume_reading()
                if self._queue:
                    self._schedule_flush()

    # -- sending --------------------------------------------------------------------------

    def send_datagram(self, data: bytes | memoryview, addr: Any) -> bool:
        """Queue ``UDPPacket{c: data, r: addr}``; False if it was dropped (queue full, closed, too big)."""
        if self._closed:
            return False
        try:
            frame = self._enc.packet(data, addr)
        except PacketTooLarge as exc:
            if not self._too_large_logged:
                self._too_large_logged = True
                self.xl.warning("dropping datagram: %s", exc)
            self.dropped += 1
            return False
        return self._push(frame)

    def send_ping(self) -> None:
        self._push(self._enc.ping_frame())

    def _push(self, frame: bytes) -> bool:
        q = self._queue
        if len(q) >= QUEUE_FRAMES:
            self.dropped += 1
            return False
        q.append(frame)
        if (self._flush_handle is None and not self._paused and self.transport is not None
                and self._out_timer is None):
            self._flush_handle = self._loop.call_soon(self._flush)
        return True

    def _schedule_flush(self) -> None:
        if self._flush_handle is None:
            self._flush_handle = self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        # Frames queued in one loop iteration leave in one write: fewer yamux frames and syscalls.
        self._flush_handle = None
        t = self.transport
        q = self._queue
        if self._closed or self._paused or t is None or not q or self._out_timer is not None:
            return
        data = b"".join(q) if len(q) > 1 else q[0]
        q.clear()
        if self._limiter is not None and not self._limit_wire:
            data = self._take_out(data)
            if not data:
                return
        if self._encode is not None:
            data = self._encode(data)
        if data and self._limiter is not None and self._limit_wire:
            data = self._take_out(data)
        if data:
            t.write(data)

    def _take_out(self, data: bytes) -> bytes:
        """The part of ``data`` the bucket lets out now; the rest waits (first in the queue, or
        as ``_out_wire`` when already encoded) for a timer."""
        assert self._limiter is not None
        n = len(data)
        now = time.monotonic()
        granted = self._limiter.take(n, now)
        if granted < n:
            if self._limit_wire:
                self._out_wire = data[granted:]
            else:
                self._queue.insert(0, data[granted:])
            self._out_timer = self._loop.call_later(self._limiter.wait_time(n - granted, now), self._out_release)
            data = data[:granted]
        return data

    def _out_release(self) -> None:
        self._out_timer = None
        rest, self._out_wire = self._out_wire, None
        if rest is not None and not self._closed and self.transport is not None:
            rest = self._take_out(rest)
            if rest:
                self.transport.write(rest)
        self._flush()

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        if self._queue:
            self._schedule_flush()

    # -- receiving ------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        if self._limiter is None:
            self._decoded(data)
            return
        self._last_read = self._loop.time()  # bytes arrived: the peer is alive, even if held
        if self._limit_wire:
            if self._in_held is not None:  # transports may deliver a little after pause_reading
                self._in_held += data
                return
            data = self._take_in(data)
            if data:
                self._decoded(data)
        else:
            self._decoded(data)

    def _decoded(self, data: bytes) -> None:
        """Decode received bytes, meter them when the limit counts plaintext, hand them up."""
        if self._decode is not None:
            try:
                data = self._decode(data)
            except (ProtocolError, ValueError) as exc:
                self.xl.warning("bad data on udp stream: %s", exc)
                self.close()
                return
            if not data:
                return
        if self._limiter is not None and not self._limit_wire:
            if self._in_held is not None:
                self._in_held += data
                return
            data = self._take_in(data)
            if not data:
                return
        self._deliver(data)

    def _take_in(self, data: bytes) -> bytes:
        """The part of received ``data`` the bucket lets through now; the rest is held (at the
        same stage: wire bytes or plaintext) with reading paused until a timer."""
        assert self._limiter is not None
        n = len(data)
        now = time.monotonic()
        granted = self._limiter.take(n, now)
        if granted < n:
            self._in_held = bytes(data[granted:])  # the producer may reuse a view's buffer
            if self.transport is not None:
                self.transport.pause_reading()
            self._in_timer = self._loop.call_later(self._limiter.wait_time(n - granted, now), self._in_release)
            data = data[:granted]
        return data

    def _in_release(self) -> None:
        self._in_timer = None
        held, self._in_held = self._in_held, None
        if self._closed or held is None:
            return
        data = self._take_in(held)
        if data:
            if self._limit_wire:
                self._decoded(data)
            else:
                self._deliver(data)
        if self._closed or self._in_held is not None:
            return
        if self._eof_pending:
            self.close()
        elif self.transport is not None:
            self.transport.resume_reading()

    def _deliver(self, data: bytes) -> None:
        """Parse received plaintext and hand up its datagrams."""
        try:
            events = self._reader.feed(data)
        except (ProtocolError, ValueError) as exc:
            self.xl.warning("bad data on udp stream: %s", exc)
            self.close()
            return
        if events:
            self._last_read = self._loop.time()
        cb = self._on_datagram
        on_ping = self._on_ping
        for ev in events:
            if type(ev) is Datagram:
                if ev.addr is not None:
                    cb(ev.data, ev.addr)
            elif on_ping is not None and isinstance(ev, m.Ping):
                on_ping()
            # any other message only proves that the peer is alive

    def eof_received(self) -> bool:
        if self._in_held is not None:  # deliver what the limit holds first
            self._eof_pending = True
            return True
        self.close()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.close()

    def _check_deadline(self) -> None:
        self._deadline = None
        if self._closed:
            return
        left = self._last_read + self._read_timeout - self._loop.time()
        if left > 0:
            self._deadline = self._loop.call_later(left, self._check_deadline)
            return
        self.xl.warning("no message on the udp stream for %gs, closing it", self._read_timeout)
        self.close()

    def _ping(self) -> None:
        self._ping_timer = None
        if self._closed:
            return
        self.send_ping()
        self._ping_timer = self._loop.call_later(self._ping_interval, self._ping)

    # -- teardown -------------------------------------------------------------------------

    @property
    def is_closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for h in (self._flush_handle, self._deadline, self._ping_timer, self._out_timer, self._in_timer):
            if h is not None:
                h.cancel()
        self._queue.clear()
        if self.transport is not None:
            self.transport.close()
        if not self.closed.done():
            self.closed.set_result(None)
        if self._on_close is not None:
            cb, self._on_close = self._on_close, None
            cb(self)


# -- frpc: one local socket per user address ------------------------------------------------------


class _LocalPeer(asyncio.DatagramProtocol):
    def __init__(self, fwd: LocalForwarder, addr: Any, prefix: bytes = b"") -> None:
        self.fwd = fwd
        self.addr = addr
        self.prefix = prefix  # PROXY protocol header put before every datagram (frp §5.7)
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: list[bytes] | None = []  # None once closed
        self.last = time.monotonic()
        self._empty: _EmptySender | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        pending, self.pending = self.pending, []
        if pending is None:  # closed while the endpoint was being created
            transport.close()
            return
        self.transport = transport  # type: ignore[assignment]
        for data in pending:
            self.send(data)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.last = time.monotonic()
        self.fwd.reply(data, self.addr)

    def error_received(self, exc: Exception) -> None:
        # e.g. ECONNREFUSED after an ICMP port unreachable: the local service is not up (yet)
        self.fwd.xl.debug("local udp socket for %s: %s", fmt_addr(self.addr), exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._empty is not None:
            self._empty.close()
            self._empty = None
        self.fwd._forget(self)

    def send(self, data: bytes) -> None:
        self.last = time.monotonic()
        t = self.transport
        if t is None:
            if self.pending is not None and len(self.pending) < QUEUE_FRAMES:
                self.pending.append(data)
            return
        if self.prefix:
            data = self.prefix + data
        if _write_buffered(t) > UDP_SEND_BUFFER_LIMIT:
            return
        if not data:  # a zero-length datagram: the transport would skip it
            if self._empty is None:
                self._empty = _EmptySender()
            self._empty.send(t)
            return
        t.sendto(data)

    def close(self) -> None:
        self.pending = None
        if self._empty is not None:
            self._empty.close()
            self._empty = None
        if self.transport is not None:
            self.transport.close()
        else:
            self.fwd._forget(self)


class LocalForwarder:
    """frpc side of a udp/sudp stream: datagrams for user ``r`` leave through a socket of their
    own connected to the local service; what comes back goes to ``reply(data, r)``.

    A socket idle for 30 s in both directions is closed. (Go closes it 30 s after the last datagram
    *from* the local service, however much the user sends: a one-way service then sees a new
    source port every 30 s. Keeping it while either direction is active is deliberate.)
    ``proxy_protocol`` ("v1"/"v2", "" = off): every datagram to the local service starts with a
    PROXY header (UDP family, user ``r`` as source, the local service as destination).
    """

    def __init__(
        self, name: str | XLog, local: tuple[str, int], packet_size: int, reply: Callable[[bytes, Any], Any],
        *, idle_timeout: float = LOCAL_IDLE_TIMEOUT, proxy_protocol: str = "",
    ) -> None:
        self.xl = _xlog(name)
        self.local = local
        self.proxy_protocol = proxy_protocol
        self.packet_size = packet_size
        self._reply = reply
        self._loop = asyncio.get_running_loop()
        self._peers: dict[Any, _LocalPeer] = {}
        self._closed = False
        self._idle = idle_timeout
        self._sweep_every = max(0.5, min(5.0, idle_timeout / 6))
        self._sweeper = self._loop.call_later(self._sweep_every, self._sweep)
        self._family = socket.AF_INET6 if ":" in local[0] else socket.AF_INET

    def deliver(self, data: bytes, addr: Any) -> None:
        """A datagram from frps for user ``addr``: send it to the local service."""
        if self._closed:
            return
        peer = self._peers.get(addr)
        if peer is None:
            peer = self._open(addr)
            if peer is None:
                return
        peer.send(data)

    def reply(self, data: bytes, addr: Any) -> None:
        if not self._closed:
            self._reply(data[: self.packet_size] if len(data) > self.packet_size else data, addr)

    def _open(self, addr: Any) -> _LocalPeer | None:
        try:
            sock = socket.socket(self._family, socket.SOCK_DGRAM)
            try:
                sock.setblocking(False)
                enlarge_buffers(sock, SOCKET_BUFFER)
                sock.connect(self.local)
            except OSError:
                sock.close()
                raise
        except OSError as exc:
            self.xl.warning("dial local udp service %s error: %s", fmt_addr(self.local), exc)
            return None
        prefix = b""
        if self.proxy_protocol:
            from ..proto.proxyproto import ProxyProtocolError, build_header

            try:
                prefix = build_header(self.proxy_protocol, addr, self.local, udp=True)
            except ProxyProtocolError as exc:  # Go sends the datagram without a header then
                self.xl.debug("proxy protocol header for %s: %s", fmt_addr(addr), exc)
        peer = _LocalPeer(self, addr, prefix)
        self._peers[addr] = peer
        task = self._loop.create_task(self._loop.create_datagram_endpoint(lambda: peer, sock=sock))
        task.add_done_callback(partial(self._opened, peer=peer, sock=sock))
        return peer

    def _opened(self, task: asyncio.Task[Any], peer: _LocalPeer, sock: socket.socket) -> None:
        if task.cancelled() or task.exception() is not None:
            sock.close()
            self._forget(peer)

    def _forget(self, peer: _LocalPeer) -> None:
        if self._peers.get(peer.addr) is peer:
            del self._peers[peer.addr]

    def _sweep(self) -> None:
        if self._closed:
            return
        cutoff = time.monotonic() - self._idle
        for peer in [p for p in self._peers.values() if p.last < cutoff]:
            self.xl.debug("local udp socket for %s idle, closing", fmt_addr(peer.addr))
            self._forget(peer)
            peer.close()
        self._sweeper = self._loop.call_later(self._sweep_every, self._sweep)

    @property
    def peers(self) -> int:
        return len(self._peers)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._sweeper.cancel()
        peers = list(self._peers.values())
        self._peers.clear()
        for p in peers:
            p.close()


async def resolve_udp(host: str, port: int) -> tuple[str, int]:
    """``host:port`` as a socket address for UDP (first result, like Go's ResolveUDPAddr)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    if not infos:
        raise OSError(f"cannot resolve {host}")
    addr = infos[0][4]
    return str(addr[0]), int(addr[1])


class UserSocket(asyncio.DatagramProtocol):
    """A bound UDP socket facing users (frps udp proxy, sudp visitor): datagrams go to
    ``on_datagram(data, addr)``; :meth:`sendto` never blocks (drops when the kernel pushes back)."""

    def __init__(self, on_datagram: Callable[[bytes, Any], None], packet_size: int) -> None:
        self._on_datagram = on_datagram
        self.packet_size = packet_size
        self.transport: asyncio.DatagramTransport | None = None
        self.v6 = False
        self._empty: _EmptySender | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        self.v6 = sock is not None and sock.family == socket.AF_INET6
        enlarge_buffers(sock, SOCKET_BUFFER)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        # Go reads into a udpPacketSize buffer: longer datagrams are truncated.
        if len(data) > self.packet_size:
            data = data[: self.packet_size]
        self._on_datagram(data, addr if len(addr) == 2 else addr[:2])

    def error_received(self, exc: Exception) -> None:
        log.debug("udp socket error: %s", exc)

    def sendto(self, data: bytes, addr: Any) -> None:
        t = self.transport
        if t is None or t.is_closing() or _write_buffered(t) > UDP_SEND_BUFFER_LIMIT:
            return
        if self.v6 and ":" not in addr[0]:
            addr = ("::ffff:" + addr[0], addr[1])
        if not data:  # a zero-length datagram: the transport would skip it
            if self._empty is None:
                self._empty = _EmptySender()
            self._empty.send(t, addr)
            return
        try:
            t.sendto(data, addr)
        except (OSError, ValueError) as exc:
            log.debug("udp sendto %s failed: %s", fmt_addr(addr), exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._empty is not None:
            self._empty.close()
            self._empty = None

    def close(self) -> None:
        if self._empty is not None:
            self._empty.close()
            self._empty = None
        if self.transport is not None:
            self.transport.close()


# -- frps: an sudp tunnel between a v1 and a v2 end -----------------------------------------------


class PacketBridge:
    """frps between an sudp provider's work connection and a visitor's connection that frame
    ``UDPPacket`` messages differently (one client on wire protocol v1, the other on v2): each side
    is parsed and its messages written again in the other's framing, as Go's frps does since 0.69.1
    (``joinSUDPMessageBridge``). Pings go from the provider to the visitor; the visitor's are
    dropped, as in Go. Counts the datagram bytes (Go counts the payloads there, not the frames).

    Looks like a :class:`~aiofrp.net.relay.Relay` to the proxy's statistics: ``bytes_a_to_b``
    (visitor to provider), ``bytes_out`` (to the visitor), ``done``, :meth:`close`.
    """

    def __init__(
        self,
        name: str | XLog,
        visitor: tuple[asyncio.Transport, bytes, bool],
        visitor_codecs: tuple[Codec | None, Codec | None],
        visitor_v2: bool,
        work: tuple[asyncio.Transport, bytes, bool],
        work_codecs: tuple[Codec | None, Codec | None],
        work_v2: bool,
        *,
        limiter: TokenBucket | None = None,
        on_close: Callable[[PacketBridge], None] | None = None,
    ) -> None:
        self.bytes_a_to_b = 0
        self.bytes_out = 0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._on_close = on_close
        self.visitor = PacketConn(name, self._from_visitor, encode=visitor_codecs[0], decode=visitor_codecs[1],
                                  v2=visitor_v2, on_close=self._closed)
        # the provider side, where Go's frps meters the proxy (bandwidthLimitMode "server")
        self.work = PacketConn(name, self._from_work, encode=work_codecs[0], decode=work_codecs[1], v2=work_v2,
                               on_close=self._closed, on_ping=self.visitor.send_ping, limiter=limiter)
        self.visitor.attach(*visitor)
        self.work.attach(*work)
        if self.done.done():  # one side ended while the other was being attached
            visitor[0].close()
            work[0].close()

    def _from_visitor(self, data: bytes, addr: Any) -> None:
        self.bytes_a_to_b += len(data)
        self.work.send_datagram(data, addr)

    def _from_work(self, data: bytes, addr: Any) -> None:
        self.bytes_out += len(data)
        self.visitor.send_datagram(data, addr)

    def _closed(self, _side: PacketConn) -> None:
        if self.done.done():
            return
        self.done.set_result(None)
        self.visitor.close()
        self.work.close()
        if self._on_close is not None:
            cb, self._on_close = self._on_close, None
            cb(self)

    def close(self) -> None:
        self.visitor.close()  # the other side follows (_closed)


def _xlog(name: str | XLog) -> XLog:
    """The logger of a stream's or forwarder's lines: the proxy's or visitor's (its ``[RUNID]
    [NAME] `` prefix, as Go logs them with the proxy's xlog), else one named ``[name] ``."""
    return name.on(log) if isinstance(name, XLog) else XLog(log, name)
