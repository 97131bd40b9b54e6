"""``aiofrp.expose(...)``: one blocking call for notebooks and scripts.

The clients run on one background thread ("aiofrp") with its own event loop, so the caller's
thread may run an event loop of its own (Jupyter) or none. Calls with the same server, token,
user and client options share one :class:`~aiofrp.Client`. Everything is closed at interpreter
exit (``atexit``).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import json
import threading
from collections.abc import Coroutine, Mapping
from types import TracebackType
from typing import Any, Self, TypeVar

from .client import EXPOSE_TIMEOUT, Client, Tunnel
from .errors import ConfigError, Error

__all__ = ["BlockingTunnel", "expose"]

T = TypeVar("T")

_lock = threading.Lock()
_runner: _Runner | None = None


class _Runner:
    """The background thread, its loop and the shared clients."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.clients: dict[str, Client] = {}
        self.client_lock: asyncio.Lock | None = None
        ready = threading.Event()
        self.thread = threading.Thread(target=self._main, args=(ready,), name="aiofrp", daemon=True)
        self.thread.start()
        ready.wait()

    def _main(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(ready.set)
        try:
            self.loop.run_forever()
        finally:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        if threading.current_thread() is self.thread:  # e.g. from an on_event callback: it would wait for itself
            coro.close()
            raise Error("aiofrp's blocking calls cannot be made from its own background thread; "
                        "use 'await client.expose(...)' there")
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise TimeoutError("aiofrp: the background client did not answer in time") from None

    async def client(self, key: str, options: Mapping[str, Any]) -> Client:
        if self.client_lock is None:
            self.client_lock = asyncio.Lock()
        async with self.client_lock:
            c = self.clients.get(key)
            if c is not None and not c._closed:
                return c
            c = Client(**options)
            await c.start()
            self.clients[key] = c
            return c

    async def close_all(self) -> None:
        clients, self.clients = list(self.clients.values()), {}
        for c in clients:
            await c.close()

    def stop(self) -> None:
        if self.loop.is_closed() or not self.thread.is_alive():
            return
        try:
            self.call(self.close_all(), timeout=10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)


def _get_runner() -> _Runner:
    global _runner
    with _lock:
        if _runner is None or not _runner.thread.is_alive():
            _runner = _Runner()
        return _runner


def shutdown() -> None:
    """Close every client :func:`expose` made and stop its thread (done at interpreter exit;
    a later :func:`expose` starts afresh)."""
    global _runner
    with _lock:
        runner, _runner = _runner, None
    if runner is not None:
        runner.stop()


atexit.register(shutdown)


class BlockingTunnel:
    """What :func:`expose` returns: a :class:`~aiofrp.Tunnel` driven from any thread.

    Attributes as :class:`~aiofrp.Tunnel`: ``name``, ``type``, ``status``, ``error``,
    ``remote_addr``, ``url``; ``close()`` takes it off frps (``with`` closes it at the end of the
    block).
    """

    def __init__(self, runner: _Runner, tunnel: Tunnel) -> None:
        self._runner = runner
        self.tunnel = tunnel
        """The :class:`~aiofrp.Tunnel` (use it only in the background loop: ``client.loop``)."""

    @property
    def name(self) -> str:
        """The proxy's name."""
        return self.tunnel.name

    @property
    def type(self) -> str:
        """The proxy type."""
        return self.tunnel.type

    @property
    def status(self) -> str:
        """frp's status of the proxy (``"running"``, ...)."""
        return self.tunnel.status

    @property
    def error(self) -> str:
        """frps's reason when refused."""
        return self.tunnel.error

    @property
    def remote_addr(self) -> str:
        """Where frps serves it (see :attr:`aiofrp.Tunnel.remote_addr`)."""
        return self.tunnel.remote_addr

    @property
    def url(self) -> str:
        """``tcp://host:port``, ``http://domain``, ... (see :attr:`aiofrp.Tunnel.url`)."""
        return self.tunnel.url

    def close(self) -> None:
        """Take the proxy off frps; a no-op when closed (or after interpreter shutdown began)."""
        if self._runner.loop.is_closed() or not self._runner.thread.is_alive():
            return
        self._runner.call(self.tunnel.close(), timeout=10)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, et: object, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return repr(self.tunnel)


def _split_server(server: str) -> tuple[str, int]:
    host, sep, port = server.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError("aiofrp.expose(...)", "server", f'expected "host:port", got {server!r}', server)
    return host.strip("[]"), int(port)


def expose(local_port: int = 0, *, server: str = "127.0.0.1:7000", token: str = "", user: str = "",
           type: str = "tcp", local_ip: str = "127.0.0.1", remote_port: int = 0,
           name: str | None = None, client_options: Mapping[str, Any] | None = None,
           timeout: float = EXPOSE_TIMEOUT, **proxy_options: Any) -> BlockingTunnel:
    """Serve ``local_ip:local_port`` through the frps at ``server``; blocks until frps accepted
    the proxy and returns a :class:`BlockingTunnel` (``.url``, ``.close()``).

    :param local_port: the local service's port (0 with a ``plugin``).
    :param server: frps's ``host:port`` (its ``bindPort``).
    :param token: frps's ``auth.token``.
    :param user: frpc's ``user`` (frps sees proxy names as ``user.name``).
    :param type: tcp, udp, http, https, tcpmux, stcp, sudp or xtcp.
    :param local_ip: the local service's address.
    :param remote_port: tcp/udp: the public port; 0 lets frps choose.
    :param name: the proxy's name (default ``TYPE-LOCALPORT-RANDOM``).
    :param client_options: other frpc keys in snake_case (``{"transport": {"tls": {"enable":
        False}}}``); calls with the same server, token, user and client options share a client.
    :param timeout: seconds to wait for the login and frps's answer.
    :param proxy_options: the proxy's other keys (``subdomain="app"``, ``plugin="static_file"``,
        ``local_path="..."``, ...), as :meth:`aiofrp.Client.expose`.
    :raises ConfigError: a bad option (named). :raises LoginError: frps refused the login.
    :raises ProxyError: frps refused the proxy, with its reason.
    """
    host, port = _split_server(server)
    options: dict[str, Any] = {**(client_options or {}), "server_addr": host, "server_port": port}
    if token:
        options["token"] = token
    if user:
        options["user"] = user
    key = json.dumps(options, sort_keys=True, default=str)
    runner = _get_runner()

    async def go() -> Tunnel:
        client = await runner.client(key, options)
        return await client.expose(local_port, type=type, local_ip=local_ip, remote_port=remote_port,
                                   name=name, timeout=timeout, **proxy_options)

    tunnel = runner.call(go(), timeout=timeout * 2 + 15)
    return BlockingTunnel(runner, tunnel)
