"""tcp (and http/https/tcpmux, which frpc treats alike): dial the local service, relay bytes."""

from __future__ import annotations

import asyncio
import logging

from ...net.msgconn import MsgConn
from ...net.relay import PendingConn, Relay, work_conn_codecs
from ...proto import msg as m
from .base import ProxyWrapper, register

log = logging.getLogger("aiofrp.client.proxy.tcp")

LOCAL_DIAL_TIMEOUT = 10.0


@register("tcp", "http", "https", "tcpmux", "stcp")
async def handle_tcp_work_conn(pw: ProxyWrapper, conn: MsgConn, start: m.StartWorkConn) -> None:
    cfg = pw.cfg
    work = conn.transport
    assert work is not None
    work.pause_reading()
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(LOCAL_DIAL_TIMEOUT):
            local, lp = await loop.create_connection(PendingConn, cfg.local_ip, cfg.local_port)
    except (OSError, TimeoutError) as exc:
        log.warning("[%s] connect to local service [%s:%s] error: %s", pw.wire_name, cfg.local_ip, cfg.local_port, exc)
        conn.close()
        return
    wt, wdata, weof = conn.detach()
    key = pw.client.key if cfg.transport.use_encryption else None
    encode, decode = work_conn_codecs(key, cfg.transport.use_compression)
    Relay(
        local, wt, a_to_b=encode, b_to_a=decode, a_data=lp.take(), a_eof=lp.eof, b_data=wdata, b_eof=weof,
        name=pw.wire_name,
    )
    log.debug("[%s] join connections, local %s:%s", pw.wire_name, cfg.local_ip, cfg.local_port)
