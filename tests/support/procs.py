"""Process-level helpers for end-to-end tests: ports, frp processes (ours or Go's), local services.

Everything here binds or connects to 127.0.0.1 only and every wait is bounded by a deadline.

Processes
    :class:`FrpProcess` runs one command with its config written to a file without extension
    (as frp's own e2e harness does), stdout+stderr going to a log file, in its own process group.
    The factories :func:`ours_frps`, :func:`ours_frpc`, :func:`go_frps`, :func:`go_frpc` start one;
    the :func:`frp` fixture yields a :class:`FrpLauncher` that does the same inside a test's
    ``tmp_path`` and kills everything at test end.  Processes still alive when the interpreter
    exits are killed by an ``atexit`` hook.

Services (background thread; ``start()``/``stop()``, ``.port``, context managers)
    :class:`EchoServer` (TCP, asyncio, many concurrent clients), :class:`UdpEchoServer`,
    :class:`HttpServer` (fixed body for every request), :class:`BulkServer` (sink/source for bulk
    transfers, optional SHA-256; clients :func:`bulk_upload` / :func:`bulk_download`).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import hashlib
import http.server
import importlib.util
import os
import random
import re
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, TypeVar

from .gofrp import GoFrpUnavailable, go_binaries, platform_supported

try:  # fixtures are only defined when pytest is around (bench/ imports this module too)
    import pytest
except ImportError:  # pragma: no cover
    pytest = None  # type: ignore[assignment]

__all__ = [
    "LOCALHOST",
    "TEST_STRING",
    "BulkResult",
    "BulkServer",
    "EchoServer",
    "FrpLauncher",
    "FrpProcess",
    "HttpServer",
    "LogTimeout",
    "UdpEchoServer",
    "bulk_download",
    "bulk_upload",
    "free_port",
    "free_udp_port",
    "frpc_config",
    "frps_config",
    "go_cmd",
    "go_frpc",
    "go_frps",
    "ours_available",
    "ours_cmd",
    "ours_frpc",
    "ours_frps",
    "tcp_proxy",
    "tcp_roundtrip",
    "udp_proxy",
    "udp_roundtrip",
    "wait_port",
]

T = TypeVar("T")

LOCALHOST = "127.0.0.1"
# The payload frp's e2e harness uses everywhere (mock HTTP body, echo payload).
TEST_STRING = (
    b"frp is a fast reverse proxy to help you expose a local server behind a NAT or firewall to the internet."
)


# --------------------------------------------------------------------------------------------------
# ports
# --------------------------------------------------------------------------------------------------

_PORT_LOCK = threading.Lock()
_HANDED_OUT: set[int] = set()
_rng = random.Random(os.getpid() ^ time.monotonic_ns())


def _ephemeral_range() -> tuple[int, int]:
    try:
        lo, hi = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(lo), int(hi)
    except (OSError, ValueError):
        return 32768, 60999


def _port_range() -> tuple[int, int] | None:
    """Ports below the kernel's ephemeral range, so no outgoing connection can grab them between our
    check and the server's bind; split per pytest-xdist worker (like frp's per-node allocator)."""
    eph_lo, eph_hi = _ephemeral_range()
    lo, hi = 15000, min(eph_lo - 1, 32000)
    if hi - lo < 2000:
        lo, hi = eph_hi + 1, 65000
        if hi - lo < 2000:
            return None  # odd kernel configuration: fall back to kernel-chosen ports
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    if worker.startswith("gw") and worker[2:].isdigit() and count > 1:
        span = (hi - lo) // count
        idx = int(worker[2:]) % count
        lo, hi = lo + idx * span, lo + (idx + 1) * span - 1
    return lo, hi


def _bindable(port: int) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind((LOCALHOST, port))
            except OSError:
                return False
    return True


def free_port() -> int:
    """A loopback port that is currently free for both TCP and UDP and was never handed out by this
    process before.  Chosen at random below the ephemeral port range (low collision risk)."""
    rng = _port_range()
    with _PORT_LOCK:
        for _ in range(2000):
            if rng is not None:
                port = _rng.randint(*rng)
            else:
                with socket.socket() as s:
                    s.bind((LOCALHOST, 0))
                    port = s.getsockname()[1]
            if port in _HANDED_OUT or not _bindable(port):
                continue
            _HANDED_OUT.add(port)
            return port
    raise RuntimeError("no free loopback port found")


def free_udp_port() -> int:
    """Same as :func:`free_port` (the check covers UDP as well); for readability at call sites."""
    return free_port()


def wait_port(port: int, timeout: float = 5.0, *, host: str = LOCALHOST) -> None:
    """Poll until a TCP connect to ``host:port`` succeeds; raise ``TimeoutError`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    last: OSError | None = None
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"{host}:{port} not accepting connections after {timeout}s ({last})")
        try:
            with socket.create_connection((host, port), timeout=min(remaining, 1.0)):
                return
        except OSError as e:
            last = e
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 1.5, 0.1)


# --------------------------------------------------------------------------------------------------
# frp processes
# --------------------------------------------------------------------------------------------------

_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_LIVE: set[FrpProcess] = set()
_LIVE_LOCK = threading.Lock()
_OWNED_DIRS: list[Path] = []


class LogTimeout(AssertionError):
    """A log line did not appear in time (or the process exited first).  Message has the log tail."""


class FrpProcess:
    """One frps/frpc (or any) process.

    ``argv`` is the command prefix (``[sys.executable, "-m", "aiofrp.cli.frps"]`` or
    ``["/path/frps"]``); the final command line is ``argv + args + ["-c", <config file>]`` (the
    ``-c`` part only when ``config_text`` is not ``None``).  ``env=None`` inherits the environment
    (plus ``PYTHONUNBUFFERED=1``); pass a mapping to give the exact environment (``{}`` mimics frp's
    harness).  Call :meth:`start` (the factories do) or use it as a context manager.
    """

    def __init__(
        self,
        argv: Sequence[str | os.PathLike[str]],
        config_text: str | None = None,
        *,
        name: str = "frp",
        workdir: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.argv = [os.fspath(a) for a in argv]
        self.args = [str(a) for a in args]
        if workdir is None:
            workdir = tempfile.mkdtemp(prefix="aiofrp-proc-")
            _OWNED_DIRS.append(Path(workdir))
        self.workdir = Path(workdir)
        self.config_text = config_text
        self.config_path: Path | None = self.workdir / name if config_text is not None else None
        self.log_path = self.workdir / f"{name}.log"
        if env is None:
            env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.env = dict(env)
        self.proc: subprocess.Popen[bytes] | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    @property
    def cmdline(self) -> list[str]:
        cmd = self.argv + self.args
        if self.config_path is not None:
            cmd += ["-c", str(self.config_path)]
        return cmd

    def start(self) -> FrpProcess:
        if self.proc is not None:
            raise RuntimeError(f"{self.name} already started")
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.config_path is not None:
            self.config_path.write_text(self.config_text or "")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                self.cmdline,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env=self.env,
                start_new_session=True,  # own process group: stop()/kill() reach its children too
                close_fds=True,
            )
        with _LIVE_LOCK:
            _LIVE.add(self)
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def returncode(self) -> int | None:
        """Exit status (negative = killed by that signal), ``None`` while running or before start."""
        return self.proc.poll() if self.proc else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _signal_group(self, sig: int) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def _finish(self) -> None:
        # The leader is reaped; kill any stragglers left in its group, then forget it.
        self._signal_group(signal.SIGKILL)
        with _LIVE_LOCK:
            _LIVE.discard(self)

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM the process group, SIGKILL it if still alive after ``timeout``.  Returns the status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.proc.wait(10)
        self._finish()
        return self.proc.returncode

    def kill(self) -> int | None:
        """SIGKILL the process group at once (what frp's harness does)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self._signal_group(signal.SIGKILL)
            self.proc.wait(10)
        self._finish()
        return self.proc.returncode

    def wait_exit(self, timeout: float = 10.0) -> int:
        """Wait for the process to exit by itself; ``LogTimeout`` (with the log tail) otherwise."""
        assert self.proc is not None, "not started"
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise LogTimeout(f"{self.name} still running after {timeout}s\n{self._tail_block()}") from None
        self._finish()
        return rc

    def __enter__(self) -> Self:
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<FrpProcess {self.name} pid={self.pid} rc={self.returncode}>"

    # -- logs ------------------------------------------------------------------------------------

    def log_text(self, *, strip_ansi: bool = True) -> str:
        """Everything the process printed so far (ANSI colour codes removed by default)."""
        try:
            text = self.log_path.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""
        return _ANSI_RE.sub("", text) if strip_ansi else text

    def mark(self) -> int:
        """Current log length; pass as ``since=`` to wait only for lines written after this point."""
        return len(self.log_text())

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def _tail_block(self, lines: int = 40) -> str:
        return (
            f"--- {self.name}: {' '.join(self.cmdline)} (rc={self.returncode}) last {lines} log lines ---\n"
            f"{self.log_tail(lines)}\n--- end of {self.name} log ---"
        )

    def wait_for_log(
        self, pattern: str | re.Pattern[str], timeout: float = 10.0, *, since: int = 0
    ) -> re.Match[str]:
        """Poll the log until ``pattern`` (regex, multiline) matches at/after offset ``since``.

        Raises :class:`LogTimeout` with the log tail on timeout or if the process exits without
        having logged a match.
        """
        assert self.proc is not None, "not started"
        rx = re.compile(pattern, re.MULTILINE) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            exited = self.proc.poll() is not None  # sample before reading: no lost final lines
            m = rx.search(self.log_text(), since)
            if m:
                return m
            if exited:
                raise LogTimeout(
                    f"{self.name} exited (rc={self.returncode}) without logging /{rx.pattern}/\n"
                    f"{self._tail_block()}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LogTimeout(f"/{rx.pattern}/ not in {self.name}'s log after {timeout}s\n{self._tail_block()}")
            time.sleep(min(delay, remaining))
            delay = min(delay * 1.5, 0.1)

    def wait_for_proxies(self, *names: str, timeout: float = 10.0, since: int = 0) -> None:
        """Wait for ``[NAME] start proxy success`` for every name (shared deadline)."""
        deadline = time.monotonic() + timeout
        for n in names:
            self.wait_for_log(
                rf"\[{re.escape(n)}\] start proxy success", max(0.0, deadline - time.monotonic()), since=since
            )

    def wait_login(self, timeout: float = 10.0, *, since: int = 0) -> str:
        """Wait for ``login to server success, get run id [ID]``; returns ID."""
        return self.wait_for_log(r"login to server success, get run id \[([^\]]*)\]", timeout, since=since)[1]


def coverage_measures_children() -> bool:
    """True under ``make coverage`` (coverage.py's subprocess patch sets this variable)."""
    return bool(os.environ.get("COVERAGE_PROCESS_CONFIG") or os.environ.get("COVERAGE_PROCESS_START"))


def ours_available() -> bool:
    """Whether our ``aiofrp.cli.frps`` and ``aiofrp.cli.frpc`` modules exist yet."""
    try:
        return all(importlib.util.find_spec(f"aiofrp.cli.{m}") is not None for m in ("frps", "frpc"))
    except (ImportError, ValueError):
        return False


def ours_cmd(which: str) -> list[str]:
    """``[sys.executable, "-m", "aiofrp.cli.<which>"]`` for ``which`` in ``frps``/``frpc``/``frp``."""
    if which not in ("frps", "frpc", "frp"):
        raise ValueError(which)
    return [sys.executable, "-m", f"aiofrp.cli.{which}"]


def go_cmd(which: str) -> list[str]:
    """``[<path to Go frps|frpc 0.65.0>]`` (fetched on first use; may raise ``GoFrpUnavailable``)."""
    frps, frpc = go_binaries()
    return [str({"frps": frps, "frpc": frpc}[which])]


def ours_frps(config_text: str | None, **kw: object) -> FrpProcess:
    """Start our frps with this config; ``kw`` as for :class:`FrpProcess` (name, workdir, env, args)."""
    kw.setdefault("name", "frps")
    return FrpProcess(ours_cmd("frps"), config_text, **kw).start()  # type: ignore[arg-type]


def ours_frpc(config_text: str | None, **kw: object) -> FrpProcess:
    kw.setdefault("name", "frpc")
    return FrpProcess(ours_cmd("frpc"), config_text, **kw).start()  # type: ignore[arg-type]


def go_frps(config_text: str | None, **kw: object) -> FrpProcess:
    kw.setdefault("name", "frps")
    return FrpProcess(go_cmd("frps"), config_text, **kw).start()  # type: ignore[arg-type]


def go_frpc(config_text: str | None, **kw: object) -> FrpProcess:
    kw.setdefault("name", "frpc")
    return FrpProcess(go_cmd("frpc"), config_text, **kw).start()  # type: ignore[arg-type]


class FrpLauncher:
    """Starts processes in one work directory and tracks them; what the ``frp`` fixture yields.

    Config files are named like frp's harness does (``frps-0``, ``frpc-1``, …, no extension).
    """

    def __init__(self, workdir: str | os.PathLike[str]) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.processes: list[FrpProcess] = []
        self._n = 0

    def run(
        self,
        argv: Sequence[str | os.PathLike[str]],
        config_text: str | None = None,
        *,
        name: str = "proc",
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
    ) -> FrpProcess:
        """Start any command (config handling as in :class:`FrpProcess`)."""
        p = FrpProcess(argv, config_text, name=f"{name}-{self._n}", workdir=self.workdir, env=env, args=args)
        self._n += 1
        self.processes.append(p)
        return p.start()

    def _go(self, which: str) -> list[str]:
        if not platform_supported() and pytest is not None:
            pytest.skip("Go frp 0.65.0 binaries are linux/amd64 only")
        return go_cmd(which)

    def ours_frps(self, config_text: str | None, **kw: object) -> FrpProcess:
        return self.run(ours_cmd("frps"), config_text, name="frps", **kw)  # type: ignore[arg-type]

    def ours_frpc(self, config_text: str | None, **kw: object) -> FrpProcess:
        return self.run(ours_cmd("frpc"), config_text, name="frpc", **kw)  # type: ignore[arg-type]

    def go_frps(self, config_text: str | None, **kw: object) -> FrpProcess:
        return self.run(self._go("frps"), config_text, name="frps", **kw)  # type: ignore[arg-type]

    def go_frpc(self, config_text: str | None, **kw: object) -> FrpProcess:
        return self.run(self._go("frpc"), config_text, name="frpc", **kw)  # type: ignore[arg-type]

    def kill_all(self) -> None:
        """SIGKILL everything (as frp's harness does); under ``make coverage`` SIGTERM first, so
        measured Python children exit cleanly and save their coverage data."""
        if coverage_measures_children():
            self.stop_all()
            return
        for p in reversed(self.processes):
            p.kill()

    def stop_all(self, timeout: float = 5.0) -> None:
        for p in reversed(self.processes):
            p.stop(timeout)

    def dump_logs(self, lines: int = 200) -> str:
        return "\n\n".join(p._tail_block(lines) for p in self.processes)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill_all()


@atexit.register
def _cleanup_at_exit() -> None:
    with _LIVE_LOCK:
        live = list(_LIVE)
    for p in live:
        with contextlib.suppress(Exception):
            p.kill()
    for d in _OWNED_DIRS:
        shutil.rmtree(d, ignore_errors=True)


# --------------------------------------------------------------------------------------------------
# config text helpers (TOML v1, loopback only)
# --------------------------------------------------------------------------------------------------


def _toml(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return str(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    raise TypeError(f"no TOML rendering for {v!r}")


def _lines(pairs: Mapping[str, object]) -> str:
    return "".join(f"{k} = {_toml(v)}\n" for k, v in pairs.items() if v is not None)


def frps_config(
    bind_port: int,
    *,
    token: str | None = None,
    tcp_mux: bool | None = None,
    log_level: str | None = None,
    extra: str = "",
    **keys: object,
) -> str:
    """frps TOML: ``bindAddr = "127.0.0.1"``, ``bindPort``, optional ``auth.token``/``transport.tcpMux``/
    ``log.level``; ``keys`` are written verbatim as ``key = value`` (use dotted names via ``**{...}``);
    ``extra`` is appended as-is."""
    text = _lines({"bindAddr": LOCALHOST, "bindPort": bind_port, "auth.token": token,
                   "transport.tcpMux": tcp_mux, "log.level": log_level, **keys})
    return text + extra


def frpc_config(
    server_port: int,
    *proxies: str,
    token: str | None = None,
    tls: bool | None = None,
    tcp_mux: bool | None = None,
    log_level: str | None = None,
    login_fail_exit: bool = False,
    extra: str = "",
    **keys: object,
) -> str:
    """frpc TOML: ``serverAddr = "127.0.0.1"``, ``serverPort``, ``loginFailExit`` (default false, as
    frp's harness), optional token/TLS/tcpMux/log level, other top-level ``keys``, then ``extra``
    and the ``proxies`` blocks (see :func:`tcp_proxy`)."""
    text = _lines({"serverAddr": LOCALHOST, "serverPort": server_port, "loginFailExit": login_fail_exit,
                   "auth.token": token, "transport.tls.enable": tls, "transport.tcpMux": tcp_mux,
                   "log.level": log_level, **keys})
    return text + extra + "".join(proxies)


def block(table: str, **keys: object) -> str:
    """A ``[[proxies]]`` / ``[[visitors]]`` table; ``keys`` verbatim (dotted names via ``**{...}``),
    ``__`` in a key becomes a dot (``transport__useEncryption``)."""
    return f"\n[[{table}]]\n" + _lines({k.replace("__", "."): v for k, v in keys.items()})


def _proxy(kind: str, name: str, local_port: int, remote_port: int | None, keys: Mapping[str, object]) -> str:
    return "\n[[proxies]]\n" + _lines({"name": name, "type": kind, "localIP": LOCALHOST,
                                        "localPort": local_port, "remotePort": remote_port, **keys})


def tcp_proxy(
    name: str,
    local_port: int,
    remote_port: int | None = None,
    *,
    encryption: bool | None = None,
    compression: bool | None = None,
    **keys: object,
) -> str:
    """A ``[[proxies]]`` block of type tcp (``keys`` verbatim, e.g. ``**{"transport.bandwidthLimit": "1MB"}``)."""
    keys = {"transport.useEncryption": encryption, "transport.useCompression": compression, **keys}
    return _proxy("tcp", name, local_port, remote_port, keys)


def udp_proxy(name: str, local_port: int, remote_port: int | None = None, **keys: object) -> str:
    return _proxy("udp", name, local_port, remote_port, keys)


# --------------------------------------------------------------------------------------------------
# clients
# --------------------------------------------------------------------------------------------------


def tcp_roundtrip(port: int, data: bytes, timeout: float = 5.0, *, host: str = LOCALHOST) -> bytes:
    """Connect, send ``data`` and read until ``len(data)`` bytes came back or EOF; return what was read.

    Sending and receiving are interleaved, so large payloads through an echo service cannot
    deadlock.  Raises ``TimeoutError`` (message includes the byte counts) at the deadline;
    connection errors propagate as ``OSError``.
    """
    deadline = time.monotonic() + timeout
    out = memoryview(data)
    got = bytearray()
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.setblocking(False)
        with selectors.DefaultSelector() as sel:
            sel.register(s, selectors.EVENT_READ | (selectors.EVENT_WRITE if out else 0))
            while len(got) < len(data):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"tcp_roundtrip to {host}:{port}: sent {len(data) - len(out)}/{len(data)}, "
                        f"received {len(got)}/{len(data)} bytes in {timeout}s"
                    )
                for _, ev in sel.select(remaining):
                    if ev & selectors.EVENT_WRITE and out:
                        with contextlib.suppress(BlockingIOError):
                            out = out[s.send(out[: 1 << 20]):]
                        if not out:
                            sel.modify(s, selectors.EVENT_READ)
                    if ev & selectors.EVENT_READ:
                        try:
                            chunk = s.recv(1 << 20)
                        except BlockingIOError:
                            continue
                        if not chunk:
                            return bytes(got)
                        got += chunk
    return bytes(got)


def udp_roundtrip(
    port: int, data: bytes, timeout: float = 2.0, *, attempts: int = 1, host: str = LOCALHOST
) -> bytes:
    """Send one datagram and return the first reply; resend up to ``attempts`` times, each waiting
    ``timeout / attempts``.  ``TimeoutError`` if nothing came back."""
    per_try = timeout / max(1, attempts)
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((host, port))
        for _ in range(max(1, attempts)):
            slot_end = time.monotonic() + per_try
            s.send(data)
            s.settimeout(per_try)
            try:
                return s.recv(65536)
            except TimeoutError:
                pass
            except ConnectionRefusedError:
                # ICMP port unreachable (nobody listening yet): pace the retry to the slot length.
                time.sleep(max(0.0, slot_end - time.monotonic()))
    raise TimeoutError(f"no UDP reply from {host}:{port} within {timeout}s")


# --------------------------------------------------------------------------------------------------
# services
# --------------------------------------------------------------------------------------------------


class _LoopThread:
    """One daemon thread running an asyncio loop shared by the asyncio-based services."""

    _instance: _LoopThread | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="aiofrp-test-services", daemon=True)
        self.thread.start()

    @classmethod
    def get(cls) -> _LoopThread:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


class _Service:
    port: int

    def start(self) -> Any:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    @property
    def address(self) -> tuple[str, int]:
        return (LOCALHOST, self.port)

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class EchoServer(_Service):
    """TCP echo on 127.0.0.1 (plain bytes; so frp's int64-length-prefixed echo works too).

    ``port=0`` picks a free port.  Counts ``connections`` (total accepted).  Closes a connection
    after echoing everything once the client sent EOF.
    """

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        try:
            while data := await reader.read(1 << 18):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    def start(self) -> EchoServer:
        async def _start() -> None:
            self._server = await asyncio.start_server(self._handle, LOCALHOST, self.port, backlog=1024)
            self.port = self._server.sockets[0].getsockname()[1]

        _LoopThread.get().call(_start())
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        server, self._server = self._server, None

        async def _stop() -> None:
            server.close()
            for w in list(self._writers):
                w.close()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 2)

        _LoopThread.get().call(_stop())


class UdpEchoServer(_Service):
    """UDP echo on 127.0.0.1: every datagram is sent back to its sender.  Counts ``datagrams``."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.datagrams = 0
        self._transport: asyncio.DatagramTransport | None = None

    def start(self) -> UdpEchoServer:
        outer = self

        class Proto(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = transport  # type: ignore[assignment]

            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                outer.datagrams += 1
                self.transport.sendto(data, addr)

        async def _start() -> None:
            loop = asyncio.get_running_loop()
            self._transport, _ = await loop.create_datagram_endpoint(Proto, local_addr=(LOCALHOST, self.port))
            self.port = self._transport.get_extra_info("sockname")[1]

        _LoopThread.get().call(_start())
        return self

    def stop(self) -> None:
        if self._transport is not None:
            t, self._transport = self._transport, None
            _LoopThread.get().loop.call_soon_threadsafe(t.close)


@dataclass
class HttpRequestRecord:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class HttpServer(_Service):
    """Tiny HTTP/1.1 server answering every request with ``status`` and the fixed ``body``
    (keep-alive supported).  Received requests are recorded in ``requests``.  ``stop()`` also
    drops open keep-alive connections (as a stopped service would)."""

    def __init__(self, port: int = 0, body: bytes = TEST_STRING, *, status: int = 200,
                 headers: Mapping[str, str] | None = None) -> None:
        self.port = port
        self.body = body
        self.status = status
        self.headers = dict(headers or {})
        self.requests: list[HttpRequestRecord] = []
        self._httpd: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> HttpServer:
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 30

            def _serve(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n > 0 else b""
                outer.requests.append(HttpRequestRecord(self.command, self.path, dict(self.headers.items()), body))
                self.send_response(outer.status)
                for k, v in outer.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(outer.body)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _serve

            def log_message(self, *args: object) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True
            open_conns: set[socket.socket]

            def process_request(self, request: Any, client_address: Any) -> None:
                self.open_conns.add(request)
                super().process_request(request, client_address)

            def shutdown_request(self, request: Any) -> None:
                self.open_conns.discard(request)
                super().shutdown_request(request)

        self._httpd = Server((LOCALHOST, self.port), Handler)
        self._httpd.open_conns = set()
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="test-http", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        httpd, self._httpd = self._httpd, None
        httpd.shutdown()
        httpd.server_close()
        for conn in list(httpd.open_conns):  # a stopped service drops its keep-alive connections too
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(5)


# -- bulk transfer sink/source -----------------------------------------------------------------------
#
# Wire protocol (client -> server header, 16 bytes): b"AFB1", op (1 = upload: client sends LENGTH
# bytes which the server sinks; 2 = download: server sources LENGTH bytes), flags (bit 0: SHA-256),
# 2 pad bytes, LENGTH (u64 BE).
#   upload:   server replies after the last byte: received (u64), elapsed_ns first->last byte (u64),
#             sha256 (32 bytes, zero if not requested).
#   download: server sends LENGTH bytes followed by their sha256 (32 bytes, zero if not requested).
# Nothing relies on half-close: frp closes both directions when either side reaches EOF.

_BULK_HDR = struct.Struct(">4sBBxxQ")
_BULK_MAGIC = b"AFB1"
_OP_UPLOAD, _OP_DOWNLOAD = 1, 2
_FLAG_SHA = 1
_UP_REPLY = struct.Struct(">QQ32s")
_ZERO_SHA = bytes(32)
_PATTERN_SIZE = 1 << 20
_pattern_cache: dict[str, bytes] = {}


def bulk_pattern(kind: str = "random") -> bytes:
    """The 1 MiB block a bulk source repeats: deterministic pseudo-random bytes (incompressible) or zeros."""
    if kind not in _pattern_cache:
        if kind == "random":
            _pattern_cache[kind] = random.Random(0x5EED_F00D).randbytes(_PATTERN_SIZE)
        elif kind == "zeros":
            _pattern_cache[kind] = bytes(_PATTERN_SIZE)
        else:
            raise ValueError(kind)
    return _pattern_cache[kind]


def _set_deadline(sock: socket.socket, deadline: float, what: str) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError(f"bulk transfer deadline exceeded while {what}")
    sock.settimeout(remaining)


def _recv_exact(sock: socket.socket, n: int, deadline: float) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        _set_deadline(sock, deadline, "reading")
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"EOF after {len(buf)}/{n} bytes")
        buf += chunk
    return bytes(buf)


def _source(sock: socket.socket, size: int, hasher: Any, deadline: float, block: bytes) -> None:
    mv = memoryview(block)
    left = size
    while left:
        piece = mv[: min(left, len(mv))]
        if hasher is not None:
            hasher.update(piece)
        _set_deadline(sock, deadline, "sending")
        sock.sendall(piece)
        left -= len(piece)


def _sink(sock: socket.socket, size: int, hasher: Any, deadline: float, bufsize: int) -> tuple[int, int, int]:
    """Read up to ``size`` bytes; return (received, t_first_ns, t_last_ns)."""
    buf = bytearray(bufsize)
    mv = memoryview(buf)
    got = 0
    t_first = t_last = 0
    while got < size:
        _set_deadline(sock, deadline, "receiving")
        k = sock.recv_into(buf, min(bufsize, size - got))
        if k == 0:
            break
        if not got:
            t_first = time.perf_counter_ns()
        got += k
        if hasher is not None:
            hasher.update(mv[:k])
    t_last = time.perf_counter_ns()
    return got, t_first, t_last


@dataclass
class BulkResult:
    """Outcome of one bulk transfer.  ``seconds``: at the sink, first byte to last byte."""

    direction: str  # "upload" (client -> service) or "download" (service -> client)
    size: int
    received: int
    seconds: float
    sha256_sent: str | None = None
    sha256_received: str | None = None

    @property
    def ok(self) -> bool:
        return self.received == self.size and self.sha256_sent == self.sha256_received

    @property
    def mb_per_s(self) -> float:
        return self.received / self.seconds / 1e6 if self.seconds > 0 else float("inf")


@dataclass
class BulkRecord:
    """What :class:`BulkServer` saw for one connection."""

    op: str
    size: int
    transferred: int
    seconds: float
    sha256: str | None
    error: str | None = None


class BulkServer(_Service):
    """Sink/source TCP service for bulk transfers (thread per connection, blocking sockets, big buffers).

    Use :func:`bulk_upload` / :func:`bulk_download` against its port (directly or through a proxy).
    Completed transfers are appended to ``records``.  ``idle_timeout`` bounds every socket wait.
    """

    def __init__(self, port: int = 0, *, pattern: str = "random", bufsize: int = 1 << 20,
                 idle_timeout: float = 60.0) -> None:
        self.port = port
        self.block = bulk_pattern(pattern)
        self.bufsize = bufsize
        self.idle_timeout = idle_timeout
        self.records: list[BulkRecord] = []
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def start(self) -> BulkServer:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((LOCALHOST, self.port))
        s.listen(128)
        s.settimeout(0.1)  # lets the accept loop notice stop()
        self._sock = s
        self.port = s.getsockname()[1]
        self._stopping.clear()
        self._thread = threading.Thread(target=self._accept_loop, name="test-bulk", daemon=True)
        self._thread.start()
        return self

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), name="test-bulk-conn", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        rec = BulkRecord("?", 0, 0, 0.0, None)
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            magic, op, flags, size = _BULK_HDR.unpack(
                _recv_exact(conn, _BULK_HDR.size, time.monotonic() + self.idle_timeout)
            )
            if magic != _BULK_MAGIC or op not in (_OP_UPLOAD, _OP_DOWNLOAD):
                raise ValueError(f"bad bulk header {magic!r} op={op}")
            hasher = hashlib.sha256() if flags & _FLAG_SHA else None
            rec.size = size
            # Whole-transfer deadline: generous, but finite (>= 1 MB/s plus the idle timeout).
            deadline = time.monotonic() + self.idle_timeout + size / 1e6
            if op == _OP_UPLOAD:
                rec.op = "upload"
                got, t0, t1 = _sink(conn, size, hasher, deadline, self.bufsize)
                rec.transferred, rec.seconds = got, (t1 - t0) / 1e9
                digest = hasher.digest() if hasher else _ZERO_SHA
                rec.sha256 = hasher.hexdigest() if hasher else None
                _set_deadline(conn, deadline, "replying")
                conn.sendall(_UP_REPLY.pack(got, t1 - t0, digest))
            else:
                rec.op = "download"
                t0 = time.perf_counter_ns()
                _source(conn, size, hasher, deadline, self.block)
                rec.transferred, rec.seconds = size, (time.perf_counter_ns() - t0) / 1e9
                rec.sha256 = hasher.hexdigest() if hasher else None
                _set_deadline(conn, deadline, "sending trailer")
                conn.sendall(hasher.digest() if hasher else _ZERO_SHA)
                # Wait (bounded) for the client to close first, so our close cannot race its reads.
                with contextlib.suppress(OSError):
                    conn.settimeout(min(5.0, self.idle_timeout))
                    conn.recv(1)
        except (OSError, ValueError, struct.error) as e:
            rec.error = f"{type(e).__name__}: {e}"
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.close()
            self.records.append(rec)

    def stop(self) -> None:
        self._stopping.set()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        with self._lock:
            for c in list(self._conns):
                with contextlib.suppress(OSError):
                    c.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None


def _bulk_connect(host: str, port: int, op: int, size: int, verify: bool, timeout: float) -> socket.socket:
    s = socket.create_connection((host, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(_BULK_HDR.pack(_BULK_MAGIC, op, _FLAG_SHA if verify else 0, size))
    return s


def bulk_upload(port: int, size: int, *, verify: bool = True, timeout: float = 60.0, host: str = LOCALHOST,
                pattern: str = "random") -> BulkResult:
    """Send ``size`` bytes to a :class:`BulkServer` (maybe through a proxy).  Timing is the server's
    (first byte to last byte received).  ``verify`` compares SHA-256 of sent and received data."""
    deadline = time.monotonic() + timeout
    hasher = hashlib.sha256() if verify else None
    with _bulk_connect(host, port, _OP_UPLOAD, size, verify, timeout) as s:
        _source(s, size, hasher, deadline, bulk_pattern(pattern))
        got, elapsed_ns, digest = _UP_REPLY.unpack(_recv_exact(s, _UP_REPLY.size, deadline))
    return BulkResult("upload", size, got, elapsed_ns / 1e9,
                      hasher.hexdigest() if hasher else None, digest.hex() if verify else None)


def bulk_download(port: int, size: int, *, verify: bool = True, timeout: float = 60.0, host: str = LOCALHOST,
                  bufsize: int = 1 << 20) -> BulkResult:
    """Receive ``size`` bytes from a :class:`BulkServer`; timing is ours (first to last byte)."""
    deadline = time.monotonic() + timeout
    hasher = hashlib.sha256() if verify else None
    with _bulk_connect(host, port, _OP_DOWNLOAD, size, verify, timeout) as s:
        got, t0, t1 = _sink(s, size, hasher, deadline, bufsize)
        sent_digest = _recv_exact(s, 32, deadline) if got == size else _ZERO_SHA
    return BulkResult("download", size, got, (t1 - t0) / 1e9,
                      sent_digest.hex() if verify else None, hasher.hexdigest() if hasher else None)


# --------------------------------------------------------------------------------------------------
# pytest fixtures (registered by tests/conftest.py)
# --------------------------------------------------------------------------------------------------

if pytest is not None:
    LAUNCHERS_KEY = pytest.StashKey[list]()

    @pytest.fixture(scope="session")
    def gofrp_bins() -> tuple[Path, Path]:
        """``(frps, frpc)`` paths of Go frp 0.65.0; skips on platforms without binaries."""
        if not platform_supported():
            pytest.skip("Go frp 0.65.0 binaries are linux/amd64 only")
        if os.environ.get("AIOFRP_SKIP_COMPAT"):
            pytest.skip("AIOFRP_SKIP_COMPAT is set")
        try:
            return go_binaries()
        except GoFrpUnavailable as e:
            pytest.fail(f"cannot provide Go frp binaries: {e}", pytrace=False)

    @pytest.fixture
    def frp(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FrpLauncher]:
        """A :class:`FrpLauncher` in ``tmp_path/frp``; every process it started is SIGKILLed at test
        end (stopped with SIGTERM first under ``make coverage``).  On failure the processes' logs are attached to the report (see conftest)."""
        launcher = FrpLauncher(tmp_path / "frp")
        request.node.stash.setdefault(LAUNCHERS_KEY, []).append(launcher)
        try:
            yield launcher
        finally:
            launcher.kill_all()

    @pytest.fixture
    def echo_server() -> Iterator[EchoServer]:
        with EchoServer() as s:
            yield s

    @pytest.fixture
    def udp_echo_server() -> Iterator[UdpEchoServer]:
        with UdpEchoServer() as s:
            yield s

    @pytest.fixture
    def http_server() -> Iterator[HttpServer]:
        with HttpServer() as s:
            yield s

    @pytest.fixture
    def bulk_server() -> Iterator[BulkServer]:
        with BulkServer() as s:
            yield s

