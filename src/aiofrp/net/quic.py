"""asyncio driver for a sans-I/O QUIC ``QuicConnection`` over any datagram sender.

frp uses QUIC with ALPN ``frp`` and no certificate verification; every logical connection is
one bidirectional stream, seen here as an ``asyncio.Transport`` (:class:`QuicStream`) so the
relay can pipe it like a TCP connection. The connection does not own a socket: datagrams come in
through :meth:`QuicSession.datagram_received` and go out through the ``send`` callable, so it can
run on an already-punched UDP socket (xtcp) as well as on a plain endpoint.

Two QUIC libraries, both imported lazily (only xtcp and the quic transport need them), behind one
small :class:`_Backend` seam:

* **qh3** (the maintained aioquic fork; its 2.x connection core is native Rust, about 2.5x less CPU
  per packet than its 1.9 line and 9x less than aioquic) for every connection we dial and every
  connection a client opens with a non-empty source connection id (aiofrp's frpc and visitors);
* **aioquic** for the one case qh3 2.1 gets wrong: a client whose source connection id is empty,
  which is what quic-go sends (Go frpc, Go's xtcp visitor). qh3 2.1's core answers such a client
  at its original destination id, which quic-go drops, so the handshake never completes.

Both credit the peer's stream window as data arrives, so reading cannot push back on the peer; a
paused stream buffers.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from ..proto.addr import fmt_addr
from .datagram_listener import DatagramListener
from .listen import unmap
from .transport import PausableTransport
from .udp_batch import DatagramBatcher, GroUDP, enlarge_buffers

log = logging.getLogger("aiofrp.net.quic")

ALPN = "frp"
# UDP payload per QUIC packet: above the 1200 every path carries (fewer packets, less work per
# byte), below quic-go's 1452 limit and a 1500-byte path with IPv6 headers
MAX_DATAGRAM = 1350
WRITE_HIGH = 1 << 20  # pause the stream's protocol above this many bytes not sent yet
WRITE_LOW = 256 << 10
NO_ERROR = 0
INTERNAL_ERROR = 0x1  # QUIC transport error code
# quic-go's DesiredReceiveBufferSize / DesiredSendBufferSize for its UDP sockets (capped by the
# kernel's net.core.rmem_max / wmem_max): a loopback burst overflowed the default ~200 KiB receive
# buffer every few hundred packets, and each drop halved the sender's congestion window
SOCKET_BUFFER = 7 << 20
FINISHED_KEPT = 1024  # peer stream ids remembered after they end, so late frames open nothing
QUIC_V1 = 0x00000001

Addr = tuple[str, int]
Send = Callable[[bytes, Addr], None]
SendMany = Callable[[list[bytes], Addr], None]

PACING_MIN_DELAY = 0.001  # s: quic-go's protocol.MinPacingDelay
PACING_BURST_TIME = 0.002  # s of the pacing rate one burst may carry (quic-go: MinPacingDelay + timer granularity)
PACING_BURST_PACKETS = 10  # quic-go's maxBurstSizePackets
K_MICRO_SECOND = 0.000001
K_SECOND = 1.0


class BurstPacer:
    """quic-go's pacing instead of aioquic's: a burst may carry 2 ms of the pacing rate (at least
    10 packets) and an empty bucket waits at least 1 ms. aioquic's pacer holds at most 16 packets
    and refills per packet time (microseconds on a fast path), so a bulk sender woke up from its
    timer for a handful of packets at a time; this sends the same rate in fewer, larger bursts
    (fewer loop turns, longer GSO runs). Only the timing of our packets changes, nothing on the
    wire. It stands in for aioquic's ``QuicPacketRecovery._pacer`` with the same methods (qh3 2's
    native core paces by itself)."""

    __slots__ = ("_max_datagram_size", "bucket_max", "bucket_time", "evaluation_time", "packet_time")

    def __init__(self, max_datagram_size: int) -> None:
        self._max_datagram_size = max_datagram_size
        self.bucket_max = 0.0
        self.bucket_time = 0.0
        self.evaluation_time = 0.0
        self.packet_time: float | None = None

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


@dataclass(frozen=True)
class QuicSettings:
    """frp's QUIC settings, turned into each library's configuration when a connection needs it:
    ALPN ``frp``; the server's certificate from ``cert_file``/``key_file`` or a fresh self-signed
    one; the client verifies it only against ``ca_file`` (frpc's trustedCaFile) and presents
    ``cert_file`` if given."""

    is_client: bool
    idle_timeout: float = 30.0
    server_name: str | None = None
    cert_file: str = ""
    key_file: str = ""
    ca_file: str = ""


def quic_configuration(*, is_client: bool, idle_timeout: float = 30.0, server_name: str | None = None,
                       cert_file: str = "", key_file: str = "", ca_file: str = "") -> QuicSettings:
    return QuicSettings(is_client, idle_timeout, server_name, cert_file, key_file, ca_file)


_self_signed: tuple[bytes, bytes] | None = None  # one per process, shared by both libraries


def _self_signed_pair() -> tuple[bytes, bytes]:
    global _self_signed
    if _self_signed is None:
        from .tls import self_signed_pair

        _self_signed = self_signed_pair()
    return _self_signed


class _Backend:
    """What QuicSession needs from a QUIC library: its configuration and connection objects,
    its event classes, and the few places where the libraries differ (pacing, the incoming
    stream limit, bytes not sent yet)."""

    events: Any = None
    terminated: Any = None

    def __init__(self) -> None:
        self._configs: dict[QuicSettings, Any] = {}

    def load(self) -> None:
        raise NotImplementedError

    def configuration(self, st: QuicSettings) -> Any:
        cfg = self._configs.get(st)
        if cfg is None:
            self.load()
            cfg = self._configs[st] = self._make_configuration(st)
        return cfg

    def _make_configuration(self, st: QuicSettings) -> Any:
        raise NotImplementedError

    def connection(self, cfg: Any, original_dcid: bytes | None, max_incoming_streams: int) -> Any:
        raise NotImplementedError

    def unsent(self, conn: Any, sid: int, written: int) -> int:
        raise NotImplementedError

    def receive(self, conn: Any, datagrams: list[bytes], peer: Addr, now: float) -> None:
        for data in datagrams:
            conn.receive_datagram(data, peer, now=now)

    def stream_limit(self, conn: Any) -> int | None:
        """How many bidirectional streams of ours the peer allows so far, if opening past it fails
        (None: the library waits for more credit by itself)."""
        return None

    def _fill(self, cfg: Any, st: QuicSettings) -> None:
        import ssl

        if st.cert_file:
            cfg.load_cert_chain(st.cert_file, st.key_file or None)
        if st.is_client:
            cfg.server_name = st.server_name
            if st.ca_file:
                cfg.load_verify_locations(st.ca_file)
            else:
                cfg.verify_mode = ssl.CERT_NONE
        elif not st.cert_file:
            self._load_pem(cfg, *_self_signed_pair())

    def _load_pem(self, cfg: Any, cert_pem: bytes, key_pem: bytes) -> None:
        cfg.load_cert_chain(cert_pem, key_pem)  # qh3: PEM in memory


class _Qh3(_Backend):
    _conn_class: Any = None

    def load(self) -> None:
        if self.events is not None:
            return
        from qh3.quic import connection as qconn
        from qh3.quic import events
        from qh3.quic import tls_bridge as qtls

        # qh3 logs a peer's CONNECTION_CLOSE and protocol errors as warnings on "quic"; frp
        # reports a closed connection itself (log lines of the control and the tunnel)
        logging.getLogger("quic").setLevel(logging.ERROR)

        class Connection(qconn.QuicConnection):
            """qh3's connection with Go's ``quic.Config.MaxIncomingStreams``: qh3 advertises 100
            concurrent bidirectional streams and has no option for it, so its native core is
            made with our number and its transport parameters carry it (the one value changed in
            each; qh3 is pinned to the tested 2.1 line and tests/unit/test_quic_pacer.py checks
            the limit the peer sees and that the peer can use it)."""

            max_incoming_streams = 0

            def _create_core(self, remote_addr: Any, initial_dcid: bytes, now: float) -> None:
                limit = self.max_incoming_streams
                if limit <= 0:
                    return super()._create_core(remote_addr, initial_dcid, now)
                native = qconn.QuicConnectionCore

                def core(*args: Any) -> Any:
                    a = list(args)
                    a[_LOCAL_MAX_STREAMS_BIDI] = limit
                    return native(*a)

                setattr(qconn, "QuicConnectionCore", core)  # noqa: B010 - only while the core is made
                try:
                    return super()._create_core(remote_addr, initial_dcid, now)
                finally:
                    setattr(qconn, "QuicConnectionCore", native)  # noqa: B010

            def datagrams_to_send(self, now: float) -> list[tuple[bytes, Any]]:
                # qh3's loop, minus two logging calls per datagram when no qlog is kept: its
                # _log_packets parses each packet's header and copies it out before it looks
                # whether a qlog is kept (~8 % of a sending frps)
                core = self._core
                if core is None or self._quic_logger is not None:
                    return super().datagrams_to_send(now)
                out = []
                poll = core.poll_transmit
                try:
                    while (t := poll(now)) is not None:
                        out.append((t[0], t[1]))
                except RuntimeError as exc:  # as qh3's _call_core reports a core failure
                    raise qconn.QuicConnectionError(INTERNAL_ERROR, None, str(exc)) from exc
                return out

            def _create_tls(self, remote_source_cid: bytes | None) -> Any:
                bridge = super()._create_tls(remote_source_cid)
                limit = self.max_incoming_streams
                if limit > 0:  # the transport parameter too (qh3's TLS bridge writes 100)
                    serialize = bridge.serialize_transport_parameters

                    def with_limit() -> bytes:
                        native = qtls.QuicTransportParameters

                        def parameters(**kw: Any) -> Any:
                            kw["initial_max_streams_bidi"] = limit
                            return native(**kw)

                        setattr(qtls, "QuicTransportParameters", parameters)  # noqa: B010 - only while serializing
                        try:
                            return serialize()
                        finally:
                            setattr(qtls, "QuicTransportParameters", native)  # noqa: B010

                    setattr(bridge, "serialize_transport_parameters", with_limit)  # noqa: B010 - for a version change
                    ext = qtls.tls.ExtensionType.QUIC_TRANSPORT_PARAMETERS  # made by the bridge's __init__
                    bridge.tls.handshake_extensions = [(t, with_limit() if t == ext else v)
                                                       for t, v in bridge.tls.handshake_extensions]
                return bridge

        self._conn_class = Connection
        self.events, self.terminated = events, qconn.QuicConnectionState.TERMINATED

    def _make_configuration(self, st: QuicSettings) -> Any:
        from qh3.quic.configuration import QuicConfiguration

        cfg = QuicConfiguration(is_client=st.is_client, alpn_protocols=[ALPN], idle_timeout=st.idle_timeout,
                                max_data=16 << 20, max_stream_data=4 << 20, max_datagram_size=MAX_DATAGRAM,
                                probe_datagram_size=False)
        self._fill(cfg, st)
        return cfg

    def connection(self, cfg: Any, original_dcid: bytes | None, max_incoming_streams: int) -> Any:
        conn = self._conn_class(configuration=cfg, original_destination_connection_id=original_dcid)
        conn.max_incoming_streams = max_incoming_streams
        return conn

    def unsent(self, conn: Any, sid: int, written: int) -> int:
        return int(conn.get_send_buffer_size(sid))

    def receive(self, conn: Any, datagrams: list[bytes], peer: Addr, now: float) -> None:
        if len(datagrams) > 1:
            conn.receive_many_datagrams(datagrams, peer, now=now)  # one call into qh3's native core
        else:
            conn.receive_datagram(datagrams[0], peer, now=now)

    def stream_limit(self, conn: Any) -> int | None:
        core = conn._core
        return None if core is None else int(core.stream_limits[0])


# position of local_max_streams_bidi among QuicConnectionCore's arguments (qh3 2.1 _hazmat.pyi)
_LOCAL_MAX_STREAMS_BIDI = 21


class _Aioquic(_Backend):

    def load(self) -> None:
        if self.events is not None:
            return
        from aioquic.quic import events
        from aioquic.quic.connection import QuicConnectionState

        self.events, self.terminated = events, QuicConnectionState.TERMINATED

    def _make_configuration(self, st: QuicSettings) -> Any:
        from aioquic.quic.configuration import QuicConfiguration

        cfg = QuicConfiguration(is_client=st.is_client, alpn_protocols=[ALPN], idle_timeout=st.idle_timeout,
                                max_data=16 << 20, max_stream_data=4 << 20, max_datagram_size=MAX_DATAGRAM)
        self._fill(cfg, st)
        return cfg

    def _load_pem(self, cfg: Any, cert_pem: bytes, key_pem: bytes) -> None:
        # aioquic's load_cert_chain reads files only
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        cfg.certificate = x509.load_pem_x509_certificate(cert_pem)
        cfg.private_key = serialization.load_pem_private_key(key_pem, None)

    def connection(self, cfg: Any, original_dcid: bytes | None, max_incoming_streams: int) -> Any:
        from aioquic.quic.connection import QuicConnection

        conn = QuicConnection(configuration=cfg, original_destination_connection_id=original_dcid)
        conn._loss._pacer = BurstPacer(conn._max_datagram_size)  # type: ignore[assignment]  # same methods
        if max_incoming_streams > 0:  # Go's quic.Config.MaxIncomingStreams (aioquic: 128, no option)
            conn._local_max_streams_bidi.value = max_incoming_streams
        return conn

    def unsent(self, conn: Any, sid: int, written: int) -> int:
        stream = conn._streams.get(sid)
        if stream is None:
            return 0
        return max(0, written - int(stream.sender.highest_offset))


QH3 = _Qh3()
AIOQUIC = _Aioquic()


def parse_initial(data: bytes) -> tuple[int, bytes, bytes] | None:
    """(version, destination id, source id) of a client's Initial packet (RFC 9000 17.2.2), or
    None if ``data`` does not start with one (or is shorter than the 1200 bytes a client must
    send)."""
    n = len(data)
    if n < 1200 or data[0] & 0xC0 != 0xC0:  # long header, fixed bit
        return None
    version = int.from_bytes(data[1:5], "big")
    if version != QUIC_V1 or (data[0] & 0x30) >> 4 != 0:  # v1 Initial
        return None
    dlen = data[5]
    if dlen > 20 or 6 + dlen >= n:
        return None
    dcid = data[6:6 + dlen]
    slen = data[6 + dlen]
    if slen > 20 or 7 + dlen + slen > n:
        return None
    return version, dcid, data[7 + dlen:7 + dlen + slen]


class QuicSession:
    """One QUIC connection with a fixed peer.

    ``on_stream`` receives each stream the peer opens; ``handshake`` resolves when the TLS
    handshake is done; ``closed`` when the connection is gone (idle timeout, close, error).
    """

    def __init__(
        self, backend: _Backend, conn: Any, peer: Addr, send: Send, *,
        on_stream: Callable[[QuicStream], None] | None = None, keepalive: float = 10.0,
        send_many: SendMany | None = None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self.backend = backend
        self._ev = backend.events
        self._send_many = send_many
        self._rx: list[bytes] = []  # datagrams of this loop turn, handed to the library together
        self._conn = conn
        self._is_client = bool(conn.configuration.is_client)
        self.peer = peer
        self._send = send
        self._on_stream = on_stream
        self._keepalive = keepalive
        self._streams: dict[int, QuicStream] = {}
        # peer streams that ended (late frames must not open them again): the last
        # FINISHED_KEPT ids, and every id at or below _finished_floor
        self._finished: set[int] = set()
        self._finished_floor = -1
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
    def connect(cls, peer: Addr, send: Send, settings: QuicSettings, *, max_incoming_streams: int = 0,
                **kw: Any) -> QuicSession:
        backend = QH3
        conn = backend.connection(backend.configuration(settings), None, max_incoming_streams)
        s = cls(backend, conn, peer, send, **kw)
        conn.connect(peer, now=s._loop.time())
        s._transmit()
        return s

    @classmethod
    def accept(cls, data: bytes, peer: Addr, send: Send, settings: QuicSettings, *, max_incoming_streams: int = 0,
               **kw: Any) -> QuicSession | None:
        """A server session for a client Initial packet (None if ``data`` is not one): on qh3, or
        on aioquic for a client with an empty source connection id (quic-go)."""
        initial = parse_initial(data)
        if initial is None:
            return None
        _, dcid, scid = initial
        backend: _Backend = QH3 if scid else AIOQUIC
        conn = backend.connection(backend.configuration(settings), dcid, max_incoming_streams)
        s = cls(backend, conn, peer, send, **kw)
        s.datagram_received(data, peer)
        return s

    # -- input ------------------------------------------------------------------------------

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        if self.closed.done():
            return
        # the datagrams of one loop turn go to the library together, then the events and one
        # transmit: a stream's data of the whole burst reaches its protocol in one piece, fewer
        # ACK-only packets and fewer passes over the packet builder
        self._rx.append(data)
        self.schedule_transmit()

    def datagrams_received(self, datagrams: list[bytes]) -> None:
        """A read's worth of datagrams from the peer (UDP GRO: net/udp_batch.py GroUDP)."""
        if self.closed.done():
            return
        self._rx.extend(datagrams)
        self.schedule_transmit()

    def _receive(self) -> None:
        rx, self._rx = self._rx, []
        self.backend.receive(self._conn, rx, self.peer, self._loop.time())
        self._process_events()

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self._conn.handle_timer(now=self._loop.time())
        self._process_events()
        self._transmit()

    def _process_events(self) -> None:
        ev = self._ev
        conn = self._conn
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
                    local = (sid & 1) == (0 if self._is_client else 1)
                    if (local or sid & 2 or sid <= self._finished_floor or sid in self._finished
                            or self._on_stream is None):
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
        if self._rx and not self.closed.done():
            self._receive()
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
        if self._conn._state is self.backend.terminated and not self.closed.done():
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
        limit = self.backend.stream_limit(self._conn)
        if limit is not None and (sid >> 2) >= limit:  # qh3 refuses rather than waits (aioquic waits)
            raise ConnectionResetError(f"quic: the peer allows {limit} streams so far (its maxIncomingStreams)")
        # create it in the library now (an empty write sends nothing), or the next open gets the same id
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
        if (sid & 1) != (0 if self._is_client else 1):  # the peer's: its late frames open nothing
            self._finished.add(sid)
            if len(self._finished) > 2 * FINISHED_KEPT:
                ids = sorted(self._finished)
                self._finished_floor = max(self._finished_floor, ids[-FINISHED_KEPT - 1])
                self._finished = set(ids[-FINISHED_KEPT:])


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
            return unmap(self._session.peer)  # a dual-stack quicBindPort sees IPv4 peers mapped
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
        return self._session.backend.unsent(self._conn, self.stream_id, self._written)

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

    def __init__(self, configuration: QuicSettings, on_session: Callable[[QuicSession], None], *,
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

    def datagrams_received(self, datagrams: list[bytes], addr: Any) -> None:
        s = self.sessions.get(addr)
        if s is not None and not s.is_closed:
            s.datagrams_received(datagrams)
            return
        for data in datagrams:
            self.datagram_received(data, addr)

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


async def dial_quic(host: str, port: int, *, server_name: str, cert_file: str = "", key_file: str = "",
                    ca_file: str = "", local_addr: tuple[str, int] | None = None, idle_timeout: float = 30.0,
                    keepalive: float = 10.0, max_incoming_streams: int = 0) -> QuicSession:
    """A QUIC connection to frps's quicBindPort on its own UDP socket, handshake done (Go:
    ``quic.DialAddr`` with frp's config). Raises OSError/EOFError if it cannot be made.

    The socket is read with UDP GRO (:class:`GroUDP`): frpc receives most of a bulk
    transfer, and frps's GSO bursts then arrive in one read each instead of one per datagram."""
    box: list[QuicSession] = []

    def on_datagrams(datagrams: list[bytes], addr: Any) -> None:
        if box:
            box[0].datagrams_received(datagrams)

    def on_error(exc: Exception) -> None:
        if box and isinstance(exc, ConnectionRefusedError):
            box[0]._finish(exc)

    udp = await GroUDP.connect(host, port, on_datagrams, on_error, local_addr=local_addr)
    enlarge_buffers(udp.get_extra_info("socket"), SOCKET_BUFFER)
    peer = udp.get_extra_info("peername")
    cfg = quic_configuration(is_client=True, idle_timeout=idle_timeout, server_name=server_name,
                             cert_file=cert_file, key_file=key_file, ca_file=ca_file)
    batcher = DatagramBatcher(cast(asyncio.DatagramTransport, udp), on_error=on_error)

    def send(data: bytes, addr: Addr) -> None:
        udp.sendto(data)

    def send_many(datagrams: list[bytes], addr: Addr) -> None:
        batcher.send(datagrams)

    def closed(_f: object) -> None:
        batcher.close()
        udp.close()

    try:
        s = QuicSession.connect((peer[0], peer[1]), send, cfg, keepalive=keepalive,
                                max_incoming_streams=max_incoming_streams, send_many=send_many)
        box.append(s)
        s.closed.add_done_callback(closed)
        await s.handshake
    except BaseException:
        batcher.close()
        udp.close()
        raise
    return s
