"""What proxies, visitors and the NAT-hole exchange may use of the control session.

They get the running ``client/control.py: Control`` as a :class:`MessageTransporter` (Go's
``transport.MessageTransporter``, plus what Go's visitor ``Helper`` adds: the run id and a new
connection to frps). So client/proxies/, client/visitors/ and client/nathole.py do not import
the control or the service, and the import graph has no cycle between them.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol

from ..proto import msg as m

if TYPE_CHECKING:
    from ..net.msgconn import MsgConn


class MessageTransporter(Protocol):
    @property
    def run_id(self) -> str:
        """The run id frps gave this login."""
        ...

    @property
    def nathole_waiters(self) -> dict[str, asyncio.Future[m.NatHoleResp]]:
        """NatHoleResp waiters by transaction id (client/nathole.py: exchange)."""
        ...

    def send(self, message: m.Message) -> None:
        """Write ``message`` on the control connection (dropped once it is closed)."""
        ...

    async def connect_server(self) -> MsgConn:
        """A new logical connection to frps (a yamux stream, or a new TCP/TLS connection)."""
        ...
