"""The xtcp P2P tunnel over a punched UDP socket (frp §5.10 step 7).

``quic`` (default): the provider runs a QUIC server (random certificate, ALPN ``frp``) on its
socket and accepts one connection; the visitor dials it. ``kcp``: a KCP session on each side
with yamux on top (provider = yamux server, keepalive 10 s). Either way every user connection is
one stream carrying raw bytes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..net.kcp import KCPConn
from ..net.mux import MuxSession
from ..net.quic import SOCKET_BUFFER as QUIC_SOCKET_BUFFER
from ..net.quic import QuicSession, quic_configuration
from ..net.udp_batch import enlarge_buffers
from ..proto.addr import fmt_addr
from .nathole import HoleSocket

if TYPE_CHECKING:
    from ..config.base import QUICOptions
    from ..log import XLog

log = logging.getLogger("aiofrp.client.tunnel")

HANDSHAKE_TIMEOUT = 10.0
ACCEPT_TIMEOUT = 30.0  # the provider gives up when no visitor connects within this
KCP_KEEPALIVE = 10.0
VISITOR_MUX_WINDOW = 6 << 20
PROVIDER_MUX_WINDOW = 1 << 20

Addr = tuple[str, int]
OnStream = Callable[[asyncio.Transport], None]


class Tunnel:
    """One P2P session; ``closed`` resolves when it is gone (and the socket is closed)."""

    def __init__(self, sock: HoleSocket, raddr: Addr, protocol: str) -> None:
        self.sock = sock
        self.raddr = raddr
        self.protocol = protocol
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._quic: QuicSession | None = None
        self._mux: MuxSession | None = None
        self._kcp: KCPConn | None = None

    @property
    def is_closed(self) -> bool:
        return self.closed.done()

    def open_stream(self) -> asyncio.Transport:
        if self._quic is not None and not self._quic.is_closed:
            return self._quic.open_stream()
        if self._mux is not None and not self._mux.is_closed:
            return self._mux.open_stream()
        raise ConnectionResetError("tunnel is closed")

    def close(self) -> None:
        if self._quic is not None:
            self._quic.close()
        if self._mux is not None:
            self._mux.close()
        if self._kcp is not None:
            self._kcp.close()
        self._done()

    def _done(self, *_: object) -> None:
        self.sock.close()
        if not self.closed.done():
            self.closed.set_result(None)

    # -- KCP ------------------------------------------------------------------------------

    def _start_kcp(self, *, client: bool, on_stream: OnStream | None) -> None:
        raddr = self.raddr
        sock = self.sock
        kcp = KCPConn(lambda d: sock.sendto(d, raddr), peer=raddr)

        def on_datagram(data: bytes, addr: Addr) -> None:
            if addr == raddr:  # frp uses a connected socket here
                kcp.datagram_received(data)

        mux = MuxSession(
            client=client, on_stream=on_stream, keepalive_interval=KCP_KEEPALIVE,
            max_window=VISITOR_MUX_WINDOW if client else PROVIDER_MUX_WINDOW,
        )
        kcp.set_protocol(mux)
        mux.connection_made(kcp)
        self._kcp, self._mux = kcp, mux
        mux.closed.add_done_callback(self._done)
        sock.set_handler(on_datagram)


async def dial(sock: HoleSocket, raddr: Addr, protocol: str, quic_opts: QUICOptions) -> Tunnel:
    """Visitor side: connect the tunnel to the provider at ``raddr``."""
    t = Tunnel(sock, raddr, protocol)
    if protocol == "kcp":
        t._start_kcp(client=True, on_stream=None)
        return t
    enlarge_buffers(sock.transport.get_extra_info("socket"), QUIC_SOCKET_BUFFER)  # type: ignore[union-attr]
    cfg = quic_configuration(is_client=True, idle_timeout=float(quic_opts.max_idle_timeout or 30))
    session = QuicSession.connect(raddr, sock.transport.sendto, cfg,  # type: ignore[union-attr]
                                  keepalive=float(quic_opts.keepalive_period or 0))
    sock.set_handler(session.datagram_received)
    t._quic = session
    session.closed.add_done_callback(t._done)
    try:
        async with asyncio.timeout(HANDSHAKE_TIMEOUT):
            await session.handshake
    except BaseException as exc:
        t.close()
        if isinstance(exc, TimeoutError):
            raise ConnectionError("dial quic error: handshake timeout") from None
        if isinstance(exc, Exception):
            raise ConnectionError(f"dial quic error: {exc}") from None
        raise
    return t


def serve(sock: HoleSocket, raddr: Addr, protocol: str, quic_opts: QUICOptions, on_stream: OnStream,
          xl: XLog) -> Tunnel:
    """Provider side: accept the visitor's tunnel (one QUIC connection, or the KCP session); ``xl``:
    the proxy's log prefixes, for the line of a tunnel that never came."""
    t = Tunnel(sock, raddr, protocol)
    if protocol == "kcp":
        t._start_kcp(client=False, on_stream=on_stream)
        return t
    enlarge_buffers(sock.transport.get_extra_info("socket"), QUIC_SOCKET_BUFFER)  # type: ignore[union-attr]
    cfg = quic_configuration(is_client=False, idle_timeout=float(quic_opts.max_idle_timeout or 30))
    keepalive = float(quic_opts.keepalive_period or 0)
    loop = asyncio.get_running_loop()

    def give_up() -> None:
        if t._quic is None:
            xl.on(log).warning("no tunnel connection from %s within %ds", fmt_addr(raddr), ACCEPT_TIMEOUT)
            t.close()

    timer = loop.call_later(ACCEPT_TIMEOUT, give_up)

    def on_datagram(data: bytes, addr: Addr) -> None:
        if t._quic is None:
            session = QuicSession.accept(data, addr, sock.transport.sendto, cfg,  # type: ignore[union-attr]
                                         on_stream=on_stream, keepalive=keepalive)
            if session is None:
                return  # a late probe or junk: only a QUIC Initial opens the tunnel
            timer.cancel()
            t._quic = session
            session.closed.add_done_callback(t._done)
        else:
            t._quic.datagram_received(data, addr)

    sock.set_handler(on_datagram)
    t.closed.add_done_callback(lambda _: timer.cancel())
    return t
