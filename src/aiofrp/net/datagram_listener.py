"""What frps's UDP transport listeners (``kcpBindPort``, ``quicBindPort``) share: one session per
remote address, and the rate-limited log of dropped datagrams."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar, Generic, TypeVar

from ..proto.addr import fmt_addr

BAD_LOG_INTERVAL = 10.0  # s: at most one "bad datagram" line per this interval


S = TypeVar("S")


class DatagramListener(asyncio.DatagramProtocol, Generic[S]):
    """Sessions by remote address; subclasses decide when a datagram opens one."""

    kind: ClassVar[str]
    """``kcp`` / ``quic``: starts the log lines."""
    log: ClassVar[logging.Logger]

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.sessions: dict[Any, S] = {}
        self.bad = 0
        """Datagrams dropped (not of the protocol, or over the session limit)."""
        self._bad_logged = -BAD_LOG_INTERVAL

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def _forget(self, addr: Any, session: S) -> None:
        if self.sessions.get(addr) is session:
            del self.sessions[addr]

    def _drop(self, addr: Any, why: str) -> None:
        self.bad += 1
        now = asyncio.get_running_loop().time()
        if now - self._bad_logged >= BAD_LOG_INTERVAL:
            self._bad_logged = now
            self.log.warning("%s: dropping datagram from %s: %s (%d dropped so far)", self.kind, fmt_addr(addr),
                             why, self.bad)

    def datagrams_received(self, datagrams: list[bytes], addr: Any) -> None:
        """A read's worth of one sender's datagrams (net/udp_batch.py GroUDP)."""
        for data in datagrams:
            self.datagram_received(data, addr)

    def error_received(self, exc: Exception) -> None:
        self.log.debug("%s listener: %s", self.kind, exc)

    def _end(self, session: S) -> None:
        """Close one session when the listener closes."""
        raise NotImplementedError

    def close(self) -> None:
        for session in list(self.sessions.values()):
            self._end(session)
        if self.transport is not None:
            self.transport.close()
