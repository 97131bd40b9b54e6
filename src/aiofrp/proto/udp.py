"""The UDP packet stream (frp §5.7, §5.9): datagrams as ``UDPPacket`` messages on a byte stream.

udp proxies (frps <-> frpc work connection) and sudp tunnels (visitor frpc <-> frps <->
provider frpc) carry v1 frames after their set-up message, on top of the optional
compression/encryption layers: ``UDPPacket{c: base64 datagram, r: user address}`` both ways and
``Ping{}`` from frpc as keep-alive. This module is sans-I/O: :class:`PacketEncoder` turns
datagrams into frames, :class:`PacketReader` turns received bytes into :class:`Datagram` events
(and passes other messages through).

Addresses are Python socket tuples ``(host, port)``; an IPv6 zone travels as ``host%zone``
like Python's own scoped addresses, and IPv4-mapped IPv6 hosts are sent in the IPv4 form Go uses.
"""

from __future__ import annotations

import binascii
import struct
from typing import NamedTuple

import msgspec

from . import msg as m
from . import wire
from .errors import ProtocolError

__all__ = [
    "Addr",
    "Datagram",
    "PacketEncoder",
    "PacketReader",
    "PacketTooLarge",
    "SockAddr",
    "addr_from_wire",
    "addr_to_wire",
    "max_datagram_size",
]

Addr = tuple[str, int]
SockAddr = tuple[str, int] | tuple[str, int, int, int]
"""A socket address as Python gives it: ``(host, port)``, or ``(host, port, flowinfo, scope_id)`` for IPv6."""

_HEADER = struct.Struct(">Bq")
_U = m.TYPE_BYTE[m.UDPPacket][0]
_PING_FRAME = m.encode(m.Ping())
_PREFIX = b'{"c":"'
_ADDR_CACHE_MAX = 4096


class PacketTooLarge(ValueError):
    """The datagram's frame would exceed frp's 10 240-byte message limit (the peer would drop the conn)."""


class Datagram(NamedTuple):
    """One ``UDPPacket`` received: its content and its ``r`` address (None if absent)."""

    data: bytes
    addr: Addr | None


def _host(ip: str) -> str:
    if ip.startswith("::ffff:") and "." in ip:
        return ip[7:]  # Go prints IPv4-mapped addresses in the IPv4 form
    return ip


def addr_to_wire(addr: SockAddr) -> m.UDPAddr:
    """A socket address tuple as Go's ``net.UDPAddr`` JSON object."""
    host, port = addr[0], addr[1]
    ip, _, zone = host.partition("%")
    return m.UDPAddr(IP=_host(ip), Port=int(port), Zone=zone)


def addr_from_wire(a: m.UDPAddr | None) -> Addr | None:
    """The socket address tuple of a received ``r``/``l`` field."""
    if a is None:
        return None
    return (f"{a.IP}%{a.Zone}" if a.Zone else a.IP, a.Port)


def _suffix(addr: SockAddr) -> bytes:
    return b'","r":' + msgspec.json.encode(addr_to_wire(addr)) + b"}"


def max_datagram_size(addr: SockAddr = ("255.255.255.255", 65535)) -> int:
    """Largest datagram whose ``UDPPacket`` frame toward ``addr`` stays within the message limit."""
    room = m.MAX_MSG_LENGTH - len(_PREFIX) - len(_suffix(addr))
    return (room // 4) * 3


_V2_UDP = struct.pack(">H", wire.V2_TYPE_ID[m.UDPPacket])
_V2_PING_FRAME = wire.encode_message(m.Ping())


class PacketEncoder:
    """Builds ``UDPPacket`` / ``Ping`` frames, v1 or (``v2``) wire v2 message frames (§2.4: the same
    JSON after a type id; the limit is the 64 KiB frame, not v1's 10 240-byte message); the JSON of
    each address is cached."""

    __slots__ = ("_cache", "_v2")

    def __init__(self, v2: bool = False) -> None:
        self._cache: dict[SockAddr, bytes] = {}
        self._v2 = v2

    def packet(self, data: bytes | bytearray | memoryview, addr: SockAddr) -> bytes:
        """One frame ``UDPPacket{c: data, r: addr}`` (byte for byte what ``msg.encode`` gives).

        Raises :class:`PacketTooLarge` if the frame would exceed the message size limit.
        """
        if not data:  # Go omits the empty "c" (omitempty)
            msg = m.UDPPacket(r=addr_to_wire(addr))
            return wire.encode_message(msg) if self._v2 else m.encode(msg)
        suffix = self._cache.get(addr)
        if suffix is None:
            if len(self._cache) >= _ADDR_CACHE_MAX:
                self._cache.clear()
            suffix = self._cache[addr] = _suffix(addr)
        b64 = binascii.b2a_base64(data, newline=False)
        length = len(_PREFIX) + len(b64) + len(suffix)
        if self._v2:
            if length + 2 > wire.MAX_FRAME_PAYLOAD:
                raise PacketTooLarge(f"a {len(data)}-byte datagram needs a {length + 2}-byte v2 frame "
                                     f"(limit {wire.MAX_FRAME_PAYLOAD})")
            return b"".join((wire.HEADER.pack(wire.FRAME_MESSAGE, 0, length + 2), _V2_UDP, _PREFIX, b64, suffix))
        if length > m.MAX_MSG_LENGTH:
            raise PacketTooLarge(
                f"a {len(data)}-byte datagram needs a {length}-byte UDPPacket message (limit {m.MAX_MSG_LENGTH})"
            )
        return b"".join((_HEADER.pack(_U, length), _PREFIX, b64, suffix))

    @staticmethod
    def ping() -> bytes:
        """One v1 ``Ping{}`` frame (frpc's keep-alive on udp work connections and sudp tunnels)."""
        return _PING_FRAME

    def ping_frame(self) -> bytes:
        """One ``Ping{}`` frame in this encoder's framing."""
        return _V2_PING_FRAME if self._v2 else _PING_FRAME


_decode_udp = msgspec.json.Decoder(m.UDPPacket).decode


def _decode_lenient(body: bytes) -> m.UDPPacket:
    """Go's decoding rules (case-insensitive keys, nulls, ...) for what the fast decoder refused."""
    try:
        return m.decode_body(m.UDPPacket, body)
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"invalid JSON in UDPPacket message: {exc}") from None


class PacketReader:
    """Incremental reader of a packet stream: ``feed`` bytes, get events.

    Each event is a :class:`Datagram` or, for any other message (``Ping``, ...), the decoded
    message itself. A malformed frame raises :class:`ProtocolError`; the stream is then unusable.
    """

    __slots__ = ("_buf", "_v2")

    def __init__(self, v2: bool = False) -> None:
        self._buf = bytearray()
        self._v2: wire.V2Decoder | None = wire.V2Decoder() if v2 else None

    def _feed_v2(self, dec: wire.V2Decoder, data: bytes | bytearray | memoryview) -> list[Datagram | m.Message]:
        dec.feed(data)
        out: list[Datagram | m.Message] = []
        while (msg := dec.next()) is not None:
            if isinstance(msg, m.UDPPacket):
                r = msg.r
                out.append(Datagram(msg.c, (f"{r.IP}%{r.Zone}" if r.Zone else r.IP, r.Port) if r else None))
            else:
                out.append(msg)
        return out

    def feed(self, data: bytes | bytearray | memoryview) -> list[Datagram | m.Message]:
        if self._v2 is not None:
            return self._feed_v2(self._v2, data)
        buf = self._buf
        buf += data
        out: list[Datagram | m.Message] = []
        pos = 0
        end = len(buf)
        hsize = m.HEADER_LENGTH
        try:
            while end - pos >= hsize:
                type_byte, length = _HEADER.unpack_from(buf, pos)
                if type_byte != _U or not 0 <= length <= m.MAX_MSG_LENGTH:
                    cls, length = m.decode_header(bytes(buf[pos : pos + hsize]))  # raises on a bad header
                else:
                    cls = m.UDPPacket
                stop = pos + hsize + length
                if stop > end:
                    break
                body = bytes(buf[pos + hsize : stop])
                pos = stop
                if cls is m.UDPPacket:
                    try:
                        msg = _decode_udp(body)
                    except msgspec.ValidationError:
                        msg = _decode_lenient(body)
                    except msgspec.DecodeError as exc:
                        raise ProtocolError(f"invalid JSON in UDPPacket message: {exc}") from None
                    r = msg.r
                    out.append(Datagram(msg.c, (f"{r.IP}%{r.Zone}" if r.Zone else r.IP, r.Port) if r else None))
                else:
                    out.append(m.decode_body(cls, body))
        finally:
            if pos:
                del buf[:pos]
        return out

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete frame."""
        return self._v2.buffered if self._v2 is not None else len(self._buf)
