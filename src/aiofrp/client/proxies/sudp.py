"""sudp provider: every work connection is one visitor's tunnel carrying UDPPacket messages; as
for udp, each user address gets its own socket toward the local service (frp §5.9). Tunnels
are independent: a new one does not replace the others."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ...config.proxy import SUDPProxyConfig
from ...proto.addr import fmt_addr
from . import register
from .udp import UDPBaseProxy, UDPSession

if TYPE_CHECKING:
    from ...net.msgconn import MsgConn
    from ...proto import msg as m
    from .base import ProxyHost

log = logging.getLogger("aiofrp.client.proxy.sudp")


@register("sudp")
class SUDPProxy(UDPBaseProxy[SUDPProxyConfig]):
    def __init__(self, client: ProxyHost, cfg: SUDPProxyConfig) -> None:
        super().__init__(client, cfg)
        self.sessions: set[UDPSession] = set()  # one per visitor tunnel

    async def handle_work_conn(self, conn: MsgConn, start: m.StartWorkConn) -> None:
        local = await self.local_udp_addr(conn)
        if local is None:
            return
        self.xl.on(log).info("incoming a new work connection for sudp proxy, %s", fmt_addr(conn.peername()))
        session = UDPSession(self, conn, local)
        if not session.stream.closed.done():
            self.sessions.add(session)
            session.stream.closed.add_done_callback(lambda _: self.sessions.discard(session))

    def close(self) -> None:
        super().close()
        for session in list(self.sessions):
            session.close()
        self.sessions.clear()
