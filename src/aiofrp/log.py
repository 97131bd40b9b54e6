"""Logging in frp's shape: ``2026-01-02 15:04:05.000 [I] [component] message``."""

from __future__ import annotations

import logging
import os
import sys
from typing import Protocol

TRACE = 5
logging.addLevelName(TRACE, "TRACE")

_LEVELS = {"trace": TRACE, "debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
           "warning": logging.WARNING, "error": logging.ERROR}
_CHARS = {TRACE: "T", logging.DEBUG: "D", logging.INFO: "I", logging.WARNING: "W", logging.ERROR: "E",
          logging.CRITICAL: "E"}


class _Formatter(logging.Formatter):
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


def setup_logging(cfg: HasLogSettings | None = None, *, level: str | None = None) -> None:
    """Configure the root ``aiofrp`` logger from a config's ``log`` section.

    A log file's missing directories are created, as Go frp does; a file that still cannot be
    opened raises :class:`LogFileError`.
    """
    lcfg = cfg.log if cfg is not None else None
    lvl = _LEVELS.get((level or (lcfg.level if lcfg is not None else "") or "info").lower(), logging.INFO)
    to = (lcfg.to if lcfg is not None else "") or "console"
    handler: logging.Handler
    if to == "console":
        handler = logging.StreamHandler(sys.stdout)
    else:
        days = (lcfg.max_days if lcfg is not None else 0) or 3
        from logging.handlers import TimedRotatingFileHandler  # lazily: only log.to = FILE rotates

        try:
            folder = os.path.dirname(to)
            if folder:
                os.makedirs(folder, exist_ok=True)
            handler = TimedRotatingFileHandler(
                to, when="midnight", backupCount=days, encoding="utf-8"
            )
        except OSError as exc:
            raise LogFileError(f"cannot open log file {to!r}: {exc.strerror or exc}") from None
    handler.setFormatter(_Formatter("%(asctime)s.%(msecs)03d [%(levelchar)s] [%(component)s] %(message)s",
                                    "%Y-%m-%d %H:%M:%S"))
    root = logging.getLogger("aiofrp")
    root.handlers[:] = [handler]
    root.setLevel(lvl)
    root.propagate = False
    # asyncio's own debug chatter is not interesting to frp users
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
