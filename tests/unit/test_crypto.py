"""Key material and the AES-128-CFB stream cipher."""

from __future__ import annotations

import itertools
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from aiofrp.proto.crypto import (
    IV_SIZE,
    CFBDecryptor,
    CFBEncryptor,
    auth_key,
    derive_key,
    one_shot_decrypt,
    one_shot_encrypt,
    verify_auth_key,
)
from aiofrp.proto.errors import ProtocolError

KEY = derive_key("123")
IV = bytes(range(16))


def cfb128_reference(key: bytes, iv: bytes, plaintext: bytes) -> bytes:
    """CFB-128 built from raw AES block encryptions: C_i = P_i xor AES(C_(i-1)), C_0 = IV."""
    ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    out = bytearray()
    feedback = iv
    for i in range(0, len(plaintext), 16):
        block = plaintext[i : i + 16]
        stream = ecb.update(feedback)
        cipher_block = bytes(a ^ b for a, b in zip(block, stream, strict=False))
        out += cipher_block
        feedback = cipher_block
    return bytes(out)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(points)]


# -- auth keys -----------------------------------------------------------------------------------


def test_auth_key_vectors() -> None:
    assert auth_key("123", 1700000000) == "8c89053b65639170f09e7b2bef70ed0c"
    assert auth_key("abc", 1700000000) == "22bd6333f840eeeee03ad14f75fd96ac"
    assert len(auth_key("", 0)) == 32


def test_verify_auth_key() -> None:
    assert verify_auth_key("123", 1700000000, "8c89053b65639170f09e7b2bef70ed0c")
    assert not verify_auth_key("123", 1700000001, "8c89053b65639170f09e7b2bef70ed0c")
    assert not verify_auth_key("124", 1700000000, "8c89053b65639170f09e7b2bef70ed0c")
    assert not verify_auth_key("123", 1700000000, "")


def test_derive_key_vectors_and_cache() -> None:
    assert derive_key("123").hex() == "1f6420961e5de72df33b231b40fb20e0"
    assert derive_key("").hex() == "cdc9dc4c472c37331281df4c232a8407"
    before = derive_key.cache_info().hits
    derive_key("123")
    assert derive_key.cache_info().hits == before + 1


# -- stream cipher -------------------------------------------------------------------------------


def test_iv_is_sent_once_with_first_non_empty_write() -> None:
    enc = CFBEncryptor(KEY)
    assert enc.encrypt(b"") == b""
    first = enc.encrypt(b"hello")
    assert len(first) == IV_SIZE + 5
    second = enc.encrypt(b"world!")
    assert len(second) == 6
    assert enc.encrypt(b"") == b""


def test_random_ivs() -> None:
    a = CFBEncryptor(KEY).encrypt(b"x")[:IV_SIZE]
    b = CFBEncryptor(KEY).encrypt(b"x")[:IV_SIZE]
    assert a != b


def test_fixed_iv_matches_go_cfb() -> None:
    plaintext = bytes(range(256)) * 3 + b"tail"
    enc = CFBEncryptor(KEY, iv=IV)
    out = b"".join(enc.encrypt(part) for part in split(plaintext, [1, 17, 33, 500, 501]))
    assert out[:IV_SIZE] == IV
    try:
        from cryptography.hazmat.decrepit.ciphers.modes import CFB
    except ImportError:  # pragma: no cover - cryptography < 47
        CFB = modes.CFB  # type: ignore[misc]  # the same class, where cryptography < 47 kept it
    reference = Cipher(algorithms.AES(KEY), CFB(IV)).encryptor().update(plaintext)
    assert out[IV_SIZE:] == reference
    assert out[IV_SIZE:] == cfb128_reference(KEY, IV, plaintext)
    dec = CFBDecryptor(KEY)
    assert dec.decrypt(out) == plaintext


def test_decrypt_independent_reference() -> None:
    plaintext = b"frp control message " * 20
    wire = IV + cfb128_reference(KEY, IV, plaintext)
    dec = CFBDecryptor(KEY)
    assert b"".join(dec.decrypt(part) for part in split(wire, [3, 9, 16, 20, 21])) == plaintext


def test_iv_split_over_calls() -> None:
    wire = CFBEncryptor(KEY).encrypt(b"payload")
    dec = CFBDecryptor(KEY)
    assert dec.decrypt(wire[:5]) == b""
    assert dec.decrypt(wire[5:15]) == b""
    assert dec.decrypt(wire[15:16]) == b""
    assert dec.decrypt(b"") == b""
    assert dec.decrypt(wire[16:]) == b"payload"


def test_buffer_types() -> None:
    enc = CFBEncryptor(KEY)
    dec = CFBDecryptor(KEY)
    wire = enc.encrypt(bytearray(b"abc")) + enc.encrypt(memoryview(b"defgh")[1:])
    assert dec.decrypt(memoryview(wire)[:10]) + dec.decrypt(bytearray(wire[10:])) == b"abcefgh"


def test_wrong_key_garbles() -> None:
    wire = CFBEncryptor(KEY).encrypt(b"secret data")
    assert CFBDecryptor(derive_key("other")).decrypt(wire) != b"secret data"


def test_bad_fixed_iv() -> None:
    with pytest.raises(ValueError):
        CFBEncryptor(KEY, iv=b"short")


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.binary(max_size=200), max_size=8),
    st.lists(st.integers(min_value=0), max_size=8),
    st.text(max_size=10),
)
def test_round_trip_arbitrary_splits(writes: list[bytes], cuts: list[int], token: str) -> None:
    key = derive_key(token)
    enc = CFBEncryptor(key)
    wire = b"".join(enc.encrypt(w) for w in writes)
    plaintext = b"".join(writes)
    assert len(wire) == (len(plaintext) + IV_SIZE if plaintext else 0)
    dec = CFBDecryptor(key)
    assert b"".join(dec.decrypt(part) for part in split(wire, cuts)) == plaintext


# -- one-shot datagrams --------------------------------------------------------------------------


def test_one_shot() -> None:
    key = derive_key("sk")
    data = one_shot_encrypt(key, b"nat hole sid")
    assert len(data) == IV_SIZE + 12
    assert one_shot_decrypt(key, data) == b"nat hole sid"
    assert one_shot_decrypt(key, memoryview(data)) == b"nat hole sid"
    assert CFBDecryptor(key).decrypt(data) == b"nat hole sid"
    assert one_shot_decrypt(key, IV) == b""
    assert len(one_shot_encrypt(key, b"")) == IV_SIZE
    wire = CFBEncryptor(key, iv=IV).encrypt(b"x" * 40)
    assert one_shot_decrypt(key, wire) == b"x" * 40


def test_one_shot_too_short() -> None:
    with pytest.raises(ProtocolError, match="15 bytes"):
        one_shot_decrypt(KEY, b"\x00" * 15)


def test_no_deprecation_warning() -> None:
    code = (
        "import aiofrp.proto.crypto as c; k = c.derive_key('t'); "
        "c.CFBDecryptor(k).decrypt(c.CFBEncryptor(k).encrypt(b'x')); c.one_shot_encrypt(k, b'y')"
    )
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], check=False, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
