"""The parent process of ``frps --workers N``: starts N workers (our own entry point, a fresh
interpreter each: ``python -m aiofrp.cli.frps ... --worker I --registry PATH``), serves them the
registry over a unix socket, restarts one that dies (with a back-off) and stops them all on
SIGTERM/SIGINT.

Start-up: a worker that exits before it listens (a port in use, a certificate that cannot be read:
its own line says why) ends the supervisor with exit status 1, the others stopped; later a dead
worker is started again after 0.5 s, doubled up to 30 s while it keeps dying within a minute.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from typing import TYPE_CHECKING

from .dashboard import AggregateDashboard
from .registry import RegistryServer

if TYPE_CHECKING:
    from ...config.server import ServerConfig

log = logging.getLogger("aiofrp.server.workers")

BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
STABLE_AFTER = 60.0  # a worker that ran this long starts again at BACKOFF_FIRST
STOP_GRACE = 10.0  # SIGTERM, then SIGKILL after this long


class _Worker:
    def __init__(self, number: int) -> None:
        self.number = number
        self.proc: asyncio.subprocess.Process | None = None
        self.ready: asyncio.Future[object] | None = None
        self.started = 0.0
        self.backoff = BACKOFF_FIRST
        self.restarts = 0


class Supervisor:
    def __init__(self, cfg: ServerConfig, workers: int, argv: list[str]) -> None:
        self.cfg = cfg
        self.n = workers
        self.argv = argv  # the supervisor's own arguments, given to every worker
        self.workers = {i: _Worker(i) for i in range(1, workers + 1)}
        self.dir = tempfile.mkdtemp(prefix="frps-workers-")
        self.registry = RegistryServer(os.path.join(self.dir, "registry.sock"), self._ready)
        self.stopping = False
        self.log_file = cfg.log.to not in ("", "console")
        self._copiers: set[asyncio.Future[None]] = set()
        if self.log_file:
            for handler in logging.getLogger("aiofrp").handlers:
                handler.setFormatter(_PassThrough(handler.formatter))
        self.dashboard: AggregateDashboard | None = None  # webServer.port: the workers' figures added up

    def _ready(self, number: int) -> None:
        w = self.workers.get(number)
        if w is not None and w.ready is not None and not w.ready.done():
            w.ready.set_result(None)
            if w.restarts:
                log.info("worker %d serves again", number)

    async def _spawn(self, w: _Worker) -> None:
        cmd = [sys.executable, "-m", "aiofrp.cli.frps", *self.argv,
               "--worker", str(w.number), "--registry", self.registry.path]
        w.ready = asyncio.get_running_loop().create_future()  # set by the worker's "ready" frame
        w.started = time.monotonic()
        # log.to a file: the workers log to the console, which the supervisor writes into its file
        # (one process rotates it); else they share the supervisor's console
        out = asyncio.subprocess.PIPE if self.log_file else None
        w.proc = await asyncio.create_subprocess_exec(*cmd, stdin=asyncio.subprocess.DEVNULL, stdout=out,
                                                      stderr=asyncio.subprocess.STDOUT if out else None)
        if w.proc.stdout is not None:
            task = asyncio.ensure_future(_copy_lines(w.proc.stdout))
            self._copiers.add(task)
            task.add_done_callback(self._copiers.discard)
        log.info("worker %d started (pid %d)", w.number, w.proc.pid)

    async def run(self, stop: asyncio.Event) -> int:
        try:
            if self.cfg.ssh_tunnel_gateway.bind_port > 0 and not self._ssh_host_key():
                return 1
            await self.registry.start()
            for w in self.workers.values():
                await self._spawn(w)
            if not await self._all_ready(stop):
                return 0 if stop.is_set() else 1
            if self.cfg.web_server.port:
                self.dashboard = AggregateDashboard(self.cfg, self.registry.path, self.n)
                try:
                    await self.dashboard.start()
                except OSError as exc:
                    log.error("create dashboard web server error: %s", exc)
                    return 1
            log.info("frps started successfully with %d workers", self.n)
            watchers = [asyncio.ensure_future(self._watch(w, stop)) for w in self.workers.values()]
            await stop.wait()
            self.stopping = True
            for t in watchers:
                t.cancel()
            return 0
        finally:
            self.stopping = True
            if self.dashboard is not None:
                await self.dashboard.close()
            await self._stop_all()
            if self._copiers:
                await asyncio.wait(self._copiers, timeout=2)
            await self.registry.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    def _ssh_host_key(self) -> bool:
        """sshTunnelGateway: the host key file made (autoGenPrivateKeyPath) before the workers
        start, so that they all read the same key rather than each making one."""
        from ..sshgw import load_host_key

        try:
            load_host_key(self.cfg.ssh_tunnel_gateway)
        except (OSError, ValueError) as exc:
            log.error("create ssh gateway error: %s", exc)
            return False
        return True

    async def _all_ready(self, stop: asyncio.Event) -> bool:
        """Every worker listens (True), or one exited first / we were stopped (False)."""
        stopped: asyncio.Future[object] = asyncio.ensure_future(stop.wait())
        exits: dict[asyncio.Future[object], _Worker] = {}
        pending: set[asyncio.Future[object]] = {stopped}
        for w in self.workers.values():
            assert w.proc is not None and w.ready is not None
            pending.add(w.ready)
            fut: asyncio.Future[object] = asyncio.ensure_future(w.proc.wait())
            exits[fut] = w
            pending.add(fut)
        try:
            remaining = self.n
            while remaining:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for fut in done:
                    if fut is stopped:
                        return False
                    dead = exits.get(fut)
                    if dead is not None:
                        log.error("worker %d exited with status %s while starting: frps stops",
                                  dead.number, fut.result())
                        return False
                    remaining -= 1
            return True
        finally:
            for fut in pending:
                fut.cancel()

    async def _watch(self, w: _Worker, stop: asyncio.Event) -> None:
        """Start ``w`` again whenever it exits, with a back-off."""
        while not self.stopping:
            assert w.proc is not None
            code = await w.proc.wait()
            if self.stopping:
                return
            ran = time.monotonic() - w.started
            if ran >= STABLE_AFTER:
                w.backoff = BACKOFF_FIRST
            log.warning("worker %d (pid %d) exited with status %d, starting it again in %gs",
                        w.number, w.proc.pid, code, w.backoff)
            delay = w.backoff
            w.backoff = min(BACKOFF_MAX, w.backoff * 2)
            try:
                async with asyncio.timeout(delay):
                    await stop.wait()
                return  # stopped meanwhile
            except TimeoutError:
                pass
            w.restarts += 1
            await self._spawn(w)

    async def _stop_all(self) -> None:
        procs = [w.proc for w in self.workers.values() if w.proc is not None and w.proc.returncode is None]
        for p in procs:
            try:
                p.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in procs:
            try:
                async with asyncio.timeout(STOP_GRACE):
                    await p.wait()
            except TimeoutError:
                log.warning("worker pid %d did not stop within %gs, killing it", p.pid, STOP_GRACE)
                p.kill()
                await p.wait()


_lines = logging.getLogger("aiofrp.server.workers.lines")


class _PassThrough(logging.Formatter):
    """The supervisor's log formatter when ``log.to`` is a file: a worker's line (already in
    frp's format, with its ``@wN`` tag) is written as it is, everything else as before."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, "worker_line", False):
            return record.getMessage()
        return self.inner.format(record)


async def _copy_lines(stream: asyncio.StreamReader) -> None:
    """A worker's console into the supervisor's log file, line by line."""
    while True:
        try:
            line = await stream.readline()
        except ValueError:  # a line over the stream limit: its start was lost, go on
            continue
        if not line:
            return
        _lines.critical("%s", line.decode(errors="replace").rstrip("\r\n"), extra={"worker_line": True})
