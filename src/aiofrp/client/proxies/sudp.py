"""sudp provider: every work connection is one visitor's tunnel carrying UDPPacket messages; as
for udp, each user address gets its own socket toward the local service (frp §5.9). Tunnels
are independent: a new one does not replace the others."""

from __future__ import annotations

import logging

from ...net.msgconn import MsgConn
from ...proto import msg as m
from .base import ProxyWrapper, register
from .udp import UDPSession, local_udp_addr

log = logging.getLogger("aiofrp.client.proxy.sudp")


@register("sudp")
async def handle_sudp_work_conn(pw: ProxyWrapper, conn: MsgConn, start: m.StartWorkConn) -> None:
    local = await local_udp_addr(pw, conn)
    if local is None:
        return
    log.info("[%s] incoming a new work connection for sudp proxy", pw.wire_name)
    UDPSession(pw, conn, local)
