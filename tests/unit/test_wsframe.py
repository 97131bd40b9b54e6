"""proto/wsframe.py: RFC 6455 frames to byte-stream events, checked against the frames the
``websockets`` library serializes: every split point of the input, masked and unmasked, big frames
delivered as they arrive, control frames inside fragmented messages, and every refusal with its
close code."""

from __future__ import annotations

import os
import struct

import pytest
from websockets.frames import Frame, Opcode

from aiofrp.proto.errors import ProtocolError
from aiofrp.proto.wsframe import (
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    Control,
    FrameError,
    FrameReader,
    apply_mask,
    frame_header,
)

MAX = 32 << 20


def _frame(opcode: Opcode, payload: bytes, *, fin: bool = True, mask: bool = True) -> bytes:
    return Frame(opcode, payload, fin).serialize(mask=mask)


def _stream(mask: bool) -> tuple[bytes, bytes, list[Control]]:
    """A stream of frames of every kind; (wire bytes, the byte stream it carries, its control frames)."""
    big = os.urandom(70_000)  # a 64-bit length
    mid = os.urandom(300)  # a 16-bit length
    wire = b"".join([
        _frame(Opcode.TEXT, b"\xff\xfe not UTF-8", mask=mask),
        _frame(Opcode.BINARY, big, mask=mask),
        _frame(Opcode.PING, b"p1", mask=mask),
        _frame(Opcode.BINARY, b"frag", fin=False, mask=mask),
        _frame(Opcode.PING, b"", mask=mask),  # control frames inside a fragmented message
        _frame(Opcode.CONT, mid, fin=False, mask=mask),
        _frame(Opcode.PONG, b"unsolicited", mask=mask),
        _frame(Opcode.CONT, b"", fin=False, mask=mask),
        _frame(Opcode.CONT, b"end", mask=mask),
        _frame(Opcode.BINARY, b"", mask=mask),
        _frame(Opcode.CLOSE, struct.pack("!H", 1000) + b"bye", mask=mask),
    ])
    controls = [Control(OP_PING, b"p1"), Control(OP_PING, b""), Control(OP_PONG, b"unsolicited"),
                Control(OP_CLOSE, struct.pack("!H", 1000) + b"bye")]
    return wire, b"\xff\xfe not UTF-8" + big + b"frag" + mid + b"end", controls


def _run(reader: FrameReader, pieces: list[bytes]) -> tuple[bytes, list[Control], list[int]]:
    """Feed ``pieces``: (the byte stream, the control frames, where in the stream each came)."""
    data = bytearray()
    controls: list[Control] = []
    at: list[int] = []
    for piece in pieces:
        for ev in reader.feed(piece):
            if isinstance(ev, Control):
                controls.append(ev)
                at.append(len(data))
            else:
                assert len(ev) > 0, "an empty payload is no event"
                data += ev
    return bytes(data), controls, at


@pytest.mark.parametrize("mask", [True, False], ids=["client-to-server", "server-to-client"])
def test_every_split_in_two(mask: bool) -> None:
    wire, expected, controls = _stream(mask)
    _, _, at = _run(FrameReader(masked=mask, max_size=MAX), [wire])
    # splits inside the big payload all look alike: every split around the headers, a sample inside
    heads = [i for i in range(len(wire)) if i < 200 or i > len(wire) - 400 or i % 997 == 0]
    for i in heads:
        reader = FrameReader(masked=mask, max_size=MAX)
        assert _run(reader, [wire[:i], wire[i:]]) == (expected, controls, at), i
        assert reader.closed


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7, 13, 14, 15, 4096, 65537])
@pytest.mark.parametrize("mask", [True, False], ids=["client-to-server", "server-to-client"])
def test_fixed_size_pieces(mask: bool, size: int) -> None:
    wire, expected, controls = _stream(mask)
    pieces = [wire[i:i + size] for i in range(0, len(wire), size)]
    data, got, _ = _run(FrameReader(masked=mask, max_size=MAX), pieces)
    assert data == expected and got == controls


def test_input_as_memoryview_and_bytearray() -> None:
    wire, expected, controls = _stream(True)
    for kind in (memoryview, bytearray):
        pieces = [kind(wire[i:i + 1000]) for i in range(0, len(wire), 1000)]
        data, got, _ = _run(FrameReader(masked=True, max_size=MAX), pieces)  # type: ignore[arg-type]
        assert data == expected and got == controls


def test_unmasked_payloads_are_not_copied() -> None:
    reader = FrameReader(masked=False)
    payload = os.urandom(5000)
    wire = _frame(Opcode.BINARY, payload, mask=False) * 2
    events = reader.feed(wire)
    assert len(events) == 2
    for ev in events:
        assert isinstance(ev, memoryview) and ev.obj is wire and bytes(ev) == payload
    # the middle of a big frame, a whole read of it: the input itself
    reader.feed(frame_header(OP_BINARY, 1 << 20, None))
    chunk = os.urandom(65536)
    [ev] = reader.feed(chunk)
    assert ev is chunk


def test_a_big_frame_is_delivered_as_it_arrives() -> None:
    reader = FrameReader(masked=True, max_size=MAX)
    mask = b"\x01\x02\x03\x04"
    payload = os.urandom(MAX)  # the largest frame allowed
    masked = apply_mask(payload, mask)
    assert reader.feed(frame_header(OP_BINARY, MAX, mask)) == []
    pos = 0
    for size in (1, 3, 1000, 65536, 5, MAX):  # odd sizes: the mask's phase moves
        piece = masked[pos:pos + size]
        events = reader.feed(piece)
        assert len(events) == 1 and bytes(events[0]) == payload[pos:pos + len(piece)]  # type: ignore[arg-type]
        pos += len(piece)
    assert pos == MAX and not reader.in_frame


def test_after_close_nothing_is_read() -> None:
    reader = FrameReader(masked=False)
    events = reader.feed(_frame(Opcode.BINARY, b"a", mask=False) + _frame(Opcode.CLOSE, b"", mask=False)
                         + _frame(Opcode.BINARY, b"after", mask=False))
    assert [bytes(e) if not isinstance(e, Control) else e for e in events] == [b"a", Control(OP_CLOSE, b"")]
    assert reader.closed
    assert reader.feed(b"\x82\x01x" + b"\xff" * 20) == []


def test_fragment_state() -> None:
    reader = FrameReader(masked=False)
    reader.feed(_frame(Opcode.TEXT, b"a", fin=False, mask=False))
    assert reader.in_message
    reader.feed(_frame(Opcode.CONT, b"b", mask=False))
    assert not reader.in_message
    reader.feed(b"\x82")
    assert reader.in_frame


BAD = [
    ("reserved bit", b"\xc2\x80" + bytes(4), True, 1002, "reserved bits must be 0"),
    ("reserved bit on a control frame", b"\x99\x80" + bytes(4), True, 1002, "reserved bits must be 0"),
    ("opcode 3", b"\x83\x80" + bytes(4), True, 1002, "invalid opcode"),
    ("opcode 0xb", b"\x8b\x80" + bytes(4), True, 1002, "invalid opcode"),
    ("unmasked to the server", b"\x82\x01x", True, 1002, "incorrect masking"),
    ("masked to the client", b"\x82\x81" + bytes(4) + b"x", False, 1002, "incorrect masking"),
    ("above the limit", b"\x82\xff" + struct.pack("!Q", MAX + 1) + bytes(4), True, 1009,
     f"frame with {MAX + 1} bytes exceeds limit of {MAX} bytes"),
    ("2^63 bytes", b"\x82\xff" + struct.pack("!Q", 1 << 63) + bytes(4), True, 1009, "exceeds limit"),
    ("control frame of 126 bytes", b"\x89\xfe\x00\x7e" + bytes(4), True, 1002, "control frame too long"),
    ("fragmented ping", b"\x09\x80" + bytes(4), True, 1002, "fragmented control frame"),
    ("continuation without a message", b"\x80\x80" + bytes(4), True, 1002, "unexpected continuation frame"),
    ("a message inside a message", b"\x02\x80" + bytes(4) + b"\x82\x80" + bytes(4), True, 1002,
     "expected a continuation frame"),
]


@pytest.mark.parametrize(("wire", "masked", "code", "reason"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_frames(wire: bytes, masked: bool, code: int, reason: str) -> None:
    good = Frame(Opcode.BINARY, b"before").serialize(mask=masked)
    for split in range(len(wire) + 1):  # found at the header, wherever the input is cut
        reader = FrameReader(masked=masked, max_size=MAX)
        before: list[bytes] = []
        with pytest.raises(FrameError) as info:
            for piece in (good + wire[:split], wire[split:]):
                before += [bytes(e) for e in reader.feed(piece) if not isinstance(e, Control)]
        exc = info.value
        assert isinstance(exc, ProtocolError) and exc.code == code and reason in str(exc)
        before += [bytes(e) for e in exc.events if not isinstance(e, Control)]
        assert before == [b"before"]  # what came before the bad frame is still handed out
        assert reader.closed and reader.feed(good) == []


def test_no_limit_without_max_size() -> None:
    reader = FrameReader(masked=False)
    assert reader.feed(b"\x82\x7f" + struct.pack("!Q", 1 << 40) + b"abc")[0] == b"abc"


@pytest.mark.parametrize("length", [0, 1, 125, 126, 65535, 65536, 70000])
@pytest.mark.parametrize("opcode", [Opcode.BINARY, Opcode.CLOSE, Opcode.PING, Opcode.PONG])
def test_frame_header_is_what_websockets_serializes(opcode: Opcode, length: int) -> None:
    if opcode is not Opcode.BINARY and length > 125:
        return
    payload = os.urandom(length)
    assert frame_header(opcode.value, length, None) + payload == Frame(opcode, payload).serialize(mask=False)
