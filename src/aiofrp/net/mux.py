"""asyncio driver for the sans-I/O yamux session: each stream is an ``asyncio.Transport``."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from time import monotonic
from typing import Any

from ..proto import yamux
from ..proto.addr import fmt_addr
from ..proto.yamux import (
    DataReceived,
    GoAwayReceived,
    PingAcked,
    StreamEnded,
    StreamOpened,
    StreamReset,
    WindowUpdated,
    YamuxError,
)
from .transport import PausableTransport

log = logging.getLogger("aiofrp.net.mux")

PING_TIMEOUT = 10.0  # yamux ConnectionWriteTimeout: a ping must be answered within this
STREAM_CLOSE_TIMEOUT = 300.0  # after our FIN, wait this long for the peer's before RST
FLUSH_BATCH = 512 * 1024  # data bytes taken from the session per write to the transport
STREAM_QUEUE_HIGH = 512 * 1024  # a stream with more queued in the session pauses its writer...
STREAM_QUEUE_LOW = 128 * 1024  # ... until it is back under this
SESSION_QUEUE_HIGH = 8 * 1024 * 1024  # over this in all, every stream with data queued pauses
RTT_PING_INTERVAL = 1.0  # autotuning: a ping for the round trip this often while data arrives


class MuxSession(asyncio.Protocol):
    """A yamux session over a transport (TCP or TLS).

    ``on_stream`` is called with each stream the peer opens (frps side). ``closed`` resolves
    when the underlying connection is gone.

    Stream writes queue in the sans-I/O session and are flushed at once. While the transport is
    paused only
    control frames go out; the data waits in the session, where the streams take turns by bytes
    when it resumes. So the transport's buffer stays near its high-water mark and a ping or a
    small stream never waits behind megabytes of another stream's data. A stream's writer pauses
    on its own queue (not on the session's), so a busy stream does not stop a quiet one.

    ``autotune`` (default on) lets the session size each stream's receive window to what the peer
    needs (256 KiB up to ``max_window``, see :mod:`aiofrp.proto.yamux`); the driver gives it the
    clock (``time.monotonic``: uvloop's ``loop.time()`` counts whole milliseconds) and the round
    trips of its pings, the first once the peer has spoken.
    """

    def __init__(
        self,
        client: bool,
        on_stream: Callable[[MuxStream], None] | None = None,
        keepalive_interval: float = 30.0,
        max_window: int = yamux.FRP_MAX_WINDOW,
        autotune: bool = True,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._s = yamux.Session(client, max_window, autotune)
        self._on_stream = on_stream
        self._keepalive = keepalive_interval
        self._streams: dict[int, MuxStream] = {}
        self.transport: asyncio.Transport | None = None
        self.write_paused = False
        self.closed: asyncio.Future[None] = self._loop.create_future()
        self._ping_timer: asyncio.TimerHandle | None = None
        self._ping_deadline: asyncio.TimerHandle | None = None
        self._outstanding_ping: int | None = None
        self._ping_sent: dict[int, float] = {}  # ping id -> when it went out, for the round trip
        self._rtt_timer: asyncio.TimerHandle | None = None
        self._rx_seen = False  # data arrived since the last round-trip ping
        self._is_closed = False
        self.close_reason: BaseException | None = None  # why the session ended (None: closed normally)
        self._queue_paused: set[MuxStream] = set()  # streams paused on their session queue
        self._in_receive = False  # inside data_received, which flushes once at its end
        self._held = False  # between hold() and release(), which flushes once
        self._flush_handle: asyncio.Handle | None = None  # the end of a loop turn that flushed
        self._flush_later = False  # streams wrote after that flush: flush again at the turn's end

    # -- transport callbacks -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self._keepalive > 0:
            self._ping_timer = self._loop.call_later(self._keepalive, self._send_ping)
        self._flush()

    def data_received(self, data: bytes) -> None:
        if not self._rx_seen and self._rtt_timer is None and self._s.autotune:
            # the first round trip for autotuning, once the peer spoke (so the session's first
            # frame on the wire stays the SYN of its first stream, as Go sends it)
            self._ping_sent[self._s.ping()] = time.monotonic()
            self._rtt_timer = self._loop.call_later(RTT_PING_INTERVAL, self._rtt_ping)
        self._rx_seen = True
        try:
            events = self._s.receive_data(data)
        except YamuxError as exc:
            self.session_error(exc)
            return
        self._in_receive = True
        try:
            self._dispatch(events)
        finally:
            self._in_receive = False
        self._flush()

    def _dispatch(self, events: list[yamux.Event]) -> None:
        streams = self._streams
        for ev in events:
            try:
                if type(ev) is DataReceived:
                    st = streams.get(ev.stream_id)
                    if st is not None:
                        st._feed_data(ev.data)
                    else:
                        self._s.consumed(ev.stream_id, len(ev.data))
                elif type(ev) is WindowUpdated:
                    st = streams.get(ev.stream_id)
                    if st is not None:
                        st._on_window()
                elif type(ev) is StreamOpened:
                    st = MuxStream(self, ev.stream_id)
                    streams[ev.stream_id] = st
                    if self._on_stream is None:
                        st.abort()
                    else:
                        self._on_stream(st)
                elif type(ev) is StreamEnded:
                    st = streams.get(ev.stream_id)
                    if st is not None:
                        st._on_eof()
                elif type(ev) is StreamReset:
                    st = streams.get(ev.stream_id)
                    if st is not None:
                        st._on_reset()
                elif type(ev) is PingAcked:
                    sent = self._ping_sent.pop(ev.ping_id, None)
                    if sent is not None:
                        self._s.rtt_sample(time.monotonic() - sent)
                    if ev.ping_id == self._outstanding_ping:
                        self._outstanding_ping = None
                        if self._ping_deadline is not None:
                            self._ping_deadline.cancel()
                            self._ping_deadline = None
                elif type(ev) is GoAwayReceived:
                    log.debug("yamux peer sent GoAway")
            except Exception:
                sid = getattr(ev, "stream_id", 0)
                log.exception("yamux stream %d callback failed, resetting the stream", sid)
                st = streams.get(sid)
                if st is not None:
                    st.abort()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._shutdown(exc, lost=True)

    def session_error(self, exc: Exception) -> None:
        """The peer broke the yamux protocol: log it and drop the connection."""
        log.warning("yamux session error from %s: %s", fmt_addr(self.peername()), exc)
        self._shutdown(exc)

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self._flush()

    # -- API ------------------------------------------------------------------------------

    def open_stream(self) -> MuxStream:
        if self._is_closed:
            raise ConnectionResetError("yamux session is closed")
        sid = self._s.open_stream()
        st = MuxStream(self, sid)
        self._streams[sid] = st
        # At once, with what other streams queued: were a burst of new streams' SYNs held to the
        # turn's end, the scheduler would send every SYN (a control frame) before any stream's
        # first message, and frps resets streams beyond MAX_PENDING_STREAMS silent ones. Under
        # hold(), the SYN leaves at release() with the stream's first message.
        if not self._held:
            self._flush()
        return st

    def hold(self) -> bool:
        """Hold the writes of every stream until :meth:`release`, which sends them in one write to
        the transport: a new stream's SYN with its first message (frpc's work connections), one
        TLS record and one send instead of two. False (and nothing to release) when already held."""
        if self._held:
            return False
        self._held = True
        return True

    def release(self) -> None:
        self._held = False
        if not self._in_receive:
            self._flush()

    def flush_at_end_of_turn(self) -> None:
        """The writes the streams make from now until the end of this turn of the event loop leave
        together then, the first one included (see :meth:`_flush_soon`): for a caller that knows
        several are coming, such as frps pairing a user connection (StartWorkConn on the work
        connection, ReqWorkConn on the control, the user's first bytes when they came at once)."""
        if self._is_closed:
            return
        if self._flush_handle is None:
            self._flush_handle = self._loop.call_soon(self._end_of_turn)
        self._flush_later = True

    @property
    def is_closed(self) -> bool:
        return self._is_closed

    def close(self) -> None:
        self._shutdown(None)

    def peername(self) -> Any:
        return self.transport.get_extra_info("peername") if self.transport is not None else None

    # -- internals ------------------------------------------------------------------------

    def flush(self) -> None:
        """Write what the streams queued now (before someone closes the transport below)."""
        self._flush()

    def _flush_soon(self) -> None:
        """Flush what a stream wrote: the first time in a turn of the event loop at once, after
        that once at the end of the turn.

        A lone write (a ping-pong, an interactive session) thus waits for nothing, while whatever
        more the streams write while the loop runs the rest of its ready callbacks (user sockets
        that became readable at the same time, tasks that woke up) leaves as one write to the
        transport: one TLS record and one send instead of one per frame. Inside ``data_received``
        the flush at its end covers it."""
        if self._in_receive or self._held or self._is_closed:
            return
        if self._flush_handle is None:
            self._flush_handle = self._loop.call_soon(self._end_of_turn)
            self._flush()
        else:
            self._flush_later = True

    def _end_of_turn(self) -> None:
        self._flush_handle = None
        if self._flush_later:
            self._flush_later = False
            self._flush()

    def _flush(self) -> None:
        """Write the control frames, then queued data until the transport pauses."""
        self._flush_later = False
        t = self.transport
        if t is None or self._is_closed:
            return
        self._write_out(t)
        if self._queue_paused:
            self._unpause_streams()

    def _write_out(self, t: asyncio.Transport, everything: bool = False) -> None:
        s = self._s
        if everything:
            out = s.data_to_send()
            if out:
                t.writelines(out)
            return
        while True:
            out = s.data_to_send(0 if self.write_paused else FLUSH_BATCH)
            if out:
                t.writelines(out)
            if self.write_paused or self._is_closed or not s.has_queued_data():
                break

    def _unpause_streams(self) -> None:
        s = self._s
        if s.queued_total > SESSION_QUEUE_HIGH:
            return
        for st in list(self._queue_paused):
            if s.queued(st.stream_id) <= STREAM_QUEUE_LOW:
                self._queue_paused.discard(st)
                st._update_write_pause()

    def _send_ping(self) -> None:
        if self._is_closed:
            return
        self._outstanding_ping = pid = self._s.ping()
        if self._s.autotune:
            if len(self._ping_sent) > 16:  # unanswered ones (the timeout closes the session anyway)
                self._ping_sent.clear()
            self._ping_sent[pid] = time.monotonic()
        self._flush()
        self._ping_deadline = self._loop.call_later(PING_TIMEOUT, self._ping_timeout)
        self._ping_timer = self._loop.call_later(self._keepalive, self._send_ping)

    def _rtt_ping(self) -> None:
        """Sample the round trip while the session carries data (autotuning keeps the smallest)."""
        if self._is_closed:
            return
        if self._rx_seen and not self._ping_sent:
            self._rx_seen = False
            self._ping_sent[self._s.ping()] = time.monotonic()
            self._flush()
        self._rtt_timer = self._loop.call_later(RTT_PING_INTERVAL, self._rtt_ping)

    def _ping_timeout(self) -> None:
        if self._outstanding_ping is not None:
            log.warning("yamux keepalive timeout, closing session with %s", fmt_addr(self.peername()))
            self._shutdown(TimeoutError("keepalive timeout"))

    def _shutdown(self, exc: BaseException | None, lost: bool = False) -> None:
        if self._is_closed:
            return
        self._is_closed = True
        self.close_reason = exc
        for t in (self._ping_timer, self._ping_deadline, self._rtt_timer, self._flush_handle):
            if t is not None:
                t.cancel()
        if not lost and self.transport is not None:
            if exc is None:
                self._write_out(self.transport, everything=True)  # what the streams queued goes first
            self.transport.abort() if exc is not None else self.transport.close()
        streams = list(self._streams.values())
        self._streams.clear()
        self._queue_paused.clear()
        err = exc if isinstance(exc, Exception) else None
        for st in streams:
            st._on_session_lost(err or ConnectionResetError("yamux session closed"))
        if not self.closed.done():
            self.closed.set_result(None)

    def _forget(self, sid: int) -> None:
        self._streams.pop(sid, None)


class MuxStream(PausableTransport):
    """One yamux stream seen as a transport; data and EOF go to its protocol.

    While reading is paused, received data stays unacknowledged (no WindowUpdate), so the peer's
    send window runs out: back-pressure through the session, per stream."""

    def __init__(self, mux: MuxSession, sid: int) -> None:
        super().__init__(mux._loop)
        self._mux = mux
        self._s = mux._s
        self.stream_id = sid
        self._wbuf: list[memoryview] = []
        self._closing = False
        self._fin_pending = False  # FIN to send once the write buffer drained
        self._local_fin = False
        self._remote_fin = False
        self._lost = False
        self._close_timer: asyncio.TimerHandle | None = None

    @property
    def session(self) -> MuxSession:
        return self._mux

    # -- transport API --------------------------------------------------------------------

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "stream_id":
            return self.stream_id
        t = self._mux.transport
        return t.get_extra_info(name, default) if t is not None else default

    def is_closing(self) -> bool:
        return self._closing or self._lost

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or self._lost or self._local_fin:
            return
        if not data:
            return
        if self._wbuf:
            self._wbuf.append(memoryview(bytes(data) if not isinstance(data, bytes) else data))
            return
        if not isinstance(data, bytes):
            data = bytes(data)  # the session keeps the buffer until its turn: the caller may reuse it
        n = self._s.send_data(self.stream_id, data)
        if n < len(data):
            self._wbuf.append(memoryview(data)[n:])
        self._update_write_pause()
        self._mux._flush_soon()

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        if self._local_fin or self._lost:
            return
        if self._wbuf:
            self._fin_pending = True
            return
        self._send_fin()

    def close(self) -> None:
        if self._closing or self._lost:
            return
        self._closing = True
        self._reading_paused = False
        self._stop_reading()
        if not self._local_fin:
            if self._wbuf:
                self._fin_pending = True
            else:
                self._send_fin()
        if self._remote_fin and self._local_fin:
            self._finish(None)
        else:
            self._close_timer = self._mux._loop.call_later(STREAM_CLOSE_TIMEOUT, self.abort)
            self._mux._loop.call_soon(self._notify_lost_after_close)

    def abort(self) -> None:
        if self._lost:
            return
        self._closing = True
        if self._s.queued(self.stream_id):
            self._mux._flush()  # what was written before the abort leaves first, as if flushed at once
        self._s.reset_stream(self.stream_id)
        self._mux._flush_soon()
        self._finish(None)

    def get_write_buffer_size(self) -> int:
        return sum(len(b) for b in self._wbuf) + self._s.queued(self.stream_id)

    # -- session callbacks (data arrives through PausableTransport._feed_data) -------------------

    def _consumed(self, n: int) -> None:
        if not self._lost:
            self._s.consumed(self.stream_id, n, monotonic())

    def _drained(self) -> None:
        self._mux._flush_soon()  # the window updates for what was delivered

    def _on_eof(self) -> None:
        self._remote_fin = True
        if self._closing:
            if self._local_fin:
                self._finish(None)
            return
        self._feed_eof()

    def _eof_delivered(self, keep_open: bool) -> None:
        if not keep_open:
            self.close()
        elif self._local_fin:
            self._finish(None)

    def _on_reset(self) -> None:
        self._finish(ConnectionResetError("stream reset by peer"))

    def _on_window(self) -> None:
        wbuf = self._wbuf
        s = self._s
        while wbuf:
            head = wbuf[0]
            n = s.send_data(self.stream_id, head)
            if n < len(head):
                wbuf[0] = head[n:]
                break
            wbuf.pop(0)
        if not wbuf:
            if self._fin_pending:
                self._fin_pending = False
                self._send_fin()
            self._update_write_pause()

    def _update_write_pause(self) -> None:
        if self._lost:
            return
        s = self._s
        queued = s.queued(self.stream_id)
        over = queued > STREAM_QUEUE_HIGH or (queued > 0 and s.queued_total > SESSION_QUEUE_HIGH)
        if over or (self in self._mux._queue_paused and queued > STREAM_QUEUE_LOW):
            self._mux._queue_paused.add(self)
            over = True
        else:
            self._mux._queue_paused.discard(self)
        self._set_write_paused(bool(self._wbuf) or over)

    def _send_fin(self) -> None:
        self._local_fin = True
        self._s.close_stream(self.stream_id)
        self._mux._flush_soon()
        if self._remote_fin and self._closing:
            self._finish(None)

    def _notify_lost_after_close(self) -> None:
        # The application closed the stream; it does not wait for the peer's FIN.
        if not self._lost and self._protocol is not None and not self._wbuf:
            proto = self._protocol
            self._protocol = _Drain()
            proto.connection_lost(None)

    def _on_session_lost(self, exc: Exception) -> None:
        self._finish(exc)

    def _finish(self, exc: Exception | None) -> None:
        if self._lost:
            return
        self._lost = True
        self._closing = True
        if self._close_timer is not None:
            self._close_timer.cancel()
        self._wbuf.clear()
        self._stop_reading()
        self._mux._queue_paused.discard(self)
        self._mux._forget(self.stream_id)
        proto = self._protocol
        self._protocol = None
        if proto is not None and not isinstance(proto, _Drain):
            proto.connection_lost(exc)


class _Drain(asyncio.Protocol):
    """Placeholder protocol for a closed stream that still waits for the peer's FIN."""
