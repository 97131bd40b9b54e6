"""The virtual network's framing and packet addresses (Go's ``pkg/vnet/message.go``), sans I/O.

Over a virtual_net connection (an stcp/xtcp visitor connection, or a proxy's work connection)
every IP packet travels as one message: a 4-byte little-endian length, then that many bytes. A
length of 0 or above :data:`MAX_MESSAGE` is a protocol error that ends the connection (Go's
``ReadMessage``). Which connection a packet takes is chosen from its IPv4 or IPv6 addresses
(:func:`packet_addrs`).
"""

from __future__ import annotations

import struct

__all__ = ["MAX_MESSAGE", "MessageReader", "VnetFrameError", "frame", "packet_addrs"]

MAX_MESSAGE = 1 << 20  # Go's maxMessageSize

_LEN = struct.Struct("<I")


class VnetFrameError(ValueError):
    """A message that cannot be (length 0, or longer than :data:`MAX_MESSAGE`)."""


def frame(packet: bytes | bytearray | memoryview) -> bytes:
    """One packet as a message: its length (4 bytes, little-endian), then the packet."""
    n = len(packet)
    if n == 0:
        raise VnetFrameError("message data length is 0")
    if n > MAX_MESSAGE:
        raise VnetFrameError(f"message too large: {n} > {MAX_MESSAGE}")
    return _LEN.pack(n) + bytes(packet)


class MessageReader:
    """Cuts a byte stream into messages: :meth:`feed` returns the packets completed so far and
    keeps the rest; a bad length raises :class:`VnetFrameError` (the stream cannot be resynced)."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        buf = self._buf
        buf += data
        out: list[bytes] = []
        pos = 0
        end = len(buf)
        while end - pos >= 4:
            (n,) = _LEN.unpack_from(buf, pos)
            if n == 0:
                raise VnetFrameError("message length is 0")
            if n > MAX_MESSAGE:
                raise VnetFrameError(f"message too large: {n} > {MAX_MESSAGE}")
            if end - pos - 4 < n:
                break
            out.append(bytes(buf[pos + 4:pos + 4 + n]))
            pos += 4 + n
        if pos:
            del buf[:pos]
        return out

    @property
    def pending(self) -> int:
        """Bytes of an incomplete message held."""
        return len(self._buf)


def packet_addrs(packet: bytes) -> tuple[bytes, bytes] | None:
    """(source, destination) of an IPv4 or IPv6 packet, as 4- or 16-byte addresses; None for
    anything else (Go discards those): a version other than 4 or 6, or a header cut short (an IPv4
    header length below 20 bytes or beyond the packet, as ``ipv4.ParseHeader`` checks)."""
    if not packet:
        return None
    version = packet[0] >> 4
    if version == 4:
        ihl = (packet[0] & 0x0F) * 4
        if ihl < 20 or len(packet) < ihl:
            return None
        return packet[12:16], packet[16:20]
    if version == 6:
        if len(packet) < 40:
            return None
        return packet[8:24], packet[24:40]
    return None
