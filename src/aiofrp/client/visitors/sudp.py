"""sudp visitor: a local UDP socket; all datagrams share one visitor connection to frps carrying
UDPPacket messages, dialled on the first datagram and re-dialled after it breaks (frp §5.9).

As in Go, datagrams that arrive while no tunnel is up wait in a bounded queue; if the tunnel
cannot be set up (e.g. frps refuses it) the datagram that triggered the dial is dropped and
the next one dials again. Datagrams that arrive before frpc has logged in wait for the login
(up to 10 s, see visitors/base.py) instead of being dropped.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ...config.visitor import SUDPVisitorConfig
from ...net.listen import listen_udp
from ...net.udp import QUEUE_FRAMES, PacketConn, UserSocket
from ...proto.addr import join_host_port
from . import register
from .base import Visitor
from .stcp import VisitorConnError, open_visitor_conn, target_name

if TYPE_CHECKING:
    from .base import VisitorHost


SockAddr = tuple[str, int] | tuple[str, int, int, int]  # a user's address, as asyncio gives it

READ_TIMEOUT = 60.0  # the provider pings every 30 s


@register("sudp")
class SUDPVisitor(Visitor[SUDPVisitorConfig]):
    def __init__(self, client: VisitorHost, cfg: SUDPVisitorConfig) -> None:
        super().__init__(client, cfg)
        self.target = target_name(client, cfg)
        self.sock: UserSocket | None = None
        self.tunnel: PacketConn | None = None
        self._pending: list[tuple[bytes, SockAddr]] = []
        self._dialer: asyncio.Task[None] | None = None
        self._closed = False

    async def start(self) -> None:
        cfg = self.cfg
        if cfg.bind_port > 0:
            size = self.client.cfg.udp_packet_size or 1500
            sock = UserSocket(self._from_user, size)
            await listen_udp(lambda: sock, cfg.bind_addr or "127.0.0.1", cfg.bind_port)
            self.sock = sock
            self.xl.info("sudp start to work, listen on %s", join_host_port(cfg.bind_addr, cfg.bind_port))

    def _from_user(self, data: bytes, addr: SockAddr) -> None:
        tunnel = self.tunnel
        if tunnel is not None and not tunnel.is_closed:
            tunnel.send_datagram(data, addr)
            return
        if len(self._pending) < QUEUE_FRAMES:
            self._pending.append((data, addr))
        self._ensure_dialer()

    def _ensure_dialer(self) -> None:
        if self._dialer is None and self._pending and not self._closed:
            self._dialer = asyncio.get_running_loop().create_task(self._dial())

    async def _dial(self) -> None:
        try:
            while self._pending and not self._closed:
                try:  # waits for frpc's login (up to HOLD_TIMEOUT) while the datagrams queue up
                    conn, encode, decode = await open_visitor_conn(self)
                except VisitorConnError as exc:
                    if self.control is None:  # still not logged in: what waited is stale now
                        self.xl.warning("%s, dropping %d datagram(s)", exc, len(self._pending))
                        self._pending.clear()
                        return
                    # Go's words (client/visitor/sudp.go); its stcp visitor logs the bare error
                    self.xl.warning("newVisitorConn to frps error: %s, try to reconnect", exc)
                    if self._pending:
                        self._pending.pop(0)  # Go drops the datagram whose dial failed
                    continue
                if self._closed:
                    conn.close()
                    return
                tunnel = PacketConn(
                    self.xl, self._from_server, encode=encode, decode=decode,
                    read_timeout=READ_TIMEOUT, on_close=self._tunnel_closed, v2=conn.wire_protocol == "v2",
                )
                pending, self._pending = self._pending, []
                for data, addr in pending:
                    tunnel.send_datagram(data, addr)
                self.tunnel = tunnel
                ct, cdata, ceof = conn.detach()
                tunnel.attach(ct, cdata, ceof)
                self.xl.debug("sudp tunnel to [%s] is up", self.target)
                return
        finally:
            self._dialer = None

    def _from_server(self, data: bytes, addr: SockAddr) -> None:
        if self.sock is not None:
            self.sock.sendto(data, addr)

    def _tunnel_closed(self, tunnel: PacketConn) -> None:
        if self.tunnel is tunnel:
            self.tunnel = None
            if not self._closed:
                self.xl.info("sudp worker is closed")
                self._ensure_dialer()

    async def close(self) -> None:
        self._closed = True
        if self._dialer is not None:
            self._dialer.cancel()
        if self.tunnel is not None:
            self.tunnel.close()
        if self.sock is not None:
            self.sock.close()
            self.sock = None
