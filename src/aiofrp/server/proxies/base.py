"""What every server proxy shares: naming, the work-connection hand-off, the user relay."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from ...net.limiter import TokenBucket, bucket_for
from ...net.listen import local_addr, peer_addr
from ...net.mux import fmt_addr
from ...net.relay import PendingConn, Relay, work_conn_codecs
from ...proto import msg as m
from ..vhost import Route, unregister_routes

if TYPE_CHECKING:
    from ..control import Control

log = logging.getLogger("aiofrp.server.proxy")


class ProxyError(Exception):
    """A proxy could not be registered; the text goes back to frpc in NewProxyResp.error."""


class ServerProxy:
    type = ""

    def __init__(self, control: Control, req: m.NewProxy) -> None:
        self.control = control
        self.server = control.server
        self.req = req
        self.name = req.proxy_name
        self.remote_addr = ""
        self.closed = False
        self.relays: set[Relay] = set()
        # transport.bandwidthLimitMode = "server": frps meters the proxy (frp §5.13)
        self.limiter: TokenBucket | None = (
            bucket_for(req.bandwidth_limit, name=self.name) if req.bandwidth_limit_mode == "server" else None
        )

    async def run(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.closed = True
        for relay in list(self.relays):
            relay.close()

    async def handle_user_conn(self, user: PendingConn) -> None:
        """Pair an accepted user connection with a work connection and relay bytes."""
        transport = user.transport
        assert transport is not None
        try:
            work = await self.control.get_work_conn()
        except (TimeoutError, ConnectionError) as exc:
            log.warning("[%s] failed to get work connection: %s", self.name, exc)
            transport.abort()
            return
        if user.lost or self.closed:
            work.close()
            transport.abort()
            return
        src = peer_addr(transport) or ("", 0)
        dst = local_addr(transport) or ("", 0)
        work.write_msg(
            m.StartWorkConn(
                proxy_name=self.name, src_addr=src[0], src_port=src[1], dst_addr=dst[0], dst_port=dst[1]
            )
        )
        wt, wdata, weof = work.detach()
        key = self.server.key if self.req.use_encryption else None
        encode, decode = work_conn_codecs(key, self.req.use_compression)
        relay = Relay(
            transport, wt, a_to_b=encode, b_to_a=decode, a_data=user.take(), b_data=wdata,
            a_eof=user.eof, b_eof=weof, name=self.name, on_close=self.relays.discard, limiter=self.limiter,
        )
        if not relay.done.done():
            self.relays.add(relay)
        log.debug("[%s] join connections, user %s", self.name, fmt_addr(src))


class UserConn(PendingConn):
    """An accepted user connection; hands itself to its proxy."""

    def __init__(self, proxy: ServerProxy) -> None:
        super().__init__()
        self.proxy = proxy

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.proxy.server.spawn(self.proxy.handle_user_conn(self))


class VhostProxy(ServerProxy):
    """A proxy served by one of frps's vhosts: its routes (shared in a group) live in the vhost's router."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.routes: list[Route] = []
        self._router: Any = None

    def _register_routes(self, vhost: Any, routes: list[Route]) -> None:
        self._router = vhost.router
        self.routes = self.server.groups.register_routes(self.type, vhost.router, routes, self)

    def close(self) -> None:
        if self._router is not None:
            unregister_routes(self._router, self.routes, self)
            self.routes = []
            self.server.groups.leave_vhost(self.type, self)
        super().close()


def listen_error(exc: OSError) -> str:
    return str(exc.strerror or exc)


__all__: list[Any] = ["ProxyError", "ServerProxy", "UserConn", "VhostProxy"]
