"""The sans-I/O STUN codec (RFC 5389/5780 subset), the test responder and our discovery client."""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.stun import StunServer

from aiofrp.proto import stun

# RFC 5769 §2.2: sample IPv4 response (SOFTWARE, XOR-MAPPED-ADDRESS, MESSAGE-INTEGRITY, FINGERPRINT)
RFC5769_IPV4_RESPONSE = bytes.fromhex(
    "0101003c2112a442b7e7a701bc34d686fa87dfae"
    "8022000b7465737420766563746f7220"
    "00200008" "0001a147e112a643"
    "00080014" "2b91f599fd9e90c38c7489f92af9ba53f06be7d7"
    "80280004" "c07d4c96"
)
# RFC 5769 §2.3: sample IPv6 response
RFC5769_IPV6_RESPONSE = bytes.fromhex(
    "010100482112a442b7e7a701bc34d686fa87dfae"
    "8022000b7465737420766563746f7220"
    "00200014" "0002a1470113a9faa5d3f179bc25f4b5bed2b9d9"
    "00080014" "a382954e4be67bf11784c97c8292c275bfe3ed41"
    "80280004" "c8fb0b4c"
)


def test_rfc5769_ipv4_response() -> None:
    resp = stun.parse_binding_response(RFC5769_IPV4_RESPONSE)
    assert resp.transaction_id == bytes.fromhex("b7e7a701bc34d686fa87dfae")
    assert resp.mapped == ("192.0.2.1", 32853)
    assert resp.other is None and resp.origin is None
    assert stun.parse(RFC5769_IPV4_RESPONSE).get(stun.ATTR_SOFTWARE) == b"test vector"


def test_rfc5769_ipv6_response() -> None:
    resp = stun.parse_binding_response(RFC5769_IPV6_RESPONSE)
    assert resp.mapped == ("2001:db8:1234:5678:11:2233:4455:6677", 32853)


def test_fingerprint_is_checked() -> None:
    bad = bytearray(RFC5769_IPV4_RESPONSE)
    bad[-1] ^= 1
    with pytest.raises(stun.StunError, match="FINGERPRINT"):
        stun.parse(bytes(bad))


def test_binding_request_layout() -> None:
    tid = bytes(range(12))
    assert stun.binding_request(tid).encode() == bytes.fromhex("000100002112a442") + tid
    req = stun.binding_request(tid, change_ip=True, change_port=True).encode()
    assert req == bytes.fromhex("000100082112a442") + tid + bytes.fromhex("0003000400000006")
    parsed = stun.parse(req)
    assert parsed.msg_type == stun.BINDING_REQUEST
    assert parsed.change_flags() == stun.CHANGE_IP | stun.CHANGE_PORT
    assert stun.parse(stun.binding_request(tid, change_port=True).encode()).change_flags() == stun.CHANGE_PORT


def test_binding_response_carries_legacy_and_rfc5780_attributes() -> None:
    req = stun.binding_request()
    resp = stun.binding_response(req, ("127.0.0.1", 5000), other=("127.0.0.2", 3479), origin=("127.0.0.1", 3478))
    raw = resp.encode(fingerprint=True)
    msg = stun.parse(raw)
    types = [t for t, _ in msg.attributes]
    assert types == [stun.ATTR_XOR_MAPPED_ADDRESS, stun.ATTR_MAPPED_ADDRESS, stun.ATTR_RESPONSE_ORIGIN,
                     stun.ATTR_SOURCE_ADDRESS, stun.ATTR_OTHER_ADDRESS, stun.ATTR_CHANGED_ADDRESS,
                     stun.ATTR_FINGERPRINT]
    parsed = stun.parse_binding_response(raw)
    assert parsed.transaction_id == req.transaction_id
    assert parsed.mapped == ("127.0.0.1", 5000)
    assert parsed.other == ("127.0.0.2", 3479)
    assert parsed.origin == ("127.0.0.1", 3478)
    # RFC 3489-only servers: CHANGED-ADDRESS and MAPPED-ADDRESS are enough
    old = stun.StunMessage(stun.BINDING_SUCCESS, req.transaction_id, [
        (stun.ATTR_MAPPED_ADDRESS, stun.encode_address(("10.0.0.1", 1))),
        (stun.ATTR_CHANGED_ADDRESS, stun.encode_address(("10.0.0.2", 2))),
    ])
    parsed = stun.parse_binding_response(old.encode())
    assert (parsed.mapped, parsed.other) == (("10.0.0.1", 1), ("10.0.0.2", 2))


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"\x00\x01\x00\x00", "needs 20 bytes"),
        (bytes.fromhex("000100002112a443") + bytes(12), "magic cookie"),
        (bytes.fromhex("c00100002112a442") + bytes(12), "first two bits"),
        (bytes.fromhex("000100042112a442") + bytes(12), "does not match"),
        (bytes.fromhex("000100042112a442") + bytes(12) + bytes.fromhex("00200008"), "overruns"),
        (bytes.fromhex("000100082112a442") + bytes(12) + bytes.fromhex("0003000200000000"), "CHANGE-REQUEST"),
    ],
)
def test_malformed_messages(data: bytes, match: str) -> None:
    with pytest.raises(stun.StunError, match=match):
        stun.parse(data).change_flags()


def test_error_and_other_responses_are_refused() -> None:
    tid = bytes(12)
    with pytest.raises(stun.StunError, match="error response"):
        stun.parse_binding_response(stun.StunMessage(stun.BINDING_ERROR, tid).encode())
    with pytest.raises(stun.StunError, match="not a Binding success"):
        stun.parse_binding_response(stun.binding_request(tid).encode())


def test_bad_address_family() -> None:
    with pytest.raises(stun.StunError, match="family"):
        stun.decode_address(struct.pack(">BBH", 0, 3, 1) + bytes(4))


ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(str)


@given(ip=ipv4 | ipv6, port=st.integers(0, 65535), tid=st.binary(min_size=12, max_size=12), xor=st.booleans())
def test_address_roundtrip(ip: str, port: int, tid: bytes, xor: bool) -> None:
    key = tid if xor else None
    assert stun.decode_address(stun.encode_address((ip, port), key), key) == (ip, port)


@given(attrs=st.lists(st.tuples(st.integers(0x8000, 0xFFFF).filter(lambda t: t != stun.ATTR_FINGERPRINT),
                                st.binary(max_size=40)), max_size=6),
       fingerprint=st.booleans())
def test_message_roundtrip(attrs: list[tuple[int, bytes]], fingerprint: bool) -> None:
    msg = stun.StunMessage(stun.BINDING_SUCCESS, bytes(range(12)), list(attrs))
    parsed = stun.parse(msg.encode(fingerprint=fingerprint))
    got = parsed.attributes[:-1] if fingerprint else parsed.attributes
    assert got == list(attrs)


# -- the test responder and the discovery client ----------------------------------------------------


def _ask(server: tuple[str, int], *, change_ip: bool = False, change_port: bool = False,
         timeout: float = 0.5) -> tuple[stun.BindingResponse, tuple[str, int]] | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(timeout)
        req = stun.binding_request(change_ip=change_ip, change_port=change_port)
        s.sendto(req.encode(), server)
        try:
            data, src = s.recvfrom(2048)
        except TimeoutError:
            return None
        resp = stun.parse_binding_response(data)
        assert resp.transaction_id == req.transaction_id
        assert resp.mapped == s.getsockname()
        return resp, src


def test_responder_answers_and_honours_change_request() -> None:
    with StunServer() as srv:
        primary = ("127.0.0.1", srv.port)
        got = _ask(primary)
        assert got is not None
        resp, src = got
        assert src == primary
        assert resp.other == ("127.0.0.1", srv.alt_port)
        assert resp.origin == primary
        got = _ask(primary, change_port=True)
        assert got is not None and got[1] == ("127.0.0.1", srv.alt_port) == got[0].origin
        assert _ask(primary, change_ip=True) is None  # no second IP: not answered
        assert srv.requests == 3 and srv.change_requests == 2


def test_responder_with_alternate_ip() -> None:
    try:
        srv = StunServer(alt_host="127.0.0.2").start()
    except OSError as exc:
        pytest.skip(f"127.0.0.2 not bindable: {exc}")
    with srv:
        got = _ask(("127.0.0.1", srv.port), change_ip=True, change_port=True)
        assert got is not None
        assert got[1] == ("127.0.0.2", srv.alt_port)
        assert got[0].other == ("127.0.0.2", srv.alt_port)


def test_silent_responder() -> None:
    with StunServer(silent=True) as srv:
        assert _ask(("127.0.0.1", srv.port), timeout=0.3) is None
        assert srv.requests == 1


def test_discovery_client_against_responder() -> None:
    from aiofrp.client import nathole

    async def run() -> None:
        with StunServer() as srv:
            prep = await nathole.prepare(srv.address)
            try:
                port = prep.sock.local_port
                assert prep.addrs == [f"127.0.0.1:{port}", f"127.0.0.1:{port}"]
                assert (prep.nat_type, prep.behavior) == ("EasyNAT", "BehaviorNoChange")
                assert all(a.endswith(f":{port}") and not a.startswith("127.") for a in prep.assisted_addrs)
                assert srv.requests == 2  # primary, then OTHER-ADDRESS
                assert await nathole.filtering_behavior(prep.sock, srv.address, 0.3) == "address-dependent"
            finally:
                prep.sock.close()
            prep = await nathole.prepare(srv.address, disable_assisted_addrs=True)
            prep.sock.close()
            assert prep.assisted_addrs == []
        with StunServer(silent=True) as quiet:
            t0 = asyncio.get_running_loop().time()
            with pytest.raises(nathole.NatHoleError, match="discover error: wait response from stun server timeout"):
                await nathole.prepare(quiet.address)
            assert asyncio.get_running_loop().time() - t0 < nathole.STUN_TIMEOUT + 1

    asyncio.run(run())
