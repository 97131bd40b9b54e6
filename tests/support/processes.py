"""frp processes for end-to-end tests (ours or Go's): spawning, log capture, waiting for log
lines, and the ``frp`` / ``gofrp_bins`` fixtures.

:class:`FrpProcess` runs one command with its config written to a file without extension (as
frp's own e2e harness does), stdout+stderr going to a log file, in its own process group. The
factories :func:`ours_frps`, :func:`ours_frpc`, :func:`go_frps`, :func:`go_frpc` start one; the
:func:`frp` fixture yields a :class:`FrpLauncher` that does the same inside a test's ``tmp_path``
and kills everything at test end. Processes still alive when the interpreter exits are killed by
an ``atexit`` hook. Every wait is bounded by a deadline.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Self

from .gofrp import GoFrpUnavailable, go_binaries, platform_supported

try:  # fixtures are only defined when pytest is around (bench/ imports this module too)
    import pytest
except ImportError:  # pragma: no cover
    pytest = None  # type: ignore[assignment]

__all__ = [
    "FrpLauncher",
    "FrpProcess",
    "LogTimeout",
    "coverage_measures_children",
    "go_cmd",
    "go_frpc",
    "go_frps",
    "ours_available",
    "ours_cmd",
    "ours_frpc",
    "ours_frps",
]

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


# The four ways to pair frps and frpc with Go's and ours: parametrize ("frps_impl", "frpc_impl") with
# these and start each side with FrpLauncher.start.
PAIRINGS = [
    pytest.param("go", "go", id="go_frps-go_frpc"),
    pytest.param("ours", "ours", id="ours_frps-ours_frpc"),
    pytest.param("go", "ours", id="go_frps-ours_frpc"),
    pytest.param("ours", "go", id="ours_frps-go_frpc"),
] if pytest is not None else []


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

    def start(self, impl: str, which: str, config_text: str | None, **kw: object) -> FrpProcess:
        """``impl`` ("go" or "ours")'s ``which`` ("frps" or "frpc"), as one of :data:`PAIRINGS` names it."""
        return getattr(self, f"{impl}_{which}")(config_text, **kw)

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
        end (stopped with SIGTERM first under ``make coverage``).  On failure the processes' logs
        are attached to the report (see conftest)."""
        launcher = FrpLauncher(tmp_path / "frp")
        request.node.stash.setdefault(LAUNCHERS_KEY, []).append(launcher)
        try:
            yield launcher
        finally:
            launcher.kill_all()
