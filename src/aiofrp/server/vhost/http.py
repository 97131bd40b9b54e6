"""The vhost HTTP port (frp §6.2): an HTTP/1.1 reverse proxy routing by Host, path and user.

:class:`ClientConn` is the protocol of one client connection. It parses request heads itself
(:mod:`aiofrp.proto.http`), routes each request (:class:`~.router.Routers`), checks basic auth,
rewrites the head (Host, X-Forwarded-*, ``requestHeaders.set``) and streams it with its body to
an :class:`~.http_upstream.Upstream` of the chosen proxy, whose response streams back the same
way. Bodies are never buffered: bytes are forwarded as they arrive, and a full write buffer on
one side pauses reading on the other. Requests of one keep-alive connection are routed one by
one, each to its own proxy. After ``101 Switching Protocols`` (WebSocket ...) and for CONNECT the
two connections become a raw :class:`~aiofrp.net.relay.Relay`.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import os
import re
from typing import TYPE_CHECKING, Any, Protocol

from ...net.listen import listen_tcp, peer_addr
from ...net.relay import Codec, Relay, WorkConn
from ...proto.addr import fmt_addr
from ...proto.http import (
    MAX_HEAD_SIZE,
    BodyFramer,
    HTTPError,
    NoBody,
    Request,
    Response,
    basic_auth,
    canonical_host,
    find_head_end,
    parse_request_head,
    request_body,
)
from .http_rewrite import (
    BodyCoding,
    connect_head_out,
    interim_head,
    request_head_out,
    response_head_out,
    upgrade_head_out,
    upgrade_type,
)
from .pages import (
    EXPECTATION_FAILED,
    EXPECTATION_FAILED_10,
    GATEWAY_TIMEOUT,
    PROXY_UNAUTHORIZED,
    UNAUTHORIZED,
    Page,
    error_response,
    not_found_page,
    raw_not_found,
    render,
)
from .router import Route, Routers

if TYPE_CHECKING:
    from ...config.server import ServerConfig
    from ...net.limiter import TokenBucket
    from ...net.msgconn import MsgConn
    from . import Elsewhere, Spawn
    from .http_upstream import Upstream, UpstreamPool

log = logging.getLogger("aiofrp.server.vhost.http")

# Go: http.Server.ReadHeaderTimeout = 60 s. Also bounds idle keep-alive connections (Go: none).
READ_HEADER_TIMEOUT = float(os.environ.get("AIOFRP_VHOST_READ_HEADER_TIMEOUT", "60"))

_CONTINUE_TOKEN = re.compile(r"(?:^|[ ,\t])100-continue(?:$|[ ,\t])", re.IGNORECASE)  # net/http hasToken


class ClientState(enum.Enum):
    """Where a :class:`ClientConn` is in the current exchange."""

    HEAD = "reading a request head"
    ACQUIRE = "waiting for a work connection"
    BODY = "forwarding the request body"
    WAIT = "waiting for the response"
    LINGER = "draining after an error response"
    CLOSED = "closed"


_HEAD, _ACQUIRE, _BODY, _WAIT, _LINGER, _CLOSED = ClientState  # module-level names: fast to compare


class PauseReason(enum.Flag):
    """Why reading the client is paused (several may hold at once)."""

    UPSTREAM = enum.auto()  # the work connection's write buffer is full
    HOLD = enum.auto()  # bytes of the next request wait until the current exchange is over
    LIMIT = enum.auto()  # request bytes wait for the proxy's bandwidth limit (mode "server")


_NOT_PAUSED = PauseReason(0)
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_R_UPSTREAM, _R_HOLD, _R_LIMIT = PauseReason.UPSTREAM, PauseReason.HOLD, PauseReason.LIMIT
LINGER_TIME = 1.0  # after an error response, unread request bytes are drained this long


class WorkConnSource(Protocol):
    """Where an http proxy's work connections come from (server/control.py: Control)."""

    async def get_work_conn(self) -> MsgConn: ...

    def take_work_conn_nowait(self) -> MsgConn | None: ...


class HTTPMember(Protocol):
    """What the vhost uses of an http proxy (server/proxies/http.py: HTTPProxy)."""

    @property
    def name(self) -> str: ...
    @property
    def closed(self) -> bool: ...
    @property
    def pool(self) -> UpstreamPool: ...
    @property
    def control(self) -> WorkConnSource: ...
    @property
    def limiter(self) -> TokenBucket | None: ...

    def new_upstream(self, conn: MsgConn, peer: tuple[str, int]) -> Upstream: ...

    def upstream_done(self, up: Upstream) -> None: ...

    def relay_opened(self, relay: Relay) -> None: ...

    def relay_closed(self, relay: Relay) -> None: ...

    def start_work_conn(self, conn: MsgConn, src: tuple[Any, ...] | None = None,
                        dst: tuple[Any, ...] | None = None) -> WorkConn: ...


class HTTPVhost:
    """The router and the listener(s) of ``vhostHTTPPort``."""

    def __init__(self, cfg: ServerConfig, spawn: Spawn) -> None:
        self.spawn = spawn
        self.router: Routers[Route[HTTPMember]] = Routers()
        self.port: int = cfg.vhost_http_port
        self.response_timeout = float(cfg.vhost_http_timeout if cfg.vhost_http_timeout > 0 else 60)
        self.custom_404: str = cfg.custom_404_page
        self.shared = False  # True when it lives on the bind port (service._Sniff hands it connections)
        self.reuse_port = False  # frps --workers N: every worker listens
        self.elsewhere: Elsewhere | None = None  # frps --workers N: routes of the other workers

    async def listen(self, host: str, port: int) -> asyncio.Server:
        return await listen_tcp(lambda: ClientConn(self), host, port, reuse_port=self.reuse_port)

    def accept(self, transport: asyncio.Transport, data: bytes, *, handed: bool = False) -> None:
        """A connection of the bind port that sniffing found to be HTTP (``handed``: from another
        worker, server/workers/handover.py)."""
        conn = ClientConn(self)
        conn.handed = handed
        transport.set_protocol(conn)
        conn.connection_made(transport)
        if data:
            conn.data_received(data)

    def not_found(self) -> Page:
        return Page(404, not_found_page(self.custom_404), "text/html; charset=utf-8")


class ClientConn(asyncio.Protocol):
    """One client connection of the vhost HTTP port."""

    def __init__(self, vhost: HTTPVhost) -> None:
        self.vhost = vhost
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.client_ip = ""
        self.peer: tuple[str, int] = ("", 0)
        self.state = _HEAD
        self.hbuf = bytearray()  # partial request head
        self.scan = 0
        self.pending = b""  # bytes read behind the current request
        self.paused = _NOT_PAUSED
        self.write_paused = False
        self.eof = False
        self.timer: asyncio.TimerHandle | None = None
        # the current exchange
        self.req: Request | None = None
        self.route: Route[HTTPMember] | None = None
        self.member: HTTPMember | None = None
        self.framer: BodyFramer = NoBody()
        self.out_head = b""
        self.up: Upstream | None = None
        self.keep_alive = True
        self.upgrade = ""  # the protocol the request asks to switch to
        self.expect_continue = False  # Go's server says 100 Continue when the body is first read
        self.resp_started = False
        self.resp_close = False  # the client's connection ends after the current response
        self.retried = False
        self.waiting: UpstreamPool | None = None  # the pool whose next free upstream this request takes
        self.handed = False  # handed over by another worker (server/workers/handover.py)
        self.requests = 0  # requests read on this connection

    # -- connection -----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = peer_addr(transport)
        if peer:
            self.peer = (peer[0], peer[1])
            self.client_ip = peer[0]
        self._arm_head_timer()

    def _arm_head_timer(self) -> None:
        self.timer = asyncio.get_running_loop().call_later(READ_HEADER_TIMEOUT, self._head_timeout)

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _head_timeout(self) -> None:
        self.timer = None
        if self.state == _HEAD:
            if self.hbuf:
                log.info("http request head from %s not complete in %gs, closing", fmt_addr(self.peer),
                         READ_HEADER_TIMEOUT)
            self._close(abort=True)

    def data_received(self, data: bytes) -> None:
        state = self.state
        try:
            if state == _BODY:
                self._body(data, 0)
            elif state == _HEAD:
                self._head(data)
            elif state == _LINGER:
                return
            elif state != _CLOSED:
                self.pending += data
                self._pause(_R_HOLD)
        except Exception:
            log.exception("http vhost: request handling failed for %s", fmt_addr(self.peer))
            self._close(abort=True)

    def eof_received(self) -> bool:
        self.eof = True
        if self.state in (_HEAD, _LINGER):
            self._close()
            return False
        if self.state == _BODY and self.up is not None and not self.framer.done:
            self._fail_upstream()  # the request body will never be complete
            return False
        return True  # keep writing the response, close after it

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        if self.state != _CLOSED:
            self.state = _CLOSED
            self._unwait()
            up, self.up = self.up, None
            if up is not None:
                up.abort()

    def pause_writing(self) -> None:
        self.write_paused = True
        if self.up is not None:
            self.up.pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.up is not None:
            self.up.resume_reading()

    def pause_for_upstream(self, full: bool) -> None:
        if full:
            self._pause(_R_UPSTREAM)
        else:
            self._resume(_R_UPSTREAM)

    def pause_for_limit(self, full: bool) -> None:
        if full:
            self._pause(_R_LIMIT)
        else:
            self._resume(_R_LIMIT)

    def _pause(self, reason: PauseReason) -> None:
        if not self.paused and self.state != _CLOSED:
            self.transport.pause_reading()
        self.paused |= reason

    def _resume(self, reason: PauseReason) -> None:
        if self.paused & reason:
            self.paused &= ~reason
            if not self.paused and self.state != _CLOSED:
                self.transport.resume_reading()

    def _close(self, *, abort: bool = False) -> None:
        if self.state == _CLOSED:
            return
        self.state = _CLOSED
        self._unwait()
        self._cancel_timer()
        up, self.up = self.up, None
        if up is not None:
            up.abort()
        if abort:
            self.transport.abort()
        else:
            self.transport.close()

    # -- request head ---------------------------------------------------------------------------

    def _head(self, data: bytes) -> None:
        buf = self.hbuf
        start = 0
        if buf:
            buf += data
            hay: bytes | bytearray = buf
            scan = self.scan
        else:
            hay = data
            scan = 0
        n = len(hay)
        while start < n and hay[start] in (13, 10):  # blank lines before a request line
            start += 1
        end = find_head_end(hay, max(start, scan))
        if end < 0:
            if n - start > MAX_HEAD_SIZE:
                self._reject(431)
                return
            if start == n:
                buf.clear()
                return
            if hay is not buf:
                buf += memoryview(data)[start:]
            elif start:
                del buf[:start]
            self.scan = max(0, len(buf) - 3)
            return
        if end - start > MAX_HEAD_SIZE:
            self._reject(431)
            return
        if hay is buf:
            data = bytes(buf)
            buf.clear()
        self.scan = 0
        if self.requests == 0 and data[start:start + 16] == b"PRI * HTTP/2.0\r\n" and not self.handed:
            self._h2c(bytes(data[start:]))  # HTTP/2 with prior knowledge (server/vhost/h2c.py)
            return
        try:
            req = parse_request_head(data[start:end])
            framer = request_body(req)
        except HTTPError as exc:
            log.debug("bad http request from %s: %s", fmt_addr(self.peer), exc)
            self._reject(exc.status, exc.detail)
            return
        self._cancel_timer()
        self._request(req, framer, data, start, end)

    def _h2c(self, data: bytes) -> None:
        from .h2c import H2CConn

        self._cancel_timer()
        self.state = _CLOSED
        H2CConn(self.vhost, self.transport).start(data)

    def _reject(self, status: int, detail: str = "") -> None:
        """Answer a request that cannot be parsed, then close (Go does the same)."""
        if status == 431:
            log.info("http request head from %s over %d bytes, closing", fmt_addr(self.peer), MAX_HEAD_SIZE)
        self.transport.write(error_response(status, detail))
        self._linger()

    def _linger(self) -> None:
        """Half-close, then drain what the client still sends for a moment before closing, so
        that closing with unread data (a reset) cannot destroy the error response in flight."""
        self._cancel_timer()
        up, self.up = self.up, None
        if up is not None:
            up.abort()
        self.state = _LINGER
        self.hbuf.clear()
        self.pending = b""
        t = self.transport
        if not t.can_write_eof():
            self._close()
            return
        t.write_eof()
        self.paused = _NOT_PAUSED
        t.resume_reading()
        self.timer = asyncio.get_running_loop().call_later(LINGER_TIME, self._close_linger)

    def _close_linger(self) -> None:
        self.timer = None
        self.state = _HEAD  # let _close run
        self._close()

    # -- routing --------------------------------------------------------------------------------

    def _request(self, req: Request, framer: BodyFramer, data: bytes, start: int, pos: int) -> None:
        """The request whose head is ``data[start:pos]`` (its body, and what follows, behind it)."""
        vhost = self.vhost
        self.req = req
        self.framer = framer
        self.resp_started = False
        self.retried = False
        tokens = req.connection_tokens() if req.headers else set()
        self.keep_alive = ("close" not in tokens) if req.minor else ("keep-alive" in tokens)
        self.expect_continue = False
        expect = req.get("expect") if req.headers else None
        if expect:  # net/http: 100-continue is said when the body is first read; anything else: 417
            if not _CONTINUE_TOKEN.search(expect):
                self.keep_alive = False
                self._local_raw(EXPECTATION_FAILED if req.minor else EXPECTATION_FAILED_10, data, pos)
                return
            self.expect_continue = bool(req.minor) and not framer.done
        if req.target == "*" and req.method == "OPTIONS":  # net/http answers it itself
            self._local_raw(Page(200), data, pos)
            return
        proxy_form = bool(req.url_host)
        auth = basic_auth(req.get("authorization"))
        user = ""
        pauth = None
        if proxy_form:
            pauth = basic_auth(req.get("proxy-authorization"))
            if pauth is not None:
                user = pauth[0]
        if not user and auth is not None:
            user = auth[0]
        route = vhost.router.find(canonical_host(req.host), req.path, user)
        self.requests += 1
        if route is None:
            def not_found() -> None:
                if req.method == "CONNECT":
                    self.transport.write(raw_not_found(vhost.custom_404))
                    self._close()
                    return
                log.debug("http request for host [%s] path [%s] httpUser [%s]: no route", req.host, req.path, user)
                self._local_raw(vhost.not_found(), data, pos)
            if vhost.elsewhere is not None and not (self.handed and self.requests == 1):
                # the worker with its route takes the connection from this request on (a later
                # request of a keep-alive connection too, once the answers so far are written)
                vhost.elsewhere.try_elsewhere("http", canonical_host(req.host), req.path, user, bytes(data[start:]),
                                              self.transport, not_found)
                return
            not_found()
            return
        if route.needs_auth:
            if proxy_form:
                # newer frp wants Proxy-Authorization (else 407); 0.65 took Authorization: accept both
                if not ((pauth is not None and route.check_auth(*pauth))
                        or (auth is not None and route.check_auth(*auth))):
                    self._local_raw(PROXY_UNAUTHORIZED, data, pos)
                    return
            elif auth is None or not route.check_auth(*auth):
                self._local_raw(UNAUTHORIZED, data, pos)
                return
        member = route.pick()
        if member is None:
            self._local_raw(vhost.not_found(), data, pos)
            return
        self.route = route
        self.member = member
        if req.method == "CONNECT":
            self._connect(member, req, data[pos:] if pos < len(data) else b"")
            return
        upgrade = req.get("upgrade") if "upgrade" in tokens else None
        self.upgrade = upgrade or ""
        self.out_head = request_head_out(req, route, self.client_ip, upgrade, tokens, framer)
        up = member.pool.take()
        if up is None:
            conn = member.control.take_work_conn_nowait()
            if conn is not None:
                up = member.new_upstream(conn, self.peer)
        if up is not None:
            self._attach(up, data, pos)
            return
        self.state = _ACQUIRE
        self.pending = data[pos:] if pos < len(data) else b""
        self._pause(_R_HOLD)
        self._wait_upstream(member)

    def _wait_upstream(self, member: HTTPMember) -> None:
        """No idle upstream and no pooled work connection: take whichever comes first, an
        upstream another request frees (Go's http.Transport hands a returned idle connection to a
        waiting request while its dial goes on) or the work connection asked for now. The loser
        is not wasted: it serves the next waiting request, or waits idle in the pool."""
        self.waiting = member.pool
        member.pool.wait(self)
        self.vhost.spawn(self._acquire(member))

    def _unwait(self) -> None:
        pool, self.waiting = self.waiting, None
        if pool is not None:
            pool.unwait(self)

    def take_upstream(self, up: Upstream) -> bool:
        """Called by the pool this request waits on with a free upstream; False: not waiting any more."""
        if self.state != _ACQUIRE or self.waiting is not up.member.pool:
            return False
        self.waiting = None  # the pool has dropped us from its waiters
        data, self.pending = self.pending, b""
        self._resume(_R_HOLD)
        self._attach(up, data, 0)
        return True

    async def _acquire(self, member: HTTPMember) -> None:
        try:
            conn = await member.control.get_work_conn()
        except (TimeoutError, ConnectionError) as exc:
            log.warning("[%s] failed to get work connection: %s", member.name, exc)
            if self.state == _ACQUIRE and self.waiting is member.pool:
                self._unwait()
                self._upstream_failed(f"no work connection: {exc}", timeout=False)
            return
        if member.closed:
            conn.close()
            if self.state == _ACQUIRE and self.waiting is member.pool:
                self._unwait()
                self._upstream_failed("proxy closed", timeout=False)
            return
        up = member.new_upstream(conn, self.peer)
        if self.state == _ACQUIRE and self.waiting is member.pool:
            self._unwait()
            data, self.pending = self.pending, b""
            self._resume(_R_HOLD)
            self._attach(up, data, 0)
        else:  # served meanwhile by a freed upstream: this one serves the next request
            member.pool.put(up)

    def _attach(self, up: Upstream, data: bytes, pos: int) -> None:
        req = self.req
        assert req is not None
        self.up = up
        up.start(self, req.method)
        framer = self.framer
        if self.expect_continue:  # Go's transport reads the body once the head is written
            self.expect_continue = False
            self.transport.write(CONTINUE)
        if framer.done:
            up.send(self.out_head)
            self._request_sent(data, pos)
            return
        self.state = _BODY
        try:
            end = framer.feed(data, pos)
        except HTTPError as exc:
            self._bad_body(exc)
            return
        if end > pos:
            up.send(self.out_head + data[pos:end])
        else:
            up.send(self.out_head)
        if framer.done:
            self._request_sent(data, end)

    def _body(self, data: bytes, pos: int) -> None:
        framer = self.framer
        try:
            end = framer.feed(data, pos)
        except HTTPError as exc:
            self._bad_body(exc)
            return
        up = self.up
        assert up is not None
        if pos == 0 and end == len(data):
            up.send(data)
        elif end > pos:
            up.send(memoryview(data)[pos:end])
        if framer.done:
            self._request_sent(data, end)

    def _bad_body(self, exc: HTTPError) -> None:
        log.debug("bad request body from %s: %s", fmt_addr(self.peer), exc)
        if not self.resp_started:
            self.transport.write(error_response(400, exc.detail))
        self._close()

    def _request_sent(self, data: bytes, end: int) -> None:
        if end < len(data):
            self.pending += data[end:]
            self._pause(_R_HOLD)
        if self.up is None:  # the response was complete before the request
            self._finish(close=True)
            return
        self.state = _WAIT
        self.up.request_done(self.vhost.response_timeout)

    # -- responses ------------------------------------------------------------------------------

    def on_interim(self, resp: Response, raw: bytes) -> None:
        req = self.req
        self.transport.write(interim_head(resp, req.minor if req is not None else 1))

    def on_response_head(self, up: Upstream, resp: Response, raw: bytes) -> tuple[bytes, BodyCoding]:
        """The head to send to the client and how its body is framed (the upstream writes them)."""
        head, upstream_close, self.resp_close, coding = response_head_out(
            resp, raw, self.route, not self.keep_alive or self.eof, self.req, up.framer)
        if upstream_close:
            up.reusable = False
        self.resp_started = True
        return head, coding

    def on_response_end(self, up: Upstream) -> None:
        self.up = None
        self._resume(_R_UPSTREAM)
        if up.reusable and self.state == _WAIT:
            up.member.pool.put(up)
        else:
            up.close()
        if self.state == _WAIT:
            # the service closing its connection does not end the client's (Go's ReverseProxy)
            self._finish(close=self.resp_close or self.eof)
        elif self.state == _BODY:
            # answered before the request body was complete: the connection cannot be reused
            self._finish(close=True)

    def on_upgrade(self, up: Upstream, resp: Response, raw: bytes, rest: bytes) -> None:
        """101 Switching Protocols: from now on bytes flow unchanged both ways, when the service
        switched to the protocol asked for (else Go's ReverseProxy fails the request: 404 page)."""
        got = upgrade_type(resp)
        if not got.isascii() or not got.isprintable() or got.lower() != self.upgrade.lower():
            up.abort()
            self.up = None
            self._resume(_R_LIMIT)
            self._upstream_failed(f"backend tried to switch protocol {got!r} when {self.upgrade!r} was requested",
                                  timeout=False)
            return
        self.up = None
        self._cancel_timer()
        self.transport.write(upgrade_head_out(resp, self.route))
        if rest:
            self.transport.write(rest)
        held = up.take_out_held()  # request bytes the bandwidth limit had not let out yet
        self._resume(_R_LIMIT)
        self._tunnel(up.member, up.transport, up.encode, up.decode, held + self.pending if held else self.pending)

    def _tunnel(self, member: HTTPMember, work: asyncio.Transport, encode: Codec | None, decode: Codec | None,
                data: bytes,
                wdata: bytes = b"", weof: bool = False) -> None:
        self.state = _CLOSED
        self.pending = b""
        relay = Relay(self.transport, work, a_to_b=encode, b_to_a=decode, a_data=data, a_eof=self.eof,
                      b_data=wdata, b_eof=weof, name=member.name, on_close=member.relay_closed,
                      limiter=member.limiter)
        member.relay_opened(relay)

    def on_upstream_error(self, up: Upstream, why: str, *, timeout: bool) -> None:
        if up is not self.up:
            return
        self.up = None
        if self.state in (_CLOSED, _HEAD):
            return
        if (not timeout and up.reused and not up.got_bytes and not self.retried
                and isinstance(self.framer, NoBody) and self.state == _WAIT):
            # A pooled connection the local service had closed: try once more on a fresh one.
            self.retried = True
            member = self.member
            assert member is not None  # set with the route, for as long as the exchange lasts
            conn = member.control.take_work_conn_nowait()
            self.state = _ACQUIRE
            if conn is not None:
                self._attach(member.new_upstream(conn, self.peer), b"", 0)
            else:
                self._wait_upstream(member)
            return
        self._upstream_failed(why, timeout=timeout)

    def _fail_upstream(self) -> None:
        up, self.up = self.up, None
        if up is not None:
            up.abort()
        self._close()

    def _upstream_failed(self, why: str, *, timeout: bool) -> None:
        req = self.req
        log.warning("do http proxy request [host: %s] error: %s", req.host if req else "", why)
        if self.resp_started:
            self._close()
            return
        done = self.state in (_WAIT, _ACQUIRE) and self.framer.done
        close = not done or not self.keep_alive or self.eof
        self.transport.write(self._render(GATEWAY_TIMEOUT if timeout else self.vhost.not_found(), close))
        self._finish(close=close)

    def _render(self, page: Page, close: bool) -> bytes:
        req = self.req
        return render(page, method=req.method, minor=req.minor, close=close) if req else render(page, close=close)

    def _local_raw(self, page: Page, data: bytes, pos: int) -> None:
        """A response frps writes itself (auth challenge, 404); the request is not forwarded."""
        close = not self.keep_alive or self.eof or not self.framer.done
        self.transport.write(self._render(page, close))
        if not close and pos < len(data):
            self.pending += data[pos:]
        self._finish(close=close)

    def _finish(self, *, close: bool) -> None:
        """The exchange is over: close, or wait for the next request (maybe already read)."""
        self._resume(_R_UPSTREAM)
        self.req = None
        self.route = None
        self.member = None
        self.up = None
        if close or self.eof:
            framer = self.framer
            if not self.eof and framer is not None and not framer.done:
                self._linger()  # the rest of the request body is still coming
            else:
                self._close()
            return
        self.state = _HEAD
        self._arm_head_timer()
        if self.pending:
            data, self.pending = self.pending, b""
            asyncio.get_running_loop().call_soon(self._continue, data)
        else:
            self._resume(_R_HOLD)

    def _continue(self, data: bytes) -> None:
        if self.state == _HEAD:
            self._head(data)
            if self.state == _HEAD:
                self._resume(_R_HOLD)

    # -- CONNECT --------------------------------------------------------------------------------

    def _connect(self, member: HTTPMember, req: Request, rest: bytes) -> None:
        """CONNECT through the vhost port: the request itself goes to the work connection, written
        as Go's ``req.Write`` does (User-Agent ...), then bytes are relayed both ways (Go's
        connectHandler). Bytes the client sent behind the head go along: Go loses those its
        server had read ahead (Hijack's buffer is dropped) - a race we do not reproduce."""
        self.state = _ACQUIRE
        self._pause(_R_HOLD)
        self.vhost.spawn(self._connect_relay(member, connect_head_out(req, self.framer) + rest))

    async def _connect_relay(self, member: HTTPMember, data: bytes) -> None:
        try:
            conn = await member.control.get_work_conn()
        except (TimeoutError, ConnectionError) as exc:
            log.warning("[%s] failed to get work connection: %s", member.name, exc)
            if self.state == _ACQUIRE:
                self.transport.write(raw_not_found(self.vhost.custom_404))
                self._close()
            return
        if self.state != _ACQUIRE:
            conn.close()
            return
        work = member.start_work_conn(conn, self.peer)
        self._tunnel(member, work.transport, work.encode, work.decode, data + self.pending, work.data, work.eof)
