"""The gate of one bind-port TCP connection: unauthenticated until it proves itself, and closed
(the TCP connection, not just a yamux stream) when it fails to.

A connection is *trusted* once it carries a logged-in control, an accepted work connection or an
accepted visitor connection. Until then:

* it has :data:`PREAUTH_TIMEOUT` seconds from its accept to get there (sniffing, TLS handshake,
  yamux streams and the first message included); a complete first message being handled stops
  the clock until the handling is over;
* anything wrong on it (garbage, a bad frame in any yamux stream, a refused Login, work or
  visitor connection, a failed TLS handshake) closes the whole TCP connection: at once, or for a
  refusal once the response is flushed and the peer hung up, at most :data:`LINGER` seconds
  later (what the peer sends meanwhile is discarded; a peer that does not read the refusal is
  aborted :data:`FLUSH_TIMEOUT` after that). Closing right after the refusal raced with Go's
  frpc: its yamux session could see the end of the connection before its login stream read the
  LoginResp, and it reported "session shutdown" instead of the reason;
* exactly one line is logged for it, with a stable prefix and the peer address, for fail2ban::

      login from 1.2.3.4:5678 failed: token in login doesn't match token from configuration
      connection from 1.2.3.4:5678 failed: bad message: ...
      connection from [2001:db8::1]:5678 closed: closed by the peer before logging in

  ``failed`` lines (WARNING) are what a fail2ban filter should count; ``closed`` lines (INFO) are
  peers that hung up on their own (port probes, health checks).

Go frps keeps such connections until its yamux/read deadlines fire (about 40 s for a silent
yamux session) and closes only the stream after a refused Login; with many of them that is a
file-descriptor exhaustion attack.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..net.listen import peer_addr
from ..proto.addr import fmt_addr
from ..proto.errors import TransportError

if TYPE_CHECKING:
    from .service import Server, _Sniff

log = logging.getLogger("aiofrp.server")

def peer_host(transport: asyncio.BaseTransport) -> str:
    """The host part of a connection's peer address (IPv4-mapped addresses unmapped), "" if none."""
    addr = peer_addr(transport)
    return str(addr[0]) if isinstance(addr, tuple) and addr else ""


class Stage(enum.StrEnum):
    """How far an untrusted connection got; the text ends its timeout line
    (``connection from ... failed: no login within 10s (TLS handshake not finished)``)."""

    NOTHING = "sent nothing"
    INCOMPLETE_FIRST_BYTES = "incomplete first bytes"
    TLS_HANDSHAKE = "TLS handshake not finished"
    WEBSOCKET_HANDSHAKE = "websocket handshake not finished"
    NO_STREAM = "yamux session without streams"
    NO_LOGIN_STREAMS = "yamux streams without a login"
    NO_MESSAGE = "no complete message"


PREAUTH_TIMEOUT = 10.0
LINGER = 1.0
FLUSH_TIMEOUT = 5.0
BUSY_RECHECK = 1.0


class Gate:
    __slots__ = ("_flush_timer", "_timer", "before_close", "busy", "done", "handed", "host", "peer", "raw", "server",
                 "sniff", "stage", "trusted")

    def __init__(self, server: Server, raw: asyncio.Transport) -> None:
        self.server = server
        self.raw = raw
        self.peer = fmt_addr(raw.get_extra_info("peername"))
        self.host = peer_host(raw)
        self.trusted = False
        self.handed = False  # frps --workers N: handed over by another worker, not to be handed on again
        self.done = False  # handed off or closed: nothing more to say or do
        self.stage = Stage.NOTHING  # what the peer got to, for the timeout line
        self.busy = 0  # first messages being handled right now
        self.sniff: _Sniff | None = None  # the sniffing protocol while the first bytes are awaited
        self._flush_timer: asyncio.TimerHandle | None = None
        # what a layer above raw still holds for it (a yamux session writes once per loop turn)
        self.before_close: Callable[[], None] | None = None
        self._timer: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(
            PREAUTH_TIMEOUT, self._expired
        )
        server.gates.add(self)

    # -- outcomes ---------------------------------------------------------------------------

    def trust(self) -> None:
        """The connection carries a logged-in control or an accepted work/visitor connection."""
        if self.trusted or self.done:
            return
        self.trusted = True
        self._forget()

    def hand_off(self) -> None:
        """The connection is not an frp conversation (vhost traffic or quick mode on the bind port)."""
        if not self.done:
            self.done = True
            self._forget()

    def fail(self, reason: str, *, login: bool = False, flush: bool = False) -> bool:
        """Close an untrusted connection (flushing what was written if ``flush``) with one line.
        Returns False when the connection is trusted: the caller handles only its own stream."""
        if self.trusted:
            if login:  # still worth a line for fail2ban; the session itself is someone's control
                log.warning("login from %s failed: %s", self.peer, reason)
                self.server.banlist.failed(self.host)
            return False
        if self.done:
            return True
        self.done = True
        self._forget()
        log.warning("%s from %s failed: %s", "login" if login else "connection", self.peer, reason)
        self.server.banlist.failed(self.host)  # may ban the address (server/banlist.py)
        self._close(flush)
        return True

    def refuse(self, reason: str) -> bool:
        """Close an untrusted connection after flushing a refusal that is no sign of an attack
        (e.g. a logged-in client's visitor asking for a proxy that is not registered yet): one
        INFO ``closed`` line, which fail2ban does not count. False when the connection is trusted."""
        if self.trusted:
            return False
        if self.done:
            return True
        self.done = True
        self._forget()
        log.info("connection from %s closed: %s", self.peer, reason)
        self._close(True)
        return True

    def peer_closed(self, reason: str = "closed by the peer before logging in") -> None:
        """The peer hung up before the connection was trusted."""
        if self.trusted or self.done:
            return
        self.done = True
        self._forget()
        log.info("connection from %s closed: %s", self.peer, reason)
        self.raw.abort()

    # -- first messages -------------------------------------------------------------------------

    def begin(self) -> None:
        """A complete first message is being handled: the deadline waits for the outcome."""
        self.busy += 1

    def end(self) -> None:
        self.busy -= 1

    # -- internals ------------------------------------------------------------------------------

    def _expired(self) -> None:
        self._timer = None
        if self.done or self.trusted:
            return
        if self.busy > 0:  # e.g. a Login waiting for the previous control of that client to close
            self._timer = asyncio.get_running_loop().call_later(BUSY_RECHECK, self._expired)
            return
        sniff = self.sniff
        if sniff is not None and sniff.deadline_handoff():
            return
        self.fail(f"no login within {PREAUTH_TIMEOUT:g}s ({self.stage})")

    def _close(self, flush: bool) -> None:
        raw = self.raw
        if flush and not raw.is_closing():
            if self.before_close is not None:
                self.before_close()
            try:
                inner = raw.get_protocol()
                raw.set_protocol(_Lingering(inner))
            except (AttributeError, NotImplementedError):  # a transport that cannot swap protocols
                self._linger_over()
                return
            self._flush_timer = asyncio.get_running_loop().call_later(LINGER, self._linger_over)
        else:
            raw.abort()

    def _linger_over(self) -> None:
        raw = self.raw
        raw.close()  # sends what is still buffered (the refusal), then FIN
        self._flush_timer = asyncio.get_running_loop().call_later(FLUSH_TIMEOUT, raw.abort)

    def _forget(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.server.gates.discard(self)

    def connection_lost(self, exc: BaseException | None = None) -> None:
        """The raw connection is gone (whoever closed it); ``exc``: why, if the transport knows
        (a bad websocket frame fails the connection instead of being the peer's hang-up)."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        if not self.done and not self.trusted:
            if isinstance(exc, TransportError):
                self.fail(str(exc))
            else:
                self.peer_closed()
        self._forget()


class _Lingering(asyncio.Protocol):
    """The raw connection's protocol while a refused connection lingers (Gate._close): what the
    peer sends is discarded, its hang-up closes the connection, and the end reaches the protocol
    that was there before (TLS, yamux, the first message), which cleans up as it always does."""

    __slots__ = ("_inner",)

    def __init__(self, inner: asyncio.BaseProtocol) -> None:
        self._inner = inner

    def data_received(self, data: bytes) -> None:
        pass

    def eof_received(self) -> bool:
        return False  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()
