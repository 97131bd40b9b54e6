"""Two transports joined in memory (Go's ``net.Pipe``), for connections inside one process: the
ssh tunnel gateway's virtual client and frps (server/service.py: ``Server.open_internal``).

What one end writes is delivered to the other end's protocol from a later loop iteration (never
inside ``write``), as a socket would; the read side is :class:`PausableTransport`'s, so pausing
holds the bytes (and a following EOF) in order. Flow control: a writer is paused while more than
:data:`HIGH_WATER` bytes it wrote are not yet taken by the reader's protocol, and resumed below
:data:`LOW_WATER`. ``write_eof`` is a half-close; ``close``/``abort`` end both directions and
both ends get ``connection_lost``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .transport import PausableTransport

__all__ = ["PipeEnd", "pipe"]

HIGH_WATER = 1 << 20
LOW_WATER = 256 << 10


class PipeEnd(PausableTransport):
    def __init__(self, loop: asyncio.AbstractEventLoop, extra: dict[str, Any] | None = None) -> None:
        super().__init__(loop)
        self.peer: PipeEnd | None = None
        self._extra = dict(extra or {})
        self._closing = False
        self._lost = False
        self._eof_written = False
        self._peer_closed = False
        self._eof_fed = False
        self._in_flight = 0  # bytes written by this end and not yet taken by the peer's protocol

    # -- asyncio.Transport ----------------------------------------------------------------------

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._extra.get(name, default)

    def is_closing(self) -> bool:
        return self._closing

    def write(self, data: bytes | bytearray | memoryview) -> None:
        peer = self.peer
        if self._closing or self._eof_written or self._peer_closed or peer is None or peer._read_closed or not data:
            return
        chunk = bytes(data)
        self._in_flight += len(chunk)
        peer._rbuf.append(chunk)
        if not peer._reading_paused:
            peer._schedule_drain()
        if self._in_flight > HIGH_WATER:
            self._set_write_paused(True)

    def write_eof(self) -> None:
        if self._closing or self._eof_written:
            return
        self._eof_written = True
        peer = self.peer
        if peer is not None:
            self._loop.call_soon(peer._feed_eof)

    def can_write_eof(self) -> bool:
        return True

    def get_write_buffer_size(self) -> int:
        return self._in_flight

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._stop_reading()
        peer = self.peer
        if peer is not None and not peer._closing:
            self._loop.call_soon(peer._closed_by_peer)
        self._loop.call_soon(self._connection_lost)

    def abort(self) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------------

    def _closed_by_peer(self) -> None:
        """The other end closed: what it wrote is still delivered, then EOF, then this end closes
        (as a socket whose peer closed, once the protocol has read to the end)."""
        if self._closing:
            return
        self._peer_closed = True
        if self._eof_fed:  # the peer half-closed before: EOF was delivered (or is held) already
            if not self._eof_pending:
                self.close()
            return
        self._feed_eof()

    def _feed_eof(self) -> None:
        if self._eof_fed:
            return
        self._eof_fed = True
        super()._feed_eof()

    def _eof_delivered(self, keep_open: bool) -> None:
        if self._peer_closed or not keep_open:
            self.close()

    def _connection_lost(self) -> None:
        if self._lost:
            return
        self._lost = True
        proto = self._protocol
        if proto is not None:
            proto.connection_lost(None)

    def _consumed(self, n: int) -> None:
        peer = self.peer
        if peer is None:
            return
        peer._in_flight -= n
        if peer._in_flight <= LOW_WATER:
            peer._set_write_paused(False)


def pipe(loop: asyncio.AbstractEventLoop, *, a_extra: dict[str, Any] | None = None,
         b_extra: dict[str, Any] | None = None) -> tuple[PipeEnd, PipeEnd]:
    """Two joined ends; give each a protocol (``set_protocol`` + ``connection_made``) before the
    loop runs again."""
    a, b = PipeEnd(loop, a_extra), PipeEnd(loop, b_extra)
    a.peer, b.peer = b, a
    return a, b
