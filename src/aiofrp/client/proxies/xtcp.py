"""xtcp provider: a work connection brings a NatHoleSid; punch a hole to the visitor, then serve
its tunnel, every stream going to the local service like a tcp work connection (frp §5.10
step 5-7)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from ...config.proxy import XTCPProxyConfig
from ...net.relay import PendingConn
from ...proto import msg as m
from ...proto.addr import fmt_addr
from ...proto.crypto import derive_key
from ...proto.errors import ProtocolError
from .. import tunnel
from ..nathole import NatHoleError, PrepareResult, open_hole
from . import register
from .base import Proxy

if TYPE_CHECKING:
    from ...net.msgconn import MsgConn

log = logging.getLogger("aiofrp.client.proxy.xtcp")

SID_TIMEOUT = 10.0


class TunnelStream(PendingConn):
    """A stream of the tunnel, held (reading paused after the first chunk) until it is relayed."""

    def detach(self) -> tuple[asyncio.Transport, bytes, bool]:
        assert self.transport is not None
        return self.transport, self.take(), self.eof

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()


@register("xtcp")
class XTCPProxy(Proxy[XTCPProxyConfig]):
    async def handle_work_conn(self, conn: MsgConn, start: m.StartWorkConn) -> None:
        name = self.name
        xl = self.xl.on(log)
        try:
            sid_msg = await conn.read_msg(timeout=SID_TIMEOUT)
        except (TimeoutError, ProtocolError, EOFError, OSError) as exc:
            xl.error("xtcp read from workConn error: %s", exc or type(exc).__name__)
            conn.close()
            return
        conn.close()
        if not isinstance(sid_msg, m.NatHoleSid):
            xl.error("xtcp read from workConn error: unexpected %s", type(sid_msg).__name__)
            return
        control = self.control
        if control is None:
            return
        cfg = self.cfg
        sid = sid_msg.sid

        def request(tid: str, prep: PrepareResult) -> m.NatHoleClient:
            return m.NatHoleClient(transaction_id=tid, proxy_name=name, sid=sid,
                                   mapped_addrs=prep.addrs, assisted_addrs=prep.assisted_addrs)

        client_cfg = self.client.cfg
        try:
            hole = await open_hole(control, xl, request, stun_server=client_cfg.nat_hole_stun_server,
                                   nat=cfg.nat_traversal, secret_key=cfg.secret_key, report=True)
        except NatHoleError:
            return  # logged
        key = derive_key(cfg.secret_key) if cfg.transport.use_encryption else None
        tun: tunnel.Tunnel | None = None
        try:
            tun = tunnel.serve(hole.sock, hole.raddr, hole.resp.protocol or "quic", client_cfg.transport.quic,
                               lambda stream: self._on_stream(stream, start, key), xl)
            await tun.closed
            xl.debug("tunnel with %s closed", fmt_addr(hole.raddr))
        finally:
            if tun is not None:
                tun.close()
            hole.sock.close()

    def _on_stream(self, stream: asyncio.Transport, start: m.StartWorkConn, key: bytes | None) -> None:
        held = TunnelStream()
        stream.set_protocol(held)
        held.connection_made(stream)
        if self.control is None:
            stream.abort()
            return
        self.spawn(self.handle_tcp_work_conn(held, start, key))
