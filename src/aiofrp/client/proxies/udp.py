"""udp: the work connection carries UDPPacket messages; each user address gets its own socket
toward the local service (frp §5.7). A new work connection replaces the previous one."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ...config.proxy import ProxyBaseConfig, UDPProxyConfig
from ...net.relay import work_conn_codecs
from ...net.udp import LocalForwarder, PacketConn, resolve_udp
from ...proto.addr import fmt_addr, join_host_port
from . import register
from .base import C_co, Proxy

if TYPE_CHECKING:
    from ...net.msgconn import MsgConn
    from ...proto import msg as m
    from .base import ProxyHost

SockAddr = tuple[str, int] | tuple[str, int, int, int]  # a user's address, as asyncio gives it

log = logging.getLogger("aiofrp.client.proxy.udp")

PING_INTERVAL = 30.0


class UDPSession:
    """One udp/sudp work connection and the local sockets of the users it carries."""

    def __init__(self, proxy: Proxy[ProxyBaseConfig], conn: MsgConn, local: tuple[str, int]) -> None:
        cfg = proxy.cfg
        size = proxy.client.cfg.udp_packet_size or 1500
        key = proxy.client.key if cfg.transport.use_encryption else None
        encode, decode = work_conn_codecs(key, cfg.transport.use_compression)
        self.stream = PacketConn(
            proxy.xl, self._from_server, encode=encode, decode=decode,
            ping_interval=PING_INTERVAL, on_close=self._closed, v2=conn.wire_protocol == "v2",
            limiter=proxy.limiter, limit_wire=True,  # bandwidthLimitMode "client": as Go's frpc, the wire bytes
        )
        self.forwarder = LocalForwarder(proxy.xl, local, size, self.stream.send_datagram,
                                        proxy_protocol=cfg.transport.proxy_protocol_version)
        wt, wdata, weof = conn.detach()
        self.stream.attach(wt, wdata, weof)

    def _from_server(self, data: bytes, addr: SockAddr) -> None:
        self.forwarder.deliver(data, addr)

    def _closed(self, _stream: PacketConn) -> None:
        self.forwarder.close()

    def close(self) -> None:
        self.stream.close()


class UDPBaseProxy(Proxy[C_co]):
    """What udp and sudp share: the local service's address, resolved per work connection."""

    async def local_udp_addr(self, conn: MsgConn) -> tuple[str, int] | None:
        """The local service's address (resolved); closes ``conn`` and returns None on failure."""
        cfg = self.cfg
        try:
            return await resolve_udp(cfg.local_ip, cfg.local_port)
        except OSError as exc:
            self.xl.on(log).warning("resolve local udp address %s error: %s",
                                    join_host_port(cfg.local_ip, cfg.local_port), exc)
            conn.close()
            return None


@register("udp")
class UDPProxy(UDPBaseProxy[UDPProxyConfig]):
    def __init__(self, client: ProxyHost, cfg: UDPProxyConfig) -> None:
        super().__init__(client, cfg)
        self.session: UDPSession | None = None  # the current work connection (Go's workConn)

    async def handle_work_conn(self, conn: MsgConn, start: m.StartWorkConn) -> None:
        local = await self.local_udp_addr(conn)
        if local is None:
            return
        self.xl.on(log).info("incoming a new work connection for udp proxy, %s", fmt_addr(conn.peername()))
        if self.session is not None:
            self.session.close()
        self.session = UDPSession(self, conn, local)

    def close(self) -> None:
        super().close()
        if self.session is not None:
            self.session.close()
            self.session = None
