"""stcp visitor: a local TCP listener; each connection becomes a visitor connection to frps that
names the secret proxy and proves the secret key (frp §5.9).

:meth:`STCPVisitor.handle_conn` also serves connections handed over by other visitors (xtcp's
``fallbackTo``), so it works with ``bindPort <= 0`` (no listener) too.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from ...net.msgconn import MsgConn
from ...net.mux import fmt_addr
from ...net.relay import Codec, PendingConn, Relay, work_conn_codecs
from ...proto import msg as m
from ...proto.crypto import auth_key, derive_key
from ...proto.errors import ProtocolError
from . import register
from .base import TCPVisitor

if TYPE_CHECKING:
    from ..service import Client

log = logging.getLogger("aiofrp.client.visitor")

RESP_TIMEOUT = 10.0


class VisitorConnError(Exception):
    """A visitor connection could not be set up; the text says why (the server's error included)."""


def target_name(client: Client, cfg: Any) -> str:
    """The wire name of the visited proxy: ``(serverUser or own user) + "." + serverName``."""
    user = cfg.server_user or client.cfg.user
    return f"{user}.{cfg.server_name}" if user else cfg.server_name


async def open_visitor_conn(visitor: Any) -> tuple[MsgConn, Codec | None, Codec | None]:
    """Open a logical connection to frps for ``visitor`` (an stcp/sudp visitor with ``.target``),
    send NewVisitorConn and await NewVisitorConnResp (10 s).

    Returns the connection (still in its message phase: ``detach`` it) and its sk-keyed
    (encode, decode) codecs. Raises :class:`VisitorConnError`.
    """
    ctl = visitor.control
    if ctl is None:
        raise VisitorConnError("not connected to the server")
    cfg = visitor.cfg
    try:
        conn = await ctl.connector.open()
    except (OSError, TimeoutError) as exc:
        raise VisitorConnError(f"connect to server error: {exc or type(exc).__name__}") from None
    ts = int(time.time())
    conn.write_msg(
        m.NewVisitorConn(
            run_id=ctl.run_id, proxy_name=visitor.target, sign_key=auth_key(cfg.secret_key, ts), timestamp=ts,
            use_encryption=cfg.transport.use_encryption, use_compression=cfg.transport.use_compression,
        )
    )
    try:
        resp = await conn.read_msg(timeout=RESP_TIMEOUT)
    except TimeoutError:
        conn.abort()
        raise VisitorConnError(f"get newVisitorConnRespMsg error: no answer in {RESP_TIMEOUT:g}s") from None
    except (ProtocolError, EOFError, OSError) as exc:
        conn.abort()
        raise VisitorConnError(f"get newVisitorConnRespMsg error: {exc or type(exc).__name__}") from None
    if not isinstance(resp, m.NewVisitorConnResp):
        conn.abort()
        raise VisitorConnError(f"unexpected {type(resp).__name__} in reply to NewVisitorConn")
    if resp.error:
        conn.close()
        raise VisitorConnError(f"start new visitor connection error: {resp.error}")
    key = derive_key(cfg.secret_key) if cfg.transport.use_encryption else None
    encode, decode = work_conn_codecs(key, cfg.transport.use_compression)
    return conn, encode, decode


@register("stcp")
class STCPVisitor(TCPVisitor):
    def __init__(self, client: Client, cfg: Any) -> None:
        super().__init__(client, cfg)
        self.target = target_name(client, cfg)

    async def start(self) -> None:
        await self.listen()
        log.info("[%s] start visitor success", self.name)

    async def handle_conn(self, user: PendingConn) -> None:
        """Serve one accepted local connection (bytes it already sent may sit in ``user.buffered``)
        through a new visitor connection; on refusal log ``[name] <reason>`` and close it."""
        transport = user.transport
        assert transport is not None
        transport.pause_reading()
        try:
            conn, encode, decode = await open_visitor_conn(self)
        except VisitorConnError as exc:
            log.warning("[%s] %s", self.name, exc)
            transport.close()
            return
        if user.lost or transport.is_closing():
            conn.close()
            return
        ct, cdata, ceof = conn.detach()
        relay = Relay(
            transport, ct, a_to_b=encode, b_to_a=decode, a_data=user.take(), b_data=cdata,
            a_eof=user.eof, b_eof=ceof, name=self.name, on_close=self.relays.discard,
        )
        if not relay.done.done():
            self.relays.add(relay)
        log.debug("[%s] join connections, user %s", self.name, fmt_addr(transport.get_extra_info("peername")))

