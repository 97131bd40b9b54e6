"""stcp proxy: no listener; visitor connections that know the secret key (and whose user is
allowed) are paired with a work connection of the provider (frp §3.2, §5.9).

Byte path: user <-> visitor frpc <-(sk layer)-> frps <-(token layer)-> provider frpc <-> local.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ...net.listen import local_addr, peer_addr
from ...net.msgconn import MsgConn
from ...net.mux import fmt_addr
from ...net.relay import Codec, Relay, work_conn_codecs
from ...proto import msg as m
from ...proto.crypto import derive_key, verify_auth_key
from . import register
from .base import ServerProxy

if TYPE_CHECKING:
    from ..control import Control

log = logging.getLogger("aiofrp.server.proxy.stcp")


def chain(first: Codec | None, second: Codec | None) -> Codec | None:
    """``second(first(data))``, skipping absent codecs."""
    if first is None:
        return second
    if second is None:
        return first

    def both(data: bytes) -> bytes:
        out = first(data)
        return second(out) if out else out

    return both


@register("stcp")
class STCPProxy(ServerProxy):
    """Secret tcp proxy; :class:`~.sudp.SUDPProxy` is the same on frps (frpc speaks UDPPacket inside)."""

    def __init__(self, control: Control, req: m.NewProxy) -> None:
        super().__init__(control, req)
        self.sk: str = req.sk
        # empty allowUsers: only the owner's own user
        self.allow_users: list[str] = list(req.allow_users) or [control.user]

    async def run(self) -> None:
        log.info("[%s] %s proxy custom listen success", self.name, self.type)

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
        await self.join(conn, encode, decode)

    async def join(self, conn: MsgConn, vis_encode: Codec | None, vis_decode: Codec | None) -> None:
        """Relay an accepted visitor connection through a fresh work connection of the provider."""
        try:
            work = await self.control.get_work_conn()
        except (TimeoutError, ConnectionError) as exc:
            log.warning("[%s] failed to get work connection: %s", self.name, exc)
            conn.abort()
            return
        vt = conn.transport
        if self.closed or vt is None or vt.is_closing():
            work.close()
            conn.abort()
            return
        src = peer_addr(vt) or ("", 0)
        dst = local_addr(vt) or ("", 0)
        work.write_msg(
            m.StartWorkConn(
                proxy_name=self.name, src_addr=src[0], src_port=src[1], dst_addr=dst[0], dst_port=dst[1]
            )
        )
        vt, vdata, veof = conn.detach()
        wt, wdata, weof = work.detach()
        key = self.server.key if self.req.use_encryption else None
        work_encode, work_decode = work_conn_codecs(key, self.req.use_compression)
        relay = Relay(
            vt, wt, a_to_b=chain(vis_decode, work_encode), b_to_a=chain(work_decode, vis_encode),
            a_data=vdata, b_data=wdata, a_eof=veof, b_eof=weof, name=self.name, on_close=self.relays.discard,
            limiter=self.limiter,
        )
        if not relay.done.done():
            self.relays.add(relay)
        log.debug("[%s] join visitor connection from %s", self.name, fmt_addr(src))
