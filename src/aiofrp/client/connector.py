"""frpc's way to frps: the transport.protocol's byte stream (client/dialers.py: TCP, KCP,
websocket, wss), optional 0x17 byte, TLS, and (with tcpMux) one yamux session; or QUIC streams.

:meth:`Connector.open` returns a new logical connection in its message phase: the first one
is the control connection; later ones are work connections (new yamux streams, or new
TCP(+TLS) connections when tcpMux is off).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from ..config.reach import ProxyURL, parse_dns_server
from ..net.dns import Resolver
from ..net.msgconn import MsgConn
from ..net.mux import MuxSession
from ..net.tls import TLSLayer, TLSTransport, client_context, server_name
from ..net.tls_socket import SocketTLSTransport, detach_socket
from ..net.tls_socket import enabled as tls_socket_enabled
from ..proto import msg as m
from ..proto import wire
from .dialers import new_dialer
from .errors import Server, login_error, tls_error

if TYPE_CHECKING:
    from ..config.client import ClientConfig

log = logging.getLogger("aiofrp.client.connector")


class Connector:
    def __init__(self, cfg: ClientConfig) -> None:
        self.cfg = cfg
        t = cfg.transport
        self.tcp_mux: bool = t.tcp_mux
        tls = t.tls
        self.tls_ctx = client_context(tls.cert_file, tls.key_file, tls.trusted_ca_file) if tls.enable else None
        self.server_name = tls.server_name or cfg.server_addr
        self.server_hostname = self.server_name if tls.enable else None
        # wss: TLS outside the websocket whatever transport.tls.enable says (Go: tlsEnable = true)
        self.wss_ctx = self.tls_ctx or client_context(tls.cert_file, tls.key_file, tls.trusted_ca_file)
        self.wire_protocol = t.wire_protocol
        # transport.proxyURL (or $http_proxy) and dnsServer: see client/dialers.py Dialer.tcp
        self.proxy: ProxyURL | None = cfg.transport.forward_proxy()
        self.resolver = Resolver(*parse_dns_server(cfg.dns_server)) if cfg.dns_server else None
        if self.proxy is not None:
            src = "transport.proxyURL" if cfg.transport.proxy_url else "$http_proxy"
            log.info("frps is reached through the proxy %s (%s)", self.proxy.label, src)
        self.dialer = new_dialer(self)  # transport.protocol (client/dialers.py)
        self.first_byte = tls.enable and not tls.disable_custom_tls_first_byte and self.dialer.frp_tls
        self.server = Server(cfg.server_addr, cfg.server_port, bool(tls.enable), self.first_byte)
        self.session: MuxSession | None = None

    async def _dial(self, app: asyncio.Protocol) -> asyncio.Transport:
        """A fresh connection to frps (transport.protocol, then frp's TLS) with ``app`` as its
        protocol. Raises :class:`~.errors.ServerConnectError` naming the server, the step and a hint."""
        raw, early = await self.dialer.raw()
        timeout = self.dialer.timeout
        if self.tls_ctx is None or not self.dialer.frp_tls:
            raw.set_protocol(app)
            app.connection_made(raw)
            if early:
                app.data_received(early)
            return raw
        if self.first_byte:
            raw.write(b"\x17")
        hostname = server_name(self.server_hostname)
        tls: TLSLayer
        # a yamux session on TCP: OpenSSL on the socket itself, no MemoryBIO copies (its one
        # limit, no TLS half-close, is nothing yamux needs)
        # (not through an https:// proxy: that TCP connection carries the proxy's TLS)
        on_tcp = self.dialer.tcp_socket and (self.proxy is None or self.proxy.scheme != "https")
        sock = (detach_socket(raw) if self.tcp_mux and not early and on_tcp and tls_socket_enabled() else None)
        if sock is not None:
            tls = SocketTLSTransport(sock, self.tls_ctx, app, server_side=False, server_hostname=hostname,
                                     handshake_timeout=timeout)
            raw = tls
        else:
            tls = TLSTransport(raw, self.tls_ctx, app, server_side=False, server_hostname=hostname,
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

    async def open(self, first: m.Message | None = None) -> MsgConn:
        """A new logical connection; with ``transport.wireProtocol = "v2"`` it starts with the v2
        magic (§1.8) and frames v2 messages. ``first``: a message written at once (a work
        connection's NewWorkConn); on a yamux session it leaves with the stream's SYN, in one
        write."""
        own = await self.dialer.open()  # QUIC: a new stream of its connection
        if own is not None:
            self._start(own, first)
            return own
        conn = MsgConn(self.wire_protocol)
        if not self.tcp_mux:
            await self._dial(conn)
            self._start(conn, first)
            return conn
        if self.session is None or self.session.is_closed:
            self.session = MuxSession(client=True, keepalive_interval=self.cfg.transport.tcp_mux_keepalive_interval)
            await self._dial(self.session)
        session = self.session
        if session.is_closed:  # the server answered the new session with garbage, or hung up
            reason = session.close_reason
            raise login_error(self.server, reason or EOFError("closed"), 0)
        held = session.hold()
        try:
            stream = session.open_stream()
            stream.set_protocol(conn)
            conn.connection_made(stream)
            self._start(conn, first)
        finally:
            if held:
                session.release()
        return conn

    def _start(self, conn: MsgConn, first: m.Message | None) -> None:
        if self.wire_protocol == "v2":
            conn.write_raw(wire.MAGIC)
        if first is not None:
            conn.write_msg(first)

    def close(self) -> None:
        self.dialer.close()
        if self.session is not None:
            self.session.close()
            self.session = None
