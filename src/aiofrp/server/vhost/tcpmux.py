"""The tcpmux ``httpconnect`` port (frp §6.4): an HTTP CONNECT proxy routing by the target host.

After the CONNECT request (and Proxy-Authorization when the route has ``httpUser``), frps answers
``200 OK`` itself and relays the bytes that follow to frpc, or with ``tcpmuxPassthrough`` relays
the CONNECT request too and lets the local service answer it. Unknown hosts get frp's raw 404.
Unlike Go 0.65, which writes its 200 before checking credentials, a failed check gets only 407;
and bytes sent right behind the CONNECT head reach the service (Go loses what its reader had read
ahead). The head is read as Go's ``http.ReadRequest`` reads it (:func:`read_request`), not as its
HTTP server does: checked against Go 0.65 in tests/compat/test_go_sni_tcpmux_audit.py.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import TYPE_CHECKING

from ...net.listen import listen_tcp
from ...proto.addr import fmt_addr
from ...proto.http import (
    TOKEN,
    TOKEN_SPACE,
    HTTPError,
    basic_auth,
    canonical_host,
    connect_authority_ok,
    find_head_end,
)
from .https import MUX_TIMEOUT, ConnMember, RoutingConn
from .pages import CONNECT_OK, PROXY_AUTH_REQUIRED, raw_not_found
from .router import Route, Routers

if TYPE_CHECKING:
    from ...config.server import ServerConfig
    from . import Elsewhere, Spawn

log = logging.getLogger("aiofrp.server.vhost.tcpmux")

MAX_CONNECT_HEAD = 64 * 1024

_VERSION = re.compile(r"HTTP/([0-9])\.([0-9])")  # ParseHTTPVersion: any single-digit major and minor
_REQUEST_LINE_CTL = re.compile(r"[\x00-\x1f\x7f]")
_FIELD_CTL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # validHeaderValueByte refuses these (HTAB passes)
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_TRAILER_REFUSED = frozenset({"transfer-encoding", "trailer", "content-length"})


def read_request(head: bytes | bytearray) -> tuple[str, str, str]:
    """(method, host, Proxy-Authorization) of a complete request head as Go's ``http.ReadRequest``
    (frp's tcpmux) reads it; raise HTTPError where it fails. Laxer than Go's HTTP server: any
    ``HTTP/d.d`` version, obs-folded lines joined, a space in a header name (such a name matches no
    known header), no Host checks; but the framing is checked though no body is read: a
    Content-Length that is not digits, two that differ, a Transfer-Encoding other than one
    ``chunked`` (from HTTP/1.1 on), a Trailer naming a framing header; and two Host headers."""
    lines = head.decode("latin-1").split("\n")
    del lines[-2:]  # the blank line and the empty rest after it
    line = lines[0].removesuffix("\r")  # bufio's ReadLine drops one CR before the LF
    method, sp1, rest = line.partition(" ")
    target, sp2, version = rest.partition(" ")
    vm = _VERSION.fullmatch(version)
    if not sp1 or not sp2 or TOKEN.fullmatch(method) is None or vm is None:
        raise HTTPError(400, "malformed HTTP request")
    if not target or _REQUEST_LINE_CTL.search(target) is not None:
        raise HTTPError(400, "invalid request target")
    url_host = ""
    if method == "CONNECT" and target[0] != "/":  # url.ParseRequestURI("http://" + target)
        authority, slash, path = target.partition("?")[0].partition("/")
        if not connect_authority_ok(target) or (slash and _BAD_ESCAPE.search(path) is not None):
            raise HTTPError(400, "malformed HTTP request")
        url_host = authority.rpartition("@")[2]
    elif _BAD_ESCAPE.search(target.partition("?")[0]) is not None:
        raise HTTPError(400, "invalid URL escape")

    # textproto's ReadMIMEHeader: a line starting with a space or a tab continues the one before
    # (joined with one space, each piece trimmed); canonical names are matched case-insensitively
    fields: list[list[str]] = []
    for raw in lines[1:]:
        ln = raw.removesuffix("\r")
        if ln[:1] in (" ", "\t"):
            if not fields:
                raise HTTPError(400, "malformed MIME header initial line")
            fields[-1][1] += " " + ln.strip(" \t")
            continue
        name, colon, value = ln.partition(":")
        if not colon or TOKEN_SPACE.fullmatch(name) is None:  # textproto takes a space in a name
            raise HTTPError(400, f"malformed MIME header line: {ln[:64]!r}")
        fields.append([name, value.strip(" \t")])
    index: dict[str, list[str]] = {}
    for name, value in fields:
        if _FIELD_CTL.search(value) is not None:
            raise HTTPError(400, "malformed MIME header line")
        if " " not in name:
            index.setdefault(name.lower(), []).append(value)

    hosts = index.get("host", ())
    if len(hosts) > 1:
        raise HTTPError(400, "too many Host headers")
    # readTransfer: Transfer-Encoding (ignored before HTTP/1.1), Content-Length, Trailer
    chunked = False
    te = index.get("transfer-encoding")
    if te and (int(vm[1]), int(vm[2])) >= (1, 1):
        if len(te) != 1 or te[0].lower() != "chunked":
            raise HTTPError(501, "unsupported transfer encoding")
        chunked = True
    cls = index.get("content-length")
    if cls:
        first = cls[0].strip(" \t")
        if any(v.strip(" \t") != first for v in cls[1:]):
            raise HTTPError(400, "multiple Content-Length headers")
        if not first.isascii() or not first.isdigit() or int(first) >= 1 << 63:
            raise HTTPError(400, "bad Content-Length")
    if chunked:
        for value in index.get("trailer", ()):
            if any(k.strip(" \t\r\n").lower() in _TRAILER_REFUSED for k in value.split(",")):
                raise HTTPError(400, "bad trailer key")
    auth = index.get("proxy-authorization")
    return method, url_host or (hosts[0] if hosts else ""), auth[0] if auth else ""


class TCPMuxVhost:
    def __init__(self, cfg: ServerConfig, spawn: Spawn) -> None:
        self.spawn = spawn
        self.router: Routers[Route[ConnMember]] = Routers()
        self.port: int = cfg.tcpmux_http_connect_port
        self.passthrough: bool = cfg.tcpmux_passthrough
        self.custom_404: str = cfg.custom_404_page
        self.shared = False
        self.reuse_port = False  # frps --workers N: every worker listens
        self.elsewhere: Elsewhere | None = None  # frps --workers N: routes of the other workers

    async def listen(self, host: str, port: int) -> asyncio.Server:
        return await listen_tcp(lambda: ConnectConn(self), host, port, reuse_port=self.reuse_port)

    def accept(self, transport: asyncio.Transport, data: bytes, *, handed: bool = False) -> None:
        """A connection handed over by another worker (server/workers/handover.py)."""
        conn = ConnectConn(self)
        conn.handed = handed
        transport.set_protocol(conn)
        conn.connection_made(transport)
        if data:
            conn.data_received(data)


class ConnectConn(RoutingConn):
    """Reads the CONNECT request, routes it, then waits (paused) for its proxy to take over."""

    def __init__(self, vhost: TCPMuxVhost) -> None:
        super().__init__()
        self.vhost = vhost
        self.head = bytearray()
        self.handed = False  # handed over by another worker (server/workers/handover.py)

    def _timed_out(self) -> None:
        log.info("tcpmux connection from %s: no complete CONNECT request in %gs, closing", self._peer(), MUX_TIMEOUT)

    def _peer(self) -> str:
        return fmt_addr(self.transport.get_extra_info("peername")) if self.transport is not None else "?"

    def data_received(self, data: bytes) -> None:
        if self.routed:
            super().data_received(data)
            return
        t = self.transport
        assert t is not None
        buf = self.head
        scan = max(0, len(buf) - 3)
        buf += data
        end = find_head_end(buf, scan)
        if end < 0:
            if len(buf) > MAX_CONNECT_HEAD:
                log.info("tcpmux connection from %s: CONNECT request over %d bytes, closing", self._peer(),
                         MAX_CONNECT_HEAD)
                self._stop()
                t.abort()
            return
        self._stop()
        peer = fmt_addr(t.get_extra_info("peername"))
        try:
            method, host, auth = read_request(buf[:end])  # Go's tcpmux: http.ReadRequest
        except HTTPError as exc:
            log.debug("tcpmux request from %s: %s", peer, exc)
            t.abort()
            return
        if method != "CONNECT":
            log.debug("tcpmux request from %s: connections to tcp vhost must be of method CONNECT", peer)
            t.abort()
            return
        host = canonical_host(host)
        creds = basic_auth(auth) or ("", "")
        route = self.vhost.router.find(host, "", creds[0])
        member = route.pick() if route is not None else None
        if member is None:
            user = creds[0]

            def not_found() -> None:
                log.debug("tcpmux request for host [%s] httpUser [%s] not found", host, user)
                t.write(raw_not_found(self.vhost.custom_404))
                t.close()
            if self.vhost.elsewhere is not None and not self.handed:
                self.vhost.elsewhere.try_elsewhere("tcpmux", host, "", user, bytes(buf), t, not_found)
            else:
                not_found()
            return
        assert route is not None  # a member was picked from it
        if route.http_user and not route.check_auth(*creds):
            log.debug("[%s] tcpmux auth failed for user [%s]", member.name, creds[0])
            t.write(PROXY_AUTH_REQUIRED)
            t.close()
            return
        self.routed = True
        if self.vhost.passthrough:
            self.buffered.append(bytes(buf))
        else:
            t.write(CONNECT_OK)
            if end < len(buf):
                self.buffered.append(bytes(buf[end:]))
        self.head = bytearray()
        t.pause_reading()
        self.vhost.spawn(member.handle_user_conn(self))
