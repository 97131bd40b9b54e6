"""``aiofrp.Client``: frpc inside your asyncio program (the same service ``frpc`` runs).

A :class:`Client` logs in to frps when entered (``async with``) and stays logged in, logging in
again after frps goes away, until closed. :meth:`Client.expose` adds a proxy at run time and
returns a :class:`Tunnel` once frps accepted it; :meth:`Client.visit` adds a visitor. What
happens (log-ins, disconnects, proxy status) is told through :meth:`Client.events` and
:meth:`Client.on_event`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import ssl
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from ..client import service
from ..client.proxies.wrapper import ProxyPhase, ProxyWrapper
from ..config import ClientConfig
from ..config.errors import ConfigError as _ConfigFileError
from ..proto import msg as m
from ..proto.addr import join_host_port
from .errors import ConfigError, Error, LoginError, ProxyError
from .options import apply_log_settings, client_config, proxy_config, visitor_config

if TYPE_CHECKING:
    from ..client.admin import AdminServer
    from ..client.visitors import Visitor as _Visitor
    from ..config import ProxyBaseConfig, VisitorBaseConfig

__all__ = ["Client", "Event", "Tunnel", "Visitor"]

log = logging.getLogger("aiofrp.api")

EXPOSE_TIMEOUT = 30.0
"""Seconds :meth:`Client.expose` waits for frps's answer (and for the login, if not logged in)."""
STOP_GRACE = 5.0


@dataclass(frozen=True)
class Event:
    """Something that happened to a :class:`Client`.

    ``kind`` is one of ``"connected"`` (logged in to frps; ``run_id`` set), ``"disconnected"``
    (the control connection ended; the client logs in again by itself), ``"login_failed"``
    (``error`` says why), ``"proxy"`` (proxy ``name`` changed to ``status``, e.g. ``"running"``,
    ``"start error"`` with ``error``, ``"new"`` while logged out, ``"closed"``) and ``"closed"``
    (the client stopped; the last event).
    """

    kind: str
    name: str = ""
    status: str = ""
    error: str = ""
    remote_addr: str = ""
    run_id: str = ""


class _Wrapper(ProxyWrapper):
    """The CLI's proxy wrapper, telling the API when frps answered and when the session ended."""

    api: Client

    def on_start_resp(self, resp: m.NewProxyResp) -> None:
        super().on_start_resp(resp)
        self.api._proxy_changed(self)

    removing = False

    def stop(self) -> None:
        was = self.phase
        super().stop()
        if was is not self.phase and not self.removing:
            self.api._proxy_changed(self)


class _Service(service.Client):
    """frpc's service, reporting its sessions to the API."""

    api: Client

    def session_changed(self, up: bool, error: str = "", exc: BaseException | None = None) -> None:
        self.api._session_changed(up, error, exc)

    def wanted(self) -> tuple[list[ProxyBaseConfig], list[VisitorBaseConfig]]:
        """The file's and the store's entries, plus those added with expose()/visit(): a hot
        reload (admin API) keeps the latter running."""
        proxies, visitors = super().wanted()
        api: Client | None = getattr(self, "api", None)
        if api is not None:
            have = {p.name for p in proxies}
            proxies += [self.proxies[n].cfg for n in sorted(api._exposed) if n not in have and n in self.proxies]
            have = {v.name for v in visitors}
            visitors += [self.visitors[n].cfg for n in sorted(api._visited) if n not in have and n in self.visitors]
        return proxies, visitors

    def new_wrapper(self, cfg: ProxyBaseConfig) -> _Wrapper:
        pw = _Wrapper(self, cfg)
        pw.api = self.api
        return pw


class Tunnel:
    """One proxy of a :class:`Client` (returned by :meth:`Client.expose`).

    Attributes: ``name``, ``type``, ``status`` (frp's status names: ``"running"``, ``"start
    error"``, ``"new"`` while logged out, ``"closed"``), ``error`` (frps's reason when refused),
    ``remote_addr`` (where frps serves it: ``"frps.example.com:6123"`` for tcp/udp, the domain
    for http/https/tcpmux, ``""`` for stcp/sudp/xtcp) and ``url``. ``await tunnel.close()``
    removes it; ``async with`` closes it at the end of the block.
    """

    def __init__(self, client: Client, wrapper: _Wrapper) -> None:
        self._client = client
        self._pw = wrapper
        self._accepted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._closed = False
        self._remote = ""

    @property
    def name(self) -> str:
        """The proxy's name (frps knows it as ``user.name`` when the client has a ``user``)."""
        return self._pw.name

    @property
    def type(self) -> str:
        """The proxy type: tcp, udp, http, https, tcpmux, stcp, sudp or xtcp."""
        return self._pw.cfg.type

    @property
    def config(self) -> ProxyBaseConfig:
        """The proxy's config struct (as a ``[[proxies]]`` table of a file would give)."""
        return self._pw.cfg

    @property
    def status(self) -> str:
        """frp's status of the proxy (``/api/status``'s ``status``)."""
        return ProxyPhase.CLOSED.value if self._closed else self._pw.phase.value

    @property
    def error(self) -> str:
        """frps's reason for refusing the proxy ("" when accepted)."""
        return self._pw.err

    @property
    def remote_addr(self) -> str:
        """Where frps serves the proxy, as frpc's ``/api/status`` shows it (tcp/udp:
        ``serverAddr:port``; http/https/tcpmux: the domains, comma-separated); kept from the last
        time frps accepted it."""
        return self._remote

    @property
    def url(self) -> str:
        """``tcp://host:port``, ``udp://host:port``, ``http://domain[:port]`` or
        ``https://domain[:port]`` (the first domain); ``""`` for tcpmux, stcp, sudp and xtcp."""
        scheme = {"tcp": "tcp", "udp": "udp", "http": "http", "https": "https"}.get(self.type)
        if scheme is None or not self._remote:
            return ""
        return f"{scheme}://{self._remote.split(',')[0]}"

    def _update(self) -> None:
        pw = self._pw
        if pw.phase is ProxyPhase.RUNNING:
            remote = pw.remote_addr
            self._remote = pw.public_addr(remote) if self.type in ("tcp", "udp") else remote
        if self._accepted.done():
            return
        if pw.phase is ProxyPhase.RUNNING:
            self._accepted.set_result(None)
        elif pw.phase is ProxyPhase.START_ERROR:
            self._accepted.set_exception(ProxyError(self.name, pw.err))

    async def close(self) -> None:
        """Take the proxy off frps (CloseProxy) and stop serving it; a no-op when closed."""
        if self._closed:
            return
        self._closed = True
        self._client._remove(self)
        if not self._accepted.done():
            self._accepted.cancel()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, et: object, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<aiofrp.Tunnel {self.name} {self.type} {self.status} {self.url or self.remote_addr}>"


class Visitor:
    """A visitor of a :class:`Client` (returned by :meth:`Client.visit`): connections to
    ``bind_addr:bind_port`` reach the stcp/xtcp proxy ``server_name`` (sudp: datagrams).
    ``await visitor.close()`` stops it; ``async with`` closes it at the end of the block."""

    def __init__(self, client: Client, visitor: _Visitor[VisitorBaseConfig]) -> None:
        self._client = client
        self._v = visitor
        self._closed = False

    @property
    def name(self) -> str:
        """The visitor's name."""
        return self._v.name

    @property
    def type(self) -> str:
        """stcp, sudp or xtcp."""
        return self._v.cfg.type

    @property
    def server_name(self) -> str:
        """The proxy it visits."""
        return self._v.cfg.server_name

    @property
    def bind_addr(self) -> str:
        """The local address it listens on."""
        return self._v.cfg.bind_addr

    @property
    def bind_port(self) -> int:
        """The local port it listens on."""
        return self._v.cfg.bind_port

    async def close(self) -> None:
        """Stop listening and close its connections; a no-op when closed."""
        if self._closed:
            return
        self._closed = True
        await self._client._remove_visitor(self._v)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, et: object, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<aiofrp.Visitor {self.name} {self.type} -> {self.server_name} on {self.bind_port}>"


class Client:
    """frpc as an asyncio object: ``async with aiofrp.Client(server_addr=..., token=...) as c:``.

    Keyword arguments are frpc's config keys in snake_case (``server_addr``, ``server_port``,
    ``user``, ``login_fail_exit``, ``transport={"tls": {"enable": True}}``, ...; ``token`` is
    short for ``auth={"token": ...}``), checked as ``frpc verify`` checks a file: a bad one raises
    :class:`~aiofrp.ConfigError` naming it. ``strict=False`` ignores unknown keys (as
    ``--strict-config=false``); ``allow_unsafe`` enables features such as ``"TokenSourceExec"``.

    With ``web_server={"port": 7400}`` it serves frpc's admin API and UI as ``frpc`` does
    (``POST /api/stop`` closes the client); a ``log`` table configures the ``aiofrp`` loggers as
    frpc does (without one, logging is left to the application). Entering the block (or ``await client.start()``)
    logs in and raises
    :class:`~aiofrp.LoginError` if frps refuses the first login (a wrong token), or cannot be
    reached while ``login_fail_exit`` is true (frp's default). Leaving it (``await
    client.close()``) closes every tunnel and visitor and logs out.
    """

    def __init__(self, *, strict: bool = True, allow_unsafe: Collection[str] = frozenset(),
                 **options: Any) -> None:
        self._init(client_config(options, "aiofrp.Client(...)", strict=strict, allow_unsafe=allow_unsafe), "",
                   strict=strict, allow_unsafe=allow_unsafe)

    def _init(self, cfg: ClientConfig, path: str, *, strict: bool = True,
              allow_unsafe: Collection[str] = frozenset()) -> None:
        self._cfg = cfg
        self._path = path
        self._strict = strict  # how a hot reload (admin API) reads the file again
        self._allow_unsafe = frozenset(allow_unsafe)
        self._admin: AdminServer | None = None
        self._admin_stop: asyncio.Task[None] | None = None
        self._svc: _Service | None = None
        self._task: asyncio.Task[int] | None = None
        self._up = False
        self._first: asyncio.Future[str] | None = None
        self._last_error = ""
        self._tunnels: dict[str, Tunnel] = {}
        self._exposed: set[str] = set()  # names of the proxies and visitors added at run time
        self._visited: set[str] = set()
        self._visitors: dict[str, Visitor] = {}
        self._queues: set[asyncio.Queue[Event | None]] = set()
        self._callbacks: list[Callable[[Event], object]] = []
        self._login_waiters: set[asyncio.Future[None]] = set()
        self._closed = False

    @classmethod
    def from_file(cls, path: str, *, strict: bool = True, allow_unsafe: Collection[str] = frozenset()) -> Client:
        """A client from an frpc config file (TOML, YAML, JSON or legacy INI, with ``includes``),
        checked as ``frpc verify -c PATH`` does; its proxies become :attr:`tunnels`."""
        from ..config import load_client_config

        try:
            cfg = load_client_config(path, strict=strict, allow_unsafe=frozenset(allow_unsafe))
        except _ConfigFileError as exc:
            raise ConfigError.wrap(exc) from None
        self = cls.from_config(cfg, path)
        self._strict, self._allow_unsafe = strict, frozenset(allow_unsafe)
        return self

    @classmethod
    def from_config(cls, cfg: ClientConfig, path: str = "") -> Client:
        """A client from a config struct already checked (``path`` names it in messages)."""
        self = cls.__new__(cls)
        self._init(cfg, path)
        return self

    # -- properties ----------------------------------------------------------------------------

    @property
    def config(self) -> ClientConfig:
        """The client's config struct."""
        return self._cfg

    @property
    def server(self) -> str:
        """``serverAddr:serverPort``."""
        return join_host_port(self._cfg.server_addr, self._cfg.server_port)

    @property
    def connected(self) -> bool:
        """Logged in to frps now."""
        return self._up

    @property
    def run_id(self) -> str:
        """The run id frps gave at the last login ("" before)."""
        return self._svc.run_id if self._svc is not None else ""

    @property
    def tunnels(self) -> list[Tunnel]:
        """The open tunnels, by name."""
        return [self._tunnels[n] for n in sorted(self._tunnels)]

    @property
    def visitors(self) -> list[Visitor]:
        """The open visitors, by name."""
        return [self._visitors[n] for n in sorted(self._visitors)]

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Log in to frps (once; entering ``async with`` calls it). Raises
        :class:`~aiofrp.LoginError` as described in the class; the client keeps logging in again
        in the background after frps goes away."""
        if self._svc is not None:
            return
        if self._closed:
            raise Error("this client is closed")
        loop = asyncio.get_running_loop()
        try:
            svc = _Service(self._cfg, self._path, exit_on_refusal=True, strict=self._strict,
                           allow_unsafe=self._allow_unsafe)
        except _ConfigFileError as exc:
            raise ConfigError.wrap(exc) from None
        svc.api = self
        apply_log_settings(self._cfg, self._path or "aiofrp.Client(...)")
        svc.proxies = {name: svc.new_wrapper(pw.cfg) for name, pw in svc.proxies.items()}
        for pw in svc.proxies.values():
            assert isinstance(pw, _Wrapper)
            self._tunnels[pw.name] = Tunnel(self, pw)
        for v in svc.visitors.values():
            self._visitors[v.name] = Visitor(self, v)
        self._svc = svc
        if self._cfg.web_server.port:  # the admin API and UI, as frpc runs them
            await self._start_admin(svc)
        self._first = loop.create_future()
        self._task = loop.create_task(svc.run(), name=f"aiofrp.Client {self.server}")
        waiting: set[asyncio.Future[Any]] = {self._task, self._first}
        try:
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # cancelled (e.g. a timeout around the login): nothing left running
            await self.close()
            raise
        if self._task.done():
            failure = self._task.exception()
            await self.close()
            if failure is not None:
                raise Error(f"frpc failed: {failure!r}") from failure
            raise LoginError(self._last_error or f"frpc stopped with status {self._task.result()} (see its log)")

    async def close(self) -> None:
        """Close every tunnel and visitor, log out and stop (a no-op when closed)."""
        if self._closed:
            return
        self._closed = True
        svc, task = self._svc, self._task
        for t in list(self._tunnels.values()):
            await t.close()
        if svc is not None:
            svc.stop()
        if task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), STOP_GRACE / 5)
            if not task.done():
                task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:  # reported by start() when it happened there; logged here otherwise
                log.exception("aiofrp.Client %s: the frpc service failed", self.server)
        for v in list(self._visitors.values()):
            await v.close()
        if self._admin is not None:
            await self._admin.close()
        if self._admin_stop is not None and self._admin_stop is not asyncio.current_task():
            self._admin_stop.cancel()
        self._up = False
        for w in self._login_waiters:
            if not w.done():
                w.set_exception(Error("the client is closed"))
        self._emit(Event("closed"))
        for q in self._queues:
            q.put_nowait(None)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, et: object, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def _start_admin(self, svc: _Service) -> None:
        from ..client.admin import AdminServer

        stop = asyncio.Event()  # set by POST /api/stop: the client closes
        admin = AdminServer(svc, self._cfg.web_server, stop)
        try:
            await admin.start()
        except (OSError, ssl.SSLError) as exc:
            await admin.close()
            self._closed = True
            raise Error(f"start admin server error: {exc}") from None
        self._admin = admin

        async def stop_on_request() -> None:
            await stop.wait()
            await self.close()

        self._admin_stop = asyncio.get_running_loop().create_task(stop_on_request())

    def _require(self) -> _Service:
        if self._closed:
            raise Error("this client is closed")
        if self._svc is None:
            raise Error("the client is not started: use 'async with aiofrp.Client(...)' or 'await client.start()'")
        return self._svc

    # -- proxies ---------------------------------------------------------------------------------

    async def expose(self, local_port: int = 0, *, type: str = "tcp", local_ip: str = "127.0.0.1",
                     remote_port: int = 0, name: str | None = None, timeout: float = EXPOSE_TIMEOUT,
                     **proxy_options: Any) -> Tunnel:
        """Serve ``local_ip:local_port`` through frps; returns once frps accepted the proxy.

        :param local_port: the local service's port (0 with a ``plugin``).
        :param type: tcp, udp, http, https, tcpmux, stcp, sudp or xtcp.
        :param local_ip: the local service's address.
        :param remote_port: tcp/udp: the public port on frps; 0 lets frps choose.
        :param name: the proxy's name; by default ``TYPE-LOCALPORT-RANDOM``.
        :param timeout: seconds to wait for frps's answer (and for the login if logged out).
        :param proxy_options: the proxy's other keys in snake_case: ``subdomain``,
            ``custom_domains``, ``secret_key``, ``transport={"use_encryption": True}``,
            ``plugin="static_file"`` with the plugin's keys (``local_path=...``), ...
        :raises ConfigError: a bad option (named), or a name already used.
        :raises ProxyError: frps refused the proxy (``reason`` is frps's, e.g. ``port not
            allowed``) or did not answer within ``timeout``.
        """
        svc = self._require()
        pname = name if name is not None else f"{type}-{local_port}-{secrets.token_hex(3)}"
        opts: dict[str, Any] = {"name": pname, "type": type, **proxy_options}
        if local_port or "plugin" not in proxy_options:
            opts["local_ip"], opts["local_port"] = local_ip, local_port
        if remote_port or type in ("tcp", "udp"):
            opts["remote_port"] = remote_port
        cfg = proxy_config(opts, "expose()")
        if cfg.name in svc.proxies:
            raise ConfigError("expose()", "name", f'duplicate proxy name "{cfg.name}"', cfg.name)
        pw = svc.new_wrapper(cfg)
        tunnel = Tunnel(self, pw)
        svc.proxies[cfg.name] = pw
        self._tunnels[cfg.name] = tunnel
        self._exposed.add(cfg.name)
        if self._up and svc.control is not None and not svc.control.closed:
            pw.start(svc.control)
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(tunnel._accepted)
        except TimeoutError:
            await tunnel.close()
            what = "frps did not answer" if self._up else "not logged in to frps"
            raise ProxyError(cfg.name, f"{what} within {timeout:g}s") from None
        except BaseException:
            await tunnel.close()
            raise
        return tunnel

    def _remove(self, tunnel: Tunnel) -> None:
        """Go's ``Wrapper.Stop`` for a proxy taken out: CloseProxy to frps, no more health checks."""
        if self._tunnels.get(tunnel.name) is tunnel:
            del self._tunnels[tunnel.name]
            self._exposed.discard(tunnel.name)
        svc, pw = self._svc, tunnel._pw
        if svc is None or svc.proxies.get(pw.name) is not pw:
            return
        del svc.proxies[pw.name]
        pw.removing = True
        pw.remove()  # as a hot reload removes a proxy
        self._emit(Event("proxy", name=pw.name, status=ProxyPhase.CLOSED.value))

    def _proxy_changed(self, pw: _Wrapper) -> None:
        tunnel = self._tunnels.get(pw.name)
        if tunnel is not None and tunnel._pw is pw:
            tunnel._update()
            remote = tunnel.remote_addr if pw.phase is ProxyPhase.RUNNING else ""
        else:
            remote = ""
        self._emit(Event("proxy", name=pw.name, status=pw.phase.value, error=pw.err, remote_addr=remote))

    # -- visitors --------------------------------------------------------------------------------

    async def visit(self, server_name: str, secret_key: str = "", *, bind_port: int, type: str = "stcp",
                    bind_addr: str = "127.0.0.1", server_user: str = "", name: str | None = None,
                    **visitor_options: Any) -> Visitor:
        """Listen on ``bind_addr:bind_port`` and carry each connection to the stcp/xtcp (or sudp)
        proxy ``server_name`` of frps, authenticated with ``secret_key``.

        :param server_name: the proxy to visit.
        :param secret_key: the proxy's ``secret_key``.
        :param bind_port: the local port to listen on.
        :param type: stcp, sudp or xtcp.
        :param bind_addr: the local address to listen on.
        :param server_user: the proxy owner's ``user`` when it is not this client's.
        :param name: the visitor's name; by default ``TYPE-visitor-SERVERNAME-RANDOM``.
        :param visitor_options: the visitor's other keys in snake_case (``keep_tunnel_open``,
            ``fallback_to``, ``transport={"use_encryption": True}``, ...).
        :raises ConfigError: a bad option (named), or a name already used.
        :raises Error: the local port cannot be listened on.
        """
        from ..client.visitors import new_visitor

        svc = self._require()
        vname = name if name is not None else f"{type}-visitor-{server_name}-{secrets.token_hex(3)}"
        opts: dict[str, Any] = {"name": vname, "type": type, "server_name": server_name, "secret_key": secret_key,
                                "bind_addr": bind_addr, "bind_port": bind_port, **visitor_options}
        if server_user:
            opts["server_user"] = server_user
        cfg = visitor_config(opts, "visit()")
        if cfg.name in svc.visitors:
            raise ConfigError("visit()", "name", f'duplicate visitor name "{cfg.name}"', cfg.name)
        v = new_visitor(svc, cfg)
        if v is None:
            raise ConfigError("visit()", "type", f"visitor type {cfg.type} is not supported yet", cfg.type)
        try:
            await v.start()
        except OSError as exc:
            await v.close()
            raise Error(f"visitor [{cfg.name}]: cannot listen on {join_host_port(bind_addr, bind_port)}: {exc}") from None
        svc.visitors[cfg.name] = v
        self._visited.add(cfg.name)
        if self._up and svc.control is not None and not svc.control.closed:
            v.attach(svc.control)
        handle = self._visitors[cfg.name] = Visitor(self, v)
        return handle

    async def _remove_visitor(self, v: _Visitor[VisitorBaseConfig]) -> None:
        self._visitors.pop(v.name, None)
        self._visited.discard(v.name)
        if self._svc is not None and self._svc.visitors.get(v.name) is v:
            del self._svc.visitors[v.name]
        v.detach()
        await v.close()

    # -- events ----------------------------------------------------------------------------------

    def on_event(self, callback: Callable[[Event], object]) -> Callable[[], None]:
        """Call ``callback(event)`` for every :class:`Event` from now on (in the client's loop;
        an exception it raises is logged). Returns a function that unsubscribes."""
        self._callbacks.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._callbacks.remove(callback)

        return unsubscribe

    async def events(self) -> AsyncIterator[Event]:
        """The :class:`Event` s from now on, until the client is closed (``async for ev in
        client.events():``)."""
        q: asyncio.Queue[Event | None] = asyncio.Queue()
        self._queues.add(q)
        try:
            if self._closed:
                return
            while (ev := await q.get()) is not None:
                yield ev
        finally:
            self._queues.discard(q)

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Return when logged in to frps (at once if so); TimeoutError after ``timeout`` s."""
        self._require()
        if self._up:
            return
        w: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._login_waiters.add(w)
        try:
            async with asyncio.timeout(timeout):
                await w
        finally:
            self._login_waiters.discard(w)

    def _session_changed(self, up: bool, error: str, exc: BaseException | None) -> None:
        self._up = up
        if up:
            self._last_error = ""
            for w in self._login_waiters:
                if not w.done():
                    w.set_result(None)
            self._emit(Event("connected", run_id=self.run_id))
        elif exc is not None:
            self._last_error = error
            self._emit(Event("login_failed", error=error))
        else:
            self._emit(Event("disconnected", error=error))
        # the first attempt decides start(): logged in, or (loginFailExit = false) a failure to
        # reach frps, after which the service keeps trying; a refusal ends the service (LoginError)
        retrying = not self._cfg.login_fail_exit and not isinstance(exc, service.LoginError)
        if self._first is not None and not self._first.done() and (up or retrying):
            self._first.set_result(error)

    def _emit(self, ev: Event) -> None:
        for q in self._queues:
            q.put_nowait(ev)
        for cb in list(self._callbacks):
            try:
                cb(ev)
            except Exception:  # a user's callback must not break the client
                log.exception("aiofrp.Client event callback %r failed", cb)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "connected" if self._up else "not connected"
        return f"<aiofrp.Client {self.server} {state} tunnels={len(self._tunnels)}>"
