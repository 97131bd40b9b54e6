"""HTTP/2 for the ``https2*`` plugins when the browser picks ``h2`` by ALPN (Go's ``http.Server``
does so unless ``enableHTTP2 = false``), on the ``h2`` library (sans-I/O, driven here from
protocol callbacks).

Each request stream runs the same reverse proxy as HTTP/1.1 (:class:`.reverse.ReverseProxy`: the
upstream is still spoken to in HTTP/1.1, as Go's transport does to a plain ``http://`` address).
Request bodies flow with HTTP/2 flow control (window credit is returned only as the upstream takes
the bytes); responses are sent as the peer's windows and our write buffer allow.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from .reverse import ReverseProxy, strip_hop
from .static import content_type

log = logging.getLogger("aiofrp.client.plugins.http")

WINDOW = 1 << 20  # per stream, and 16x that for the connection (Go's server: 1 MiB / 1 MiB+)
MAX_STREAMS = 250  # Go's http2 server default
# not allowed in HTTP/2 responses, whatever the upstream sends (RFC 9113 §8.2.2)
H2_FORBIDDEN = frozenset({"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"})


def h2_factory(proxy: ReverseProxy) -> Callable[[str | None, str | None], asyncio.Protocol]:
    def make(peer: str | None, sni: str | None) -> asyncio.Protocol:
        return H2Conn(proxy, peer, sni)

    return make


class _Stream:
    __slots__ = ("body", "ended", "id", "task", "waiter")

    def __init__(self, sid: int) -> None:
        self.id = sid
        self.body: list[tuple[bytes, int]] = []  # (data, flow-controlled length) not yet taken
        self.ended = False
        self.waiter: asyncio.Future[None] | None = None
        self.task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


class H2Conn(asyncio.Protocol):
    """One HTTP/2 server connection."""

    def __init__(self, proxy: ReverseProxy, peer: str | None, sni: str | None) -> None:
        self.proxy = proxy
        self.peer = peer
        self.sni = sni
        # Headers stay bytes inside h2 (no header_encoding): we decode a request's once, as
        # latin-1, and send a response's as latin-1 bytes, so every byte passes unchanged (h2
        # would encode str values as UTF-8). Outbound headers are not validated again by h2: ours
        # are built valid (an upstream head is parsed by proto/http, which refuses control
        # characters and non-token names; names are lower-cased, connection-specific ones dropped).
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=False, header_encoding=None, validate_inbound_headers=True,
            validate_outbound_headers=False))
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, _Stream] = {}
        self.window_waiters: dict[int, asyncio.Future[None]] = {}
        self.write_paused = False
        self.write_waiters: list[asyncio.Future[None]] = []
        self.closed = False
        self.flush_scheduled = False

    # -- transport callbacks --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.h2.local_settings = h2.settings.Settings(client=False, initial_values={
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: MAX_STREAMS,
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: WINDOW,
        })
        self.h2.initiate_connection()
        self.h2.increment_flow_control_window(16 * WINDOW)
        self._flush()

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(bytes(data))
        except h2.exceptions.ProtocolError as exc:
            log.debug("[%s] http2: bad frame from the browser: %s", self.proxy.name, exc)
            self._flush()
            self._close()
            return
        for ev in events:
            if isinstance(ev, h2.events.RequestReceived):
                self._request(ev)
            elif isinstance(ev, h2.events.DataReceived):
                st = self.streams.get(ev.stream_id)
                if st is None:
                    self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    continue
                st.body.append((ev.data, ev.flow_controlled_length))
                if ev.stream_ended is not None:
                    st.ended = True
                st.wake()
            elif isinstance(ev, h2.events.StreamEnded):
                st = self.streams.get(ev.stream_id)
                if st is not None:
                    st.ended = True
                    st.wake()
            elif isinstance(ev, h2.events.StreamReset):
                self._drop(ev.stream_id)
            elif isinstance(ev, h2.events.WindowUpdated):
                self._window_opened(ev.stream_id)
            elif isinstance(ev, h2.events.RemoteSettingsChanged):
                self._window_opened(0)
            elif isinstance(ev, h2.events.ConnectionTerminated):
                self._flush()
                self._close()
                return
        self._flush()

    def eof_received(self) -> bool:
        self._close()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        for sid in list(self.streams):
            self._drop(sid)
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

    # -- helpers --------------------------------------------------------------------------------

    def _flush(self) -> None:
        """Send h2's output at the end of this loop turn: the frames of every stream that
        answered meanwhile go out in one transport write (one TLS write, one mux frame, one
        syscall) instead of one each."""
        if not self.flush_scheduled and not self.closed:
            self.flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_now)

    def _flush_now(self) -> None:
        self.flush_scheduled = False
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.closed:
            self.transport.write(data)

    def _close(self) -> None:
        if self.transport is not None and not self.closed:
            self._flush_now()  # a GOAWAY or the last frames first
            self.closed = True
            self.transport.close()

    def _drop(self, sid: int) -> None:
        st = self.streams.pop(sid, None)
        if st is None:
            return
        st.ended = True
        st.wake()
        if st.task is not None and not st.task.done():
            st.task.cancel()
        fut = self.window_waiters.pop(sid, None)
        if fut is not None and not fut.done():
            fut.set_exception(ConnectionResetError("stream reset"))

    def _window_opened(self, sid: int) -> None:
        if sid == 0:
            waiters, self.window_waiters = self.window_waiters, {}
        else:
            fut = self.window_waiters.pop(sid, None)
            waiters = {sid: fut} if fut is not None else {}
        for fut in waiters.values():
            if not fut.done():
                fut.set_result(None)

    # -- one request ----------------------------------------------------------------------------

    def _request(self, ev: h2.events.RequestReceived) -> None:
        sid = ev.stream_id
        st = _Stream(sid)
        st.ended = ev.stream_ended is not None
        self.streams[sid] = st
        st.task = asyncio.get_running_loop().create_task(self._serve(st, list(ev.headers or [])))

    async def _body(self, st: _Stream) -> AsyncIterator[bytes]:
        while True:
            if st.body:
                chunks, st.body = st.body, []
                for _data, n in chunks:
                    if n and not self.closed and st.id in self.streams:
                        with contextlib.suppress(h2.exceptions.ProtocolError, KeyError):
                            self.h2.acknowledge_received_data(n, st.id)
                self._flush()
                data = b"".join(c for c, _ in chunks)
                if data:
                    yield data
                continue
            if st.ended:
                return
            st.waiter = asyncio.get_running_loop().create_future()
            await st.waiter
            st.waiter = None

    async def _serve(self, st: _Stream, raw: list[Any]) -> None:
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
            self.streams.pop(st.id, None)

    def _reset(self, sid: int) -> None:
        if self.closed:
            return
        with contextlib.suppress(h2.exceptions.ProtocolError, KeyError):
            self.h2.reset_stream(sid, h2.errors.ErrorCodes.INTERNAL_ERROR)
        self._flush()

    async def _proxy(self, st: _Stream, raw: list[Any]) -> None:
        pseudo: dict[str, str] = {}
        headers: list[tuple[str, str]] = []
        cookies: list[str] = []
        for k, v in raw:
            k = k.decode("latin-1") if isinstance(k, bytes) else k
            v = v.decode("latin-1") if isinstance(v, bytes) else v
            if k.startswith(":"):
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
        if self.proxy.misdirected(self.sni, host):
            self._respond(st.id, 421)
            return
        out = self.proxy.out_headers(headers, host, self.peer)
        body = None if st.ended and not st.body else self._body(st)
        try:
            up = await self.proxy.request(method, pseudo[":path"], out, body)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            self.proxy.proxy_error(exc)
            self._respond(st.id, 502)
            return
        try:
            resp_headers = [(b":status", b"%d" % up.status)]
            resp_headers += [(lk.encode("latin-1"), v.encode("latin-1")) for k, v in strip_hop(up.headers.items()).items()
                             if (lk := k.lower()) not in H2_FORBIDDEN]
            no_body = method == "HEAD" or up.status in (204, 304)
            first = b""
            if not no_body and "Content-Type" not in up.headers:  # Go's server sniffs it
                first = await up.readany()
                if first:
                    resp_headers.append((b"content-type", content_type("", first[:512]).encode()))
            self.h2.send_headers(st.id, resp_headers, end_stream=no_body)
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
                    self.h2.end_stream(st.id)
            self._flush()
        finally:
            up.release()

    def _respond(self, sid: int, status: int) -> None:
        with contextlib.suppress(h2.exceptions.ProtocolError, KeyError):
            self.h2.send_headers(sid, [(b":status", b"%d" % status), (b"content-length", b"0")], end_stream=True)
        self._flush()

    async def _send(self, sid: int, data: bytes, *, last: bool = False) -> bool:
        """``data`` on stream ``sid`` within the flow-control windows. With ``last`` (the body's
        known end) its final DATA frame carries END_STREAM, as Go's server sends it, and the
        frames stay in h2's buffer for the caller's flush (what waits is flushed first). True
        when the stream was ended here."""
        view = memoryview(data)
        loop = asyncio.get_running_loop()
        while view:
            if self.closed or sid not in self.streams:
                raise ConnectionResetError("stream closed")
            if self.write_paused:
                self._flush()
                fut = loop.create_future()
                self.write_waiters.append(fut)
                await fut
                continue
            window = min(self.h2.local_flow_control_window(sid), self.h2.max_outbound_frame_size)
            if window <= 0:
                self._flush()
                fut = loop.create_future()
                self.window_waiters[sid] = fut
                await fut
                continue
            n = min(window, len(view))
            end = last and n == len(view)
            self.h2.send_data(sid, bytes(view[:n]), end_stream=end)
            if end:
                return True
            view = view[n:]
        self._flush()  # one write for all the frames of this chunk
        return False

