"""stcp visitor: a local TCP listener; each connection becomes a visitor connection to frps that
names the secret proxy and proves the secret key (frp §5.9).

:meth:`STCPVisitor.handle_conn` also serves connections handed over by other visitors (xtcp's
``fallbackTo``), so it works with ``bindPort <= 0`` (no listener) too.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Protocol

from ...config.visitor import STCPVisitorConfig, VisitorBaseConfig
from ...net.msgconn import MsgConn
from ...net.relay import Codec, PendingConn, Relay, work_conn_codecs
from ...proto import msg as m
from ...proto.addr import fmt_addr
from ...proto.crypto import auth_key, derive_key
from ...proto.errors import ProtocolError
from . import register
from .base import HOLD_TIMEOUT, NOT_REGISTERED_RETRY, RETRY_INTERVAL, TCPVisitor

if TYPE_CHECKING:
    from ...log import XLog
    from ..transporter import MessageTransporter
    from .base import VisitorHost


RESP_TIMEOUT = 10.0


class VisitorConnError(Exception):
    """A visitor connection could not be set up; the text says why (the server's error included)."""


class VisitorSide(Protocol):
    """What :func:`open_visitor_conn` uses of a visitor (stcp, sudp)."""

    @property
    def label(self) -> str: ...
    @property
    def xl(self) -> XLog: ...
    @property
    def cfg(self) -> VisitorBaseConfig: ...
    @property
    def target(self) -> str: ...
    @property
    def control(self) -> MessageTransporter | None: ...

    async def wait_control(self, deadline: float) -> MessageTransporter | None: ...

    def in_relogin_grace(self) -> bool: ...


def target_name(client: VisitorHost, cfg: VisitorBaseConfig) -> str:
    """The wire name of the visited proxy: ``(serverUser or own user) + "." + serverName``."""
    user = cfg.server_user or client.cfg.user
    return f"{user}.{cfg.server_name}" if user else cfg.server_name


def _not_registered_yet(error: str) -> bool:
    """A refusal that means the target proxy is not there (yet): Go's and our frps's wording, or the
    generic text of a frps with ``detailedErrorsToClient = false``."""
    return "doesn't exist" in error or error == "register visitor conn error"


async def open_visitor_conn(visitor: VisitorSide) -> tuple[MsgConn, Codec | None, Codec | None]:
    """Open a logical connection to frps for ``visitor`` (an stcp/sudp visitor with ``.target``),
    send NewVisitorConn and await NewVisitorConnResp (10 s).

    While frpc is not logged in (just started, or reconnecting after frps went away) this waits for
    the login, up to :data:`HOLD_TIMEOUT`; a failed connection to frps is retried within that time,
    and shortly after a (re)login a refusal because the proxy does not exist is retried for up to
    :data:`NOT_REGISTERED_RETRY` (see visitors/base.py).

    Returns the connection (still in its message phase: ``detach`` it) and its sk-keyed
    (encode, decode) codecs. Raises :class:`VisitorConnError`.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + HOLD_TIMEOUT
    retry_until = 0.0  # set at the first "proxy doesn't exist" refusal
    cfg = visitor.cfg
    while True:
        ctl = await visitor.wait_control(deadline)
        if ctl is None:
            raise VisitorConnError(f"not connected to the server (waited {HOLD_TIMEOUT:g}s for the login)")
        try:
            conn = await ctl.connect_server()
        except (OSError, TimeoutError) as exc:
            if loop.time() + RETRY_INTERVAL < deadline:  # frps just went away: wait for the relogin
                visitor.xl.debug("connect to server error: %s, retrying", exc or type(exc).__name__)
                await asyncio.sleep(RETRY_INTERVAL)
                continue
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
            if not isinstance(exc, ProtocolError) and visitor.control is not ctl \
                    and loop.time() + RETRY_INTERVAL < deadline:
                continue  # the control session ended meanwhile: wait for the next one
            raise VisitorConnError(f"get newVisitorConnRespMsg error: {exc or type(exc).__name__}") from None
        if not isinstance(resp, m.NewVisitorConnResp):
            conn.abort()
            raise VisitorConnError(f"unexpected {type(resp).__name__} in reply to NewVisitorConn")
        if resp.error:
            conn.close()
            now = loop.time()
            retry_until = retry_until or min(deadline, now + NOT_REGISTERED_RETRY)
            if _not_registered_yet(resp.error) and visitor.in_relogin_grace() and now + RETRY_INTERVAL < retry_until:
                visitor.xl.debug("%s: the provider may still be registering, retrying", resp.error)
                await asyncio.sleep(RETRY_INTERVAL)
                continue
            raise VisitorConnError(f"start new visitor connection error: {resp.error}")
        key = derive_key(cfg.secret_key) if cfg.transport.use_encryption else None
        encode, decode = work_conn_codecs(key, cfg.transport.use_compression)
        return conn, encode, decode


@register("stcp")
class STCPVisitor(TCPVisitor[STCPVisitorConfig]):
    def __init__(self, client: VisitorHost, cfg: STCPVisitorConfig) -> None:
        super().__init__(client, cfg)
        self.target = target_name(client, cfg)

    async def start(self) -> None:
        await self.listen()
        self.start_plugin()

    async def handle_conn(self, user: PendingConn) -> None:
        """Serve one accepted local connection (bytes it already sent may sit in ``user.buffered``)
        through a new visitor connection; on refusal log ``[name] <reason>`` and close it."""
        transport = user.transport
        assert transport is not None
        transport.pause_reading()
        self.xl.debug("get a new stcp user connection")
        try:
            conn, encode, decode = await open_visitor_conn(self)
        except VisitorConnError as exc:
            self.xl.warning("%s", exc)
            user.refuse()
            return
        if user.lost or transport.is_closing():
            conn.close()
            return
        ct, cdata, ceof = conn.detach()
        relay = Relay(
            transport, ct, a_to_b=encode, b_to_a=decode, a_data=user.take(), b_data=cdata,
            a_eof=user.eof, b_eof=ceof, name=self.label, on_close=self.relays.discard,
        )
        if not relay.done.done():
            self.relays.add(relay)
        self.xl.debug("join connections, user %s", fmt_addr(transport.get_extra_info("peername")))

