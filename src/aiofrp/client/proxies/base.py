"""What every client proxy shares (Go's ``client/proxy/proxy.go``: ``BaseProxy``): its config,
its bandwidth limiter, its plugin, and the TCP work-connection hand-off that tcp, http, https,
tcpmux, stcp and the streams of an xtcp tunnel all go through.

A work connection is served either by dialing ``localIP:localPort`` (:meth:`Proxy.dial_local`)
or by the proxy's client plugin (``client/plugins/``); both get the same :class:`WorkConn`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from ...config.client import proxy_wire_name
from ...config.plugin import ClientPluginOptions
from ...config.proxy import ProxyBaseConfig
from ...log import XLog
from ...net.dialerr import dial_error_text
from ...net.limiter import TokenBucket, bucket_for
from ...net.relay import PendingConn, work_conn_codecs
from ...proto import msg as m
from ...proto.addr import join_host_port
from ..plugins import ClientPlugin, HeldConn, PluginContext, WorkConn, new_plugin

if TYPE_CHECKING:
    from ...config.client import ClientConfig
    from ...net.msgconn import MsgConn
    from ..transporter import MessageTransporter
    from ..vnet import Controller as VnetController

log = logging.getLogger("aiofrp.client.proxy")

LOCAL_DIAL_TIMEOUT = 10.0

C_co = TypeVar("C_co", bound=ProxyBaseConfig, covariant=True)


class ProxyHost(Protocol):
    """What proxies use of the frpc service (``client/service.py: Client``)."""

    @property
    def cfg(self) -> ClientConfig: ...

    @property
    def key(self) -> bytes:
        """The work connections' AES key (from ``auth.token``)."""
        ...

    def proxy_start_failed(self, name: str, error: str) -> None:
        """frps refused proxy ``name`` (quick mode exits)."""
        ...

    @property
    def vnet(self) -> VnetController | None:
        """The virtual network's controller (``virtualNet.address``), for the virtual_net plugin."""
        ...


def proxy_protocol_header(version: str, start: m.StartWorkConn) -> bytes | None:
    """The PROXY header for the local service (frp §5.11): only when frps sent the user's
    address; the destination defaults to ``127.0.0.1`` (http work connections carry none).
    Raises :class:`ProxyProtocolError` when the addresses cannot share one family."""
    if not version or not start.src_addr or not start.src_port:
        return None
    from ...proto.proxyproto import build_header  # here: it imports ipaddress (0.3 MB resident)

    dst = (start.dst_addr or "127.0.0.1", start.dst_port)
    return build_header(version, (start.src_addr, start.src_port), dst)


class Proxy(Generic[C_co]):
    """How one proxy's work connections are served (Go's ``Proxy`` interface and ``BaseProxy``).

    One instance per configured proxy, made by :func:`~aiofrp.client.proxies.new_proxy` for its
    :class:`~aiofrp.client.proxies.wrapper.ProxyWrapper` (which keeps the status); per-proxy state
    (the udp work connection, the sudp tunnels) lives on it. :meth:`run` is called each time frps
    accepts the proxy, :meth:`close` when the control session ends or frpc stops.
    """

    def __init__(self, client: ProxyHost, cfg: C_co) -> None:
        self.client = client
        self.cfg = cfg
        self.name = proxy_wire_name(client.cfg, cfg.name)  # as frps knows it (user.name): the log prefix
        # Go's proxy xlog: "[NAME] ", "[RUNID] [NAME] " from the login on (ProxyWrapper.start sets it)
        self.xl = XLog(log, self.name)
        t = cfg.transport
        # bandwidthLimitMode "client" (default): frpc meters all the proxy's work connections
        self.limiter: TokenBucket | None = (
            bucket_for(t.bandwidth_limit, name=self.name) if t.bandwidth_limit_mode != "server" else None
        )
        self.control: MessageTransporter | None = None
        self.plugin: ClientPlugin[ClientPluginOptions] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def run(self, control: MessageTransporter) -> None:
        """frps accepted the proxy: work connections may come (Go's ``Run``). Makes the plugin,
        if the proxy has one; raises :class:`~aiofrp.client.plugins.PluginError` if it cannot."""
        self.control = control
        if self.cfg.plugin is not None and self.plugin is None:
            self.plugin = new_plugin(self.name, self.cfg.plugin, PluginContext(vnet=self.client.vnet, xl=self.xl))

    def close(self) -> None:
        """The control session ended (or frpc stops): release what serves work connections."""
        self.control = None
        if self.plugin is not None:
            self.plugin.close()
            self.plugin = None
        for t in list(self._tasks):
            t.cancel()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` as a task of this proxy (cancelled by :meth:`close`)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def handle_work_conn(self, conn: MsgConn, start: m.StartWorkConn) -> None:
        """Serve one work connection that frps started with ``start`` (Go's ``InWorkConn``)."""
        raise NotImplementedError

    # -- the TCP hand-off ---------------------------------------------------------------------

    async def handle_tcp_work_conn(self, conn: HeldConn, start: m.StartWorkConn, key: bytes | None) -> None:
        """Go's ``HandleTCPWorkConnection``: the codecs (``key`` encrypts when ``useEncryption``),
        the PROXY protocol header, then the plugin or :meth:`dial_local`."""
        cfg = self.cfg
        work = conn.transport
        if work is None:
            return
        work.pause_reading()  # what arrives now waits in the connection until the relay takes it
        header = None
        if cfg.transport.proxy_protocol_version:
            from ...proto.proxyproto import ProxyProtocolError

            try:
                header = proxy_protocol_header(cfg.transport.proxy_protocol_version, start)
            except ProxyProtocolError as exc:
                self.xl.error("write proxy protocol header to local conn error: %s", exc)
                conn.close()
                return
        encode, decode = work_conn_codecs(key if cfg.transport.use_encryption else None, cfg.transport.use_compression)
        src = (start.src_addr, start.src_port) if start.src_addr and start.src_port else None
        dst = (start.dst_addr or "127.0.0.1", start.dst_port) if src is not None else None
        wc = WorkConn(self.name, conn, encode=encode, decode=decode, limiter=self.limiter,
                      src_addr=src, dst_addr=dst, proxy_protocol_header=header)
        if self.plugin is not None:
            self.xl.debug("handle by plugin: %s", self.plugin.name)
            await self.plugin.handle(wc)
            self.xl.debug("handle by plugin finished")
            return
        await self.dial_local(wc)

    async def dial_local(self, wc: WorkConn) -> None:
        """Dial ``localIP:localPort`` (10 s), write the PROXY header, relay."""
        cfg = self.cfg
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(LOCAL_DIAL_TIMEOUT):
                local, lp = await loop.create_connection(PendingConn, cfg.local_ip, cfg.local_port)
        except (OSError, TimeoutError) as exc:
            addr = join_host_port(cfg.local_ip, cfg.local_port)
            self.xl.error("connect to local service [%s] error: %s", addr, dial_error_text(addr, exc))
            wc.close()
            return
        if wc.proxy_protocol_header is not None:
            local.write(wc.proxy_protocol_header)  # before any payload: the relay writes after it
        wc.relay(local, lp.take(), lp.eof)
        self.xl.debug("join connections, local %s", join_host_port(cfg.local_ip, cfg.local_port))
