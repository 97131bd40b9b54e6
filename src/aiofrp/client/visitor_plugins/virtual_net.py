"""``virtual_net`` visitor plugin: the way to one ``destinationIP`` of the virtual network leads
through this visitor (Go's ``pkg/plugin/visitor/virtual_net.go``).

On start it opens one connection through its stcp/xtcp visitor (to the provider frpc, whose proxy
has the ``virtual_net`` plugin) and registers a host route to ``destinationIP`` over it with the
controller: packets for that address leave the TUN device on this connection, framed, and what
comes back is written to the device. When the connection ends (the provider went away, the visitor
connection was refused) the route goes with it and a new connection is tried 10 s later, as Go's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ...config.plugin import VirtualNetVisitorPluginOptions
from ...log import XLog
from ...net.pipe import pipe
from ..vnet.controller import host_route
from . import VisitorPlugin, VisitorPluginContext, VisitorPluginError, register

log = logging.getLogger("aiofrp.client.visitor")

__all__ = ["VirtualNetVisitorPlugin"]

RECONNECT_DELAY = 10.0  # Go's reconnectDelay


@register("virtual_net")
class VirtualNetVisitorPlugin(VisitorPlugin):
    def __init__(self, context: VisitorPluginContext, cfg: VirtualNetVisitorPluginOptions) -> None:
        super().__init__(context, cfg)
        if not cfg.destination_ip:
            raise VisitorPluginError("destinationIP is required")
        try:
            self.routes = [host_route(cfg.destination_ip)]
        except ValueError:
            raise VisitorPluginError(f"invalid destination IP address [{cfg.destination_ip}]") from None
        self._task: asyncio.Task[None] | None = None
        self._end: asyncio.Transport | None = None  # the controller's end of the current connection
        self.xl = context.xl.on(log) if context.xl is not None else XLog(log, context.name)

    def start(self) -> None:
        vnet = self.context.vnet
        if vnet is None:
            return
        self.xl.info("starting VirtualNetPlugin for visitor [%s], attempting to register routes for %s",
                     self.context.name, self.routes[0])
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        vnet = self.context.vnet
        assert vnet is not None
        name = self.context.name
        loop = asyncio.get_running_loop()
        while True:
            closed: asyncio.Future[None] = loop.create_future()
            ours, theirs = pipe(loop)
            def ended(closed: asyncio.Future[None] = closed) -> None:
                if not closed.done():
                    closed.set_result(None)

            conn = vnet.register_client_route(name, self.routes, ended)
            ours.set_protocol(conn)
            conn.connection_made(ours)
            self._end = ours
            self.xl.info("successfully registered client route for visitor [%s]", name)
            self.context.handle_conn(theirs)  # served as a local user's connection to the visitor
            await closed
            self._end = None
            self.xl.info("detected connection closed for visitor [%s].", name)
            self.xl.info("waiting %.0fs before attempting reconnection for visitor [%s]...", RECONNECT_DELAY, name)
            await asyncio.sleep(RECONNECT_DELAY)
            self.xl.info("re-establishing virtual connection for visitor [%s]...", name)

    def close(self) -> None:
        self.xl.info("closing VirtualNetPlugin for visitor [%s]", self.context.name)
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self.context.vnet is not None:
            self.context.vnet.unregister_client_route(self.context.name)
        if self._end is not None:
            with contextlib.suppress(RuntimeError):
                self._end.close()
            self._end = None

