"""Sans-I/O reading of RFC 6455 frames after the handshake: frp's websocket transport as a byte stream.

:meth:`FrameReader.feed` takes the bytes read from the connection and returns events: the payload
of data frames (text, binary, continuation: all the same byte stream for frp, never checked as
UTF-8) as ``memoryview``/``bytes`` slices of the input, without copying when the frame is not
masked, and the control frames (:class:`Control`: ping, pong, close) once they are complete. A
data frame's payload is handed out as it arrives (a frame split over several reads gives several
chunks), so a big frame is never buffered; a masked one (client to server) is unmasked chunk by
chunk, the mask's phase carried from one chunk to the next.

What the reader refuses (:class:`FrameError`, with the close code to answer with), as the
``websockets`` library did for us before: a frame above ``max_size`` (1009); reserved bits set,
an unknown opcode, a frame masked the wrong way (the server requires masked frames, the client
refuses them), a control frame above 125 bytes or fragmented, a continuation without a message to
continue or a new message inside a fragmented one (1002). Go's ``golang.org/x/net/websocket`` is
laxer (it checks only the masking; see docs/protocol.md §1.7); no Go frp sends any of these.

After a close frame the reader ignores everything (RFC 6455 §1.4); what to answer is the driver's
business (``net/websocket.py``), as is the pong to a ping.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - the pure-Python build of websockets
    from websockets.utils import apply_mask

from .errors import ProtocolError

__all__ = [
    "CLOSE_MESSAGE_TOO_BIG",
    "CLOSE_PROTOCOL_ERROR",
    "OP_BINARY",
    "OP_CLOSE",
    "OP_CONT",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "Control",
    "FrameError",
    "FrameReader",
    "Payload",
    "apply_mask",
    "frame_header",
]

OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA

CLOSE_PROTOCOL_ERROR = 1002
CLOSE_MESSAGE_TOO_BIG = 1009

MAX_CONTROL = 125  # bytes of a control frame's payload (RFC 6455 §5.5)

_U16 = struct.Struct("!H")
_U64 = struct.Struct("!Q")
_H16 = struct.Struct("!BBH")
_H64 = struct.Struct("!BBQ")

Payload = bytes | memoryview
"""A piece of the byte stream: a slice of the bytes fed in (unmasked frames) or fresh bytes."""


class Control(NamedTuple):
    """A complete control frame: ``opcode`` (:data:`OP_CLOSE`, :data:`OP_PING`, :data:`OP_PONG`)
    and its payload, unmasked."""

    opcode: int
    payload: bytes


class FrameError(ProtocolError):
    """The peer's frames broke RFC 6455; ``code``: the close code to fail the connection with,
    ``events``: what the same :meth:`FrameReader.feed` call read before the bad frame (still
    valid: deliver it before failing)."""

    def __init__(self, reason: str, code: int = CLOSE_PROTOCOL_ERROR) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.events: list[Payload | Control] = []


def frame_header(opcode: int, length: int, mask: bytes | None) -> bytes:
    """The header of a final frame of ``length`` payload bytes (followed by the 4-byte ``mask``
    when given, as a client must), as RFC 6455 §5.2 lays it out with the shortest length."""
    b0 = 0x80 | opcode
    m = 0x80 if mask is not None else 0
    if length < 126:
        head = bytes((b0, m | length))
    elif length < 65536:
        head = _H16.pack(b0, m | 126, length)
    else:
        head = _H64.pack(b0, m | 127, length)
    return head + mask if mask is not None else head


class FrameReader:
    """Frames to events, for one side of a connection.

    ``masked``: the peer must mask its frames (we are the server); a client's reader refuses
    masked frames. ``max_size``: the largest payload one frame may announce (None: no limit).
    """

    __slots__ = ("_ctrl", "_frag", "_head", "_left", "_mask", "_seen", "closed", "masked", "max_size")

    def __init__(self, *, masked: bool, max_size: int | None = None) -> None:
        self.masked = masked
        self.max_size = max_size
        self.closed = False
        """A close frame (the last event handed out) or a bad frame was read: what follows is
        ignored."""
        self._head = b""  # the start of a header that the last input ended in
        self._left = 0  # payload bytes of the current frame still to come
        self._mask: bytes | None = None  # the current frame's mask
        self._seen = 0  # payload bytes of the current (masked) frame already read: the mask's phase
        self._ctrl: bytearray | None = None  # the current control frame's payload (opcode first)
        self._frag = False  # inside a fragmented message: only continuations (and control frames)

    @property
    def in_message(self) -> bool:
        """A fragmented message was begun and not finished."""
        return self._frag

    @property
    def in_frame(self) -> bool:
        """Part of a frame was read and the rest is still to come."""
        return bool(self._head or self._left or self._ctrl is not None)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Payload | Control]:
        """The events in ``data``, in order; raises :class:`FrameError` at a bad frame (with the
        events before it). Data payloads may be views of ``data``: don't modify it afterwards."""
        out: list[Payload | Control] = []
        if self.closed:
            return out
        end = len(data)
        pos = 0
        view: memoryview | None = None
        while True:
            left = self._left
            if left:
                if pos >= end:
                    break
                take = min(end - pos, left)
                chunk: Payload
                if pos == 0 and take == end and type(data) is bytes:
                    chunk = data
                else:
                    if view is None:
                        view = memoryview(data)
                    chunk = view[pos:pos + take]
                mask = self._mask
                if mask is not None:
                    phase = self._seen & 3
                    chunk = apply_mask(chunk, mask[phase:] + mask[:phase] if phase else mask)
                    self._seen += take
                pos += take
                self._left = left - take
                ctrl = self._ctrl
                if ctrl is None:
                    out.append(chunk)
                    continue
                ctrl += chunk
                if self._left:
                    break
                self._control(ctrl, out)
                if self.closed:
                    break
                continue
            # a frame header
            if pos >= end:
                break
            head = self._head
            buf: bytes | bytearray | memoryview
            if head:  # the last input ended inside this header: at most 14 bytes are copied
                buf = head + bytes(data[pos:pos + 14 - len(head)])
                start, avail = 0, len(buf)
            else:
                buf, start, avail = data, pos, end - pos
            if avail < 2:
                self._head = bytes(buf[start:start + avail])
                break
            b0 = buf[start]
            b1 = buf[start + 1]
            n = b1 & 0x7F
            size = 2 + (2 if n == 126 else 8 if n == 127 else 0) + (4 if b1 & 0x80 else 0)
            if avail < size:  # (with a head: all of data went into buf)
                self._head = bytes(buf[start:start + avail])
                break
            if n == 126:
                n = _U16.unpack_from(buf, start + 2)[0]
            elif n == 127:
                n = _U64.unpack_from(buf, start + 2)[0]
            mask = bytes(buf[start + size - 4:start + size]) if b1 & 0x80 else None
            pos += size - len(head)
            self._head = b""
            self._frame(b0, n, mask, out)
            if self.closed:
                break
        return out

    def _frame(self, b0: int, length: int, mask: bytes | None, out: list[Payload | Control]) -> None:
        """A header was read: check it and set up the reading of its payload."""
        opcode = b0 & 0x0F
        try:
            # in the order websockets checked them, for the same close reason
            if opcode > OP_BINARY and opcode not in (OP_CLOSE, OP_PING, OP_PONG):
                raise FrameError("invalid opcode")
            if (mask is not None) != self.masked:
                raise FrameError("incorrect masking")
            if self.max_size is not None and length > self.max_size:
                raise FrameError(f"frame with {length} bytes exceeds limit of {self.max_size} bytes",
                                 CLOSE_MESSAGE_TOO_BIG)
            if b0 & 0x70:
                raise FrameError("reserved bits must be 0")
            if opcode >= OP_CLOSE:
                if length > MAX_CONTROL:
                    raise FrameError("control frame too long")
                if not b0 & 0x80:
                    raise FrameError("fragmented control frame")
            elif opcode == OP_CONT:
                if not self._frag:
                    raise FrameError("unexpected continuation frame")
                self._frag = not b0 & 0x80
            else:
                if self._frag:
                    raise FrameError("expected a continuation frame")
                self._frag = not b0 & 0x80
        except FrameError as exc:
            exc.events = out
            self.closed = True  # nothing more is read
            raise
        self._mask = mask
        self._seen = 0
        self._left = length
        if opcode >= OP_CLOSE:
            ctrl = bytearray((opcode,))
            if length:
                self._ctrl = ctrl
            else:
                self._control(ctrl, out)
        else:
            self._ctrl = None

    def _control(self, ctrl: bytearray, out: list[Payload | Control]) -> None:
        self._ctrl = None
        opcode = ctrl[0]
        out.append(Control(opcode, bytes(ctrl[1:])))
        if opcode == OP_CLOSE:
            self.closed = True
