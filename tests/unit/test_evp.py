"""AES-128-CFB through the libcrypto of ``ssl`` (proto/evp.py) against ``cryptography``, and the
self-signed certificate made in a child process (net/tls.py): what keeps ``cryptography`` out of
an idle frps and frpc."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys

import pytest
from cryptography import x509
from cryptography.hazmat.decrepit.ciphers.modes import CFB
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from hypothesis import given, settings
from hypothesis import strategies as st

from aiofrp.net import tls
from aiofrp.proto import crypto, evp


def _reference(key: bytes, iv: bytes, encrypt: bool):
    cipher = Cipher(algorithms.AES(key), CFB(iv))
    return cipher.encryptor() if encrypt else cipher.decryptor()


def test_linux_uses_the_libcrypto_of_ssl() -> None:
    assert evp.load()
    assert crypto.BACKEND == "evp"
    path = evp.libcrypto_path()
    assert path is not None and os.path.basename(path).startswith("libcrypto.so")


def test_nist_vectors() -> None:
    # NIST SP 800-38A F.3.13 / F.3.14: CFB128-AES128, all four blocks, fed in odd pieces
    key = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
    iv = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
    plain = bytes.fromhex(
        "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
        "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710")
    cipher = bytes.fromhex(
        "3b3fd92eb72dad20333449f8e83cfb4ac8a64537a0b3a93fcde3cdad9f1ce58b"
        "26751f67a3cbb140b1808cf187a4f4dfc04b05357c5d1c0eeac4c66f9ff7f2e6")
    enc = evp.EvpCfb(key, iv, True)
    assert enc.update(plain[:5]) + enc.update(plain[5:37]) + enc.update(plain[37:]) == cipher
    dec = evp.EvpCfb(key, iv, False)
    assert b"".join(dec.update(cipher[i : i + 7]) for i in range(0, len(cipher), 7)) == plain


@settings(max_examples=200, deadline=None)
@given(key=st.binary(min_size=16, max_size=16), iv=st.binary(min_size=16, max_size=16),
       pieces=st.lists(st.binary(max_size=3000), max_size=12), kind=st.sampled_from(["bytes", "bytearray", "memoryview"]))
def test_same_bytes_as_cryptography(key: bytes, iv: bytes, pieces: list[bytes], kind: str) -> None:
    wrap = {"bytes": bytes, "bytearray": bytearray, "memoryview": memoryview}[kind]
    for encrypt in (True, False):
        ours, ref = evp.EvpCfb(key, iv, encrypt), _reference(key, iv, encrypt)
        for piece in pieces:
            got = ours.update(wrap(piece))
            assert type(got) is bytes
            assert got == ref.update(piece)


def test_outputs_are_fresh_objects() -> None:
    # each result is a new bytes object that nothing else writes to afterwards
    enc = evp.EvpCfb(b"k" * 16, b"i" * 16, True)
    first = enc.update(b"a")
    kept = bytes(first)
    second = enc.update(b"a")
    assert first == kept and first is not second
    assert enc.update(b"") == b""


def test_bad_key_or_iv() -> None:
    with pytest.raises(ValueError, match="16-byte"):
        evp.EvpCfb(b"short", b"i" * 16, True)
    with pytest.raises(ValueError, match="16-byte"):
        evp.EvpCfb(b"k" * 16, b"i" * 15, True)


def test_backends_interoperate_across_processes() -> None:
    # a stream encrypted with the cryptography backend (forced by AIOFRP_CRYPTO) decrypts here
    key = crypto.derive_key("interop")
    code = ("import json, sys; import aiofrp.proto.crypto as c; e = c.CFBEncryptor(c.derive_key('interop'));"
            "out = e.encrypt(b'hello ') + e.encrypt(b'world' * 1000);"
            "json.dump({'backend': c.BACKEND, 'x509': 'cryptography.x509' in sys.modules, 'data': out.hex()}, sys.stdout)")
    for env, backend in (({"AIOFRP_CRYPTO": "cryptography"}, "cryptography"), ({}, "evp")):
        done = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True,
                              text=True, timeout=60, check=True)
        got = json.loads(done.stdout)
        assert got["backend"] == backend
        dec = crypto.CFBDecryptor(key)
        assert dec.decrypt(bytes.fromhex(got["data"])) == b"hello " + b"world" * 1000


def test_self_signed_pair_from_a_child_process() -> None:
    # The child is used where this process has not loaded cryptography.x509 (frps); here it has,
    # so ask a fresh interpreter, and check that it ended without x509 and with a usable pair.
    code = ("import json, sys; from aiofrp.net import tls; cert, key = tls.self_signed_pair();"
            "json.dump({'x509': 'cryptography.x509' in sys.modules, 'cert': cert.decode(), 'key': key.decode()}, sys.stdout)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    got = json.loads(done.stdout)
    assert got["x509"] is False
    cert = x509.load_pem_x509_certificate(got["cert"].encode())
    assert cert.issuer == cert.subject
    assert got["key"].startswith("-----BEGIN PRIVATE KEY-----")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls._load_pem_chain(ctx, got["cert"].encode(), got["key"].encode())


def test_self_signed_pair_when_the_child_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    # A child that cannot run (a frozen or odd interpreter) falls back to making it here.
    monkeypatch.delitem(sys.modules, "cryptography.x509")
    monkeypatch.setattr(sys, "executable", "/bin/false")
    pending = tls.start_self_signed_pair()
    cert, key = pending()
    assert pending() == (cert, key)  # made once
    assert x509.load_pem_x509_certificate(cert).issuer == x509.Name([])
    assert key.startswith(b"-----BEGIN PRIVATE KEY-----")


@pytest.mark.parametrize("memfd", [True, False], ids=["memfd", "tempfile"])
def test_load_pem_chain_through_memfds_or_a_temporary_directory(monkeypatch: pytest.MonkeyPatch, memfd: bool) -> None:
    # Linux: two memfds read back through /proc/self/fd (no tempfile import); elsewhere, or when
    # memfd_create fails, a temporary directory. Both load the pair, and leave no descriptor open.
    if not memfd:
        def no_memfd(name: str, flags: int = 0) -> int:
            raise OSError(38, "Function not implemented")
        monkeypatch.setattr(os, "memfd_create", no_memfd, raising=False)
    elif not hasattr(os, "memfd_create"):
        pytest.skip("no memfd_create here")
    cert, key = tls.self_signed_pair()
    before = set(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else set()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls._load_pem_chain(ctx, cert, key)
    if before:
        assert set(os.listdir("/proc/self/fd")) <= before
    with pytest.raises(ssl.SSLError):  # a key that is not the certificate's
        tls._load_pem_chain(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), cert, tls.self_signed_pair()[1])
