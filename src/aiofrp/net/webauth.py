"""HTTP Basic auth for frp's web servers (frps dashboard, frpc admin API), as Go frp does it, plus
a guard against password guessing (aiofrp's safe defaults, README "frps dashboard and Prometheus").

* Go: when ``user`` or ``password`` is set, a request without the right ``Authorization: Basic``
  gets ``401`` + ``WWW-Authenticate: Basic realm="Restricted"`` and body ``Unauthorized``, after
  a 200 ms delay. The password is compared in constant time (``hmac.compare_digest`` over the
  whole ``user:password`` pair).
* Beyond Go: every wrong user/password (a request without credentials is no guess) is logged with the peer address (``web login failed from ADDR``), and
  after :data:`MAX_FAILURES` failures from one address within :data:`WINDOW` seconds that address
  gets ``429 Too Many Requests`` (``Retry-After``) at once for :data:`BLOCK` seconds, without its
  credentials even being looked at, so guessing goes no faster than that. Other addresses are
  not affected. The table of addresses is bounded (:data:`MAX_TRACKED`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
import time
from collections import OrderedDict
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler

log = logging.getLogger("aiofrp.net.webauth")

FAIL_DELAY = 0.2  # Go: SetAuthFailDelay(200 * time.Millisecond)
MAX_FAILURES = 10
WINDOW = 300.0
BLOCK = 60.0
MAX_TRACKED = 10_000


class _Failures:
    __slots__ = ("blocked_until", "count", "first")

    def __init__(self, now: float) -> None:
        self.count = 0
        self.first = now
        self.blocked_until = 0.0


class BasicAuth:
    """aiohttp middleware: Basic auth on every path but ``open_paths``; no-op when neither user
    nor password is set (Go). ``on_failure(addr)`` is called for each failed attempt (metrics)."""

    def __init__(self, user: str, password: str, *, what: str = "web server",
                 open_paths: frozenset[str] = frozenset({"/healthz"}),
                 on_failure: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.enabled = bool(user or password)
        self.expected = f"{user}:{password}".encode()
        self.what = what
        self.open_paths = open_paths
        self.on_failure = on_failure
        self.clock = clock
        self.failures: OrderedDict[str, _Failures] = OrderedDict()

    def check(self, header: str) -> bool:
        """Whether an ``Authorization`` header carries the right user and password."""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            got = base64.b64decode(token.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(got, self.expected)

    def _blocked(self, addr: str, now: float) -> float:
        f = self.failures.get(addr)
        if f is None or f.blocked_until <= now:
            return 0.0
        return f.blocked_until - now

    def _failed(self, addr: str, now: float) -> None:
        f = self.failures.get(addr)
        if f is None or now - f.first > WINDOW:
            f = _Failures(now)
            self.failures[addr] = f
            while len(self.failures) > MAX_TRACKED:
                self.failures.popitem(last=False)
        f.count += 1
        if f.count >= MAX_FAILURES:
            f.blocked_until = now + BLOCK
            log.warning("%s: %d failed logins from %s, refusing it for %ds", self.what, f.count, addr, BLOCK)
        else:
            log.warning("%s: login failed from %s", self.what, addr)
        if self.on_failure is not None:
            self.on_failure(addr)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not self.enabled or request.path in self.open_paths or request.match_info.http_exception is not None:
            # Go matches routes before its auth middleware: 404 and 405 come without a challenge
            return await handler(request)
        addr = request.remote or ""
        now = self.clock()
        wait = self._blocked(addr, now)
        if wait:
            return web.Response(status=429, text="Too Many Requests\n",
                                headers={"Retry-After": str(int(wait) + 1)})
        header = request.headers.get("Authorization")
        if header is not None and self.check(header):
            self.failures.pop(addr, None)
            return await handler(request)
        if header is not None:  # no header is a browser's first try, not a guess
            self._failed(addr, now)
        await asyncio.sleep(FAIL_DELAY)
        return web.Response(status=401, text="Unauthorized\n",
                            headers={"WWW-Authenticate": 'Basic realm="Restricted"'})


__all__ = ["BLOCK", "MAX_FAILURES", "WINDOW", "BasicAuth"]
