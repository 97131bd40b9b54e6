"""The sans-I/O SOCKS5 server messages (aiofrp.proto.socks5): every split point, junk, replies."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiofrp.proto import socks5 as s5


def test_greeting() -> None:
    assert s5.parse_greeting(b"") is None
    assert s5.parse_greeting(b"\x05") is None
    assert s5.parse_greeting(b"\x05\x02\x00") is None
    assert s5.parse_greeting(b"\x05\x02\x00\x02rest") == (b"\x00\x02", 4)
    assert s5.parse_greeting(b"\x05\x00") == (b"", 2)
    with pytest.raises(s5.Socks5Error, match="unsupported SOCKS version: 4") as e:
        s5.parse_greeting(b"\x04\x01\x00")
    assert e.value.reply is None


def test_userpass() -> None:
    msg = b"\x01\x05alice\x06s3cret"
    for i in range(len(msg)):
        assert s5.parse_userpass(msg[:i]) is None
    assert s5.parse_userpass(msg + b"x") == ((b"alice", b"s3cret"), len(msg))
    assert s5.parse_userpass(b"\x01\x00\x00") == ((b"", b""), 3)
    with pytest.raises(s5.Socks5Error, match="unsupported auth version: 5"):
        s5.parse_userpass(b"\x05\x01\x00")


@pytest.mark.parametrize(("wire", "host", "atyp"), [
    (b"\x01\x7f\x00\x00\x01", "127.0.0.1", s5.ATYP_IPV4),
    (b"\x04" + bytes(15) + b"\x01", "::1", s5.ATYP_IPV6),
    (b"\x03\x0bexample.com", "example.com", s5.ATYP_DOMAIN),
    (b"\x03\x00", "", s5.ATYP_DOMAIN),
])
def test_request_every_split(wire: bytes, host: str, atyp: int) -> None:
    msg = b"\x05\x01\x00" + wire + b"\x01\xbb"
    for i in range(len(msg)):
        assert s5.parse_request(msg[:i]) is None, i
    assert s5.parse_request(msg + b"payload") == (s5.Request(1, atyp, host, 443), len(msg))


def test_request_junk() -> None:
    with pytest.raises(s5.Socks5Error, match="unsupported command version: 4"):
        s5.parse_request(b"\x04\x01\x00\x01")
    with pytest.raises(s5.Socks5Error, match="unrecognized address type: 9") as e:
        s5.parse_request(b"\x05\x01\x00\x09")
    assert e.value.reply == s5.ADDRESS_TYPE_NOT_SUPPORTED


def test_replies() -> None:
    assert s5.reply(s5.COMMAND_NOT_SUPPORTED) == b"\x05\x07\x00\x01" + bytes(6)
    assert s5.reply(s5.SUCCEEDED, ("127.0.0.1", 0x1234)) == b"\x05\x00\x00\x01\x7f\x00\x00\x01\x12\x34"
    assert s5.reply(s5.SUCCEEDED, ("::1", 80)) == b"\x05\x00\x00\x04" + bytes(15) + b"\x01\x00\x50"
    assert s5.method_reply(s5.METHOD_NO_ACCEPTABLE) == b"\x05\xff"
    assert s5.auth_reply(False) == b"\x01\x01"


@given(st.binary(max_size=300))
def test_any_bytes_parse_or_refuse(data: bytes) -> None:
    """Junk never raises anything but Socks5Error, and a complete message never reads past its end."""
    for parse in (s5.parse_greeting, s5.parse_userpass, s5.parse_request):
        try:
            got = parse(data)
        except s5.Socks5Error:
            continue
        if got is not None:
            assert 0 < got[1] <= min(len(data), s5.MAX_MESSAGE)
