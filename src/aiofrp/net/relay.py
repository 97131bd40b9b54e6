"""Pipe two transports into each other with back-pressure, on protocol callbacks only.

No coroutine runs per chunk: each side's ``data_received`` writes straight into the other
transport, and a full write buffer on one side pauses reading on the other. EOF is passed on
as a half-close where the other transport can do it (TCP, yamux stream); otherwise, and on
any error, both sides are closed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from ..proto.crypto import Buffer, CFBDecryptor, CFBEncryptor
from ..proto.snappy import SnappyFrameReader, SnappyFrameWriter

if TYPE_CHECKING:
    from .limiter import TokenBucket

log = logging.getLogger("aiofrp.net.relay")

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
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        sa: _Side
        sb: _Side
        if limiter is None:
            self.a_side = sa = _Side(self, a, b, a_to_b)
            self.b_side = sb = _Side(self, b, a, b_to_a)
        else:
            self.a_side = sa = _LimitedSide(self, a, b, a_to_b, limiter)
            self.b_side = sb = _LimitedSide(self, b, a, b_to_a, limiter)
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

    def _lost(self, side: _Side, exc: Exception | None) -> None:
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for side in (self.a_side, self.b_side):
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
