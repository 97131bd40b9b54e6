"""frp's key material and the AES-128-CFB stream cipher (golib ``crypto``).

Each direction of an encrypted stream starts with a random 16-byte IV in clear, sent lazily
with the first write; the rest is AES-128 in CFB mode with 128-bit feedback, continuous across
writes. Keys come from PBKDF2-HMAC-SHA1(token or secret key, salt "frp", 64 rounds, 16 bytes).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
from collections.abc import Callable
from typing import Protocol

from aiofrp.proto.errors import ProtocolError

__all__ = [
    "BACKEND",
    "IV_SIZE",
    "CFBDecryptor",
    "CFBEncryptor",
    "auth_key",
    "derive_key",
    "one_shot_decrypt",
    "one_shot_encrypt",
    "verify_auth_key",
]

IV_SIZE = 16
_SALT = b"frp"
_ITERATIONS = 64
_KEY_SIZE = 16

Buffer = bytes | bytearray | memoryview


class _Stream(Protocol):
    def update(self, data: Buffer, /) -> bytes: ...


def _cryptography_backend() -> Callable[[bytes, bytes, bool], _Stream]:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

    try:  # cryptography >= 47: CFB lives in the "decrepit" package
        from cryptography.hazmat.decrepit.ciphers.modes import CFB
    except ImportError:  # pragma: no cover - older cryptography
        from cryptography.hazmat.primitives.ciphers.modes import CFB

    def stream(key: bytes, iv: bytes, encrypt: bool) -> _Stream:
        cipher = Cipher(algorithms.AES(key), CFB(iv))
        return cipher.encryptor() if encrypt else cipher.decryptor()

    return stream


def _pick_backend() -> tuple[str, Callable[[bytes, bytes, bool], _Stream]]:
    """OpenSSL's EVP through the libcrypto ``ssl`` loaded (``proto/evp.py``: 9 MB less per process),
    else ``cryptography``; ``AIOFRP_CRYPTO=cryptography`` forces the latter."""
    if os.environ.get("AIOFRP_CRYPTO", "").lower() != "cryptography":
        from aiofrp.proto import evp

        if evp.load():
            return "evp", evp.EvpCfb
    return "cryptography", _cryptography_backend()


BACKEND, _stream = _pick_backend()


def auth_key(token: str, timestamp: int) -> str:
    """frp's privilege_key / sign_key: lowercase hex MD5 of token followed by decimal timestamp."""
    data = token.encode() + str(timestamp).encode()
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def secret_equal(got: str, want: str) -> bool:
    """Compare a received secret (password, group key, ...) with the expected one in constant time."""
    return hmac.compare_digest(got.encode(), want.encode())


def verify_auth_key(token: str, timestamp: int, key: str) -> bool:
    """Check a received privilege_key / sign_key in constant time."""
    return hmac.compare_digest(auth_key(token, timestamp).encode(), key.encode())


@functools.lru_cache(maxsize=64)
def derive_key(token: str) -> bytes:
    """AES-128 key for a token or secret key: PBKDF2-HMAC-SHA1(token, "frp", 64, 16)."""
    return hashlib.pbkdf2_hmac("sha1", token.encode(), _SALT, _ITERATIONS, _KEY_SIZE)


class CFBEncryptor:
    """Writer side of one direction: the first non-empty output is prefixed by the IV."""

    __slots__ = ("_ctx", "_iv", "_key")

    def __init__(self, key: bytes, iv: bytes | None = None) -> None:
        if iv is not None and len(iv) != IV_SIZE:
            raise ValueError(f"IV must be {IV_SIZE} bytes, got {len(iv)}")
        self._key = key
        self._iv = iv
        self._ctx: _Stream | None = None

    def encrypt(self, data: Buffer) -> bytes:
        """Encrypt the next part of the stream."""
        ctx = self._ctx
        if ctx is not None:
            return ctx.update(data)
        if not data:
            return b""
        iv = self._iv if self._iv is not None else os.urandom(IV_SIZE)
        self._ctx = ctx = _stream(self._key, iv, True)
        self._iv = None
        return iv + ctx.update(data)


class CFBDecryptor:
    """Reader side of one direction: the first 16 bytes received are the IV."""

    __slots__ = ("_ctx", "_iv", "_key")

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._iv = bytearray()
        self._ctx: _Stream | None = None

    def decrypt(self, data: Buffer) -> bytes:
        """Decrypt the next part of the stream (b"" while the IV is still incomplete)."""
        ctx = self._ctx
        if ctx is not None:
            return ctx.update(data)
        need = IV_SIZE - len(self._iv)
        self._iv += data[:need]
        if len(self._iv) < IV_SIZE:
            return b""
        self._ctx = ctx = _stream(self._key, bytes(self._iv), False)
        self._iv = bytearray()
        rest = data[need:]
        return ctx.update(rest) if rest else b""


def one_shot_encrypt(key: bytes, plaintext: Buffer) -> bytes:
    """Encrypt one NAT-hole datagram: random IV followed by the ciphertext."""
    iv = os.urandom(IV_SIZE)
    return iv + _stream(key, iv, True).update(plaintext)


def one_shot_decrypt(key: bytes, data: Buffer) -> bytes:
    """Decrypt one NAT-hole datagram (IV followed by ciphertext)."""
    if len(data) < IV_SIZE:
        raise ProtocolError(f"encrypted datagram of {len(data)} bytes is shorter than its {IV_SIZE}-byte IV")
    view = memoryview(data)
    return _stream(key, bytes(view[:IV_SIZE]), False).update(view[IV_SIZE:])
