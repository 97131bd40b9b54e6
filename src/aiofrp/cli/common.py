"""Shared helpers of the command-line entry points: event loop, signals, config errors."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from ..config import ClientConfig, ServerConfig


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - platforms without uvloop
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


# glibc malloc: buffers up to this size come from the heap, not a fresh mmap each time, and the
# heap is given back to the kernel only when this much is free at its top. The data path allocates
# and frees 256 KiB buffers per socket read and per TLS batch (uvloop's read bytes, the decrypted
# batch); with glibc's defaults each pair freed at the top of the heap was trimmed (brk) and the
# next batch page-faulted it back in, zero-filled: about half of frps's CPU on a TLS download.
MMAP_THRESHOLD = 1 << 20
TRIM_THRESHOLD = 8 << 20
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def tune_malloc() -> bool:
    """Set glibc's ``M_MMAP_THRESHOLD``/``M_TRIM_THRESHOLD`` (see above) unless the environment
    already tunes malloc (``GLIBC_TUNABLES``, ``MALLOC_*_``); False where there is no glibc."""
    if not sys.platform.startswith("linux") or any(
            k == "GLIBC_TUNABLES" or k.startswith("MALLOC_") for k in os.environ):
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # musl and others: no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))


# Start-up (imports, decoding the config, logging in) leaves free memory inside glibc's heap that
# it keeps (TRIM_THRESHOLD above is for the data path); once, this long after the start, it goes.
STARTUP_TRIM_DELAY = 1.0


def malloc_trim() -> bool:
    """glibc's ``malloc_trim(0)``: the heap's free pages go back to the kernel (about 1 MB of an idle
    frps/frpc, left there by start-up). False where there is no glibc or nothing was released."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # musl and others
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return bool(trim(0))


def run_service(main: Callable[[asyncio.Event], Awaitable[int]]) -> int:
    """Run ``main(stop_event)`` on uvloop; SIGINT/SIGTERM set the stop event."""
    tune_malloc()
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    loop.call_later(STARTUP_TRIM_DELAY, malloc_trim)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover
            pass
    try:
        return loop.run_until_complete(main(stop))
    finally:
        try:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for t in pending:
                t.cancel()
            if pending:
                loop.run_until_complete(asyncio.wait(pending, timeout=1))
        finally:
            loop.close()


def terminal_width() -> int:
    """``shutil.get_terminal_size().columns`` (``$COLUMNS``, else the terminal of stdout, else 80)
    without importing shutil, which imports bz2, lzma and fnmatch: 0.5 MB of an idle frpc/frps."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


def formatter_class(base: type[argparse.HelpFormatter]) -> Callable[..., argparse.HelpFormatter]:
    """``formatter_class`` for an ArgumentParser: ``base`` with argparse's default width, given so
    that argparse does not import shutil to find it (it makes a formatter for every
    ``add_argument``, to check the metavar, not only for ``--help``)."""
    return lambda *, prog: base(prog, width=terminal_width() - 2)


class Parser(argparse.ArgumentParser):
    """argparse with cobra's exit status for a usage error (unknown flag or command, bad value):
    1, as Go's frpc and frps, where argparse exits with 2."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(1, f"{self.prog}: error: {message}\n")

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None,
    ) -> tuple[argparse.Namespace, list[str]]:
        """A bool flag takes a value only as ``--flag=VALUE`` (Go's pflag): ``--strict-config false``
        is the flag, then the word ``false``, not the flag turned off."""
        argv = list(sys.argv[1:] if args is None else args)
        bools = {o for a in self._actions if a.nargs == "?" and a.const is True for o in a.option_strings}
        end = argv.index("--") if "--" in argv else len(argv)
        argv[:end] = [f"{a}=true" if a in bools else a for a in argv[:end]]
        return super().parse_known_args(argv, namespace)

    def parse_command_args(self, args: Sequence[str],
                           in_command: Callable[[argparse.Namespace], bool]) -> argparse.Namespace:
        """``parse_args`` with cobra's rule for extra words: after a command (``verify``,
        ``status``, ``tcp`` ...: ``in_command(namespace)`` is true) they are ignored, as Go's
        commands ignore them, with a note on stderr naming them; elsewhere they are an error. An
        unknown flag is an error everywhere."""
        ns, extra = self.parse_known_args(args)
        flags = [a for a in extra if a.startswith("-") and a != "-"]
        if flags or (extra and not in_command(ns)):
            self.error(f"unrecognized arguments: {' '.join(flags or extra)}")
        if extra:
            note = f"{self.prog}: {' '.join(extra)}: extra {'argument' if len(extra) == 1 else 'arguments'}, ignored"
            if any(a.lower() in ("true", "false", "t", "f", "1", "0") for a in extra):
                note += " (a bool flag takes its value only as --flag=VALUE)"
            print(note, file=sys.stderr)
        return ns


def duration_arg(text: str) -> float:
    """argparse type of a Go duration flag (``30s``, ``1m30s``, ``500ms``; a bare number is seconds)."""
    from ..server.banlist import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def report_load_warnings(found: list[str], *, running: bool) -> None:
    """What loading a config file warned about, on stderr (each line names the file). Before
    running a legacy INI file, Go's own notice first, on stdout, as Go's frps and frpc print it
    (not for verify, status, reload or stop, where Go prints none)."""
    if not found:
        return
    from ..config.ini import DEPRECATED, GO_DEPRECATION_NOTICE

    if running and any(DEPRECATED in w for w in found):
        print(GO_DEPRECATION_NOTICE, flush=True)
    for w in found:
        print(w, file=sys.stderr)


def die(message: object, code: int = 1) -> NoReturn:
    print(message, file=sys.stderr)
    sys.exit(code)


def start_logging(cfg: ServerConfig | ClientConfig, where: str, *, level: str | None = None) -> None:
    """``setup_logging`` for a CLI: a log file that cannot be opened ends the process with
    ``WHERE: cannot open log file ...`` (``WHERE`` is e.g. ``frps.toml: log.to``), exit status 1."""
    from ..log import LogFileError, setup_logging

    try:
        setup_logging(cfg, level=level, own_process=True)
    except LogFileError as exc:
        die(f"{where}: {exc}")


UNSAFE_FEATURES = ("TokenSourceExec",)


def _unsafe_features(text: str) -> list[str]:
    """``--allow-unsafe A,B`` (a comma list, as in frp); an unknown name is an error, not ignored."""
    import argparse

    names = [n.strip() for n in text.split(",") if n.strip()]
    for n in names:
        if n not in UNSAFE_FEATURES:
            raise argparse.ArgumentTypeError(f"unknown unsafe feature {n!r} (one of {', '.join(UNSAFE_FEATURES)})")
    return names


def allow_unsafe_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-unsafe", "--allow_unsafe", dest="allow_unsafe", action="extend", default=[],
                   type=_unsafe_features, metavar="FEATURE",
                   help=f"allow unsafe features, one or more of: {', '.join(UNSAFE_FEATURES)}")


def convert_command(prog: str, path: str, output: str, role: str) -> int:
    """``frps|frpc convert -c legacy.ini [-o out.toml]``: legacy INI to a TOML v1 file."""
    from ..config import ConfigError

    try:
        from ..config.convert import ini_to_toml
    except ImportError:  # pragma: no cover
        die(f"{prog}: convert is not available in this build")
    try:
        with open(path, encoding="utf-8-sig") as f:
            text = f.read()
    except OSError as exc:
        die(f"{path}: cannot read config file: {exc.strerror or exc}")
    except UnicodeDecodeError as exc:
        die(f"{path}: not UTF-8 text: {exc.reason} at byte {exc.start}")
    try:
        toml_text = ini_to_toml(text, path, role)
    except ConfigError as exc:
        die(str(exc))
    if output:
        try:
            with open(output, "w", encoding="utf-8") as f:
                f.write(toml_text)
        except OSError as exc:
            die(f"{prog}: cannot write {output}: {exc.strerror or exc}")
        print(f"{prog}: converted {path} to {output}", file=sys.stderr)
    else:
        sys.stdout.write(toml_text)
    return 0
