"""tcp (and http/https/tcpmux/stcp, which frpc treats alike): dial the local service, write the
PROXY protocol header if configured, relay bytes (metered by the proxy's bandwidth limit)."""

from __future__ import annotations

import asyncio
import logging

from ...net.msgconn import MsgConn
from ...net.relay import PendingConn, Relay, work_conn_codecs
from ...proto import msg as m
from ...proto.addr import join_host_port
from ...proto.proxyproto import ProxyProtocolError, build_header
from .base import ProxyWrapper, register

log = logging.getLogger("aiofrp.client.proxy.tcp")

LOCAL_DIAL_TIMEOUT = 10.0


def proxy_protocol_header(version: str, start: m.StartWorkConn) -> bytes | None:
    """The PROXY header for the local service (frp §5.11): only when frps sent the user's
    address; the destination defaults to ``127.0.0.1`` (http work connections carry none).
    Raises :class:`ProxyProtocolError` when the addresses cannot share one family."""
    if not version or not start.src_addr or not start.src_port:
        return None
    dst = (start.dst_addr or "127.0.0.1", start.dst_port)
    return build_header(version, (start.src_addr, start.src_port), dst)


@register("tcp", "http", "https", "tcpmux", "stcp")
async def handle_tcp_work_conn(pw: ProxyWrapper, conn: MsgConn, start: m.StartWorkConn) -> None:
    cfg = pw.cfg
    work = conn.transport
    assert work is not None
    work.pause_reading()
    try:
        header = proxy_protocol_header(cfg.transport.proxy_protocol_version, start)
    except ProxyProtocolError as exc:
        log.error("[%s] write proxy protocol header to local conn error: %s", pw.wire_name, exc)
        conn.close()
        return
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(LOCAL_DIAL_TIMEOUT):
            local, lp = await loop.create_connection(PendingConn, cfg.local_ip, cfg.local_port)
    except (OSError, TimeoutError) as exc:
        log.warning("[%s] connect to local service [%s] error: %s", pw.wire_name, join_host_port(cfg.local_ip, cfg.local_port), exc)
        conn.close()
        return
    if header is not None:
        local.write(header)  # before any payload: the relay writes the work connection's bytes after it
    wt, wdata, weof = conn.detach()
    key = pw.client.key if cfg.transport.use_encryption else None
    encode, decode = work_conn_codecs(key, cfg.transport.use_compression)
    Relay(
        local, wt, a_to_b=encode, b_to_a=decode, a_data=lp.take(), a_eof=lp.eof, b_data=wdata, b_eof=weof,
        name=pw.wire_name, limiter=pw.limiter,
    )
    log.debug("[%s] join connections, local %s", pw.wire_name, join_host_port(cfg.local_ip, cfg.local_port))
