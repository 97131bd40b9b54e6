"""Wire v1 message codec: framing, Go JSON conventions, incremental decoding."""

from __future__ import annotations

import json
import struct
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from aiofrp.proto import msg as m
from aiofrp.proto.errors import ProtocolError

ALL_TYPES = list(m.TYPE_BYTE)


def frame(type_byte: bytes, body: bytes, length: int | None = None) -> bytes:
    return type_byte + struct.pack(">q", len(body) if length is None else length) + body


# -- hypothesis strategies derived from the structs ----------------------------------------------


def strategy_for(t: Any) -> st.SearchStrategy[Any]:
    if isinstance(t, mi.StructType):
        return st.builds(t.cls, **{f.name: strategy_for(f.type) for f in t.fields})
    if isinstance(t, mi.UnionType):
        return st.one_of([st.none() if isinstance(x, mi.NoneType) else strategy_for(x) for x in t.types])
    if isinstance(t, mi.ListType):
        return st.lists(strategy_for(t.item_type), max_size=3)
    if isinstance(t, mi.DictType):
        return st.dictionaries(st.text(max_size=8), strategy_for(t.value_type), max_size=3)
    if isinstance(t, mi.StrType):
        return st.text(max_size=20)
    if isinstance(t, mi.BytesType):
        return st.binary(max_size=64)
    if isinstance(t, mi.BoolType):
        return st.booleans()
    if isinstance(t, mi.IntType):
        return st.integers(min_value=t.ge, max_value=t.le)
    raise AssertionError(f"no strategy for {t!r}")


any_message = st.one_of([strategy_for(mi.type_info(cls)) for cls in ALL_TYPES])


# -- type table and framing ----------------------------------------------------------------------


def test_type_table() -> None:
    assert len(m.TYPE_BYTE) == 18
    assert m.TYPE_BYTE[m.Login] == b"o"
    assert m.TYPE_BYTE[m.NatHoleReport] == b"6"
    assert {v[0] for v in m.TYPE_BYTE.values()} == set(m.MSG_TYPES)
    for cls, tb in m.TYPE_BYTE.items():
        assert m.MSG_TYPES[tb[0]] is cls


def test_pong_example_bytes() -> None:
    expected = bytes.fromhex("34 00 00 00 00 00 00 00 02 7B 7D")
    assert m.encode(m.Pong()) == expected
    dec = m.MsgDecoder()
    dec.feed(expected)
    assert dec.next() == m.Pong()
    assert dec.next() is None


def test_empty_messages_are_empty_objects() -> None:
    for cls in ALL_TYPES:
        body = m.encode(cls())[9:]
        if cls is m.Login:
            assert body == b'{"client_spec":{}}'
        elif cls is m.NatHoleResp:
            assert body == b'{"detect_behavior":{}}'
        else:
            assert body == b"{}", cls


def test_login_matches_go_bytes() -> None:
    go_json = (
        b'{"version":"0.65.0","os":"linux","arch":"amd64","privilege_key":"de00aa",'
        b'"timestamp":1795320650,"client_spec":{},"pool_count":1}'
    )
    login = m.decode_body(m.Login, go_json)
    assert login == m.Login(
        version="0.65.0", os="linux", arch="amd64", privilege_key="de00aa", timestamp=1795320650, pool_count=1
    )
    assert m.encode(login) == frame(b"o", go_json)


def test_login_with_user_and_metas_key_order() -> None:
    login = m.Login(
        version="0.65.0",
        os="linux",
        arch="amd64",
        user="u1",
        privilege_key="k",
        timestamp=1,
        metas={"z": "1", "k": "v"},
        pool_count=1,
    )
    assert m.encode(login)[9:] == (
        b'{"version":"0.65.0","os":"linux","arch":"amd64","user":"u1","privilege_key":"k",'
        b'"timestamp":1,"metas":{"k":"v","z":"1"},"client_spec":{},"pool_count":1}'
    )


def test_client_spec_with_content() -> None:
    login = m.Login(client_spec=m.ClientSpec(type="ssh-tunnel", always_auth_pass=True))
    body = m.encode(login)[9:]
    assert body == b'{"client_spec":{"type":"ssh-tunnel","always_auth_pass":true}}'
    assert m.decode_body(m.Login, body) == login


def test_udp_packet_wire_form() -> None:
    pkt = m.UDPPacket(c=b"\x00\x01\x02\xff", r=m.UDPAddr(IP="1.2.3.4", Port=5678))
    body = m.encode(pkt)[9:]
    assert body == b'{"c":"AAEC/w==","r":{"IP":"1.2.3.4","Port":5678,"Zone":""}}'
    assert m.decode_body(m.UDPPacket, body) == pkt
    assert m.decode_body(m.UDPPacket, b'{"c":"aGk=","l":null,"r":{"IP":"::1","Port":1,"Zone":"lo"}}') == (
        m.UDPPacket(c=b"hi", r=m.UDPAddr("::1", 1, "lo"))
    )


def test_nat_hole_resp_nested() -> None:
    resp = m.NatHoleResp(
        sid="s",
        detect_behavior=m.NatHoleDetectBehavior(
            role="sender", read_timeout=500, candidate_ports=[m.PortsRange(from_=1000, to=2000)]
        ),
    )
    body = m.encode(resp)[9:]
    assert body == (
        b'{"sid":"s","detect_behavior":{"role":"sender","read_timeout":500,'
        b'"candidate_ports":[{"from":1000,"to":2000}]}}'
    )
    assert m.decode_body(m.NatHoleResp, body) == resp


def test_go_escapes_decode() -> None:
    body = b'{"error":"\\u003cb\\u003e \\u0026"}'
    assert m.decode_body(m.Pong, body) == m.Pong(error="<b> &")


def test_encode_rejects_non_messages() -> None:
    with pytest.raises(TypeError):
        m.encode(m.UDPAddr())  # type: ignore[arg-type]


# -- round trips ---------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(any_message)
def test_round_trip(msg: Any) -> None:
    data = m.encode(msg)
    cls, length = m.MSG_TYPES[data[0]], struct.unpack(">q", data[1:9])[0]
    assert cls is type(msg)
    assert length == len(data) - 9
    assert m.decode_body(cls, data[9:]) == msg
    if length <= m.MAX_MSG_LENGTH:
        assert m.decode_header(data[:9]) == (cls, length)
        dec = m.MsgDecoder()
        dec.feed(data)
        assert dec.next() == msg
        assert dec.buffered == 0


@settings(max_examples=100, deadline=None)
@given(any_message)
def test_uppercase_and_unknown_keys(msg: Any) -> None:
    obj = json.loads(m.encode(msg)[9:])
    mangled: dict[str, object] = {"ZZ_unknown": [1, {"x": None}]}
    mangled.update({k.upper(): v for k, v in obj.items()})
    mangled["another_unknown"] = "x"
    assert m.decode_body(type(msg), json.dumps(mangled).encode()) == msg


@settings(max_examples=50, deadline=None)
@given(st.lists(any_message, min_size=1, max_size=5), st.data())
def test_decoder_arbitrary_splits(msgs: list[Any], data: st.DataObject) -> None:
    frames = [m.encode(x) for x in msgs]
    assume(all(len(f) - 9 <= m.MAX_MSG_LENGTH for f in frames))
    stream = b"".join(frames) + b"raw payload"
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    dec = m.MsgDecoder()
    got: list[m.Message] = []
    prev = 0
    for cut in [*cuts, len(stream)]:
        dec.feed(stream[prev:cut])
        prev = cut
        while len(got) < len(msgs) and (msg := dec.next()) is not None:
            got.append(msg)
    assert got == msgs
    assert dec.take_remaining() == b"raw payload"
    assert dec.take_remaining() == b""


# -- Go decoding conventions ---------------------------------------------------------------------


def test_case_insensitive_keys() -> None:
    body = b'{"Proxy_Name":"a","PROXY_TYPE":"tcp","Remote_port":80,"Use_Encryption":true}'
    assert m.decode_body(m.NewProxy, body) == m.NewProxy(
        proxy_name="a", proxy_type="tcp", remote_port=80, use_encryption=True
    )


def test_case_insensitive_nested_keys() -> None:
    body = b'{"CLIENT_SPEC":{"Type":"ssh-tunnel","extra":1},"Metas":{"Key":"V"}}'
    assert m.decode_body(m.Login, body) == m.Login(
        client_spec=m.ClientSpec(type="ssh-tunnel"), metas={"Key": "V"}
    )
    body = b'{"r":{"ip":"10.0.0.1","port":53,"zone":""}}'
    assert m.decode_body(m.UDPPacket, body) == m.UDPPacket(r=m.UDPAddr("10.0.0.1", 53))
    body = b'{"detect_behavior":{"Candidate_Ports":[{"FROM":1,"To":2}]}}'
    got = m.decode_body(m.NatHoleResp, body)
    assert got.detect_behavior.candidate_ports == [m.PortsRange(1, 2)]


def test_go_unicode_folding() -> None:
    # Go folds with ToUpper(ToLower(r)): the long s and the Kelvin sign match ASCII letters.
    assert m.decode_body(m.NatHoleReport, '{"\u017fid":"x"}'.encode()) == m.NatHoleReport(sid="x")
    assert m.decode_body(m.NewProxy, '{"s\u212a":"secret"}'.encode()) == m.NewProxy(sk="secret")
    # Python's full case mapping would turn U+FB06 into "ST"; Go does not fold it.
    assert m.decode_body(m.Login, '{"\ufb06":"x"}'.encode()) == m.Login()


def test_duplicate_keys_last_wins() -> None:
    assert m.decode_body(m.NatHoleReport, b'{"sid":"a","SID":"b"}') == m.NatHoleReport(sid="b")
    assert m.decode_body(m.NatHoleReport, b'{"SID":"b","sid":"a"}') == m.NatHoleReport(sid="a")


def test_null_values() -> None:
    # Go: null is a no-op for strings/numbers/structs and resets pointers, slices and maps.
    assert m.decode_body(m.Login, b'{"version":null,"pool_count":null,"client_spec":null}') == m.Login()
    assert m.decode_body(m.Login, b'{"version":"a","VERSION":null}') == m.Login(version="a")
    assert m.decode_body(m.Login, b'{"metas":{"a":null}}') == m.Login(metas={"a": ""})
    assert m.decode_body(m.Login, b'{"metas":{"a":"b"},"Metas":null}') == m.Login()
    assert m.decode_body(m.UDPPacket, b'{"r":null}') == m.UDPPacket()
    assert m.decode_body(m.NewProxy, b'{"custom_domains":["a",null]}') == m.NewProxy(custom_domains=["a", ""])
    assert m.decode_body(m.Pong, b"null") == m.Pong()


def test_ints_at_go_limits() -> None:
    assert m.decode_body(m.StartWorkConn, b'{"src_port":65535}').src_port == 65535
    assert m.decode_body(m.Login, b'{"timestamp":9223372036854775807}').timestamp == 2**63 - 1


@pytest.mark.parametrize(
    ("cls", "body"),
    [
        (m.Login, b'{"pool_count":"1"}'),
        (m.Login, b'{"POOL_COUNT":"1"}'),
        (m.Login, b'{"pool_count":1.5}'),
        (m.Login, b'{"version":1}'),
        (m.Login, b'{"metas":["a"]}'),
        (m.Login, b'{"metas":{"a":1}}'),
        (m.Login, b'{"client_spec":"x"}'),
        (m.Login, b'{"timestamp":9223372036854775808}'),
        (m.NewProxy, b'{"use_encryption":"true"}'),
        (m.NewProxy, b'{"custom_domains":"a.com"}'),
        (m.StartWorkConn, b'{"src_port":65536}'),
        (m.StartWorkConn, b'{"dst_port":-1}'),
        (m.UDPPacket, b'{"c":"AAE"}'),
        (m.UDPPacket, b'{"c":"!!!!"}'),
        (m.UDPPacket, b'{"r":{"Port":"53"}}'),
        (m.Pong, b"[]"),
        (m.Pong, b'"x"'),
        (m.Pong, b"1"),
    ],
)
def test_wrong_json_types(cls: type, body: bytes) -> None:
    with pytest.raises(ProtocolError, match=cls.__name__):
        m.decode_body(cls, body)


@pytest.mark.parametrize("body", [b"", b"{", b'{"error":}', b"{}}", b'{"error":"x"', b"\xff", b"nul"])
def test_bad_json(body: bytes) -> None:
    with pytest.raises(ProtocolError, match="invalid JSON in Pong"):
        m.decode_body(m.Pong, body)


# -- header validation and the incremental decoder -----------------------------------------------


def test_decode_header() -> None:
    assert m.decode_header(frame(b"o", b"", 10240)) == (m.Login, 10240)
    assert m.decode_header(frame(b"4", b"", 0)) == (m.Pong, 0)
    with pytest.raises(ProtocolError, match="unknown message type 0x46"):
        m.decode_header(frame(b"F", b"{}"))
    with pytest.raises(ProtocolError, match="10241"):
        m.decode_header(frame(b"o", b"", 10241))
    with pytest.raises(ProtocolError, match="-1"):
        m.decode_header(frame(b"o", b"", -1))
    with pytest.raises(ProtocolError, match=str(2**63 - 1)):
        m.decode_header(frame(b"o", b"", 2**63 - 1))
    with pytest.raises(ValueError):
        m.decode_header(b"o\x00")


def test_decoder_truncated_frame() -> None:
    data = m.encode(m.NewProxyResp(proxy_name="p", remote_addr=":6000"))
    dec = m.MsgDecoder()
    for byte in data[:-1]:
        dec.feed(bytes([byte]))
        assert dec.next() is None
    dec.feed(data[-1:])
    assert dec.next() == m.NewProxyResp(proxy_name="p", remote_addr=":6000")
    assert dec.next() is None


def test_decoder_header_errors_without_body() -> None:
    for bad in (frame(b"\x00", b""), frame(b"o", b"", 10241), frame(b"o", b"", -5)):
        dec = m.MsgDecoder()
        dec.feed(bad[:8])
        assert dec.next() is None  # header not complete yet
        dec.feed(bad[8:9])
        with pytest.raises(ProtocolError):
            dec.next()


def test_decoder_error_at_exact_frame() -> None:
    good = m.encode(m.ReqWorkConn())
    bad = frame(b"p", b'{"remote_port":"x"}')
    dec = m.MsgDecoder()
    dec.feed(good + good + bad + good)
    assert dec.next() == m.ReqWorkConn()
    assert dec.next() == m.ReqWorkConn()
    with pytest.raises(ProtocolError, match="NewProxy"):
        dec.next()
    assert dec.take_remaining() == bad + good


def test_decoder_bad_json_frame() -> None:
    dec = m.MsgDecoder()
    dec.feed(frame(b"1", b"{oops}"))
    with pytest.raises(ProtocolError, match="LoginResp"):
        dec.next()


def test_decoder_max_length_body() -> None:
    body = b'{"error":"' + b"x" * (m.MAX_MSG_LENGTH - 12) + b'"}'
    assert len(body) == m.MAX_MSG_LENGTH
    dec = m.MsgDecoder()
    dec.feed(frame(b"4", body))
    assert dec.next() == m.Pong(error="x" * (m.MAX_MSG_LENGTH - 12))


def test_take_remaining_hands_over_payload() -> None:
    swc = m.StartWorkConn(proxy_name="web", src_addr="1.2.3.4", src_port=5555)
    dec = m.MsgDecoder()
    dec.feed(m.encode(swc) + b"GET / HTTP/1.1\r\n")
    assert dec.next() == swc
    assert dec.buffered == 16
    assert dec.take_remaining() == b"GET / HTTP/1.1\r\n"
    assert dec.buffered == 0
    assert dec.next() is None


def test_decoder_accepts_memoryview_and_bytearray() -> None:
    data = m.encode(m.Ping(privilege_key="k", timestamp=5))
    dec = m.MsgDecoder()
    dec.feed(memoryview(data)[:4])
    dec.feed(bytearray(data[4:]))
    assert dec.next() == m.Ping(privilege_key="k", timestamp=5)


def test_structs_reject_unknown_fields_only_in_fast_path() -> None:
    # The public structs forbid unknown fields so that decode_body notices them; decode_body
    # itself must still ignore them like Go does.
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"x":1}', type=m.Pong)
    assert m.decode_body(m.Pong, b'{"x":1}') == m.Pong()
