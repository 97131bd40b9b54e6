"""``tls2raw``: terminate TLS on each work connection and relay the plaintext to ``localAddr``
(Go's ``pkg/plugin/client/tls2raw.go``), typically behind an ``https`` proxy: frps routes by SNI,
frpc holds the certificate, the local service speaks plain TCP.

The certificate is ``crtPath``/``keyPath`` when both are set; otherwise a self-signed one is made
when the proxy starts, as Go does (``transport.NewServerTLSConfig``; ours is ECDSA P-256 where Go's
is RSA-2048, see ``net/tls.py: self_signed_pair``). The handshake runs first and the local dial
after it, as in Go; either failing logs Go's line and closes that connection only.
"""

from __future__ import annotations

import asyncio
import logging
import ssl

from ...config.plugin import TLS2RawPluginOptions
from ...net.relay import PendingConn, Relay
from ...net.tls import TLSTransport, server_context
from ...proto.addr import split_host_port
from . import PluginError, register
from .base import ClientPlugin, WorkConn
from .stream import open_plain

log = logging.getLogger("aiofrp.client.plugin")

DIAL_TIMEOUT = 10.0


@register("tls2raw")
class TLS2RawPlugin(ClientPlugin[TLS2RawPluginOptions]):
    def __init__(self, proxy_name: str, cfg: TLS2RawPluginOptions) -> None:
        super().__init__(proxy_name, cfg)
        try:
            if cfg.crt_path and cfg.key_path:
                self._ctx = server_context(cfg.crt_path, cfg.key_path)
            else:
                self._ctx = server_context()
        except (OSError, ValueError) as exc:
            raise PluginError(str(exc)) from None

    async def handle(self, conn: WorkConn) -> None:
        transport, data, eof = open_plain(conn)
        if eof and not data:
            transport.close()
            return
        pending = PendingConn()
        tls = TLSTransport(transport, self._ctx, pending, server_side=True, initial_data=data)
        transport.resume_reading()  # the work connection was held paused
        try:
            await tls.handshake
        except (ssl.SSLError, OSError, TimeoutError, ValueError) as exc:
            self.xlog(log).warning("tls handshake error: %s", exc)
            tls.abort()
            return
        loop = asyncio.get_running_loop()
        try:
            host, port = split_host_port(self.cfg.local_addr)
            async with asyncio.timeout(DIAL_TIMEOUT):
                local, lp = await loop.create_connection(PendingConn, host, port)
        except (OSError, TimeoutError, ValueError) as exc:
            self.xlog(log).warning("dial to local addr error: %s", exc or "timeout")
            tls.close()
            return
        if conn.proxy_protocol_header is not None:  # as Go 0.70+ (0.65 leaves it out)
            local.write(conn.proxy_protocol_header)
        Relay(local, tls, a_data=lp.take(), a_eof=lp.eof, b_data=pending.take(), b_eof=pending.eof,
              name=self.proxy_name, limiter=conn.limiter)
