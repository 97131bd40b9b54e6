"""What every server proxy shares: naming, the work-connection hand-off, the user relay.

A proxy knows frps and its client's control only through :class:`ProxyServer` and
:class:`ProxyControl` (what it uses of server/service.py: Server and server/control.py: Control),
so server/proxies imports neither of them: the control creates proxies, not the other way round.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from ...log import XLog
from ...net.limiter import TokenBucket, bucket_for
from ...net.listen import local_addr, peer_addr
from ...net.msgconn import MsgConn
from ...net.mux import MuxSession
from ...net.relay import Codec, PendingConn, Relay, WorkConn, chain, work_conn_codecs
from ...proto import msg as m
from ...proto.addr import fmt_addr
from ..errors import ProxyError
from ..plugin import Op, PluginRefused
from ..validation import validate_annotations
from ..vhost import Route, Routers, unregister_routes, validate_domains

if TYPE_CHECKING:
    from ...config.server import ServerConfig
    from ...net.udp import PacketBridge
    from ..group import GroupRegistry
    from ..nathole import NatHoleController
    from ..plugin import Manager, UserInfo
    from ..ports import PortManager
    from ..stats import ServerStats
    from ..vhost.http import HTTPVhost
    from ..vhost.https import HTTPSVhost
    from ..vhost.tcpmux import TCPMuxVhost
    from ..workers.registry import Lease

log = logging.getLogger("aiofrp.server.proxy")

Addr = tuple[Any, ...]  # a socket address: (host, port) or IPv6's (host, port, flowinfo, scope_id)
M = TypeVar("M")


class ProxyServer(Protocol):
    """What proxies use of frps (server/service.py: Server)."""

    quick_proxy: ServerProxy | None  # quick mode: the proxy on the bind port (server/proxies/tcp.py)

    @property
    def cfg(self) -> ServerConfig: ...
    @property
    def key(self) -> bytes: ...
    @property
    def quick(self) -> bool: ...
    @property
    def bind_port(self) -> int: ...
    @property
    def proxy_bind_addr(self) -> str: ...
    @property
    def ports(self) -> PortManager: ...
    @property
    def groups(self) -> GroupRegistry: ...
    @property
    def nathole(self) -> NatHoleController: ...
    @property
    def plugins(self) -> Manager: ...
    @property
    def stats(self) -> ServerStats: ...
    @property
    def http_vhost(self) -> HTTPVhost | None: ...
    @property
    def https_vhost(self) -> HTTPSVhost | None: ...
    @property
    def tcpmux_vhost(self) -> TCPMuxVhost | None: ...

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]: ...

    def visitor_user(self, run_id: str) -> str | None: ...


class ProxyControl(Protocol):
    """What proxies use of their client's control (server/control.py: Control)."""

    @property
    def server(self) -> ProxyServer: ...
    @property
    def user(self) -> str: ...
    @property
    def run_id(self) -> str: ...
    @property
    def user_info(self) -> UserInfo: ...
    @property
    def client_id(self) -> str: ...
    @property
    def mux(self) -> MuxSession | None: ...

    async def get_work_conn(self) -> MsgConn: ...

    def take_work_conn_nowait(self) -> MsgConn | None: ...


class ServerProxy:
    type = ""
    used_ports = 0  # remote ports it takes, counted against maxPortsPerClient (tcp, udp: 1)
    conf_json: bytes | None = None  # the dashboard's "conf" of this proxy, encoded once (server/dashboard.py)
    port = 0  # tcp, udp: the port bound, once run (Go then sets the proxy's cfg.RemotePort to it)

    def __init__(self, control: ProxyControl, req: m.NewProxy) -> None:
        self.control = control
        self.server = control.server
        self.req = req
        self.type = req.proxy_type or "tcp"
        self.name = req.proxy_name
        # Go's proxy xlog: "[RUNID] [NAME] " (server/proxy/proxy.go NewProxy); the type's modules
        # log through views of it, self.xl.on(their logger)
        self.xl = XLog(log, control.run_id, self.name)
        self.remote_addr = ""
        self.closed = False
        self.online = False  # registered with frps's statistics (mark_online), until close()
        self.relays: set[Relay | PacketBridge] = set()  # a bridge: sudp between a v1 and a v2 end
        # transport.bandwidthLimitMode = "server": frps meters the proxy (frp §5.13)
        self.limiter: TokenBucket | None = (
            bucket_for(req.bandwidth_limit, name=self.name) if req.bandwidth_limit_mode == "server" else None
        )

    def validate(self) -> None:
        """Go's ValidateProxyConfigurerForServer: what frps refuses in the NewProxy itself, before the
        maxPortsPerClient quota and the name are looked at (server/control.py: register_proxy).
        Every type: the annotation keys and their size; vhost types add their own checks."""
        validate_annotations(self.req.annotations)

    async def run(self) -> None:
        raise NotImplementedError

    # -- visitors (stcp, sudp) ------------------------------------------------------------------

    takes_visitors = False  # visitor connections (NewVisitorConn) may use this proxy type

    def check_visitor(self, msg: m.NewVisitorConn) -> str:
        """Why a NewVisitorConn may not use this proxy ("" if it may; server/service.py:
        Server.handle_visitor_conn)."""
        return f"custom listener for [{self.name}] doesn't exist"

    async def handle_visitor_conn(self, conn: MsgConn, msg: m.NewVisitorConn) -> None:
        """Serve a visitor connection that passed :meth:`check_visitor`."""
        raise NotImplementedError

    def close(self) -> None:
        if not self.closed:
            self.xl.info("proxy closing")  # Go's line (server/proxy/proxy.go: Close)
        self.closed = True
        for relay in list(self.relays):
            relay.close()
        if self.online:
            self.online = False
            self.server.stats.close_proxy(self.name, self.type, self.unreported_traffic())

    # -- statistics (server/stats.py): counted per connection, never per chunk ------------------

    def mark_online(self) -> None:
        """The proxy is registered: the dashboard and /metrics count it from now on."""
        self.online = True
        ctl = self.control
        # Go 0.68: the client id, or the run id when the client has none
        self.server.stats.new_proxy(self.name, self.type, ctl.user, ctl.client_id or ctl.run_id, self.live_traffic,
                                    self.datagram)

    datagram = False  # traffic without connections (udp): live_traffic is asked even at 0 connections

    def live_traffic(self) -> tuple[int, int]:
        """(in, out) bytes of the connections still open: in = from users, out = to users."""
        nin = nout = 0
        for r in self.relays:
            nin += r.bytes_a_to_b
            nout += r.bytes_out
        return nin, nout

    def unreported_traffic(self) -> tuple[int, int]:
        """Bytes no close_conn reported (UDP proxies count datagrams, not connections)."""
        return 0, 0

    def relay_opened(self, relay: Relay | PacketBridge) -> None:
        if not relay.done.done():
            self.relays.add(relay)
            self.server.stats.open_conn(self.name)

    def relay_closed(self, relay: Relay | PacketBridge) -> None:
        if relay in self.relays:
            self.relays.discard(relay)
            self.server.stats.close_conn(self.name, relay.bytes_a_to_b, relay.bytes_out)

    # -- work connections (Go: proxy.go GetWorkConnFromPool, HandleUserTCPConnection) ---------

    async def get_work_conn(self) -> MsgConn | None:
        """A work connection of this proxy's client, or None (logged) when there is none."""
        try:
            return await self.control.get_work_conn()
        except (TimeoutError, ConnectionError) as exc:
            self.xl.warning("failed to get work connection: %s", exc)
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
        user_decode: Codec | None = None, user_encode: Codec | None = None, src: Addr | None = None,
    ) -> None:
        """Relay a user connection (``data``/``eof``: what was read from it so far) through the
        work connection ``conn``; ``user_decode``/``user_encode``: codecs of the user side
        itself (an stcp visitor's sk layer); ``src``: the user's address, if known already."""
        if src is None:
            src = peer_addr(user)
        work = self.start_work_conn(conn, src, local_addr(user))
        relay = Relay(
            user, work.transport, a_to_b=chain(user_decode, work.encode), b_to_a=chain(work.decode, user_encode),
            a_data=data, b_data=work.data, a_eof=eof, b_eof=work.eof, name=self.name,
            on_close=self.relay_closed, limiter=self.limiter,
        )
        self.relay_opened(relay)
        self.xl.debug("join connections, user %s", fmt_addr(src))

    def joins_at_once(self) -> bool:
        """Whether a user connection may be joined to a pooled work connection without a task:
        nothing to ask first (no NewUserConn plugin) and the plain ``handle_user_conn``."""
        return (not self.closed and not self.server.plugins.has(Op.NEW_USER_CONN)
                and type(self).handle_user_conn is ServerProxy.handle_user_conn)

    async def allow_user_conn(self, transport: asyncio.BaseTransport) -> bool:
        """Ask the NewUserConn plugins about a user connection (Go: proxy.go
        handleUserTCPConnection); False (logged) if it must be closed."""
        plugins = self.server.plugins
        if not plugins.has(Op.NEW_USER_CONN):
            return True
        remote = fmt_addr(peer_addr(transport))
        try:
            await plugins.new_user_conn(self.control.user_info, self.name, self.type, remote)
        except PluginRefused as exc:
            self.xl.warning("the user conn [%s] was rejected, err:%s", remote, exc)
            return False
        return True

    def accepted(self, transport: asyncio.BaseTransport) -> Addr | None:
        """Go's line for every user (or visitor) connection a proxy takes (server/proxy/proxy.go);
        the user's address, for :meth:`join`."""
        src = peer_addr(transport)
        self.xl.info("get a user connection [%s]", fmt_addr(src))
        return src

    async def handle_user_conn(self, user: PendingConn) -> None:
        """Pair an accepted user connection with a work connection and relay bytes."""
        transport = user.transport
        assert transport is not None
        src = self.accepted(transport)
        if not await self.allow_user_conn(transport):
            transport.close()
            return
        work = await self.get_work_conn()
        if work is None:
            transport.abort()
            return
        if user.lost or self.closed:
            work.close()
            transport.abort()
            return
        self.join(transport, user.take(), user.eof, work, src=src)


class UserConn(PendingConn):
    """An accepted user connection; hands itself to its proxy."""

    def __init__(self, proxy: ServerProxy) -> None:
        super().__init__()
        self.proxy = proxy

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        proxy = self.proxy
        if proxy.joins_at_once():
            # The common case: no NewUserConn plugin to ask and a work connection in the pool.
            # Pair them now, without a task per connection (Go: a goroutine; here a task costs
            # more than the join itself).
            ctl = proxy.control
            mux = ctl.mux
            if mux is not None:
                # the refill's ReqWorkConn, StartWorkConn and the user's first bytes if they came
                # with the connection leave in one write at the end of this turn, not in two
                mux.flush_at_end_of_turn()
            work = ctl.take_work_conn_nowait()
            if work is not None:
                src = proxy.accepted(transport)
                proxy.join(transport, self.take(), self.eof, work, src=src)  # type: ignore[arg-type]
                return
        proxy.server.spawn(proxy.handle_user_conn(self))


class VhostProxy(ServerProxy, Generic[M]):
    """A proxy served by one of frps's vhosts: its routes (shared in a group) live in the vhost's
    router, with the proxy as the vhost sees it (``M``: ``HTTPMember``, ``ConnMember``) serving them."""

    NOT_SERVED: ClassVar[str] = ""
    """Go's refusal when frps has no vhost (no port) for this type."""

    def __init__(self, control: ProxyControl, req: m.NewProxy) -> None:
        super().__init__(control, req)
        self.routes: list[Route[M]] = []
        self._router: Routers[Route[M]] | None = None
        self._member: M | None = None
        self._leases: list[Lease] = []  # its routes in the registry (frps --workers N)

    def served(self) -> bool:
        """Whether frps has the vhost this proxy needs (its port is set)."""
        raise NotImplementedError

    def validate(self) -> None:
        """Go's order: the annotations, then the vhost port this type needs, then the domains."""
        super().validate()
        if not self.served():
            raise ProxyError(self.NOT_SERVED)
        validate_domains(self.req.custom_domains, self.req.subdomain, self.server.cfg.subdomain_host)

    async def _register_routes(self, router: Routers[Route[M]], routes: list[Route[M]], member: M) -> None:
        """Serve ``routes`` as ``member`` (the proxy itself), alone or in its group (booked in the
        registry first with frps --workers N: group.py, ``book_routes``)."""
        groups = self.server.groups
        leases = await groups.book_routes(self.type, routes, self.req)
        if self.closed:  # closed while the registry answered
            groups.release(leases)
            raise ProxyError(f"proxy [{self.name}] is closed")
        try:
            self.routes = groups.register_routes(self.type, router, routes, member, self.req, self.xl)
        except BaseException:
            groups.release(leases)
            raise
        self._router, self._member, self._leases = router, member, leases

    def close(self) -> None:
        if self._router is not None and self._member is not None:
            unregister_routes(self._router, self.routes, self._member)
            self.routes = []
            self.server.groups.leave_vhost(self.type, self._member, self.req.group)
            self.server.groups.release(self._leases)
            self._leases = []
        super().close()


__all__ = ["ProxyControl", "ProxyServer", "ServerProxy", "UserConn", "VhostProxy"]
