"""``aiofrp.Server``: frps inside your asyncio program (the same service ``frps`` runs)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from ..config import ServerConfig
from ..config.errors import ConfigError as _ConfigFileError
from ..proto.addr import join_host_port
from ..server import service
from .errors import ConfigError, Error
from .options import apply_log_settings, server_config

__all__ = ["ProxyInfo", "Server"]


@dataclass(frozen=True)
class ProxyInfo:
    """A proxy registered on a :class:`Server`: ``name`` (``user.name`` with a user), ``type``,
    ``remote_addr`` (``":6000"`` for tcp/udp, the domains for http/https/tcpmux) and ``run_id``
    (the frpc's)."""

    name: str
    type: str
    remote_addr: str
    run_id: str


class Server:
    """frps as an asyncio object: ``async with aiofrp.Server(bind_port=7000, token="t") as s:``.

    Keyword arguments are frps's config keys in snake_case (``bind_addr``, ``bind_port``,
    ``vhost_http_port``, ``subdomain_host``, ``allow_ports=[{"start": 6000, "end": 6100}]``, ...;
    ``token`` is short for ``auth={"token": ...}``), checked as ``frps verify`` checks a file: a
    bad one raises :class:`~aiofrp.ConfigError` naming it. ``bind_port=0`` picks a free port (read
    :attr:`bind_port` once started; in a config file 0 means 7000, as in frp).

    A ``log`` table configures the ``aiofrp`` loggers as frps does (without one, logging is left to
    the application). Entering the block (``await server.start()``) listens; leaving it (``await server.close()``)
    closes the listeners and every client's connections. A port that cannot be listened on
    raises :class:`~aiofrp.Error`.
    """

    def __init__(self, *, strict: bool = True, allow_unsafe: Collection[str] = frozenset(),
                 **options: Any) -> None:
        cfg = server_config(options, "aiofrp.Server(...)", strict=strict, allow_unsafe=allow_unsafe)
        if options.get("bind_port") == 0:  # frp reads bindPort 0 as 7000; here it asks for any free port
            cfg.bind_port = 0
        self._init(cfg)

    def _init(self, cfg: ServerConfig, path: str = "") -> None:
        self._cfg = cfg
        self._path = path
        self._svc: service.Server | None = None
        self._closed = False

    @classmethod
    def from_file(cls, path: str, *, strict: bool = True, allow_unsafe: Collection[str] = frozenset()) -> Server:
        """A server from an frps config file, checked as ``frps verify -c PATH`` does."""
        from ..config import load_server_config

        try:
            cfg = load_server_config(path, strict=strict, allow_unsafe=frozenset(allow_unsafe))
        except _ConfigFileError as exc:
            raise ConfigError.wrap(exc) from None
        self = cls.from_config(cfg)
        self._path = path
        return self

    @classmethod
    def from_config(cls, cfg: ServerConfig) -> Server:
        """A server from a config struct already checked."""
        self = cls.__new__(cls)
        self._init(cfg)
        return self

    @property
    def config(self) -> ServerConfig:
        """The server's config struct."""
        return self._cfg

    @property
    def bind_addr(self) -> str:
        """The address frpc connects to, ``host:port`` (the port chosen when ``bind_port=0``)."""
        return join_host_port(self._cfg.bind_addr, self.bind_port)

    @property
    def bind_port(self) -> int:
        """The bind port (the one chosen for ``bind_port=0`` once started)."""
        return self._svc.bind_port if self._svc is not None else self._cfg.bind_port

    @property
    def vhost_http_port(self) -> int:
        """The HTTP vhost port (0: off)."""
        vh = self._svc.http_vhost if self._svc is not None else None
        return vh.port if vh is not None else self._cfg.vhost_http_port

    @property
    def proxies(self) -> list[ProxyInfo]:
        """The proxies registered now, by name."""
        if self._svc is None:
            return []
        return [ProxyInfo(p.name, p.type, p.remote_addr, getattr(p.control, "run_id", ""))
                for _, p in sorted(self._svc.proxies.items())]

    async def start(self) -> None:
        """Listen (once; entering ``async with`` calls it)."""
        if self._closed:
            raise Error("this server is closed")
        if self._svc is not None:
            return
        apply_log_settings(self._cfg, self._path or "aiofrp.Server(...)")
        try:
            svc = service.Server(self._cfg)
        except _ConfigFileError as exc:
            raise ConfigError.wrap(exc) from None
        except OSError as exc:  # certificate files that cannot be read
            raise Error(f"create server error: {exc}") from None
        try:
            await svc.start()
        except OSError as exc:
            await svc.close()
            raise Error(f"create server listener error: {exc}") from None
        self._svc = svc

    async def close(self) -> None:
        """Close the listeners and the clients' connections (a no-op when closed)."""
        if self._closed:
            return
        self._closed = True
        if self._svc is not None:
            await self._svc.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, et: object, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<aiofrp.Server {self.bind_addr} proxies={len(self._svc.proxies) if self._svc else 0}>"
