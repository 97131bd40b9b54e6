"""``virtual_net``: a proxy's work connections carry the virtual network's packets (Go's
``pkg/plugin/client/virtual_net.go``).

Usually on an stcp (or xtcp) proxy: each visitor whose ``virtual_net`` visitor plugin targets this
frpc's address opens one connection, and frps hands it here as a work connection. Its packets go
to the TUN device, and the controller sends the answers to their source addresses back over it
(client/vnet/controller.py). The proxy's ``useEncryption``/``useCompression`` apply as to any work
connection. Needs ``virtualNet.address`` (and its feature gate), which the config check demands.
"""

from __future__ import annotations

import asyncio
import logging

from ...config.plugin import VirtualNetPluginOptions
from ...net.pipe import pipe
from ...net.relay import Relay
from . import register
from .base import ClientPlugin, WorkConn

log = logging.getLogger("aiofrp.client.plugin")


@register("virtual_net")
class VirtualNetPlugin(ClientPlugin[VirtualNetPluginOptions]):
    def __init__(self, proxy_name: str, cfg: VirtualNetPluginOptions) -> None:
        super().__init__(proxy_name, cfg)
        self.relays: set[Relay] = set()

    async def handle(self, conn: WorkConn) -> None:
        controller = self.context.vnet
        if controller is None:  # no virtualNet.address (said at start): nothing to carry
            log.debug("[%s] virtual_net: no virtual network on this frpc, connection closed", self.proxy_name)
            conn.close()
            return
        ours, theirs = pipe(asyncio.get_running_loop())
        vconn = controller.server_conn()
        theirs.set_protocol(vconn)
        vconn.connection_made(theirs)
        relay = conn.relay(ours)  # the work connection's codecs between frps and the controller
        if not relay.done.done():
            self.relays.add(relay)
            relay.done.add_done_callback(lambda _f: self.relays.discard(relay))

    def close(self) -> None:
        for relay in list(self.relays):
            relay.close()
        self.relays.clear()
