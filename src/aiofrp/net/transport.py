"""The base of the hand-made transports (``MuxStream``, ``QuicStream``, ``KCPConn``).

Their bytes do not come from a socket the event loop reads: a driver (the yamux session, the QUIC
connection, the KCP clock) pushes them in. :class:`PausableTransport` gives such a transport the
read side of ``asyncio.Transport`` with the semantics of the loop's own transports:

* ``pause_reading`` stops delivery at once; what arrives meanwhile is held, in order, and EOF is
  held behind it;
* ``resume_reading`` delivers what was held from a fresh loop iteration (``call_soon``), never
  from inside the caller, and the EOF last;
* ``data_received`` may pause, close or abort the transport: delivery stops right there;
* once the transport is closing (:meth:`PausableTransport._stop_reading`), held bytes and EOF are
  dropped and later ones are ignored.

Every byte handed in is reported to :meth:`PausableTransport._consumed` exactly once, when the
protocol got it or when it was dropped, so a transport with a receive window (yamux) credits the
peer only for what the application took: a paused stream pushes back on its sender.

A transport whose data waits in its core until it is read (KCP's receive queue) does not hand
bytes in: it overrides :meth:`PausableTransport._next_buffered` and
:meth:`PausableTransport._has_buffered` and calls :meth:`PausableTransport._drain` when data came.

The write side's flow control to the protocol (``pause_writing``/``resume_writing``) goes through
:meth:`PausableTransport._set_write_paused`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any, cast

log = logging.getLogger("aiofrp.net")


class PausableTransport(asyncio.Transport):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._loop = loop
        self._protocol: asyncio.Protocol | None = None
        self._reading_paused = False
        self._rbuf: deque[bytes | memoryview] = deque()
        self._eof_pending = False  # EOF held behind paused or held bytes
        self._drain_scheduled = False
        self._read_closed = False  # nothing is delivered any more
        self._write_paused = False  # what the protocol was last told

    # -- asyncio.Transport ----------------------------------------------------------------------

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = cast(asyncio.Protocol, protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return cast(asyncio.BaseProtocol, self._protocol)

    def pause_reading(self) -> None:
        self._reading_paused = True

    def resume_reading(self) -> None:
        if not self._reading_paused:
            return
        self._reading_paused = False
        if self._eof_pending or self._has_buffered():
            self._schedule_drain()

    def is_reading(self) -> bool:
        return not self._reading_paused

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    # -- for the driver -------------------------------------------------------------------------

    def _feed_data(self, data: bytes | memoryview) -> None:
        """Bytes from the peer: to the protocol now, or held while paused (or behind held ones)."""
        if self._read_closed:
            self._consumed(len(data))
            return
        if self._reading_paused or self._rbuf:
            self._rbuf.append(data)
            return
        self._protocol.data_received(data)  # type: ignore[union-attr,arg-type]
        self._consumed(len(data))

    def _feed_eof(self) -> None:
        """The peer's EOF: to the protocol now, or once the held bytes are delivered."""
        if self._read_closed:
            return
        if self._reading_paused or self._has_buffered():
            self._eof_pending = True
            return
        self._deliver_eof()

    def _stop_reading(self) -> None:
        """Closing: drop what is held; nothing more is delivered."""
        self._read_closed = True
        self._eof_pending = False
        if self._rbuf:
            n = sum(len(d) for d in self._rbuf)
            self._rbuf.clear()
            self._consumed(n)

    def _schedule_drain(self) -> None:
        if not self._drain_scheduled:
            self._drain_scheduled = True
            self._loop.call_soon(self._drain)

    def _drain(self) -> None:
        """Deliver what is held (then a held EOF) until paused, closed or empty."""
        self._drain_scheduled = False
        while not self._reading_paused and not self._read_closed:
            proto = self._protocol
            if proto is None:
                break
            data = self._next_buffered()
            if data is None:
                break
            proto.data_received(data)  # type: ignore[arg-type]
            self._consumed(len(data))
        if self._eof_pending and not self._reading_paused and not self._read_closed and not self._has_buffered():
            self._eof_pending = False
            self._deliver_eof()
        self._drained()

    def _deliver_eof(self) -> None:
        keep_open = bool(self._protocol.eof_received())  # type: ignore[union-attr]
        self._eof_delivered(keep_open)

    def _set_write_paused(self, paused: bool) -> None:
        """Tell the protocol to pause or resume writing, once per change."""
        proto = self._protocol
        if paused == self._write_paused or proto is None:
            return
        self._write_paused = paused
        try:
            (proto.pause_writing if paused else proto.resume_writing)()
        except Exception:
            log.exception("protocol flow-control callback failed")

    # -- hooks ----------------------------------------------------------------------------------

    def _next_buffered(self) -> bytes | memoryview | None:
        """The next held chunk, or None."""
        return self._rbuf.popleft() if self._rbuf else None

    def _has_buffered(self) -> bool:
        return bool(self._rbuf)

    def _consumed(self, n: int) -> None:
        """``n`` bytes were delivered or dropped (yamux: re-open the receive window)."""

    def _drained(self) -> None:
        """After a :meth:`_drain` (yamux: flush the window updates)."""

    def _eof_delivered(self, keep_open: bool) -> None:
        """The protocol got EOF; ``keep_open``: what its ``eof_received`` returned."""
        if not keep_open:
            self.close()
