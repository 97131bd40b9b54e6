"""stcp proxy: no listener; visitor connections that know the secret key (and whose user is
allowed) are paired with a work connection of the provider (frp §3.2, §5.9).

Byte path: user <-> visitor frpc <-(sk layer)-> frps <-(token layer)-> provider frpc <-> local.
"""

from __future__ import annotations

import asyncio
import logging

from ...net.msgconn import MsgConn
from ...net.relay import Codec, work_conn_codecs
from ...proto import msg as m
from ...proto.crypto import derive_key, verify_auth_key
from . import register
from .base import ProxyControl, ServerProxy

log = logging.getLogger("aiofrp.server.proxy.stcp")


@register("stcp")
class STCPProxy(ServerProxy):
    """Secret tcp proxy; :class:`~.sudp.SUDPProxy` is the same on frps (frpc speaks UDPPacket inside)."""

    takes_visitors = True

    def __init__(self, control: ProxyControl, req: m.NewProxy) -> None:
        super().__init__(control, req)
        self.sk: str = req.sk
        # empty allowUsers: only the owner's own user
        self.allow_users: list[str] = list(req.allow_users) or [control.user]

    async def run(self) -> None:
        self.xl.on(log).info("%s proxy custom listen success", self.type)

    def check_visitor(self, msg: m.NewVisitorConn) -> str:
        """Why a NewVisitorConn may not use this proxy ("" if it may)."""
        user = self.server.visitor_user(msg.run_id)
        if user is None:
            return f"no client control found for run id [{msg.run_id}]"
        if not verify_auth_key(self.sk, msg.timestamp, msg.sign_key):
            return f"visitor connection of [{self.name}] auth failed"
        if user not in self.allow_users and "*" not in self.allow_users:
            return f"visitor connection of [{self.name}] user [{user}] not allowed"
        return ""

    async def handle_visitor_conn(self, conn: MsgConn, msg: m.NewVisitorConn) -> None:
        """Serve a visitor connection that passed :meth:`check_visitor` (Server.handle_visitor_conn)."""
        conn.write_msg(m.NewVisitorConnResp(proxy_name=msg.proxy_name))
        encode, decode = work_conn_codecs(derive_key(self.sk) if msg.use_encryption else None, msg.use_compression)
        await self.join_visitor(conn, encode, decode)

    async def join_visitor(self, conn: MsgConn, vis_encode: Codec | None, vis_decode: Codec | None) -> None:
        """Relay an accepted visitor connection through a fresh work connection of the provider."""
        if conn.transport is not None:
            self.accepted(conn.transport)
        if conn.transport is None or not await self.allow_user_conn(conn.transport):
            conn.abort()
            return
        work = await self.get_work_conn()
        if work is None:
            conn.abort()
            return
        vt = conn.transport
        if self.closed or vt is None or vt.is_closing():
            work.close()
            conn.abort()
            return
        visitor_v2 = conn.wire_protocol == "v2"
        vt, vdata, veof = conn.detach()
        self.join_visitor_transport(vt, vdata, veof, work, vis_encode, vis_decode, visitor_v2=visitor_v2)

    def join_visitor_transport(
        self, vt: asyncio.Transport, vdata: bytes, veof: bool, work: MsgConn,
        vis_encode: Codec | None, vis_decode: Codec | None, *, visitor_v2: bool,
    ) -> None:
        """Join a visitor's connection (taken over, with the bytes read behind its message) and a
        work connection: the bytes pass as they are (sudp overrides this for mixed framings)."""
        self.join(vt, vdata, veof, work, user_decode=vis_decode, user_encode=vis_encode)
