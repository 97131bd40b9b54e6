"""xtcp provider: a work connection brings a NatHoleSid; punch a hole to the visitor, then serve
its tunnel, every stream going to the local service (frp §5.10 step 5-7)."""

from __future__ import annotations

import asyncio
import logging

from ...net.msgconn import MsgConn
from ...net.mux import fmt_addr
from ...net.relay import PendingConn, Relay, work_conn_codecs
from ...proto import msg as m
from ...proto.addr import join_host_port
from ...proto.crypto import derive_key
from ...proto.errors import ProtocolError
from ...proto.nathole import new_transaction_id
from .. import tunnel
from ..nathole import NatHoleError, exchange_info, fmt_addrs, fmt_behavior, make_hole, prepare
from .base import ProxyWrapper, register

log = logging.getLogger("aiofrp.client.proxy.xtcp")

SID_TIMEOUT = 10.0
LOCAL_DIAL_TIMEOUT = 10.0


@register("xtcp")
async def handle_xtcp_work_conn(pw: ProxyWrapper, conn: MsgConn, start: m.StartWorkConn) -> None:
    name = pw.wire_name
    try:
        sid_msg = await conn.read_msg(timeout=SID_TIMEOUT)
    except (TimeoutError, ProtocolError, EOFError, OSError) as exc:
        log.error("[%s] xtcp read from workConn error: %s", name, exc or type(exc).__name__)
        conn.close()
        return
    conn.close()
    if not isinstance(sid_msg, m.NatHoleSid):
        log.error("[%s] xtcp read from workConn error: unexpected %s", name, type(sid_msg).__name__)
        return
    control = pw.control
    if control is None:
        return
    cfg = pw.cfg
    nat = cfg.nat_traversal
    try:
        prep = await prepare(pw.client.cfg.nat_hole_stun_server, bool(nat and nat.disable_assisted_addrs))
    except (NatHoleError, OSError) as exc:
        log.warning("[%s] nathole prepare error: %s", name, exc)
        return
    log.info("[%s] nathole prepare success, nat type: %s, behavior: %s, addresses: %s, assistedAddresses: %s",
             name, prep.nat_type, prep.behavior, fmt_addrs(prep.addrs), fmt_addrs(prep.assisted_addrs))
    sock = prep.sock
    tun: tunnel.Tunnel | None = None
    try:
        tid = new_transaction_id()
        req = m.NatHoleClient(transaction_id=tid, proxy_name=name, sid=sid_msg.sid,
                              mapped_addrs=prep.addrs, assisted_addrs=prep.assisted_addrs)
        try:
            resp = await exchange_info(control, req, tid)
        except NatHoleError as exc:
            log.warning("[%s] nathole exchange info error: %s", name, exc)
            return
        log.info("[%s] get natHoleRespMsg, sid [%s], protocol [%s], candidate address %s, assisted address %s, "
                 "detectBehavior: %s", name, resp.sid, resp.protocol, fmt_addrs(resp.candidate_addrs),
                 fmt_addrs(resp.assisted_addrs), fmt_behavior(resp.detect_behavior))
        try:
            sock, raddr = await make_hole(sock, resp, cfg.secret_key)
        except NatHoleError as exc:
            log.warning("[%s] make hole error: %s", name, exc)
            control.send(m.NatHoleReport(sid=resp.sid, success=False))
            return
        log.info("[%s] establishing nat hole connection successful, sid [%s], remoteAddr [%s]",
                 name, resp.sid, fmt_addr(raddr))
        control.send(m.NatHoleReport(sid=resp.sid, success=True))
        tun = tunnel.serve(sock, raddr, resp.protocol or "quic", pw.client.cfg.transport.quic,
                           lambda st: _on_stream(pw, st), name)
        await tun.closed
        log.debug("[%s] tunnel with %s closed", name, fmt_addr(raddr))
    finally:
        if tun is not None:
            tun.close()
        sock.close()


def _on_stream(pw: ProxyWrapper, stream: asyncio.Transport) -> None:
    pending = PendingConn()
    stream.set_protocol(pending)
    pending.connection_made(stream)
    if pw.control is None:
        stream.abort()
        return
    pw.control.spawn(_serve_stream(pw, stream, pending))


async def _serve_stream(pw: ProxyWrapper, stream: asyncio.Transport, pending: PendingConn) -> None:
    cfg = pw.cfg
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(LOCAL_DIAL_TIMEOUT):
            local, lp = await loop.create_connection(PendingConn, cfg.local_ip, cfg.local_port)
    except (OSError, TimeoutError) as exc:
        log.warning("[%s] connect to local service [%s] error: %s", pw.wire_name, join_host_port(cfg.local_ip, cfg.local_port),
                    exc)
        stream.abort()
        return
    if pending.lost:
        local.abort()
        return
    key = derive_key(cfg.secret_key) if cfg.transport.use_encryption else None
    encode, decode = work_conn_codecs(key, cfg.transport.use_compression)
    Relay(local, stream, a_to_b=encode, b_to_a=decode, a_data=lp.take(), a_eof=lp.eof,
          b_data=pending.take(), b_eof=pending.eof, name=pw.wire_name, limiter=pw.limiter)
    log.debug("[%s] join connections, local %s", pw.wire_name, join_host_port(cfg.local_ip, cfg.local_port))
