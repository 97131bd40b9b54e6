"""Pipe two transports into each other with back-pressure, on protocol callbacks only.

No coroutine runs per chunk: each side's ``data_received`` writes straight into the other
transport, and a full write buffer on one side pauses reading on the other. EOF is passed on
as a half-close where the other transport can do it (TCP, yamux stream); otherwise, and on
any error, both sides are closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import socket
import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from ..proto.crypto import Buffer, CFBDecryptor, CFBEncryptor
from ..proto.snappy import SnappyFrameReader, SnappyFrameWriter

if TYPE_CHECKING:
    from .limiter import TokenBucket

log = logging.getLogger("aiofrp.net.relay")

SPLICE = hasattr(os, "splice")  # raw TCP<->TCP relays move bytes in the kernel (see _Splice)
PIPE_SIZE = 1 << 20  # the kernel pipe between the two sockets of one direction
SPLICE_CHUNK = 1 << 20  # at most this many bytes per splice call
# A relay starts on callbacks and takes its sockets over once this many bytes (both directions)
# went through: setting a splice up (two duplicates, two pipes, four more registrations) costs
# about as much CPU as a whole short connection, so short ones (most of a connection-rate load)
# never pay it, and a bulk transfer is spliced after its first chunks. 0: at once.
SPLICE_AFTER = 256 << 10
SPLICE_BUDGET = 4 << 20  # bytes moved per readiness callback before yielding to the loop
# The loop's own TCP transports (uvloop's and asyncio's), whose socket may be taken over.
_SOCKET_TRANSPORTS = frozenset({"uvloop.loop.TCPTransport", "asyncio.selector_events._SelectorSocketTransport"})

Codec = Callable[[Buffer], bytes]  # a codec of a work connection: plain -> wire or wire -> plain


class WorkConn(NamedTuple):
    """A work connection handed over after StartWorkConn (frps: ``ServerProxy.start_work_conn``)."""

    transport: asyncio.Transport
    data: bytes  # bytes frpc already sent on it
    eof: bool
    encode: Codec | None  # toward frpc (useCompression/useEncryption, §4.2)
    decode: Codec | None  # from frpc


class PendingConn(asyncio.Protocol):
    """Holds a freshly accepted user connection until a relay takes it over.

    Reading stays paused after the first chunk so a silent relay set-up cannot buffer
    without bound.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffered: list[bytes] = []
        self.eof = False
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffered.append(data)
        if self.transport is not None:
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self.eof = True
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True

    def take(self) -> bytes:
        data = b"".join(self.buffered)
        self.buffered.clear()
        return data

    def refuse(self) -> None:
        """Close a connection no relay will take: reset (RST) when it sent bytes nobody read, as
        the kernel does when Go closes such a socket; else a plain close (FIN)."""
        transport = self.transport
        if transport is None:
            return
        if self.buffered:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):  # linger 0: close() sends RST, not FIN
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        else:
            transport.close()


class _Side(asyncio.Protocol):
    __slots__ = ("codec", "count", "decoded", "dst", "eof", "other", "relay", "src")

    def __init__(self, relay: Relay, src: asyncio.Transport, dst: asyncio.Transport, codec: Codec | None) -> None:
        self.relay = relay
        self.src = src
        self.dst = dst
        self.codec = codec
        self.eof = False
        self.other: _Side
        self.count = 0  # bytes read from src
        self.decoded = 0  # bytes the codec made of them (with a codec only; see Relay.bytes_out)

    def data_received(self, data: bytes) -> None:
        data = self._decode(data)
        if data:
            self.dst.write(data)

    def _decode(self, data: bytes) -> bytes:
        """Count the bytes and run the codec; b"" when nothing is to be passed on."""
        self.count += len(data)
        codec = self.codec
        if codec is None:
            return data
        try:
            out = codec(data)
        except Exception as exc:  # noqa: BLE001 - corrupt peer data closes this relay only
            log.warning("relay: bad data on %s: %s", self.relay.name, exc)
            self.relay.close()
            return b""
        self.decoded += len(out)
        return out

    def eof_received(self) -> bool:
        self.eof = True
        dst = self.dst
        if self.other.eof or not dst.can_write_eof() or not self.src.can_write_eof():
            self.relay.close()
            return False
        try:
            dst.write_eof()
        except (OSError, RuntimeError, NotImplementedError):
            self.relay.close()
            return False
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.relay._lost(self, exc)

    def pause_writing(self) -> None:
        # Our transport's buffer is full: stop reading from the side that writes into it.
        self.other.src.pause_reading()

    def resume_writing(self) -> None:
        self.other.src.resume_reading()


class _SpliceLater(_Side):
    """A side of a relay between two plain TCP sockets, before it is spliced (SPLICE_AFTER)."""

    __slots__ = ()

    def data_received(self, data: bytes) -> None:
        self.count += len(data)
        self.dst.write(data)
        relay = self.relay
        if 0 <= relay._splice_at <= self.count + self.other.count:
            relay._upgrade()


class _LimitedSide(_Side):
    """A side whose output is metered by the proxy's bandwidth bucket (frp §5.13).

    What the bucket does not grant at once is held (in order) while reading from ``src`` is
    paused; a ``call_later`` timer lets it go on. Reading resumes only when nothing is held and
    the destination's write buffer is not full (``flow_paused``). An EOF waits for held bytes.
    """

    __slots__ = ("bucket", "eof_pending", "flow_paused", "held", "timer")

    def __init__(self, relay: Relay, src: asyncio.Transport, dst: asyncio.Transport, codec: Codec | None,
                 bucket: TokenBucket) -> None:
        super().__init__(relay, src, dst, codec)
        self.bucket = bucket
        self.held: bytearray | None = None
        self.flow_paused = False
        self.eof_pending = False
        self.timer: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        data = self._decode(data)
        if not data:
            return
        if self.held is not None:  # transports may deliver a little after pause_reading
            self.held += data
            return
        self._send(data)

    def _send(self, data: bytes | bytearray) -> None:
        n = len(data)
        now = time.monotonic()
        granted = self.bucket.take(n, now)
        if granted:
            self.dst.write(data if granted == n else data[:granted])
        if granted == n:
            return
        rest = data[granted:] if granted else data
        self.held = rest if isinstance(rest, bytearray) else bytearray(rest)
        self.src.pause_reading()
        delay = self.bucket.wait_time(len(self.held), now)
        self.timer = asyncio.get_running_loop().call_later(delay, self._release)

    def _release(self) -> None:
        self.timer = None
        held, self.held = self.held, None
        if self.relay._closed or held is None:
            return
        self._send(held)
        if self.held is not None:
            return
        if self.eof_pending:
            self.eof_pending = False
            _Side.eof_received(self)
        elif not self.flow_paused:
            self.src.resume_reading()

    def eof_received(self) -> bool:
        if self.held is not None:
            self.eof_pending = True
            return True
        return _Side.eof_received(self)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.relay._lost(self, exc)

    def pause_writing(self) -> None:
        other = self.other
        other.flow_paused = True  # type: ignore[attr-defined]
        other.src.pause_reading()

    def resume_writing(self) -> None:
        other = self.other
        other.flow_paused = False  # type: ignore[attr-defined]
        if other.held is None:  # type: ignore[attr-defined]
            other.src.resume_reading()


class Relay:
    """Bidirectional pipe between ``a`` (e.g. the user connection) and ``b`` (the work connection).

    ``a_to_b`` / ``b_to_a`` transform data in flight (compression, encryption).
    ``a_data`` / ``b_data`` are bytes already read from a / b before the relay started.
    ``limiter``: the proxy's bandwidth bucket, metering both directions (None: no limit, and
    then nothing but the plain callbacks runs per chunk).
    """

    def __init__(
        self,
        a: asyncio.Transport,
        b: asyncio.Transport,
        *,
        a_to_b: Codec | None = None,
        b_to_a: Codec | None = None,
        a_data: bytes = b"",
        b_data: bytes = b"",
        a_eof: bool = False,
        b_eof: bool = False,
        name: str = "",
        on_close: Callable[[Relay], None] | None = None,
        limiter: TokenBucket | None = None,
    ) -> None:
        self.name = name
        self._on_close = on_close
        self._closed = False
        loop = asyncio.get_running_loop()
        self.done: asyncio.Future[None] = loop.create_future()
        self._spliced: tuple[_Pump, _Pump] | None = None
        self.a_side: _Side | _Pump
        self.b_side: _Side | _Pump
        self._splice_at = -1  # bytes relayed after which _upgrade takes the sockets over; -1: never
        written = (0, 0)  # a_data/b_data already written by _try_splice, which then gave up
        if SPLICE and limiter is None and a_to_b is None and b_to_a is None and not a_eof and not b_eof:
            if SPLICE_AFTER <= 0:
                spliced = self._try_splice(loop, a, b, a_data, b_data)
                if spliced:
                    return
                if spliced is not None:
                    written = (len(a_data), len(b_data))
                    a_data = b_data = b""
            elif _is_socket_transport(a) and _is_socket_transport(b):  # the socket is checked at _upgrade
                self._splice_at = SPLICE_AFTER
        sa: _Side
        sb: _Side
        if self._splice_at >= 0:
            self.a_side = sa = _SpliceLater(self, a, b, None)
            self.b_side = sb = _SpliceLater(self, b, a, None)
        elif limiter is None:
            self.a_side = sa = _Side(self, a, b, a_to_b)
            self.b_side = sb = _Side(self, b, a, b_to_a)
        else:
            self.a_side = sa = _LimitedSide(self, a, b, a_to_b, limiter)
            self.b_side = sb = _LimitedSide(self, b, a, b_to_a, limiter)
        sa.count, sb.count = written
        sa.other = sb
        sb.other = sa
        a.set_protocol(sa)
        b.set_protocol(sb)
        if a_data:
            sa.data_received(a_data)
        if b_data and not self._closed:
            sb.data_received(b_data)
        if a_eof and not self._closed:
            sa.eof_received()
        if b_eof and not self._closed:
            sb.eof_received()
        if not self._closed:
            for t in (a, b):
                if t.is_closing():
                    self.close()
                    break
                t.resume_reading()
            if limiter is not None and not self._closed:
                for side in (sa, sb):
                    if side.held is not None:  # type: ignore[attr-defined]
                        side.src.pause_reading()

    @property
    def bytes_a_to_b(self) -> int:
        return self.a_side.count

    @property
    def bytes_b_to_a(self) -> int:
        return self.b_side.count

    @property
    def bytes_out(self) -> int:
        """Bytes written to ``a`` (after b_to_a's codec): frp's "traffic out" of a user connection."""
        side = self.b_side
        return side.decoded if side.codec is not None else side.count

    def _try_splice(self, loop: asyncio.AbstractEventLoop, a: asyncio.Transport, b: asyncio.Transport,
                    a_data: bytes, b_data: bytes) -> bool | None:
        """Take the sockets of two plain TCP transports over and relay with ``os.splice``.

        The bytes already read are written through the transports first; the sockets are taken
        only once both write buffers are empty (else False: the callback relay goes on, with
        ``a_data``/``b_data`` already written). None: not two plain TCP sockets. The transports are then closed on a duplicate
        of each socket, so the connections stay open on the duplicates.
        """
        fa = _socket_fd(a)
        fb = _socket_fd(b) if fa is not None else None
        if fa is None or fb is None:
            return None
        if a_data:
            b.write(a_data)
        if b_data:
            a.write(b_data)
        if a.get_write_buffer_size() or b.get_write_buffer_size() or a.is_closing() or b.is_closing():
            return False
        opened: list[int] = []
        try:  # out of descriptors (two duplicates and two pipes more): the callback relay
            da = os.dup(fa)
            opened.append(da)
            db = os.dup(fb)
            opened.append(db)
            pa = _Pump(self, loop, da, db)
            opened += (pa.rp, pa.wp)
            pb = _Pump(self, loop, db, da)
        except OSError as exc:
            log.debug("relay %s: no splice: %s", self.name, exc)
            for fd in opened:
                os.close(fd)
            return False
        for t in (a, b):
            t.set_protocol(_Detached())
            t.abort()  # closes the transport's own descriptor only: no FIN, no RST
        pa.count = len(a_data)
        pb.count = len(b_data)
        pa.other = pb
        pb.other = pa
        self._spliced = (pa, pb)
        self.a_side, self.b_side = pa, pb
        pa.start()
        pb.start()
        return True

    def _upgrade(self) -> None:
        """A callback relay that moved SPLICE_AFTER bytes: splice from now on, if it can.

        Only between chunks with both write buffers empty and no EOF seen, so no byte is held
        anywhere but in the kernel; otherwise it tries again after as many bytes more."""
        sa, sb = self.a_side, self.b_side
        assert isinstance(sa, _Side) and isinstance(sb, _Side)
        a, b = sa.src, sb.src
        if self._closed or sa.eof or sb.eof:
            self._splice_at = -1
            return
        self._splice_at = sa.count + sb.count + SPLICE_AFTER
        spliced = self._try_splice(asyncio.get_running_loop(), a, b, b"", b"")
        if spliced is None:  # not two TCP sockets (a unix socket, say): callbacks for good
            self._splice_at = -1
        if not spliced:
            return
        assert self._spliced is not None
        pa, pb = self._spliced
        pa.count, pb.count = sa.count, sb.count

    def _lost(self, side: _Side, exc: Exception | None) -> None:
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._spliced is not None:
            pa, pb = self._spliced
            pa.stop()
            pb.stop()
            for fd in (pa.src, pb.src):
                os.close(fd)
        else:
            for side in (self.a_side, self.b_side):
                assert isinstance(side, _Side)
                timer = getattr(side, "timer", None)
                if timer is not None:
                    timer.cancel()
                side.src.close()
        if not self.done.done():
            self.done.set_result(None)
        if self._on_close is not None:
            cb, self._on_close = self._on_close, None
            try:
                cb(self)
            except Exception:
                log.exception("relay close callback failed")


def _is_socket_transport(t: asyncio.BaseTransport) -> bool:
    """One of the loop's own TCP transports (its socket may still be a unix one: see _socket_fd)."""
    cls = type(t)
    return f"{cls.__module__}.{cls.__qualname__}" in _SOCKET_TRANSPORTS


def _socket_fd(t: asyncio.BaseTransport) -> int | None:
    """The descriptor of a plain TCP socket under one of the loop's own transports, else None
    (TLS, yamux streams, websocket, KCP, QUIC and unix sockets are relayed by callbacks)."""
    if not _is_socket_transport(t) or t.is_closing():
        return None
    sock = t.get_extra_info("socket")
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.type != socket.SOCK_STREAM:
        return None
    fd = sock.fileno()
    return fd if isinstance(fd, int) and fd >= 0 else None


class _Detached(asyncio.Protocol):
    """What a transport whose socket a spliced relay took over reports to: nothing."""


class _Pump:
    """One direction of a spliced relay: ``src`` socket -> a kernel pipe -> ``dst`` socket.

    Reading from ``src`` waits while the pipe holds bytes ``dst`` did not take (back-pressure);
    ``src``'s EOF becomes ``shutdown(dst, SHUT_WR)`` once the pipe is empty (half-close), and
    the relay closes when both directions ended. ``count`` is read live by the stats.
    """

    __slots__ = ("count", "dst", "eof", "loop", "other", "pending", "reading", "relay", "rp", "src", "wp", "writing")
    codec = None  # no codec on a spliced relay (see Relay.bytes_out)
    decoded = 0

    def __init__(self, relay: Relay, loop: asyncio.AbstractEventLoop, src: int, dst: int) -> None:
        self.relay = relay
        self.loop = loop
        self.src = src
        self.dst = dst
        self.rp, self.wp = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            fcntl.fcntl(self.wp, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:  # above /proc/sys/fs/pipe-max-size: keep the default 64 KiB
            pass
        self.pending = 0  # bytes in the pipe
        self.count = 0  # bytes read from src
        self.eof = False  # src's EOF was passed on to dst
        self.reading = False
        self.writing = False
        self.other: _Pump

    def start(self) -> None:
        self.reading = True
        self.loop.add_reader(self.src, self._readable)

    def stop(self) -> None:
        if self.reading:
            self.reading = False
            self.loop.remove_reader(self.src)
        if self.writing:
            self.writing = False
            self.loop.remove_writer(self.dst)
        os.close(self.rp)
        os.close(self.wp)

    def _fail(self, exc: OSError) -> None:
        log.debug("relay %s: %s", self.relay.name, exc)
        self.relay.close()

    def _readable(self) -> None:
        budget = SPLICE_BUDGET
        flags = os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK
        while budget > 0:
            try:
                n = os.splice(self.src, self.wp, SPLICE_CHUNK, flags=flags)
            except BlockingIOError:
                return
            except OSError as exc:
                self._fail(exc)
                return
            if not n:
                self.reading = False
                self.loop.remove_reader(self.src)
                self._eof()
                return
            self.count += n
            self.pending += n
            budget -= n
            if not self._flush():
                if not self.relay._closed:  # dst is full: wait for it, not for src
                    self.reading = False
                    self.loop.remove_reader(self.src)
                    self.writing = True
                    self.loop.add_writer(self.dst, self._writable)
                return

    def _flush(self) -> bool:
        """Move the pipe into dst; False if dst is full (or the relay closed on an error)."""
        flags = os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK
        while self.pending:
            try:
                self.pending -= os.splice(self.rp, self.dst, self.pending, flags=flags)
            except BlockingIOError:
                return False
            except OSError as exc:
                self._fail(exc)
                return False
        return True

    def _writable(self) -> None:
        if not self._flush():
            return
        self.writing = False
        self.loop.remove_writer(self.dst)
        self.reading = True
        self.loop.add_reader(self.src, self._readable)

    def _eof(self) -> None:
        self.eof = True
        if self.other.eof:
            self.relay.close()
            return
        try:
            _shutdown_wr(self.dst)
        except OSError as exc:  # e.g. ENOTCONN: dst is gone
            self._fail(exc)


def _shutdown_wr(fd: int) -> None:
    s = socket.socket(fileno=fd)
    try:
        s.shutdown(socket.SHUT_WR)
    finally:
        s.detach()


def chain(first: Codec | None, second: Codec | None) -> Codec | None:
    """``second(first(data))``, skipping absent codecs (e.g. a visitor's sk layer, then the
    provider's token layer)."""
    if first is None:
        return second
    if second is None:
        return first

    def both(data: Buffer) -> bytes:
        out = first(data)
        return second(out) if out else out

    return both


def work_conn_codecs(key: bytes | None, compress: bool) -> tuple[Codec | None, Codec | None]:
    """(plain -> wire, wire -> plain) codecs for a work or visitor connection (frp §4.2).

    Compression is the outer layer, encryption the inner one.
    """
    if key is None and not compress:
        return None, None
    enc = CFBEncryptor(key) if key is not None else None
    dec = CFBDecryptor(key) if key is not None else None
    zw = SnappyFrameWriter() if compress else None
    zr = SnappyFrameReader() if compress else None

    if enc is not None and zw is not None:
        e, d, c, u = enc.encrypt, dec.decrypt, zw.compress, zr.decompress  # type: ignore[union-attr]

        def encode(data: Buffer) -> bytes:
            return e(c(data))

        def decode(data: Buffer) -> bytes:
            return u(d(data))

        return encode, decode
    if enc is not None:
        return enc.encrypt, dec.decrypt  # type: ignore[union-attr]
    return zw.compress, zr.decompress  # type: ignore[union-attr]
