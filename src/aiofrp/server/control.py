"""frps side of one logged-in client: the control connection, its work-connection pool and proxies."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from ..auth import AuthError, LoginAuth
from ..log import XLog
from ..net.msgconn import Dispatcher, MsgConn
from ..net.mux import MuxSession, MuxStream
from ..proto import msg as m
from ..proto.errors import ProtocolError
from .errors import ProxyError
from .plugin import Op, PluginRefused, UserInfo
from .proxies import ServerProxy, new_server_proxy

if TYPE_CHECKING:
    from .service import Server
    from .workers.registry import Lease

log = logging.getLogger("aiofrp.server.control")

Pending = Coroutine[Any, Any, None] | None  # what a message handler returns: work to await, or none


ASK_TTL = 10.0
"""Seconds after which a ReqWorkConn frpc has not answered counts as lost (frpc could not dial)."""


class Control:
    auth: LoginAuth  # what the Login proved (set by Server.handle_login); checks Pings and work conns

    def __init__(self, server: Server, conn: MsgConn, login: m.Login, run_id: str) -> None:
        self.server = server
        self.conn = conn
        self.login = login
        self.run_id = run_id
        self.xl = XLog(log, run_id)  # Go: the control's xlog, "[RUNID] " (its proxies add "[NAME] ")
        self.user = login.user
        self.user_info = UserInfo.of(login, run_id)  # who this client is, for the server plugins
        self.wire_protocol: str = conn.wire_protocol
        """``"v1"`` or ``"v2"`` (§2.4): what this client speaks (Go: the registry's ``WireProtocol``,
        ``wireProtocol`` in the dashboard's ``/api/clients``)."""
        self.client_id = login.client_id
        t = conn.transport
        self.mux: MuxSession | None = t.session if isinstance(t, MuxStream) else None
        """The client's yamux session when its control is one of its streams (tcpMux)."""
        cfg = server.cfg
        self.pool_count = max(0, min(login.pool_count, cfg.transport.max_pool_count))
        # Go: a channel of poolCount + 10. A Go channel hands a connection straight to a waiting
        # receiver; an asyncio.Queue counts it until the woken getter runs, so a burst of work
        # connections for as many waiting users found it "full" and dropped some, and those users
        # timed out. The cap is therefore applied above the waiting getters (register_work_conn).
        self._pool: asyncio.Queue[MsgConn] = asyncio.Queue()
        self._pool_cap = self.pool_count + 10
        self._asked: deque[float] = deque()  # when each ReqWorkConn not answered yet was sent
        self._waiting = 0  # get_work_conn callers waiting for a work connection
        self._leases: dict[str, Lease] = {}  # this client's proxy names in the registry
        self.proxies: dict[str, ServerProxy] = {}
        self.ports_used = 0  # remote ports held by this client's proxies, for maxPortsPerClient
        self._closed = False
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.last_ping = time.monotonic()
        # Go: server/control.go registerMsgHandlers. A handler that returns a coroutine (a Ping's
        # check may ask the OIDC provider, a NewProxy the server plugins and the proxy's listener)
        # is awaited before the next message is read: Go handles a control's messages in order,
        # so a CloseProxy right behind its NewProxy finds the proxy registered.
        self.dispatcher = (
            Dispatcher[Pending](default=self._ignore)
            .register(m.NewProxy, self._on_new_proxy)
            .register(m.CloseProxy, self._on_close_proxy)
            .register(m.Ping, self._ping)
            .register(m.NatHoleVisitor, lambda msg: server.nathole.on_visitor(self, msg))
            .register(m.NatHoleClient, lambda msg: server.nathole.handle_client(self, msg))
            .register(m.NatHoleReport, lambda msg: server.nathole.handle_report(msg))
        )

    # -- main loop ------------------------------------------------------------------------

    async def run(self) -> None:
        conn = self.conn
        hb_task = None
        try:
            for _ in range(self.pool_count):
                self._ask()
            hb_timeout = self.server.cfg.transport.heartbeat_timeout
            if hb_timeout > 0:
                hb_task = asyncio.get_running_loop().create_task(self._heartbeat_checker(hb_timeout))
            while not self._closed:
                try:
                    msg = await conn.read_msg()
                except ProtocolError as exc:
                    self.xl.warning("bad message on control connection: %s", exc)
                    break
                except (EOFError, OSError):
                    break
                pending = self.dispatcher.dispatch(msg)
                if pending is not None:
                    await pending
        finally:
            if hb_task is not None:
                hb_task.cancel()
            self._cleanup()

    # -- message handlers -----------------------------------------------------------------

    def _on_new_proxy(self, req: m.NewProxy) -> Pending:
        return self._new_proxy(req)

    def _on_close_proxy(self, req: m.CloseProxy) -> None:
        self.close_proxy(req.proxy_name)

    def _ignore(self, msg: m.Message) -> None:
        self.xl.debug("ignoring control message %s", type(msg).__name__)

    async def _ping(self, ping: m.Ping) -> None:
        try:
            ping = await self.server.plugins.ping(self.user_info, ping)
            await self.auth.verify_ping(ping)
        except (AuthError, PluginRefused) as exc:
            self.xl.warning("received invalid ping: %s", exc)
            err = str(exc) if self.server.cfg.detailed_errors_to_client else "invalid ping"
            if not self._closed:
                self.conn.write_msg(m.Pong(error=err))
            return
        self.last_ping = time.monotonic()
        self.xl.debug("receive heartbeat")
        self.conn.write_msg(m.Pong())

    async def _heartbeat_checker(self, timeout: float) -> None:
        while True:
            await asyncio.sleep(1)
            if time.monotonic() - self.last_ping > timeout:
                self.xl.warning("heartbeat timeout")
                self.close()
                return

    async def _new_proxy(self, req: m.NewProxy) -> None:
        name = req.proxy_name
        try:
            # Go: control.go handleNewProxy asks the NewProxy plugins first; they may rewrite it
            req = await self.server.plugins.new_proxy(self.user_info, req)
            name = req.proxy_name
            proxy = await self.register_proxy(req)
        except (ProxyError, PluginRefused) as exc:
            self.xl.warning("new proxy [%s] type [%s] error: %s", name, req.proxy_type or "tcp", exc)
            err = str(exc) if self.server.cfg.detailed_errors_to_client else f"new proxy [{name}] error"
            if not self._closed:
                self.conn.write_msg(m.NewProxyResp(proxy_name=name, error=err))
            return
        self.xl.info("new proxy [%s] type [%s] success", name, proxy.type)
        self.conn.write_msg(m.NewProxyResp(proxy_name=name, remote_addr=proxy.remote_addr))

    async def register_proxy(self, req: m.NewProxy) -> ServerProxy:
        name = req.proxy_name
        if self._closed:
            raise ProxyError("control is closed")
        # Go: control.go RegisterProxy first builds and validates the proxy's config from the message
        # (an unknown type, bad annotations, a vhost type frps does not serve, its domains), then
        # checks the quota before the name, and counts a tcp or udp proxy as one port (in a group
        # too); allowPorts is checked by the port allocation after it
        proxy = new_server_proxy(self, req)
        proxy.validate()
        max_ports = self.server.cfg.max_ports_per_client
        if max_ports > 0 and self.ports_used + proxy.used_ports > max_ports:
            raise ProxyError("exceed the max_ports_per_client")
        if name in self.server.proxies:
            raise ProxyError(f"proxy [{name}] already exists")
        # the name across every process of frps (server/workers/registry.py)
        try:
            lease = await self.server.registry.claim("proxy", name)
        except ConnectionError as exc:
            raise ProxyError(f"frps registry unavailable: {exc}") from None
        if lease is None or name in self.server.proxies:
            if lease is not None:
                self.server.registry.release(lease)
            raise ProxyError(f"proxy [{name}] already exists")
        if self._closed:
            self.server.registry.release(lease)
            raise ProxyError("control is closed")
        self._leases[name] = lease
        self.server.proxies[name] = proxy
        self.proxies[name] = proxy
        self.ports_used += proxy.used_ports
        try:
            await proxy.run()
        except BaseException:
            self._forget_proxy(name, proxy)
            proxy.close()
            raise
        if self._closed or proxy.closed:  # the control, or a CloseProxy, ended it meanwhile
            self._forget_proxy(name, proxy)
            proxy.close()
            raise ProxyError("control is closed" if self._closed else f"proxy [{name}] is closed")
        proxy.mark_online()
        return proxy

    def _forget_proxy(self, name: str, proxy: ServerProxy) -> None:
        if self.server.proxies.get(name) is proxy:
            del self.server.proxies[name]
            lease = self._leases.pop(name, None)
            if lease is not None:
                self.server.registry.release(lease)
        if self.proxies.get(name) is proxy:
            del self.proxies[name]
            self.ports_used -= proxy.used_ports

    def close_proxy(self, name: str) -> None:
        proxy = self.proxies.get(name)
        if proxy is None:
            return
        self._forget_proxy(name, proxy)
        proxy.close()
        self._notify_close(name)
        self.xl.info("close proxy [%s] success", name)

    def _notify_close(self, name: str) -> None:
        """Tell the CloseProxy plugins, in the background (Go: a goroutine per closed proxy)."""
        plugins = self.server.plugins
        if plugins.has(Op.CLOSE_PROXY):
            self.server.spawn(plugins.close_proxy(self.user_info, name))

    # -- work connections -----------------------------------------------------------------

    def _ask(self) -> None:
        self._asked.append(time.monotonic())
        self.conn.write_msg(m.ReqWorkConn())

    def _refill(self) -> None:
        """After a work connection is taken: ask for a replacement, as Go does after every take,
        unless every connection asked for and not arrived yet already has a place, a waiting
        request or room in the pool (``pool_count + 10``, Go's bound). A burst of requests thus
        leaves up to ten spare connections ahead of the next one, as in Go, but frpc never dials
        one that frps would discard as surplus (Go: ``work connection pool is full``)."""
        asked = self._asked
        if asked:
            lost = time.monotonic() - ASK_TTL
            while asked and asked[0] < lost:
                asked.popleft()
        if self._pool.qsize() + len(asked) < self._pool_cap + self._waiting:
            self._ask()

    def register_work_conn(self, conn: MsgConn) -> None:
        if self._asked:
            self._asked.popleft()
        if self._closed:
            conn.close()
            return
        if self._pool.qsize() >= self._waiting + self._pool_cap:
            # After a burst of user connections the refills overshoot; like Go, drop the surplus.
            self.xl.debug("work connection pool is full, discarding")
            conn.close()
            return
        self._pool.put_nowait(conn)

    async def get_work_conn(self) -> MsgConn:
        """Take a live work connection from the pool (asking for one if empty), then refill."""
        timeout = self.server.cfg.user_conn_timeout
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            if self._closed:
                raise ConnectionError("control is closed")
            try:
                conn = self._pool.get_nowait()
            except asyncio.QueueEmpty:
                # Go: ask for one more whatever is on the way, so a lost request cannot starve this one
                self._ask()
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    raise TimeoutError("timeout trying to get work connection") from None
                self._waiting += 1
                try:
                    async with asyncio.timeout(left):
                        conn = await self._pool.get()
                except TimeoutError:
                    raise TimeoutError("timeout trying to get work connection") from None
                finally:
                    self._waiting -= 1
            if not conn.alive:
                continue
            if not self._closed:
                self._refill()
            return conn

    @property
    def pooled(self) -> int:
        """Idle work connections in the pool (the dashboard's metrics)."""
        return self._pool.qsize()

    def take_work_conn_nowait(self) -> MsgConn | None:
        """A live pooled work connection (and one refill request) without waiting, or None."""
        while not self._closed:
            try:
                conn = self._pool.get_nowait()
            except asyncio.QueueEmpty:
                return None
            if not conn.alive:
                continue
            self._refill()
            return conn
        return None

    # -- teardown -------------------------------------------------------------------------

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.conn.abort()  # nothing to flush, and a dead peer must not hold the close
        # the run() loop ends on EOF; if it is not running any more, clean up here
        if self.conn.closed is not None and self.conn.closed.done():
            self._cleanup()

    def _cleanup(self) -> None:
        self._closed = True
        for name, proxy in list(self.proxies.items()):
            self._forget_proxy(name, proxy)
            proxy.close()
            self._notify_close(name)
        while True:
            try:
                self._pool.get_nowait().close()
            except asyncio.QueueEmpty:
                break
        self.conn.close()
        if not self.finished.done():
            self.xl.info("client exit success")
            self.finished.set_result(None)
