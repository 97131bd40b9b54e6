"""Snappy framing format, as golang/snappy's non-buffered Writer and Reader speak it.

A stream starts with the stream identifier chunk; every chunk is a type byte, a 3-byte
little-endian length, and for data chunks a masked CRC-32C (little-endian) of the uncompressed
bytes followed by a snappy block (type 0x00) or the bytes themselves (type 0x01).
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

from aiofrp.proto.errors import ProtocolError

__all__ = ["MAX_BLOCK_SIZE", "STREAM_IDENTIFIER", "SnappyFrameReader", "SnappyFrameWriter"]

STREAM_IDENTIFIER = b"\xff\x06\x00\x00sNaPpY"
MAX_BLOCK_SIZE = 65536  # uncompressed bytes per chunk
_MAX_COMPRESSED_BLOCK = 32 + MAX_BLOCK_SIZE + MAX_BLOCK_SIZE // 6  # snappy's MaxEncodedLen(65536)

_COMPRESSED = 0x00
_UNCOMPRESSED = 0x01
_IDENTIFIER = 0xFF
_MAGIC_BODY = b"sNaPpY"

_U32 = struct.Struct("<I")
_CHUNK_HEADER = struct.Struct("<II")  # (length << 8 | type, masked crc)

if TYPE_CHECKING:
    import cramjam

# cramjam and google_crc32c (3-4 MB resident) are loaded with the first compressed stream
# (transport.useCompression), not when frps/frpc start: see _load().
_crc32c: Any = None  # google_crc32c.value: needs bytes, not other buffers
_compress_raw: Any = None
_decompress_raw: Any = None
_decompressed_len: Any = None
_DecompressionError: type[Exception] = Exception

Buffer = bytes | bytearray | memoryview


def _load() -> None:
    global _crc32c, _compress_raw, _decompress_raw, _decompressed_len, _DecompressionError
    if _crc32c is not None:
        return
    import cramjam
    import google_crc32c

    _compress_raw = cramjam.snappy.compress_raw
    _decompress_raw = cramjam.snappy.decompress_raw
    _decompressed_len = cramjam.snappy.decompress_raw_len
    _DecompressionError = cramjam.DecompressionError
    _crc32c = google_crc32c.value


def _masked_crc(data: bytes) -> int:
    crc: int = _crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


class SnappyFrameWriter:
    """Compress a byte stream: one call produces the chunks for one write."""

    __slots__ = ("_started",)

    def __init__(self) -> None:
        _load()
        self._started = False

    def compress(self, data: Buffer) -> bytes:
        """Return the framed chunks for ``data`` (preceded by the stream identifier at first)."""
        if not data:
            return b""
        parts: list[bytes | cramjam.Buffer] = []
        if not self._started:
            self._started = True
            parts.append(STREAM_IDENTIFIER)
        if type(data) is not bytes:
            data = memoryview(data).cast("B")
        size = len(data)
        if size <= MAX_BLOCK_SIZE:
            self._chunk(data if type(data) is bytes else bytes(data), parts)
        else:
            view = memoryview(data)
            for start in range(0, size, MAX_BLOCK_SIZE):
                self._chunk(bytes(view[start : start + MAX_BLOCK_SIZE]), parts)
        return b"".join(parts)

    @staticmethod
    def _chunk(block: bytes, parts: list[bytes | cramjam.Buffer]) -> None:
        crc = _masked_crc(block)
        size = len(block)
        compressed = _compress_raw(block)
        if len(compressed) >= size - size // 8:  # saves less than 1/8: send as is, like Go
            parts.append(_CHUNK_HEADER.pack(_UNCOMPRESSED | (size + 4) << 8, crc))
            parts.append(block)
        else:
            parts.append(_CHUNK_HEADER.pack(_COMPRESSED | (len(compressed) + 4) << 8, crc))
            parts.append(compressed)


class SnappyFrameReader:
    """Decompress a framed stream fed in arbitrary pieces."""

    __slots__ = ("_buf", "_error", "_need", "_skip", "_started")

    def __init__(self) -> None:
        _load()
        self._buf = bytearray()  # an incomplete chunk carried over to the next call
        self._need = 0  # bytes the carried-over chunk needs in total
        self._skip = 0  # bytes of a skippable chunk still to be discarded
        self._started = False
        self._error: ProtocolError | None = None

    def decompress(self, data: Buffer) -> bytes:
        """Return the uncompressed bytes of every chunk completed by ``data``."""
        if self._error is not None:
            raise ProtocolError(f"snappy stream already failed: {self._error}")
        if self._skip:
            if len(data) <= self._skip:
                self._skip -= len(data)
                return b""
            data = memoryview(data)[self._skip :]
            self._skip = 0
        buf = self._buf
        if buf:
            buf += data
            if len(buf) < self._need:
                return b""
            src: Buffer = buf
        else:
            src = data
        out: list[bytes] = []
        try:
            with memoryview(src) as view:
                pos = self._parse(view.cast("B") if view.format != "B" else view, out)
                if src is not buf:
                    buf += view[pos:]
        except ProtocolError as exc:
            self._error = exc
            raise
        if src is buf:
            del buf[:pos]  # O(1) for the front of a bytearray
        if len(out) == 1:
            return out[0]
        return b"".join(out)

    def _parse(self, view: memoryview, out: list[bytes]) -> int:
        """Consume the complete chunks in ``view``; return the number of bytes consumed."""
        size = len(view)
        pos = 0
        self._need = 0
        while size - pos >= 4:
            header = _U32.unpack_from(view, pos)[0]
            kind = header & 0xFF
            length = header >> 8
            if not self._started and kind != _IDENTIFIER:
                raise ProtocolError(f"snappy stream starts with chunk type 0x{kind:02x}, not the identifier")
            if kind == _COMPRESSED:
                if not 4 < length <= 4 + _MAX_COMPRESSED_BLOCK:
                    raise ProtocolError(f"snappy compressed chunk with bad length {length}")
            elif kind == _UNCOMPRESSED:
                if not 4 <= length <= 4 + MAX_BLOCK_SIZE:
                    raise ProtocolError(f"snappy uncompressed chunk with bad length {length}")
            elif kind == _IDENTIFIER:
                if length != len(_MAGIC_BODY):
                    raise ProtocolError(f"snappy stream identifier with bad length {length}")
            elif kind < 0x80:
                raise ProtocolError(f"reserved unskippable snappy chunk type 0x{kind:02x}")
            else:  # padding (0xfe) or skippable (0x80-0xfd): discard without buffering
                available = size - pos - 4
                if available < length:
                    self._skip = length - available
                    return size
                pos += 4 + length
                continue
            end = pos + 4 + length
            if end > size:
                self._need = end - pos
                break
            if kind == _IDENTIFIER:
                if view[pos + 4 : end] != _MAGIC_BODY:
                    raise ProtocolError("snappy stream identifier with bad magic")
                self._started = True
            else:
                expected = _U32.unpack_from(view, pos + 4)[0]
                body = view[pos + 8 : end]
                if kind == _COMPRESSED:
                    data = self._decompress_block(body)
                else:
                    data = bytes(body)
                del body
                if _masked_crc(data) != expected:
                    raise ProtocolError("snappy chunk CRC-32C mismatch")
                if data:
                    out.append(data)
            pos = end
        return pos

    @staticmethod
    def _decompress_block(body: memoryview) -> bytes:
        try:
            if _decompressed_len(body) > MAX_BLOCK_SIZE:
                raise ProtocolError(f"snappy block decodes to more than {MAX_BLOCK_SIZE} bytes")
            return bytes(_decompress_raw(body))
        except _DecompressionError as exc:
            raise ProtocolError(f"corrupt snappy block: {exc}") from None
