"""What every visitor shares: its config, its client, and start/stop around a control session."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from ...config.client import proxy_wire_name
from ...config.visitor import VisitorBaseConfig
from ...log import XLog
from ...net.listen import listen_tcp
from ...net.relay import PendingConn, Relay
from ...proto.addr import join_host_port

if TYPE_CHECKING:
    from ...config.client import ClientConfig
    from ..transporter import MessageTransporter
    from ..visitor_plugins import VisitorPlugin
    from ..vnet import Controller as VnetController

log = logging.getLogger("aiofrp.client.visitor")

# A visitor's listener is open from frpc's start on (Go opens it only after the login and closes it
# while the control connection is down). What arrives while frpc is not logged in is held this long:
HOLD_TIMEOUT = 10.0
# After a (re)login the provider may not have registered its proxy yet (after an frps restart both
# sides log in again, in no particular order): within this window such refusals are retried, for
# at most NOT_REGISTERED_RETRY per connection (a serverName that is simply wrong still fails fast).
RELOGIN_GRACE = 10.0
NOT_REGISTERED_RETRY = 3.0
RETRY_INTERVAL = 0.5

VC_co = TypeVar("VC_co", bound=VisitorBaseConfig, covariant=True)


class VisitorHost(Protocol):
    """What visitors use of the frpc service (``client/service.py: Client``)."""

    @property
    def cfg(self) -> ClientConfig: ...

    def visitor_by_name(self, name: str) -> Visitor[VisitorBaseConfig] | None:
        """Another visitor (the target of an xtcp ``fallbackTo``), or None."""
        ...

    @property
    def vnet(self) -> VnetController | None:
        """The virtual network's controller (``virtualNet.address``), for visitor plugins."""
        ...


class Visitor(Generic[VC_co]):
    """One configured visitor (Go's ``client/visitor.Visitor``), typed by its config struct."""

    def __init__(self, client: VisitorHost, cfg: VC_co) -> None:
        self.client = client
        self.cfg = cfg
        self.name = cfg.name
        self.label = proxy_wire_name(client.cfg, cfg.name)  # in log lines: user.name, as Go 0.65 names visitors
        # Go's visitor xlog: "[NAME] ", and "[RUNID] [NAME] " from the login on (set by attach)
        self.xl = XLog(log, self.label)
        self.control: MessageTransporter | None = None
        self.attached_at = 0.0  # loop time of the last attach
        self._attached = asyncio.Event()

    async def start(self) -> None:
        """Open the local listener (if any). Called once when frpc starts; raises OSError on failure."""

    def attach(self, control: MessageTransporter) -> None:
        """A (new) control session is up: visitor connections may be opened through it."""
        self.control = control
        self.xl.set(control.run_id, self.label)
        self.attached_at = asyncio.get_running_loop().time()
        self._attached.set()

    def detach(self) -> None:
        self.control = None
        self._attached.clear()

    async def wait_control(self, deadline: float) -> MessageTransporter | None:
        """The control session, waiting for frpc's (re)login until loop time ``deadline``; None if
        frpc is still not logged in then."""
        loop = asyncio.get_running_loop()
        while self.control is None:
            left = deadline - loop.time()
            if left <= 0:
                return None
            try:
                async with asyncio.timeout(left):
                    await self._attached.wait()
            except TimeoutError:
                return None
        return self.control

    def in_relogin_grace(self) -> bool:
        """frpc logged in (again) only moments ago: the provider may still be registering."""
        return self.control is not None and asyncio.get_running_loop().time() - self.attached_at < RELOGIN_GRACE

    async def close(self) -> None:
        """Stop listening and close what is open."""


class TCPVisitor(Visitor[VC_co]):
    """A visitor with an optional local TCP listener (``bindPort > 0``): stcp and xtcp."""

    def __init__(self, client: VisitorHost, cfg: VC_co) -> None:
        super().__init__(client, cfg)
        self.listener: asyncio.AbstractServer | None = None
        self.relays: set[Relay] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.plugin: VisitorPlugin | None = None

    async def listen(self) -> None:
        """Open ``bindAddr:bindPort`` if ``bindPort > 0``; each connection goes to ``handle_conn``."""
        cfg = self.cfg
        if cfg.bind_port > 0:
            self.listener = await listen_tcp(lambda: UserConn(self), cfg.bind_addr or "127.0.0.1", cfg.bind_port)
            self.xl.info("%s visitor listen on %s", cfg.type, join_host_port(cfg.bind_addr, cfg.bind_port))

    def start_plugin(self) -> None:
        """Start the visitor's plugin (``[visitors.plugin]``), whose connections are served as a
        local user's (Go's ``internalConnWorker``)."""
        if self.cfg.plugin is None or self.plugin is not None:
            return
        from ..visitor_plugins import VisitorPluginContext, new_visitor_plugin

        context = VisitorPluginContext(self.label, self.accept_internal, self.client.vnet, self.xl)
        self.plugin = new_visitor_plugin(context, self.cfg.plugin)
        self.plugin.start()

    def accept_internal(self, transport: asyncio.Transport) -> None:
        """Serve a connection made inside frpc (a visitor plugin's) as one accepted on ``bindPort``."""
        user = UserConn(self)
        transport.set_protocol(user)
        user.connection_made(transport)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def handle_conn(self, user: PendingConn) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        if self.plugin is not None:
            self.plugin.close()
            self.plugin = None
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        for t in list(self._tasks):
            t.cancel()
        for r in list(self.relays):
            r.close()


class UserConn(PendingConn):
    """A local connection accepted by a visitor's listener; handed to ``visitor.handle_conn``."""

    def __init__(self, visitor: TCPVisitor[VisitorBaseConfig]) -> None:
        super().__init__()
        self.visitor = visitor

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.visitor.spawn(self.visitor.handle_conn(self))
