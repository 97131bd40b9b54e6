"""frpc service: log in, keep the control alive, re-log in with backoff after frps goes away."""

from __future__ import annotations

import asyncio
import logging
import platform
import random
import socket
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .. import FRP_VERSION
from ..auth import AuthError, new_setter
from ..proto import msg as m
from ..proto.addr import join_host_port
from ..proto.crypto import derive_key
from ..proto.errors import ProtocolError
from .connector import Connector
from .control import Control
from .errors import login_error, refusal_text
from .proxies import ProxyWrapper
from .proxies.wrapper import ProxyStatus

if TYPE_CHECKING:
    from ..config.client import ClientConfig
    from .visitors import Visitor

log = logging.getLogger("aiofrp.client")

LOGIN_TIMEOUT = 10.0

_GOARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "i686": "386", "armv7l": "arm"}


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
    ) -> None:
        from ..config.unsupported import check_unsupported

        check_unsupported(cfg, "frpc", config_path or "frpc config")  # also for configs built in Python
        self.cfg = cfg
        # exit (status 1) when frps refuses the first login, even with loginFailExit = false
        self.exit_on_refusal = exit_on_refusal
        # called with (proxy name, frps's error) when frps refuses a proxy (quick mode exits)
        self.on_start_error = on_start_error
        self.config_path = config_path
        self.token: str = cfg.auth.token
        self.key = derive_key(self.token)
        self.auth = new_setter(cfg.auth, config_path or "frpc config")  # token or oidc (aiofrp/auth)
        self.run_id = ""
        self.control: Control | None = None
        self.connector: Connector | None = None
        self.proxies: dict[str, ProxyWrapper] = {
            p.name: ProxyWrapper(self, p) for p in cfg.active_proxies()
        }
        from .visitors import new_visitor

        self.visitors: dict[str, Visitor] = {}
        for vcfg in cfg.active_visitors():
            v = new_visitor(self, vcfg)
            if v is None:
                log.warning("[%s] visitor type %s is not supported yet", vcfg.name, vcfg.type)
            else:
                self.visitors[vcfg.name] = v
        self._stopping = False
        self.exit_code = 0

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
        for v in self.visitors.values():
            try:
                await v.start()
            except OSError as exc:
                log.error("[%s] start visitor error: %s", v.name, exc)
                return 1
        if self.visitors:
            log.info("visitor added: [%s]", " ".join(self.visitors))
        try:
            return await self._run()
        finally:
            for v in self.visitors.values():
                await v.close()

    async def _run(self) -> int:
        first = True
        delay = 1.0
        fast_retries: list[float] = []
        while not self._stopping:
            try:
                await self._login()
            except (LoginError, AuthError, OSError, TimeoutError, EOFError, ProtocolError) as exc:
                log.warning("connect to server error: %s", exc or type(exc).__name__)
                self.session_changed(False, str(exc) or type(exc).__name__, exc)
                if first and self.cfg.login_fail_exit:
                    log.error("login to server failed and loginFailExit is set, exiting")
                    return 1
                if first and self.exit_on_refusal and isinstance(exc, LoginError):
                    log.error("the server refused the login, exiting")
                    return 1
                cap = 10.0 if first else 20.0
                await asyncio.sleep(delay * random.uniform(0.9, 1.1))
                delay = min(delay * 2, cap)
                continue
            first = False
            delay = 1.0
            assert self.control is not None
            self.session_changed(True)
            await self.control.run()
            if self._stopping:
                break
            self.session_changed(False, "control connection closed")
            log.info("control connection closed, trying to reconnect to server %s", self.server_label)
            now = time.monotonic()
            fast_retries = [t for t in fast_retries if now - t < 60]
            if len(fast_retries) < 3:
                fast_retries.append(now)
                await asyncio.sleep(0.2)
            else:
                await asyncio.sleep(1.0)
        return self.exit_code

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
        conn.write_msg(login)
        try:
            resp = await conn.read_msg(timeout=LOGIN_TIMEOUT)
            if not isinstance(resp, m.LoginResp):
                raise ProtocolError(f"unexpected {type(resp).__name__} in reply to Login")
        except (OSError, TimeoutError, EOFError, ProtocolError) as exc:
            conn.abort()
            connector.close()
            raise login_error(connector.server, exc, LOGIN_TIMEOUT) from exc
        except BaseException:
            conn.abort()
            connector.close()
            raise
        if resp.error:
            conn.abort()
            connector.close()
            raise LoginError(refusal_text(connector.server, resp.error))
        self.run_id = resp.run_id
        conn.enable_encryption(self.key)
        log.info("[%s] login to server success, get run id [%s]", self.run_id, self.run_id)
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
        self._stopping = True
        for pw in self.proxies.values():
            pw.close()
        if self.control is not None:
            self.control.close()
        if self.connector is not None:
            self.connector.close()

    def status(self) -> dict[str, list[ProxyStatus]]:
        """``/api/status``: the proxies by type, each type's sorted by name."""
        out: dict[str, list[ProxyStatus]] = {}
        for name in sorted(self.proxies):
            pw = self.proxies[name]
            out.setdefault(pw.cfg.type, []).append(pw.status())
        return out
