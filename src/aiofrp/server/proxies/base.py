"""What every server proxy shares: naming, the work-connection hand-off, the user relay."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, NamedTuple

from ...net.limiter import TokenBucket, bucket_for
from ...net.listen import local_addr, peer_addr
from ...net.msgconn import MsgConn
from ...net.mux import fmt_addr
from ...net.relay import Codec, PendingConn, Relay, chain, work_conn_codecs
from ...proto import msg as m
from ..errors import ProxyError
from ..vhost import Route, unregister_routes

if TYPE_CHECKING:
    from ..control import Control

log = logging.getLogger("aiofrp.server.proxy")

Addr = tuple[Any, ...]  # a socket address: (host, port) or IPv6's (host, port, flowinfo, scope_id)


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

    # -- work connections (Go: proxy.go GetWorkConnFromPool, HandleUserTCPConnection) ---------

    async def get_work_conn(self) -> MsgConn | None:
        """A work connection of this proxy's client, or None (logged) when there is none."""
        try:
            return await self.control.get_work_conn()
        except (TimeoutError, ConnectionError) as exc:
            log.warning("[%s] failed to get work connection: %s", self.name, exc)
            return None

    def start_work_conn(self, conn: MsgConn, src: Addr | None = None, dst: Addr | None = None) -> WorkConn:
        """Tell frpc what the work connection is for (StartWorkConn, with the user's address
        ``src`` and the address it reached ``dst`` where known), take the transport over and
        build the proxy's codecs (useEncryption / useCompression, frp §4.2)."""
        src = src or ("", 0)
        dst = dst or ("", 0)
        conn.write_msg(m.StartWorkConn(
            proxy_name=self.name, src_addr=src[0], src_port=src[1], dst_addr=dst[0], dst_port=dst[1],
        ))
        transport, data, eof = conn.detach()
        key = self.server.key if self.req.use_encryption else None
        encode, decode = work_conn_codecs(key, self.req.use_compression)
        return WorkConn(transport, data, eof, encode, decode)

    def join(
        self, user: asyncio.Transport, data: bytes, eof: bool, conn: MsgConn, *,
        user_decode: Codec | None = None, user_encode: Codec | None = None,
    ) -> None:
        """Relay a user connection (``data``/``eof``: what was read from it so far) through the
        work connection ``conn``; ``user_decode``/``user_encode``: codecs of the user side
        itself (an stcp visitor's sk layer)."""
        src = peer_addr(user)
        work = self.start_work_conn(conn, src, local_addr(user))
        relay = Relay(
            user, work.transport, a_to_b=chain(user_decode, work.encode), b_to_a=chain(work.decode, user_encode),
            a_data=data, b_data=work.data, a_eof=eof, b_eof=work.eof, name=self.name,
            on_close=self.relays.discard, limiter=self.limiter,
        )
        if not relay.done.done():
            self.relays.add(relay)
        log.debug("[%s] join connections, user %s", self.name, fmt_addr(src))

    async def handle_user_conn(self, user: PendingConn) -> None:
        """Pair an accepted user connection with a work connection and relay bytes."""
        transport = user.transport
        assert transport is not None
        work = await self.get_work_conn()
        if work is None:
            transport.abort()
            return
        if user.lost or self.closed:
            work.close()
            transport.abort()
            return
        self.join(transport, user.take(), user.eof, work)


class WorkConn(NamedTuple):
    """A work connection after StartWorkConn (:meth:`ServerProxy.start_work_conn`)."""

    transport: asyncio.Transport
    data: bytes  # bytes frpc already sent on it
    eof: bool
    encode: Codec | None  # toward frpc
    decode: Codec | None  # from frpc


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
