"""PROXY protocol headers (frp §5.11) byte for byte against the HAProxy spec's tables."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiofrp.proto.proxyproto import (
    V1_UNKNOWN,
    V2_SIGNATURE,
    ProxyProtocolError,
    build_header,
    encode_v1,
    encode_v2,
)

SIG = bytes.fromhex("0D0A0D0A000D0A515549540A")


def test_signature_is_the_spec_constant():
    assert V2_SIGNATURE == SIG and len(SIG) == 12


# -- v1 -------------------------------------------------------------------------------------------


def test_v1_tcp4():
    assert encode_v1(("1.2.3.4", 5678), ("127.0.0.1", 80)) == b"PROXY TCP4 1.2.3.4 127.0.0.1 5678 80\r\n"


def test_v1_tcp6():
    assert encode_v1(("2001:db8::1", 1), ("::1", 65535)) == b"PROXY TCP6 2001:db8::1 ::1 1 65535\r\n"


def test_v1_ipv4_mapped_source_is_tcp4():
    assert encode_v1(("::ffff:10.0.0.1", 4000), ("::ffff:127.0.0.1", 7000)) == (
        b"PROXY TCP4 10.0.0.1 127.0.0.1 4000 7000\r\n"
    )


def test_v1_ipv6_source_with_ipv4_destination():
    # Go converts the destination to 16 bytes and prints the mapped address in dotted form
    assert encode_v1(("fe80::1%eth0", 9), ("127.0.0.1", 0)) == b"PROXY TCP6 fe80::1 127.0.0.1 9 0\r\n"


def test_v1_family_mismatch_is_an_error():
    with pytest.raises(ProxyProtocolError):
        encode_v1(("1.2.3.4", 1), ("::1", 2))


def test_v1_udp_and_non_ip_are_unknown():
    assert encode_v1(("1.2.3.4", 1), ("127.0.0.1", 2), udp=True) == b"PROXY UNKNOWN\r\n" == V1_UNKNOWN
    assert encode_v1(("example.com", 1), ("127.0.0.1", 2)) == V1_UNKNOWN


def test_v1_fits_the_spec_maximum():
    longest = encode_v1(("ffff:f:ffff:ffff:ffff:ffff:ffff:ffff", 65535), ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535))
    assert len(longest) <= 107 and longest.endswith(b"\r\n")


# -- v2 -------------------------------------------------------------------------------------------


def test_v2_tcp4_layout():
    h = encode_v2(("192.168.1.2", 0x1234), ("10.0.0.1", 80))
    assert h[:12] == SIG
    assert h[12] == 0x21  # version 2, PROXY
    assert h[13] == 0x11  # TCP over IPv4
    assert struct.unpack(">H", h[14:16])[0] == 12
    assert h[16:20] == bytes([192, 168, 1, 2]) and h[20:24] == bytes([10, 0, 0, 1])
    assert h[24:28] == b"\x12\x34\x00\x50"
    assert len(h) == 28


def test_v2_tcp6_layout():
    h = encode_v2(("2001:db8::2", 443), ("::1", 8443))
    assert h[12:16] == b"\x21\x21\x00\x24"  # PROXY, TCP over IPv6, 36 bytes
    assert h[16:32] == bytes.fromhex("20010db8000000000000000000000002")
    assert h[32:48] == bytes.fromhex("00000000000000000000000000000001")
    assert h[48:52] == struct.pack(">HH", 443, 8443)
    assert len(h) == 52


def test_v2_udp_families():
    assert encode_v2(("1.1.1.1", 53), ("127.0.0.1", 5353), udp=True)[12:16] == b"\x21\x12\x00\x0c"
    assert encode_v2(("::2", 53), ("::1", 5353), udp=True)[12:16] == b"\x21\x22\x00\x24"


def test_v2_ipv6_source_maps_ipv4_destination():
    h = encode_v2(("::2", 1), ("127.0.0.1", 2))
    assert h[13] == 0x21 and h[32:48] == bytes.fromhex("00000000000000000000ffff7f000001")


def test_v2_non_ip_is_local_unspec():
    assert encode_v2(("localhost", 1), ("127.0.0.1", 2)) == SIG + b"\x20\x00\x00\x00"


def test_v2_family_mismatch_and_bad_port():
    with pytest.raises(ProxyProtocolError):
        encode_v2(("1.2.3.4", 1), ("2001:db8::1", 2))
    with pytest.raises(ProxyProtocolError):
        encode_v2(("1.2.3.4", 70000), ("127.0.0.1", 2))


def test_build_header_versions():
    src, dst = ("1.2.3.4", 5), ("127.0.0.1", 6)
    assert build_header("v1", src, dst) == encode_v1(src, dst)
    assert build_header("v2", src, dst) == encode_v2(src, dst)
    assert build_header("anything", src, dst) == encode_v2(src, dst)  # frp: not "v1" means v2


@given(st.ip_addresses(v=4), st.ip_addresses(v=4), st.integers(0, 65535), st.integers(0, 65535))
def test_v2_ipv4_roundtrip(sip, dip, sport, dport):
    h = encode_v2((str(sip), sport), (str(dip), dport))
    assert h[16:20] == sip.packed and h[20:24] == dip.packed
    assert struct.unpack(">HH", h[24:28]) == (sport, dport)
    v1 = encode_v1((str(sip), sport), (str(dip), dport)).decode()
    assert v1 == f"PROXY TCP4 {sip} {dip} {sport} {dport}\r\n"
