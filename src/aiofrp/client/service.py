"""frpc service: log in, keep the control alive, re-log in with backoff after frps goes away."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import platform
import socket
import sys
import time
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

from .. import FRP_VERSION
from ..auth import AuthError, new_setter
from ..config.client import proxy_wire_name
from ..log import XLog
from ..proto import msg as m
from ..proto import wire
from ..proto.addr import join_host_port
from ..proto.crypto import derive_key
from ..proto.errors import ProtocolError
from .connector import Connector
from .control import Control
from .errors import ServerConnectError, login_error, refusal_text
from .proxies import ProxyWrapper
from .proxies.wrapper import ProxyStatus
from .store import StoreSource

if TYPE_CHECKING:
    from ..config.client import ClientConfig
    from ..config.proxy import ProxyBaseConfig
    from ..config.visitor import VisitorBaseConfig
    from .visitors import Visitor
    from .vnet import Controller as VnetController

log = logging.getLogger("aiofrp.client")

LOGIN_TIMEOUT = 10.0

_GOARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "i686": "386", "armv7l": "arm"}


def retry_delay(previous: float, cap: float, rand: Callable[[], float] | None = None) -> float:
    """The wait after a failed login, from the previous one (0 after a success), as Go's
    ``wait.NewFastBackoffManager`` with frpc's options (client/service.go): 1 s doubled, plus up to
    10 % jitter on each step, capped at ``cap`` (10 s for the first login, 20 s later): about 2,
    4.4, 9, 18, 20 s."""
    if rand is None:
        import random  # here: 0.2 MB resident, for a retry only

        rand = random.random
    delay = (previous or 1.0) * 2
    return min(delay + rand() * 0.1 * delay, cap)

class LoginError(Exception):
    pass


class Client:
    def __init__(
        self,
        cfg: ClientConfig,
        config_path: str = "",
        *,
        exit_on_refusal: bool = False,
        on_start_error: Callable[[str, str], None] | None = None,
        on_fatal: Callable[[str], None] | None = None,
        strict: bool = True,
        allow_unsafe: Collection[str] = frozenset(),
    ) -> None:
        from ..config.unsupported import check_unsupported
        from ..config.validate import check_virtual_net

        check_unsupported(cfg, "frpc", config_path or "frpc config")  # also for configs built in Python
        check_virtual_net(cfg, config_path or "frpc config")
        self.cfg = cfg
        # exit (status 1) when frps refuses the first login, even with loginFailExit = false
        self.exit_on_refusal = exit_on_refusal
        # called with (proxy name, frps's error) when frps refuses a proxy (quick mode exits)
        self.on_start_error = on_start_error
        # called with the message of a failed first login that ends the client (loginFailExit);
        # None: logged as an error. frpc's command prints it after its last log line, as Go does.
        self.on_fatal = on_fatal
        self.config_path = config_path
        self.token: str = cfg.auth.token
        self.key = derive_key(self.token)
        # token or oidc (aiofrp/auth); OIDC token requests use transport.proxyURL too
        self.auth = new_setter(cfg.auth, config_path or "frpc config", transport_proxy_url=cfg.transport.proxy_url)
        self.run_id = ""
        # Go's service xlog: no prefix until the first login, "[RUNID] " from then on (the control,
        # the proxy and visitor managers log with it; proxies and visitors add their name)
        self.xl = XLog(log)
        self.control: Control | None = None
        self.connector: Connector | None = None
        # how the config file is read again on reload (the flags frpc was started with)
        self.strict = strict
        self.allow_unsafe = frozenset(allow_unsafe)
        # the proxies/visitors of the config file (and its includes) and of the store; the client's
        # own settings (self.cfg) are fixed at start, as in Go
        self.file_proxies: list[ProxyBaseConfig] = list(cfg.proxies)
        self.file_visitors: list[VisitorBaseConfig] = list(cfg.visitors)
        self.start_names: list[str] = list(cfg.start)
        self.store: StoreSource | None = None
        if cfg.store.path:
            self.store = StoreSource(cfg.store.path)
            self.store.load(cfg, self.allow_unsafe)  # ConfigError: the store file cannot be used
        proxies, visitor_cfgs = self.wanted()
        self.proxies: dict[str, ProxyWrapper] = {p.name: ProxyWrapper(self, p) for p in proxies}
        self.visitors: dict[str, Visitor] = {}
        for vcfg in visitor_cfgs:
            v = self._new_visitor(vcfg)
            if v is not None:
                self.visitors[vcfg.name] = v
        # the virtual network (Go's vnet.Controller): its TUN device is made when run() starts
        self.vnet: VnetController | None = None
        if cfg.virtual_net.address and cfg.feature_gates.get("VirtualNet"):
            from .vnet import Controller as VnetController

            self.vnet = VnetController(cfg.virtual_net.address)
        else:  # accepted, as Go accepts it (frp's full example), but not in silence
            for e in [*cfg.proxies, *cfg.visitors]:
                if e.plugin is not None and e.plugin.type == "virtual_net":
                    self.xl.warning("[%s] the virtual_net plugin does nothing: virtualNet.address is not set (with "
                                "featureGates = { VirtualNet = true })", proxy_wire_name(cfg, e.name))
        self._stop_event = asyncio.Event()  # set by stop()
        self._login_task: asyncio.Future[None] | None = None
        self.exit_code = 0

    @property
    def _stopping(self) -> bool:
        return self._stop_event.is_set()

    def _new_visitor(self, vcfg: VisitorBaseConfig) -> Visitor | None:
        from .visitors import new_visitor

        v = new_visitor(self, vcfg)
        if v is None:
            self.xl.warning("[%s] visitor type %s is not supported yet", vcfg.name, vcfg.type)
        return v

    def wanted(self) -> tuple[list[ProxyBaseConfig], list[VisitorBaseConfig]]:
        """The proxies and visitors to run: the file's merged with the store's (the store wins on a
        name clash), restricted to ``start`` when it is set and to ``enabled`` ones, sorted by name
        (Go's aggregator and ``FilterClientConfigurers``)."""
        proxies: dict[str, ProxyBaseConfig] = {p.name: p for p in self.file_proxies}
        visitors: dict[str, VisitorBaseConfig] = {v.name: v for v in self.file_visitors}
        if self.store is not None:
            proxies.update(self.store.proxies)
            visitors.update(self.store.visitors)
        start = set(self.start_names)

        def keep(e: ProxyBaseConfig | VisitorBaseConfig) -> bool:
            return e.enabled and (not start or e.name in start)

        return ([p for _, p in sorted(proxies.items()) if keep(p)],
                [v for _, v in sorted(visitors.items()) if keep(v)])

    def entry_source(self, name: str) -> str:
        """``"store"`` for a running proxy that comes from the store (``/api/status``'s ``source``)."""
        return "store" if self.store is not None and name in self.store.proxies else ""

    async def update_all(self) -> None:
        """Apply :meth:`wanted` to what runs (Go's ``UpdateAllConfigurer``): an entry whose config
        is unchanged keeps running with its connections; a changed one is closed and started again
        (CloseProxy + NewProxy); a removed one is closed; an added one is started."""
        proxies, visitor_cfgs = self.wanted()
        control = self.control if self.control is not None and not self.control.closed else None
        # visitors first, then proxies, as Go (client/control.go UpdateAllConfigurer): the log lines come in that order
        new_v = {v.name: v for v in visitor_cfgs}
        removed = [n for n, v in self.visitors.items() if new_v.get(n) != v.cfg]
        for name in removed:
            visitor = self.visitors.pop(name)
            visitor.detach()
            await visitor.close()
        if removed:
            self.xl.info("visitor removed: [%s]", " ".join(proxy_wire_name(self.cfg, n) for n in removed))
        added = []
        for vcfg in visitor_cfgs:
            if vcfg.name in self.visitors:
                continue
            v = self._new_visitor(vcfg)
            if v is None:
                continue
            try:
                await v.start()
            except OSError as exc:
                self.xl.error("[%s] start visitor error: %s", v.label, exc)
                continue
            self.xl.info("start visitor success")
            self.visitors[vcfg.name] = v
            added.append(vcfg.name)
            if control is not None:
                v.attach(control)
        if added:
            self.xl.info("visitor added: [%s]", " ".join(proxy_wire_name(self.cfg, n) for n in added))
        control = self.control if self.control is not None and not self.control.closed else None  # after the awaits

        new_p = {p.name: p for p in proxies}
        removed = [n for n, pw in self.proxies.items() if new_p.get(n) != pw.cfg]
        for name in removed:
            self.proxies.pop(name).remove()
        if removed:
            self.xl.info("proxy removed: [%s]", " ".join(proxy_wire_name(self.cfg, n) for n in removed))
        added = [p.name for p in proxies if p.name not in self.proxies]
        for name in added:
            pw = self.proxies[name] = ProxyWrapper(self, new_p[name])
            if control is not None:
                pw.start(control)
        if added:
            self.xl.info("proxy added: [%s]", " ".join(proxy_wire_name(self.cfg, n) for n in added))

    @property
    def server_label(self) -> str:
        return join_host_port(self.cfg.server_addr, self.cfg.server_port)

    def local_name(self, wire_name: str) -> str:
        """A proxy's own name from the name frps knows (``config/client.py: proxy_wire_name``)."""
        prefix = f"{self.cfg.user}." if self.cfg.user else ""
        return wire_name[len(prefix):] if prefix and wire_name.startswith(prefix) else wire_name

    def visitor_by_name(self, name: str) -> Visitor | None:
        """The visitor called ``name`` (e.g. the target of an xtcp ``fallbackTo``), or None."""
        return self.visitors.get(name)

    # -- lifecycle ------------------------------------------------------------------------

    async def run(self) -> int:
        """Log in and serve until stopped; returns the process exit status."""
        if self.vnet is not None:
            from .vnet import VnetError

            try:
                await self.vnet.init()
            except VnetError as exc:
                self.xl.error("init virtual network controller error: %s", exc)
                return 1
            self.vnet.run()
        try:
            return await self._run_visitors()
        finally:
            if self.vnet is not None:
                self.vnet.stop()

    async def _run_visitors(self) -> int:
        for v in self.visitors.values():
            try:
                await v.start()
            except OSError as exc:
                self.xl.error("[%s] start visitor error: %s", v.label, exc)
                return 1
        # their listeners are open (and say so); "start visitor success" and "visitor added" come
        # with each login, as Go's, which starts the visitors then
        try:
            return await self._run()
        finally:
            for v in self.visitors.values():
                await v.close()

    async def _run(self) -> int:
        first = True
        delay = 0.0  # the last wait between failed logins (Go: wait.BackoffUntil's previous duration)
        fast_retries: list[float] = []
        while not self._stopping:
            self.xl.info("try to connect to server...")
            # a task, so that stop() can end a login that waits on the network (a dial, a TLS
            # handshake, the LoginResp, an OIDC token) at once
            self._login_task = login = asyncio.ensure_future(self._login())
            try:
                await login
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if self._stopping and login.cancelled() and not (task is not None and task.cancelling()):
                    break
                raise
            except (LoginError, AuthError, OSError, TimeoutError, EOFError, ProtocolError) as exc:
                if self._stopping:
                    break  # stop() closed the connection under the login
                self.xl.warning("connect to server error: %s", exc or type(exc).__name__)
                self.session_changed(False, str(exc) or type(exc).__name__, exc)
                if first and self.cfg.login_fail_exit:
                    message = (f"login to the server failed: {exc or type(exc).__name__}. With loginFailExit "
                               "enabled, no additional retries will be attempted")
                    if self.on_fatal is None:
                        self.xl.error("%s", message)
                    else:
                        self.on_fatal(message)
                    return 1
                if first and self.exit_on_refusal and isinstance(exc, LoginError):
                    self.xl.error("the server refused the login, exiting")
                    return 1
                delay = retry_delay(delay, 10.0 if first else 20.0)
                await self._pause(delay)
                continue
            first = False
            delay = 0.0
            assert self.control is not None
            self.session_changed(True)
            await self.control.run()
            if self._stopping:
                break
            self.session_changed(False, "control connection closed")
            self.xl.info("control connection closed, trying to reconnect to server %s", self.server_label)
            now = time.monotonic()
            fast_retries = [t for t in fast_retries if now - t < 60]
            if len(fast_retries) < 3:
                fast_retries.append(now)
                await self._pause(0.2)
            else:
                await self._pause(1.0)
        return self.exit_code

    async def _pause(self, seconds: float) -> None:
        """Wait before the next login attempt; stop() ends the wait at once."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop_event.wait(), seconds)

    async def _login(self) -> None:
        if self.connector is not None:
            self.connector.close()
            self.connector = None
        login = m.Login(
            version=FRP_VERSION,
            hostname=socket.gethostname(),  # as Go frpc 0.67+ (0.65 leaves it empty)
            client_id=self.cfg.client_id,
            os=sys.platform if sys.platform != "win32" else "windows",
            arch=_GOARCH.get(platform.machine().lower(), platform.machine().lower()),
            user=self.cfg.user,
            run_id=self.run_id,
            metas=dict(self.cfg.metadatas or {}),
            pool_count=self.cfg.transport.pool_count,
            timestamp=int(time.time()),
        )
        await self.auth.set_login(login)  # before dialling: a slow OIDC provider must not hold a conn
        self.connector = connector = Connector(self.cfg)
        conn = await connector.open()
        client_hello = b""
        if conn.wire_protocol == "v2":  # §2.4: ClientHello, Login, then ServerHello, LoginResp
            t = self.cfg.transport
            client_hello = wire.client_hello(t.protocol, t.tls.enable or t.protocol in ("wss", "quic"), t.tcp_mux)
            conn.write_raw(wire.encode_frame(wire.FRAME_CLIENT_HELLO, client_hello))
        conn.write_msg(login)
        try:
            if client_hello:
                frame = await conn.read_frame(timeout=LOGIN_TIMEOUT)
                if frame.type != wire.FRAME_SERVER_HELLO:
                    raise ProtocolError(f"unexpected frame type {frame.type}, want {wire.FRAME_SERVER_HELLO}")
                algorithm = wire.check_server_hello(client_hello, frame.payload)
                conn.v2_crypto = (algorithm, wire.transcript_hash(client_hello, frame.payload))
            resp = await conn.read_msg(timeout=LOGIN_TIMEOUT)
            if not isinstance(resp, m.LoginResp):
                raise ProtocolError(f"unexpected {type(resp).__name__} in reply to Login")
        except (OSError, TimeoutError, EOFError, ProtocolError) as exc:
            conn.abort()
            connector.close()
            err = login_error(connector.server, exc, LOGIN_TIMEOUT)
            if client_hello and isinstance(exc, EOFError | ConnectionError):
                err = ServerConnectError(err.what, 'frps older than 0.69 closes a wire protocol v2 connection at '
                                         'once: set transport.wireProtocol = "v1" there, or upgrade frps')
            raise err from exc
        except BaseException:
            conn.abort()
            connector.close()
            raise
        if resp.error:
            conn.abort()
            connector.close()
            raise LoginError(refusal_text(connector.server, resp.error))
        self.run_id = resp.run_id
        self.xl.set(self.run_id)  # "[RUNID] " before every later line of the service and the control
        conn.enable_control_crypto(self.token, self.key, client=True)
        self.xl.info("login to server success, get run id [%s]", self.run_id)
        # Go starts every proxy and visitor again on each login, and says so
        if self.proxies:
            self.xl.info("proxy added: [%s]", " ".join(proxy_wire_name(self.cfg, n) for n in self.proxies))
        if self.visitors:
            for _ in self.visitors:
                self.xl.info("start visitor success")
            self.xl.info("visitor added: [%s]", " ".join(v.label for v in self.visitors.values()))
        self.control = Control(self, conn, connector)

    def session_changed(self, up: bool, error: str = "", exc: BaseException | None = None) -> None:
        """Hook: logged in (``up``), or a login failed / the control session ended (``error``,
        the exception of a failed login in ``exc``). The Python API (``aiofrp/api``) reports it."""

    def proxy_start_failed(self, name: str, error: str) -> None:
        """frps answered a NewProxy with an error (the proxy retries in 30 s unless told otherwise)."""
        if self.on_start_error is not None:
            self.on_start_error(name, error)

    def fail(self, code: int = 1) -> None:
        """Stop with exit status ``code``."""
        self.exit_code = code
        self.stop()

    def stop(self) -> None:
        self._stop_event.set()
        if self._login_task is not None and not self._login_task.done():
            self._login_task.cancel()
        for pw in self.proxies.values():
            pw.close()
        if self.control is not None:
            self.control.close()
        if self.connector is not None:
            self.connector.close()

    def status(self) -> dict[str, list[ProxyStatus]]:
        """``/api/status``: the proxies by type (types sorted, as Go's JSON map), each type's sorted by name."""
        out: dict[str, list[ProxyStatus]] = {}
        for name in sorted(self.proxies):
            pw = self.proxies[name]
            st = pw.status()
            if self.entry_source(name):
                st["source"] = "store"  # frp >= 0.68
            out.setdefault(pw.cfg.type, []).append(st)
        return dict(sorted(out.items()))  # Go's map: the types in JSON key order
