"""tcp, http, https, tcpmux and stcp: frpc treats them alike (Go's ``general_tcp.go``). Each work
connection goes to the local service (or the plugin), with the PROXY protocol header if
configured, relayed under the proxy's bandwidth limit."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...config.proxy import ProxyBaseConfig
from . import register
from .base import Proxy

if TYPE_CHECKING:
    from ...net.msgconn import MsgConn
    from ...proto import msg as m


@register("tcp", "http", "https", "tcpmux", "stcp")
class GeneralTCPProxy(Proxy[ProxyBaseConfig]):
    async def handle_work_conn(self, conn: MsgConn, start: m.StartWorkConn) -> None:
        await self.handle_tcp_work_conn(conn, start, self.client.key)
