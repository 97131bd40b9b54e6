"""Sans-I/O STUN codec: just enough of RFC 5389 / RFC 5780 (and RFC 3489's legacy attributes)
for frp's NAT discovery.

A message is a 20-byte header (type, attribute length, magic cookie, 96-bit transaction id)
followed by TLV attributes padded to 4 bytes. frp only uses Binding: a request, optionally with
CHANGE-REQUEST, answered with the mapped address (XOR-MAPPED-ADDRESS, MAPPED-ADDRESS) and the
server's alternate address (OTHER-ADDRESS, or RFC 3489's CHANGED-ADDRESS).
"""

from __future__ import annotations

import ipaddress
import os
import struct
import zlib
from dataclasses import dataclass, field

from .errors import ProtocolError

__all__ = [
    "ATTR_CHANGED_ADDRESS",
    "ATTR_CHANGE_REQUEST",
    "ATTR_FINGERPRINT",
    "ATTR_MAPPED_ADDRESS",
    "ATTR_OTHER_ADDRESS",
    "ATTR_RESPONSE_ORIGIN",
    "ATTR_SOFTWARE",
    "ATTR_XOR_MAPPED_ADDRESS",
    "BINDING_ERROR",
    "BINDING_REQUEST",
    "BINDING_SUCCESS",
    "CHANGE_IP",
    "CHANGE_PORT",
    "MAGIC_COOKIE",
    "BindingResponse",
    "StunError",
    "StunMessage",
    "binding_request",
    "binding_response",
    "decode_address",
    "encode_address",
    "parse",
    "parse_binding_response",
]

MAGIC_COOKIE = 0x2112A442
HEADER = struct.Struct(">HHI12s")
HEADER_SIZE = 20
FINGERPRINT_XOR = 0x5354554E

BINDING_REQUEST = 0x0001
BINDING_SUCCESS = 0x0101
BINDING_ERROR = 0x0111

ATTR_MAPPED_ADDRESS = 0x0001
ATTR_CHANGE_REQUEST = 0x0003
ATTR_SOURCE_ADDRESS = 0x0004  # RFC 3489
ATTR_CHANGED_ADDRESS = 0x0005  # RFC 3489
ATTR_ERROR_CODE = 0x0009
ATTR_XOR_MAPPED_ADDRESS = 0x0020
ATTR_SOFTWARE = 0x8022
ATTR_FINGERPRINT = 0x8028
ATTR_RESPONSE_ORIGIN = 0x802B  # RFC 5780
ATTR_OTHER_ADDRESS = 0x802C  # RFC 5780

CHANGE_IP = 0x04
CHANGE_PORT = 0x02

FAMILY_IPV4 = 0x01
FAMILY_IPV6 = 0x02

Address = tuple[str, int]


class StunError(ProtocolError):
    """Bytes that are not a well-formed STUN message (or not the expected one)."""


@dataclass(slots=True)
class StunMessage:
    msg_type: int
    transaction_id: bytes
    attributes: list[tuple[int, bytes]] = field(default_factory=list)

    def get(self, attr_type: int) -> bytes | None:
        """Value of the first attribute of this type (RFC 5389: later duplicates are ignored)."""
        for t, v in self.attributes:
            if t == attr_type:
                return v
        return None

    def address(self, attr_type: int) -> Address | None:
        """A decoded address attribute (XOR-decoded for XOR-MAPPED-ADDRESS), or None if absent."""
        value = self.get(attr_type)
        if value is None:
            return None
        return decode_address(value, self.transaction_id if attr_type == ATTR_XOR_MAPPED_ADDRESS else None)

    def change_flags(self) -> int:
        """CHANGE-REQUEST flags (CHANGE_IP | CHANGE_PORT), 0 if absent."""
        value = self.get(ATTR_CHANGE_REQUEST)
        if value is None:
            return 0
        if len(value) != 4:
            raise StunError(f"CHANGE-REQUEST must be 4 bytes, got {len(value)}")
        flags: int = struct.unpack(">I", value)[0]
        return flags & (CHANGE_IP | CHANGE_PORT)

    def encode(self, *, fingerprint: bool = False) -> bytes:
        body = bytearray()
        for t, v in self.attributes:
            body += struct.pack(">HH", t, len(v)) + v + b"\x00" * (-len(v) % 4)
        if not fingerprint:
            return HEADER.pack(self.msg_type, len(body), MAGIC_COOKIE, self.transaction_id) + body
        head = HEADER.pack(self.msg_type, len(body) + 8, MAGIC_COOKIE, self.transaction_id)
        crc = zlib.crc32(head + body) ^ FINGERPRINT_XOR
        return head + body + struct.pack(">HHI", ATTR_FINGERPRINT, 4, crc)


def parse(data: bytes | bytearray | memoryview) -> StunMessage:
    """Decode one STUN message; raise StunError when it is not one (RFC 5389 §7.3)."""
    data = bytes(data)
    if len(data) < HEADER_SIZE:
        raise StunError(f"STUN message needs {HEADER_SIZE} bytes, got {len(data)}")
    msg_type, length, cookie, tid = HEADER.unpack_from(data)
    if msg_type & 0xC000:
        raise StunError(f"first two bits of a STUN message must be zero (type 0x{msg_type:04x})")
    if cookie != MAGIC_COOKIE:
        raise StunError(f"bad magic cookie 0x{cookie:08x}")
    if length % 4 or HEADER_SIZE + length != len(data):
        raise StunError(f"attribute length {length} does not match the {len(data)}-byte datagram")
    attrs: list[tuple[int, bytes]] = []
    pos = HEADER_SIZE
    while pos < len(data):
        if pos + 4 > len(data):
            raise StunError(f"truncated attribute header at offset {pos}")
        t, n = struct.unpack_from(">HH", data, pos)
        start = pos + 4
        end = start + n
        if end > len(data):
            raise StunError(f"attribute 0x{t:04x} of {n} bytes overruns the message at offset {pos}")
        value = data[start:end]
        if t == ATTR_FINGERPRINT:
            if n != 4 or end != len(data):
                raise StunError("FINGERPRINT must be the last attribute and 4 bytes long")
            want = zlib.crc32(data[:pos]) ^ FINGERPRINT_XOR
            if struct.unpack(">I", value)[0] != want:
                raise StunError("FINGERPRINT mismatch")
        attrs.append((t, value))
        pos = end + (-n % 4)
    return StunMessage(msg_type, tid, attrs)


def encode_address(addr: Address, transaction_id: bytes | None = None) -> bytes:
    """MAPPED-ADDRESS-style value; XOR-encoded (XOR-MAPPED-ADDRESS) when a transaction id is given."""
    ip = ipaddress.ip_address(addr[0])
    port = addr[1]
    raw = ip.packed
    family = FAMILY_IPV4 if ip.version == 4 else FAMILY_IPV6
    if transaction_id is not None:
        port ^= MAGIC_COOKIE >> 16
        mask = struct.pack(">I", MAGIC_COOKIE) + transaction_id
        raw = bytes(a ^ b for a, b in zip(raw, mask, strict=False))
    return struct.pack(">BBH", 0, family, port) + raw


def decode_address(value: bytes, transaction_id: bytes | None = None) -> Address:
    """Inverse of :func:`encode_address`."""
    if len(value) < 4:
        raise StunError(f"address attribute of {len(value)} bytes is too short")
    _, family, port = struct.unpack_from(">BBH", value)
    raw = value[4:]
    if (family, len(raw)) not in ((FAMILY_IPV4, 4), (FAMILY_IPV6, 16)):
        raise StunError(f"bad address family {family} with {len(raw)} address bytes")
    if transaction_id is not None:
        port ^= MAGIC_COOKIE >> 16
        mask = struct.pack(">I", MAGIC_COOKIE) + transaction_id
        raw = bytes(a ^ b for a, b in zip(raw, mask, strict=False))
    return str(ipaddress.ip_address(raw)), port


def new_transaction_id() -> bytes:
    return os.urandom(12)


def binding_request(
    transaction_id: bytes | None = None, *, change_ip: bool = False, change_port: bool = False,
    fingerprint: bool = False,
) -> StunMessage:
    """A Binding request (encode with ``.encode()``); CHANGE-REQUEST only when a flag is set."""
    msg = StunMessage(BINDING_REQUEST, transaction_id or new_transaction_id())
    flags = (CHANGE_IP if change_ip else 0) | (CHANGE_PORT if change_port else 0)
    if flags:
        msg.attributes.append((ATTR_CHANGE_REQUEST, struct.pack(">I", flags)))
    return msg


def binding_response(
    request: StunMessage, mapped: Address, *, other: Address | None = None, origin: Address | None = None,
    software: str = "", legacy: bool = True,
) -> StunMessage:
    """A Binding success response to ``request``.

    Carries XOR-MAPPED-ADDRESS, and with ``legacy`` also RFC 3489's MAPPED-ADDRESS /
    CHANGED-ADDRESS / SOURCE-ADDRESS next to RESPONSE-ORIGIN / OTHER-ADDRESS.
    """
    tid = request.transaction_id
    attrs: list[tuple[int, bytes]] = [(ATTR_XOR_MAPPED_ADDRESS, encode_address(mapped, tid))]
    if legacy:
        attrs.append((ATTR_MAPPED_ADDRESS, encode_address(mapped)))
    if origin is not None:
        attrs.append((ATTR_RESPONSE_ORIGIN, encode_address(origin)))
        if legacy:
            attrs.append((ATTR_SOURCE_ADDRESS, encode_address(origin)))
    if other is not None:
        attrs.append((ATTR_OTHER_ADDRESS, encode_address(other)))
        if legacy:
            attrs.append((ATTR_CHANGED_ADDRESS, encode_address(other)))
    if software:
        attrs.append((ATTR_SOFTWARE, software.encode()))
    return StunMessage(BINDING_SUCCESS, tid, attrs)


@dataclass(slots=True)
class BindingResponse:
    """What a Binding success response tells the client."""

    transaction_id: bytes
    mapped: Address | None
    """XOR-MAPPED-ADDRESS, else MAPPED-ADDRESS."""
    other: Address | None
    """OTHER-ADDRESS, else CHANGED-ADDRESS: where the server answers from its alternate IP/port."""
    origin: Address | None
    """RESPONSE-ORIGIN, else SOURCE-ADDRESS."""


def parse_binding_response(data: bytes | bytearray | memoryview) -> BindingResponse:
    """Decode a Binding response; raise StunError for anything else or an error response."""
    msg = parse(data)
    if msg.msg_type == BINDING_ERROR:
        raise StunError("STUN server answered with a Binding error response")
    if msg.msg_type != BINDING_SUCCESS:
        raise StunError(f"not a Binding success response (type 0x{msg.msg_type:04x})")
    return BindingResponse(
        transaction_id=msg.transaction_id,
        mapped=msg.address(ATTR_XOR_MAPPED_ADDRESS) or msg.address(ATTR_MAPPED_ADDRESS),
        other=msg.address(ATTR_OTHER_ADDRESS) or msg.address(ATTR_CHANGED_ADDRESS),
        origin=msg.address(ATTR_RESPONSE_ORIGIN) or msg.address(ATTR_SOURCE_ADDRESS),
    )
