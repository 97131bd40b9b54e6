"""frps's extra listeners for frpc's transports, one class per ``transport.protocol``, registered in
:data:`LISTENERS` (Go: server/service.go ``NewService``):

* ``kcp``: UDP ``kcpBindPort`` (``net/kcp.py``); each KCP conversation is handled like a bind-port
  TCP connection after the vhost sniffing: TLS first byte or plaintext, then yamux;
* ``quic``: UDP ``quicBindPort`` (``net/quic.py``); each stream of a QUIC connection is a logical
  frp connection (no frp TLS, no yamux).

WebSocket (``GET /~!frp``) needs no listener of its own: it arrives on the bind port
(``server/service.py``: ``_Sniff``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, ClassVar, cast

from ..net.dialerr import listen_error_text
from ..net.listen import bind_udp, listen_udp, unmap
from ..proto.addr import fmt_addr
from ..registry import Registry
from .errors import ListenerError
from .gate import Gate, Stage, peer_host

if TYPE_CHECKING:
    from ..net.kcp import KCPConn
    from ..net.quic import QuicSession, QuicStream
    from .service import Server

log = logging.getLogger("aiofrp.server")


class Listener:
    """One UDP transport listener of frps."""

    port_key: ClassVar[str] = ""
    """The frps config attribute holding the port (0: not started)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.port = 0
        self._endpoint: Any = None

    async def start(self, addr: str, port: int) -> None:
        raise NotImplementedError

    def close(self) -> None:
        if self._endpoint is not None:
            self._endpoint.close()


LISTENERS: Registry[type[Listener]] = Registry("transport listener")


async def start_listeners(server: Server) -> list[Listener]:
    started = []
    for name in LISTENERS:
        cls = LISTENERS.types[name]
        port = getattr(server.cfg, cls.port_key)
        if port:
            lst = cls(server)
            await lst.start(server.cfg.bind_addr, port)
            started.append(lst)
    return started


@LISTENERS.register("kcp")
class KCPServerListener(Listener):
    port_key = "kcp_bind_port"

    async def start(self, addr: str, port: int) -> None:
        from ..net.kcp import KCPListener

        try:
            # as Go's net.ListenUDP: a wildcard bindAddr is one dual-stack socket (``*:port``)
            transport, ep = await listen_udp(lambda: KCPListener(self._on_conn), addr, port,
                                             reuse_port=bool(self.server.reuse_port))
        except OSError as exc:
            where = fmt_addr((addr, port))
            raise ListenerError(f"listen on kcp udp address {where} error: "
                                f"{listen_error_text(where, exc, 'udp')}") from exc
        self._endpoint = ep
        self.port = transport.get_extra_info("sockname")[1]
        log.info("frps kcp listen on udp %s", fmt_addr((addr, self.port)))

    def _on_conn(self, conn: KCPConn) -> None:
        from .service import _Sniff

        sniff = _Sniff(self.server, frp_only=True)
        conn.set_protocol(sniff)
        sniff.connection_made(conn)


class _SessionRaw:
    """A QUIC connection seen as the gate's raw connection (abort = close the connection)."""

    def __init__(self, session: QuicSession) -> None:
        self.session = session

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return unmap(self.session.peer) if name == "peername" else default

    def is_closing(self) -> bool:
        return self.session.is_closed

    def close(self) -> None:
        self.session.close()

    def abort(self) -> None:
        self.session.close()


@LISTENERS.register("quic")
class QUICServerListener(Listener):
    port_key = "quic_bind_port"

    async def start(self, addr: str, port: int) -> None:
        from ..net.quic import QuicListener, quic_configuration
        from ..net.udp_batch import GroUDP

        cfg = self.server.cfg
        q = cfg.transport.quic
        tls = cfg.transport.tls
        qcfg = quic_configuration(is_client=False, idle_timeout=float(q.max_idle_timeout or 30),
                                  cert_file=tls.cert_file, key_file=tls.key_file)
        self.gates: dict[int, Gate] = {}
        ep = QuicListener(qcfg, self._on_session, on_stream=self._on_stream, keepalive=float(q.keepalive_period),
                          max_incoming_streams=q.max_incoming_streams)
        try:
            sock = await bind_udp(addr, port, reuse_port=bool(self.server.reuse_port))
        except OSError as exc:
            where = fmt_addr((addr, port))
            raise ListenerError(f"listen on quic udp address {where} error: "
                                f"{listen_error_text(where, exc, 'udp')}") from exc
        # read with UDP GRO: a client's GSO burst in one read (net/udp_batch.py GroUDP)
        transport = GroUDP(sock, ep.datagrams_received, ep.error_received)
        ep.connection_made(cast(asyncio.DatagramTransport, transport))
        self._endpoint = ep
        self.port = transport.get_extra_info("sockname")[1]
        log.info("frps quic listen on %s", fmt_addr((addr, self.port)))

    def _on_session(self, session: QuicSession) -> None:
        raw = _SessionRaw(session)
        banlist = self.server.banlist
        if banlist.enabled and banlist.banned(peer_host(raw)):  # type: ignore[arg-type]
            session.close()  # a banned address (server/banlist.py), as for TCP and KCP
            return
        gate = Gate(self.server, raw)  # type: ignore[arg-type]
        gate.stage = Stage.NO_STREAM
        self.gates[id(session)] = gate

        def gone(_f: asyncio.Future[None]) -> None:
            self.gates.pop(id(session), None)
            gate.connection_lost()

        session.closed.add_done_callback(gone)

    def _on_stream(self, session: QuicSession, stream: QuicStream) -> None:
        from .service import _FirstConn

        gate = self.gates.get(id(session))
        if gate is None:
            stream.abort()
            return
        if not gate.trusted:
            gate.stage = Stage.NO_LOGIN_STREAMS
        conn = _FirstConn(self.server, gate)
        stream.set_protocol(conn)
        conn.connection_made(stream)
