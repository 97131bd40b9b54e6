"""frps service: the bind-port listener with first-byte sniffing, TLS, yamux and dispatch."""

from __future__ import annotations

import asyncio
import enum
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

import msgspec

from .. import FRP_VERSION
from ..auth import ALWAYS_PASS, AuthError, LoginAuth, new_verifier
from ..net.dialerr import listen_error_text
from ..net.listen import listen_tcp
from ..net.msgconn import MsgConn
from ..net.mux import MuxSession, MuxStream
from ..net.pipe import pipe
from ..net.tls import TLSTransport, load_self_signed, server_context, start_self_signed_pair
from ..proto import msg as m
from ..proto import wire
from ..proto.addr import fmt_addr
from ..proto.crypto import derive_key
from ..proto.errors import ProtocolError
from .banlist import BanList, FailLimit
from .control import Control
from .errors import ListenerError
from .gate import PREAUTH_TIMEOUT, Gate, Stage, peer_host
from .group import GroupRegistry
from .listeners import Listener, start_listeners
from .plugin import Manager, Op, PluginRefused
from .ports import PortManager
from .proxies import ServerProxy
from .stats import OFFLINE_KEEP, ServerStats
from .workers.registry import LocalRegistry, Registry

if TYPE_CHECKING:
    from ..config.server import ServerConfig
    from .dashboard import Dashboard
    from .nathole import NatHoleController
    from .sshgw import Gateway
    from .vhost.http import HTTPVhost
    from .vhost.https import HTTPSVhost
    from .vhost.tcpmux import TCPMuxVhost
    from .workers.handover import Handover

log = logging.getLogger("aiofrp.server")

STATS_SWEEP_INTERVAL = 12 * 3600.0  # Go: pkg/metrics/mem clears proxies offline for 7 days every 12 h

QUICK_SILENT_DELAY = 0.3  # quick mode: a silent public client is a server-speaks-first user
FIRST_MSG_TIMEOUT = 10.0  # a new stream of a trusted yamux session (see gate.py for the rest)
# yamux streams of one session that have sent nothing yet; more are reset. Go frps has
# hashicorp/yamux's AcceptBacklog (256) but accepts at once, so there it is a goroutine per stream.
MAX_PENDING_STREAMS = 256
MAX_REMOTE_VISITORS = 10_000  # run ids of visitors relayed from other workers, remembered for their user
TLS_FIRST_BYTE = 0x17
TLS_HANDSHAKE_BYTE = 0x16


class Server:
    """One frps instance: owns the listeners, the controls and the proxy registry."""

    def __init__(self, cfg: ServerConfig, *, quick: bool = False, fail_limit: FailLimit | None = None,
                 registry: Registry | None = None, reuse_port: bool = False, dashboard_unix: str = "") -> None:
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
        self.tls_ctx = server_context(tls.cert_file, tls.key_file, tls.trusted_ca_file, self_signed=False)
        # no certificate configured: a self-signed one, made in a child process meanwhile (see
        # net/tls.py start_self_signed_pair) and loaded before the first handshake
        self._self_signed = start_self_signed_pair() if not (tls.cert_file or tls.key_file) else None
        self.controls: dict[str, Control] = {}
        self.proxies: dict[str, ServerProxy] = {}  # this process's proxies by (global) name
        # run ids, proxy names, groups of all processes (server/workers/registry.py): this process's
        # own book with --workers 1, the supervisor's over a unix socket in a worker
        self.registry: Registry = registry if registry is not None else LocalRegistry(self.evict)
        self.reuse_port = reuse_port  # a worker of frps --workers N: the bind port has SO_REUSEPORT
        self.dashboard_unix = dashboard_unix  # a worker: its dashboard on this unix socket, for the supervisor
        self.handover: Handover | None = None  # a worker: connections for other workers (workers/handover.py)
        self.remote_visitors: dict[str, str] = {}  # a worker: run id -> user of visitors relayed to it
        self.proxy_bind_addr: str = cfg.proxy_bind_addr or cfg.bind_addr
        self.ports = PortManager(cfg.allow_ports)
        self.groups = GroupRegistry(self.ports, self.proxy_bind_addr, self.registry,  # loadBalancer groups
                                    reuse_port=reuse_port)
        self.plugins = Manager(cfg.http_plugins)  # [[httpPlugins]]: server manage plugins (server/plugin)
        self.stats = ServerStats()  # the dashboard's and /metrics' figures (server/stats.py)
        self._nathole: NatHoleController | None = None
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self.gates: set[Gate] = set()  # bind-port connections not yet trusted (server/gate.py)
        self.banlist = BanList(fail_limit or FailLimit())  # aiofrp's --login-fail-* (server/banlist.py)
        self.bind_port = cfg.bind_port
        self.http_vhost: HTTPVhost | None = None  # server/vhost: made by start_vhosts when configured
        self.https_vhost: HTTPSVhost | None = None
        self.tcpmux_vhost: TCPMuxVhost | None = None
        self.ssh_gateway: Gateway | None = None  # sshTunnelGateway (server/sshgw)
        self.listeners: list[Listener] = []
        self.dashboard: Dashboard | None = None  # webServer.port > 0 (server/dashboard.py)

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        await self.verifier.start()
        try:
            srv = await listen_tcp(lambda: _Sniff(self), self.cfg.bind_addr, self.cfg.bind_port,
                                   reuse_port=self.reuse_port)
        except OSError as exc:
            raise ListenerError(f"create server listener error, "
                                f"{listen_error_text(fmt_addr((self.cfg.bind_addr, self.cfg.bind_port)), exc)}") from exc
        self._servers.append(srv)
        self.bind_port = srv.sockets[0].getsockname()[1]
        log.info("frps tcp listen on %s", fmt_addr((self.cfg.bind_addr, self.bind_port)))
        if self.cfg.ssh_tunnel_gateway.bind_port > 0:
            from .sshgw import Gateway

            self.ssh_gateway = await Gateway.start(self)
        self.listeners = await start_listeners(self)  # kcpBindPort, quicBindPort (server/listeners.py)
        await self.start_vhosts()
        if self.cfg.enable_prometheus and not self.cfg.web_server.port:
            log.warning("enablePrometheus has no effect without webServer.port: /metrics is served by the dashboard")
        if self.cfg.web_server.port:
            from .dashboard import Dashboard

            self.dashboard = Dashboard(self, unix_path=self.dashboard_unix)
            await self.dashboard.start()
        self.spawn(self._sweep_stats())
        log.info("frps started successfully")

    async def _sweep_stats(self) -> None:
        """Go's statistics collector: every 12 h, forget proxies offline for more than 7 days (the
        dashboard's and /metrics' figures; frps gathers them with or without a dashboard)."""
        while True:
            await asyncio.sleep(STATS_SWEEP_INTERVAL)
            cleared, total = self.stats.clear_offline(OFFLINE_KEEP)
            log.debug("clear useless proxy statistics data count %d/%d", cleared, total)

    async def start_vhosts(self) -> None:
        """Create the vhosts the config asks for, each on its own listener or sharing the bind
        port (http, https: same address and port, see _Sniff). Each vhost's module is imported
        only when the config asks for it."""
        cfg = self.cfg
        addr = self.proxy_bind_addr
        same_addr = addr == cfg.bind_addr

        async def listen(vhost: HTTPVhost | HTTPSVhost | TCPMuxVhost, port: int, what: str, shareable: bool) -> None:
            vhost.reuse_port = self.reuse_port
            vhost.elsewhere = self.handover
            vhost.shared = shareable and same_addr and port == self.bind_port
            if vhost.shared:
                log.info("%s service shares the bind port %s", what, fmt_addr((addr, port)))
                return
            try:
                srv = await vhost.listen(addr, port)
            except OSError as exc:  # Go's words: its http vhost names itself, the others do not
                which = "vhost http" if what == "http" else "server"
                raise ListenerError(f"create {which} listener error, "
                                    f"{listen_error_text(fmt_addr((addr, port)), exc)}") from exc
            self._servers.append(srv)
            vhost.port = srv.sockets[0].getsockname()[1] if port == 0 else port
            log.info("%s service listen on %s", what, fmt_addr((addr, vhost.port)))

        if cfg.vhost_http_port:
            from .vhost.http import HTTPVhost

            self.http_vhost = HTTPVhost(cfg, self.spawn)
            await listen(self.http_vhost, cfg.vhost_http_port, "http", True)
        if cfg.vhost_https_port:
            from .vhost.https import HTTPSVhost

            self.https_vhost = HTTPSVhost(cfg, self.spawn)
            await listen(self.https_vhost, cfg.vhost_https_port, "https", True)
        if cfg.tcpmux_http_connect_port:
            from .vhost.tcpmux import TCPMuxVhost

            self.tcpmux_vhost = TCPMuxVhost(cfg, self.spawn)
            await listen(self.tcpmux_vhost, cfg.tcpmux_http_connect_port, "tcpmux httpconnect multiplexer", False)

    async def close(self) -> None:
        if self.dashboard is not None:
            await self.dashboard.close()
        for srv in self._servers:
            srv.close()
        if self.ssh_gateway is not None:
            self.ssh_gateway.close()
        for lst in self.listeners:
            lst.close()
        for ctl in list(self.controls.values()):
            ctl.close()
        for gate in list(self.gates):
            gate.hand_off()
            gate.raw.abort()
        for t in list(self._tasks):
            t.cancel()
        await self.plugins.close()

    @property
    def nathole(self) -> NatHoleController:
        """xtcp's controller, which brings visitors and providers together: made (and its module,
        with the NAT hole protocol, imported: 0.2 MB resident) when the first xtcp proxy or NAT
        hole message comes."""
        if self._nathole is None:
            from .nathole import NatHoleController

            handover = self.handover
            self._nathole = NatHoleController(self.cfg, self.spawn, self.registry,
                                              handover.send_msg if handover is not None else None, self._deliver)
        return self._nathole

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

    def start_tls(self, transport: asyncio.Transport, data: bytes, gate: Gate, *, websocket: bool = False) -> None:
        """TLS on a bind-port connection; ``websocket``: the plaintext may be ``GET /~!frp``
        (wss terminated by frps itself, beyond Go)."""
        proto: asyncio.Protocol
        if websocket:
            proto = _AfterTLS(self, gate)
        elif self.cfg.transport.tcp_mux:
            proto = _ServerMux(self, gate)
        else:
            proto = _FirstConn(self, gate, top=True)
        gate.stage = Stage.TLS_HANDSHAKE
        if self._self_signed is not None:
            load_self_signed(self.tls_ctx, self._self_signed)  # once; waits for the child if still busy
            self._self_signed = None
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

    def accept_websocket(self, transport: asyncio.Transport, data: bytes, gate: Gate, *, tls_done: bool) -> None:
        """``GET /~!frp`` on the bind port (or inside TLS on it): answer the upgrade, then treat the
        websocket's byte stream like a bind-port connection (TLS first byte or plaintext, yamux)."""
        from ..net.websocket import ServerHandshake, WebSocketConn

        gate.stage = Stage.WEBSOCKET_HANDSHAKE
        hs = ServerHandshake(transport)
        transport.set_protocol(hs)

        def done(fut: asyncio.Future[WebSocketConn]) -> None:
            exc = fut.exception()
            if exc is not None:
                if isinstance(exc, EOFError | ConnectionError) and not str(exc).startswith("bad websocket"):
                    gate.peer_closed(f"closed by the peer during the websocket handshake ({exc})")
                else:  # the HTTP refusal is flushed, then the connection closed
                    gate.fail(str(exc), flush=True)
                return
            ws = fut.result()
            gate.stage = Stage.NOTHING
            sniff = _Sniff(self, frp_only=True, gate=gate, tls_done=tls_done)
            holder = ws.holder
            ws.set_protocol(sniff)
            sniff.connection_made(ws)
            if holder is not None:
                if holder.early:
                    sniff.data_received(bytes(holder.early))
                if holder.lost or holder.eof:
                    sniff.connection_lost(holder.exc)

        hs.done.add_done_callback(done)
        if data:
            hs.data_received(data)

    async def handle_conn(self, conn: _FirstConn, first: m.Message | None = None) -> None:
        """The first message of a logical connection (a TCP connection, or a yamux stream);
        ``first``: the message, when it was read already (_FirstConn.data_received)."""
        if first is not None:
            await self._handle_first(conn, first)
            return
        gate = conn.gate
        peer = gate.peer
        try:
            # untrusted: the gate's deadline (whole connection) applies; a trusted session's new
            # stream gets its own
            try:
                first = await self.first_message(conn, FIRST_MSG_TIMEOUT if gate.trusted else PREAUTH_TIMEOUT + 1)
            finally:
                conn.heard()
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
        await self._handle_first(conn, first)

    async def _handle_first(self, conn: _FirstConn, first: m.Message) -> None:
        gate = conn.gate
        peer = gate.peer
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

    def open_internal(self, peer: str) -> asyncio.Transport:
        """A connection into frps from inside the process (Go: the ssh tunnel gateway's
        ``sshTunnelListener``, served with ``internal = true``): the returned transport is one end
        of an in-memory pipe (net/pipe.py) whose other end frps serves like a bind-port connection
        past TLS and yamux, trusted from the start; ``peer`` names it in the log lines (the ssh
        user's address). Give the returned end its protocol before the loop runs again."""
        ours, theirs = pipe(asyncio.get_running_loop())
        proto = _Internal(self, peer)
        ours.set_protocol(proto)
        proto.connection_made(ours)
        return theirs

    async def first_message(self, conn: _FirstConn, timeout: float) -> m.Message:
        """The first message of a logical connection, v1 or v2 (§1.8: the magic decides, on every
        logical connection); a v2 ClientHello before it is answered with a ServerHello (§2.4)."""
        async with asyncio.timeout(timeout):
            if await conn.detect_wire() == "v1":
                return await conn.read_msg()
            frame = await conn.read_frame()
            if frame.type == wire.FRAME_CLIENT_HELLO:
                try:
                    server_hello, algorithm = wire.answer_client_hello(frame.payload)
                except wire.HelloRefused as exc:
                    conn.write_raw(wire.encode_frame(wire.FRAME_SERVER_HELLO, exc.server_hello))
                    raise
                conn.write_raw(wire.encode_frame(wire.FRAME_SERVER_HELLO, server_hello))
                conn.v2_crypto = (algorithm, wire.transcript_hash(frame.payload, server_hello))
                return await conn.read_msg()
            return wire.decode_message(frame)

    # -- login ----------------------------------------------------------------------------

    async def handle_login(self, conn: _FirstConn, login: m.Login) -> None:
        peer = conn.gate.peer
        if conn.wire_protocol == "v2" and conn.v2_crypto is None:  # a v2 Login without ClientHello
            self.refuse_login(conn, "missing v2 crypto negotiation")
            return
        try:
            # Go: service.go handleConnection asks the Login plugins first; they may rewrite it
            login = await self.plugins.login(login, peer)
            # Go RegisterControl: an internal client (the ssh gateway's, whose user passed the
            # ssh key check) may skip the auth method
            auth: LoginAuth = (
                ALWAYS_PASS if conn.internal and login.client_spec.always_auth_pass
                else await self.verifier.verify_login(login)
            )
        except AuthError as exc:
            self.refuse_login(conn, str(exc))
            return
        except PluginRefused as exc:
            self.refuse_login(conn, str(exc), suspicious=exc.rejected)
            return
        run_id = login.run_id or new_run_id()
        # the registry closes the previous control of this run id first, in whichever process
        # (Server.evict; Go: ControlManager.Add)
        try:
            lease = await self.registry.claim("runid", run_id, evict=True)
        except ConnectionError as exc:
            self.refuse_login(conn, f"frps registry unavailable: {exc}", suspicious=False)
            return
        assert lease is not None  # evict=True always grants
        log.info(
            "[%s] client login info: ip [%s] version [%s] hostname [%s] os [%s] arch [%s]%s%s",
            run_id, peer, login.version, login.hostname, login.os, login.arch,
            f" client_id [{login.client_id}]" if login.client_id else "",
            " wire protocol [v2]" if conn.wire_protocol == "v2" else "",
        )
        ctl = Control(self, conn, login, run_id)
        ctl.auth = auth
        self.controls[run_id] = ctl
        conn.gate.trust()
        conn.write_msg(m.LoginResp(version=FRP_VERSION, run_id=run_id))
        if not conn.internal:  # Go: the control of an internal client is not encrypted
            conn.enable_control_crypto(self.token, self.key, client=False)
        peername = conn.gate.raw.get_extra_info("peername")
        peer_ip = str(peername[0]) if isinstance(peername, tuple) and peername else ""
        peer_ip = peer_ip.removeprefix("::ffff:") if "." in peer_ip else peer_ip  # IPv4 on a dual-stack socket
        self.stats.new_client(login.user, login.client_id, run_id, login.hostname, login.version, peer_ip,
                              conn.wire_protocol or "v1")
        try:
            await ctl.run()
        finally:
            self.stats.close_client(run_id)
            if self.controls.get(run_id) is ctl:
                del self.controls[run_id]
            self.registry.release(lease)

    def vhosts(self) -> dict[str, HTTPVhost | HTTPSVhost | TCPMuxVhost | None]:
        """The vhosts by the kind a handed-over connection or a route question names."""
        return {"http": self.http_vhost, "https": self.https_vhost, "tcpmux": self.tcpmux_vhost}

    def has_route(self, kind: str, host: str, path: str, user: str) -> bool:
        """frps --workers N: whether this worker serves a vhost route for the request (another
        worker asks through the registry before handing the connection over)."""
        vhost = self.vhosts().get(kind)
        route = vhost.router.find(host, path, user) if vhost is not None else None
        return route is not None and bool(route.members)

    def adopt(self, kind: str, sock: socket.socket | None, data: bytes) -> None:
        """A connection handed over by another worker (server/workers/handover.py), or a message
        of its (``sock`` None: the NAT-hole controllers' ``nathole``/``natholeresp``)."""
        if sock is None:
            if kind.startswith("nathole"):
                self.nathole.on_worker_message(kind, data)
            return
        self.spawn(self._adopt(kind, sock, data))

    def _deliver(self, run_id: str, msg: m.Message) -> bool:
        """``msg`` on the control of ``run_id`` in this process (from another worker); False: none."""
        ctl = self.controls.get(run_id)
        if ctl is None or ctl.finished.done():
            return False
        ctl.conn.write_msg(msg)
        return True

    async def _adopt(self, kind: str, sock: socket.socket, data: bytes) -> None:
        if kind == "visitor":
            await self._adopt_visitor(sock, data)
            return
        if kind == "work":
            await self._adopt_work_conn(sock, data)
            return
        try:
            transport, holder = await asyncio.get_running_loop().connect_accepted_socket(_Holder, sock)
        except OSError as exc:
            log.debug("handed-over %s connection lost: %s", kind, exc)
            sock.close()
            return
        vhost = self.vhosts().get(kind)
        if vhost is None:
            transport.abort()
            return
        vhost.accept(transport, data + bytes(holder.data), handed=True)
        if holder.eof:
            transport.get_protocol().eof_received()  # type: ignore[attr-defined]

    async def relay_visitor(self, conn: _FirstConn, msg: m.NewVisitorConn, owner: int) -> bool:
        """frps --workers N: a visitor whose provider is in worker ``owner``: that worker gets one
        end of a socketpair and serves it as the visitor connection, this one relays the visitor's
        stream to the other end (False: it could not be handed over)."""
        head = msgspec.json.encode({"user": self.visitor_user(msg.run_id) or "", "msg": msgspec.json.encode(msg).decode(),
                                    "wire": conn.wire_protocol})
        if not await self._relay_to(owner, "visitor", head, conn, name=msg.proxy_name):
            return False
        log.debug("visitor connection for [%s] relayed to worker %d", msg.proxy_name, owner)
        return True

    async def _relay_to(self, owner: int, kind: str, head: bytes, conn: _FirstConn, *, name: str = "") -> bool:
        """Worker ``owner`` gets one end of a socketpair (``kind``, ``head``), this worker relays
        ``conn`` to the other end from now on; False (``conn`` untouched): it could not be sent."""
        assert self.handover is not None

        def take() -> tuple[asyncio.Transport, bytes, bool]:
            conn.gate.trust()
            return conn.detach()

        return await self.handover.relay(owner, kind, head, take, name=name)

    async def relay_work_conn(self, conn: _FirstConn, msg: m.NewWorkConn, owner: int) -> bool:
        """frps --workers N with ``transport.tcpMux = false``: a work connection that reached
        another worker than its client's control (the kernel spreads every new connection over the
        workers). Plain TCP: the socket itself goes to worker ``owner`` (SCM_RIGHTS), nothing stays
        here. Inside TLS (or a websocket, KCP, QUIC), whose state cannot be handed over: ``owner``
        gets one end of a socketpair and this worker relays the connection's plaintext to it.
        Either way the owner reads the NewWorkConn again and handles it as its own (the same
        checks, the pool). False: it could not be handed over."""
        assert self.handover is not None
        frame = wire.MAGIC + wire.encode_message(msg) if conn.wire_protocol == "v2" else m.encode(msg)
        gate = conn.gate
        head = msgspec.json.encode({"peer": gate.peer, "host": gate.host}) + b"\n" + frame
        transport = conn.transport
        sock = transport.get_extra_info("socket") if conn.top and transport is gate.raw else None
        if sock is not None and sock.type == socket.SOCK_STREAM and sock.family != socket.AF_UNIX:
            vt, vdata, veof = conn.detach()
            if veof or not self.handover.send_fd(owner, "work", head + vdata, sock.fileno()):
                return False
            gate.hand_off()
            log.debug("work connection of [%s] handed to worker %d", msg.run_id, owner)
            vt.abort()  # our descriptor only: the connection lives on in the other worker
            return True
        if not await self._relay_to(owner, "work", head, conn):
            return False
        log.debug("work connection of [%s] relayed to worker %d", msg.run_id, owner)
        return True

    async def _adopt_work_conn(self, sock: socket.socket, data: bytes) -> None:
        """The control's side of :meth:`relay_work_conn`: the connection (or the socketpair end)
        is served as a bind-port connection of this worker past TLS, whose first bytes are the
        NewWorkConn the other worker read; its gate names the client's address."""
        head, _, rest = data.partition(b"\n")
        try:
            who = msgspec.json.decode(head)
            peer, host = str(who["peer"]), str(who["host"])
        except (msgspec.DecodeError, KeyError, TypeError):
            sock.close()
            return
        try:
            transport, holder = await asyncio.get_running_loop().connect_accepted_socket(_Holder, sock)
        except OSError:
            sock.close()
            return
        gate = Gate(self, transport)
        gate.handed = True
        gate.peer, gate.host = peer, host
        self.on_transport_ready(transport, rest + bytes(holder.data), gate)
        if holder.eof:
            transport.get_protocol().eof_received()  # type: ignore[attr-defined]

    async def _adopt_visitor(self, sock: socket.socket, data: bytes) -> None:
        """The provider's side of :meth:`relay_visitor`: the same checks as a visitor connection
        of this worker, with the visitor's user as its own worker knew it."""
        try:
            head = msgspec.json.decode(data)
            msg = msgspec.json.decode(head["msg"], type=m.NewVisitorConn)
            user = str(head["user"])
            wire_protocol = "v2" if head.get("wire") == "v2" else "v1"  # the visitor's framing
        except (msgspec.DecodeError, msgspec.ValidationError, KeyError, TypeError, AttributeError):
            sock.close()
            return
        try:
            _, conn = await asyncio.get_running_loop().connect_accepted_socket(lambda: MsgConn(wire_protocol), sock)
        except OSError:
            sock.close()
            return
        if msg.run_id:
            if len(self.remote_visitors) >= MAX_REMOTE_VISITORS:
                self.remote_visitors.pop(next(iter(self.remote_visitors)))
            self.remote_visitors[msg.run_id] = user
        proxy = self.proxies.get(msg.proxy_name)
        if proxy is None or not proxy.takes_visitors:
            err = f"custom listener for [{msg.proxy_name}] doesn't exist"
        elif proxy.closed:
            err = "proxy is closed"
        else:
            err = proxy.check_visitor(msg)
        if err or proxy is None:
            detail = err if self.cfg.detailed_errors_to_client else "register visitor conn error"
            conn.write_msg(m.NewVisitorConnResp(proxy_name=msg.proxy_name, error=detail))
            log.warning("register visitor conn error: %s (visitor relayed from another worker)", err)
            conn.close()
            return
        await proxy.handle_visitor_conn(conn, msg)

    async def evict(self, kind: str, key: str) -> None:
        """The registry takes ``(kind, key)`` from this process: a client logged in again with the
        run id of a control here, which is closed first."""
        if kind != "runid":
            return
        old = self.controls.get(key)
        if old is not None:
            log.info("[%s] replacing the previous control of this client", key)
            old.close()
            await old.finished

    def refuse_login(self, conn: _FirstConn, reason: str, *, suspicious: bool = True) -> None:
        """Answer a Login with an error, then close the connection (see gate.py). Not
        ``suspicious`` (a server plugin could not be asked): an INFO line fail2ban does not count."""
        self.stats.login_failed(_failure_kind(reason))
        err = reason if self.cfg.detailed_errors_to_client else "register control error"
        conn.write_msg(m.LoginResp(version=FRP_VERSION, error=err))
        if suspicious:
            if not conn.gate.fail(reason, login=True, flush=True):
                conn.close()
        elif not conn.gate.refuse(f"login refused: {reason}"):
            log.warning("login from %s refused: %s", conn.gate.peer, reason)
            conn.close()

    async def handle_visitor_conn(self, conn: _FirstConn, msg: m.NewVisitorConn) -> None:
        """A visitor frpc wants a secret proxy (stcp/sudp): the proxy type checks it and serves it."""
        proxy = self.proxies.get(msg.proxy_name)
        owner = await self._elsewhere(msg.proxy_name) if proxy is None else None
        if owner is not None and self.handover is not None:
            if await self.relay_visitor(conn, msg, owner):
                return
            err, absent = f"proxy [{msg.proxy_name}] is served by frps worker {owner}, which cannot be reached", True
        elif proxy is None or not proxy.takes_visitors:
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

    async def _elsewhere(self, name: str, *, kind: str = "proxy") -> int | None:
        """frps --workers N: the other worker holding proxy ``name`` (or another registry name of
        ``kind``: a client's run id), None if none does."""
        try:
            owner = await self.registry.owner(kind, name)
        except ConnectionError:
            return None
        return owner if owner is not None and owner != self.registry.worker else None

    def visitor_user(self, run_id: str) -> str | None:
        """The user of the logged-in client with this run id ("" for none); None if unknown."""
        if not run_id:
            return ""
        ctl = self.controls.get(run_id)
        return ctl.user if ctl is not None else self.remote_visitors.get(run_id)

    def work_conn_at_once(self, conn: _FirstConn, msg: m.NewWorkConn) -> bool:
        """handle_work_conn without a task, when there is nothing to ask and nothing to refuse:
        the client's control is here, no NewWorkConn server plugin, no auth check of work
        connections (``auth.additionalScopes``). False: take the full path."""
        ctl = self.controls.get(msg.run_id)
        if ctl is None or ctl.auth.checks_work_conns or self.plugins.has(Op.NEW_WORK_CONN):
            return False
        conn.gate.trust()
        ctl.register_work_conn(conn)
        return True

    async def handle_work_conn(self, conn: _FirstConn, msg: m.NewWorkConn) -> None:
        ctl = self.controls.get(msg.run_id)
        if ctl is None and self.handover is not None and not conn.gate.handed:
            owner = await self._elsewhere(msg.run_id, kind="runid")
            if owner is not None and await self.relay_work_conn(conn, msg, owner):
                return
            ctl = self.controls.get(msg.run_id)
        suspicious = True  # False: a server plugin could not be asked, not the client's fault
        if ctl is None:
            err = f"no client control found for run id [{msg.run_id}]"
        else:
            try:
                msg = await self.plugins.new_work_conn(ctl.user_info, msg)
                await ctl.auth.verify_new_work_conn(msg)
            except AuthError as exc:
                err = str(exc)
            except PluginRefused as exc:
                err, suspicious = str(exc), exc.rejected
            else:
                conn.gate.trust()
                ctl.register_work_conn(conn)
                return
        detail = err if self.cfg.detailed_errors_to_client or ctl is None else "invalid NewWorkConn"
        conn.write_msg(m.StartWorkConn(error=detail))
        gate = conn.gate
        reason = f"work connection refused: {err}"
        if not (gate.fail(reason, flush=True) if suspicious else gate.refuse(reason)):
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
    """Reads the first bytes of a bind-port connection and decides: TLS or plaintext frp, a
    shared vhost, or frp over websocket.

    ``frp_only``: a connection of another transport (a KCP conversation, a websocket): only TLS
    or plaintext frp (Go runs just its TLS check there); ``gate``: the websocket's bind-port gate;
    ``tls_done``: the bytes already came through TLS (wss on the bind port), so
    ``transport.tls.force`` is satisfied."""

    def __init__(self, server: Server, *, frp_only: bool = False, gate: Gate | None = None,
                 tls_done: bool = False) -> None:
        self.server = server
        self.frp_only = frp_only
        self.tls_done = tls_done
        self.transport: asyncio.Transport | None = None
        self.gate: Gate | None = gate
        self.timer: asyncio.TimerHandle | None = None  # quick mode: silent public clients
        self.buf = b""  # first bytes, while they cannot tell yet where the connection goes

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        banlist = self.server.banlist
        if banlist.enabled and banlist.banned(peer_host(transport)):
            transport.abort()  # type: ignore[attr-defined]  # banned (server/banlist.py): closed at accept, no line
            return
        self.transport = transport  # type: ignore[assignment]
        # keepalive on bind-port sockets (a websocket's socket already has it; KCP has none)
        sock = None if self.frp_only else transport.get_extra_info("socket")
        ka = self.server.cfg.transport.tcp_keepalive
        if sock is not None and ka > 0:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
                if hasattr(socket, "TCP_KEEPIDLE"):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, ka)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, ka)
            except OSError:
                pass
        if self.gate is None:
            self.gate = Gate(self.server, self.transport)  # type: ignore[arg-type]
        self.gate.sniff = self
        if self.server.quick and not self.frp_only:
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
        if self.frp_only:
            self._leave()
            self._frp(data)
            return
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
            self.server.accept_websocket(self.transport, data, gate, tls_done=False)
        elif first == TLS_FIRST_BYTE:
            self.server.start_tls(self.transport, data[1:], gate)
        elif self.server.quick:
            gate.hand_off()
            self.server.quick_user_conn(self.transport, data)
        elif first == TLS_HANDSHAKE_BYTE:
            self.server.start_tls(self.transport, data, gate, websocket=True)
        else:
            self._frp(data)

    def _frp(self, data: bytes) -> None:
        """frp's TLS check (Go: CheckAndEnableTLSServerConnWithTimeout), then frp."""
        assert self.transport is not None and self.gate is not None
        first = data[0]
        if first == TLS_FIRST_BYTE:
            self.server.start_tls(self.transport, data[1:], self.gate)
        elif first == TLS_HANDSHAKE_BYTE:
            self.server.start_tls(self.transport, data, self.gate)
        elif self.server.tls_force and not self.tls_done:
            self.gate.fail("non-TLS connection refused (transport.tls.force)")
        else:
            self.server.on_transport_ready(self.transport, data, self.gate)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._leave()
        if self.gate is not None:
            self.gate.connection_lost(exc)


class _Holder(asyncio.Protocol):
    """A handed-over connection's bytes until its vhost takes it (Server.adopt)."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.eof = False

    def data_received(self, data: bytes) -> None:
        self.data += data

    def eof_received(self) -> bool:
        self.eof = True
        return True


class _AfterTLS(asyncio.Protocol):
    """The first plaintext bytes of a TLS bind-port connection: ``GET /~!frp`` is wss that frps
    terminates itself (beyond Go, which needs a TLS terminator in front); anything else is frp."""

    def __init__(self, server: Server, gate: Gate) -> None:
        self.server = server
        self.gate = gate
        self.transport: asyncio.Transport | None = None
        self.buf = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.gate.stage = Stage.NO_STREAM if self.server.cfg.transport.tcp_mux else Stage.NO_MESSAGE

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        data = self.buf + bytes(data)
        self.buf = b""
        if len(data) < len(_WEBSOCKET_PREFIX) and _WEBSOCKET_PREFIX.startswith(data):
            self.buf = data
            return
        if data.startswith(_WEBSOCKET_PREFIX):
            self.server.accept_websocket(self.transport, data, self.gate, tls_done=True)
        else:
            self.server.on_transport_ready(self.transport, data, self.gate)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.gate.connection_lost(exc)


_HTTP_METHODS = (b"GET", b"HEA", b"POS", b"PUT", b"DEL", b"CON", b"OPT", b"TRA", b"PAT")
_WEBSOCKET_PREFIX = b"GET /~!frp"  # frp's websocket transport path on the bind port


class Sniffed(enum.Enum):
    """Who the first bytes of a bind-port connection are for (frp §1.3)."""

    FRP = "frp"  # frpc (plaintext or TLS)
    HTTP = "http"  # the http vhost sharing the bind port
    HTTPS = "https"  # the https vhost sharing the bind port
    WEBSOCKET = "websocket"  # frp over websocket (GET /~!frp)


def _sniff_vhost(server: Server, data: bytes, *, final: bool = False) -> Sniffed | None:
    """Port reuse (frp §1.3): HTTPS/HTTP when a vhost shares the bind port and the first bytes are
    a TLS handshake / an HTTP method, WEBSOCKET for frp's websocket path, else FRP; None while the
    bytes so far are a prefix of a method (``final``: no more bytes will come)."""
    https, http = server.https_vhost, server.http_vhost
    if https is not None and https.shared and data[0] == TLS_HANDSHAKE_BYTE:
        return Sniffed.HTTPS
    if http is None or not http.shared:  # only frp's websocket path is HTTP here (Go: always matched)
        if server.quick:  # quick mode: everything but 0x17+TLS is a public user's connection
            return Sniffed.FRP
        if data.startswith(_WEBSOCKET_PREFIX):
            return Sniffed.WEBSOCKET
        if not final and _WEBSOCKET_PREFIX.startswith(data):
            return None
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

    def __init__(self, server: Server, gate: Gate, *, top: bool = False, internal: bool = False,
                 session: _ServerMux | None = None) -> None:
        super().__init__()
        self.server = server
        self.gate = gate
        self.top = top
        self.internal = internal  # from inside frps (Server.open_internal)
        self.session = session  # the yamux session of a stream, which counts its silent streams
        self._start: asyncio.Handle | None = None  # the task's start, held back for data_received

    def heard(self) -> None:
        """The stream sent its first bytes, or ended: it no longer counts against
        MAX_PENDING_STREAMS. At its first bytes, not once its first message is handled: a burst
        of new streams whose messages came in the same read (frpc answering many ReqWorkConn at
        once) would otherwise count as silent until the loop ran their tasks, and be reset."""
        if self.session is not None:
            self.session.pending -= 1
            self.session = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if (self.session is not None and self.gate.trusted) or (self.top and not self.internal):
            # A new stream of a logged-in client, or a new connection (tcpMux off): its first
            # message (a NewWorkConn) usually comes in the same read, so data_received may handle
            # it without a task. The task starts at the end of this turn if not.
            self._start = asyncio.get_running_loop().call_soon(self._spawn)
        else:
            self._spawn()

    def _spawn(self, first: m.Message | None = None) -> None:
        self._start = None
        self.server.spawn(self.server.handle_conn(self, first))

    def data_received(self, data: bytes) -> None:
        self.heard()
        super().data_received(data)
        if self._start is not None:
            self._first_at_once()

    def _first_at_once(self) -> None:
        try:
            first = self._decoder.next()  # v1 framing: the v2 magic is no v1 frame and raises
        except ProtocolError:
            return  # the task reads the same bytes, and says what is wrong with them
        if first is None:
            return
        assert self._start is not None
        self._start.cancel()
        self._start = None
        if type(first) is m.NewWorkConn and self.server.work_conn_at_once(self, first):
            return
        self._spawn(first)

    def connection_lost(self, exc: Exception | None) -> None:
        self.heard()
        super().connection_lost(exc)
        if self.top:
            self.gate.connection_lost(exc)


class _Internal(asyncio.Protocol):
    """Server.open_internal's end of the pair: trusted at once, one logical connection."""

    def __init__(self, server: Server, peer: str) -> None:
        self.server = server
        self.peer = peer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        gate = Gate(self.server, transport)  # type: ignore[arg-type]
        gate.peer = self.peer
        gate.trust()
        conn = _FirstConn(self.server, gate, top=True, internal=True)
        transport.set_protocol(conn)
        conn.connection_made(transport)


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
        gate.before_close = self.flush
        self.pending = 0  # streams waiting for their first message (MAX_PENDING_STREAMS)
        self._last_refusal_line = -1e18

    def _on_stream(self, stream: MuxStream) -> None:
        if not self.gate.trusted:
            self.gate.stage = Stage.NO_LOGIN_STREAMS
        if self.pending >= MAX_PENDING_STREAMS:
            reason = f"more than {MAX_PENDING_STREAMS} yamux streams waiting for their first message"
            if self.gate.fail(reason):  # before login: the whole connection goes
                self._shutdown(ConnectionAbortedError(reason))
                return
            now = time.monotonic()
            if now - self._last_refusal_line >= 1.0:  # a line a second at most, not one per stream
                log.warning("%s from %s, resetting new ones", reason, self.gate.peer)
                self._last_refusal_line = now
            stream.abort()
            return
        self.pending += 1
        conn = _FirstConn(self.server, self.gate, session=self)
        stream.set_protocol(conn)
        conn.connection_made(stream)

    def session_error(self, exc: Exception) -> None:
        if self.gate.fail(f"yamux: {exc}"):
            self._shutdown(exc)
        else:
            super().session_error(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.gate.connection_lost(exc)


def _eof_reason(exc: BaseException, conn: MsgConn) -> str:
    """How a connection ended before its first message, for the log line."""
    got = conn.buffered
    what = f"after {got} bytes of an incomplete message" if got else "without sending a message"
    return what if isinstance(exc, EOFError) else f"{what}: {exc or type(exc).__name__}"
