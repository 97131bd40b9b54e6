"""The virtual frpc behind one ssh user (Go ``pkg/virtual``: a client Service on a pipe connector).

It logs in to frps over ``Server.open_internal`` connections (in-memory pipes; no TLS, no yamux, a control
that is not encrypted, as Go's internal listener), registers the user's one proxy with a NewProxy,
answers ReqWorkConn with NewWorkConn connections, and hands each StartWorkConn to the tunnel,
which pairs it with a ``forwarded-tcpip`` channel to the ssh client. So frps sees an ordinary
client: the same Login checks, proxy registry, vhosts and log lines; when the ssh connection ends
the control closes and frps removes the proxy.
"""

from __future__ import annotations

import asyncio
import logging
import platform
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from ... import FRP_VERSION
from ...auth.token import TokenAuth
from ...net.msgconn import Dispatcher, MsgConn
from ...proto import msg as m
from ...proto.errors import ProtocolError

if TYPE_CHECKING:
    from ...config.server import ServerConfig

log = logging.getLogger("aiofrp.server.sshgw")

LOGIN_TIMEOUT = 10.0  # LoginResp over the in-process connection
PROXY_READY_TIMEOUT = 3.0  # Go waits 1 s for the proxy's status (pkg/ssh/server.go waitProxyStatusReady)
HEARTBEAT_INTERVAL = 30.0  # Go frpc's transport.heartbeatInterval default
POOL_COUNT = 1  # Go frpc's transport.poolCount default

_GOARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "i686": "386"}


class InternalServer(Protocol):
    """What the gateway uses of frps (server/service.py: Server)."""

    @property
    def cfg(self) -> ServerConfig: ...

    @property
    def reuse_port(self) -> bool:
        """frps --workers N: every worker listens on the gateway's port (SO_REUSEPORT)."""
        ...

    def open_internal(self, peer: str) -> asyncio.Transport: ...


class VirtualClientError(Exception):
    """The virtual client could not log in or start its proxy; ``str()`` goes to the ssh user,
    ``log_text`` to Go's ``wait proxy status ready error: ...`` line."""

    def __init__(self, text: str, log_text: str | None = None) -> None:
        super().__init__(text)
        self.log_text = text if log_text is None else log_text


# Go's virtual client logs with this prefix (after the run id once it has one)
PREFIX = "[sshVirtualClient]"
# Go: a failed login ends vc.Run, which closes the tunnel before the proxy status wait ends
CLOSED = "ssh tunnel server closed"


WorkConnHandler = Callable[[MsgConn], Awaitable[None]]


class VirtualClient:
    def __init__(self, server: InternalServer, peer: str, *, token: str, always_auth_pass: bool,
                 on_work_conn: WorkConnHandler) -> None:
        self.server = server
        self.peer = peer
        self.auth = TokenAuth(frozenset(), token)  # Go: the ssh command's --token, no extra scopes
        self.always_auth_pass = always_auth_pass
        self.on_work_conn = on_work_conn
        self.run_id = ""
        self.ctl: MsgConn | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._proxy_resp: asyncio.Future[m.NewProxyResp] | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.dispatcher = (
            Dispatcher[None](default=lambda msg: None)
            .register(m.ReqWorkConn, self._on_req_work_conn)
            .register(m.NewProxyResp, self._on_new_proxy_resp)
        )

    async def _connect(self) -> MsgConn:
        transport = self.server.open_internal(self.peer)
        conn = MsgConn()
        transport.set_protocol(conn)
        conn.connection_made(transport)
        return conn

    async def start(self, user: str, req: m.NewProxy) -> str:
        """Log in as ``user`` and register the proxy; its remote address, or VirtualClientError."""
        login = m.Login(
            version=FRP_VERSION, os=sys.platform if sys.platform != "win32" else "windows",
            arch=_GOARCH.get(platform.machine().lower(), platform.machine().lower()),
            user=user, pool_count=POOL_COUNT,
            client_spec=m.ClientSpec(type="ssh-tunnel", always_auth_pass=self.always_auth_pass),
        )
        await self.auth.set_login(login)
        log.info("%s try to connect to server...", PREFIX)
        self.ctl = ctl = await self._connect()
        ctl.write_msg(login)
        try:
            resp = await ctl.read_msg(timeout=LOGIN_TIMEOUT)
        except (TimeoutError, EOFError, OSError, ProtocolError) as exc:
            err = str(exc) or type(exc).__name__
            log.warning("%s connect to server error: %s", PREFIX, err)
            raise VirtualClientError(f"login to the server failed: {err}", CLOSED) from None
        if not isinstance(resp, m.LoginResp) or resp.error:
            err = resp.error if isinstance(resp, m.LoginResp) else f"unexpected {type(resp).__name__}"
            log.error("%s %s", PREFIX, err)
            log.warning("%s connect to server error: %s", PREFIX, err)
            raise VirtualClientError(
                f"login to the server failed: {err}. With loginFailExit enabled, no additional retries will be attempted",
                CLOSED,
            )
        self.run_id = run_id = resp.run_id
        log.info("[%s] %s login to server success, get run id [%s]", run_id, PREFIX, run_id)
        self._spawn(self._run())
        self._spawn(self._heartbeat())
        self._proxy_resp = asyncio.get_running_loop().create_future()
        log.info("[%s] %s proxy added: [%s]", run_id, PREFIX, req.proxy_name)
        ctl.write_msg(req)
        try:
            async with asyncio.timeout(PROXY_READY_TIMEOUT):
                waiting: list[asyncio.Future[Any]] = [self._proxy_resp, self.closed]
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError:
            raise VirtualClientError("wait proxy status ready timeout") from None
        if not self._proxy_resp.done():
            raise VirtualClientError(CLOSED)
        presp = self._proxy_resp.result()
        if presp.error:
            log.warning("[%s] %s [%s] start error: %s", run_id, PREFIX, req.proxy_name, presp.error)
            raise VirtualClientError(presp.error)
        log.info("[%s] %s [%s] start proxy success", run_id, PREFIX, req.proxy_name)
        return presp.remote_addr

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("ssh tunnel: internal error: %r", task.exception(), exc_info=task.exception())

    async def _run(self) -> None:
        assert self.ctl is not None
        try:
            while True:
                msg = await self.ctl.read_msg()
                self.dispatcher.dispatch(msg)
        except (EOFError, OSError, ProtocolError):
            pass
        finally:
            if not self.closed.done():
                self.closed.set_result(None)

    async def _heartbeat(self) -> None:
        while self.ctl is not None and self.ctl.alive:
            await asyncio.sleep(HEARTBEAT_INTERVAL)
            ping = m.Ping()
            await self.auth.set_ping(ping)
            if self.ctl.alive:
                self.ctl.write_msg(ping)

    def _on_new_proxy_resp(self, resp: m.NewProxyResp) -> None:
        if self._proxy_resp is not None and not self._proxy_resp.done():
            self._proxy_resp.set_result(resp)

    def _on_req_work_conn(self, _: m.ReqWorkConn) -> None:
        self._spawn(self._work_conn())

    async def _work_conn(self) -> None:
        conn = await self._connect()
        req = m.NewWorkConn(run_id=self.run_id)
        await self.auth.set_new_work_conn(req)
        conn.write_msg(req)
        try:
            start = await conn.read_msg()
        except (EOFError, OSError, ProtocolError):
            conn.close()
            return
        if not isinstance(start, m.StartWorkConn) or start.error:
            conn.close()
            return
        await self.on_work_conn(conn)

    def close(self) -> None:
        """Go ``vc.Close()``: the control goes, and frps closes the client's proxy with it."""
        if self.ctl is not None:
            self.ctl.close()
        for task in list(self._tasks):
            task.cancel()
        if not self.closed.done():
            self.closed.set_result(None)
