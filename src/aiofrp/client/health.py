"""Health checks of a proxy's local service (frp §5.12), like Go's ``client/health.Monitor``.

Every ``intervalSeconds`` one check runs, bounded by ``timeoutSeconds``: ``tcp`` connects to
``localIP:localPort``; ``http`` sends ``GET http://localIP:localPort<path>`` as Go's
``http.DefaultClient`` does (``httpHeaders``, a ``Host`` among them sets the Host header;
``Accept-Encoding: gzip``; redirects followed, at most 10; keep-alive connections reused) and wants
a 2xx status. The status starts *failed*: the first passing check calls ``on_ok`` (the proxy
registers), then ``maxFailed`` consecutive failures call ``on_failed`` (the proxy is closed on
frps), and so on. A failed check is logged in Go's words (``dial tcp 127.0.0.1:8080: connect:
connection refused``, ``Get "http://127.0.0.1:8080/health": context deadline exceeded``).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..log import XLog
from ..net.dialerr import dial_error_text
from ..proto.addr import join_host_port
from ..proto.http import (
    MAX_HEAD_SIZE,
    HTTPError,
    UntilClose,
    canonical_header_key,
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
MAX_REDIRECTS = 10  # Go's http.Client default CheckRedirect
_REDIRECTS = (301, 302, 303, 307, 308)


class HealthCheckFailed(Exception):
    """A check failed; the text is Go's for the same failure."""


class HealthMonitor:
    def __init__(
        self, name: str, cfg: HealthCheckConfig, host: str, port: int, on_ok: Callable[[], None], on_failed: Callable[[], None],
        *, xl: XLog | None = None,
    ) -> None:
        self.name = name
        # the proxy's prefixes ("[RUNID] [NAME] " once logged in, as Go's monitor logs with the proxy's xlog)
        self.xl = xl.on(log) if xl is not None else XLog(log, name)
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
        """One check. On failure an http check raises :class:`HealthCheckFailed` with Go's text, a
        tcp check the OSError or TimeoutError of the connect (:meth:`describe` gives Go's text)."""
        if self._http is not None:
            try:
                async with asyncio.timeout(self.timeout):
                    await self._http.check()
            except TimeoutError:
                self._http.close()
                raise HealthCheckFailed(f'Get "{self._http.current}": context deadline exceeded') from None
            return
        async with asyncio.timeout(self.timeout):
            transport, _ = await asyncio.get_running_loop().create_connection(asyncio.Protocol, self.host, self.port)
        transport.close()

    def describe(self, exc: BaseException) -> str:
        """Go's text for a failed check (``dial tcp 127.0.0.1:8080: connect: connection refused``)."""
        if isinstance(exc, HealthCheckFailed):
            return str(exc)
        if isinstance(exc, (OSError, TimeoutError)):
            return dial_error_text(join_host_port(self.host, self.port), exc)
        return str(exc) or type(exc).__name__

    async def _run(self) -> None:
        while True:
            try:
                await self.check()
            except (HealthCheckFailed, OSError, EOFError, HTTPError) as exc:
                self.xl.warning("do one health check failed: %s", self.describe(exc))
                self.failed_times += 1
                if self.ok and self.failed_times >= self.max_failed:
                    self.xl.warning("health check status change to failed")
                    self.ok = False
                    self._on_failed()
            else:
                self.xl.debug("do one health check success")
                self.failed_times = 0
                if not self.ok:
                    self.xl.info("health check status change to success")
                    self.ok = True
                    self._on_ok()
            await asyncio.sleep(self.interval)


class _HTTPProbe:
    """``GET`` as Go's ``http.DefaultClient``: keep-alive connections (one idle per host:port),
    redirects followed."""

    def __init__(self, host: str, port: int, path: str, headers: list[tuple[str, str]]) -> None:
        authority = join_host_port(host, port)
        self.url = f"http://{authority}" + (path if path.startswith("/") else "/" + path)
        self.current = self.url  # the URL being fetched (error texts)
        merged: dict[str, tuple[str, str]] = {}  # Go's header.Set: the last value of a name wins
        for k, v in headers:
            merged[k.lower()] = (canonical_header_key(k), v)
        host_entry = merged.pop("host", None)
        self.host_header = host_entry[1] if host_entry else ""  # Go: req.Host = header.Get("Host")
        self.user_agent = merged.pop("user-agent", ("User-Agent", USER_AGENT))[1]
        self.headers = list(merged.values())
        self.gzip = "accept-encoding" not in merged and "range" not in merged  # Go's transport adds it
        self.idle: dict[tuple[str, int], tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}

    def close(self) -> None:
        for _, writer in self.idle.values():
            writer.transport.abort()
        self.idle.clear()

    def _request(self, target: str, host_header: str) -> bytes:
        lines = [f"GET {target} HTTP/1.1", f"Host: {host_header}"]
        if self.user_agent:
            lines.append(f"User-Agent: {self.user_agent}")
        lines += [f"{k}: {v}" for k, v in self.headers]
        if self.gzip:
            lines.append("Accept-Encoding: gzip")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def check(self) -> None:
        # here: urllib.parse (and the ipaddress it imports, ~1 MB resident) only for a frpc with an
        # http health check (tests/e2e/test_lazy_imports.py)
        from urllib.parse import urljoin, urlsplit

        url = self.url
        custom_host = self.host_header
        for hop in range(MAX_REDIRECTS + 1):
            self.current = url
            if hop == MAX_REDIRECTS:
                raise HealthCheckFailed(f'Get "{url}": stopped after {MAX_REDIRECTS} redirects')
            parts = urlsplit(url)
            if parts.scheme != "http" or not parts.hostname:
                raise HealthCheckFailed(f'Get "{url}": unsupported protocol scheme "{parts.scheme}" (aiofrp follows '
                                        "http redirects only)")
            host, port = parts.hostname, parts.port or 80
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            try:
                status, location = await self._fetch(host, port, target, custom_host or parts.netloc)
            except HealthCheckFailed as exc:
                raise HealthCheckFailed(f'Get "{url}": {exc}') from None
            if status not in _REDIRECTS or not location:
                break
            # Go keeps a custom Host only through a relative redirect
            if custom_host and urlsplit(location).scheme:
                custom_host = ""
            url = urljoin(url, location)
        if status // 100 != 2:
            raise HealthCheckFailed(f"do http health check, StatusCode is [{status}] not 2xx")

    async def _fetch(self, host: str, port: int, target: str, host_header: str) -> tuple[int, str]:
        request = self._request(target, host_header)
        conn = self.idle.pop((host, port), None)
        if conn is not None and (conn[0].at_eof() or getattr(conn[0], "_buffer", None)):
            # bytes came on the idle connection (a body after a 204), or its end: Go's transport
            # drops such a connection before it sends anything on it
            conn[1].transport.abort()
            conn = None
        for attempt in (0, 1):
            reused = conn is not None
            if conn is None:
                try:
                    conn = await asyncio.open_connection(host, port)
                except OSError as exc:
                    raise HealthCheckFailed(dial_error_text(join_host_port(host, port), exc)) from None
            try:
                status, location, keep = await self._exchange(*conn, request, reused)
            except _Stale:
                conn[1].transport.abort()
                conn = None
                if reused and attempt == 0:
                    # the service had closed the idle connection, or sent bytes on it while it was
                    # idle (a body after a 204): Go's transport drops such a connection and the
                    # request goes out on a new one
                    continue
                raise HealthCheckFailed("EOF") from None
            except BaseException:
                conn[1].transport.abort()
                raise
            if keep:
                self.idle[host, port] = conn
            else:
                conn[1].transport.abort()
            return status, location
        raise HealthCheckFailed("EOF")  # not reached

    async def _exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes, reused: bool = False,
    ) -> tuple[int, str, bool]:
        try:
            writer.write(request)
            buf = b""
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    if not buf:
                        raise _Stale()
                    raise HealthCheckFailed("unexpected EOF")
                buf += chunk
                end = find_head_end(buf)
                if end >= 0:
                    break
                if len(buf) > MAX_HEAD_SIZE:
                    raise HealthCheckFailed("net/http: server response headers exceeded 1048576 bytes; aborted")
            try:
                resp = parse_response_head(buf[:end])
            except HTTPError:
                if reused:
                    raise _Stale() from None  # unsolicited bytes that came while it was idle
                first = buf[:end].split(b"\n", 1)[0].rstrip(b"\r").decode("latin-1")
                raise HealthCheckFailed(
                    f'net/http: HTTP/1.x transport connection broken: malformed HTTP response "{first}"') from None
            framer = response_body(resp, "GET")
            pos = framer.feed(buf, end)
            while not framer.done:
                chunk = await reader.read(65536)
                if not chunk:
                    if isinstance(framer, UntilClose):
                        return resp.status, resp.get("location") or "", False
                    break  # Go discards the body: a cut body does not fail the check
                pos = framer.feed(chunk)
                buf = chunk
            else:
                tokens = resp.connection_tokens()
                keep = ("close" not in tokens) if resp.minor else ("keep-alive" in tokens)
                return resp.status, resp.get("location") or "", keep and pos == len(buf)
            return resp.status, resp.get("location") or "", False
        except OSError as exc:
            reason = os.strerror(exc.errno).lower() if exc.errno else (str(exc) or type(exc).__name__)
            raise HealthCheckFailed(reason) from None
        except HTTPError as exc:  # a malformed body framing
            raise HealthCheckFailed(str(exc)) from None


class _Stale(EOFError):
    """The connection closed before any byte of a response, or an idle one held bytes nobody
    asked for."""
