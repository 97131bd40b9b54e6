"""What every visitor shares: its config, its client, and start/stop around a control session."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

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


class UserConn(PendingConn):
    """A local connection accepted by a visitor's listener; handed to ``visitor.handle_conn``."""

    def __init__(self, visitor: Any) -> None:
        super().__init__()
        self.visitor = visitor

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.visitor.spawn(self.visitor.handle_conn(self))
