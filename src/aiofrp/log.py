"""Logging in frp's shape: ``2026-01-02 15:04:05.000 [I] [component] message``."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from types import TracebackType
from typing import Protocol, TypeAlias

TRACE = 5
logging.addLevelName(TRACE, "TRACE")

_LEVELS = {"trace": TRACE, "debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
           "warning": logging.WARNING, "error": logging.ERROR}
_CHARS = {TRACE: "T", logging.DEBUG: "D", logging.INFO: "I", logging.WARNING: "W", logging.ERROR: "E",
          logging.CRITICAL: "E"}


class _Formatter(logging.Formatter):
    _second = -1
    _stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """The date and time to the second, formatted once per second (frps logs a line per user
        connection, as Go's: strftime per line was a fifth of the cost of one)."""
        second = int(record.created)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime(datefmt or "%Y-%m-%d %H:%M:%S", time.localtime(second))
        return self._stamp

    def format(self, record: logging.LogRecord) -> str:
        record.levelchar = _CHARS.get(record.levelno, "I")
        name = record.name
        record.component = name.removeprefix("aiofrp.")
        msg = record.getMessage()
        if "\n" in msg or "\r" in msg:
            # Peer-supplied text (a hostname, a proxy name) must not forge log lines that log
            # watchers such as fail2ban would read as someone else's failed login.
            record.msg, record.args = msg.replace("\r", "\\r").replace("\n", "\\n"), None
        return super().format(record)


_ExcInfo: TypeAlias = (
    bool | BaseException | tuple[type[BaseException], BaseException, TracebackType | None]
    | tuple[None, None, None] | None
)


class _Prefix:
    """The prefixes an :class:`XLog` and its views share: ``[a] [b] `` rendered once, when set."""

    __slots__ = ("fmt", "text", "values")

    def __init__(self, values: tuple[str, ...]) -> None:
        self.set(values)

    def set(self, values: tuple[str, ...]) -> None:
        self.values = values
        self.text = "".join(f"[{v}] " for v in values)
        # a name may hold a "%" (frps takes proxy names and run ids from its clients): for a
        # message formatted with arguments it must stay a "%"
        self.fmt = self.text.replace("%", "%%")


class XLog:
    """Go's ``xlog.Logger``: a logger whose messages start with the prefixes of their context,
    ``[RUNID] `` for a control, ``[RUNID] [NAME] `` for a proxy or a visitor. The ``[component]``
    of the line is the wrapped logger's, as for any other line.

    The prefix is rendered when it is set, not per line, and a line whose level is disabled costs
    one level check, as with the logger itself. :meth:`on` makes a view that logs to another
    logger (another component) with the same prefix, which follows :meth:`set` on any of them:
    frpc's proxies and visitors outlive a login, and each login sets its run id. :meth:`child` is
    Go's ``Spawn().AppendPrefix``: a copy with more prefixes, independent from then on.
    """

    __slots__ = ("_prefix", "logger")

    def __init__(self, logger: logging.Logger | str, *values: str) -> None:
        self.logger = logging.getLogger(logger) if isinstance(logger, str) else logger
        self._prefix = _Prefix(values)

    @property
    def prefix(self) -> str:
        """The rendered prefixes, ``"[a] [b] "`` (``""`` for none)."""
        return self._prefix.text

    @property
    def values(self) -> tuple[str, ...]:
        return self._prefix.values

    def set(self, *values: str) -> None:
        """Replace the prefixes (for this logger and every view of it); empty values are left out."""
        self._prefix.set(tuple(v for v in values if v))

    def on(self, logger: logging.Logger | str) -> XLog:
        """A view logging to ``logger`` with this one's prefixes, now and after :meth:`set`."""
        view = XLog.__new__(XLog)
        view.logger = logging.getLogger(logger) if isinstance(logger, str) else logger
        view._prefix = self._prefix
        return view

    def child(self, *values: str, logger: logging.Logger | str | None = None) -> XLog:
        """A new logger (to ``logger``, by default this one's) with this one's prefixes and then ``values``."""
        return XLog(self.logger if logger is None else logger, *self._prefix.values, *(v for v in values if v))

    def isEnabledFor(self, level: int) -> bool:  # logging's name
        return self.logger.isEnabledFor(level)

    def _emit(self, level: int, msg: str, args: tuple[object, ...], exc_info: _ExcInfo) -> None:
        """The line, prefixed (its ``%`` escaped when ``msg`` is formatted with ``args``); the
        caller checked the level. ``stacklevel``: the line's caller, past this and the method."""
        p = self._prefix
        self.logger._log(level, (p.fmt if args else p.text) + msg, args, exc_info=exc_info, stacklevel=3)

    def log(self, level: int, msg: str, *args: object, exc_info: _ExcInfo = None) -> None:
        if self.logger.isEnabledFor(level):
            self._emit(level, msg, args, exc_info)

    def trace(self, msg: str, *args: object) -> None:
        if self.logger.isEnabledFor(TRACE):
            self._emit(TRACE, msg, args, None)

    def debug(self, msg: str, *args: object, exc_info: _ExcInfo = None) -> None:
        if self.logger.isEnabledFor(logging.DEBUG):
            self._emit(logging.DEBUG, msg, args, exc_info)

    def info(self, msg: str, *args: object, exc_info: _ExcInfo = None) -> None:
        if self.logger.isEnabledFor(logging.INFO):
            self._emit(logging.INFO, msg, args, exc_info)

    def warning(self, msg: str, *args: object, exc_info: _ExcInfo = None) -> None:
        if self.logger.isEnabledFor(logging.WARNING):
            self._emit(logging.WARNING, msg, args, exc_info)

    def error(self, msg: str, *args: object, exc_info: _ExcInfo = None) -> None:
        if self.logger.isEnabledFor(logging.ERROR):
            self._emit(logging.ERROR, msg, args, exc_info)

    def exception(self, msg: str, *args: object, exc_info: _ExcInfo = True) -> None:
        """An ERROR line with the traceback of the exception being handled."""
        if self.logger.isEnabledFor(logging.ERROR):
            self._emit(logging.ERROR, msg, args, exc_info)

    def __repr__(self) -> str:
        return f"<XLog {self.logger.name} {self._prefix.text!r}>"


class _FlushAtEndOfTurn(logging.Handler):
    """A stream handler that flushes once per turn of the event loop, not once per line: frps logs a
    line per user connection (as Go's), and a system call per line cost about a tenth of the new
    connections per second a busy frps takes (reference bench, connrate phase). Warnings and
    errors, and anything logged with no loop running in the thread, are flushed at once."""

    _flush_loop: asyncio.AbstractEventLoop | None = None

    def flush(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None or loop.is_closed():
            self._flush_now()
        elif self._flush_loop is not loop:
            self._flush_loop = loop
            loop.call_soon(self._flush_now)

    def _flush_now(self) -> None:
        self._flush_loop = None
        super().flush()

    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)
        if record.levelno >= logging.WARNING:
            self._flush_now()


class _ConsoleHandler(_FlushAtEndOfTurn, logging.StreamHandler):  # type: ignore[type-arg]
    pass


class LogSettings(Protocol):
    """What logging reads of a config's ``log`` table (``config.base.LogConfig``)."""

    @property
    def to(self) -> str: ...
    @property
    def level(self) -> str: ...
    @property
    def max_days(self) -> int: ...


class HasLogSettings(Protocol):
    """A config with a ``log`` table: ``ServerConfig`` or ``ClientConfig``."""

    @property
    def log(self) -> LogSettings: ...


class LogFileError(OSError):
    """``log.to`` names a file that cannot be opened (the message says which and why)."""


def setup_logging(cfg: HasLogSettings | None = None, *, level: str | None = None, own_process: bool = False) -> None:
    """Configure the root ``aiofrp`` logger from a config's ``log`` section (``own_process``: the
    process is one of our commands, so process-wide logging settings are ours to choose).

    A log file's missing directories are created, as Go frp does; a file that still cannot be
    opened raises :class:`LogFileError`.
    """
    lcfg = cfg.log if cfg is not None else None
    lvl = _LEVELS.get((level or (lcfg.level if lcfg is not None else "") or "info").lower(), logging.INFO)
    to = (lcfg.to if lcfg is not None else "") or "console"
    handler: logging.Handler
    if to == "console":
        handler = _ConsoleHandler(sys.stdout) if own_process else logging.StreamHandler(sys.stdout)
    else:
        days = (lcfg.max_days if lcfg is not None else 0) or 3
        from logging.handlers import TimedRotatingFileHandler  # lazily: only log.to = FILE rotates

        class _FileHandler(_FlushAtEndOfTurn, TimedRotatingFileHandler):
            pass

        try:
            folder = os.path.dirname(to)
            if folder:
                os.makedirs(folder, exist_ok=True)
            handler = (_FileHandler if own_process else TimedRotatingFileHandler)(
                to, when="midnight", backupCount=days, encoding="utf-8"
            )
        except OSError as exc:
            raise LogFileError(f"cannot open log file {to!r}: {exc.strerror or exc}") from None
    handler.setFormatter(_Formatter("%(asctime)s.%(msecs)03d [%(levelchar)s] [%(component)s] %(message)s",
                                    "%Y-%m-%d %H:%M:%S"))
    if own_process:
        # Nothing of ours prints the caller's file, thread or process: not looking them up per
        # record saves a quarter of the cost of a line (the logging HOWTO's "Optimization"). For
        # the commands only: these are process-wide, and an embedding program may want them.
        logging._srcfile = None
        logging.logThreads = False
        logging.logProcesses = False
        logging.logMultiprocessing = False
        # a console that went away (frps | head, a closed terminal) must not turn every later
        # line into a "--- Logging error ---" traceback on stderr: the service goes on
        logging.raiseExceptions = False
    root = logging.getLogger("aiofrp")
    root.handlers[:] = [handler]
    root.setLevel(lvl)
    root.propagate = False
    # asyncio's own debug chatter is not interesting to frp users
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
