"""frpc side of the control connection: proxies registration, work connections, heartbeats."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from ..auth import AuthError
from ..log import XLog
from ..net.msgconn import Dispatcher, MsgConn
from ..proto import msg as m
from ..proto.errors import ProtocolError

if TYPE_CHECKING:
    from .connector import Connector
    from .service import Client

log = logging.getLogger("aiofrp.client.control")


class Control:
    def __init__(self, client: Client, conn: MsgConn, connector: Connector) -> None:
        self.client = client
        self.conn = conn
        self.connector = connector
        self.run_id = client.run_id
        # Go: the control logs with the service's xlog, "[RUNID] " since the login
        self.xl: XLog = client.xl.on(log)
        self._closed = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.last_pong = time.monotonic()
        # NatHoleResp waiters by transaction id (xtcp: client/nathole.py)
        self.nathole_waiters: dict[str, asyncio.Future[m.NatHoleResp]] = {}
        # what each message from frps does (Go's msg.Dispatcher); others are logged and ignored
        self.handlers: Dispatcher[None] = (
            Dispatcher(default=self._ignore)
            .register(m.ReqWorkConn, self._on_req_work_conn)
            .register(m.NewProxyResp, self._on_new_proxy_resp)
            .register(m.NatHoleResp, self._on_nat_hole_resp)
            .register(m.Pong, self._on_pong)
        )

    @property
    def closed(self) -> bool:
        return self._closed

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def run(self) -> None:
        client = self.client
        for pw in client.proxies.values():
            pw.start(self)
        for v in client.visitors.values():
            v.attach(self)
        cfg_t = client.cfg.transport
        if cfg_t.heartbeat_interval > 0:
            self.spawn(self._heartbeat(cfg_t.heartbeat_interval, cfg_t.heartbeat_timeout))
        try:
            while not self._closed:
                try:
                    msg = await self.conn.read_msg()
                except ProtocolError as exc:
                    self.xl.warning("bad message from server: %s", exc)
                    break
                except (EOFError, OSError):
                    break
                self.handlers.dispatch(msg)
        finally:
            self.close()

    def _ignore(self, msg: m.Message) -> None:
        self.xl.debug("ignoring message %s", type(msg).__name__)

    # -- message handlers (in the order frps's messages are read) ------------------------------

    def _on_req_work_conn(self, msg: m.ReqWorkConn) -> None:
        self.spawn(self._new_work_conn())

    def _on_new_proxy_resp(self, msg: m.NewProxyResp) -> None:
        pw = self.client.proxies.get(self.client.local_name(msg.proxy_name))
        if pw is not None:
            pw.on_start_resp(msg)

    def _on_nat_hole_resp(self, msg: m.NatHoleResp) -> None:
        waiter = self.nathole_waiters.pop(msg.transaction_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(msg)

    def _on_pong(self, msg: m.Pong) -> None:
        if msg.error:
            self.xl.error("pong message contains error: %s", msg.error)
            self.close()
            return
        self.last_pong = time.monotonic()
        self.xl.debug("receive heartbeat from server")

    def send(self, message: m.Message) -> None:
        if not self._closed:
            self.conn.write_msg(message)

    async def connect_server(self) -> MsgConn:
        """A new logical connection to frps (visitors' connections, Go's ``Helper.ConnectServer``)."""
        return await self.connector.open()

    async def _heartbeat(self, interval: float, timeout: float) -> None:
        next_ping = 0.0
        while not self._closed:
            now = time.monotonic()
            if now >= next_ping:
                ping = m.Ping()
                try:
                    await self.client.auth.set_ping(ping)
                except AuthError as exc:  # Go retries after 1 s
                    self.xl.warning("error during ping authentication: %s, skip sending ping message", exc)
                    next_ping = now + 1
                else:
                    self.xl.debug("send heartbeat to server")
                    self.send(ping)
                    next_ping = now + interval
            if timeout > 0 and now - self.last_pong > timeout:
                self.xl.warning("heartbeat timeout")
                self.close()
                return
            await asyncio.sleep(1)

    async def _new_work_conn(self) -> None:
        new = m.NewWorkConn(run_id=self.run_id)
        try:
            await self.client.auth.set_new_work_conn(new)
        except AuthError as exc:
            self.xl.warning("error during NewWorkConn authentication: %s", exc)
            return
        try:
            conn = await self.connector.open(first=new)  # with tcpMux: the SYN and NewWorkConn in one write
        except (OSError, TimeoutError) as exc:
            self.xl.warning("start new connection to server error: %s", exc)
            return
        try:
            start = await conn.read_msg()
        except (ProtocolError, EOFError, OSError) as exc:
            self.xl.debug("work connection closed before StartWorkConn: %s", exc)
            conn.abort()
            return
        if not isinstance(start, m.StartWorkConn):
            self.xl.warning("unexpected %s on work connection", type(start).__name__)
            conn.abort()
            return
        if start.error:
            self.xl.error("StartWorkConn contains error: %s", start.error)
            conn.close()
            return
        pw = self.client.proxies.get(self.client.local_name(start.proxy_name))
        if pw is None or not pw.running:
            self.xl.warning("work connection for unknown or stopped proxy [%s]", start.proxy_name)
            conn.close()
            return
        await pw.handle_work_conn(conn, start)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for pw in self.client.proxies.values():
            pw.stop()
        for v in self.client.visitors.values():
            v.detach()
        self.conn.abort()
        self.connector.close()
        for t in list(self._tasks):
            t.cancel()
