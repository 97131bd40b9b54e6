"""One work connection served as one HTTP server connection (Go: ``http.Server.Serve`` on the
plugin's ``Listener``, fed by ``Handle`` with each work connection).

aiohttp's server protocol (:class:`aiohttp.web_protocol.RequestHandler`) is attached straight to
the work connection's transport: no loopback socket, no extra copy. When the proxy encrypts or
compresses (``transport.useEncryption`` / ``useCompression``) or limits bandwidth, the work
connection is relayed (``WorkConn.relay``: codecs and limiter) into one end of a socketpair and
the server runs on the other end. The ``https2*`` plugins put :class:`~aiofrp.net.tls.TLSTransport`
in between and, when the browser picks ``h2`` by ALPN, run :mod:`.h2` instead of aiohttp.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import sys
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from ....net.relay import PendingConn
from ....net.tls import TLSTransport
from ..base import WorkConn
from .goerrors import GO_400, GO_431
from .responses import RawResponse, Response, bad_target, go_parse_error

log = logging.getLogger("aiofrp.client.plugins.http")

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]
H2Factory = Callable[[str | None, str | None], asyncio.Protocol]  # (peer IP, TLS server name)

TLS_HANDSHAKE_TIMEOUT = 10.0


class _NoTracebacks(logging.LoggerAdapter[logging.Logger]):
    """aiohttp's connection logger: its ``exception()`` calls (an error aiohttp caught itself)
    become one warning line with the error, never a traceback in frpc's log."""

    def exception(self, msg: object, *args: object, exc_info: object = True, **kwargs: Any) -> None:
        err = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        self.logger.warning("%s: %s", str(msg) % args if args else msg, err)


_aiohttp_log = _NoTracebacks(log, {})


class ServerConn(RequestHandler):
    """aiohttp's connection protocol, plus what frps told about the user (Go: ``SetRemoteAddr``)."""

    __slots__ = ("peer", "sni")

    peer: str | None
    sni: str | None
    too_large: ClassVar[bytes] = GO_431  # the answer to a head line past aiohttp's limit (Go's MaxHeaderBytes)
    log_refused: ClassVar[bool] = False  # a refused head: a warning line (else debug)

    def handle_error(self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        """A request aiohttp's parser refused: Go's server answer (``400 Bad Request``, ``400 Bad
        Request: missing required Host header``, ``505``, ``501``, ``431``), never aiohttp's page
        (which echoes the request line and names aiohttp's version)."""
        if status == 400 and request.writer.output_size == 0:
            if self.log_refused:
                self.log_exception("Error handling request from %s", request.remote, exc_info=exc)
            else:
                self.log_debug("bad request: %s", exc)
            return RawResponse(go_parse_error(exc, self.too_large))
        return super().handle_error(request, status, exc, message)


class HTTPServer:
    """Serves a plugin's work connections with ``handler`` (one ``http.Server`` per plugin in Go).

    ``tls``: serve HTTPS with this context (its ALPN list decides whether ``h2`` is offered);
    ``h2``: makes the HTTP/2 protocol of a connection that chose ``h2``.
    ``read_header_timeout``: Go's ``ReadHeaderTimeout`` (0: none); aiohttp's keep-alive timeout
    plays that part for idle connections.
    """

    def __init__(self, name: str, handler: Handler, *, tls: ssl.SSLContext | None = None,
                 h2: H2Factory | None = None, read_header_timeout: float = 60.0) -> None:
        self.name = name
        self.handler = handler
        self.tls = tls
        self.h2 = h2
        self.scheme = "https" if tls is not None else "http"
        self._loop = asyncio.get_running_loop()
        self._server = web.Server(self._handle, request_factory=self._make_request, loop=self._loop)
        self._kwargs: dict[str, Any] = {
            "logger": _aiohttp_log, "access_log": None, "keepalive_timeout": read_header_timeout or 3600.0,
            "max_field_size": 1 << 20, "max_line_size": 1 << 20,  # Go: MaxHeaderBytes 1 MiB
        }
        self._others: set[asyncio.BaseTransport] = set()  # h2 connections (aiohttp tracks its own)
        self.closed = False

    # -- connections ------------------------------------------------------------------------

    async def serve(self, wc: WorkConn) -> None:
        """Take over ``wc`` and serve HTTP on it; returns once attached (Go's ``PutConn``)."""
        if self.closed:
            wc.close()
            return
        try:
            transport, data, eof = await self._plain(wc)
        except OSError as exc:
            log.warning("[%s] cannot serve a work connection: %s", self.name, exc)
            return
        peer = wc.src_addr[0] if wc.src_addr is not None else _peer_host(transport)
        if self.tls is None:
            self._attach(transport, self._new_conn(peer, None), data, eof)
            return
        chooser = _ALPNChooser(self, peer)
        tls = TLSTransport(transport, self.tls, chooser, server_side=True, initial_data=data,
                           handshake_timeout=TLS_HANDSHAKE_TIMEOUT)
        tls.handshake.add_done_callback(lambda f: self._handshake_done(f, peer))
        transport.resume_reading()

    def _handshake_done(self, fut: asyncio.Future[None], peer: str | None) -> None:
        exc = None if fut.cancelled() else fut.exception()
        if exc is not None:  # Go's http.Server logs the same line (on stderr)
            log.info("[%s] http: TLS handshake error from %s: %s", self.name, peer or "?", exc)

    async def _plain(self, wc: WorkConn) -> tuple[asyncio.Transport, bytes, bool]:
        """The work connection as a transport of plain HTTP bytes (see the module docstring)."""
        if wc.encode is None and wc.decode is None and wc.limiter is None:
            return wc.conn.detach()
        ours, theirs = socket.socketpair()
        try:
            local, lp = await self._loop.connect_accepted_socket(PendingConn, theirs)
            server, sp = await self._loop.connect_accepted_socket(PendingConn, ours)
        except OSError:
            ours.close()
            theirs.close()
            wc.close()
            raise
        wc.relay(local, lp.take(), lp.eof)
        return server, sp.take(), sp.eof

    def _new_conn(self, peer: str | None, sni: str | None) -> ServerConn:
        conn = ServerConn(self._server, loop=self._loop, **self._kwargs)
        conn.peer = peer
        conn.sni = sni
        return conn

    def _attach(self, transport: asyncio.Transport, proto: asyncio.Protocol, data: bytes, eof: bool) -> None:
        transport.set_protocol(proto)
        proto.connection_made(transport)
        if data:
            proto.data_received(data)
        if eof and not proto.eof_received():
            transport.close()
            return
        transport.resume_reading()

    def track(self, transport: asyncio.BaseTransport) -> None:
        """An HTTP/2 connection, to close with the server (closed ones are dropped as we go)."""
        if len(self._others) >= 64:
            self._others = {t for t in self._others if not t.is_closing()}
        self._others.add(transport)

    def _make_request(self, message: Any, payload: Any, protocol: RequestHandler, writer: Any,
                      task: asyncio.Task[None]) -> web.BaseRequest:
        peer = getattr(protocol, "peer", None)
        return web.BaseRequest(message, payload, protocol, writer, task, self._loop,
                               client_max_size=1 << 62, scheme=self.scheme, remote=peer)

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        """The handler, with every failure ending here: a log line (never aiohttp's traceback) and,
        once a response has started, the connection cut (a second head would corrupt it)."""
        if bad_target(request.raw_path):  # Go's server refuses it before any handler
            return RawResponse(GO_400)
        try:
            return await self.handler(request)
        except (web.HTTPException, asyncio.CancelledError):
            raise
        except (ConnectionError, TimeoutError) as exc:  # the browser or the upstream went away
            log.debug("[%s] %s %s: %s", self.name, request.method, request.path_qs, exc)
            _cut(request)
            return Response(status=502)
        except Exception as exc:  # noqa: BLE001 - one bad request fails alone, with a log line
            log.warning("[%s] %s %s: %s", self.name, request.method, request.path_qs, exc)
            if getattr(request.writer, "output_size", 0):
                _cut(request)
            return Response(status=500, text="500 Internal Server Error\n")

    def close(self) -> None:
        """The proxy stopped: close every connection (Go's ``http.Server.Close``)."""
        self.closed = True
        self._server.pre_shutdown()
        for conn in list(self._server.connections):
            conn.force_close()
        for t in list(self._others):
            t.close()
        self._others.clear()


class _ALPNChooser(asyncio.Protocol):
    """Stands in until the TLS handshake is done, then installs HTTP/1.1 or HTTP/2 (by ALPN)."""

    def __init__(self, server: HTTPServer, peer: str | None) -> None:
        self.server = server
        self.peer = peer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sslobj = transport.get_extra_info("ssl_object")
        sni = getattr(sslobj, "sni", None)
        alpn = sslobj.selected_alpn_protocol() if sslobj is not None else None
        t: asyncio.Transport = transport  # type: ignore[assignment]
        proto: asyncio.Protocol
        if alpn == "h2" and self.server.h2 is not None:
            proto = self.server.h2(self.peer, sni)
            self.server.track(t)
        else:
            proto = self.server._new_conn(self.peer, sni)
        t.set_protocol(proto)
        proto.connection_made(t)

    def connection_lost(self, exc: Exception | None) -> None:
        pass


def _cut(request: web.BaseRequest) -> None:
    if request.transport is not None:
        request.transport.abort()


def _peer_host(transport: asyncio.BaseTransport) -> str | None:
    peer = transport.get_extra_info("peername")
    if isinstance(peer, tuple | list) and peer:
        return str(peer[0])
    return None


def server_tls_context(crt_path: str, key_path: str, *, http2: bool) -> ssl.SSLContext:
    """Go's ``transport.NewServerTLSConfig(crtPath, keyPath, "")``: a self-signed certificate
    when either path is empty; ALPN offers ``h2`` only with ``enableHTTP2`` (Go's default
    ``TLSNextProto``, emptied when it is false)."""
    from ....net.tls import server_context

    ctx = server_context(crt_path, key_path) if crt_path and key_path else server_context()
    ctx.set_alpn_protocols(["h2", "http/1.1"] if http2 else ["http/1.1"])
    ctx.num_tickets = 1  # TLS 1.3 session tickets per handshake: Go's server sends one, OpenSSL two
    ctx.sni_callback = _remember_sni
    return ctx


def _remember_sni(sslobj: Any, name: str | None, ctx: ssl.SSLContext) -> None:
    sslobj.sni = name

