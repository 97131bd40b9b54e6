"""``socks5``: a SOCKS5 server on each work connection (Go's ``pkg/plugin/client/socks5.go``, which
runs github.com/armon/go-socks5): CONNECT to IPv4, IPv6 and domain-name destinations, with
``username``/``password`` (RFC 1929) when either is set. BIND and UDP ASSOCIATE are answered
"command not supported" (7), as go-socks5 does.

The protocol is parsed by the sans-I/O ``proto/socks5.py``, read as go-socks5 reads it: the
version of the auth request is checked once its first two bytes came, that of the request once
its first three did (the reserved byte is not checked). A domain name is resolved before the
command is looked at (an unresolvable name is "host unreachable" (4) whatever the command), as Go's
resolver does: an IP literal as is, a name that is not one to Go (``isDomainName``: an all-numeric
name like ``127.1``, a label over 63 bytes, a byte outside ``[A-Za-z0-9_.-]``) is not looked up,
and of the addresses found the first IPv4 one is dialed, else the first one; the empty name dials
this host (``:port``). An IPv4-mapped IPv6 destination is dialed over IPv4 and the bound address
answered as IPv4.

Once connected, the destination and the work connection are joined by the callback relay, both
ways' EOFs passed on (go-socks5 has no CloseWrite for frp's connection and passes none: a user
of a close-delimited protocol waits there forever; README). Bytes that are not SOCKS5, a wrong password or a destination that cannot be reached: the answer
go-socks5 gives, a log line (go-socks5 logs nothing) and that connection alone is closed.
"""

from __future__ import annotations

import asyncio
import errno
import hmac
import ipaddress
import logging
import re
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

# Go's net.isDomainName: labels of letters, digits, '_' and '-' (not first), 1..63 bytes each,
# at most 253 bytes (254 with the root dot), and not all-numeric
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_DOMAIN_NAME = re.compile(rf"(?:{_LABEL}\.)*{_LABEL}\.?")


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


def _go_ip(host: str) -> str | None:
    """``host`` as Go's ``net.IP.String()`` gives an IP literal (an IPv4-mapped IPv6 address as
    dotted IPv4), None when it is not one."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return host if "%" in host else str(ip)


def _is_domain_name(name: str) -> bool:
    """Go's ``net.isDomainName`` (what its resolver looks up besides /etc/hosts)."""
    if name == ".":
        return True
    if not name or len(name) > 254 or (len(name) == 254 and not name.endswith(".")):
        return False
    if _DOMAIN_NAME.fullmatch(name) is None:
        return False
    return any(not (c.isdigit() or c == ".") for c in name)


async def _dial(loop: asyncio.AbstractEventLoop, ip: str, port: int) -> tuple[asyncio.Transport, PendingConn]:
    """A TCP connection to the one address ``ip`` (the socket connected first: uvloop's
    create_connection waits out a connect that fails at once with EINVAL, ``fe80::1`` with no zone)."""
    sock = socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await loop.sock_connect(sock, (ip, port))
        return await loop.create_connection(PendingConn, sock=sock)
    except BaseException:
        sock.close()
        raise


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
            await stream.fill(2)  # go-socks5 reads VER ULEN, then checks VER
            user, password = await _read(stream, s5.parse_userpass)
            # both compared, always: the time taken does not tell which one was wrong
            ok = hmac.compare_digest(user, self._user) & hmac.compare_digest(password, self._password)
            stream.write(s5.auth_reply(ok))
            if not ok:
                raise _Refused(f"user authentication failed for {user.decode('utf-8', 'replace')!r}")
        await stream.fill(3)  # VER CMD RSV, then VER is checked (RSV never)
        req = await _read(stream, s5.parse_request)
        ip = await self._resolve(stream, req)
        if req.command != s5.CMD_CONNECT:
            stream.write(s5.reply(s5.COMMAND_NOT_SUPPORTED))
            raise _Refused(f"unsupported command: {req.command}")
        return s5.Request(req.command, req.atyp, ip, req.port)

    async def _resolve(self, stream: PluginStream, req: s5.Request) -> str:
        """The IP address go-socks5 dials for ``req`` (see the module's doc); a name that does not
        resolve is answered "host unreachable"."""
        ip = _go_ip(req.host)
        if ip is not None:
            return ip
        if req.host == "":  # go-socks5 dials ":port": this host
            return "0.0.0.0"
        error = "no such host"
        if _is_domain_name(req.host):
            try:
                socket.inet_aton(req.host)  # "0x7f.1": a name to Go, an address to getaddrinfo
            except OSError:
                loop = asyncio.get_running_loop()
                try:
                    infos = await loop.getaddrinfo(req.host, None, type=socket.SOCK_STREAM)
                except (OSError, UnicodeError) as exc:
                    error = str(exc)
                else:
                    addrs = [str(info[4][0]) for info in infos if info[0] in (socket.AF_INET, socket.AF_INET6)]
                    if addrs:
                        first = next((a for a in addrs if ":" not in a), addrs[0])
                        return _go_ip(first) or first
        stream.write(s5.reply(s5.HOST_UNREACHABLE))
        raise _Refused(f"failed to resolve destination {req.host!r}: {error}")

    async def _connect(self, stream: PluginStream, req: s5.Request) -> tuple[asyncio.Transport, PendingConn]:
        loop = asyncio.get_running_loop()
        target = join_host_port(req.host, req.port)
        try:
            async with asyncio.timeout(DIAL_TIMEOUT):
                local, lp = await _dial(loop, req.host, req.port)
        except (OSError, TimeoutError) as exc:
            stream.write(s5.reply(_dial_reply(exc)))
            raise _Refused(f"connect to {target} failed: {exc.strerror or exc or 'timeout'}") from None
        bound = local.get_extra_info("sockname")
        stream.write(s5.reply(s5.SUCCEEDED, (_go_ip(bound[0]) or bound[0], bound[1]) if bound else None))
        log.debug("[%s] socks5: connected to %s", self.proxy_name, target)
        return local, lp
