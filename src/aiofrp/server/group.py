"""Load-balancing groups (``loadBalancer.group`` / ``groupKey``, frp §5.12).

Proxies of one type with the same group share one endpoint; the first member fixes the group
key and the endpoint's parameters, later members must match them:

* tcp: one listener on the first member's port (``group should have same remote port`` for
  another requested port, ``group auth failed`` for another key); user connections go to the
  members in turn, the first member first (Go's order). The listener and its port go away with
  the last member. With ``frps --workers N`` every worker with a member of the group listens on
  its port (SO_REUSEPORT: the kernel spreads the user connections over those workers, each takes
  its own members in turn), the registry keeping the port and key the first member fixed
  (workers/registry.py: ``join_group``).
* http, https, tcpmux: the members share the group's :class:`~.vhost.router.Route` objects (same
  route keys, else ``group params invalid``); requests/connections rotate over
  ``Route.members`` (:meth:`Route.pick`). The routes go away with the last member.

Go 0.65 refuses a second https member (``router config conflict``); 0.66+ supports https groups,
and so do we. Go keys an http/https/tcpmux group on its first route only (a group proxy with two
domains fails there); we compare the member's whole set of routes.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from ..log import XLog
from ..net.listen import bind_socket, resolve_listen, serve_tcp
from ..proto.crypto import secret_equal
from .errors import ProxyError
from .vhost import Route, register_routes
from .workers.registry import GROUP_AUTH, GROUP_PARAMS

if TYPE_CHECKING:
    from ..proto import msg as m
    from .ports import PortManager
    from .vhost.router import Routers
    from .workers.registry import Lease, Registry

log = logging.getLogger("aiofrp.server.group")

__all__ = [
    "ERR_GROUP_AUTH",
    "ERR_GROUP_PARAMS",
    "ERR_GROUP_PORT",
    "GroupRegistry",
    "TCPGroup",
    "VhostGroup",
]

ERR_GROUP_AUTH = "group auth failed"
ERR_GROUP_PARAMS = "group params invalid"
ERR_GROUP_PORT = "group should have same remote port"

M = TypeVar("M")


class TCPMember(Protocol):
    """A tcp proxy in a group (server/proxies/tcp.py: TCPProxy)."""

    @property
    def name(self) -> str: ...
    @property
    def req(self) -> m.NewProxy: ...
    @property
    def xl(self) -> XLog:
        """Its log prefixes, ``[RUNID] [NAME] `` (Go logs a group's lines with the proxy's xlog)."""
        ...

    def new_user_conn(self) -> asyncio.Protocol:
        """The protocol for a user connection accepted for this member."""
        ...


class TCPGroup:
    """The shared listener of a tcp group and its members (round-robin)."""

    def __init__(self, registry: GroupRegistry, name: str, key: str, addr: str, port: int, owner: str) -> None:
        self.registry = registry
        self.name = name
        self.key = key
        self.addr = addr
        self.port = port  # as requested by the first member (0 = any)
        self.real_port = 0
        self.owner = owner  # proxy name the port is booked under
        self.listener: asyncio.Server | None = None
        # in the order they take the next connection: the first member first, then each one goes to
        # the end (Go: each member's accept loop waits on the group's channel, served first come first)
        self.members: list[TCPMember] = []
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()  # port bound (or not)
        self.lease: Lease | None = None  # its name in the registry (server/workers/registry.py)

    def pick(self) -> TCPMember | None:
        members = self.members
        if not members:
            return None
        member = members.pop(0)
        members.append(member)
        return member

    def _new_conn(self) -> asyncio.Protocol:
        member = self.pick()
        if member is None:  # the last member left while the connection was being accepted
            return _Refused()
        return member.new_user_conn()

    def check(self, key: str, addr: str, port: int) -> None:
        """Go's order: params (addr), then port, then key."""
        if addr != self.addr:
            raise ProxyError(ERR_GROUP_PARAMS)
        if port != self.port:
            raise ProxyError(ERR_GROUP_PORT)
        if not secret_equal(key, self.key):
            raise ProxyError(ERR_GROUP_AUTH)


class _Refused(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.abort()  # type: ignore[attr-defined]


class VhostGroup(Generic[M]):
    """The routes shared by the members of an http/https/tcpmux group."""

    def __init__(self, name: str, key: str, routes: list[Route[M]]) -> None:
        self.name = name
        self.key = key
        self.routes = routes
        self.route_keys = {r.key for r in routes}
        self.members: list[M] = []


class GroupRegistry:
    """All groups of one frps, by proxy type and group name; tcp groups bind ``addr`` with ports
    from ``ports``."""

    def __init__(self, ports: PortManager, addr: str, registry: Registry | None = None, *,
                 reuse_port: bool = False) -> None:
        self.ports = ports
        self.addr = addr
        self.registry = registry  # the group's port and key across processes (workers/registry.py)
        self.reuse_port = reuse_port  # a worker of frps --workers N: tcp groups listen with SO_REUSEPORT
        self.tcp: dict[str, TCPGroup] = {}
        self.vhost: dict[tuple[str, str], VhostGroup[Any]] = {}  # by (proxy type, group)

    # -- tcp ------------------------------------------------------------------------------------

    async def listen_tcp(self, proxy: TCPMember) -> TCPGroup:
        """Join ``proxy`` to its tcp group, creating the shared listener for the first member."""
        req = proxy.req
        addr = self.addr
        while True:
            group = self.tcp.get(req.group)
            if group is None:
                break
            group.check(req.group_key, addr, req.remote_port)
            if not group.ready.done():  # the first member is still binding the port
                await asyncio.shield(group.ready)
            if self.tcp.get(req.group) is not group:
                continue  # it failed or closed meanwhile: start over (Go: errGroupStale)
            group.members.append(proxy)
            proxy.xl.on(log).info("tcp proxy listen port [%d] in group [%s]", req.remote_port or group.real_port,
                                  req.group)  # Go's line, for every member
            return group
        group = TCPGroup(self, req.group, req.group_key, addr, req.remote_port, proxy.name)
        self.tcp[req.group] = group
        group.members.append(proxy)
        try:
            await self._bind(group, proxy)
        except BaseException:
            if self.tcp.get(req.group) is group:
                del self.tcp[req.group]
            self._release(group)
            group.ready.set_result(None)
            raise
        group.ready.set_result(None)
        if self.tcp.get(req.group) is not group:  # the member was closed while binding
            self._close_listener(proxy, group)
            raise ProxyError(f"proxy [{proxy.name}] is closed")
        proxy.xl.on(log).info("tcp proxy listen port [%d] in group [%s]", req.remote_port or group.real_port, req.group)
        return group

    async def _bind(self, group: TCPGroup, proxy: TCPMember) -> None:
        """Bind the group's port, join it in the registry, then listen (not before: a worker
        refused there must not have taken a user connection with SO_REUSEPORT)."""
        ports = self.ports
        resolved = await resolve_listen(group.addr, socket.SOCK_STREAM)
        last_err: OSError | None = None
        sock: socket.socket | None = None
        for port in ports.candidates("tcp", group.owner, group.port):
            try:
                sock = bind_socket(group.addr, port, socket.SOCK_STREAM, resolved, reuse_port=self.reuse_port)
            except OSError as exc:
                last_err = exc
                continue
            break
        if sock is None:
            if group.port:
                # frpc gets Go's words (server/ports: ErrPortUnAvailable), frps's log the port and why
                proxy.xl.on(log).warning("tcp port %d unavailable: %s", group.port,
                                         (last_err.strerror or last_err) if last_err else "in use")
                raise ProxyError("port unavailable")
            raise ProxyError(f"no available port in frps's allowPorts [{ports.describe()}]")
        try:
            port = await self._join(group, sock.getsockname()[1])
            if port != sock.getsockname()[1]:  # a random port the group's first worker chose
                sock.close()
                sock = None
                sock = bind_socket(group.addr, port, socket.SOCK_STREAM, resolved, reuse_port=self.reuse_port)
            group.listener = await serve_tcp(group._new_conn, sock)
        except OSError as exc:
            self._release(group)
            proxy.xl.on(log).warning("tcp port unavailable for group [%s]: %s", group.name, exc.strerror or exc)
            raise ProxyError("port unavailable") from None
        except BaseException:
            if sock is not None:
                sock.close()
            raise
        group.real_port = port
        ports.mark_used("tcp", group.owner, port)

    async def _join(self, group: TCPGroup, bound: int) -> int:
        """The group in the registry (its port and key, shared by every process with a member);
        the port to listen on."""
        if self.registry is None:
            return bound
        group.lease, err, port = await self._join_registry(f"tcp:{group.name}", str(group.port), group.key, bound)
        if group.lease is None:
            raise ProxyError(ERR_GROUP_PORT if err == GROUP_PARAMS else ERR_GROUP_AUTH if err == GROUP_AUTH
                             else "port unavailable")
        return port

    async def _join_registry(self, name: str, params: str, key: str, bound: int = 0) -> tuple[Lease | None, str, int]:
        assert self.registry is not None
        try:
            return await self.registry.join_group(name, params, hashlib.sha256(key.encode()).hexdigest(), bound)
        except ConnectionError as exc:
            raise ProxyError(f"frps registry unavailable: {exc}") from None

    def _release(self, group: TCPGroup) -> None:
        if self.registry is not None and group.lease is not None:
            self.registry.release(group.lease)
            group.lease = None

    def _close_listener(self, proxy: TCPMember, group: TCPGroup) -> None:
        if group.listener is not None:
            group.listener.close()
            group.listener = None
            self.ports.release("tcp", group.owner, group.real_port)
            proxy.xl.on(log).info("tcp group [%s] closed, port [%d] released", group.name, group.real_port)

    def leave_tcp(self, proxy: TCPMember, group: TCPGroup) -> None:
        if proxy in group.members:
            group.members.remove(proxy)
        if group.members:
            return
        if self.tcp.get(group.name) is group:
            del self.tcp[group.name]
        self._close_listener(proxy, group)
        self._release(group)

    # -- http / https / tcpmux ------------------------------------------------------------------

    def register_routes(
        self, kind: str, router: Routers[Route[M]], routes: list[Route[M]], member: M, req: m.NewProxy,
        xl: XLog | None = None,
    ) -> list[Route[M]]:
        """The routes ``member`` (the proxy of ``req``, logging with ``xl``) serves: new ones for the
        first member of its group (or for a proxy without a group), else the group's after checking
        that they are the same."""
        if not req.group:
            return register_routes(router, routes, member)
        group: VhostGroup[M] | None = self.vhost.get((kind, req.group))
        if group is None:
            shared = register_routes(router, routes, member)
            group = self.vhost[kind, req.group] = VhostGroup(req.group, req.group_key, shared)
            group.members.append(member)
            return shared
        if {r.key for r in routes} != group.route_keys:
            raise ProxyError(ERR_GROUP_PARAMS)
        if not secret_equal(req.group_key, group.key):
            raise ProxyError(ERR_GROUP_AUTH)
        for route in group.routes:
            route.members.append(member)
        group.members.append(member)
        (xl.on(log) if xl is not None else XLog(log, req.proxy_name)).info(
            "joined %s group [%s] (%d members)", kind, req.group, len(group.members))
        return group.routes

    async def book_routes(self, kind: str, routes: list[Route[Any]], req: m.NewProxy) -> list[Lease]:
        """frps --workers N: the route keys of a vhost proxy in the registry (and its group's
        routes and key), so that a proxy of another worker cannot serve them too: ``router config
        conflict``, ``group params invalid`` and ``group auth failed`` as in one process. Nothing
        in one process, where the router itself is the whole truth. Release with :meth:`release`."""
        if self.registry is None or not self.registry.worker:
            return []
        leases: list[Lease] = []
        try:
            if req.group:
                keys = "\n".join(sorted("\t".join(r.key) for r in routes))
                lease, err, _ = await self._join_registry(f"{kind}:{req.group}", keys, req.group_key)
                if lease is None:
                    raise ProxyError(ERR_GROUP_PARAMS if err == GROUP_PARAMS else ERR_GROUP_AUTH)
                leases.append(lease)
            holder = f"group:{req.group}" if req.group else f"proxy:{req.proxy_name}"
            for route in routes:
                lease, _, _ = await self._join_registry(f"route:{kind}:" + "\t".join(route.key), "", holder)
                if lease is None:
                    raise ProxyError("router config conflict")
                leases.append(lease)
        except BaseException:
            self.release(leases)
            raise
        return leases

    def release(self, leases: list[Lease]) -> None:
        if self.registry is not None:
            for lease in leases:
                self.registry.release(lease)

    def leave_vhost(self, kind: str, member: object, group_name: str) -> None:
        """Forget ``member`` in its group (its routes are unregistered by the proxy itself)."""
        if not group_name:
            return
        group = self.vhost.get((kind, group_name))
        if group is None or member not in group.members:
            return
        group.members.remove(member)
        if not group.members:
            del self.vhost[kind, group_name]
