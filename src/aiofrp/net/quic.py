"""asyncio driver for qh3's sans-I/O ``QuicConnection`` over any datagram sender.

frp uses QUIC with ALPN ``frp`` and no certificate verification; every logical connection is
one bidirectional stream, seen here as an ``asyncio.Transport`` (:class:`QuicStream`) so the
relay can pipe it like a TCP connection. The connection does not own a socket: datagrams come in
through :meth:`QuicSession.datagram_received` and go out through the ``send`` callable, so it can
run on an already-punched UDP socket (xtcp) as well as on a plain endpoint.

qh3 is the maintained aioquic fork whose buffers, packet protection, pacer and stream senders
are native (Rust); imported lazily, as it is only needed for xtcp and the quic transport. It
credits the peer's stream window as data arrives, so reading cannot push back on the peer; a
paused stream buffers.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..proto.addr import fmt_addr
from .datagram_listener import DatagramListener
from .transport import PausableTransport
from .udp_batch import DatagramBatcher, enlarge_buffers

if TYPE_CHECKING:
    from qh3.quic.configuration import QuicConfiguration
    from qh3.quic.connection import QuicConnection

log = logging.getLogger("aiofrp.net.quic")

ALPN = "frp"
# UDP payload per QUIC packet: above qh3's 1200 (fewer packets, less Python per byte), below
# quic-go's 1452 limit and a 1500-byte path with IPv6 headers
MAX_DATAGRAM = 1350
WRITE_HIGH = 1 << 20  # pause the stream's protocol above this many bytes not sent yet
WRITE_LOW = 256 << 10
NO_ERROR = 0
# quic-go's DesiredReceiveBufferSize / DesiredSendBufferSize for its UDP sockets (capped by the
# kernel's net.core.rmem_max / wmem_max): a loopback burst overflowed the default ~200 KiB receive
# buffer every few hundred packets, and each drop halved the sender's congestion window
SOCKET_BUFFER = 7 << 20

Addr = tuple[str, int]
Send = Callable[[bytes, Addr], None]
SendMany = Callable[[list[bytes], Addr], None]

_ev: Any = None  # qh3.quic.events, imported by the first session (not per call)
_TERMINATED: Any = None

PACING_MIN_DELAY = 0.001  # s: quic-go's protocol.MinPacingDelay
PACING_BURST_TIME = 0.002  # s of the pacing rate one burst may carry (quic-go: MinPacingDelay + timer granularity)
PACING_BURST_PACKETS = 10  # quic-go's maxBurstSizePackets
K_MICRO_SECOND = 0.000001
K_SECOND = 1.0


class BurstPacer:
    """quic-go's pacing instead of qh3's: a burst may carry 2 ms of the pacing rate (at least 10
    packets) and an empty bucket waits at least 1 ms. qh3's native pacer (aioquic's algorithm)
    holds at most 16 packets and refills per packet time (microseconds on a fast path), so a bulk
    sender woke up from its timer for a handful of packets at a time (three quarters of a sending
    frps's time); this sends the same rate in fewer, larger bursts (fewer loop turns, longer GSO
    runs). Only the timing of our packets changes, nothing on the wire. It stands in for qh3's
    ``QuicPacketRecovery._pacer`` with the same methods."""

    __slots__ = ("_max_datagram_size", "bucket_max", "bucket_time", "evaluation_time", "packet_time")

    def __init__(self, max_datagram_size: int) -> None:
        self._max_datagram_size = max_datagram_size
        self.bucket_max = 0.0
        self.bucket_time = 0.0
        self.evaluation_time = 0.0
        self.packet_time: float | None = None

    def start_pacing(self, now: float, congestion_window: int, smoothed_rtt: float) -> None:
        self.update_rate(congestion_window, smoothed_rtt)
        self.evaluation_time = now
        self.bucket_time = self.bucket_max

    def next_send_time(self, now: float) -> float | None:
        if self.packet_time is not None:
            self.update_bucket(now)
            if self.bucket_time <= 0:
                return now + max(self.packet_time, PACING_MIN_DELAY)
        return None

    def update_after_send(self, now: float) -> None:
        if self.packet_time is not None:
            self.update_bucket(now)
            if self.bucket_time < self.packet_time:
                self.bucket_time = 0.0
            else:
                self.bucket_time -= self.packet_time

    def update_bucket(self, now: float) -> None:
        if now > self.evaluation_time:
            self.bucket_time = min(self.bucket_time + (now - self.evaluation_time), self.bucket_max)
            self.evaluation_time = now

    def update_rate(self, congestion_window: int, smoothed_rtt: float) -> None:
        pacing_rate = congestion_window / max(smoothed_rtt, K_MICRO_SECOND)  # bytes per second
        self.packet_time = packet_time = max(K_MICRO_SECOND, min(self._max_datagram_size / pacing_rate, K_SECOND))
        self.bucket_max = max(PACING_BURST_TIME, PACING_BURST_PACKETS * packet_time)
        self.bucket_time = min(self.bucket_time, self.bucket_max)


def _import_qh3() -> None:
    global _ev, _TERMINATED
    if _ev is None:
        from qh3.quic import events
        from qh3.quic.connection import QuicConnectionState

        _ev, _TERMINATED = events, QuicConnectionState.TERMINATED


def quic_configuration(*, is_client: bool, idle_timeout: float = 30.0, server_name: str | None = None,
                       cert_file: str = "", key_file: str = "", ca_file: str = "") -> Any:
    """frp's QUIC settings: ALPN ``frp``; the server's certificate from ``cert_file``/``key_file``
    or a fresh self-signed one; the client verifies it only against ``ca_file`` (frpc's
    trustedCaFile) and presents ``cert_file`` if given."""
    import ssl

    from qh3.quic.configuration import QuicConfiguration

    cfg = QuicConfiguration(is_client=is_client, alpn_protocols=[ALPN], idle_timeout=idle_timeout,
                            max_data=16 << 20, max_stream_data=4 << 20, max_datagram_size=MAX_DATAGRAM)
    if cert_file:
        cfg.load_cert_chain(cert_file, key_file or None)
    if is_client:
        cfg.server_name = server_name
        if ca_file:
            cfg.load_verify_locations(ca_file)
        else:
            cfg.verify_mode = ssl.CERT_NONE
    elif not cert_file:
        from .tls import self_signed_pair

        cert_pem, key_pem = self_signed_pair()
        cfg.load_cert_chain(cert_pem, key_pem)  # PEM in memory
    return cfg


class QuicSession:
    """One QUIC connection with a fixed peer.

    ``on_stream`` receives each stream the peer opens; ``handshake`` resolves when the TLS
    handshake is done; ``closed`` when the connection is gone (idle timeout, close, error).
    """

    def __init__(
        self, conn: QuicConnection, peer: Addr, send: Send, *, on_stream: Callable[[QuicStream], None] | None = None,
        keepalive: float = 10.0, max_incoming_streams: int = 0, send_many: SendMany | None = None,
    ) -> None:
        _import_qh3()
        self._loop = asyncio.get_running_loop()
        self._send_many = send_many
        self._events_pending = False
        self._conn = conn
        conn._loss._pacer = BurstPacer(conn._max_datagram_size)  # type: ignore[assignment]  # same methods
        if max_incoming_streams > 0:  # Go's quic.Config.MaxIncomingStreams (qh3: 100, no option)
            conn._local_max_streams_bidi.value = max_incoming_streams
        self.peer = peer
        self._send = send
        self._on_stream = on_stream
        self._keepalive = keepalive
        self._streams: dict[int, QuicStream] = {}
        self._finished: set[int] = set()  # our closed streams qh3 still knows (late frames)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._transmit_scheduled = False
        self._ping_timer: asyncio.TimerHandle | None = None
        self._ping_id = 0
        self.handshake: asyncio.Future[None] = self._loop.create_future()
        self.closed: asyncio.Future[None] = self._loop.create_future()
        self.close_reason = ""

    # -- construction -----------------------------------------------------------------------

    @classmethod
    def connect(cls, peer: Addr, send: Send, configuration: QuicConfiguration, **kw: Any) -> QuicSession:
        from qh3.quic.connection import QuicConnection

        conn = QuicConnection(configuration=configuration)
        s = cls(conn, peer, send, **kw)
        conn.connect(peer, now=s._loop.time())
        s._transmit()
        return s

    @classmethod
    def accept(cls, data: bytes, peer: Addr, send: Send, configuration: QuicConfiguration,
               **kw: Any) -> QuicSession | None:
        """A server session for a client Initial packet (None if ``data`` is not one)."""
        from qh3._hazmat import Buffer
        from qh3.quic.connection import QuicConnection
        from qh3.quic.packet import QuicPacketType, pull_quic_header

        try:
            header = pull_quic_header(Buffer(data=data), host_cid_length=configuration.connection_id_length)
        except ValueError:
            return None
        if (header.packet_type != QuicPacketType.INITIAL or len(data) < 1200
                or header.version not in configuration.supported_versions):
            return None
        conn = QuicConnection(configuration=configuration, original_destination_connection_id=header.destination_cid)
        s = cls(conn, peer, send, **kw)
        s.datagram_received(data, peer)
        return s

    # -- input ------------------------------------------------------------------------------

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        if self.closed.done():
            return
        self._conn.receive_datagram(data, addr, now=self._loop.time())
        # events and one transmit per loop iteration, after every datagram of the socket's batch:
        # a stream's data of the whole burst reaches its protocol in one piece, fewer ACK-only
        # packets and fewer passes over qh3's packet builder
        self._events_pending = True
        self.schedule_transmit()

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self._conn.handle_timer(now=self._loop.time())
        self._process_events()
        self._transmit()

    def _process_events(self) -> None:
        ev = _ev
        conn = self._conn
        self._events_pending = False
        event = conn.next_event()
        while event is not None:
            if isinstance(event, ev.StreamDataReceived):
                # consecutive data of one stream (a burst of packets) goes up joined
                data, end = event.data, event.end_stream
                nxt = conn.next_event()
                if not end and isinstance(nxt, ev.StreamDataReceived) and nxt.stream_id == event.stream_id:
                    parts = [data]
                    while (not end and isinstance(nxt, ev.StreamDataReceived)
                           and nxt.stream_id == event.stream_id):
                        parts.append(nxt.data)
                        end = nxt.end_stream
                        nxt = conn.next_event()
                    data = b"".join(parts)
                st = self._streams.get(event.stream_id)
                if st is None:
                    sid = event.stream_id
                    local = (sid & 1) == (0 if conn._is_client else 1)
                    if local or sid & 2 or sid in self._finished or self._on_stream is None:
                        event = nxt
                        continue  # forgotten, unidirectional, or nobody accepts streams
                    st = QuicStream(self, sid)
                    self._streams[event.stream_id] = st
                    self._on_stream(st)
                st._on_data(data, end)
                event = nxt
                continue
            elif isinstance(event, ev.StreamReset):
                st = self._streams.get(event.stream_id)
                if st is not None:
                    st._on_reset()
            elif isinstance(event, ev.StopSendingReceived):
                st = self._streams.get(event.stream_id)
                if st is not None:
                    st._on_stop_sending()
            elif isinstance(event, ev.HandshakeCompleted):
                if not self.handshake.done():
                    self.handshake.set_result(None)
                self._schedule_ping()
            elif isinstance(event, ev.ConnectionTerminated):
                self.close_reason = event.reason_phrase or f"error code {event.error_code}"
                self._finish(ConnectionResetError(f"quic connection closed: {self.close_reason}"))
                return
            event = conn.next_event()
        self._update_write_pause()

    # -- output -----------------------------------------------------------------------------

    def schedule_transmit(self) -> None:
        if not self._transmit_scheduled:
            self._transmit_scheduled = True
            self._loop.call_soon(self._transmit)

    def _transmit(self) -> None:
        self._transmit_scheduled = False
        if self._events_pending and not self.closed.done():
            self._process_events()
        if self.closed.done():
            return
        out = self._conn.datagrams_to_send(now=self._loop.time())
        if self._send_many is not None and len(out) > 1 and all(a == out[0][1] for _, a in out):
            try:
                self._send_many([d for d, _ in out], out[0][1])  # one GSO send per run (net/udp_batch.py)
            except OSError as exc:
                log.debug("quic send to %s: %s", fmt_addr(out[0][1]), exc)
            out = []
        for data, addr in out:
            try:
                self._send(data, addr)
            except OSError as exc:
                log.debug("quic send to %s: %s", fmt_addr(addr), exc)
        at = self._conn.get_timer()
        if at != self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._timer_at = at
            if at is not None:
                self._timer = self._loop.call_at(at, self._on_timer)
        # an idle timeout or a completed close leaves the connection terminated
        self._process_terminated()

    def _process_terminated(self) -> None:
        if self._conn._state is _TERMINATED and not self.closed.done():
            self._process_events()
            self._finish(ConnectionResetError("quic connection terminated"))

    def _schedule_ping(self) -> None:
        if self._keepalive > 0 and not self.closed.done():
            self._ping_timer = self._loop.call_later(self._keepalive, self._ping)

    def _ping(self) -> None:
        if self.closed.done():
            return
        self._ping_id += 1
        self._conn.send_ping(self._ping_id)
        self._transmit()
        self._schedule_ping()

    def _update_write_pause(self) -> None:
        for st in list(self._streams.values()):
            st._update_write_pause()

    # -- API --------------------------------------------------------------------------------

    def open_stream(self) -> QuicStream:
        if self.closed.done():
            raise ConnectionResetError("quic connection is closed")
        sid = self._conn.get_next_available_stream_id()
        # create it in qh3 now (an empty write sends nothing), or the next open gets the same id
        self._conn.send_stream_data(sid, b"")
        st = QuicStream(self, sid)
        self._streams[sid] = st
        return st

    @property
    def is_closed(self) -> bool:
        return self.closed.done()

    def close(self, reason: str = "") -> None:
        if self.closed.done():
            return
        self._conn.close(error_code=NO_ERROR, reason_phrase=reason)
        self._transmit()
        self._finish(None)

    def _finish(self, exc: Exception | None) -> None:
        if self.closed.done():
            return
        for t in (self._timer, self._ping_timer):
            if t is not None:
                t.cancel()
        streams = list(self._streams.values())
        self._streams.clear()
        for st in streams:
            st._finish(exc or ConnectionResetError("quic connection closed"))
        if not self.handshake.done():
            self.handshake.set_exception(exc or ConnectionResetError("quic connection closed"))
            self.handshake.exception()  # consumed: nobody may be waiting
        self.closed.set_result(None)

    def _forget(self, sid: int) -> None:
        self._streams.pop(sid, None)
        known = self._conn._streams
        if sid in known:
            self._finished.add(sid)
            if len(self._finished) > 256:
                self._finished = {s for s in self._finished if s in known}


class QuicStream(PausableTransport):
    """One bidirectional QUIC stream as a transport. ``close`` sends FIN and stops reading
    (STOP_SENDING 0), like frp's Go side."""

    def __init__(self, session: QuicSession, sid: int) -> None:
        super().__init__(session._loop)
        self._session = session
        self._conn = session._conn
        self.stream_id = sid
        self._local_fin = False
        self._remote_fin = False
        self._closing = False
        self._lost = False
        self._written = 0  # bytes handed to qh3

    # transport API
    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return self._session.peer
        if name == "stream_id":
            return self.stream_id
        return default

    def is_closing(self) -> bool:
        return self._closing or self._lost

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or self._lost or self._local_fin or not data:
            return
        try:
            self._conn.send_stream_data(self.stream_id, bytes(data))
        except (ValueError, AssertionError) as exc:  # stream already reset/finished
            log.debug("quic stream %d write: %s", self.stream_id, exc)
            return
        self._written += len(data)
        self._session.schedule_transmit()
        self._update_write_pause()

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        if self._local_fin or self._lost:
            return
        self._local_fin = True
        try:
            self._conn.send_stream_data(self.stream_id, b"", end_stream=True)
        except (ValueError, AssertionError):
            pass
        self._session.schedule_transmit()
        self._maybe_done()

    def close(self) -> None:
        if self._closing or self._lost:
            return
        self._closing = True
        self._stop_reading()
        self.write_eof()
        if not self._remote_fin:
            try:
                self._conn.stop_stream(self.stream_id, NO_ERROR)
            except (ValueError, AssertionError):
                pass
        self._session.schedule_transmit()
        self._session._loop.call_soon(self._finish, None)

    def abort(self) -> None:
        if self._lost:
            return
        self._closing = True
        try:
            self._conn.reset_stream(self.stream_id, NO_ERROR)
        except (ValueError, AssertionError):
            pass
        self._session.schedule_transmit()
        self._finish(None)

    def get_write_buffer_size(self) -> int:
        """Bytes written and not sent yet (held by flow control, congestion or pacing)."""
        stream = self._conn._streams.get(self.stream_id)
        if stream is None:
            return 0
        return max(0, self._written - stream.sender.highest_offset)  # native: highest offset sent

    # session callbacks
    def _on_data(self, data: bytes, end_stream: bool) -> None:
        if self._closing or self._lost:
            return
        if data:
            self._feed_data(data)
        if end_stream:
            self._remote_fin = True
            self._feed_eof()

    def _eof_delivered(self, keep_open: bool) -> None:
        if not keep_open:
            self.close()
        else:
            self._maybe_done()

    def _maybe_done(self) -> None:
        """Both FINs are through, and the peer's was delivered (not held by a paused reader)."""
        if (self._local_fin and self._remote_fin and not self._closing
                and not self._eof_pending and not self._has_buffered()):
            self._closing = True
            self._session._loop.call_soon(self._finish, None)

    def _on_reset(self) -> None:
        self._finish(ConnectionResetError("quic stream reset by peer"))

    def _on_stop_sending(self) -> None:
        # the peer no longer reads: like a write error on a socket
        if not self._local_fin:
            self.abort()

    def _update_write_pause(self) -> None:
        if self._lost or self._protocol is None:
            return
        buffered = self.get_write_buffer_size()
        self._set_write_paused(buffered > WRITE_HIGH or (self._write_paused and buffered > WRITE_LOW))

    def _finish(self, exc: Exception | None) -> None:
        if self._lost:
            return
        self._lost = True
        self._closing = True
        self._stop_reading()
        self._session._forget(self.stream_id)
        proto, self._protocol = self._protocol, None
        if proto is not None:
            proto.connection_lost(exc)


def random_cid() -> bytes:
    return os.urandom(8)


# -- frp's quic transport (frpc transport.protocol = "quic", frps quicBindPort) -------------------

MAX_CONNECTIONS = 4096


class QuicListener(DatagramListener["QuicSession"]):
    """frps ``quicBindPort``: QUIC connections told apart by the client's address; a datagram
    from a new address opens one only if it is a client Initial packet. Anything else is
    dropped and logged (rate-limited). ``on_session`` gets each new :class:`QuicSession`."""

    kind = "quic"
    log = log

    def __init__(self, configuration: QuicConfiguration, on_session: Callable[[QuicSession], None], *,
                 on_stream: Callable[[QuicSession, QuicStream], None], keepalive: float = 10.0,
                 max_incoming_streams: int = 0) -> None:
        super().__init__()
        self.configuration = configuration
        self.on_session = on_session
        self.on_stream = on_stream
        self.keepalive = keepalive
        self.max_incoming_streams = max_incoming_streams
        self.batcher: DatagramBatcher | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        enlarge_buffers(transport.get_extra_info("socket"), SOCKET_BUFFER)

    def close(self) -> None:
        super().close()
        if self.batcher is not None:
            self.batcher.close()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        s = self.sessions.get(addr)
        if s is not None:
            if not s.is_closed:
                s.datagram_received(data, addr)
                return
            del self.sessions[addr]
        if len(self.sessions) >= MAX_CONNECTIONS:
            self._drop(addr, f"{MAX_CONNECTIONS} QUIC connections already")
            return
        transport = self.transport
        assert transport is not None
        if self.batcher is None:
            self.batcher = DatagramBatcher(transport)
        batcher = self.batcher
        box: list[QuicSession] = []

        def on_stream(st: QuicStream) -> None:
            self.on_stream(box[0], st)

        try:
            s = QuicSession.accept(data, addr, transport.sendto, self.configuration, on_stream=on_stream,
                                   keepalive=self.keepalive, max_incoming_streams=self.max_incoming_streams,
                                   send_many=batcher.send)
        except Exception as exc:  # noqa: BLE001 - qh3's parsers raise assorted errors on garbage
            self._drop(addr, f"bad QUIC packet ({type(exc).__name__}: {exc})")
            return
        if s is None:
            self._drop(addr, f"not a QUIC Initial packet ({len(data)} bytes)")
            return
        box.append(s)
        self.sessions[addr] = s
        session = s
        s.closed.add_done_callback(lambda _f: self._forget(addr, session))
        self.on_session(s)

    def _end(self, session: QuicSession) -> None:
        session.close()


class _QuicClientEndpoint(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.session: QuicSession | None = None

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if self.session is not None:
            self.session.datagram_received(data, addr)

    def error_received(self, exc: Exception) -> None:
        if self.session is not None and isinstance(exc, ConnectionRefusedError):
            self.session._finish(exc)


async def dial_quic(host: str, port: int, *, server_name: str, cert_file: str = "", key_file: str = "",
                    ca_file: str = "", local_addr: tuple[str, int] | None = None, idle_timeout: float = 30.0,
                    keepalive: float = 10.0, max_incoming_streams: int = 0) -> QuicSession:
    """A QUIC connection to frps's quicBindPort on its own UDP socket, handshake done (Go:
    ``quic.DialAddr`` with frp's config). Raises OSError/EOFError if it cannot be made."""
    loop = asyncio.get_running_loop()
    transport, ep = await loop.create_datagram_endpoint(_QuicClientEndpoint, remote_addr=(host, port),
                                                        local_addr=local_addr)
    enlarge_buffers(transport.get_extra_info("socket"), SOCKET_BUFFER)
    peer = transport.get_extra_info("peername")
    cfg = quic_configuration(is_client=True, idle_timeout=idle_timeout, server_name=server_name,
                             cert_file=cert_file, key_file=key_file, ca_file=ca_file)

    def send(data: bytes, addr: Addr) -> None:
        transport.sendto(data)

    batcher = DatagramBatcher(transport, on_error=ep.error_received)

    def send_many(datagrams: list[bytes], addr: Addr) -> None:
        batcher.send(datagrams)

    def closed(_f: object) -> None:
        batcher.close()
        transport.close()

    try:
        s = QuicSession.connect((peer[0], peer[1]), send, cfg, keepalive=keepalive,
                                max_incoming_streams=max_incoming_streams, send_many=send_many)
        ep.session = s
        s.closed.add_done_callback(closed)
        await s.handshake
    except BaseException:
        batcher.close()
        transport.close()
        raise
    return s
