"""Cleartext HTTP/2 with prior knowledge on the vhost HTTP port (``PRI * HTTP/2.0`` as the first
bytes), as Go's frps serves it (``h2c.NewHandler`` up to 0.70.0, ``http.Server.Protocols`` since;
neither forwards HTTP/2 to the local service: requests go on as HTTP/1.1).

Each request stream is handled exactly as an HTTP/1.1 request on a connection of its own: a
:class:`~.http.ClientConn` on a :class:`_StreamTransport` gets the request as HTTP/1.1 bytes
(``Host`` from ``:authority``, the body as it arrives, chunked when its length is unknown,
``Connection: close``) and does what it does for any client, routing, auth, header rewrites,
``X-Forwarded-For`` with the real client address, the work-connection pool, the 404/401/502
pages. What it writes back is parsed as the HTTP/1.1 response it is and sent as HEADERS and DATA
frames (chunked coding taken off, connection-specific fields dropped), within the client's flow
control windows; a full window pauses that ClientConn's writes as a full socket would. The HTTP/2
framing, flow control and request checks are :mod:`aiofrp.proto.http2`'s.

Not carried over HTTP/2: CONNECT (405) and upgrades (HTTP/2 has none; the ``upgrade`` field is
refused by the request checks). ``Upgrade: h2c`` on an HTTP/1.1 request is not honoured (answered
in HTTP/1.1), as in Go 0.70.1.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from ...net.http2 import H2ServerProtocol
from ...proto import http2 as p2
from ...proto.addr import fmt_addr
from ...proto.http import (
    BodyFramer,
    ChunkedBody,
    HTTPError,
    NoBody,
    UntilClose,
    find_head_end,
    parse_response_head,
    response_body,
)
from .http import READ_HEADER_TIMEOUT as IDLE_TIMEOUT  # idle HTTP/1.1 connections are bounded alike
from .http import ClientConn

if TYPE_CHECKING:
    from .http import HTTPVhost

log = logging.getLogger("aiofrp.server.vhost.http")

WINDOW = 1 << 20  # per stream, 16x for the connection (as the https2* plugins; Go: 1 MiB)
MAX_STREAMS = 250  # Go's http2 server default
MAX_RESPONSE_HEAD = 1 << 20
# connection-specific fields, not allowed in HTTP/2 (RFC 9113 §8.2.2)
_FORBIDDEN = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"})


class _Stream(p2.Stream):
    __slots__ = ("chunked", "client", "client_paused", "done", "ending", "framer", "head", "in_held", "method",
                 "out_held", "reading", "transport")

    def __init__(self, sid: int, out_window: int, in_window: int) -> None:
        super().__init__(sid, out_window, in_window)
        # the stream's ClientConn, or a relay's side once the request went to another worker
        self.client: asyncio.Protocol | None = None
        self.transport: _StreamTransport | None = None
        self.method = ""
        self.head = b""  # the response head so far (None-like once parsed: framer is set)
        self.framer: BodyFramer | None = None
        self.out_held: list[bytes] = []  # response body bytes waiting for window
        self.in_held: list[tuple[bytes, int]] = []  # request bytes (coded) and their flow, reading paused
        self.reading = True
        self.chunked = False  # the request body goes to the ClientConn chunked (no content-length)
        self.client_paused = False  # its writes are paused for want of window
        self.ending = False  # the response is complete: END_STREAM after the held bytes
        self.done = False  # END_STREAM sent (or the stream reset)


class _StreamTransport(asyncio.Transport):
    """The transport a per-stream ClientConn speaks HTTP/1.1 on."""

    def __init__(self, conn: H2CConn, st: _Stream) -> None:
        super().__init__()
        self._conn = conn
        self._st = st
        self._closing = False

    def write(self, data: Any) -> None:
        if not self._closing:
            self._conn.response_bytes(self._st, bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(bytes(d) for d in list_of_data))

    def close(self) -> None:
        if not self._closing:
            self._closing = True
            self._conn.response_closed(self._st)

    def abort(self) -> None:
        if not self._closing:
            self._closing = True
            self._conn.response_closed(self._st, abort=True)

    def is_closing(self) -> bool:
        return self._closing

    def can_write_eof(self) -> bool:
        return False

    def write_eof(self) -> None:
        self.close()

    def pause_reading(self) -> None:
        self._st.reading = False

    def resume_reading(self) -> None:
        if not self._st.reading:
            self._st.reading = True
            self._conn.feed_held(self._st)

    def is_reading(self) -> bool:
        return self._st.reading

    def get_write_buffer_size(self) -> int:
        return sum(map(len, self._st.out_held))

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        """A relay takes the stream over (frps --workers N: its request went to another worker)."""
        self._st.client = protocol  # type: ignore[assignment]

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._st.client  # type: ignore[return-value]

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return self._conn.peer
        if name == "sockname":
            return self._conn.sockname
        return default


class H2CConn(H2ServerProtocol):
    """One client connection speaking HTTP/2 in clear text on the vhost HTTP port."""

    def __init__(self, vhost: HTTPVhost, transport: asyncio.Transport) -> None:
        super().__init__(max_streams=MAX_STREAMS, stream_window=WINDOW, conn_window=p2.DEFAULT_WINDOW + 16 * WINDOW)
        self.vhost = vhost
        self.transport = transport
        self.peer = transport.get_extra_info("peername")
        self.sockname = transport.get_extra_info("sockname")
        self.label = f"http2 from {fmt_addr(self.peer)}"
        self.write_paused = False
        self.last_active = self.loop.time()
        self.idle_timer: asyncio.TimerHandle | None = None

    def start(self, data: bytes) -> None:
        """Take the connection over, with what was read of it (the preface first)."""
        transport = self.transport
        assert transport is not None
        transport.set_protocol(self)
        self.initiate()
        self.data_received(data)
        transport.resume_reading()
        self.idle_timer = self.loop.call_later(IDLE_TIMEOUT, self._idle_check)

    def _idle_check(self) -> None:
        self.idle_timer = None
        if self.closed:
            return
        idle = self.loop.time() - self.last_active
        if self.streams or idle < IDLE_TIMEOUT:
            self.idle_timer = self.loop.call_later(max(1.0, IDLE_TIMEOUT - idle), self._idle_check)
            return
        log.debug("http2 from %s: idle for %gs, closing", fmt_addr(self.peer), IDLE_TIMEOUT)
        self._goaway(p2.NO_ERROR, "idle")
        self._close()

    # -- transport callbacks --------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self.last_active = self.loop.time()
        super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.idle_timer is not None:
            self.idle_timer.cancel()
            self.idle_timer = None
        for st in list(self.streams.values()):
            assert isinstance(st, _Stream)
            self._drop(st)
        self.streams.clear()

    def pause_writing(self) -> None:
        self.write_paused = True
        for st in self.streams.values():
            assert isinstance(st, _Stream)
            if st.client is not None:
                st.client.pause_writing()

    def resume_writing(self) -> None:
        self.write_paused = False
        for st in list(self.streams.values()):
            assert isinstance(st, _Stream)
            if st.client is not None and not st.out_held:
                st.client.resume_writing()

    # -- HTTP/2 hooks ---------------------------------------------------------------------------

    def new_stream(self, sid: int) -> p2.Stream:
        return _Stream(sid, self.peer_stream_window, self.stream_window)

    def on_request(self, st: p2.Stream, headers: list[tuple[bytes, bytes]]) -> None:
        assert isinstance(st, _Stream)
        pseudo: dict[bytes, bytes] = {}
        fields: list[bytes] = []
        cookies: list[bytes] = []
        for k, v in headers:
            if k[:1] == b":":
                pseudo[k] = v
            elif k == b"cookie":
                cookies.append(v)
            elif k != b"host":
                fields.append(k + b": " + v)
        if cookies:  # one field for HTTP/1.1, as Go's server joins them
            fields.append(b"cookie: " + b"; ".join(cookies))
        method = pseudo.get(b":method", b"GET")
        if method == b"CONNECT" or b":path" not in pseudo:
            st.done = True
            self._respond(st.id, 405 if method == b"CONNECT" else 400)
            return
        host = pseudo.get(b":authority") or next((v for k, v in headers if k == b"host"), b"")
        if st.cl < 0 and not st.remote_closed:  # proto/http2 has checked and parsed content-length
            fields.append(b"transfer-encoding: chunked")
            st.chunked = True
        st.method = method.decode("latin-1")
        head = b"%s %s HTTP/1.1\r\nhost: %s\r\n%sconnection: close\r\n\r\n" % (
            method, pseudo[b":path"], host, b"".join(f + b"\r\n" for f in fields))
        st.transport = _StreamTransport(self, st)
        st.client = client = ClientConn(self.vhost)
        client.connection_made(st.transport)
        if self.write_paused:
            client.pause_writing()
        client.data_received(head)

    def on_data(self, st: p2.Stream, data: bytes, flow: int) -> None:
        assert isinstance(st, _Stream)
        if st.chunked and data:
            data = b"%x\r\n%s\r\n" % (len(data), data)
        self._to_client(st, data, flow)

    def on_end(self, st: p2.Stream) -> None:
        assert isinstance(st, _Stream)
        if st.chunked and st.client is not None:
            self._to_client(st, b"0\r\n\r\n", 0)

    def on_reset(self, st: p2.Stream) -> None:
        assert isinstance(st, _Stream)
        self._drop(st)

    def on_window(self, sid: int) -> None:
        streams = list(self.streams.values()) if sid == 0 else [s for s in (self.streams.get(sid),) if s]
        for st in streams:
            assert isinstance(st, _Stream)
            if st.out_held:
                self._send_body(st, b"")
        self._flush()

    def on_goaway(self) -> None:
        self.terminated = True

    # -- request bytes to the stream's ClientConn --------------------------------------------------

    def _to_client(self, st: _Stream, data: bytes, flow: int) -> None:
        if st.client is None:
            if flow:
                self.acknowledge(st.id, flow)
            return
        if not st.reading or st.in_held:
            st.in_held.append((data, flow))
            return
        if flow:
            self.acknowledge(st.id, flow)
        if data:
            st.client.data_received(data)

    def feed_held(self, st: _Stream) -> None:
        """The ClientConn reads again: hand it what waited."""
        while st.in_held and st.reading and st.client is not None:
            data, flow = st.in_held.pop(0)
            if flow:
                self.acknowledge(st.id, flow)
            if data:
                st.client.data_received(data)
        self._flush()

    # -- response bytes from the stream's ClientConn -------------------------------------------------

    def response_bytes(self, st: _Stream, data: bytes) -> None:
        if st.done or self.closed:
            return
        if st.framer is None:
            st.head += data
            end = find_head_end(st.head)
            if end < 0:
                if len(st.head) > MAX_RESPONSE_HEAD:
                    self._fail(st)
                return
            head, rest = st.head[:end], st.head[end:]
            st.head = b""
            try:
                resp = parse_response_head(head)
            except HTTPError:
                self._fail(st)
                return
            if resp.status < 200:  # 100 Continue and the like: not passed on
                if rest:
                    self.response_bytes(st, rest)
                return
            framer = response_body(resp, st.method)
            st.framer = framer
            out = [(b":status", b"%d" % resp.status)]
            for k, v in resp.headers:
                name = k.lower().encode("latin-1")
                if name not in _FORBIDDEN:
                    out.append((name, v.encode("latin-1")))
            ended = isinstance(framer, NoBody)
            self.send_headers(st.id, out, end_stream=ended)
            if ended:
                st.done = True
                self._flush()
                return
            data = rest
            if not data:
                self._flush()
                return
        self._body(st, data)

    def _body(self, st: _Stream, data: bytes) -> None:
        framer = st.framer
        assert framer is not None
        if isinstance(framer, ChunkedBody):
            parts: list[bytes] = []
            try:
                framer.feed(data, 0, parts)
            except HTTPError:
                self._fail(st)
                return
            payload = b"".join(parts)
        else:  # a length, or until the close (which takes everything and is never done)
            end = framer.feed(data, 0)
            payload = data[:end]
        if framer.done:
            st.ending = True
        self._send_body(st, payload)
        self._flush()

    def _send_body(self, st: _Stream, data: bytes) -> None:
        if data:
            st.out_held.append(data)
        while st.out_held:
            window = min(self.local_flow_control_window(st.id), self.max_outbound_frame_size)
            if window <= 0:
                if st.client is not None and not st.client_paused:
                    st.client_paused = True
                    st.client.pause_writing()  # as a full socket would: the upstream stops reading
                return
            chunk = st.out_held[0]
            n = min(window, len(chunk))
            self.send_data(st.id, chunk[:n])
            if n == len(chunk):
                st.out_held.pop(0)
            else:
                st.out_held[0] = chunk[n:]
        if st.ending and not st.done:
            st.done = True
            self.end_stream(st.id)
        if st.client_paused and st.client is not None and not self.write_paused:
            st.client_paused = False
            st.client.resume_writing()

    def response_closed(self, st: _Stream, *, abort: bool = False) -> None:
        """The ClientConn closed its side: the response is over (or failed)."""
        client, st.client = st.client, None
        if client is not None:
            client.connection_lost(None)
        if st.done or self.closed:
            return
        framer = st.framer
        if not abort and framer is not None and (framer.done or isinstance(framer, UntilClose)):
            st.ending = True
            self._send_body(st, b"")
            self._flush()
            return
        self._fail(st)

    # -- helpers --------------------------------------------------------------------------------

    def _fail(self, st: _Stream) -> None:
        if not st.done:
            st.done = True
            self.reset_stream(st.id, p2.INTERNAL_ERROR)
            self._flush()

    def _drop(self, st: _Stream) -> None:
        st.done = True
        st.out_held.clear()
        st.in_held.clear()
        client, st.client = st.client, None
        if client is not None:
            client.connection_lost(None)

