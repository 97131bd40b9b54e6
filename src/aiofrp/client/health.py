"""Health checks of a proxy's local service (frp §5.12), like Go's ``client/health.Monitor``.

Every ``intervalSeconds`` one check runs, bounded by ``timeoutSeconds``: ``tcp`` connects to
``localIP:localPort``; ``http`` sends ``GET http://localIP:localPort<path>`` with ``httpHeaders``
and wants a 2xx status, reusing its keep-alive connection as Go's HTTP client does. The status
starts *failed*: the first passing check calls ``on_ok`` (the proxy registers), then
``maxFailed`` consecutive failures call ``on_failed`` (the proxy is closed on frps), and so on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..proto.addr import join_host_port
from ..proto.http import (
    MAX_HEAD_SIZE,
    HTTPError,
    UntilClose,
    find_head_end,
    parse_response_head,
    response_body,
)

if TYPE_CHECKING:
    from ..config.proxy import HealthCheckConfig

log = logging.getLogger("aiofrp.client.health")

__all__ = ["HealthCheckFailed", "HealthMonitor"]

DEFAULT_INTERVAL = 10
DEFAULT_TIMEOUT = 3
USER_AGENT = "Go-http-client/1.1"


class HealthCheckFailed(Exception):
    """A check got an answer, but not a healthy one (e.g. a non-2xx status)."""


class HealthMonitor:
    def __init__(
        self, name: str, cfg: HealthCheckConfig, host: str, port: int, on_ok: Callable[[], None], on_failed: Callable[[], None],
    ) -> None:
        self.name = name
        self.type: str = cfg.type
        self.interval = float(cfg.interval_seconds if cfg.interval_seconds > 0 else DEFAULT_INTERVAL)
        self.timeout = float(cfg.timeout_seconds if cfg.timeout_seconds > 0 else DEFAULT_TIMEOUT)
        self.max_failed = cfg.max_failed if cfg.max_failed > 0 else 1
        self.host = host
        self.port = port
        self.ok = False
        self.failed_times = 0
        self._on_ok = on_ok
        self._on_failed = on_failed
        self._task: asyncio.Task[None] | None = None
        self._http = _HTTPProbe(host, port, cfg.path, [(h.name, h.value) for h in cfg.http_headers]) \
            if self.type == "http" else None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self._http is not None:
            self._http.close()

    async def check(self) -> None:
        """One check; raises on failure (OSError, TimeoutError, HTTPError, HealthCheckFailed)."""
        async with asyncio.timeout(self.timeout):
            if self._http is not None:
                await self._http.check()
            else:
                await self._tcp_check()

    async def _tcp_check(self) -> None:
        transport, _ = await asyncio.get_running_loop().create_connection(asyncio.Protocol, self.host, self.port)
        transport.close()

    async def _run(self) -> None:
        while True:
            try:
                await self.check()
            except (OSError, TimeoutError, EOFError, HTTPError, HealthCheckFailed) as exc:
                log.warning("[%s] do one health check failed: %s", self.name, exc or type(exc).__name__)
                self.failed_times += 1
                if self.ok and self.failed_times >= self.max_failed:
                    self.ok = False
                    self._on_failed()
            else:
                log.debug("[%s] do one health check success", self.name)
                self.failed_times = 0
                if not self.ok:
                    self.ok = True
                    self._on_ok()
            await asyncio.sleep(self.interval)


class _HTTPProbe:
    """``GET`` over one keep-alive HTTP/1.1 connection, reopened when the service closes it."""

    def __init__(self, host: str, port: int, path: str, headers: list[tuple[str, str]]) -> None:
        authority = join_host_port(host, port)
        target = path if path.startswith("/") else "/" + path
        lines = [f"GET {target} HTTP/1.1", f"Host: {authority}"]
        names = {k.lower() for k, _ in headers}
        if "user-agent" not in names:
            lines.append(f"User-Agent: {USER_AGENT}")
        # Go's client ignores a Host entry in the header map (it takes the URL's host)
        lines += [f"{k}: {v}" for k, v in headers if k.lower() != "host"]
        self.request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.host = host
        self.port = port
        self.idle: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    def close(self) -> None:
        if self.idle is not None:
            self.idle[1].transport.abort()
            self.idle = None

    async def check(self) -> None:
        conn, self.idle = self.idle, None
        reused = conn is not None
        if conn is None:
            conn = await asyncio.open_connection(self.host, self.port)
        try:
            status, keep = await self._exchange(*conn)
        except _Stale:
            conn[1].transport.abort()
            if not reused:
                raise EOFError("connection closed before a response") from None
            # the service had closed the idle connection: once more on a new one, like Go
            conn = await asyncio.open_connection(self.host, self.port)
            try:
                status, keep = await self._exchange(*conn)
            except BaseException:
                conn[1].transport.abort()
                raise
        except BaseException:
            conn[1].transport.abort()
            raise
        if keep:
            self.idle = conn
        else:
            conn[1].transport.abort()
        if status // 100 != 2:
            raise HealthCheckFailed(f"do http health check, StatusCode is [{status}] not 2xx")

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> tuple[int, bool]:
        writer.write(self.request)
        buf = b""
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                if not buf:
                    raise _Stale()
                raise EOFError("connection closed in the response head")
            buf += chunk
            end = find_head_end(buf)
            if end >= 0:
                break
            if len(buf) > MAX_HEAD_SIZE:
                raise HTTPError(502, "response head too large")
        resp = parse_response_head(buf[:end])
        framer = response_body(resp, "GET")
        pos = framer.feed(buf, end)
        while not framer.done:
            chunk = await reader.read(65536)
            if not chunk:
                if isinstance(framer, UntilClose):
                    return resp.status, False
                raise EOFError("connection closed in the response body")
            pos = framer.feed(chunk)
            buf = chunk
        tokens = resp.connection_tokens()
        keep = ("close" not in tokens) if resp.minor else ("keep-alive" in tokens)
        return resp.status, keep and pos == len(buf)


class _Stale(EOFError):
    """The connection closed before any byte of a response."""
