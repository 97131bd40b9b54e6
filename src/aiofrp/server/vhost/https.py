"""The vhost HTTPS port (frp §6.3): route TLS connections by SNI, without terminating TLS.

The ClientHello is read (:mod:`aiofrp.proto.tls_hello`), its server_name looked up with the
domain rules of §6.1, and the whole byte stream, ClientHello included, goes through a work
connection to the TLS server behind frpc. An unknown name gets the TLS alert Go 0.65 sends
(``unrecognized_name``; ``protocol_version`` to a client offering nothing from TLS 1.2 on, which
Go's TLS server refuses first) and the connection is closed.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING, Protocol

from ...net.listen import listen_tcp
from ...net.relay import PendingConn
from ...proto.addr import fmt_addr
from ...proto.tls_hello import ALERT_UNRECOGNIZED_NAME, MAX_HANDSHAKE, ClientHelloParser, TLSHelloError
from .router import Route, Routers

if TYPE_CHECKING:
    from ...config.server import ServerConfig
    from . import Elsewhere, Spawn

log = logging.getLogger("aiofrp.server.vhost.https")

# Go: vhostReadWriteTimeout (30 s), the deadline for the ClientHello / CONNECT request, counted from
# the accept (a client sending a byte at a time gets no more); the variable is for tests
MUX_TIMEOUT = float(os.environ.get("AIOFRP_VHOST_MUX_TIMEOUT", "30"))
MAX_HELLO_BYTES = MAX_HANDSHAKE + 4096  # the largest ClientHello, in records of 1-byte fragments too
# A fatal protocol_version alert as Go's TLS server writes it before a version is agreed (TLS 1.0)
ALERT_PROTOCOL_VERSION = bytes([0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 70])


class ConnMember(Protocol):
    """What the https and tcpmux vhosts use of a proxy (server/proxies: HTTPSProxy, TCPMuxProxy):
    they hand it the routed connection."""

    @property
    def name(self) -> str: ...

    async def handle_user_conn(self, user: PendingConn) -> None: ...


class HTTPSVhost:
    def __init__(self, cfg: ServerConfig, spawn: Spawn) -> None:
        self.spawn = spawn
        self.router: Routers[Route[ConnMember]] = Routers()
        self.port: int = cfg.vhost_https_port
        self.shared = False
        self.reuse_port = False  # frps --workers N: every worker listens
        self.elsewhere: Elsewhere | None = None  # frps --workers N: routes of the other workers

    async def listen(self, host: str, port: int) -> asyncio.Server:
        return await listen_tcp(lambda: SNIConn(self), host, port, reuse_port=self.reuse_port)

    def accept(self, transport: asyncio.Transport, data: bytes, *, handed: bool = False) -> None:
        """A connection of the bind port whose first byte was 0x16 (``handed``: from another
        worker, which found no route for it either)."""
        conn = SNIConn(self)
        conn.handed = handed
        transport.set_protocol(conn)
        conn.connection_made(transport)
        if data:
            conn.data_received(data)


class RoutingConn(PendingConn):
    """A vhost connection read until it is routed (``routed``), then kept paused for its proxy;
    aborted if not routed within ``MUX_TIMEOUT``. Subclasses call :meth:`_stop` once routing ends."""

    def __init__(self) -> None:
        super().__init__()
        self.routed = False
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.timer = asyncio.get_running_loop().call_later(MUX_TIMEOUT, self._timeout)

    def _timeout(self) -> None:
        self.timer = None
        if not self.routed and self.transport is not None:
            self._timed_out()
            self.transport.abort()

    def _timed_out(self) -> None:
        """Called just before a connection not routed in time is aborted."""

    def _stop(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def eof_received(self) -> bool:
        if not self.routed:
            self._stop()
            return False
        return super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop()
        super().connection_lost(exc)


class SNIConn(RoutingConn):
    """Reads the ClientHello, then waits (paused, bytes kept) for its proxy to take it over."""

    def __init__(self, vhost: HTTPSVhost) -> None:
        super().__init__()
        self.vhost = vhost
        self.hello = bytearray()
        self.parser = ClientHelloParser()
        self.handed = False  # handed over by another worker (server/workers/handover.py)

    def _timed_out(self) -> None:
        log.info("https connection from %s: no complete ClientHello in %gs, closing", self._peer(), MUX_TIMEOUT)

    def _peer(self) -> str:
        return fmt_addr(self.transport.get_extra_info("peername")) if self.transport is not None else "?"

    def data_received(self, data: bytes) -> None:
        if self.routed:
            super().data_received(data)
            return
        assert self.transport is not None
        self.hello += data
        try:
            hello = self.parser.parse(self.hello)
        except TLSHelloError as exc:
            log.debug("get hostname from https request error: %s", exc)
            self._stop()
            self.transport.abort()
            return
        if hello is None:
            if len(self.hello) > MAX_HELLO_BYTES:
                log.info("https connection from %s: ClientHello over %d bytes, closing", self._peer(), MAX_HELLO_BYTES)
                self._stop()
                self.transport.abort()
            return
        self._stop()
        name = hello.server_name.lower()
        route = self.vhost.router.find(name, "", "")
        member = route.pick() if route is not None else None
        if member is None:
            alert = ALERT_UNRECOGNIZED_NAME if hello.offers_tls12 else ALERT_PROTOCOL_VERSION
            if self.vhost.elsewhere is not None and not self.handed:
                self.vhost.elsewhere.try_elsewhere("https", name, "", "", bytes(self.hello), self.transport,
                                                   lambda: self._not_found(name, alert))
                return
            self._not_found(name, alert)
            return
        self.routed = True
        self.buffered.append(bytes(self.hello))
        self.hello = bytearray()
        self.transport.pause_reading()
        log.debug("[%s] new https connection for host [%s]", member.name, name)
        self.vhost.spawn(member.handle_user_conn(self))

    def _not_found(self, name: str, alert: bytes) -> None:
        assert self.transport is not None
        log.debug("https request for host [%s] from %s not found", name, self._peer())
        self.transport.write(alert)
        self.transport.close()
