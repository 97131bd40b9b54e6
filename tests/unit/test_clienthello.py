"""SNI extraction from TLS ClientHellos (aiofrp.proto.tls_hello), with real hellos from OpenSSL."""

from __future__ import annotations

import ssl
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiofrp.proto.tls_hello import (
    ALERT_UNRECOGNIZED_NAME,
    ClientHelloParser,
    TLSHelloError,
    parse_client_hello,
)


def real_hello(server_name: str | None, *, tls12_only: bool = False, alpn: list[str] | None = None) -> bytes:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if tls12_only:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if alpn:
        ctx.set_alpn_protocols(alpn)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_side=False, server_hostname=server_name)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


@pytest.mark.parametrize("name", ["example.com", "A.Sub.Example.COM", "x" * 60 + ".test"])
def test_real_client_hello_sni(name: str):
    data = real_hello(name, alpn=["h2", "http/1.1"])
    hello = parse_client_hello(data)
    assert hello is not None
    assert hello.server_name == name  # the vhost lower-cases it for routing
    assert hello.length == len(data)


def test_tls12_hello_and_no_sni():
    assert parse_client_hello(real_hello("tls12.example", tls12_only=True)).server_name == "tls12.example"
    # Python sends no SNI for IP literals or None
    assert parse_client_hello(real_hello(None)).server_name == ""
    assert parse_client_hello(real_hello("127.0.0.1")).server_name == ""


def test_incomplete_needs_more_bytes():
    data = real_hello("more.example")
    for cut in (0, 1, 4, 5, 6, 40, len(data) - 1):
        assert parse_client_hello(data[:cut]) is None
    assert parse_client_hello(data + b"trailing application bytes").length == len(data)


def test_parser_resumes_on_a_growing_buffer():
    """ClientHelloParser (what the https vhost uses) gives parse_client_hello's answer byte by byte,
    also for a hello in 1-byte records, without reading the records it has read again."""
    hello = real_hello("grow.example")
    one_byte_records = split_into_records(hello, [1] * (len(hello) - 5))
    for data in (hello, one_byte_records):
        parser, buf = ClientHelloParser(), bytearray()
        for i in range(len(data) - 1):
            buf.append(data[i])
            assert parser.parse(buf) is None
        buf.append(data[-1])
        got = parser.parse(buf)
        assert got == parse_client_hello(data) and got is not None and got.server_name == "grow.example"
    parser = ClientHelloParser()
    assert parser.parse(b"\x16\x03\x01\x00\x01") is None
    with pytest.raises(TLSHelloError, match="not ClientHello"):
        parser.parse(b"\x16\x03\x01\x00\x01\x02" + b"\x16\x03\x01\x00\x03\x00\x00\x10")


def split_into_records(data: bytes, sizes: list[int]) -> bytes:
    """Re-frame one handshake record's payload into several records (legal TLS, Go accepts it)."""
    assert data[0] == 0x16
    payload = data[5:5 + struct.unpack(">H", data[3:5])[0]]
    out = b""
    pos = 0
    for size in [*sizes, len(payload)]:
        piece = payload[pos:pos + size]
        if not piece:
            break
        out += bytes([0x16, 3, 1]) + struct.pack(">H", len(piece)) + piece
        pos += len(piece)
    return out


@settings(max_examples=50, deadline=None)
@given(sizes=st.lists(st.integers(1, 200), max_size=6))
def test_hello_spanning_records(sizes):
    data = split_into_records(real_hello("split.example"), sizes)
    hello = parse_client_hello(data)
    assert hello is not None and hello.server_name == "split.example" and hello.length == len(data)
    assert parse_client_hello(data[:-1]) is None


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\n\r\n",
        bytes([0x17, 3, 3, 0, 5]) + b"hello",  # application data record
        bytes([0x16, 2, 0, 0, 5]) + b"hello",  # SSLv2-ish version
        bytes([0x16, 3, 1, 0, 0]),  # empty record
        bytes([0x16, 3, 1, 0, 4, 2, 0, 0, 0]),  # ServerHello, not ClientHello
        bytes([0x16, 3, 1, 0, 6, 1, 0, 0, 2, 3, 3]),  # truncated ClientHello body
    ],
)
def test_not_a_client_hello(data: bytes):
    with pytest.raises(TLSHelloError):
        parse_client_hello(data)


def test_alert_record_shape():
    assert ALERT_UNRECOGNIZED_NAME[:1] == b"\x15" and ALERT_UNRECOGNIZED_NAME[-2:] == bytes([2, 112])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_never_crashes(data: bytes):
    try:
        parse_client_hello(bytes([0x16, 3, 1]) + struct.pack(">H", len(data)) + data)
    except TLSHelloError:
        pass


def _with_extensions(hello: bytes, extra: bytes) -> bytes:
    """``hello`` (one record, one handshake message) with ``extra`` appended to its extensions."""
    body = bytearray(hello[9:])
    pos = 34
    pos += 1 + body[pos]
    pos += 2 + int.from_bytes(body[pos:pos + 2], "big")
    pos += 1 + body[pos]
    ext_len = int.from_bytes(body[pos:pos + 2], "big")
    body[pos:pos + 2] = (ext_len + len(extra)).to_bytes(2, "big")
    body += extra
    msg = bytes([1]) + len(body).to_bytes(3, "big") + bytes(body)
    return bytes([0x16, 3, 1]) + len(msg).to_bytes(2, "big") + msg


def _sni_extension(*names: bytes) -> bytes:
    entries = b"".join(b"\x00" + len(n).to_bytes(2, "big") + n for n in names)
    data = len(entries).to_bytes(2, "big") + entries
    return b"\x00\x00" + len(data).to_bytes(2, "big") + data


def test_read_as_go_crypto_tls_reads_it():
    """Go's crypto/tls (frp routes on a handshake it starts): a record version below 0x1000 is
    taken before a version is agreed, warning alerts before the hello are skipped (16 at most),
    a fatal alert or close_notify ends it, a repeated extension or a second host name is refused."""
    hello = real_hello(None)
    named = real_hello("go.example")
    assert parse_client_hello(bytes([0x16, 2, 0]) + named[3:]).server_name == "go.example"
    with pytest.raises(TLSHelloError):
        parse_client_hello(bytes([0x16, 0x10, 0]) + named[3:])
    warning = bytes([0x15, 3, 3, 0, 2, 1, 112])
    got = parse_client_hello(warning * 2 + named)
    assert got is not None and got.server_name == "go.example" and got.length == 14 + len(named)
    for bad in (warning * 17, bytes([0x15, 3, 3, 0, 2, 2, 112]), bytes([0x15, 3, 3, 0, 2, 1, 0]),
                bytes([0x15, 3, 3, 0, 3, 1, 112, 0])):
        with pytest.raises(TLSHelloError):
            parse_client_hello(bad + named)
    assert parse_client_hello(_with_extensions(hello, _sni_extension(b"one.example"))).server_name == "one.example"
    for extra in (_sni_extension(b"a.example", b"b.example"),
                  _sni_extension(b"a.example") + _sni_extension(b"b.example")):
        with pytest.raises(TLSHelloError):
            parse_client_hello(_with_extensions(hello, extra))


def test_offers_tls12() -> None:
    """supported_versions when it is there, else the legacy version as the highest (what the https
    vhost's unknown-name answer depends on: unrecognized_name, or protocol_version below TLS 1.2)."""
    assert parse_client_hello(real_hello("v.example")).offers_tls12
    assert parse_client_hello(real_hello("v.example", tls12_only=True)).offers_tls12

    def hello(version: int, extra: bytes = b"") -> bytes:
        body = struct.pack(">H", version) + bytes(32) + b"\x00" + b"\x00\x02\x00\x2f" + b"\x01\x00"
        if extra:
            body += struct.pack(">H", len(extra)) + extra
        msg = b"\x01" + len(body).to_bytes(3, "big") + body
        return b"\x16\x03\x01" + struct.pack(">H", len(msg)) + msg

    assert not parse_client_hello(hello(0x0302)).offers_tls12  # TLS 1.1, no extensions
    assert parse_client_hello(hello(0x0303)).offers_tls12
    versions = b"\x00\x2b\x00\x05\x04\x03\x02\x03\x01"  # supported_versions: TLS 1.1, 1.0
    assert not parse_client_hello(hello(0x0303, versions)).offers_tls12
    assert parse_client_hello(hello(0x0301, b"\x00\x2b\x00\x03\x02\x03\x04")).offers_tls12  # TLS 1.3 listed
