"""The sans-I/O UDP packet stream (proto/udp.py): UDPPacket/Ping frames on a byte stream."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiofrp.net.relay import work_conn_codecs
from aiofrp.proto import msg as m
from aiofrp.proto.errors import ProtocolError
from aiofrp.proto.udp import (
    Datagram,
    PacketEncoder,
    PacketReader,
    PacketTooLarge,
    addr_from_wire,
    addr_to_wire,
    max_datagram_size,
)

ipv4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
ipv6 = st.lists(st.integers(0, 0xFFFF), min_size=8, max_size=8).map(lambda g: ":".join(f"{x:x}" for x in g))
hosts = st.one_of(ipv4, ipv6, ipv6.map(lambda h: h + "%eth0"))
addrs = st.tuples(hosts, st.integers(0, 65535))
datagrams = st.binary(max_size=1500)


def chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, last = [], 0
    for p in [*points, len(data)]:
        out.append(data[last:p])
        last = p
    return out


# -- encoding ------------------------------------------------------------------------------------


def test_frame_layout() -> None:
    frame = PacketEncoder().packet(b"hi", ("1.2.3.4", 5678))
    assert frame[:1] == b"u"
    assert int.from_bytes(frame[1:9], "big") == len(frame) - 9
    assert json.loads(frame[9:]) == {"c": "aGk=", "r": {"IP": "1.2.3.4", "Port": 5678, "Zone": ""}}
    assert PacketEncoder.ping() == b"h" + (2).to_bytes(8, "big") + b"{}"


@given(datagrams, addrs)
def test_encoder_matches_msg_codec(data: bytes, addr: tuple[str, int]) -> None:
    """The fast path writes byte for byte what the generic codec writes (= what Go writes)."""
    assert PacketEncoder().packet(data, addr) == m.encode(m.UDPPacket(c=data, r=addr_to_wire(addr)))


@given(addrs)
def test_addr_round_trip(addr: tuple[str, int]) -> None:
    assert addr_from_wire(addr_to_wire(addr)) == addr


def test_addr_forms() -> None:
    assert addr_to_wire(("::ffff:10.0.0.1", 53, 0, 0)) == m.UDPAddr("10.0.0.1", 53, "")
    assert addr_to_wire(("fe80::1%eth0", 9)) == m.UDPAddr("fe80::1", 9, "eth0")
    assert addr_from_wire(None) is None


def test_too_large() -> None:
    enc = PacketEncoder()
    limit = max_datagram_size(("127.0.0.1", 1))
    assert limit >= 7000  # any sane udpPacketSize fits
    assert len(enc.packet(b"\0" * limit, ("127.0.0.1", 1))) <= m.MAX_MSG_LENGTH + m.HEADER_LENGTH
    with pytest.raises(PacketTooLarge):
        enc.packet(b"\0" * (limit + 3), ("127.0.0.1", 1))


# -- decoding ------------------------------------------------------------------------------------


@settings(max_examples=200)
@given(st.lists(st.one_of(st.tuples(datagrams, addrs), st.none()), max_size=20),
       st.lists(st.integers(0, 1 << 20), max_size=12))
def test_round_trip_any_split(items: list[tuple[bytes, tuple[str, int]] | None], cuts: list[int]) -> None:
    """Packets and pings survive any chunking of the stream, in order."""
    enc = PacketEncoder()
    stream = b"".join(enc.ping() if it is None else enc.packet(*it) for it in items)
    reader = PacketReader()
    events = []
    for part in chunks(stream, cuts):
        events += reader.feed(part)
    assert reader.buffered == 0
    expected = [m.Ping() if it is None else Datagram(*it) for it in items]
    assert events == expected


@settings(max_examples=50)
@given(st.lists(st.tuples(datagrams, addrs), min_size=1, max_size=10), st.booleans(), st.booleans(),
       st.lists(st.integers(0, 1 << 20), max_size=6))
def test_through_encryption_and_compression(items, encrypt: bool, compress: bool, cuts: list[int]) -> None:
    """The packet stream on top of the work-conn codecs (§4.2), written in several writes."""
    key = b"k" * 16 if encrypt else None
    encode, _ = work_conn_codecs(key, compress)
    _, decode = work_conn_codecs(key, compress)
    enc = PacketEncoder()
    wire = b"".join((encode or bytes)(enc.packet(d, a)) for d, a in items)
    reader = PacketReader()
    events = []
    for part in chunks(wire, cuts):
        plain = decode(part) if decode else part
        events += reader.feed(plain)
    assert events == [Datagram(d, a) for d, a in items]


def test_go_json_variants() -> None:
    """What Go may send: case-insensitive keys, an explicit null "l", no "r", other messages."""
    reader = PacketReader()
    body = b'{"C":"aGk=","L":null,"R":{"ip":"10.0.0.1","port":53,"zone":""}}'
    frame = b"u" + len(body).to_bytes(8, "big") + body
    assert reader.feed(frame) == [Datagram(b"hi", ("10.0.0.1", 53))]
    assert reader.feed(m.encode(m.UDPPacket(c=b"x"))) == [Datagram(b"x", None)]
    assert reader.feed(m.encode(m.Pong())) == [m.Pong()]


@pytest.mark.parametrize(
    "frame",
    [
        b"Z" + (2).to_bytes(8, "big") + b"{}",  # unknown type byte
        b"u" + (20000).to_bytes(8, "big"),  # longer than the message limit
        b"u" + (-1).to_bytes(8, "big", signed=True),
        b"u" + (6).to_bytes(8, "big") + b'{"c":1',  # broken JSON
        b"u" + (10).to_bytes(8, "big") + b'{"c":"!!"}',  # bad base64
    ],
)
def test_bad_frames(frame: bytes) -> None:
    with pytest.raises(ProtocolError):
        PacketReader().feed(frame)


def test_partial_header_waits() -> None:
    reader = PacketReader()
    frame = PacketEncoder().packet(b"abc", ("127.0.0.1", 1))
    assert reader.feed(frame[:5]) == []
    assert reader.buffered == 5
    assert reader.feed(frame[5:] + frame[:1]) == [Datagram(b"abc", ("127.0.0.1", 1))]
    assert reader.buffered == 1


def test_base64_is_standard_with_padding() -> None:
    data = bytes(range(256))
    frame = PacketEncoder().packet(data, ("127.0.0.1", 1))
    assert json.loads(frame[9:])["c"] == base64.b64encode(data).decode()
