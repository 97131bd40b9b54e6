"""PROXY protocol headers (HAProxy spec, v1 text and v2 binary) that frpc writes to the local
service before any payload (frp §5.11), sans-I/O.

Behaviour follows frp's use of go-proxyproto (``HeaderProxyFromAddrs``):

* the family comes from the source address: IPv4 when it has a 4-byte form (IPv4 or
  IPv4-mapped IPv6), else IPv6; the destination is converted to that family, and a destination
  that has no such form (an IPv6 destination under an IPv4 source) is an error;
* v1 only knows TCP: a UDP header, or addresses that are not IP literals, give the short form
  ``PROXY UNKNOWN\\r\\n``;
* v2 carries the command PROXY with TCP or UDP over IPv4/IPv6, or LOCAL/UNSPEC for addresses
  that are not IP literals;
* any version string other than ``"v1"`` means v2.
"""

from __future__ import annotations

import ipaddress
import struct

__all__ = [
    "V1_UNKNOWN",
    "V2_SIGNATURE",
    "ProxyProtocolError",
    "build_header",
    "encode_v1",
    "encode_v2",
]

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V1_UNKNOWN = b"PROXY UNKNOWN\r\n"

_V2_PROXY = 0x21  # version 2, command PROXY
_V2_LOCAL = 0x20  # version 2, command LOCAL
_FAMILY = {(4, False): 0x11, (6, False): 0x21, (4, True): 0x12, (6, True): 0x22}
_PORTS = struct.Struct(">HH")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class ProxyProtocolError(ValueError):
    """The addresses cannot be written in the header's family (Go: ``ErrInvalidAddress``)."""


def _ip(host: str) -> IPAddress | None:
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    host = host.partition("%")[0]  # zone of a link-local address
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _as_v4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    if isinstance(ip, ipaddress.IPv4Address):
        return ip
    return ip.ipv4_mapped


def _as_v6(ip: IPAddress) -> ipaddress.IPv6Address:
    if isinstance(ip, ipaddress.IPv6Address):
        return ip
    return ipaddress.IPv6Address(b"\x00" * 10 + b"\xff\xff" + ip.packed)


def _check_port(port: int) -> int:
    if not 0 <= port <= 0xFFFF:
        raise ProxyProtocolError(f"invalid port {port}")
    return port


def _resolve(
    src: tuple[str, int], dst: tuple[str, int]
) -> tuple[int, IPAddress, IPAddress] | None:
    """(family 4|6, src ip, dst ip) in the source's family; None if either is not an IP literal."""
    sip, dip = _ip(src[0]), _ip(dst[0])
    if sip is None or dip is None:
        return None
    s4 = _as_v4(sip)
    if s4 is not None:
        d4 = _as_v4(dip)
        if d4 is None:
            raise ProxyProtocolError(f"destination {dst[0]} has no IPv4 form for an IPv4 source {src[0]}")
        return 4, s4, d4
    return 6, sip, _as_v6(dip)


def _v1_text(ip: IPAddress) -> str:
    # Go prints an IPv4-mapped IPv6 address in dotted form, also inside a TCP6 line.
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def encode_v1(src: tuple[str, int], dst: tuple[str, int], *, udp: bool = False) -> bytes:
    """``PROXY TCP4|TCP6 <src ip> <dst ip> <src port> <dst port>\\r\\n`` (``PROXY UNKNOWN\\r\\n``
    for UDP and for addresses that are not IP literals)."""
    if udp:
        return V1_UNKNOWN
    resolved = _resolve(src, dst)
    if resolved is None:
        return V1_UNKNOWN
    family, sip, dip = resolved
    sport, dport = _check_port(src[1]), _check_port(dst[1])
    return f"PROXY TCP{family} {_v1_text(sip)} {_v1_text(dip)} {sport} {dport}\r\n".encode("ascii")


def encode_v2(src: tuple[str, int], dst: tuple[str, int], *, udp: bool = False) -> bytes:
    """The binary header: signature, ``0x21``, family/protocol byte, address length, addresses,
    ports (LOCAL/UNSPEC with no addresses when they are not IP literals)."""
    resolved = _resolve(src, dst)
    if resolved is None:
        return V2_SIGNATURE + bytes((_V2_LOCAL, 0x00, 0x00, 0x00))
    family, sip, dip = resolved
    ports = _PORTS.pack(_check_port(src[1]), _check_port(dst[1]))
    addrs = sip.packed + dip.packed + ports
    return V2_SIGNATURE + bytes((_V2_PROXY, _FAMILY[family, udp])) + struct.pack(">H", len(addrs)) + addrs


def build_header(version: str, src: tuple[str, int], dst: tuple[str, int], *, udp: bool = False) -> bytes:
    """The header for ``transport.proxyProtocolVersion`` (``"v1"``, anything else = v2)."""
    if version == "v1":
        return encode_v1(src, dst, udp=udp)
    return encode_v2(src, dst, udp=udp)
