"""Snappy framing format: our writer/reader, interop with cramjam's framed format."""

from __future__ import annotations

import itertools
import os
import struct

import cramjam
import google_crc32c
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiofrp.proto.errors import ProtocolError
from aiofrp.proto.snappy import MAX_BLOCK_SIZE, STREAM_IDENTIFIER, SnappyFrameReader, SnappyFrameWriter


def masked_crc(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def chunk(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + len(body).to_bytes(3, "little") + body


def data_chunk(kind: int, payload: bytes, crc: int | None = None) -> bytes:
    body = bytes(cramjam.snappy.compress_raw(payload)) if kind == 0 else payload
    return chunk(kind, struct.pack("<I", masked_crc(payload) if crc is None else crc) + body)


def parse_chunks(stream: bytes) -> list[tuple[int, bytes]]:
    """Split a framed stream into (type, body) pairs."""
    out = []
    pos = 0
    while pos < len(stream):
        kind = stream[pos]
        length = int.from_bytes(stream[pos + 1 : pos + 4], "little")
        out.append((kind, stream[pos + 4 : pos + 4 + length]))
        pos += 4 + length
    assert pos == len(stream)
    return out


def feed_all(reader: SnappyFrameReader, data: bytes, cuts: list[int]) -> bytes:
    points = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    return b"".join(reader.decompress(data[a:b]) for a, b in itertools.pairwise(points))


COMPRESSIBLE = b"GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\n" * 400
RANDOM = os.urandom(3000)

payloads = st.one_of(
    st.binary(max_size=2000),
    st.builds(lambda unit, n: unit * n, st.binary(min_size=1, max_size=16), st.integers(1, 8000)),
)


# -- writer --------------------------------------------------------------------------------------


def test_known_vector_matches_cramjam() -> None:
    assert SnappyFrameWriter().compress(b"ab") == bytes(cramjam.snappy.compress(b"ab"))
    assert bytes.fromhex("FF 06 00 00 73 4E 61 50 70 59") == STREAM_IDENTIFIER
    assert masked_crc(b"") == 0xA282EAD8


def test_stream_identifier_once() -> None:
    w = SnappyFrameWriter()
    assert w.compress(b"") == b""  # empty writes emit nothing, not even the identifier
    first = w.compress(b"hello")
    assert first.startswith(STREAM_IDENTIFIER)
    second = w.compress(b"hello")
    assert STREAM_IDENTIFIER not in second
    assert [k for k, _ in parse_chunks(first)] == [0xFF, 0x01]
    assert [k for k, _ in parse_chunks(second)] == [0x01]


def test_chunk_types_and_sizes() -> None:
    data = COMPRESSIBLE * 10 + os.urandom(90_000)  # > 3 chunks, compressible then incompressible
    out = SnappyFrameWriter().compress(data)
    chunks = parse_chunks(out)
    assert chunks[0] == (0xFF, b"sNaPpY")
    decoded = b""
    for kind, body in chunks[1:]:
        crc = struct.unpack("<I", body[:4])[0]
        raw = bytes(cramjam.snappy.decompress_raw(body[4:])) if kind == 0 else body[4:]
        assert kind in (0, 1)
        assert len(raw) <= MAX_BLOCK_SIZE
        assert crc == masked_crc(raw)
        if kind == 0:
            assert len(body) - 4 < len(raw) - len(raw) // 8  # compression saved at least 1/8
        decoded += raw
    assert decoded == data
    kinds = [k for k, _ in chunks[1:]]
    assert kinds[0] == 0 and kinds[-1] == 1
    assert len(chunks) - 1 == -(-len(data) // MAX_BLOCK_SIZE)


def test_writer_accepts_buffers() -> None:
    w = SnappyFrameWriter()
    out = w.compress(bytearray(COMPRESSIBLE)) + w.compress(memoryview(RANDOM)[10:])
    assert SnappyFrameReader().decompress(out) == COMPRESSIBLE + RANDOM[10:]


def test_large_write() -> None:
    data = (RANDOM + COMPRESSIBLE) * 20
    out = SnappyFrameWriter().compress(memoryview(data))
    assert SnappyFrameReader().decompress(out) == data
    assert bytes(cramjam.snappy.decompress(out)) == data


# -- reader --------------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(st.lists(payloads, max_size=6), st.lists(st.integers(min_value=0), max_size=10))
def test_round_trip_random_splits(writes: list[bytes], cuts: list[int]) -> None:
    w = SnappyFrameWriter()
    stream = b"".join(w.compress(x) for x in writes)
    assert feed_all(SnappyFrameReader(), stream, cuts) == b"".join(writes)


@settings(max_examples=50, deadline=None)
@given(st.lists(payloads, min_size=1, max_size=4), st.lists(st.integers(min_value=0), max_size=6))
def test_reads_cramjam_streams(writes: list[bytes], cuts: list[int]) -> None:
    # Concatenated complete framed streams: repeated stream identifiers are fine.
    stream = b"".join(bytes(cramjam.snappy.compress(x)) for x in writes)
    assert feed_all(SnappyFrameReader(), stream, cuts) == b"".join(writes)


@settings(max_examples=50, deadline=None)
@given(st.lists(payloads, max_size=4))
def test_cramjam_reads_ours(writes: list[bytes]) -> None:
    w = SnappyFrameWriter()
    stream = b"".join(w.compress(x) for x in writes)
    assert bytes(cramjam.snappy.decompress(stream)) == b"".join(writes)


def test_byte_by_byte() -> None:
    stream = SnappyFrameWriter().compress(COMPRESSIBLE + RANDOM[:100])
    r = SnappyFrameReader()
    got = b"".join(r.decompress(stream[i : i + 1]) for i in range(len(stream)))
    assert got == COMPRESSIBLE + RANDOM[:100]


def test_padding_and_skippable_chunks() -> None:
    stream = (
        STREAM_IDENTIFIER
        + chunk(0xFE, b"\x00" * 10)
        + data_chunk(0, COMPRESSIBLE)
        + chunk(0x80, b"skip me")
        + chunk(0xFD, b"")
        + data_chunk(1, b"raw")
        + chunk(0xFE, b"\x00" * 100_000)
        + data_chunk(1, b"end")
    )
    assert SnappyFrameReader().decompress(stream) == COMPRESSIBLE + b"rawend"
    assert feed_all(SnappyFrameReader(), stream, [20, 5000, 5010, 20_000, 60_000]) == COMPRESSIBLE + b"rawend"


def test_large_skippable_chunk_is_not_buffered() -> None:
    r = SnappyFrameReader()
    r.decompress(STREAM_IDENTIFIER + chunk(0x99, b"")[:1] + (1 << 23).to_bytes(3, "little"))
    for _ in range(128):
        assert r.decompress(b"\x00" * (1 << 16)) == b""
    assert r._buf == b""  # white-box: nothing is held back
    assert r.decompress(data_chunk(1, b"after")) == b"after"


def test_empty_data_chunks() -> None:
    stream = STREAM_IDENTIFIER + data_chunk(1, b"") + data_chunk(1, b"x")
    assert SnappyFrameReader().decompress(stream) == b"x"


# -- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stream", "match"),
    [
        (data_chunk(1, b"x"), "not the identifier"),
        (chunk(0xFE, b""), "not the identifier"),
        (STREAM_IDENTIFIER + data_chunk(1, b"abc", crc=1), "CRC"),
        (STREAM_IDENTIFIER + data_chunk(0, COMPRESSIBLE, crc=1), "CRC"),
        (STREAM_IDENTIFIER + chunk(0x02, b""), "reserved unskippable snappy chunk type 0x02"),
        (STREAM_IDENTIFIER + chunk(0x7F, b"abc"), "0x7f"),
        (chunk(0xFF, b"sNaPpZ"), "magic"),
        (chunk(0xFF, b"sNaPpY!"), "bad length 7"),
        (STREAM_IDENTIFIER + chunk(0x00, b"\x00" * 4), "bad length 4"),
        (STREAM_IDENTIFIER + chunk(0x01, b"\x00" * 3), "bad length 3"),
        (STREAM_IDENTIFIER + b"\x01" + (MAX_BLOCK_SIZE + 5).to_bytes(3, "little"), "bad length"),
        (STREAM_IDENTIFIER + b"\x00" + (80_000).to_bytes(3, "little"), "bad length"),
        (STREAM_IDENTIFIER + chunk(0x00, b"\x00" * 4 + b"\x05ab"), "corrupt snappy block"),
        (STREAM_IDENTIFIER + data_chunk(0, b"a" * (MAX_BLOCK_SIZE + 1)), "more than 65536"),
    ],
)
def test_errors(stream: bytes, match: str) -> None:
    r = SnappyFrameReader()
    with pytest.raises(ProtocolError, match=match):
        r.decompress(stream)
    with pytest.raises(ProtocolError, match="already failed"):
        r.decompress(b"")


def test_error_after_good_chunks_in_later_call() -> None:
    w = SnappyFrameWriter()
    good = w.compress(b"hello")
    r = SnappyFrameReader()
    assert r.decompress(good) == b"hello"
    bad = data_chunk(1, b"world", crc=0)
    assert r.decompress(bad[:6]) == b""
    with pytest.raises(ProtocolError, match="CRC"):
        r.decompress(bad[6:])


def test_length_limit_detected_from_header_alone() -> None:
    r = SnappyFrameReader()
    r.decompress(STREAM_IDENTIFIER)
    with pytest.raises(ProtocolError, match="bad length"):
        r.decompress(b"\x01\xff\xff\xff")  # 16 MiB uncompressed chunk: refused before its body


@settings(max_examples=300, deadline=None)
@given(st.lists(payloads | st.builds(lambda b, n: b * n, st.binary(min_size=1, max_size=64), st.integers(1024, 2200)),
                min_size=1, max_size=8))
def test_writer_is_byte_for_byte_cramjams_streaming_compressor(writes: list[bytes]) -> None:
    """Differential test (issue 9 measured both, docs/architecture.md): each write framed by our
    writer equals what cramjam's streaming Compressor flushes for it, stream identifier, chunk
    split, compressed-or-not choice and CRC included."""
    ours = SnappyFrameWriter()
    theirs = cramjam.snappy.Compressor()
    for data in writes:
        theirs.compress(data)
        assert ours.compress(data) == bytes(theirs.flush())
