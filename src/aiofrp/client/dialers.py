"""How frpc reaches frps, one class per ``transport.protocol`` (Go: client/connector.go and golib's
dial hooks), registered in :data:`DIALERS`:

* ``tcp``: a TCP connection;
* ``kcp``: a KCP conversation over UDP to frps's ``kcpBindPort`` (``net/kcp.py``);
* ``websocket``: a TCP connection upgraded with ``GET /~!frp`` (``net/websocket.py``); frp's TLS
  (and its 0x17 byte) runs *inside* the websocket;
* ``wss``: TLS first (always, no 0x17 byte), then the websocket inside it;
* ``quic``: one QUIC connection to ``quicBindPort``; every logical connection is a stream of it
  (no frp TLS, no yamux) — :class:`QUICDialer` replaces the connector's ``open``.

A dialer's :meth:`Dialer.raw` gives the byte stream that the :class:`~.connector.Connector` then
wraps in frp's TLS (when :attr:`Dialer.frp_tls`) and yamux.
"""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING, ClassVar

from ..net.forward_proxy import ProxyDialError, open_via_https_proxy, open_via_proxy
from ..net.tls import TLSTransport, server_name
from ..registry import Registry
from .errors import ServerConnectError, dial_error, proxy_error, tls_error

if TYPE_CHECKING:
    from ..net.msgconn import MsgConn
    from ..net.quic import QuicSession
    from .connector import Connector


class Placeholder(asyncio.Protocol):
    """Holds what arrives between connect and the real protocol (a server that speaks first)."""

    def __init__(self) -> None:
        self.early = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        pass

    def data_received(self, data: bytes) -> None:
        self.early += data


class Dialer:
    """One ``transport.protocol``: how frpc gets a byte stream to frps."""

    frp_tls: ClassVar[bool] = True
    """The connector adds frp's TLS layer (``transport.tls.enable``) on top of :meth:`raw`."""
    tcp_socket: ClassVar[bool] = False
    """:meth:`raw` is a TCP connection straight to frps (perhaps after a forward proxy's
    handshake), no framing of ours: frp's TLS may run on the socket itself (net/tls_socket.py)."""

    def __init__(self, connector: Connector) -> None:
        self.connector = connector
        self.cfg = connector.cfg

    @property
    def timeout(self) -> float:
        return float(self.cfg.transport.dial_server_timeout or 10)

    async def raw(self) -> tuple[asyncio.Transport, bytes]:
        """A new byte stream to frps (with a :class:`Placeholder` protocol) and what it already
        received. Raises :class:`~.errors.ServerConnectError`."""
        raise NotImplementedError

    async def open(self) -> MsgConn | None:
        """A new logical connection, for dialers that make their own (QUIC); None: the
        connector's TCP-like way (``raw`` + TLS + yamux)."""
        return None

    def close(self) -> None:
        pass

    async def tcp(self) -> tuple[asyncio.Transport, bytes]:
        """A TCP connection to ``serverAddr:serverPort`` with frp's keepalive."""
        cfg = self.cfg
        loop = asyncio.get_running_loop()
        timeout = self.timeout
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
        return raw, bytes(holder.early)

    async def _connect_tcp(self, loop: asyncio.AbstractEventLoop, local: tuple[str, int] | None,
                           timeout: float) -> tuple[asyncio.Transport, Placeholder]:
        """Direct, or through ``transport.proxyURL`` (never direct when a proxy is set), the names
        looked up with ``dnsServer`` when it is set."""
        c = self.connector
        host, port = self.cfg.server_addr, self.cfg.server_port
        resolve = c.resolver.resolve if c.resolver is not None else None
        if c.proxy is not None and c.proxy.scheme == "https":
            holder = Placeholder()
            try:
                tls, early = await open_via_https_proxy(c.proxy, host, port, holder, timeout=timeout, local_addr=local,
                                                        resolve=resolve)
            except ProxyDialError as exc:
                raise proxy_error(c.server, c.proxy.label, exc, timeout) from exc
            holder.early += early
            return tls, holder
        if c.proxy is not None:
            try:
                sock = await open_via_proxy(c.proxy, host, port, timeout=timeout, local_addr=local,
                                            resolve=resolve)
            except ProxyDialError as exc:
                raise proxy_error(c.server, c.proxy.label, exc, timeout) from exc
            try:
                return await loop.create_connection(Placeholder, sock=sock)
            except OSError as exc:
                sock.close()
                raise dial_error(c.server, exc, timeout) from exc
        try:
            async with asyncio.timeout(timeout):
                hosts = await resolve(host) if resolve is not None else [host]
                last: OSError | None = None
                for addr in hosts:  # the addresses in order, as Go's dialer (without a fallback delay)
                    try:
                        return await loop.create_connection(Placeholder, addr, port, local_addr=local)
                    except OSError as exc:
                        last = exc
                assert last is not None
                raise last
        except (OSError, TimeoutError) as exc:
            raise dial_error(c.server, exc, timeout) from exc


async def udp_host(dialer: Dialer) -> str:
    """Where a UDP transport (kcp, quic) sends: ``serverAddr``, looked up with ``dnsServer`` when it
    is set. A forward proxy cannot carry UDP: with one configured the dial is refused, never made
    directly (Go dials KCP at the proxy's address and QUIC around it)."""
    c = dialer.connector
    proto = dialer.cfg.transport.protocol
    if c.proxy is not None:
        raise ServerConnectError(
            f"transport.protocol = {proto!r} cannot go through the proxy {c.proxy.label} (it carries TCP only)",
            "use protocol tcp, websocket or wss with a proxy, or exempt frps with no_proxy")
    host = dialer.cfg.server_addr
    if c.resolver is None:
        return host
    try:
        async with asyncio.timeout(dialer.timeout):
            return (await c.resolver.resolve(host))[0]
    except (OSError, TimeoutError, IndexError) as exc:
        raise dial_error(c.server, exc if isinstance(exc, OSError | TimeoutError) else OSError(str(exc)),
                         dialer.timeout, "udp") from exc


DIALERS: Registry[type[Dialer]] = Registry("transport protocol")


def new_dialer(connector: Connector) -> Dialer:
    protocol = connector.cfg.transport.protocol
    cls = DIALERS.get(protocol)
    if cls is None:  # the config's Literal type refuses it first
        raise ValueError(f"unknown transport protocol {protocol!r}")
    return cls(connector)


@DIALERS.register("tcp")
class TCPDialer(Dialer):
    tcp_socket = True

    async def raw(self) -> tuple[asyncio.Transport, bytes]:
        return await self.tcp()


@DIALERS.register("kcp")
class KCPDialer(Dialer):
    async def raw(self) -> tuple[asyncio.Transport, bytes]:
        from ..net.kcp import dial_kcp

        cfg = self.cfg
        host = await udp_host(self)
        local = (cfg.transport.connect_server_local_ip, 0) if cfg.transport.connect_server_local_ip else None
        try:
            async with asyncio.timeout(self.timeout):
                conn = await dial_kcp(host, cfg.server_port, local_addr=local)
        except (OSError, TimeoutError) as exc:
            raise dial_error(self.connector.server, exc, self.timeout, "udp") from exc
        holder = Placeholder()
        conn.set_protocol(holder)
        return conn, b""


async def _websocket(dialer: Dialer, raw: asyncio.Transport, early: bytes, host: str) -> tuple[asyncio.Transport, bytes]:
    from ..net.websocket import WebSocketError, client_handshake

    try:
        conn = await client_handshake(raw, host, initial=early, timeout=dialer.timeout)
    except (OSError, EOFError, WebSocketError) as exc:
        raw.abort()
        c = dialer.connector
        raise ServerConnectError(
            f"websocket to {c.server.label}: {exc or type(exc).__name__}",
            f"is {c.server.port} frps's bindPort (frps serves GET /~!frp there)?") from exc
    holder = Placeholder()
    early_frames = bytes(conn.holder.early) if conn.holder is not None else b""
    conn.set_protocol(holder)
    return conn, early_frames


@DIALERS.register("websocket")
class WebsocketDialer(Dialer):
    """TCP, then the websocket; frp's TLS (if enabled) inside it (golib hook order)."""

    async def raw(self) -> tuple[asyncio.Transport, bytes]:
        from ..proto.addr import join_host_port

        raw, early = await self.tcp()
        return await _websocket(self, raw, early, join_host_port(self.cfg.server_addr, self.cfg.server_port))


@DIALERS.register("wss")
class WSSDialer(Dialer):
    """TCP, TLS (always, no 0x17 byte), then the websocket with the TLS server name as its host
    (Go passes ``tlsConfig.ServerName`` to the websocket hook)."""

    frp_tls = False

    async def raw(self) -> tuple[asyncio.Transport, bytes]:
        c = self.connector
        raw, early = await self.tcp()
        hostname = c.server_name
        app = Placeholder()
        tls = TLSTransport(raw, c.wss_ctx, app, server_side=False, server_hostname=server_name(hostname),
                           initial_data=early, handshake_timeout=self.timeout)
        try:
            async with asyncio.timeout(self.timeout + 1):
                await tls.handshake
        except (OSError, TimeoutError, EOFError, ValueError) as exc:
            raw.abort()
            raise tls_error(c.server, exc, self.timeout) from exc
        except BaseException:
            raw.abort()
            raise
        return await _websocket(self, tls, bytes(app.early), hostname)


@DIALERS.register("quic")
class QUICDialer(Dialer):
    """One QUIC connection (ALPN ``frp``) to ``serverAddr:serverPort``; each logical connection is
    a new bidirectional stream (Go: ``OpenStreamSync``)."""

    frp_tls = False

    def __init__(self, connector: Connector) -> None:
        super().__init__(connector)
        self.session: QuicSession | None = None

    async def _connect(self) -> QuicSession:
        from ..net.quic import dial_quic

        cfg = self.cfg
        c = self.connector
        q = cfg.transport.quic
        tls = cfg.transport.tls
        host = await udp_host(self)
        local = (cfg.transport.connect_server_local_ip, 0) if cfg.transport.connect_server_local_ip else None
        try:
            async with asyncio.timeout(self.timeout):
                return await dial_quic(
                    host, cfg.server_port, server_name=c.server_name or cfg.server_addr,
                    cert_file=tls.cert_file if tls.enable else "", key_file=tls.key_file if tls.enable else "",
                    ca_file=tls.trusted_ca_file if tls.enable else "", local_addr=local,
                    idle_timeout=q.max_idle_timeout, keepalive=q.keepalive_period,
                    max_incoming_streams=q.max_incoming_streams)
        except (OSError, TimeoutError, EOFError) as exc:
            raise dial_error(c.server, exc, self.timeout, "quic") from exc

    async def open(self) -> MsgConn | None:
        from ..net.msgconn import MsgConn

        if self.session is None or self.session.is_closed:
            self.session = await self._connect()
        stream = self.session.open_stream()
        conn = MsgConn(self.connector.wire_protocol)
        stream.set_protocol(conn)
        conn.connection_made(stream)
        return conn

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None
