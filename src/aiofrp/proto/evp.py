"""AES-128-CFB128 through the OpenSSL ``libcrypto`` that Python's ``ssl`` module has loaded.

frp's control channel is always AES-128-CFB (golib ``crypto``), so every frpc and frps needs that
cipher, and nothing else from ``cryptography`` on the default path. ``cryptography`` brings its own
statically linked OpenSSL in a Rust extension: importing its cipher module costs about 9.5 MB of
resident memory per process, a quarter of an idle frpc. The same OpenSSL cipher is already in the
process, in the ``libcrypto`` that ``_ssl`` links against; this module calls its EVP interface
(``EVP_CipherInit_ex``/``EVP_CipherUpdate``) with ``ctypes``, for about 0.3 MB.

``load()`` answers None where that library cannot be found or lacks the cipher (no
``/proc/self/maps``, a statically linked ``_ssl``, an OpenSSL built without AES-CFB);
``proto/crypto.py`` then uses ``cryptography``, as it does when ``AIOFRP_CRYPTO=cryptography``.
Both give the same bytes: ``tests/unit/test_crypto.py`` checks them against each other and against
known answers.
"""

from __future__ import annotations

import ctypes
import os
import ssl  # noqa: F401 - loads libcrypto into the process (the library this module binds)
from typing import Final

from .uninit import new_bytes

__all__ = ["EvpCfb", "libcrypto_path", "load"]

_c_void_p = ctypes.c_void_p
_c_int = ctypes.c_int
_c_char_p = ctypes.c_char_p

_lib: ctypes.CDLL | None = None
_cipher: int | None = None
_loaded = False

Buffer = bytes | bytearray | memoryview


def mapped_library(prefix: str) -> str | None:
    """The path of the shared library named ``prefix``* mapped into this process (``libcrypto.so``
    and ``libssl.so``: loaded by ``_ssl``), from /proc/self/maps."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            for line in maps:
                parts = line.split(None, 5)
                if len(parts) == 6:
                    path = parts[5].strip()
                    if os.path.basename(path).startswith(prefix):
                        return path
    except OSError:
        return None
    return None


def libcrypto_path() -> str | None:
    """The path of the libcrypto mapped into this process (by ``_ssl``)."""
    return mapped_library("libcrypto.so")


def load() -> bool:
    """Bind the EVP functions once; False where the loaded libcrypto cannot be used."""
    global _lib, _cipher, _loaded
    if _loaded:
        return _lib is not None
    _loaded = True
    path = libcrypto_path()
    if path is None:
        return False
    try:
        lib = ctypes.CDLL(path)  # already mapped: dlopen hands back the same library
        lib.EVP_CIPHER_CTX_new.restype = _c_void_p
        lib.EVP_CIPHER_CTX_new.argtypes = []
        lib.EVP_CIPHER_CTX_free.restype = None
        lib.EVP_CIPHER_CTX_free.argtypes = [_c_void_p]
        lib.EVP_aes_128_cfb128.restype = _c_void_p
        lib.EVP_aes_128_cfb128.argtypes = []
        lib.EVP_CipherInit_ex.restype = _c_int
        lib.EVP_CipherInit_ex.argtypes = [_c_void_p, _c_void_p, _c_void_p, _c_char_p, _c_char_p, _c_int]
        lib.EVP_CipherUpdate.restype = _c_int
        # out is a fresh bytes object made by new_bytes: ctypes passes its own buffer for c_char_p
        lib.EVP_CipherUpdate.argtypes = [_c_void_p, _c_char_p, ctypes.POINTER(_c_int), _c_char_p, _c_int]
        cipher = lib.EVP_aes_128_cfb128()
    except (OSError, AttributeError):
        return False
    if not cipher:
        return False
    _lib, _cipher = lib, cipher
    # One known answer before trusting it (NIST SP 800-38A F.3.13, CFB128-AES128.Encrypt, block 1).
    try:
        probe = EvpCfb(bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c"), bytes.fromhex("000102030405060708090a0b0c0d0e0f"), True)
        ok = probe.update(bytes.fromhex("6bc1bee22e409f96e93d7e117393172a")) == bytes.fromhex("3b3fd92eb72dad20333449f8e83cfb4a")
    except (OSError, ValueError):
        ok = False
    if not ok:
        _lib = _cipher = None
    return ok


_MAX_CHUNK: Final = 1 << 30  # EVP_CipherUpdate takes an int length


class EvpCfb:
    """One direction of AES-128-CFB128: ``update`` is continuous across calls, like a stream."""

    __slots__ = ("_ctx", "_free", "_n", "_nref", "_update")

    def __init__(self, key: bytes, iv: bytes, encrypt: bool) -> None:
        lib = _lib
        if lib is None:
            raise OSError("libcrypto is not loaded (call evp.load() first)")
        if len(key) != 16 or len(iv) != 16:
            raise ValueError("AES-128-CFB needs a 16-byte key and a 16-byte IV")
        ctx = lib.EVP_CIPHER_CTX_new()
        if not ctx:
            raise MemoryError("EVP_CIPHER_CTX_new failed")
        self._ctx = ctx
        self._free = lib.EVP_CIPHER_CTX_free
        self._update = lib.EVP_CipherUpdate
        self._n = _c_int(0)
        self._nref = ctypes.byref(self._n)
        if lib.EVP_CipherInit_ex(ctx, _cipher, None, key, iv, 1 if encrypt else 0) != 1:
            raise OSError("EVP_CipherInit_ex failed")

    def update(self, data: Buffer) -> bytes:
        size = len(data)
        if not size:
            return b""
        if type(data) is not bytes:
            data = bytes(data)
        if size > _MAX_CHUNK:
            return b"".join(self.update(data[i : i + _MAX_CHUNK]) for i in range(0, size, _MAX_CHUNK))
        # a new, uninitialised bytes object that EVP_CipherUpdate fills (proto/uninit.py): one
        # allocation and no copy, as C extensions (cryptography among them) build their results
        out: bytes = new_bytes(None, size)
        n = self._n
        if self._update(self._ctx, out, self._nref, data, size) != 1 or n.value != size:
            raise OSError("EVP_CipherUpdate failed")
        return out

    def __del__(self) -> None:
        ctx = getattr(self, "_ctx", None)
        if ctx:
            self._ctx = None
            self._free(ctx)
