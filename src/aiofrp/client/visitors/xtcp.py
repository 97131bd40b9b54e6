"""xtcp visitor: local connections travel through a P2P tunnel punched to the provider (frp §5.10).

The tunnel is made on demand (or kept open with ``keepTunnelOpen``) by one worker: pre-check
with frps, STUN discovery, NatHoleVisitor, hole punching, then a QUIC connection (or KCP +
yamux) to the provider. A user connection waits up to 20 s for a tunnel stream; with
``fallbackTo`` only ``fallbackTimeoutMs``, after which it is handed to that (stcp) visitor.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from ...config.visitor import XTCPVisitorConfig
from ...net.relay import PendingConn, Relay, work_conn_codecs
from ...proto import msg as m
from ...proto.addr import fmt_addr
from ...proto.crypto import auth_key, derive_key
from .. import tunnel
from ..nathole import NatHoleError, PrepareResult, open_hole, pre_check
from . import register
from .base import RETRY_INTERVAL, TCPVisitor
from .stcp import target_name

if TYPE_CHECKING:
    from .base import VisitorHost


OPEN_TUNNEL_TIMEOUT = 20.0
RETRY_POLL = 0.5  # how often a waiting user connection looks for a tunnel again
MIN_ATTEMPT_INTERVAL = 10.0  # hole punching attempts are at least this far apart


class _RateLimiter:
    """Token bucket: ``per_hour`` tokens an hour, bursts of ``per_hour``."""

    def __init__(self, per_hour: int) -> None:
        self.rate = max(per_hour, 1) / 3600.0
        self.burst = max(per_hour, 1)
        self.tokens = float(self.burst)
        self.last = time.monotonic()

    async def wait(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens < 1:
            await asyncio.sleep((1 - self.tokens) / self.rate)
            self.tokens = 1.0
            self.last = time.monotonic()
        self.tokens -= 1


@register("xtcp")
class XTCPVisitor(TCPVisitor[XTCPVisitorConfig]):
    def __init__(self, client: VisitorHost, cfg: XTCPVisitorConfig) -> None:
        super().__init__(client, cfg)
        self.target = target_name(client, cfg)
        self.tunnel: tunnel.Tunnel | None = None
        self._want_tunnel = asyncio.Event()
        self._tunnel_changed = asyncio.Event()
        self._attempting = False
        self._retry_at = 0.0  # loop time before which no new attempt starts (after a failure)
        self._last_error = ""

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        cfg = self.cfg
        await self.listen()
        self.spawn(self._tunnel_worker())
        if cfg.keep_tunnel_open:
            self.spawn(self._keep_tunnel_open())
        self.start_plugin()

    def detach(self) -> None:
        """The control session ended: so does the tunnel (as in Go, whose visitors live and die with
        the control; the provider closes its end then too). Connections wait for the next one."""
        super().detach()
        if self.tunnel is not None:
            self.tunnel.close()
            self.tunnel = None

    async def close(self) -> None:
        await super().close()
        if self.tunnel is not None:
            self.tunnel.close()
            self.tunnel = None

    # -- user connections -------------------------------------------------------------------

    async def handle_conn(self, user: PendingConn) -> None:
        """Serve one accepted local connection through the tunnel, or hand it to ``fallbackTo``."""
        transport = user.transport
        assert transport is not None
        transport.pause_reading()
        cfg = self.cfg
        self.xl.debug("get a new xtcp user connection")
        timeout = cfg.fallback_timeout_ms / 1000 if cfg.fallback_to else OPEN_TUNNEL_TIMEOUT
        try:
            stream = await self._open_tunnel(min(timeout, OPEN_TUNNEL_TIMEOUT))
        except ConnectionError as exc:
            self.xl.error("open tunnel error: %s", exc)
            if cfg.fallback_to:
                await self._fallback(user)
            else:
                user.refuse()
            return
        if user.lost or transport.is_closing():
            stream.close()
            return
        key = derive_key(cfg.secret_key) if cfg.transport.use_encryption else None
        encode, decode = work_conn_codecs(key, cfg.transport.use_compression)
        relay = Relay(transport, stream, a_to_b=encode, b_to_a=decode, a_data=user.take(), a_eof=user.eof,
                      name=self.label, on_close=self.relays.discard)
        if not relay.done.done():
            self.relays.add(relay)
        self.xl.debug("join connections, user %s", fmt_addr(transport.get_extra_info("peername")))

    async def _fallback(self, user: PendingConn) -> None:
        target = self.cfg.fallback_to
        fb = self.client.visitor_by_name(target)
        if fb is None or fb is self or not isinstance(fb, TCPVisitor):
            self.xl.error("transfer connection to visitor %s error: visitor not found", target)
            user.refuse()
            return
        self.xl.debug("try to transfer connection to visitor: %s", target)
        await fb.handle_conn(user)

    async def _open_tunnel(self, timeout: float) -> asyncio.Transport:
        """A new stream of the tunnel, waiting (and asking) for a tunnel up to ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            t = self.tunnel
            if t is not None and not t.is_closed:
                try:
                    return t.open_stream()
                except ConnectionError as exc:
                    self.xl.warning("get tunnel connection error: %s", exc)
                    t.close()
            self._want_tunnel.set()
            left = deadline - loop.time()
            if left <= 0:
                raise ConnectionError("open tunnel timeout")
            if not self._attempting and self._retry_at > deadline:
                # the last attempt failed and the next one starts too late for this connection
                raise ConnectionError(f"open tunnel failed: {self._last_error or 'no tunnel session'}")
            self._tunnel_changed.clear()
            try:
                async with asyncio.timeout(min(RETRY_POLL, left)):
                    await self._tunnel_changed.wait()
            except TimeoutError:
                pass

    # -- making the tunnel -----------------------------------------------------------------------

    async def _tunnel_worker(self) -> None:
        while True:
            await self._want_tunnel.wait()
            self._want_tunnel.clear()
            if self.tunnel is not None and not self.tunnel.is_closed:
                continue
            await self._attached.wait()  # frps is needed to punch (visitors start before login)
            loop = asyncio.get_running_loop()
            started = loop.time()
            self._attempting = True
            try:
                self._last_error = await self._make_nat_hole()
            except Exception as exc:  # noqa: BLE001 - logged with its traceback
                self.xl.exception("make nat hole failed")
                self._last_error = str(exc)
            finally:
                self._attempting = False
            if self.tunnel is None or self.tunnel.is_closed:
                err = self._last_error
                if err == "not connected to the server" or (
                        err.startswith("nathole precheck error") and "doesn't exist" in err and self.in_relogin_grace()):
                    # nothing was punched: the provider may still be registering after a (re)login
                    self._retry_at = loop.time() + RETRY_INTERVAL
                else:
                    self._retry_at = started + MIN_ATTEMPT_INTERVAL  # avoid punching too often
                self._tunnel_changed.set()  # waiting connections re-check (and may give up)
                await asyncio.sleep(max(0.0, self._retry_at - loop.time()))

    async def _keep_tunnel_open(self) -> None:
        limiter = _RateLimiter(self.cfg.max_retries_an_hour)
        self._want_tunnel.set()
        while True:
            await asyncio.sleep(max(self.cfg.min_retry_interval, 1))
            t = self.tunnel
            if t is not None and not t.is_closed:
                self.xl.debug("keepTunnelOpenWorker check success")
                continue
            self.xl.warning("keepTunnelOpenWorker get tunnel connection error: no tunnel session")
            await limiter.wait()
            self._want_tunnel.set()

    async def _make_nat_hole(self) -> str:
        """One attempt; returns "" on success, else what went wrong (already logged)."""
        xl, cfg = self.xl, self.cfg
        control = self.control
        if control is None:
            xl.warning("nathole precheck error: not connected to the server")
            return "not connected to the server"
        try:
            await pre_check(control, self.target)
        except NatHoleError as exc:
            xl.warning("nathole precheck error: %s", exc)
            return f"nathole precheck error: {exc}"

        def request(tid: str, prep: PrepareResult) -> m.NatHoleVisitor:
            now = int(time.time())
            return m.NatHoleVisitor(
                transaction_id=tid, proxy_name=self.target, protocol=cfg.protocol,
                sign_key=auth_key(cfg.secret_key, now), timestamp=now,
                mapped_addrs=prep.addrs, assisted_addrs=prep.assisted_addrs,
            )

        try:
            hole = await open_hole(control, xl, request, stun_server=self.client.cfg.nat_hole_stun_server,
                                   nat=cfg.nat_traversal, secret_key=cfg.secret_key, report=False)
        except NatHoleError as exc:
            return str(exc)  # logged
        ok = False
        try:
            t = await tunnel.dial(hole.sock, hole.raddr, cfg.protocol, self.client.cfg.transport.quic)
            ok = True
        except ConnectionError as exc:
            xl.warning("init tunnel session error: %s", exc)
            return f"init tunnel session error: {exc}"
        finally:
            if not ok:
                hole.sock.close()
        old, self.tunnel = self.tunnel, t
        if old is not None:
            old.close()
        self._tunnel_changed.set()
        return ""
