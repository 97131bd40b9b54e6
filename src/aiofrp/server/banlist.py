"""Failed bind-port connections rate-limited per source address (aiofrp only, beyond Go frps).

Off by default (Go's behaviour). ``frps --login-fail-limit N --login-fail-window 60s
--login-fail-ban 300s`` turns it on: once an address has had ``N`` connections that *failed* (the
WARNING ``login from ... failed`` / ``connection from ... failed`` lines of :mod:`.gate`: a wrong
token, garbage, no login in time...) within the window, frps closes every new bind-port
connection from that address right at accept, without reading it and without a line, until the
ban period is over. One WARNING line per address and ban says so::

    address 203.0.113.7 banned for 300s: 5 failed connections within 60s

Addresses are compared exactly (an IPv4-mapped IPv6 peer counts as its IPv4 address). The state
is bounded: at most :data:`MAX_TRACKED` addresses are remembered, the stalest dropped first.
"""

from __future__ import annotations

import collections
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("aiofrp.server")

MAX_TRACKED = 65536  # addresses with recent failures or a ban; the stalest are forgotten beyond it

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds in a Go-style duration (``300s``, ``5m``, ``1h30m``, ``1.5s``, ``250ms``); a bare
    number is seconds. ValueError when it is none of those or not positive."""
    s = text.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", s):
        value = float(s)
    else:
        pos, value = 0, 0.0
        for m in _DURATION_RE.finditer(s):
            if m.start() != pos:
                break
            value += float(m[1]) * _UNIT[m[2]]
            pos = m.end()
        if pos != len(s) or not s:
            raise ValueError(f"invalid duration {text!r} (e.g. 60s, 5m, 1h)")
    if value <= 0:
        raise ValueError(f"duration {text!r} must be positive")
    return value


@dataclass(frozen=True)
class FailLimit:
    """``limit`` failed connections from one address within ``window`` seconds ban it for ``ban``
    seconds; ``limit`` 0 turns the limiter off."""

    limit: int = 0
    window: float = 60.0
    ban: float = 300.0


class BanList:
    """Failure counts and bans per address (the host part of the peer address)."""

    def __init__(self, limit: FailLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._fails: collections.OrderedDict[str, collections.deque[float]] = collections.OrderedDict()
        self._banned: collections.OrderedDict[str, float] = collections.OrderedDict()  # host -> until

    @property
    def enabled(self) -> bool:
        return self.limit.limit > 0

    def banned(self, host: str) -> bool:
        """Whether connections from ``host`` are refused right now."""
        until = self._banned.get(host)
        if until is None:
            return False
        if self._clock() < until:
            return True
        del self._banned[host]
        log.info("address %s no longer banned", host)
        return False

    def failed(self, host: str) -> None:
        """A connection from ``host`` failed; bans it (one line) when that makes ``limit``."""
        if not self.enabled or not host or self.banned(host):
            return
        now = self._clock()
        times = self._fails.get(host)
        if times is None:
            times = self._fails[host] = collections.deque()
        else:
            self._fails.move_to_end(host)
        times.append(now)
        horizon = now - self.limit.window
        while times and times[0] <= horizon:
            times.popleft()
        if len(times) >= self.limit.limit:
            del self._fails[host]
            self._banned[host] = now + self.limit.ban
            log.warning("address %s banned for %gs: %d failed connections within %gs",
                        host, self.limit.ban, len(times), self.limit.window)
        self._trim()

    def _trim(self) -> None:
        for table in (self._fails, self._banned):
            while len(table) > MAX_TRACKED:
                table.popitem(last=False)
