"""proto/wire.py (wire protocol v2, spec §1.8 and §2.4): known answers for the AEAD key schedule and
the ciphers, the byte layouts of the magic, frames and hellos, Go's hello checks, and the AEAD
stream's refusals (forged, reordered, truncated, oversized records)."""

from __future__ import annotations

import hashlib
import hmac
import json
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiofrp.proto import msg as m
from aiofrp.proto import wire
from aiofrp.proto.errors import ProtocolError

CH = wire.client_hello("tcp", True, True, client_random=bytes(range(32)))
SH = wire._server_hello("aes-256-gcm", bytes(range(32, 64)))


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 with the standard library only (checked against the RFC's test case 1 below)."""
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out, i = out + t, i + 1
    return out[:length]


# -- known answers ---------------------------------------------------------------------------------


def test_rfc5869_case_1_for_the_reference_hkdf() -> None:
    okm = hkdf_sha256(b"\x0b" * 22, bytes(range(13)), bytes(range(0xF0, 0xFA)), 42)
    assert okm.hex() == ("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
                         "34007208d5b887185865")


def test_hello_payloads_known_bytes() -> None:
    assert CH == (b'{"bootstrap":{"transport":"tcp","tls":true,"tcpMux":true},"capabilities":{"message":'
                  b'{"codecs":["json"]},"crypto":{"algorithms":["aes-256-gcm","xchacha20-poly1305"],'
                  b'"clientRandom":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}}}')
    assert SH == (b'{"selected":{"message":{"codec":"json"},"crypto":{"algorithm":"aes-256-gcm",'
                  b'"serverRandom":"ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="}}}')
    # Go omits empty non-struct fields, never struct fields
    assert wire.client_hello("", False, False, client_random=bytes(32)).startswith(
        b'{"bootstrap":{},"capabilities":{"message":{"codecs":["json"]},')


def test_transcript_hash_known_answer() -> None:
    th = wire.transcript_hash(CH, SH)
    assert th.hex() == "5ccf90b805bdc0b770f583b4244b2512db50418790b323924394ec5014df66a0"
    by_hand = hashlib.sha256(b"frp wire v2 crypto transcript" + b"\x00client hello\x00" + struct.pack(">Q", len(CH))
                             + CH + b"\x00server hello\x00" + struct.pack(">Q", len(SH)) + SH).digest()
    assert th == by_hand
    assert wire.transcript_hash(CH + b" ", SH) != th  # the exact payload bytes count


@pytest.mark.parametrize(("alg", "c2s", "s2c"), [
    ("aes-256-gcm", "edbe9aaa6e30f49b214e3522912a17db3e9c3f153e82d069ffd9a3ca8a78cf1b",
     "ad971a3803cbb26e1bea569503b6292c3e0a139e44d7e6ae352189d6e7bdff7b"),
    ("xchacha20-poly1305", "351d061a970948c0e8f2a8f8ffe176d22248a81413d9bfcc0b3ec423374d55b8",
     "73d2760fc2790ce3ea88da73841af6f2f318f037145333b36eab8de82082ebc5"),
])
def test_key_schedule_known_answers(alg: str, c2s: str, s2c: str) -> None:
    th = wire.transcript_hash(CH, SH)
    keys = wire.derive_keys(b"frp-token", alg, th)
    assert (keys[0].hex(), keys[1].hex()) == (c2s, s2c)
    for key, direction in zip(keys, ("client-to-server", "server-to-client"), strict=True):
        assert key == hkdf_sha256(b"frp-token", th, f"frp wire v2 control aead {alg} {direction}".encode(), 32)


def test_empty_token_is_a_valid_secret() -> None:
    c2s, _ = wire.derive_keys(b"", "aes-256-gcm", wire.transcript_hash(CH, SH))
    assert c2s.hex() == "367937cf3c478c0e303d780a63b81844b2aa49b9899caf93b32ce79a0044a704"


def test_aes_256_gcm_known_answers() -> None:
    """McGrew-Viega GCM test cases 13 and 14 (256-bit zero key, zero IV)."""
    seal = wire._Seal("aes-256-gcm", bytes(32))
    assert seal.seal(bytes(12), b"", b"").hex() == "530f8afbc74536b9a963b4f1c4cb738b"
    assert seal.seal(bytes(12), bytes(16), b"").hex() == ("cea7403d4d606b6e074ec5d3baf39d18"
                                                          "d0d1c8a799996bf0265b98b5d48ab919")


def test_xchacha20_poly1305_known_answer() -> None:
    """draft-irtf-cfrg-xchacha-03, A.3.1."""
    seal = wire._Seal("xchacha20-poly1305", bytes(range(0x80, 0xA0)))
    pt = (b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, "
          b"sunscreen would be it.")
    ct = seal.seal(bytes(range(0x40, 0x58)), pt, bytes.fromhex("50515253c0c1c2c3c4c5c6c7"))
    assert ct[:32].hex() == "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb"
    assert ct[-16:].hex() == "c0875924c1c7987947deafd8780acf49"


def test_aead_stream_known_bytes() -> None:
    """Stream nonce first, then u32 (plaintext + 16) and the sealed record; AAD = stream nonce + the
    length bytes; the nonce counts up by one per record."""
    w = wire.AEADWriter("aes-256-gcm", bytes(range(32)), stream_nonce=bytes(range(12)))
    assert w.encrypt(b"hello").hex() == "000102030405060708090a0b000000152f67ba77aa53a46bf9459fdc76d5d6e106cc3814c1"
    assert w.encrypt(b"world!").hex() == "00000016fe64e3d52706c600023224488a5e3c85c15f240d26c6"
    seal = wire._Seal("aes-256-gcm", bytes(range(32)))
    nonce1 = bytes(range(11)) + bytes([12])
    assert seal.seal(nonce1, b"world!", bytes(range(12)) + b"\x00\x00\x00\x16").hex() == (
        "fe64e3d52706c600023224488a5e3c85c15f240d26c6")
    x = wire.AEADWriter("xchacha20-poly1305", bytes(range(32)), stream_nonce=bytes(range(24)))
    assert x.encrypt(b"hello").hex() == (
        "000102030405060708090a0b0c0d0e0f10111213141516170000001" "5f6a76313ff6ee5510b40871063683a5c8c53ec9974")


# -- byte layouts ----------------------------------------------------------------------------------


def test_magic_and_frames() -> None:
    assert bytes.fromhex("46525000020d0a") == wire.MAGIC
    assert wire.encode_message(m.Pong()).hex() == "0010000000000004000c7b7d"
    assert wire.encode_frame(1, b"{}") == b"\x00\x01\x00\x00\x00\x00\x00\x02{}"
    assert [wire.V2_TYPE_ID[c] for c in m.TYPE_BYTE] == list(range(1, 19))  # §2.2's "v2 id" column
    assert wire.magic_state(b"FRP\x00") is None and wire.magic_state(wire.MAGIC + b"x") is True
    assert wire.magic_state(b"o\x00") is False and wire.magic_state(b"FRX") is False


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(list(m.TYPE_BYTE)), st.lists(st.integers(1, 64), max_size=8))
def test_decoder_any_chunking(cls: type, cuts: list[int]) -> None:
    data = wire.encode_message(cls()) * 3
    d = wire.V2Decoder()
    got = []
    pos = 0
    for c in [*cuts, len(data)]:
        d.feed(data[pos:pos + c])
        pos += c
        while (msg := d.next()) is not None:
            got.append(msg)
    assert got == [cls()] * 3 and d.buffered == 0


def test_decoder_refusals() -> None:
    for bad, text in [
        (struct.pack(">HHI", 16, 1, 0), "unsupported frame flags: 1"),
        (struct.pack(">HHI", 16, 0, 65537), "frame payload length 65537 exceeds limit 65536"),
        (wire.encode_frame(16, b"\x00"), "message frame payload too short"),
        (wire.encode_frame(16, b"\x00\x13{}"), "unknown v2 message type 19"),
        (wire.encode_frame(1, b"{}"), "unexpected frame type 1, want 16"),
    ]:
        d = wire.V2Decoder()
        d.feed(bad)
        with pytest.raises(ProtocolError, match=text):
            d.next()
    with pytest.raises(ValueError, match="exceeds limit"):
        wire.encode_frame(16, bytes(65537))


# -- hellos ----------------------------------------------------------------------------------------


def test_server_picks_the_first_of_the_clients_list() -> None:
    for algs, want in ((["xchacha20-poly1305", "aes-256-gcm"], "xchacha20-poly1305"),
                       (["other", "aes-256-gcm"], "aes-256-gcm")):
        ch = wire.client_hello("tcp", False, False, algorithms=tuple(algs))
        sh, alg = wire.answer_client_hello(ch, server_random=bytes(32))
        assert alg == want and wire.check_server_hello(ch, sh) == want


@pytest.mark.parametrize(("mutate", "reason"), [
    (lambda d: d["capabilities"]["message"].update(codecs=["cbor"]), "unsupported message codec"),
    (lambda d: d["capabilities"]["crypto"].update(clientRandom="AAAA"), "invalid crypto client random length 3, want 32"),
    (lambda d: d["capabilities"]["crypto"].update(algorithms=["rc4"]), "no supported crypto algorithm"),
    (lambda d: d.pop("capabilities"), "unsupported message codec"),
])
def test_server_refusals_carry_gos_reason(mutate, reason: str) -> None:
    doc = json.loads(CH)
    mutate(doc)
    with pytest.raises(wire.HelloRefused) as e:
        wire.answer_client_hello(json.dumps(doc).encode())
    assert str(e.value) == reason
    assert json.loads(e.value.server_hello) == {"selected": {"message": {"codec": "json"}, "crypto": {}}, "error": reason}


@pytest.mark.parametrize(("sh", "reason"), [
    (wire._server_hello(error="no supported crypto algorithm"), "no supported crypto algorithm"),
    (wire._server_hello("xchacha20-poly1305", bytes(16)), "invalid crypto server random length 16, want 32"),
    (wire._server_hello("aes-128-gcm", bytes(32)), "unknown selected crypto algorithm: aes-128-gcm"),
    (b'{"selected":{"message":{"codec":"cbor"}}}', "unsupported selected message codec: cbor"),
])
def test_client_checks_the_server_hello(sh: bytes, reason: str) -> None:
    with pytest.raises(ProtocolError, match=reason):
        wire.check_server_hello(CH, sh)
    only_aes = wire.client_hello("tcp", True, True, algorithms=("aes-256-gcm",))
    with pytest.raises(ProtocolError, match="was not advertised by client: xchacha20-poly1305"):
        wire.check_server_hello(only_aes, wire._server_hello("xchacha20-poly1305", bytes(32)))


# -- the AEAD stream -------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", wire.ALGORITHMS)
@settings(max_examples=30, deadline=None)
@given(chunks=st.lists(st.binary(max_size=300), max_size=6), cut=st.integers(1, 97))
def test_stream_round_trip_any_chunking(alg: str, chunks: list[bytes], cut: int) -> None:
    key = bytes(range(32))
    w, r = wire.AEADWriter(alg, key), wire.AEADReader(alg, key)
    wire_bytes = b"".join(w.encrypt(c) for c in chunks)
    out = b"".join(r.decrypt(wire_bytes[i:i + cut]) for i in range(0, len(wire_bytes), cut))
    assert out == b"".join(chunks) and r.pending == 0


def test_stream_splits_large_writes_and_ignores_empty_ones() -> None:
    w = wire.AEADWriter("aes-256-gcm", bytes(32), stream_nonce=bytes(12))
    assert w.encrypt(b"") == b""
    out = w.encrypt(bytes(65536 + 10))
    assert struct.unpack_from(">I", out, 12)[0] == 65536 + 16
    assert struct.unpack_from(">I", out, 12 + 4 + 65536 + 16)[0] == 10 + 16
    assert wire.AEADReader("aes-256-gcm", bytes(32)).decrypt(out) == bytes(65546)


def _stream(*parts: bytes) -> tuple[bytes, list[bytes]]:
    w = wire.AEADWriter("aes-256-gcm", bytes(32), stream_nonce=bytes(12))
    recs = [w.encrypt(p) for p in parts]
    return recs[0][:12], [recs[0][12:], *recs[1:]]


def test_stream_refusals() -> None:
    nonce, recs = _stream(b"one", b"two")
    r = wire.AEADReader("aes-256-gcm", bytes(32))
    with pytest.raises(ProtocolError, match="authentication failed"):  # records out of order
        r.decrypt(nonce + recs[1])
    with pytest.raises(ProtocolError, match="authentication failed"):  # a flipped bit
        wire.AEADReader("aes-256-gcm", bytes(32)).decrypt(nonce + recs[0][:-1] + bytes([recs[0][-1] ^ 1]))
    with pytest.raises(ProtocolError, match="authentication failed"):  # another stream nonce
        wire.AEADReader("aes-256-gcm", bytes(32)).decrypt(b"\x01" + nonce[1:] + recs[0])
    with pytest.raises(ProtocolError, match="authentication failed"):  # the wrong key
        wire.AEADReader("aes-256-gcm", bytes([1]) * 32).decrypt(nonce + recs[0])
    with pytest.raises(ProtocolError, match="smaller than overhead"):
        wire.AEADReader("aes-256-gcm", bytes(32)).decrypt(nonce + b"\x00\x00\x00\x0f")
    with pytest.raises(ProtocolError, match="exceeds limit 65552"):
        wire.AEADReader("aes-256-gcm", bytes(32)).decrypt(nonce + struct.pack(">I", 65553))
    r = wire.AEADReader("aes-256-gcm", bytes(32))  # a record cut short: nothing out yet, nothing wrong
    assert r.decrypt(nonce + recs[0][:-3]) == b"" and r.pending > 0


def test_nonce_counter_carries_leftwards() -> None:
    n = bytearray(b"\x00\x00\xff\xff")
    assert wire._increment(n) and n == bytearray(b"\x00\x01\x00\x00")
    assert not wire._increment(bytearray(b"\xff\xff"))


# -- UDP payload frames in v2 (udp work connections) -----------------------------------------------


def test_udp_packets_as_v2_message_frames() -> None:
    from aiofrp.proto.udp import Datagram, PacketEncoder, PacketReader, PacketTooLarge, addr_to_wire

    enc = PacketEncoder(v2=True)
    addr = ("1.2.3.4", 5678)
    frame = enc.packet(b"hi", addr)
    assert frame == wire.encode_message(m.UDPPacket(c=b"hi", r=addr_to_wire(addr)))
    assert frame[:2] == b"\x00\x10" and frame[8:10] == b"\x00\x0d"  # a message frame, type id 13
    assert enc.packet(b"", addr) == wire.encode_message(m.UDPPacket(r=addr_to_wire(addr)))
    assert enc.ping_frame() == wire.encode_message(m.Ping()) and PacketEncoder().ping_frame() == m.encode(m.Ping())
    big = bytes(20000)  # too big for a v1 message (10 240), fine in a v2 frame (64 KiB)
    with pytest.raises(PacketTooLarge):
        PacketEncoder().packet(big, addr)
    stream = enc.packet(big, addr) + enc.ping_frame() + frame
    r = PacketReader(v2=True)
    events = [e for i in range(0, len(stream), 777) for e in r.feed(stream[i:i + 777])]
    assert events == [Datagram(big, addr), m.Ping(), Datagram(b"hi", addr)] and r.buffered == 0
    with pytest.raises(PacketTooLarge):
        enc.packet(bytes(50000), addr)
