"""udp proxy: a UDP socket on ``proxyBindAddr:remotePort``; all datagrams travel as ``UDPPacket``
messages over one work connection at a time, replaced whenever it dies (frp §5.7)."""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Any

from ...net.listen import listen_udp
from ...net.udp import QUEUE_FRAMES, PacketConn, UserSocket
from ..errors import ProxyError
from . import register
from .base import ServerProxy

log = logging.getLogger("aiofrp.server.proxy.udp")

FIRST_WORK_CONN_DELAY = 0.5  # Go: let NewProxyResp reach frpc before the first StartWorkConn
WORK_CONN_RETRY = 1.0
READ_TIMEOUT = 60.0  # frpc pings every 30 s; frps itself never pings (frpc would misread it)


def _same(sock: UserSocket) -> UserSocket:
    return sock


@register("udp")
class UDPProxy(ServerProxy):
    used_ports = 1
    port = 0
    sock: UserSocket | None = None
    transport: asyncio.DatagramTransport | None = None
    stream: PacketConn | None = None
    _task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        ports = self.server.ports
        addr = self.server.proxy_bind_addr
        requested = self.req.remote_port
        size = self.server.cfg.udp_packet_size or 1500
        self._pending: list[tuple[bytes, Any]] = []  # datagrams waiting for a work connection
        last_err: OSError | None = None
        try:
            candidates = list(ports.candidates("udp", self.name, requested))
        except ProxyError as exc:  # Go's udp proxy wraps every refusal of its port manager
            raise ProxyError(f"acquire port {requested} error: {exc}") from None
        for port in candidates:
            sock = UserSocket(self._from_user, size)
            try:
                transport, _ = await listen_udp(partial(_same, sock), addr, port)
            except OSError as exc:
                last_err = exc
                continue
            self.sock, self.transport = sock, transport
            self.port = transport.get_extra_info("sockname")[1]
            ports.mark_used("udp", self.name, self.port)
            self.remote_addr = f":{self.port}"
            self.xl.on(log).info("udp proxy listen port [%d]", self.port)
            self._task = self.server.spawn(self._work_conn_loop())
            return
        if requested:
            # frpc gets Go's words (server/proxy/udp.go wraps ports' ErrPortUnAvailable), frps's log why
            self.xl.on(log).warning("udp port %d unavailable: %s", requested,
                                    (last_err.strerror or last_err) if last_err else "in use")
            raise ProxyError(f"acquire port {requested} error: port unavailable")
        raise ProxyError(f"acquire port 0 error: no available port in frps's allowPorts [{ports.describe()}]")

    async def _work_conn_loop(self) -> None:
        await asyncio.sleep(FIRST_WORK_CONN_DELAY)
        while not self.closed:
            try:
                work = await self.control.get_work_conn()
            except (TimeoutError, ConnectionError) as exc:
                if self.closed or isinstance(exc, ConnectionError):  # ConnectionError: the control is gone
                    return
                self.xl.on(log).warning("failed to get work connection: %s", exc)
                await asyncio.sleep(WORK_CONN_RETRY)
                continue
            if self.closed:
                work.close()
                return
            v2 = work.wire_protocol == "v2"
            wc = self.start_work_conn(work)
            stream = PacketConn(self.xl, self._from_client, encode=wc.encode, decode=wc.decode,
                                read_timeout=READ_TIMEOUT, v2=v2, limiter=self.limiter)
            pending, self._pending = self._pending, []
            for data, addr in pending:
                stream.send_datagram(data, addr)
            self.stream = stream
            stream.attach(wc.transport, wc.data, wc.eof)
            self.xl.on(log).debug("udp work connection ready")
            await stream.closed
            if self.stream is stream:
                self.stream = None
            if not self.closed:
                self.xl.on(log).info("udp work connection closed, getting a new one")

    nin = 0  # datagram bytes from users / to users (Go counts UDP traffic per datagram)
    nout = 0
    datagram = True

    def live_traffic(self) -> tuple[int, int]:
        return self.nin, self.nout

    def unreported_traffic(self) -> tuple[int, int]:
        return self.nin, self.nout

    def _from_user(self, data: bytes, addr: Any) -> None:
        self.nin += len(data)
        stream = self.stream
        if stream is not None and not stream.is_closed:
            stream.send_datagram(data, addr)
        elif len(self._pending) < QUEUE_FRAMES and not self.closed:
            self._pending.append((data, addr))

    def _from_client(self, data: bytes, addr: Any) -> None:
        self.nout += len(data)
        if self.sock is not None:
            self.sock.sendto(data, addr)

    def close(self) -> None:
        super().close()
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self.stream is not None:
            self.stream.close()
            self.stream = None
        if self.transport is not None:
            self.transport.close()
            self.transport = None
            self.sock = None
            self.server.ports.release("udp", self.name, self.port)
