"""What a client plugin is handed and what it implements (Go's ``pkg/plugin/client``).

A proxy's work connection is served either by dialing ``localIP:localPort`` (the default) or,
when the proxy has a ``[proxies.plugin]``, by the plugin: both get the same :class:`WorkConn`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from ...config.plugin import ClientPluginOptions
from ...net.relay import Codec, Relay

if TYPE_CHECKING:
    from ...log import XLog
    from ...net.limiter import TokenBucket
    from ..vnet import Controller

Addr = tuple[str, int]
O_co = TypeVar("O_co", bound=ClientPluginOptions, covariant=True)


class HeldConn(Protocol):
    """A connection from frps that waits to be taken over, its reading paused: a work connection
    still in its message phase (``net/msgconn.py: MsgConn``) or an xtcp tunnel stream."""

    @property
    def transport(self) -> asyncio.Transport | None: ...

    def detach(self) -> tuple[asyncio.Transport, bytes, bool]:
        """Stop being the transport's protocol; return (transport, bytes held, eof seen)."""
        ...

    def close(self) -> None: ...


@dataclass(eq=False)
class WorkConn:
    """One work connection to serve (Go's ``plugin.ConnectionInfo``).

    ``encode`` (toward frps) and ``decode`` (from frps) are the proxy's ``useCompression`` /
    ``useEncryption`` codecs, ``limiter`` its client-side bandwidth limit. ``src_addr`` and
    ``dst_addr`` are the user's and the listener's addresses from StartWorkConn (None when frps
    sent none), ``proxy_protocol_header`` the PROXY header to send first (``transport.
    proxyProtocolVersion``), if any.
    """

    proxy_name: str
    conn: HeldConn
    encode: Codec | None = None
    decode: Codec | None = None
    limiter: TokenBucket | None = None
    src_addr: Addr | None = None
    dst_addr: Addr | None = None
    proxy_protocol_header: bytes | None = None

    def relay(self, local: asyncio.Transport, local_data: bytes = b"", local_eof: bool = False) -> Relay:
        """Pipe ``local`` (what the default dial or a plugin opened) and the work connection from
        now on: the bytes held on both sides first, then callbacks only (net/relay.py)."""
        wt, wdata, weof = self.conn.detach()
        return Relay(
            local, wt, a_to_b=self.encode, b_to_a=self.decode, a_data=local_data, a_eof=local_eof,
            b_data=wdata, b_eof=weof, name=self.proxy_name, limiter=self.limiter,
        )

    def close(self) -> None:
        self.conn.close()


@dataclass(frozen=True)
class PluginContext:
    """What a plugin may use of its frpc (Go's ``plugin.PluginContext``): the virtual network's
    controller when ``virtualNet.address`` is set, and the proxy's logger (Go hands plugins the
    proxy's xlog: ``[RUNID] [NAME] ``)."""

    vnet: Controller | None = None
    xl: XLog | None = None


class ClientPlugin(Generic[O_co]):
    """Serves a proxy's work connections instead of ``localIP:localPort`` (Go's ``plugin.Plugin``).

    Made by :func:`~aiofrp.client.plugins.new_plugin` when frps has accepted the proxy (Go's
    ``BaseProxy.Run``), closed when the proxy stops.
    """

    context = PluginContext()  # set by new_plugin

    def __init__(self, proxy_name: str, cfg: O_co) -> None:
        self.proxy_name = proxy_name
        self.cfg = cfg

    def xlog(self, logger: logging.Logger) -> XLog:
        """``logger`` with the proxy's prefixes (``[RUNID] [NAME] ``), as Go's plugins log."""
        from ...log import XLog

        xl = self.context.xl
        return xl.on(logger) if xl is not None else XLog(logger, self.proxy_name)

    @property
    def name(self) -> str:
        """The plugin type (``unix_domain_socket``, ``http_proxy``, ...), for log lines."""
        return self.cfg.type

    async def handle(self, conn: WorkConn) -> None:
        """Serve one work connection: take it over with ``conn.relay(...)`` or ``conn.conn.detach()``,
        or close it."""
        raise NotImplementedError

    def close(self) -> None:
        """The proxy stopped: release what the plugin holds (listeners, pools)."""
