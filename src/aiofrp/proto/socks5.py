"""SOCKS5 (RFC 1928) and its username/password method (RFC 1929), server side, sans-I/O.

Each ``parse_*`` function takes the bytes received so far and returns ``None`` while the message
is incomplete, else ``(message, bytes consumed)``; bytes that cannot be SOCKS5 raise
:class:`Socks5Error`. Every message is short (at most 262 bytes), so a caller buffers at most that.
The replies and their codes are those of github.com/armon/go-socks5, the server Go frp's
``socks5`` plugin runs.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from .errors import ProtocolError

__all__ = [
    "ADDRESS_TYPE_NOT_SUPPORTED",
    "ATYP_DOMAIN",
    "ATYP_IPV4",
    "ATYP_IPV6",
    "CMD_CONNECT",
    "COMMAND_NOT_SUPPORTED",
    "CONNECTION_REFUSED",
    "HOST_UNREACHABLE",
    "METHOD_NONE",
    "METHOD_NO_ACCEPTABLE",
    "METHOD_USERPASS",
    "NETWORK_UNREACHABLE",
    "SUCCEEDED",
    "Request",
    "Socks5Error",
    "auth_reply",
    "method_reply",
    "parse_greeting",
    "parse_request",
    "parse_userpass",
    "reply",
]

VERSION = 5
USERPASS_VERSION = 1

METHOD_NONE = 0x00
METHOD_USERPASS = 0x02
METHOD_NO_ACCEPTABLE = 0xFF

CMD_CONNECT = 1
CMD_BIND = 2
CMD_UDP_ASSOCIATE = 3

ATYP_IPV4 = 1
ATYP_DOMAIN = 3
ATYP_IPV6 = 4

SUCCEEDED = 0
GENERAL_FAILURE = 1
NOT_ALLOWED = 2
NETWORK_UNREACHABLE = 3
HOST_UNREACHABLE = 4
CONNECTION_REFUSED = 5
TTL_EXPIRED = 6
COMMAND_NOT_SUPPORTED = 7
ADDRESS_TYPE_NOT_SUPPORTED = 8

MAX_MESSAGE = 262  # a request with a 255-byte domain name: 4 + 1 + 255 + 2


class Socks5Error(ProtocolError):
    """Not SOCKS5. ``reply`` is the reply code to send before closing, if any (an unknown
    address type is answered, a wrong version is not)."""

    def __init__(self, message: str, reply: int | None = None) -> None:
        super().__init__(message)
        self.reply = reply


@dataclass(frozen=True, slots=True)
class Request:
    """A request: ``command`` (1 CONNECT, 2 BIND, 3 UDP ASSOCIATE), where to (``host`` is an IP
    address or a domain name as sent) and ``port``."""

    command: int
    atyp: int
    host: str
    port: int


def parse_greeting(buf: bytes | bytearray) -> tuple[bytes, int] | None:
    """``VER NMETHODS METHODS...`` -> (the methods offered, consumed)."""
    if not buf:
        return None
    if buf[0] != VERSION:
        raise Socks5Error(f"unsupported SOCKS version: {buf[0]}")
    if len(buf) < 2:
        return None
    end = 2 + buf[1]
    if len(buf) < end:
        return None
    return bytes(buf[2:end]), end


def parse_userpass(buf: bytes | bytearray) -> tuple[tuple[bytes, bytes], int] | None:
    """``VER ULEN UNAME PLEN PASSWD`` (RFC 1929) -> ((user, password), consumed)."""
    if not buf:
        return None
    if buf[0] != USERPASS_VERSION:
        raise Socks5Error(f"unsupported auth version: {buf[0]}")
    if len(buf) < 2:
        return None
    ulen = buf[1]
    if len(buf) < 3 + ulen:
        return None
    plen = buf[2 + ulen]
    end = 3 + ulen + plen
    if len(buf) < end:
        return None
    return (bytes(buf[2:2 + ulen]), bytes(buf[3 + ulen:end])), end


def parse_request(buf: bytes | bytearray) -> tuple[Request, int] | None:
    """``VER CMD RSV ATYP DST.ADDR DST.PORT`` -> (the request, consumed). An unknown address
    type raises :class:`Socks5Error` with reply 8, as go-socks5 answers it."""
    if not buf:
        return None
    if buf[0] != VERSION:
        raise Socks5Error(f"unsupported command version: {buf[0]}")
    if len(buf) < 4:
        return None
    cmd, atyp = buf[1], buf[3]
    if atyp == ATYP_IPV4:
        end = 4 + 4
        if len(buf) < end + 2:
            return None
        host = str(ipaddress.IPv4Address(bytes(buf[4:end])))
    elif atyp == ATYP_IPV6:
        end = 4 + 16
        if len(buf) < end + 2:
            return None
        host = str(ipaddress.IPv6Address(bytes(buf[4:end])))
    elif atyp == ATYP_DOMAIN:
        if len(buf) < 5:
            return None
        end = 5 + buf[4]
        if len(buf) < end + 2:
            return None
        host = bytes(buf[5:end]).decode("latin-1")
    else:
        raise Socks5Error(f"unrecognized address type: {atyp}", ADDRESS_TYPE_NOT_SUPPORTED)
    port = int.from_bytes(buf[end:end + 2], "big")
    return Request(cmd, atyp, host, port), end + 2


def method_reply(method: int) -> bytes:
    return bytes((VERSION, method))


def auth_reply(ok: bool) -> bytes:
    return bytes((USERPASS_VERSION, 0 if ok else 1))


def reply(code: int, bind: tuple[str, int] | None = None) -> bytes:
    """``VER REP RSV ATYP BND.ADDR BND.PORT``; no ``bind`` address: 0.0.0.0:0 (as go-socks5)."""
    host, port = bind if bind is not None else ("0.0.0.0", 0)
    ip = ipaddress.ip_address(host.partition("%")[0])
    atyp = ATYP_IPV4 if ip.version == 4 else ATYP_IPV6
    return bytes((VERSION, code, 0, atyp)) + ip.packed + port.to_bytes(2, "big")
