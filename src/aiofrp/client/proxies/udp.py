"""udp: the work connection carries UDPPacket messages; each user address gets its own socket
toward the local service (frp §5.7). A new work connection replaces the previous one."""

from __future__ import annotations

import logging
import weakref
from typing import Any

from ...net.msgconn import MsgConn
from ...net.relay import work_conn_codecs
from ...net.udp import LocalForwarder, PacketConn, resolve_udp
from ...proto import msg as m
from ...proto.addr import join_host_port
from .base import ProxyWrapper, register

log = logging.getLogger("aiofrp.client.proxy.udp")

PING_INTERVAL = 30.0

_current: weakref.WeakKeyDictionary[ProxyWrapper, UDPSession] = weakref.WeakKeyDictionary()


class UDPSession:
    """One udp/sudp work connection and the local sockets of the users it carries."""

    def __init__(self, pw: ProxyWrapper, conn: MsgConn, local: tuple[str, int]) -> None:
        cfg = pw.cfg
        size = getattr(pw.client.cfg, "udp_packet_size", 1500) or 1500
        key = pw.client.key if cfg.transport.use_encryption else None
        encode, decode = work_conn_codecs(key, cfg.transport.use_compression)
        self.stream = PacketConn(
            pw.wire_name, self._from_server, encode=encode, decode=decode,
            ping_interval=PING_INTERVAL, on_close=self._closed,
        )
        self.forwarder = LocalForwarder(pw.wire_name, local, size, self.stream.send_datagram,
                                        proxy_protocol=cfg.transport.proxy_protocol_version)
        wt, wdata, weof = conn.detach()
        self.stream.attach(wt, wdata, weof)

    def _from_server(self, data: bytes, addr: Any) -> None:
        self.forwarder.deliver(data, addr)

    def _closed(self, _stream: PacketConn) -> None:
        self.forwarder.close()

    def close(self) -> None:
        self.stream.close()


async def local_udp_addr(pw: ProxyWrapper, conn: MsgConn) -> tuple[str, int] | None:
    """The local service's address (resolved); closes ``conn`` and returns None on failure."""
    cfg = pw.cfg
    try:
        return await resolve_udp(cfg.local_ip, cfg.local_port)
    except OSError as exc:
        log.warning("[%s] resolve local udp address %s error: %s", pw.wire_name, join_host_port(cfg.local_ip, cfg.local_port), exc)
        conn.close()
        return None


@register("udp")
async def handle_udp_work_conn(pw: ProxyWrapper, conn: MsgConn, start: m.StartWorkConn) -> None:
    local = await local_udp_addr(pw, conn)
    if local is None:
        return
    log.info("[%s] incoming a new work connection for udp proxy", pw.wire_name)
    old = _current.pop(pw, None)
    if old is not None:
        old.close()
    _current[pw] = UDPSession(pw, conn, local)
