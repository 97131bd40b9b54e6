"""tcp proxy: a listener on ``proxyBindAddr:remotePort``; every user connection gets a work connection.

Members of a load-balancing group share one listener instead (server/group.py)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from ...net.listen import listen_tcp
from ..errors import ProxyError
from . import register
from .base import ServerProxy, UserConn

if TYPE_CHECKING:
    from ..group import TCPGroup

log = logging.getLogger("aiofrp.server.proxy.tcp")


@register("tcp")
class TCPProxy(ServerProxy):
    used_ports = 1
    listener: asyncio.Server | None = None
    port = 0
    group: TCPGroup | None = None

    def new_user_conn(self) -> UserConn:
        """The protocol of a user connection (this proxy's listener, or its group's)."""
        return UserConn(self)

    async def run(self) -> None:
        ports = self.server.ports
        addr = self.server.proxy_bind_addr
        requested = self.req.remote_port
        if self.req.group:
            group = await self.server.groups.listen_tcp(self)
            self.group = group
            self.port = group.real_port
            self.remote_addr = f":{self.port}"
            return
        if self.server.quick and requested == self.server.bind_port:
            if self.server.quick_proxy is not None:
                raise ProxyError("port already used")
            self.server.quick_proxy = self
            self.port = requested
            self.remote_addr = f":{requested}"
            self.xl.on(log).info("quick mode: public connections on the bind port go to this proxy")
            return
        last_err: OSError | None = None
        for port in ports.candidates("tcp", self.name, requested):
            try:
                self.listener = await listen_tcp(self.new_user_conn, addr, port)
            except OSError as exc:
                last_err = exc
                continue
            self.port = self.listener.sockets[0].getsockname()[1]
            ports.mark_used("tcp", self.name, self.port)
            self.remote_addr = f":{self.port}"
            self.xl.on(log).info("tcp proxy listen port [%d]", self.port)
            return
        if requested:
            # frpc gets Go's words (server/ports: ErrPortUnAvailable), frps's log the port and why
            self.xl.on(log).warning("tcp port %d unavailable: %s", requested,
                                    (last_err.strerror or last_err) if last_err else "in use")
            raise ProxyError("port unavailable")
        raise ProxyError(f"no available port in frps's allowPorts [{ports.describe()}]")

    def close(self) -> None:
        super().close()
        if self.group is not None:
            self.server.groups.leave_tcp(self, self.group)
            return
        if self.server.quick_proxy is self:
            self.server.quick_proxy = None
        if self.listener is not None:
            self.listener.close()
            self.listener = None
            self.server.ports.release("tcp", self.name, self.port)
