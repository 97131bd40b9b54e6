"""asyncio driver for the sans-I/O KCP: a reliable byte stream over datagrams, as a Transport.

Datagrams come in through :meth:`KCPConn.datagram_received` and go out through ``send``, so the
connection can run on an already-punched UDP socket. Settings are frp's (kcp-go): stream mode,
NoDelay(1, 20 ms, 2, no congestion window), MTU 1350 including kcp-go's 8-byte FEC header,
windows 1024/1024, conversation 1. KCP has no close handshake: the layer above (yamux) ends the
session; a peer that stops acknowledging is detected by KCP's dead-link limit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from ..proto.addr import fmt_addr
from ..proto.kcp import KCP, FECEncoder, KCPError, fec_decode
from .transport import PausableTransport

log = logging.getLogger("aiofrp.net.kcp")

MTU = 1350
FEC_OVERHEAD = 8
WINDOW = 1024
WRITE_HIGH_SEGMENTS = 2 * WINDOW  # pause the protocol above this many unacknowledged segments
WRITE_LOW_SEGMENTS = WINDOW


class KCPConn(PausableTransport):
    """While reading is paused, received data waits in KCP's receive queue: the window KCP
    advertises shrinks and the peer slows down."""

    def __init__(self, send: Callable[[bytes], None], *, conv: int = 1, fec: bool = True,
                 peer: Any = None) -> None:
        super().__init__(asyncio.get_running_loop())
        self._send = send
        self._fec = FECEncoder() if fec else None
        self._kcp = k = KCP(conv, self._output, stream=True)
        k.set_nodelay(1, 20, 2, True)
        k.set_mtu(MTU - FEC_OVERHEAD if fec else MTU)
        k.set_wndsize(WINDOW, WINDOW)
        self.peer = peer
        self._closed = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = -1
        self._flush_scheduled = False
        self.closed: asyncio.Future[None] = self._loop.create_future()

    def _now(self) -> int:
        return int(self._loop.time() * 1000) & 0xFFFFFFFF

    def _output(self, packet: bytes) -> None:
        if self._fec is not None:
            packet = self._fec.encode(packet)
        try:
            self._send(packet)
        except OSError as exc:
            log.debug("kcp send: %s", exc)

    # -- input ------------------------------------------------------------------------------

    def datagram_received(self, data: bytes) -> None:
        if self._closed:
            return
        payload = fec_decode(data)
        if payload is None:
            return
        k = self._kcp
        k.current = self._now()
        try:
            k.input(payload)
        except KCPError as exc:
            log.debug("kcp: dropping datagram: %s", exc)
            return
        self._drain()
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
        at = self._kcp.check(now)
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
