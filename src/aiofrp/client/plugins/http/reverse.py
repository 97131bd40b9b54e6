"""The reverse proxy behind ``http2http``, ``http2https``, ``https2http`` and ``https2https`` (Go's
``httputil.ReverseProxy`` with the plugins' ``Rewrite`` functions); requests go out through the
keep-alive pool of :mod:`.upstream`.

Per request: hop-by-hop headers go (and those ``Connection`` names), ``X-Forwarded-*`` as the
plugin does it in Go, the Host kept unless ``hostHeaderRewrite``, ``requestHeaders.set`` applied;
the request body and the response stream through without buffering. The answer is written as
Go's server writes it: Go's reason phrases, header names as Go reads them (``Etag``), 1xx
answers passed on, ``OPTIONS *`` and an ``Expect`` other than ``100-continue`` (417) answered
here. A body that breaks off mid-way: what was written goes out, then the connection closes
(Go's ErrAbortHandler); one of known length within its first 2 KiB (4 KiB over HTTP/2) leaves
the client nothing but the close, as Go's server holds that much before the head. An upgrade (WebSocket ...)
is sent on a connection of its own; after ``101 Switching Protocols`` the browser's connection
and that one are joined by :class:`~aiofrp.net.relay.Relay`, bytes as they come.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import ssl
from collections.abc import AsyncIterable, Callable, Iterable
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from ....net.relay import Relay
from ....proto import http as ph
from ....proto.http import RESPONSE_BUFFER, canonical_header_key, canonical_host, go_status_text, request_uri
from ....proto.sniff import SNIFF_LEN, detect_content_type
from .responses import BufferedStreamResponse, Response, StreamResponse, go_sniffs
from .static import origin_target
from .upstream import Pool, UpstreamError, UpstreamResponse

log = logging.getLogger("aiofrp.client.plugins.http")

# Go's httputil hopHeaders
HOP_HEADERS = frozenset({
    "connection", "proxy-connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
    "te", "trailer", "transfer-encoding", "upgrade",
})
CONNECT_TIMEOUT = 30.0  # Go's DefaultTransport dialer
UPGRADE_HEAD_LIMIT = 1 << 20
UPGRADE_BODY_LIMIT = 1 << 20
HOLD_LEN = RESPONSE_BUFFER + 1  # Go's server sends the head once more than 2 KiB of body came (or the end)


class Forwarded(enum.Enum):
    """What becomes of ``X-Forwarded-For/-Host/-Proto`` (each plugin's ``Rewrite`` in Go)."""

    DROP = "drop"  # http2http: ReverseProxy strips them and the plugin sets none
    KEEP = "keep"  # http2https: the browser's own values, copied unchanged
    APPEND = "append"  # https2*: the client IP appended, Host and "https" set (SetXForwarded)


@dataclass
class ProxyOptions:
    local_addr: str
    upstream_tls: bool
    forwarded: Forwarded
    host_header_rewrite: str = ""
    set_headers: dict[str, str] = field(default_factory=dict)
    check_sni: bool = False  # https2*: 421 when the Host is not the TLS server name


def strip_hop_items(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The headers less the hop-by-hop ones and those named by ``Connection`` (Go's removeHopByHopHeaders)."""
    items = list(headers)
    lows = [k.lower() for k, _ in items]
    named = _connection_tokens(items, lows) if "connection" in lows else _NONE
    out: list[tuple[str, str]] = []
    for lk, kv in zip(lows, items, strict=True):
        if lk in HOP_HEADERS or lk in named:
            if lk == "te" and kv[1].strip().lower() == "trailers":
                out.append(kv)
            continue
        out.append(kv)
    return out


def response_items(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """An upstream response's headers as Go's ReverseProxy passes them on: hop-by-hop ones and
    those named by ``Connection`` removed (``TE`` too: no exception in a response), the names as
    Go's ``textproto`` reads them (``ETag`` -> ``Etag``)."""
    items = list(headers)
    lows = [k.lower() for k, _ in items]
    named = _connection_tokens(items, lows) if "connection" in lows else _NONE
    return [(canonical_header_key(k), v) for lk, (k, v) in zip(lows, items, strict=True)
            if lk not in HOP_HEADERS and lk not in named]


def strip_hop(headers: Iterable[tuple[str, str]]) -> CIMultiDict[str]:
    """:func:`strip_hop_items` as a multidict."""
    return CIMultiDict(strip_hop_items(headers))


_NONE: frozenset[str] = frozenset()
_FORWARDED = ("x-forwarded-for", "x-forwarded-host", "x-forwarded-proto")


def _connection_tokens(items: list[tuple[str, str]], lows: list[str]) -> set[str]:
    return {t.strip().lower() for lk, (_, v) in zip(lows, items, strict=True) if lk == "connection"
            for t in v.split(",") if t.strip()}


def upgrade_type(headers: CIMultiDict[str] | Iterable[tuple[str, str]]) -> str:
    """The ``Upgrade`` protocol when ``Connection`` contains ``upgrade`` (Go's upgradeType)."""
    items = list(headers.items()) if isinstance(headers, CIMultiDict) else list(headers)
    conn = ",".join(v for k, v in items if k.lower() == "connection")
    if "upgrade" not in {t.strip().lower() for t in conn.split(",")}:
        return ""
    return next((v for k, v in items if k.lower() == "upgrade"), "")


class ReverseProxy:
    """One plugin's reverse proxy (a shared connection pool to ``localAddr``)."""

    def __init__(self, name: str, opts: ProxyOptions) -> None:
        self.name = name
        self.opts = opts
        self.addr_error = ""  # Go fails each request (502) on a bad localAddr, not the plugin
        try:
            self.host, self.port = split_host_port(opts.local_addr, 443 if opts.upstream_tls else 80)
        except ValueError as exc:
            self.host, self.port, self.addr_error = "", 0, str(exc)
        self.scheme = "https" if opts.upstream_tls else "http"
        self.ssl: ssl.SSLContext | None = None
        if opts.upstream_tls:  # Go: TLSClientConfig{InsecureSkipVerify: true}
            self.ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            self.ssl.check_hostname = False
            self.ssl.verify_mode = ssl.CERT_NONE
            self.ssl.set_alpn_protocols(["http/1.1"])
        self._pool: Pool | None = None
        self._relays: set[Relay] = set()

    @property
    def pool(self) -> Pool:
        if self._pool is None:
            hostname = self.host if self.ssl is not None and not _is_ip(self.host) else None
            self._pool = Pool(self.host, self.port, self.ssl, hostname, CONNECT_TIMEOUT)
        return self._pool

    def close(self) -> None:
        for r in list(self._relays):
            r.close()
        if self._pool is not None:
            self._pool.close()

    # -- the outgoing request -------------------------------------------------------------------

    def misdirected(self, sni: str | None, host: str) -> bool:
        """Go's https2* handler: 421 when the TLS server name is not the request's host (both
        through ``httppkg.CanonicalHost``; a server name that comes out empty is no mismatch)."""
        if not self.opts.check_sni or not sni:
            return False
        name = canonical_host(sni)
        return bool(name) and name != canonical_host(host)

    def out_headers(self, headers: Iterable[tuple[str, str]], host: str, client_ip: str | None) -> CIMultiDict[str]:
        """Go's ``ReverseProxy`` outbound headers and the plugin's ``Rewrite``: the request's less
        hop-by-hop ones (``TE: trailers`` kept, the ``Trailer`` names of a chunked body announced),
        ``X-Forwarded-*``, ``Host`` and ``Expect`` (the HTTP/1.1 front adds it back, as Go sends it
        on), with Go's ``Header`` keys (a ``User-Agent`` only its first value and not when empty;
        a ``Content-Length: 0`` not); then ``X-Forwarded-*`` as the plugin sets them,
        ``Connection``/``Upgrade`` for an upgrade, ``Host``, and ``requestHeaders.set``. One pass
        over the headers, one multidict built at the end."""
        items = list(headers)
        lows = [k.lower() for k, _ in items]
        named = _connection_tokens(items, lows) if "connection" in lows else _NONE
        up = ""
        if "upgrade" in named:  # Go's upgradeType: the first Upgrade value
            up = next((v for lk, (_, v) in zip(lows, items, strict=True) if lk == "upgrade"), "")
        out: list[tuple[str, str]] = []
        prior: dict[str, list[str]] | None = None
        te_trailers = False
        trailer: list[str] | None = None
        ua_seen = False
        for lk, (k, v) in zip(lows, items, strict=True):
            if lk in _FORWARDED:
                if prior is None:
                    prior = {"x-forwarded-for": [], "x-forwarded-host": [], "x-forwarded-proto": []}
                prior[lk].append(v)
            elif lk == "forwarded":
                continue  # Go's ReverseProxy with Rewrite drops it, as X-Forwarded-*
            elif lk in HOP_HEADERS or lk in named:
                if lk == "te" and "trailers" in {t.strip().lower() for t in v.split(",")}:
                    te_trailers = True  # Go: Header.Set("Te", "trailers") when any TE names it
                elif lk == "trailer":  # Go's transport announces the request's trailer names
                    trailer = (trailer or []) + [canonical_header_key(t.strip()) for t in v.split(",") if t.strip()]
            elif lk == "user-agent":
                # Go's transport writes Header.Get("User-Agent"): the first value, none if empty
                if not ua_seen and v:
                    out.append(("User-Agent", v))
                ua_seen = True
            elif lk == "content-length":
                if v.strip() != "0":  # Go: ContentLength 0 is no body (Content-Length: 0 only for
                    out.append(("Content-Length", v))  # POST/PUT/PATCH, added by .upstream)
            elif lk != "host" and lk != "expect":  # Expect: the HTTP/1.1 front passes it on
                out.append((canonical_header_key(k), v))
        if te_trailers:
            out.append(("Te", "trailers"))
        if trailer and "transfer-encoding" in lows:  # a chunked request body (Go's fixTrailer)
            out.append(("Trailer", ",".join(sorted(set(trailer)))))
        mode = self.opts.forwarded
        if mode is Forwarded.KEEP:
            if prior is not None:
                for k, vs in prior.items():
                    out.extend((canonical_header_key(k), v) for v in vs)
        elif mode is Forwarded.APPEND:
            xff = ", ".join(prior["x-forwarded-for"]) if prior is not None else ""
            if client_ip:
                xff = f"{xff}, {client_ip}" if xff else client_ip
            if xff:
                out.append(("X-Forwarded-For", xff))
            out.append(("X-Forwarded-Host", host))
            out.append(("X-Forwarded-Proto", "https"))
        if up:
            out.append(("Connection", "Upgrade"))
            out.append(("Upgrade", up))
        # no Host at all (HTTP/1.0): Go's transport writes the URL's host, localAddr
        out.append(("Host", self.opts.host_header_rewrite or host or self.opts.local_addr))
        result: CIMultiDict[str] = CIMultiDict(out)
        if self.opts.set_headers:
            for k, v in self.opts.set_headers.items():
                if k.lower() == "host":
                    continue  # Go: Header.Set("Host") does not change req.Host
                result[canonical_header_key(k)] = v
        return result

    async def request(self, method: str, target: str, headers: CIMultiDict[str],
                      body: AsyncIterable[bytes] | None,
                      interim: Callable[[ph.Response], None] | None = None) -> UpstreamResponse:
        if self.addr_error:
            raise UpstreamError(self.addr_error)
        return await self.pool.request(method, target, headers, body, interim)

    def proxy_error(self, exc: BaseException) -> None:
        log.warning("[%s] http: proxy error: %s", self.name, exc or type(exc).__name__)

    # -- the aiohttp (HTTP/1.1) front -----------------------------------------------------------

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        expect = request.headers.get("Expect", "")
        if expect and "100-continue" not in {t.strip().lower() for t in expect.split(",")}:
            refused = Response(status=417, headers={"Connection": "close"})  # Go's sendExpectationFailed
            refused.force_close()
            return refused
        if request.raw_path == "*" and request.method == "OPTIONS":
            return Response(status=200)  # Go's server answers it (globalOptionsHandler), no proxying
        sni = getattr(request.protocol, "sni", None)
        # aiohttp makes up a host when the request has none (HTTP/1.0); Go's r.Host is then ""
        host = request.host if "Host" in request.headers or not request.raw_path.startswith("/") else ""
        if self.misdirected(sni, host):
            return Response(status=421)
        headers = self.out_headers(request.headers.items(), host, request.remote)
        if "Upgrade" in headers:
            return await self._upgrade(request, headers)
        if expect:
            headers["Expect"] = expect  # Go's ReverseProxy sends it on (a 100-continue, here)
        continued = False
        if expect and request.body_exists and request.version >= (1, 1):
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            continued = True
        body = request.content.iter_any() if request.body_exists else None

        def interim(head: ph.Response) -> None:
            """A 1xx from the upstream goes on to the browser (Go's ``Got1xxResponse``), its
            headers as Go writes them (sorted, canonical, no framing); a 100 only when we did
            not send our own."""
            nonlocal continued
            t = request.transport
            if t is None or t.is_closing() or (head.status == 100 and continued):
                return
            continued = continued or head.status == 100
            items = sorted(((canonical_header_key(k), v) for k, v in head.headers
                            if k.lower() not in ("content-length", "transfer-encoding")), key=lambda kv: kv[0])
            minor = 1 if request.version >= (1, 1) else 0
            lines = [f"HTTP/1.{minor} {head.status} {go_status_text(head.status)}\r\n"]
            lines += [f"{k}: {v}\r\n" for k, v in items]
            lines.append("\r\n")
            t.write("".join(lines).encode("latin-1"))

        try:
            up = await self.request(request.method, request_uri(origin_target(request.raw_path)), headers, body,
                                    interim)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            self.proxy_error(exc)
            return Response(status=502)
        # a known length: the head waits for more than 2 KiB of body or all of it, as Go's server
        # holds it (bufferBeforeChunkingSize), and goes out with those bytes; a body that breaks
        # off within them leaves the client nothing but the close, as Go's does
        held = "Content-Length" in up.headers
        cls = BufferedStreamResponse if held else StreamResponse
        resp = cls(status=up.status, reason=go_status_text(up.status))
        try:
            resp.headers.extend(response_items(up.headers.items()))
            if not held and request.version < (1, 1):
                resp.force_close()
            sniffs = go_sniffs(up.headers, up.status, request.method)
            first = await sniff_bytes(up, held, HOLD_LEN) if held or sniffs else b""
            if first and sniffs:
                resp.headers["Content-Type"] = detect_content_type(first)
            await resp.prepare(request)
            # the upstream's last bytes go out with the end of the response (write_eof: for a
            # small answer head, body and end in one write, one pass through aiohttp's writer);
            # bytes that are not known to be the last are written as they come (streaming)
            chunk = first
            while True:
                if not chunk:
                    chunk = await up.readany()
                    if not chunk:
                        break
                if up.at_end():
                    break
                await resp.write(chunk)
                chunk = b""
            await resp.write_eof(chunk)
            return resp
        except (TimeoutError, UpstreamError, aiohttp.ClientError) as exc:
            # the response started (or is held): all we can do is close the connection, as Go's
            # ReverseProxy (ErrAbortHandler): what was written is delivered, then the close
            # (never an abort: over frps's mux that would lose those bytes); aiohttp's own end of
            # the response finds the transport closing and writes nothing more
            self.proxy_error(exc)  # Go: "httputil: ReverseProxy read error during body copy: ..."
            if request.transport is not None:
                request.transport.close()
            return resp
        finally:
            up.release()

    async def _upgrade(self, request: web.BaseRequest, headers: CIMultiDict[str]) -> web.StreamResponse:
        """An upgrade request on a connection of its own; on 101 the two connections are joined."""
        loop = asyncio.get_running_loop()
        if self.addr_error:
            self.proxy_error(ValueError(self.addr_error))
            return Response(status=502)
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                transport, reader = await loop.create_connection(
                    _HeadReader, self.host, self.port, ssl=self.ssl,
                    server_hostname=(self.host if self.ssl is not None and not _is_ip(self.host) else None)
                    if self.ssl is not None else None)
        except (TimeoutError, OSError, ssl.SSLError) as exc:
            self.proxy_error(exc)
            return Response(status=502)
        head = [f"{request.method} {origin_target(request.raw_path)} HTTP/1.1\r\n"]
        head += [f"{k}: {v}\r\n" for k, v in headers.items()]
        if request.body_exists and "Content-Length" not in headers:
            head.append("Content-Length: 0\r\n")  # an upgrade request with a streamed body: not supported
        transport.write(("".join(head) + "\r\n").encode("latin-1"))
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                status, resp_headers, rest = await reader.head
        except (TimeoutError, ConnectionError, ValueError) as exc:
            transport.close()
            self.proxy_error(exc)
            return Response(status=502)
        if status != 101:
            transport.close()
            body = rest[: UPGRADE_BODY_LIMIT]
            n = next((int(v) for k, v in resp_headers if k.lower() == "content-length" and v.isdigit()), 0)
            if len(body) < n:
                body += await reader.more(n - len(body))
            resp = Response(status=status, body=body[:n] if n else b"")
            for k, v in strip_hop(resp_headers).items():
                if k.lower() != "content-length":
                    resp.headers.add(k, v)
            return resp
        got = upgrade_type(resp_headers)
        want = headers.get("Upgrade", "")
        if got.lower() != want.lower():
            transport.close()
            self.proxy_error(ValueError(f"backend tried to switch protocol {got!r} when {want!r} was requested"))
            return Response(status=502)
        client = request.transport
        proto = request.protocol
        if client is None:
            transport.close()
            raise ConnectionResetError("client gone")
        tail: bytes = getattr(proto, "_message_tail", b"") or b""
        proto._message_tail = b""  # now the relay's
        out = ["HTTP/1.1 101 Switching Protocols\r\n"]
        out += [f"{k}: {v}\r\n" for k, v in strip_hop(resp_headers).items()]
        out += ["Connection: Upgrade\r\n", f"Upgrade: {got}\r\n", "\r\n"]
        client.write("".join(out).encode("latin-1"))
        relay = Relay(client, transport, a_data=tail, b_data=rest, name=self.name)
        self._relays.add(relay)
        try:
            await relay.done
        finally:
            self._relays.discard(relay)
            proto.force_close()
        return Response()  # not sent: the connection is closed (aiohttp swallows the write error)


class _HeadReader(asyncio.Protocol):
    """Reads one HTTP/1.1 response head from the upstream of an upgrade, then pauses."""

    def __init__(self) -> None:
        self.head: asyncio.Future[tuple[int, list[tuple[str, str]], bytes]] = (
            asyncio.get_running_loop().create_future())
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self._more: tuple[int, asyncio.Future[bytes]] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.head.done():
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > UPGRADE_HEAD_LIMIT:
                    self.head.set_exception(ValueError("upstream response head too large"))
                return
            raw = bytes(self.buf[:end]).decode("latin-1")
            rest = bytes(self.buf[end + 4:])
            self.buf.clear()
            lines = raw.split("\r\n")
            parts = lines[0].split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
                self.head.set_exception(ValueError(f"malformed HTTP response {lines[0]!r}"))
                return
            hdrs = [(k.strip(), v.strip()) for k, _, v in (ln.partition(":") for ln in lines[1:]) if k.strip()]
            if self.transport is not None:
                self.transport.pause_reading()
            self.head.set_result((int(parts[1]), hdrs, rest))
        elif self._more is not None:
            n, fut = self._more
            if len(self.buf) >= n and not fut.done():
                fut.set_result(bytes(self.buf[:n]))

    async def more(self, n: int) -> bytes:
        """Up to ``n`` more bytes (a refused upgrade's body), bounded."""
        n = min(n, UPGRADE_BODY_LIMIT)
        fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._more = (n, fut)
        if self.transport is not None:
            self.transport.resume_reading()
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                return await fut
        except TimeoutError:
            return bytes(self.buf)

    def eof_received(self) -> bool:
        self.connection_lost(None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.head.done():
            self.head.set_exception(exc or ConnectionResetError("upstream closed before a response"))
        if self._more is not None and not self._more[1].done():
            self._more[1].set_result(bytes(self.buf))


def split_host_port(addr: str, default_port: int) -> tuple[str, int]:
    """``localAddr`` as Go's transport dials it: ``host:port``, ``[v6]:port``, or a host alone
    (the scheme's port)."""
    if addr.startswith("["):
        host, _, rest = addr[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif addr.count(":") == 1:
        host, _, port = addr.partition(":")
    else:
        host, port = addr, ""
    if port and not port.isdigit():
        raise ValueError(f"invalid localAddr {addr!r}")
    return host or "127.0.0.1", int(port) if port else default_port


def _is_ip(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def sniff_bytes(up: UpstreamResponse, held: bool, limit: int = SNIFF_LEN) -> bytes:
    """The body bytes Go's server guesses a Content-Type from: the first read of a body it writes
    as it comes; of a body it holds (a known length: its first 2 KiB are buffered), up to
    ``limit`` bytes or the whole body."""
    first = await up.readany()
    while held and first and len(first) < limit and not up.at_end():
        more = await up.readany()
        if not more:
            break
        first += more
    return first
