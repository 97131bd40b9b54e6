"""HTTP/2 for the ``https2*`` plugins when the browser picks ``h2`` by ALPN (Go's ``http.Server``
does so unless ``enableHTTP2 = false``), on our sans-I/O :mod:`aiofrp.proto.http2` (frames, flow
control, request checks; HPACK by the ``hpack`` library), driven here from protocol callbacks.

Each request stream runs the same reverse proxy as HTTP/1.1 (:class:`.reverse.ReverseProxy`: the
upstream is still spoken to in HTTP/1.1, as Go's transport does to a plain ``http://`` address).
Request bodies flow with HTTP/2 flow control (window credit is returned only as the upstream takes
the bytes); responses are sent as the peer's windows and our write buffer allow.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import aiohttp

from ....net.http2 import H2ServerProtocol
from ....proto import http as ph
from ....proto import http2 as p2
from ....proto.http import http_date, request_uri
from ....proto.sniff import detect_content_type
from .responses import bad_target, go_sniffs
from .reverse import ReverseProxy, response_items, sniff_bytes

log = logging.getLogger("aiofrp.client.plugins.http")

WINDOW = 1 << 20  # per stream, and 16x that for the connection (Go's server: 1 MiB / 1 MiB+)
MAX_STREAMS = 250  # Go's http2 server default
H2_HOLD_LEN = 4096  # Go's http2 responseWriter buffer (handlerChunkWriteSize)
# not allowed in HTTP/2 responses, whatever the upstream sends (RFC 9113 §8.2.2)
H2_FORBIDDEN = frozenset({"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"})


def h2_factory(proxy: ReverseProxy) -> Callable[[str | None, str | None], asyncio.Protocol]:
    def make(peer: str | None, sni: str | None) -> asyncio.Protocol:
        return H2Conn(proxy, peer, sni)

    return make


class _Stream(p2.Stream):
    __slots__ = ("body", "task", "waiter")

    def __init__(self, sid: int, out_window: int, in_window: int) -> None:
        super().__init__(sid, out_window, in_window)
        self.body: list[tuple[bytes, int]] = []  # (data, flow-controlled length) not yet taken
        self.waiter: asyncio.Future[None] | None = None
        self.task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


class H2Conn(H2ServerProtocol):
    """One HTTP/2 server connection.

    Header bytes pass unchanged both ways: a request's are decoded once, as latin-1, and a
    response's sent as latin-1 bytes (Go does the same). Outbound headers are not checked again:
    ours are built valid (an upstream head is parsed by proto/http, which refuses control
    characters and non-token names; names are lower-cased, connection-specific ones dropped).
    """

    def __init__(self, proxy: ReverseProxy, peer: str | None, sni: str | None) -> None:
        super().__init__(max_streams=MAX_STREAMS, stream_window=WINDOW, conn_window=p2.DEFAULT_WINDOW + 16 * WINDOW)
        self.proxy = proxy
        self.peer = peer
        self.sni = sni
        self.label = f"[{proxy.name}] http2 from the browser"
        self.window_waiters: dict[int, asyncio.Future[None]] = {}
        self.write_paused = False
        self.write_waiters: list[asyncio.Future[None]] = []

    # -- transport callbacks --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.initiate()
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        for st in list(self.streams.values()):
            assert isinstance(st, _Stream)
            self._drop(st)
        self.streams.clear()
        for fut in [*self.window_waiters.values(), *self.write_waiters]:
            if not fut.done():
                fut.set_exception(ConnectionResetError("connection lost"))
        self.window_waiters.clear()
        self.write_waiters.clear()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        waiters, self.write_waiters = self.write_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    # -- protocol hooks -------------------------------------------------------------------------

    def new_stream(self, sid: int) -> p2.Stream:
        return _Stream(sid, self.peer_stream_window, self.stream_window)

    def on_request(self, st: p2.Stream, headers: list[tuple[bytes, bytes]]) -> None:
        assert isinstance(st, _Stream)
        st.task = self.loop.create_task(self._serve(st, headers))

    def on_data(self, st: p2.Stream, data: bytes, flow: int) -> None:
        assert isinstance(st, _Stream)
        st.body.append((data, flow))
        st.wake()

    def on_end(self, st: p2.Stream) -> None:
        assert isinstance(st, _Stream)
        st.wake()

    def on_reset(self, st: p2.Stream) -> None:
        assert isinstance(st, _Stream)
        self._drop(st)

    def on_window(self, sid: int) -> None:
        if sid == 0:
            waiters, self.window_waiters = self.window_waiters, {}
        else:
            fut = self.window_waiters.pop(sid, None)
            waiters = {sid: fut} if fut is not None else {}
        for fut in waiters.values():
            if not fut.done():
                fut.set_result(None)

    def on_goaway(self) -> None:
        self.terminated = True

    # -- helpers --------------------------------------------------------------------------------

    def _drop(self, st: _Stream) -> None:
        st.remote_closed = True
        st.wake()
        if st.task is not None and not st.task.done():
            st.task.cancel()
        fut = self.window_waiters.pop(st.id, None)
        if fut is not None and not fut.done():
            fut.set_exception(ConnectionResetError("stream reset"))

    # -- one request ----------------------------------------------------------------------------

    async def _body(self, st: _Stream) -> AsyncIterator[bytes]:
        while True:
            if st.body:
                chunks, st.body = st.body, []
                if not self.closed:
                    for _data, n in chunks:
                        self.acknowledge(st.id, n)
                    self._flush()
                data = b"".join(c for c, _ in chunks)
                if data:
                    yield data
                continue
            if st.remote_closed:
                return
            st.waiter = self.loop.create_future()
            await st.waiter
            st.waiter = None

    async def _serve(self, st: _Stream, raw: list[tuple[bytes, bytes]]) -> None:
        try:
            await self._proxy(st, raw)
        except asyncio.CancelledError:
            pass
        except (TimeoutError, ConnectionError, aiohttp.ClientError) as exc:
            log.debug("[%s] http2 stream %d: %s", self.proxy.name, st.id, exc)
            self._reset(st.id)
        except Exception as exc:  # noqa: BLE001 - one stream fails alone, with a log line
            log.warning("[%s] http2 stream %d: %s", self.proxy.name, st.id, exc)
            self._reset(st.id)
        finally:
            st.task = None
            if self.streams.get(st.id) is st and not self.closed:
                # answered while the browser still sends its request: the stream is reset with
                # NO_ERROR (Go's server does the same); not answered (a failure): INTERNAL_ERROR
                self._reset(st.id, p2.NO_ERROR if st.local_closed else p2.INTERNAL_ERROR)

    def _reset(self, sid: int, code: int = p2.INTERNAL_ERROR) -> None:
        if self.closed:
            return
        self.reset_stream(sid, code)
        self._flush()

    async def _proxy(self, st: _Stream, raw: list[tuple[bytes, bytes]]) -> None:
        pseudo: dict[str, str] = {}
        headers: list[tuple[str, str]] = []
        cookies: list[str] = []
        for bk, bv in raw:
            k = bk.decode("latin-1")
            v = bv.decode("latin-1")
            if k[0] == ":":
                pseudo[k] = v
            elif k == "cookie":
                cookies.append(v)
            else:
                headers.append((k, v))
        if cookies:  # Go's http2 server joins them for HTTP/1.1 semantics
            headers.append(("cookie", "; ".join(cookies)))
        method = pseudo.get(":method", "GET")
        host = pseudo.get(":authority") or next((v for k, v in headers if k == "host"), "")
        headers = [(k, v) for k, v in headers if k != "host"]
        if method == "CONNECT" or ":path" not in pseudo:
            self._respond(st.id, 405 if method == "CONNECT" else 400)
            return
        if bad_target(pseudo[":path"]):  # Go's http2 server: "invalid request", the stream reset
            self._reset(st.id, p2.PROTOCOL_ERROR)
            return
        if self.proxy.misdirected(self.sni, host):
            self._respond(st.id, 421)
            return
        out = self.proxy.out_headers(headers, host, self.peer)
        body = None if st.remote_closed and not st.body else self._body(st)

        def interim(head: ph.Response) -> None:
            """A 1xx from the upstream: a HEADERS frame of its own (Go's ``Got1xxResponse``)."""
            if self.closed or st.id not in self.streams:
                return
            fields = [(b":status", b"%d" % head.status)]
            fields += [(lk.encode("latin-1"), v.encode("latin-1")) for k, v in head.headers
                       if (lk := k.lower()) not in H2_FORBIDDEN and lk != "content-length"]
            self.send_headers(st.id, fields, end_stream=False)
            self._flush()

        try:
            up = await self.proxy.request(method, request_uri(pseudo[":path"]), out, body, interim)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            self.proxy.proxy_error(exc)
            self._respond(st.id, 502)
            return
        try:
            resp_headers = [(b":status", b"%d" % up.status)]
            resp_headers += [(lk.encode("latin-1"), v.encode("latin-1")) for k, v in response_items(up.headers.items())
                             if (lk := k.lower()) not in H2_FORBIDDEN]
            if "Date" not in up.headers:  # Go's http2 server adds one, as its HTTP/1.1 server does
                resp_headers.append((b"date", http_date().encode()))
            no_body = method == "HEAD" or up.status in (204, 304)
            # a known length: Go's http2 server holds the head with the first 4 KiB of body (a body
            # that breaks off within them: the stream is reset, no head sent); it guesses a
            # missing Content-Type from what it holds
            held = "Content-Length" in up.headers and not no_body
            sniffs = go_sniffs(up.headers, up.status, method)
            first = await sniff_bytes(up, held, H2_HOLD_LEN) if held or sniffs else b""
            if first and sniffs:
                resp_headers.append((b"content-type", detect_content_type(first).encode()))
            self.send_headers(st.id, resp_headers, end_stream=no_body)
            # a known length: HEADERS, DATA and END_STREAM frames go out in as few writes as the
            # body allows (one for a small answer: one TLS write, one mux frame); otherwise the
            # head is sent at once and each chunk as it comes
            cl = up.headers.get("Content-Length", "")
            left = int(cl) if cl.isdigit() and cl.isascii() and not no_body else -1
            if left < 0:
                self._flush()
            if not no_body:
                ended = False
                if first:
                    left -= len(first)
                    ended = await self._send(st.id, first, last=left == 0)
                async for chunk in up.iter_any():
                    left -= len(chunk)
                    ended = await self._send(st.id, chunk, last=left == 0)
                if not ended:
                    self.end_stream(st.id)
            self._flush()
        finally:
            up.release()

    async def _send(self, sid: int, data: bytes, *, last: bool = False) -> bool:
        """``data`` on stream ``sid`` within the flow-control windows. With ``last`` (the body's
        known end) its final DATA frame carries END_STREAM, as Go's server sends it, and the
        frames stay in the output buffer for the caller's flush (what waits is flushed first). True
        when the stream was ended here."""
        view = memoryview(data)
        loop = self.loop
        while view:
            if self.closed or sid not in self.streams:
                raise ConnectionResetError("stream closed")
            if self.write_paused:
                self._flush()
                fut = loop.create_future()
                self.write_waiters.append(fut)
                await fut
                continue
            window = min(self.local_flow_control_window(sid), self.max_outbound_frame_size)
            if window <= 0:
                self._flush()
                fut = loop.create_future()
                self.window_waiters[sid] = fut
                await fut
                continue
            n = min(window, len(view))
            end = last and n == len(view)
            self.send_data(sid, view[:n], end_stream=end)
            if end:
                return True
            view = view[n:]
        self._flush()  # one write for all the frames of this chunk
        return False

