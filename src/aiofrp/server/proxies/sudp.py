"""sudp proxy: on frps an stcp proxy (visitor checks, work connection, byte copy); the UDPPacket
messages inside are spoken by the visitor frpc and the provider frpc (frp §5.9). When the two
clients frame messages differently (one on wire protocol v1, the other on v2), frps parses and
re-frames them (:class:`~aiofrp.net.udp.PacketBridge`), as Go's frps does since 0.69.1."""

from __future__ import annotations

import asyncio
import logging

from ...net.listen import local_addr, peer_addr
from ...net.msgconn import MsgConn
from ...net.relay import Codec
from ...net.udp import PacketBridge
from . import register
from .stcp import STCPProxy

log = logging.getLogger("aiofrp.server.proxy.sudp")


@register("sudp")
class SUDPProxy(STCPProxy):
    """Secret udp proxy."""

    def join_visitor_transport(
        self, vt: asyncio.Transport, vdata: bytes, veof: bool, work: MsgConn,
        vis_encode: Codec | None, vis_decode: Codec | None, *, visitor_v2: bool,
    ) -> None:
        work_v2 = work.wire_protocol == "v2"
        if work_v2 == visitor_v2:
            super().join_visitor_transport(vt, vdata, veof, work, vis_encode, vis_decode, visitor_v2=visitor_v2)
            return
        self.xl.on(log).info("bridge mixed SUDP payload codecs, proxy wireProtocol [%s], visitor wireProtocol [%s]",
                             "v2" if work_v2 else "v1", "v2" if visitor_v2 else "v1")
        wc = self.start_work_conn(work, peer_addr(vt), local_addr(vt))
        bridge = PacketBridge(
            self.xl, (vt, vdata, veof), (vis_encode, vis_decode), visitor_v2,
            (wc.transport, wc.data, wc.eof), (wc.encode, wc.decode), work_v2,
            limiter=self.limiter, on_close=self.relay_closed,
        )
        self.relay_opened(bridge)
