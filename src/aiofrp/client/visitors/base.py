"""What every visitor shares: its config, its client, and start/stop around a control session."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from ...net.listen import listen_tcp
from ...net.relay import PendingConn

if TYPE_CHECKING:
    from ..control import Control
    from ..service import Client

log = logging.getLogger("aiofrp.client.visitor")


class Visitor:
    type = ""

    def __init__(self, client: Client, cfg: Any) -> None:
        self.client = client
        self.cfg = cfg
        self.name = cfg.name
        self.control: Control | None = None

    async def start(self) -> None:
        """Open the local listener (if any). Called once when frpc starts; raises OSError on failure."""

    def attach(self, control: Control) -> None:
        """A (new) control session is up: visitor connections may be opened through it."""
        self.control = control

    def detach(self) -> None:
        self.control = None

    async def close(self) -> None:
        """Stop listening and close what is open."""


class TCPVisitor(Visitor):
    """A visitor with an optional local TCP listener (``bindPort > 0``): stcp and xtcp."""

    def __init__(self, client: Client, cfg: Any) -> None:
        super().__init__(client, cfg)
        self.listener: asyncio.AbstractServer | None = None
        self.relays: set[Any] = set()
        self._tasks: set[asyncio.Task[Any]] = set()

    async def listen(self) -> None:
        """Open ``bindAddr:bindPort`` if ``bindPort > 0``; each connection goes to ``handle_conn``."""
        cfg = self.cfg
        if cfg.bind_port > 0:
            self.listener = await listen_tcp(lambda: UserConn(self), cfg.bind_addr or "127.0.0.1", cfg.bind_port)
            log.info("[%s] %s visitor listen on %s:%d", self.name, self.type, cfg.bind_addr, cfg.bind_port)

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def handle_conn(self, user: PendingConn) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        for t in list(self._tasks):
            t.cancel()
        for r in list(self.relays):
            r.close()


class UserConn(PendingConn):
    """A local connection accepted by a visitor's listener; handed to ``visitor.handle_conn``."""

    def __init__(self, visitor: Any) -> None:
        super().__init__()
        self.visitor = visitor

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.visitor.spawn(self.visitor.handle_conn(self))
