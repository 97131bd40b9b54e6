"""``http_proxy``: an HTTP forward proxy on each work connection (Go's
``pkg/plugin/client/http_proxy.go``), with ``httpUser``/``httpPassword`` (Basic, in
``Proxy-Authorization``, compared in constant time).

As in Go, the first request of a connection decides:

* ``CONNECT host:port``: answered by the plugin itself (Go's ``handleConnectReq``): without valid
  credentials ``407 Not authorized`` and close; a target that cannot be dialed ``400 Bad
  Request``; else ``200 OK`` and the tunnel is joined to the work connection by the callback
  relay (``net/relay.py``), so HTTPS through the proxy costs what a tcp proxy costs.
* anything else: the connection goes to an HTTP/1.1 server (aiohttp's, as Go hands it to its
  ``net/http`` server) whose handler forwards absolute-form requests (``GET http://host/path``)
  with aiohttp's client after removing the proxy headers (Go's ``removeProxyHeaders``), and
  streams the answer back as Go's server writes it (the first 2 KiB held: a Content-Type guessed
  when there is none, a Content-Length when the body ends within them); keep-alive as usual.
  The target gets what Go's ``Request.Write`` sends (tests/compat/test_go_http_proxy_audit.py):
  origin form through ``URL.EscapedPath`` (``#`` is the path's), Host from the URL, no userinfo,
  canonical header names, no ``Trailer``, ``Content-Length: 0`` for POST/PUT/PATCH only;
  ``Expect: 100-continue`` waits 1 s for the target's ``100`` and tells the client ``100
  Continue`` when the body goes. The answer keeps ``Connection``/``Keep-Alive`` (not a
  ``Connection: close``); errors are Go's texts (``EOF``, TLS). ``OPTIONS *`` is answered 200
  before any credentials, a Transfer-Encoding other than ``chunked`` 501, as Go's server does.
  Not copied: Go asks the target for gzip and unpacks it; request trailers are dropped.
  Without valid credentials: ``407 Proxy Authentication Required`` with ``Proxy-Authenticate:
  Basic``, connection kept. A CONNECT on such a connection takes it out of the server (Go's
  hijack) and tunnels it.

Request heads are bounded (:data:`MAX_HEAD`, and 60 s to send one, Go's ``ReadHeaderTimeout``): a
larger one is answered ``431`` and logged, and only that connection closes. aiohttp and the
forwarding client are imported when the first such connection comes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hmac
import logging
import re
import time
from typing import TYPE_CHECKING, Any, cast

from ...config.plugin import HTTPProxyPluginOptions
from ...net.dialerr import dial_error_text
from ...net.relay import PendingConn, Relay
from ...proto.addr import fmt_addr, join_host_port, split_host_port
from ...proto.http import RESPONSE_BUFFER, HTTPError, canonical_header_key, parse_request_head, request_uri
from ...proto.sniff import detect_content_type
from . import register
from .base import ClientPlugin, WorkConn
from .http.goerrors import GO_400, GO_431, GO_501_TE, GO_505, go_status_error
from .stream import HeadTooLarge, PluginStream

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from aiohttp import ClientSession, web

    from ...net.limiter import TokenBucket
    from .http.serve import ServerConn

log = logging.getLogger("aiofrp.client.plugin")

MAX_HEAD = (1 << 20) + 4096  # Go's server: DefaultMaxHeaderBytes (1 MiB) and the 4096 bytes it adds
"""Largest request head (request line and header fields) accepted, and longest line for aiohttp."""
READ_HEADER_TIMEOUT = 60.0  # Go: http.Server{ReadHeaderTimeout: 60 * time.Second}
DIAL_TIMEOUT = 10.0
WRONG_CREDENTIALS_DELAY = 0.2  # Go sleeps 200 ms after a wrong user or password

# Go's answers, byte for byte (http.Response.Write of getBadResponse() and of the 400 response)
CONNECT_407 = (b"HTTP/1.1 407 Not authorized\r\nConnection: close\r\nProxy-Authenticate: Basic\r\n"
               b"Content-Length: 0\r\n\r\n")
CONNECT_400 = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"
CONNECT_200 = b"HTTP/1.1 200 OK\r\n\r\n"
# Go's statusError texts for a head it cannot read, answered "400 Bad Request: TEXT"
_STATUS_ERRORS = ("missing required Host header", "too many Host headers", "malformed Host header", "invalid header name")
USER_AGENT = "Go-http-client/1.1"  # what Go's http.DefaultTransport sends when the client sent none

# Go's removeProxyHeaders, plus Host (the request goes to the host of its absolute URL), Trailer
# (Go's Request.Write leaves it out: it writes one only for trailers it sends, which aiohttp's
# server does not hand on) and the framing aiohttp's client writes itself
_REMOVED = frozenset(name.lower() for name in (
    "Proxy-Connection", "Connection", "Proxy-Authenticate", "Proxy-Authorization", "TE", "Trailers",
    "Transfer-Encoding", "Upgrade", "Host", "Trailer", "User-Agent", "Content-Length"))
# fields of the answer that aiohttp's server writes itself (Go's copyHeaders copies all others,
# Connection, Keep-Alive and Proxy-Connection included)
_FRAMING = frozenset(("transfer-encoding", "content-length"))
MAX_RESPONSE_LINE = 10 << 20  # Go's Transport: MaxResponseHeaderBytes 10 MiB (aiohttp's client: 8190 a line)
EXPECT_CONTINUE_TIMEOUT = 1.0  # Go's DefaultTransport: ExpectContinueTimeout
CONTINUE_100 = b"HTTP/1.1 100 Continue\r\n\r\n"


class _NoTraceback(logging.Filter):
    """aiohttp's server logs a client's bad request with its traceback; keep one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info:
            exc = record.exc_info[1]
            record.msg = " ".join(f"{record.getMessage()}: {exc}".split())
            record.args = None
            record.exc_info = None
            if record.levelno > logging.WARNING:  # a client's bad request is no frpc error
                record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


_server_log = logging.getLogger("aiofrp.client.plugin.http_proxy")
_server_log.addFilter(_NoTraceback())


class _Prefixed(logging.LoggerAdapter):
    """aiohttp's server log lines, prefixed with the proxy name as frpc's own lines are."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return f"[{self.extra['proxy'] if self.extra else ''}] http_proxy: {msg}", kwargs


@register("http_proxy")
class HTTPProxyPlugin(ClientPlugin[HTTPProxyPluginOptions]):
    def __init__(self, proxy_name: str, cfg: HTTPProxyPluginOptions) -> None:
        super().__init__(proxy_name, cfg)
        self._auth = bool(cfg.http_user or cfg.http_password)
        self._user = cfg.http_user.encode()
        self._password = cfg.http_password.encode()
        self._server: web.Server | None = None
        self._server_kwargs: dict[str, Any] = {}
        self._session: ClientSession | None = None
        self._closed = False
        self._limiter: TokenBucket | None = None

    # -- credentials ---------------------------------------------------------------------------

    def _check(self, header: str | None) -> tuple[bool, bool]:
        """(authorized, credentials were sent but wrong): Go's ``HTTPProxy.Auth``."""
        if not self._auth:
            return True, False
        _scheme, sep, b64 = (header or "").partition(" ")  # Go checks no scheme name either
        if not sep:
            return False, False
        try:
            raw = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            return False, False
        user, colon, password = raw.partition(b":")
        if not colon:
            return False, False
        ok = hmac.compare_digest(user, self._user) & hmac.compare_digest(password, self._password)
        return ok, not ok

    # -- one work connection -------------------------------------------------------------------

    async def handle(self, conn: WorkConn) -> None:
        self._limiter = conn.limiter  # the proxy's: the same for all its work connections
        stream = PluginStream(conn, limit=MAX_HEAD + 4096)
        who = fmt_addr(conn.src_addr) if conn.src_addr else "user"
        try:
            async with asyncio.timeout(READ_HEADER_TIMEOUT):
                head = await stream.read_head(MAX_HEAD)
        except HeadTooLarge as exc:
            log.warning("[%s] http_proxy: %s from %s, connection closed", self.proxy_name, exc, who)
            stream.write(GO_431)
            stream.close()
            return
        except TimeoutError:
            log.warning("[%s] http_proxy: no complete request header from %s within %ds", self.proxy_name, who,
                        READ_HEADER_TIMEOUT)
            stream.close()
            return
        except EOFError:
            stream.close()
            return
        try:
            req = parse_request_head(head)
        except HTTPError as exc:
            log.warning("[%s] http_proxy: bad request from %s: %s", self.proxy_name, who, exc)
            if head[:7].upper() != b"CONNECT":  # Go: a CONNECT it cannot read is closed, no answer
                stream.write(_head_error(exc))
            stream.close()
            return
        if _bad_transfer_encoding(req.minor, req.get_all("transfer-encoding")):
            log.warning("[%s] http_proxy: bad request from %s: unsupported transfer encoding", self.proxy_name, who)
            stream.write(GO_501_TE)
            stream.close()
            return
        if req.method.upper() == "CONNECT":
            stream.consume(len(head))
            await self._connect(stream, req.target, req.get("proxy-authorization"), who)
            return
        if self._closed:
            stream.close()
            return
        stream.hand_to(self._http_conn())  # the head stays buffered: aiohttp reads it again

    async def _connect(self, stream: PluginStream, target: str, auth: str | None, who: str) -> None:
        ok, wrong = self._check(auth)
        if not ok:
            if wrong:
                await asyncio.sleep(WRONG_CREDENTIALS_DELAY)
            log.info("[%s] http_proxy: CONNECT %s from %s refused: proxy authentication required",
                     self.proxy_name, target, who)
            stream.write(CONNECT_407)
            stream.close()
            return
        dialed = await self._dial(target, who)
        if dialed is None:
            stream.write(CONNECT_400)
            stream.close()
            return
        remote, rp = dialed
        stream.write(CONNECT_200)
        stream.join(remote, rp.take(), rp.eof)

    async def _dial(self, target: str, who: str) -> tuple[asyncio.Transport, PendingConn] | None:
        """A CONNECT's target (``host:port``), within :data:`DIAL_TIMEOUT`; None, logged, if it
        cannot be reached."""
        try:
            host, port = split_host_port(target)
            async with asyncio.timeout(DIAL_TIMEOUT):
                return await asyncio.get_running_loop().create_connection(PendingConn, host, port)
        except (OSError, TimeoutError, ValueError) as exc:
            log.info("[%s] http_proxy: CONNECT %s from %s: dial error: %s", self.proxy_name, target, who,
                     exc or "timeout")
            return None

    # -- plain (absolute-form) requests --------------------------------------------------------

    def _http_server(self) -> web.Server:
        if self._server is None:
            from aiohttp import web

            self._server_kwargs = {
                "logger": cast(logging.Logger, _Prefixed(_server_log, {"proxy": self.proxy_name})),
                "access_log": None, "tcp_keepalive": False, "max_line_size": MAX_HEAD, "max_field_size": MAX_HEAD,
            }
            self._server = web.Server(self._serve_http, **self._server_kwargs)
        return self._server

    def _http_conn(self) -> asyncio.Protocol:
        """aiohttp's connection protocol, answering unreadable requests as Go's server does."""
        server = self._http_server()
        return _proxy_conn_class()(server, loop=asyncio.get_running_loop(), **self._server_kwargs)

    def _client(self) -> ClientSession:
        if self._session is None:
            import aiohttp

            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=DIAL_TIMEOUT),
                cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False, trust_env=False,
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
                max_line_size=MAX_RESPONSE_LINE, max_field_size=MAX_RESPONSE_LINE,
                request_class=_request_class(),
            )
        return self._session

    async def _serve_http(self, request: web.BaseRequest) -> web.StreamResponse:
        from .http.responses import RawResponse, Response

        if request.method == "OPTIONS" and request.raw_path == "*":  # Go's globalOptionsHandler: before any handler
            return Response(status=200, headers={"Content-Length": "0"})
        if _bad_transfer_encoding(request.version.minor, request.headers.getall("Transfer-Encoding", [])):
            return RawResponse(GO_501_TE)
        ok, wrong = self._check(request.headers.get("Proxy-Authorization"))
        if not ok:
            if wrong:
                await asyncio.sleep(WRONG_CREDENTIALS_DELAY)
            return Response(status=407, headers={"Proxy-Authenticate": "Basic"})
        if request.method == "CONNECT":
            return await self._hijack(request)
        return await self._forward(request)

    async def _hijack(self, request: web.BaseRequest) -> web.StreamResponse:
        """A CONNECT after other requests on one connection (Go's ``ConnectHandler``): the
        connection leaves the HTTP server, then the target is dialed: ``200 OK`` and the tunnel,
        or, if the dial fails, a close with no answer (Go writes its ``400 Failed`` to the
        hijacked connection, where it goes nowhere). Bytes the client sent after the CONNECT head
        go to the target (Go drops them with the server's read buffer)."""
        from .http.responses import RawResponse

        proto = request.protocol
        transport = request.transport
        nothing = RawResponse(b"")  # what aiohttp "writes" once the connection is gone: nothing
        if transport is None or transport.is_closing():
            return nothing
        held = PendingConn()
        transport.set_protocol(held)
        held.connection_made(transport)
        tail = bytes(getattr(proto, "_message_tail", b""))  # aiohttp keeps an upgraded connection's bytes there
        proto.transport = None  # aiohttp neither writes to nor closes it from now on
        proto.connection_lost(None)  # and forgets it (its server's connection list)
        dialed = await self._dial(request.raw_path, request.remote or "user")
        if dialed is None:
            transport.close()
            return nothing
        remote, rp = dialed
        if held.lost or transport.is_closing():
            remote.close()
            return nothing
        transport.write(CONNECT_200)
        Relay(remote, transport, a_data=rp.take(), a_eof=rp.eof, b_data=tail + held.take(), b_eof=held.eof,
              name=self.proxy_name, limiter=self._limiter)
        return nothing

    async def _forward(self, request: web.BaseRequest) -> web.StreamResponse:
        import aiohttp
        from multidict import CIMultiDict
        from yarl import URL

        from .http.responses import BufferedStreamResponse, body_allowed, go_sniffs

        target = request.raw_path
        scheme, sep, rest = target.partition("://")
        scheme = scheme.lower() if sep else ""  # Go lower-cases it
        if scheme not in ("http", "https"):
            return _go_error(f'unsupported protocol scheme "{scheme}"')
        # Go's url.ParseRequestURI: the query is cut first, no fragment (a "#" is the path's or the
        # query's); the authority up to the first "/", its userinfo dropped (Go's Transport sends
        # no Authorization for it: that is http.Client's doing). Host: the authority as written.
        cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
        authority, origin = rest[:cut].rpartition("@")[2], rest[cut:]
        if not authority:
            return _go_error("http: no Host in request URL")
        origin = request_uri(origin if origin.startswith("/") else "/" + origin, clean=False)
        try:
            url = URL(f"{scheme}://{authority}{origin.partition('?')[0]}", encoded=True)
            if "?" in origin:
                url = URL.build(scheme=url.scheme, authority=url.raw_authority, path=url.raw_path,
                                query_string=origin.partition("?")[2], encoded=True)
        except ValueError as exc:
            return _go_error(str(exc))
        # what Go's Request.Write sends: Host, User-Agent, the framing (aiohttp's), then the other
        # fields sorted, their names canonical (textproto.CanonicalMIMEHeaderKey)
        fields = sorted((canonical_header_key(k), v) for k, v in request.headers.items()
                        if k.lower() not in _REMOVED)
        headers = CIMultiDict((("Host", authority),))
        agent = request.headers.get("User-Agent", USER_AGENT)
        if agent:  # an empty one: none (Go)
            headers["User-Agent"] = agent
        sent_length = request.headers.get("Content-Length", "")
        if sent_length.isdigit() and int(sent_length) > 0 and "Transfer-Encoding" not in request.headers:
            headers["Content-Length"] = sent_length  # 0: none (aiohttp writes it for POST, PUT, PATCH, as Go)
        headers.extend(fields)
        if not request.keep_alive:  # Go's transport: req.Close (HTTP/1.0, "Connection: close")
            headers["Connection"] = "close"
        data: Any = request.content if request.body_exists else None
        bucket = self._limiter
        if data is not None and bucket is not None:
            data = _metered_body(request, bucket)
        if data is not None and request.version >= (1, 1) and request.headers.get("Expect", "").lower() == "100-continue":
            data = _continued(request, data)  # Go's server: "100 Continue" when the body is first read
        try:
            async with self._client().request(request.method, url, headers=headers, data=data,
                                              allow_redirects=False) as up:
                resp = BufferedStreamResponse(status=up.status, reason=up.reason)
                for name, value in up.headers.items():
                    lname = name.lower()
                    if lname in _FRAMING:
                        continue
                    if lname == "connection" and "close" in (t.strip().lower() for t in value.split(",")):
                        continue  # Go's transport deletes a "Connection: close" of the answer
                    resp.headers.add(name, value)
                # Go's handler copies the body into its server's 2 KiB write buffer: the head waits
                # for more than that or for the end, gets a Content-Type guessed from those bytes
                # when it has none (and no Content-Encoding), and a Content-Length when the whole
                # body came (a chunked or close-delimited one included)
                held = b""
                ended = False
                while len(held) < RESPONSE_BUFFER:
                    chunk = await up.content.readany()
                    if not chunk:
                        ended = True
                        break
                    held += chunk
                if held and go_sniffs(resp.headers, up.status, request.method, reverse_proxy=False):
                    resp.headers["Content-Type"] = detect_content_type(held)
                length = up.headers.get("Content-Length")
                if length is not None and "Transfer-Encoding" not in up.headers and length.isdigit():
                    resp.content_length = int(length)
                elif ended and body_allowed(up.status, request.method):
                    resp.content_length = len(held)
                await resp.prepare(request)
                chunk = held
                while chunk:
                    if bucket is None:
                        await resp.write(chunk)
                    else:
                        async for piece in _metered(chunk, bucket):
                            await resp.write(piece)
                    chunk = b"" if ended else await up.content.readany()
                await resp.write_eof()
                return resp
        except aiohttp.ClientConnectorCertificateError as exc:
            return _go_error(_tls_error_text(exc.certificate_error))
        except aiohttp.ClientConnectorError as exc:  # a name that does not resolve too (net/dialerr.py)
            if url.scheme == "https" and isinstance(exc.os_error, (ConnectionResetError, _ssl_error())):
                return _go_error(_tls_handshake_text(exc.os_error))
            return _go_error(dial_error_text(_dialed(url.host or "", url.port or 0, exc.os_error), exc.os_error))
        except aiohttp.ServerDisconnectedError:  # closed before (all of) an answer head
            return _go_error("EOF")
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return _go_error(str(exc) or type(exc).__name__)

    # -- the end -------------------------------------------------------------------------------

    def close(self) -> None:
        self._closed = True
        server, self._server = self._server, None
        session, self._session = self._session, None
        if server is None and session is None:
            return
        try:
            asyncio.get_running_loop().create_task(_aclose(server, session))
        except RuntimeError:  # no loop any more: nothing is open on it either
            pass


async def _metered(chunk: bytes, bucket: TokenBucket) -> AsyncIterator[bytes | memoryview]:
    """``chunk`` in the pieces the proxy's bandwidth bucket grants, waiting in between (the relay
    meters CONNECT tunnels; forwarded requests and answers are metered here)."""
    view = memoryview(chunk)
    while view:
        granted = bucket.take(len(view), time.monotonic())
        if granted:
            yield view[:granted]
            view = view[granted:]
        if view:
            await asyncio.sleep(bucket.wait_time(len(view), time.monotonic()))


async def _continued(request: web.BaseRequest, body: Any) -> AsyncIterator[bytes]:
    """The request body, the client told "100 Continue" first (when the target asked for it or
    after Go's 1 s ExpectContinueTimeout: when aiohttp's client starts sending it)."""
    if request.writer is not None:
        await request.writer.write(CONTINUE_100)
    if isinstance(body, (bytes, bytearray)):
        yield bytes(body)
        return
    stream = body.iter_any() if hasattr(body, "iter_any") else body
    async for chunk in stream:
        yield bytes(chunk)


_CONNECT_FAILED = re.compile(r"Connect call failed \('([^']*)', (\d+)")


def _dialed(host: str, port: int, exc: BaseException) -> str:
    """The address Go names in a dial error: the one it connected to (``localhost`` resolved:
    ``127.0.0.1:80``), which asyncio's text carries."""
    m = _CONNECT_FAILED.search(str(exc))
    return join_host_port(m[1], int(m[2])) if m else join_host_port(host, port)


def _ssl_error() -> type[BaseException]:
    import ssl

    return ssl.SSLError


def _tls_handshake_text(exc: BaseException) -> str:
    """Go's text for a TLS handshake with the target that failed (not for its certificate)."""
    reason = str(getattr(exc, "reason", "") or "")
    if isinstance(exc, ConnectionResetError) or "EOF" in reason or "UNEXPECTED_EOF" in str(exc):
        return "EOF"  # the target closed during the handshake (asyncio: "Connection lost")
    if reason in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "HTTP_REQUEST", "PACKET_LENGTH_TOO_LONG"):
        return "tls: first record does not look like a TLS handshake"  # a target that is no TLS server
    return f"remote error: tls: {reason.lower().replace('_', ' ')}" if reason else str(exc)


def _tls_error_text(exc: BaseException) -> str:
    """Go's crypto/tls text for a target certificate it does not accept (the common cases)."""
    text = str(exc)
    if "self-signed" in text or "self signed" in text or "unable to get local issuer" in text:
        return "tls: failed to verify certificate: x509: certificate signed by unknown authority"
    if "expired" in text:
        return "tls: failed to verify certificate: x509: certificate has expired or is not yet valid"
    if "Hostname mismatch" in text or "IP address mismatch" in text:
        return f"tls: failed to verify certificate: x509: {text}"
    return f"tls: failed to verify certificate: {text}"


def _bad_transfer_encoding(minor: int, values: list[str]) -> bool:
    """Go's server refuses (501) a Transfer-Encoding other than one ``chunked`` field (HTTP/1.1)."""
    return bool(values) and minor >= 1 and (len(values) != 1 or values[0].strip().lower() != "chunked")


@functools.cache
def _request_class() -> type[Any]:
    """aiohttp's client request, sending the body of an ``Expect: 100-continue`` request after
    Go's ``ExpectContinueTimeout`` (1 s) when the target sends no ``100 Continue`` (aiohttp: never)."""
    from aiohttp import ClientRequest

    class ExpectRequest(ClientRequest):
        def update_body_from_data(self, body: Any, _stacklevel: int = 3) -> None:
            super().update_body_from_data(body, _stacklevel + 1)
            # Go's transferWriter: an empty body has "Content-Length: 0" for POST, PUT and PATCH
            # only (aiohttp: for all but GET, HEAD, OPTIONS and TRACE)
            if body is None and self.method not in ("POST", "PUT", "PATCH") and self.headers.get("Content-Length") == "0":
                del self.headers["Content-Length"]

        def update_expect_continue(self, expect: bool = False) -> None:
            super().update_expect_continue(expect)
            waiter = self._continue
            if waiter is not None:
                self.loop.call_later(EXPECT_CONTINUE_TIMEOUT,
                                     lambda: None if waiter.done() else waiter.set_result(True))

    return ExpectRequest


async def _metered_body(request: web.BaseRequest, bucket: TokenBucket) -> AsyncIterator[bytes]:
    async for chunk in request.content.iter_any():
        async for piece in _metered(chunk, bucket):
            yield bytes(piece)


@functools.cache
def _proxy_conn_class() -> type[ServerConn]:
    """The plugin's aiohttp connection protocol (made on first use: aiohttp is imported then)."""
    from .http.serve import ServerConn

    class ProxyConn(ServerConn):
        too_large = GO_400  # a line past MAX_HEAD on a later request (aiohttp's limit is per line)
        log_refused = True  # a warning line, as aiohttp's own

    return ProxyConn


def _head_error(exc: HTTPError) -> bytes:
    """Go's server answer to a request head it cannot read."""
    if exc.status == 505:
        return GO_505
    text = str(exc)
    for known in _STATUS_ERRORS:
        if known in text:
            return go_status_error(400, "Bad Request", known)
    return GO_400


def _go_error(text: str) -> web.Response:
    """Go's ``http.Error(rw, text, 500)``."""
    from .http.responses import Response

    return Response(status=500, text=text + "\n", charset="utf-8", content_type="text/plain",
                        headers={"X-Content-Type-Options": "nosniff"})


async def _aclose(server: web.Server | None, session: ClientSession | None) -> None:
    if server is not None:
        await server.shutdown(1.0)
    if session is not None:
        await session.close()
