"""frp's websocket transport (frpc ``transport.protocol = "websocket" | "wss"``; frps serves
``GET /~!frp`` on its bind port): a byte stream carried in WebSocket frames, as a Transport.

The handshakes are the ``websockets`` library's sans-I/O protocol objects, driven over any asyncio
transport (TCP, or our TLS for wss). After the handshake the frames are ours: read by
:class:`aiofrp.proto.wsframe.FrameReader` (payloads as slices of what the socket read, a big frame
delivered as it arrives), written with :func:`aiofrp.proto.wsframe.frame_header` (see
docs/performance.md "Transports").

What frp does (Go ``golang.org/x/net/websocket``, spec §1.7): the client asks for ``/~!frp`` with
``Origin: http://<host>`` (Go's server refuses a request without a parseable Origin with 403);
each write is one frame, the receiver treats the payloads as one byte stream whatever the
opcode (Go frp sends text frames up to 0.69, binary since 0.70; we send binary and accept both,
never checking UTF-8). Frames above :data:`MAX_FRAME` end the connection with close code 1009:
our limit, Go's ``Conn.Read`` streams frames of any size (its ``DefaultMaxPayloadBytes`` applies
to ``Codec.Receive`` only); no Go frp writes frames that big.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
from typing import Any
from urllib.parse import urlsplit

from websockets.client import ClientProtocol
from websockets.datastructures import Headers
from websockets.exceptions import ProtocolError as LibProtocolError
from websockets.frames import Close
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.typing import Origin
from websockets.uri import parse_uri

from ..proto.addr import fmt_addr
from ..proto.errors import TransportError
from ..proto.wsframe import (
    CLOSE_PROTOCOL_ERROR,
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    Control,
    FrameError,
    FrameReader,
    Payload,
    apply_mask,
    frame_header,
)
from .tls import TLSTransport
from .transport import PausableTransport

log = logging.getLogger("aiofrp.net.websocket")
# the library's own lines ("connection open", "HTTP response sent") are noise for frp
_lib_log = logging.getLogger("aiofrp.net.websocket.lib")
_lib_log.setLevel(logging.WARNING)

PATH = "/~!frp"
MAX_FRAME = 32 << 20  # bytes: the value of Go's websocket.DefaultMaxPayloadBytes
WRITE_FRAME = 1 << 20  # our writes are split into frames of at most this much
HANDSHAKE_TIMEOUT = 10.0
JOIN_BELOW = 32 << 10  # bytes: consecutive payloads of a read below this are handed on joined

_CLOSE_INVALID_DATA = 1007
_HEAD_END = b"\r\n\r\n"


def binary_frame_header(length: int, mask: bytes | None) -> bytes:
    """RFC 6455 header of a final binary frame of ``length`` payload bytes (masked with the
    4-byte ``mask`` when given, as clients must); what ``websockets``' ``Frame.serialize`` writes."""
    return frame_header(OP_BINARY, length, mask)


class WebSocketError(TransportError):
    """The WebSocket handshake or framing failed."""


class WebSocketConn(PausableTransport):
    """A byte stream over an open WebSocket on ``raw`` (an asyncio transport we own).

    Reading paused pauses ``raw``; ``raw`` pausing our writes pauses the protocol above."""

    def __init__(self, raw: asyncio.Transport, ws: ClientProtocol | ServerProtocol) -> None:
        super().__init__(asyncio.get_running_loop())
        self.raw = raw
        self.ws = ws  # the handshake's protocol object (the server's 101 is flushed from it)
        self._client = isinstance(ws, ClientProtocol)
        self._reader = FrameReader(masked=not self._client, max_size=MAX_FRAME)
        # a socket takes a frame's header and payload as two buffers; TLS below (wss) one piece
        self._gather = not isinstance(raw, TLSTransport) and raw.get_extra_info("ssl_object") is None
        self._open = True  # no close frame sent or received yet
        self._closed = False
        self._eof_fed = False
        self.holder: Early | None = None
        self.error: str = ""  # why the peer's stream ended badly (for log lines)
        self._side = _RawSide(self)

    def start(self, rest: bytes) -> None:
        """Take over ``raw`` after the handshake; ``rest``: what came after the HTTP head (the
        first frames). Until the caller sets a protocol, what arrives is held by an
        :class:`Early` protocol."""
        self._protocol = self.holder = Early()
        self.raw.set_protocol(self._side)
        self._flush()  # the server's 101
        if rest:
            self._on_data(rest)

    # -- from raw ------------------------------------------------------------------------------

    def _on_data(self, data: bytes) -> None:
        try:
            events = self._reader.feed(data)
        except FrameError as exc:
            self._deliver(exc.events)
            if not self._closed:
                self._fail(exc.code, exc.reason)
            return
        if len(events) == 1 and type(events[0]) is not Control:
            self._feed_data(events[0])  # type: ignore[arg-type]
            return
        self._deliver(events)

    def _deliver(self, events: list[Any]) -> None:
        """Hand on a read's events: the payloads of consecutive small frames as one piece (Go
        writes a frame per TLS record, ~16 KiB: measured, one join per read instead of a pass
        through the layers above per frame cut frpc's CPU per MB by a quarter), a big one as it
        is (no copy)."""
        run: list[Payload] = []
        for ev in events:
            if type(ev) is not Control and len(ev) < JOIN_BELOW:
                run.append(ev)
                continue
            if run:
                self._feed_data(run[0] if len(run) == 1 else b"".join(run))
                run = []
            if self._closed:
                return
            if type(ev) is Control:
                self._control(ev)
            else:
                self._feed_data(ev)
        if run and not self._closed:
            self._feed_data(run[0] if len(run) == 1 else b"".join(run))

    def _control(self, ev: Control) -> None:
        if ev.opcode == OP_PING:
            if self._open:
                self._send_control(OP_PONG, ev.payload)
            return
        if ev.opcode != OP_CLOSE:
            return  # an unsolicited pong: nothing to answer (RFC 6455 §5.5.3)
        # the close handshake as websockets did it: the payload checked, echoed as it came
        try:
            Close.parse(ev.payload)
        except LibProtocolError as exc:
            self._fail(CLOSE_PROTOCOL_ERROR, str(exc))
            return
        except UnicodeDecodeError as exc:
            self._fail(_CLOSE_INVALID_DATA, f"{exc.reason} at position {exc.start}")
            return
        if self._reader.in_message:
            self._fail(CLOSE_PROTOCOL_ERROR, "incomplete fragmented message")
            return
        if self._open:
            self._open = False
            self._send_control(OP_CLOSE, ev.payload)
        self._eof()

    def _eof(self) -> None:
        if not self._eof_fed and not self._closed:
            self._eof_fed = True
            self._feed_eof()

    def _on_eof(self) -> None:
        if self._closed or self._eof_fed:
            return
        # the TCP stream ended without a close frame
        self._fail(0, "stream ends inside a frame" if self._reader.in_frame else "unexpected end of stream")

    def _on_lost(self, exc: Exception | None) -> None:
        self._lose(exc)

    def _fail(self, code: int, reason: str) -> None:
        """Fail the connection on the peer's bad bytes: a close frame with ``code`` (0: none, the
        peer is gone), then closed, the protocol told why."""
        self.error = f"bad websocket frame: {reason}"
        if self._open and code:
            self._send_control(OP_CLOSE, struct.pack("!H", code) + reason.encode())
        self._open = False
        self._lose(WebSocketError(self.error))

    def _send_control(self, opcode: int, payload: bytes) -> None:
        if self.raw.is_closing():
            return
        if self._client:
            mask = os.urandom(4)
            self.raw.write(frame_header(opcode, len(payload), mask) + apply_mask(payload, mask))
        else:
            self.raw.write(frame_header(opcode, len(payload), None) + payload)

    def _flush(self) -> None:
        out = self.ws.data_to_send()
        if out and not self.raw.is_closing():
            data = b"".join(out)
            if data:
                self.raw.write(data)

    # -- transport API -------------------------------------------------------------------------

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.raw.get_extra_info(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closed or not data or not self._open:
            return
        # frames built here, not by websockets' Frame.serialize (which copies each payload into a
        # BytesIO and out again); same bytes on the wire. A client masks the payload (one C pass).
        view = memoryview(data)
        raw, client, gather = self.raw, self._client, self._gather
        for i in range(0, len(view), WRITE_FRAME):
            part = view[i:i + WRITE_FRAME]
            mask = os.urandom(4) if client else None
            payload = apply_mask(part, mask) if mask is not None else part
            if gather:
                # a socket takes header and payload as two buffers (no join)
                raw.writelines((binary_frame_header(len(part), mask), payload))
            else:
                # TLS below (wss): one piece, so that a frame is one TLS record, not two
                raw.write(binary_frame_header(len(part), mask) + payload)

    def pause_reading(self) -> None:
        super().pause_reading()
        if not self._closed:
            self.raw.pause_reading()

    def resume_reading(self) -> None:
        super().resume_reading()
        if not self._closed and not self.raw.is_closing():
            self.raw.resume_reading()

    def can_write_eof(self) -> bool:
        return False

    def write_eof(self) -> None:
        raise NotImplementedError("websocket has no half-close")

    def is_closing(self) -> bool:
        return self._closed

    def get_write_buffer_size(self) -> int:
        return self.raw.get_write_buffer_size()

    def close(self) -> None:
        if self._closed:
            return
        if self._open:
            self._open = False
            self._send_control(OP_CLOSE, b"")  # no status code, as websockets' send_close()
        self.raw.close()
        self._lose(None)

    def abort(self) -> None:
        self.raw.abort()
        self._lose(None)

    def _lose(self, exc: Exception | None) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop_reading()
        if not self.raw.is_closing():
            self.raw.close()
        proto, self._protocol = self._protocol, None
        if isinstance(proto, Early):
            proto.connection_lost(exc)
        elif proto is not None:
            self._loop.call_soon(proto.connection_lost, exc)


class Early(asyncio.Protocol):
    """Holds what a new connection receives until its real protocol is set (see
    :meth:`WebSocketConn.start`): pass ``early`` to it, and ``eof``/``lost`` say how it ended."""

    def __init__(self) -> None:
        self.early = bytearray()
        self.eof = False
        self.lost = False
        self.exc: Exception | None = None

    def data_received(self, data: bytes) -> None:
        self.early += data

    def eof_received(self) -> bool:
        self.eof = True
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.exc = exc


class _RawSide(asyncio.Protocol):
    def __init__(self, conn: WebSocketConn) -> None:
        self.conn = conn

    def data_received(self, data: bytes) -> None:
        self.conn._on_data(data)

    def eof_received(self) -> bool:
        self.conn._on_eof()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn._on_lost(exc)

    def pause_writing(self) -> None:
        self.conn._set_write_paused(True)

    def resume_writing(self) -> None:
        self.conn._set_write_paused(False)


class _HeadEnd:
    """Where a handshake's HTTP head ends (the first empty line), across reads: the library
    parses the head, what follows it (frames) stays for our reader."""

    def __init__(self) -> None:
        self._tail = b""  # the last bytes looked at, for an end split over two reads

    def split(self, data: bytes) -> tuple[bytes, bytes | None]:
        """(the part of ``data`` up to the end of the head, the rest or None: not ended yet)"""
        probe = self._tail + data
        i = probe.find(_HEAD_END)
        if i < 0:
            self._tail = probe[-3:]
            return data, None
        end = i + 4 - len(self._tail)
        return data[:end], data[end:]


# -- client ------------------------------------------------------------------------------------


class _Handshake(asyncio.Protocol):
    """Reads the handshake answer off ``raw`` (client); what follows the HTTP head is kept raw in
    ``rest``, and so is what arrives before :func:`client_handshake` takes over."""

    def __init__(self, ws: ClientProtocol) -> None:
        self.ws = ws
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._head: _HeadEnd | None = _HeadEnd()  # None: past the head (or the library reads all)
        self.rest = bytearray()
        self.eof = False
        self.lost = False
        self.exc: Exception | None = None

    def data_received(self, data: bytes) -> None:
        if self._head is None:
            self.rest += data
            return
        head, rest = self._head.split(data)
        ws = self.ws
        ws.receive_data(head)
        events = ws.events_received()
        if rest is not None:
            self._head = None
            if not events and ws.handshake_exc is None:
                # a head that announces a body (not a 101): the library reads it to its end
                ws.receive_data(rest)
                events = ws.events_received()
                rest = b""
            self.rest += rest
        if (events or ws.handshake_exc is not None) and not self.done.done():
            self._head = None
            self.done.set_result(None)

    def eof_received(self) -> bool:
        self.eof = True
        if not self.done.done():
            self.done.set_exception(EOFError("connection closed during the websocket handshake"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.exc = exc
        if not self.done.done():
            self.done.set_exception(exc or EOFError("connection closed during the websocket handshake"))


async def client_handshake(raw: asyncio.Transport, host: str, *, initial: bytes = b"",
                           timeout: float = HANDSHAKE_TIMEOUT) -> WebSocketConn:
    """Open frp's websocket on ``raw`` like Go's ``DialHookWebsocket``: ``ws://host/~!frp`` (host is
    ``serverAddr:serverPort``, or the TLS server name for wss) with ``Origin: http://host``."""
    ws = ClientProtocol(parse_uri(f"ws://{host}{PATH}"), origin=Origin(f"http://{host}"),
                        max_size=(None, MAX_FRAME), logger=_lib_log)
    request = ws.connect()
    ws.send_request(request)
    hs = _Handshake(ws)
    raw.set_protocol(hs)
    raw.write(b"".join(ws.data_to_send()))
    if initial:
        hs.data_received(initial)
    try:
        async with asyncio.timeout(timeout):
            await hs.done
    except TimeoutError:
        raise WebSocketError(f"no websocket handshake answer within {timeout:g}s") from None
    if ws.handshake_exc is not None:
        raise WebSocketError(f"websocket handshake failed: {ws.handshake_exc}")
    conn = WebSocketConn(raw, ws)
    conn.start(bytes(hs.rest))
    if hs.eof:  # the server's frames (and EOF) came before this coroutine resumed
        conn._on_eof()
    if hs.lost:
        conn._on_lost(hs.exc)
    return conn


# -- server ------------------------------------------------------------------------------------


def check_path(request: Request) -> tuple[int, str] | None:
    """Go's ServeMux: only ``/~!frp`` has a handler (404 otherwise)."""
    if request.path.split("?", 1)[0] != PATH:
        return 404, f"path {request.path!r} is not {PATH}"
    return None


def check_origin(request: Request) -> tuple[int, str] | None:
    """Go's websocket.Handler: a parseable Origin is required (403 otherwise)."""
    origin = request.headers.get("Origin")
    if not origin:
        return 403, "no Origin header"
    try:
        parts = urlsplit(origin)
    except ValueError:
        parts = None
    if parts is None or not parts.scheme or not parts.netloc:
        return 403, f"Origin {origin!r} is not a URL"
    return None


class ServerHandshake(asyncio.Protocol):
    """frps: answers the ``GET /~!frp`` upgrade on a bind-port connection; ``done`` gets the
    :class:`WebSocketConn` or an exception saying why the request was refused."""

    def __init__(self, raw: asyncio.Transport) -> None:
        self.raw = raw
        self.ws = ServerProtocol(max_size=(None, MAX_FRAME), logger=_lib_log)
        self._head = _HeadEnd()
        self.done: asyncio.Future[WebSocketConn] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        if self.done.done():
            return
        ws = self.ws
        head, rest = self._head.split(data)
        ws.receive_data(head)  # the frames after the head are ours (conn.start)
        events = ws.events_received()
        if ws.handshake_exc is not None or (not events and ws.state is not State.CONNECTING):
            self._refuse(ws.handshake_exc, None)
            return
        if not events:
            return
        request = events[0]
        assert isinstance(request, Request)
        # Go's order: the mux (path, 404), the handshaker (upgrade headers, 400), the Origin (403)
        response = ws.accept(request)
        bad = check_path(request)
        if bad is None and response.status_code != 101:
            bad = 400, str(ws.handshake_exc or f"HTTP {response.status_code}")
        if bad is None:
            bad = check_origin(request)
        if bad is not None:
            status, reason = bad
            self._refuse(WebSocketError(reason), ws.reject(status, f"{reason}\n"))
            return
        response.headers = Headers([(k, v) for k, v in response.headers.raw_items() if k.lower() != "server"])
        ws.send_response(response)
        conn = WebSocketConn(self.raw, ws)
        conn.start(rest or b"")
        self.done.set_result(conn)

    def _refuse(self, exc: BaseException | None, response: Response | None) -> None:
        ws = self.ws
        if response is not None:
            ws.send_response(response)
        out = b"".join(ws.data_to_send())
        if not out:  # not HTTP at all: answer like Go's net/http does
            out = (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
                   b"Connection: close\r\n\r\n400 Bad Request")
        if not self.raw.is_closing():
            self.raw.write(out)
        cause = exc.__cause__ if exc is not None and exc.__cause__ is not None else exc
        self.done.set_exception(WebSocketError(f"bad websocket request: {cause or exc}"))

    def eof_received(self) -> bool:
        if not self.done.done():
            self.done.set_exception(EOFError("closed during the websocket handshake"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(exc or EOFError("closed during the websocket handshake"))


def peer_label(transport: asyncio.BaseTransport) -> str:
    return fmt_addr(transport.get_extra_info("peername"))
