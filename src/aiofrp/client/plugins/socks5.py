"""``socks5``: a SOCKS5 server on each work connection (Go's ``pkg/plugin/client/socks5.go``, which
runs github.com/armon/go-socks5): CONNECT to IPv4, IPv6 and domain-name destinations, with
``username``/``password`` (RFC 1929) when either is set. BIND and UDP ASSOCIATE are answered
"command not supported" (7), as go-socks5 does.

The protocol is parsed by the sans-I/O ``proto/socks5.py``; once connected, the destination and
the work connection are joined by the callback relay. Bytes that are not SOCKS5, a wrong password
or a destination that cannot be reached: a log line, and that connection alone is closed.
"""

from __future__ import annotations

import asyncio
import errno
import hmac
import logging
import socket
from collections.abc import Callable
from typing import TypeVar

from ...config.plugin import Socks5PluginOptions
from ...net.relay import PendingConn
from ...proto import socks5 as s5
from ...proto.addr import fmt_addr, join_host_port
from . import register
from .base import ClientPlugin, WorkConn
from .stream import PluginStream

log = logging.getLogger("aiofrp.client.plugin")

T = TypeVar("T")

HANDSHAKE_TIMEOUT = 60.0
DIAL_TIMEOUT = 10.0


class _Refused(Exception):
    """The handshake ended with a refusal already answered; the message is for the log."""


async def _read(stream: PluginStream, parse: Callable[[bytearray], tuple[T, int] | None]) -> T:
    while True:
        got = parse(stream.buf)
        if got is not None:
            msg, n = got
            stream.consume(n)
            return msg
        await stream.more()


def _dial_reply(exc: BaseException) -> int:
    """go-socks5's mapping of a dial error to a reply code."""
    if isinstance(exc, ConnectionRefusedError):
        return s5.CONNECTION_REFUSED
    if isinstance(exc, OSError) and exc.errno == errno.ENETUNREACH:
        return s5.NETWORK_UNREACHABLE
    return s5.HOST_UNREACHABLE


@register("socks5")
class Socks5Plugin(ClientPlugin[Socks5PluginOptions]):
    def __init__(self, proxy_name: str, cfg: Socks5PluginOptions) -> None:
        super().__init__(proxy_name, cfg)
        self._auth = bool(cfg.username or cfg.password)
        self._user = cfg.username.encode()
        self._password = cfg.password.encode()

    async def handle(self, conn: WorkConn) -> None:
        stream = PluginStream(conn, limit=4 * s5.MAX_MESSAGE)
        who = fmt_addr(conn.src_addr) if conn.src_addr else "user"
        try:
            async with asyncio.timeout(HANDSHAKE_TIMEOUT):
                req = await self._handshake(stream)
                local, lp = await self._connect(stream, req)
        except s5.Socks5Error as exc:
            if exc.reply is not None:
                stream.write(s5.reply(exc.reply))
            log.warning("[%s] socks5: bad request from %s: %s", self.proxy_name, who, exc)
            stream.close()
            return
        except _Refused as exc:
            log.warning("[%s] socks5: %s (from %s)", self.proxy_name, exc, who)
            stream.close()
            return
        except EOFError:
            log.debug("[%s] socks5: %s closed the connection during the handshake", self.proxy_name, who)
            stream.close()
            return
        except TimeoutError:
            log.warning("[%s] socks5: no complete request from %s within %ds", self.proxy_name, who,
                        HANDSHAKE_TIMEOUT)
            stream.close()
            return
        stream.join(local, lp.take(), lp.eof)

    async def _handshake(self, stream: PluginStream) -> s5.Request:
        methods = await _read(stream, s5.parse_greeting)
        want = s5.METHOD_USERPASS if self._auth else s5.METHOD_NONE
        if want not in methods:
            stream.write(s5.method_reply(s5.METHOD_NO_ACCEPTABLE))
            raise _Refused("no supported authentication mechanism")
        stream.write(s5.method_reply(want))
        if self._auth:
            user, password = await _read(stream, s5.parse_userpass)
            # both compared, always: the time taken does not tell which one was wrong
            ok = hmac.compare_digest(user, self._user) & hmac.compare_digest(password, self._password)
            stream.write(s5.auth_reply(ok))
            if not ok:
                raise _Refused(f"user authentication failed for {user.decode('utf-8', 'replace')!r}")
        req = await _read(stream, s5.parse_request)
        if req.command != s5.CMD_CONNECT:
            stream.write(s5.reply(s5.COMMAND_NOT_SUPPORTED))
            raise _Refused(f"unsupported command: {req.command}")
        return req

    async def _connect(self, stream: PluginStream, req: s5.Request) -> tuple[asyncio.Transport, PendingConn]:
        loop = asyncio.get_running_loop()
        target = join_host_port(req.host, req.port)
        try:
            async with asyncio.timeout(DIAL_TIMEOUT):
                local, lp = await loop.create_connection(PendingConn, req.host, req.port)
        except socket.gaierror as exc:
            stream.write(s5.reply(s5.HOST_UNREACHABLE))
            raise _Refused(f"failed to resolve destination {req.host!r}: {exc.strerror or exc}") from None
        except (OSError, TimeoutError) as exc:
            stream.write(s5.reply(_dial_reply(exc)))
            raise _Refused(f"connect to {target} failed: {exc.strerror or exc or 'timeout'}") from None
        bound = local.get_extra_info("sockname")
        stream.write(s5.reply(s5.SUCCEEDED, (bound[0], bound[1]) if bound else None))
        log.debug("[%s] socks5: connected to %s", self.proxy_name, target)
        return local, lp
