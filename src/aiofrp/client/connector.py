"""frpc's way to frps: TCP, optional 0x17 byte, TLS, and (with tcpMux) one yamux session.

:meth:`Connector.open` returns a new logical connection in its message phase: the first one
is the control connection; later ones are work connections (new yamux streams, or new
TCP(+TLS) connections when tcpMux is off).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import TYPE_CHECKING

from ..config.reach import ProxyURL, parse_dns_server
from ..net.dns import Resolver
from ..net.forward_proxy import ProxyDialError, open_via_proxy
from ..net.msgconn import MsgConn
from ..net.mux import MuxSession
from ..net.tls import TLSTransport, client_context
from ..proto import wire
from .errors import Server, dial_error, login_error, proxy_error, tls_error

if TYPE_CHECKING:
    from ..config.client import ClientConfig

log = logging.getLogger("aiofrp.client.connector")


class _Placeholder(asyncio.Protocol):
    """Holds what arrives between connect and the real protocol (a server that speaks first)."""

    def __init__(self) -> None:
        self.early = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        pass

    def data_received(self, data: bytes) -> None:
        self.early += data


class Connector:
    def __init__(self, cfg: ClientConfig) -> None:
        self.cfg = cfg
        t = cfg.transport
        self.tcp_mux: bool = t.tcp_mux
        tls = t.tls
        self.tls_ctx = client_context(tls.cert_file, tls.key_file, tls.trusted_ca_file) if tls.enable else None
        self.server_hostname = (tls.server_name or cfg.server_addr) if tls.enable else None
        self.first_byte = tls.enable and not tls.disable_custom_tls_first_byte
        self.server = Server(cfg.server_addr, cfg.server_port, bool(tls.enable), self.first_byte)
        self.session: MuxSession | None = None
        self.wire_protocol = t.wire_protocol
        # transport.proxyURL (or $http_proxy) and dnsServer: see _connect_tcp
        self.proxy: ProxyURL | None = cfg.transport.forward_proxy()
        self.resolver = Resolver(*parse_dns_server(cfg.dns_server)) if cfg.dns_server else None
        if self.proxy is not None:
            src = "transport.proxyURL" if cfg.transport.proxy_url else "$http_proxy"
            log.info("frps is reached through the proxy %s (%s)", self.proxy.label, src)

    async def _dial(self, app: asyncio.Protocol) -> asyncio.Transport:
        """Connect a fresh TCP(+TLS) connection to frps with ``app`` as its protocol.

        Raises :class:`~.errors.ServerConnectError` naming the server, the step and a hint."""
        cfg = self.cfg
        loop = asyncio.get_running_loop()
        timeout = cfg.transport.dial_server_timeout or 10
        local = (cfg.transport.connect_server_local_ip, 0) if cfg.transport.connect_server_local_ip else None
        raw, holder = await self._connect_tcp(loop, local, timeout)
        sock = raw.get_extra_info("socket")
        ka = cfg.transport.dial_server_keepalive
        if sock is not None and ka > 0:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
                if hasattr(socket, "TCP_KEEPIDLE"):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, ka)
            except OSError:
                pass
        early = bytes(holder.early)
        if self.tls_ctx is None:
            raw.set_protocol(app)
            app.connection_made(raw)
            if early:
                app.data_received(early)
            return raw
        if self.first_byte:
            raw.write(b"\x17")
        hostname = self.server_hostname
        tls = TLSTransport(raw, self.tls_ctx, app, server_side=False, server_hostname=hostname or None,
                           initial_data=early, handshake_timeout=timeout)
        try:
            async with asyncio.timeout(timeout + 1):
                await tls.handshake
        except (OSError, TimeoutError, EOFError, ValueError) as exc:
            raw.abort()
            raise tls_error(self.server, exc, timeout) from exc
        except BaseException:
            raw.abort()
            raise
        return tls

    async def _connect_tcp(self, loop: asyncio.AbstractEventLoop, local: tuple[str, int] | None,
                           timeout: float) -> tuple[asyncio.Transport, _Placeholder]:
        """The TCP connection to frps: direct, or through ``transport.proxyURL`` (never direct
        when a proxy is set), the names looked up with ``dnsServer`` when it is set."""
        cfg = self.cfg
        host, port = cfg.server_addr, cfg.server_port
        resolve = self.resolver.resolve if self.resolver is not None else None
        if self.proxy is not None:
            try:
                sock = await open_via_proxy(self.proxy, host, port, timeout=timeout, local_addr=local,
                                            resolve=resolve)
            except ProxyDialError as exc:
                raise proxy_error(self.server, self.proxy.label, exc, timeout) from exc
            try:
                return await loop.create_connection(_Placeholder, sock=sock)
            except OSError as exc:
                sock.close()
                raise dial_error(self.server, exc, timeout) from exc
        try:
            async with asyncio.timeout(timeout):
                hosts = await resolve(host) if resolve is not None else [host]
                last: OSError | None = None
                for addr in hosts:  # the addresses in order, as Go's dialer (without a fallback delay)
                    try:
                        return await loop.create_connection(_Placeholder, addr, port, local_addr=local)
                    except OSError as exc:
                        last = exc
                assert last is not None
                raise last
        except (OSError, TimeoutError) as exc:
            raise dial_error(self.server, exc, timeout) from exc

    async def open(self) -> MsgConn:
        """A new logical connection; with ``transport.wireProtocol = "v2"`` it starts with the v2
        magic (§1.8) and frames v2 messages."""
        conn = MsgConn(self.wire_protocol)
        if not self.tcp_mux:
            await self._dial(conn)
            self._magic(conn)
            return conn
        if self.session is None or self.session.is_closed:
            self.session = MuxSession(client=True, keepalive_interval=self.cfg.transport.tcp_mux_keepalive_interval)
            await self._dial(self.session)
        if self.session.is_closed:  # the server answered the new session with garbage, or hung up
            reason = self.session.close_reason
            raise login_error(self.server, reason or EOFError("closed"), 0)
        stream = self.session.open_stream()
        stream.set_protocol(conn)
        conn.connection_made(stream)
        self._magic(conn)
        return conn

    def _magic(self, conn: MsgConn) -> None:
        if self.wire_protocol == "v2":
            conn.write_raw(wire.MAGIC)

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None
