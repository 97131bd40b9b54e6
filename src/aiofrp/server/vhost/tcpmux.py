"""The tcpmux ``httpconnect`` port (frp §6.4): an HTTP CONNECT proxy routing by the target host.

After the CONNECT request (and Proxy-Authorization when the route has ``httpUser``), frps answers
``200 OK`` itself and relays the bytes that follow to frpc, or with ``tcpmuxPassthrough`` relays
the CONNECT request too and lets the local service answer it. Unknown hosts get frp's raw 404.
Unlike Go 0.65, which writes its 200 before checking credentials, a failed check gets only 407.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from ...net.listen import listen_tcp
from ...proto.addr import fmt_addr
from ...proto.http import HTTPError, basic_auth, canonical_host, find_head_end, parse_request_head
from .https import MUX_TIMEOUT, ConnMember, RoutingConn
from .pages import CONNECT_OK, PROXY_AUTH_REQUIRED, raw_not_found
from .router import Route, Routers

if TYPE_CHECKING:
    from ...config.server import ServerConfig
    from . import Elsewhere, Spawn

log = logging.getLogger("aiofrp.server.vhost.tcpmux")

MAX_CONNECT_HEAD = 64 * 1024


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
            req = parse_request_head(buf[:end], server=False)  # Go's tcpmux: http.ReadRequest
        except HTTPError as exc:
            log.debug("tcpmux request from %s: %s", peer, exc)
            t.abort()
            return
        if req.method != "CONNECT":
            log.debug("tcpmux request from %s: connections to tcp vhost must be of method CONNECT", peer)
            t.abort()
            return
        host = canonical_host(req.host)
        creds = basic_auth(req.get("proxy-authorization")) or ("", "")
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
