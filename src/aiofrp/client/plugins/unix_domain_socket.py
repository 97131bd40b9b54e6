"""``unix_domain_socket``: relay each work connection to a unix socket (Go's
``pkg/plugin/client/unix_domain_socket.go``), e.g. the Docker API at ``/var/run/docker.sock``.

The PROXY protocol header (``transport.proxyProtocolVersion``) goes first, as for a local dial.
A socket that cannot be dialed (missing, refusing) is logged in Go's words and the user's
connection closed (Go's plugin returns without closing it: it stays open, unserved; README).
"""

from __future__ import annotations

import asyncio
import logging

from ...config.plugin import UnixDomainSocketPluginOptions
from ...net.relay import PendingConn
from . import register
from .base import ClientPlugin, WorkConn

log = logging.getLogger("aiofrp.client.plugin")

DIAL_TIMEOUT = 10.0


@register("unix_domain_socket")
class UnixDomainSocketPlugin(ClientPlugin[UnixDomainSocketPluginOptions]):
    async def handle(self, conn: WorkConn) -> None:
        path = self.cfg.unix_path
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(DIAL_TIMEOUT):
                local, lp = await loop.create_unix_connection(PendingConn, path)
        except (OSError, TimeoutError) as exc:
            from ...net.dialerr import dial_error_text

            self.xlog(log).warning("dial to uds %s error: %s", path, dial_error_text(path, exc, "unix"))
            conn.close()
            return
        if conn.proxy_protocol_header is not None:
            local.write(conn.proxy_protocol_header)
        conn.relay(local, lp.take(), lp.eof)
