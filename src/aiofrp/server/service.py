"""frps service: the bind-port listener with first-byte sniffing, TLS, yamux and dispatch."""

from __future__ import annotations

import asyncio
import enum
import logging
import socket
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from .. import FRP_VERSION
from ..auth import AuthError, new_verifier
from ..net.listen import listen_tcp
from ..net.msgconn import MsgConn
from ..net.mux import MuxSession, MuxStream
from ..net.tls import TLSTransport, server_context
from ..proto import msg as m
from ..proto.addr import fmt_addr
from ..proto.crypto import derive_key
from ..proto.errors import ProtocolError
from .control import Control
from .gate import PREAUTH_TIMEOUT, Gate, Stage
from .group import GroupRegistry
from .nathole import NatHoleController
from .ports import PortManager
from .proxies import ServerProxy
from .stats import ServerStats

if TYPE_CHECKING:
    from ..config.server import ServerConfig
    from .dashboard import Dashboard
    from .vhost.http import HTTPVhost
    from .vhost.https import HTTPSVhost
    from .vhost.tcpmux import TCPMuxVhost

log = logging.getLogger("aiofrp.server")

QUICK_SILENT_DELAY = 0.3  # quick mode: a silent public client is a server-speaks-first user
FIRST_MSG_TIMEOUT = 10.0  # a new stream of a trusted yamux session (see gate.py for the rest)
TLS_FIRST_BYTE = 0x17
TLS_HANDSHAKE_BYTE = 0x16


class Server:
    """One frps instance: owns the listeners, the controls and the proxy registry."""

    def __init__(self, cfg: ServerConfig, *, quick: bool = False) -> None:
        from ..config.unsupported import check_unsupported

        check_unsupported(cfg, "frps", "frps config")  # also for configs built in Python, not loaded
        self.cfg = cfg
        # Quick mode: only 0x17-prefixed TLS on the bind port is frp; every other connection is a
        # user connection of the proxy whose remotePort is the bind port (see cli/frp.py).
        self.quick = quick
        self.quick_proxy: ServerProxy | None = None
        self.token: str = cfg.auth.token
        self.key = derive_key(self.token)
        self.verifier = new_verifier(cfg.auth)  # auth.method: token or oidc (aiofrp/auth)
        tls = cfg.transport.tls
        self.tls_force = bool(tls.force or tls.trusted_ca_file)
        self.tls_ctx = server_context(tls.cert_file, tls.key_file, tls.trusted_ca_file)
        self.controls: dict[str, Control] = {}
        self.proxies: dict[str, ServerProxy] = {}  # global proxy names -> server proxy
        self.proxy_bind_addr: str = cfg.proxy_bind_addr or cfg.bind_addr
        self.ports = PortManager(cfg.allow_ports)
        self.groups = GroupRegistry(self.ports, self.proxy_bind_addr)  # loadBalancer groups
        self.nathole = NatHoleController(cfg, self.spawn)  # xtcp: brings visitors and providers together
        self.stats = ServerStats()  # the dashboard's and /metrics' figures (server/stats.py)
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self.gates: set[Gate] = set()  # bind-port connections not yet trusted (server/gate.py)
        self.bind_port = cfg.bind_port
        self.http_vhost: HTTPVhost | None = None  # server/vhost: made by start_vhosts when configured
        self.https_vhost: HTTPSVhost | None = None
        self.tcpmux_vhost: TCPMuxVhost | None = None
        self.dashboard: Dashboard | None = None  # webServer.port > 0 (server/dashboard.py)

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        await self.verifier.start()
        srv = await listen_tcp(lambda: _Sniff(self), self.cfg.bind_addr, self.cfg.bind_port)
        self._servers.append(srv)
        self.bind_port = srv.sockets[0].getsockname()[1]
        log.info("frps tcp listen on %s", fmt_addr((self.cfg.bind_addr, self.bind_port)))
        await self.start_vhosts()
        if self.cfg.enable_prometheus and not self.cfg.web_server.port:
            log.warning("enablePrometheus has no effect without webServer.port: /metrics is served by the dashboard")
        if self.cfg.web_server.port:
            from .dashboard import Dashboard

            self.dashboard = Dashboard(self)
            await self.dashboard.start()
        log.info("frps started successfully")

    async def start_vhosts(self) -> None:
        """Create the vhosts the config asks for, each on its own listener or sharing the bind
        port (http, https: same address and port, see _Sniff)."""
        from .vhost.http import HTTPVhost
        from .vhost.https import HTTPSVhost
        from .vhost.tcpmux import TCPMuxVhost

        cfg = self.cfg
        addr = self.proxy_bind_addr
        same_addr = addr == cfg.bind_addr

        async def listen(vhost: HTTPVhost | HTTPSVhost | TCPMuxVhost, port: int, what: str, shareable: bool) -> None:
            vhost.shared = shareable and same_addr and port == self.bind_port
            if vhost.shared:
                log.info("%s service shares the bind port %s", what, fmt_addr((addr, port)))
                return
            srv = await vhost.listen(addr, port)
            self._servers.append(srv)
            vhost.port = srv.sockets[0].getsockname()[1] if port == 0 else port
            log.info("%s service listen on %s", what, fmt_addr((addr, vhost.port)))

        if cfg.vhost_http_port:
            self.http_vhost = HTTPVhost(cfg, self.spawn)
            await listen(self.http_vhost, cfg.vhost_http_port, "http", True)
        if cfg.vhost_https_port:
            self.https_vhost = HTTPSVhost(cfg, self.spawn)
            await listen(self.https_vhost, cfg.vhost_https_port, "https", True)
        if cfg.tcpmux_http_connect_port:
            self.tcpmux_vhost = TCPMuxVhost(cfg, self.spawn)
            await listen(self.tcpmux_vhost, cfg.tcpmux_http_connect_port, "tcpmux httpconnect multiplexer", False)

    async def close(self) -> None:
        if self.dashboard is not None:
            await self.dashboard.close()
        for srv in self._servers:
            srv.close()
        for ctl in list(self.controls.values()):
            ctl.close()
        for gate in list(self.gates):
            gate.hand_off()
            gate.raw.abort()
        for t in list(self._tasks):
            t.cancel()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("internal error: %r", task.exception(), exc_info=task.exception())

    # -- connection set-up ----------------------------------------------------------------

    def on_transport_ready(self, transport: asyncio.BaseTransport, data: bytes, gate: Gate) -> None:
        """A connection after sniffing: TLS decided, ``data`` is its first plaintext bytes."""
        if self.cfg.transport.tcp_mux:
            gate.stage = Stage.NO_STREAM
            proto: asyncio.Protocol = _ServerMux(self, gate)
        else:
            gate.stage = Stage.NO_MESSAGE
            proto = _FirstConn(self, gate, top=True)
        transport.set_protocol(proto)
        proto.connection_made(transport)
        if data:
            proto.data_received(data)

    def quick_user_conn(self, transport: asyncio.Transport, data: bytes) -> None:
        """Quick mode: hand a public connection (already sniffed) to the bind-port proxy."""
        from ..net.relay import PendingConn

        proxy = self.quick_proxy
        if proxy is None:
            log.info("connection from %s: no tunnel client is connected yet, closing",
                     fmt_addr(transport.get_extra_info("peername")))
            transport.abort()
            return
        conn = PendingConn()
        transport.set_protocol(conn)
        conn.connection_made(transport)
        if data:
            conn.data_received(data)
        self.spawn(proxy.handle_user_conn(conn))

    def start_tls(self, transport: asyncio.Transport, data: bytes, gate: Gate) -> None:
        if self.cfg.transport.tcp_mux:
            proto: asyncio.Protocol = _ServerMux(self, gate)
        else:
            proto = _FirstConn(self, gate, top=True)
        gate.stage = Stage.TLS_HANDSHAKE
        tls = TLSTransport(transport, self.tls_ctx, proto, server_side=True, initial_data=data)

        def done(fut: asyncio.Future[None]) -> None:
            exc = fut.exception()
            if exc is None:
                gate.stage = Stage.NO_STREAM if self.cfg.transport.tcp_mux else Stage.NO_MESSAGE
            elif isinstance(exc, ConnectionResetError):
                gate.peer_closed("closed by the peer during the TLS handshake")
            else:
                gate.fail(f"TLS handshake failed: {exc or type(exc).__name__}")

        tls.handshake.add_done_callback(done)

    async def handle_conn(self, conn: _FirstConn) -> None:
        """The first message of a logical connection (a TCP connection, or a yamux stream)."""
        gate = conn.gate
        peer = gate.peer
        try:
            # untrusted: the gate's deadline (whole connection) applies; a trusted session's new
            # stream gets its own
            first = await conn.read_msg(timeout=FIRST_MSG_TIMEOUT if gate.trusted else PREAUTH_TIMEOUT + 1)
        except TimeoutError:
            if not gate.fail(f"no login within {PREAUTH_TIMEOUT:g}s ({gate.stage})"):
                log.info("stream from %s sent no message in %ds, closing", peer, FIRST_MSG_TIMEOUT)
                conn.abort()
            return
        except ProtocolError as exc:
            if not gate.fail(f"bad message: {exc}"):
                log.warning("bad message from %s: %s, closing the stream", peer, exc)
                conn.abort()
            return
        except (EOFError, OSError) as exc:
            if conn.top or not gate.trusted:
                if conn.top:
                    gate.peer_closed(f"closed by the peer before its first message ({_eof_reason(exc, conn)})")
                else:  # a stream of an untrusted session that ends without a message
                    gate.fail(f"yamux stream closed before its first message ({_eof_reason(exc, conn)})")
            else:
                log.debug("stream from %s closed before its first message: %s", peer, exc or type(exc).__name__)
            conn.abort()
            return
        handler = FIRST_MESSAGE_HANDLERS.get(type(first))
        if handler is None:
            if not gate.fail(f"unexpected first message {type(first).__name__}"):
                log.warning("unexpected first message %s from %s, closing the stream", type(first).__name__, peer)
                conn.abort()
            return
        gate.begin()
        try:
            await handler(self, conn, first)
        finally:
            gate.end()

    # -- login ----------------------------------------------------------------------------

    async def handle_login(self, conn: _FirstConn, login: m.Login) -> None:
        peer = conn.gate.peer
        try:
            auth = await self.verifier.verify_login(login)
        except AuthError as exc:
            self.refuse_login(conn, str(exc))
            return
        run_id = login.run_id or new_run_id()
        old = self.controls.get(run_id)
        if old is not None:
            log.info("[%s] replacing the previous control of this client", run_id)
            old.close()
            await old.finished
        log.info(
            "[%s] client login info: ip [%s] version [%s] hostname [%s] os [%s] arch [%s]%s",
            run_id, peer, login.version, login.hostname, login.os, login.arch,
            f" client_id [{login.client_id}]" if login.client_id else "",
        )
        ctl = Control(self, conn, login, run_id)
        ctl.auth = auth
        self.controls[run_id] = ctl
        conn.gate.trust()
        conn.write_msg(m.LoginResp(version=FRP_VERSION, run_id=run_id))
        conn.enable_encryption(self.key)
        peername = conn.gate.raw.get_extra_info("peername")
        peer_ip = str(peername[0]) if isinstance(peername, tuple) and peername else ""
        peer_ip = peer_ip.removeprefix("::ffff:") if "." in peer_ip else peer_ip  # IPv4 on a dual-stack socket
        self.stats.new_client(login.user, login.client_id, run_id, login.hostname, login.version, peer_ip)
        try:
            await ctl.run()
        finally:
            self.stats.close_client(run_id)
            if self.controls.get(run_id) is ctl:
                del self.controls[run_id]

    def refuse_login(self, conn: _FirstConn, reason: str) -> None:
        """Answer a Login with an error, then close the connection (see gate.py)."""
        self.stats.login_failed(_failure_kind(reason))
        err = reason if self.cfg.detailed_errors_to_client else "register control error"
        conn.write_msg(m.LoginResp(version=FRP_VERSION, error=err))
        if not conn.gate.fail(reason, login=True, flush=True):
            conn.close()

    async def handle_visitor_conn(self, conn: _FirstConn, msg: m.NewVisitorConn) -> None:
        """A visitor frpc wants a secret proxy (stcp/sudp): the proxy type checks it and serves it."""
        proxy = self.proxies.get(msg.proxy_name)
        if proxy is None or not proxy.takes_visitors:
            err, absent = f"custom listener for [{msg.proxy_name}] doesn't exist", True
        elif proxy.closed:
            err, absent = "proxy is closed", True
        else:
            err, absent = proxy.check_visitor(msg), False
        if err or proxy is None:
            detail = err if self.cfg.detailed_errors_to_client else "register visitor conn error"
            conn.write_msg(m.NewVisitorConnResp(proxy_name=msg.proxy_name, error=detail))
            # A logged-in client's visitor asking for a proxy that is not (yet, or any more) there
            # is no attack: visitors retry that right after an frps restart (client/visitors/base.py).
            gate = conn.gate
            absent = absent and bool(msg.run_id) and msg.run_id in self.controls
            reason = f"register visitor conn error: {err}"
            if not (gate.refuse(reason) if absent else gate.fail(reason, flush=True)):
                log.warning("register visitor conn error: %s (visitor %s)", err, conn.gate.peer)
                conn.close()
            return
        conn.gate.trust()
        await proxy.handle_visitor_conn(conn, msg)

    def visitor_user(self, run_id: str) -> str | None:
        """The user of the logged-in client with this run id ("" for none); None if unknown."""
        if not run_id:
            return ""
        ctl = self.controls.get(run_id)
        return ctl.user if ctl is not None else None

    async def handle_work_conn(self, conn: _FirstConn, msg: m.NewWorkConn) -> None:
        ctl = self.controls.get(msg.run_id)
        if ctl is None:
            err = f"no client control found for run id [{msg.run_id}]"
        else:
            try:
                await ctl.auth.verify_new_work_conn(msg)
            except AuthError as exc:
                err = str(exc)
            else:
                conn.gate.trust()
                ctl.register_work_conn(conn)
                return
        detail = err if self.cfg.detailed_errors_to_client or ctl is None else "invalid NewWorkConn"
        conn.write_msg(m.StartWorkConn(error=detail))
        if not conn.gate.fail(f"work connection refused: {err}", flush=True):
            log.warning("work connection from %s refused: %s", conn.gate.peer, err)
            conn.close()


# What the first message of a logical connection makes of it (Go: service.go handleConnection).
FIRST_MESSAGE_HANDLERS: dict[type[m.Message], Callable[[Server, _FirstConn, Any], Awaitable[None]]] = {
    m.Login: Server.handle_login,
    m.NewWorkConn: Server.handle_work_conn,
    m.NewVisitorConn: Server.handle_visitor_conn,
}


def _failure_kind(reason: str) -> str:
    """A login failure's reason as a metric label (few values, no user input)."""
    low = reason.lower()
    for word, kind in (("timestamp", "timestamp"), ("token", "token"), ("oidc", "oidc"), ("version", "version")):
        if word in low:
            return kind
    return "other"


def new_run_id() -> str:
    import os

    return os.urandom(8).hex()


class _Sniff(asyncio.Protocol):
    """Reads the first bytes of a bind-port connection and decides: TLS or plaintext frp."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.gate: Gate | None = None
        self.timer: asyncio.TimerHandle | None = None  # quick mode: silent public clients
        self.buf = b""  # first bytes, while they cannot tell yet where the connection goes

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        ka = self.server.cfg.transport.tcp_keepalive
        if sock is not None and ka > 0:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
                if hasattr(socket, "TCP_KEEPIDLE"):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, ka)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, ka)
            except OSError:
                pass
        self.gate = Gate(self.server, self.transport)  # type: ignore[arg-type]
        self.gate.sniff = self
        if self.server.quick:
            self.timer = asyncio.get_running_loop().call_later(QUICK_SILENT_DELAY, self._quick_timeout)

    def _quick_timeout(self) -> None:
        if self.transport is not None and self.gate is not None:
            self._leave()
            self.gate.hand_off()
            self.server.quick_user_conn(self.transport, self.buf)

    def deadline_handoff(self) -> bool:
        """The gate's deadline while still sniffing: a stalled partial HTTP method goes to the
        shared vhost (it answers that itself); True if it was handed over."""
        if self.buf and self.transport is not None and _sniff_vhost(self.server, self.buf, final=True) is Sniffed.HTTP:
            self._leave()
            assert self.gate is not None
            self.gate.hand_off()
            assert self.server.http_vhost is not None  # _sniff_vhost found it sharing the port
            self.server.http_vhost.accept(self.transport, self.buf)
            return True
        return False

    def _leave(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.gate is not None:
            self.gate.sniff = None

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None and self.gate is not None
        gate = self.gate
        if self.buf:
            data, self.buf = self.buf + data, b""
        first = data[0]
        vhost = _sniff_vhost(self.server, data) if first != TLS_FIRST_BYTE else Sniffed.FRP
        if vhost is None:  # a prefix of an HTTP method or of "GET /~!frp": wait for more
            self.buf = data
            gate.stage = Stage.INCOMPLETE_FIRST_BYTES
            return
        self._leave()
        if vhost is Sniffed.HTTP:
            gate.hand_off()
            assert self.server.http_vhost is not None  # _sniff_vhost found it sharing the port
            self.server.http_vhost.accept(self.transport, data)
        elif vhost is Sniffed.HTTPS:
            gate.hand_off()
            assert self.server.https_vhost is not None
            self.server.https_vhost.accept(self.transport, data)
        elif vhost is Sniffed.WEBSOCKET:
            gate.fail("frp over websocket is not supported")
        elif first == TLS_FIRST_BYTE:
            self.server.start_tls(self.transport, data[1:], gate)
        elif self.server.quick:
            gate.hand_off()
            self.server.quick_user_conn(self.transport, data)
        elif first == TLS_HANDSHAKE_BYTE:
            self.server.start_tls(self.transport, data, gate)
        elif self.server.tls_force:
            gate.fail("non-TLS connection refused (transport.tls.force)")
        else:
            self.server.on_transport_ready(self.transport, data, gate)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._leave()
        if self.gate is not None:
            self.gate.connection_lost()


_HTTP_METHODS = (b"GET", b"HEA", b"POS", b"PUT", b"DEL", b"CON", b"OPT", b"TRA", b"PAT")
_WEBSOCKET_PREFIX = b"GET /~!frp"  # frp's websocket transport path on the bind port


class Sniffed(enum.Enum):
    """Who the first bytes of a bind-port connection are for (frp §1.3)."""

    FRP = "frp"  # frpc (plaintext or TLS)
    HTTP = "http"  # the http vhost sharing the bind port
    HTTPS = "https"  # the https vhost sharing the bind port
    WEBSOCKET = "websocket"  # frp over websocket (GET /~!frp), not supported


def _sniff_vhost(server: Server, data: bytes, *, final: bool = False) -> Sniffed | None:
    """Port reuse (frp §1.3): HTTPS/HTTP when a vhost shares the bind port and the first bytes are
    a TLS handshake / an HTTP method, WEBSOCKET for frp's websocket path, else FRP; None while the
    bytes so far are a prefix of a method (``final``: no more bytes will come)."""
    https, http = server.https_vhost, server.http_vhost
    if https is not None and https.shared and data[0] == TLS_HANDSHAKE_BYTE:
        return Sniffed.HTTPS
    if http is None or not http.shared:
        return Sniffed.FRP
    head = data[:3]
    if len(data) < 3:
        return None if not final and any(m.startswith(data) for m in _HTTP_METHODS) else Sniffed.FRP
    if head not in _HTTP_METHODS:
        return Sniffed.FRP
    if data.startswith(_WEBSOCKET_PREFIX):
        return Sniffed.WEBSOCKET
    if len(data) < len(_WEBSOCKET_PREFIX) and _WEBSOCKET_PREFIX.startswith(data) and not final:
        return None
    return Sniffed.HTTP


class _FirstConn(MsgConn):
    """A logical frp connection whose first message decides what it is: the whole TCP connection
    (``top``), or one yamux stream of it."""

    def __init__(self, server: Server, gate: Gate, *, top: bool = False) -> None:
        super().__init__()
        self.server = server
        self.gate = gate
        self.top = top

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.server.spawn(self.server.handle_conn(self))

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.top:
            self.gate.connection_lost()


class _ServerMux(MuxSession):
    """frps side of a yamux session: every stream the client opens is a logical connection."""

    def __init__(self, server: Server, gate: Gate) -> None:
        super().__init__(
            client=False,
            on_stream=self._on_stream,
            keepalive_interval=server.cfg.transport.tcp_mux_keepalive_interval,
        )
        self.server = server
        self.gate = gate

    def _on_stream(self, stream: MuxStream) -> None:
        if not self.gate.trusted:
            self.gate.stage = Stage.NO_LOGIN_STREAMS
        conn = _FirstConn(self.server, self.gate)
        stream.set_protocol(conn)
        conn.connection_made(stream)

    def session_error(self, exc: Exception) -> None:
        if self.gate.fail(f"yamux: {exc}"):
            self._shutdown(exc)
        else:
            super().session_error(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.gate.connection_lost()


def _eof_reason(exc: BaseException, conn: MsgConn) -> str:
    """How a connection ended before its first message, for the log line."""
    got = conn.buffered
    what = f"after {got} bytes of an incomplete message" if got else "without sending a message"
    return what if isinstance(exc, EOFError) else f"{what}: {exc or type(exc).__name__}"
