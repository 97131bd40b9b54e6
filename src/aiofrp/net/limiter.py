"""Per-proxy bandwidth limit (frp §5.13): one token bucket shared by both directions of all the
proxy's connections, like Go's ``rate.NewLimiter(limit, burst=limit)``.

The bucket itself does no I/O and reads no clock (callers pass ``now``); the relay
(:mod:`aiofrp.net.relay`) asks it how much of a chunk may pass now and, for the rest, how long
to wait, then pauses reading its source until a ``loop.call_later`` timer lets it go on.
"""

from __future__ import annotations

import logging

log = logging.getLogger("aiofrp.net.limiter")

__all__ = ["TokenBucket", "bucket_for"]

WAKEUPS_PER_SECOND = 20  # a waiting stream moves at least rate / 20 bytes per timer


class TokenBucket:
    """``rate`` bytes per second, at most ``burst`` (default: ``rate``) bytes saved up; starts full.

    :meth:`take` grants bytes only once at least ``min(want, quantum)`` tokens are there, so a
    stream that has to wait moves in pieces of ``quantum`` bytes (~20 timers a second) instead of
    one byte at a time.
    """

    __slots__ = ("burst", "last", "quantum", "rate", "tokens")

    def __init__(self, rate: float, burst: float | None = None, *, now: float | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else rate)
        if self.burst < 1:
            raise ValueError("burst must be at least one byte")
        self.tokens = self.burst
        self.last = now  # None: the first call sets the clock (still full)
        self.quantum = max(1, int(min(self.burst, self.rate / WAKEUPS_PER_SECOND)))

    def _refill(self, now: float) -> None:
        last = self.last
        if last is not None and now > last:
            self.tokens = min(self.burst, self.tokens + (now - last) * self.rate)
        if last is None or now > last:
            self.last = now

    def available(self, now: float) -> float:
        self._refill(now)
        return self.tokens

    def take(self, want: int, now: float) -> int:
        """Bytes (0..want) that may pass now; they are taken from the bucket."""
        if want <= 0:
            return 0
        self._refill(now)
        tokens = self.tokens
        if tokens < min(want, self.quantum):
            return 0
        granted = min(want, int(tokens))
        self.tokens = tokens - granted
        return granted

    def wait_time(self, want: int, now: float) -> float:
        """Seconds until :meth:`take` of ``want`` bytes would grant something."""
        self._refill(now)
        need = min(want, self.quantum) - self.tokens
        return need / self.rate if need > 0 else 0.0


def bucket_for(limit: str, *, name: str = "") -> TokenBucket | None:
    """The bucket for a ``bandwidthLimit`` text (``"10KB"``, ``"1.5MB"``); None for no limit.

    An unparsable text (only possible from a peer, configs are validated) means no limit.
    """
    if not limit:
        return None
    from ..config.proxy import parse_bandwidth

    try:
        rate = parse_bandwidth(limit)
    except ValueError as exc:
        log.warning("[%s] ignoring bandwidth limit %r: %s", name, limit, exc)
        return None
    return TokenBucket(rate) if rate > 0 else None
