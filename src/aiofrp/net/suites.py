"""TLS 1.3 cipher suites in Go's order: AES-128-GCM first.

OpenSSL's default TLS 1.3 order is AES-256-GCM, ChaCha20-Poly1305, AES-128-GCM, and CPython's
server contexts choose by their own order (``OP_CIPHER_SERVER_PREFERENCE``), so two aiofrp peers
agreed on AES-256-GCM. Go's crypto/tls, on a machine with AES instructions, orders AES-128-GCM,
AES-256-GCM, ChaCha20-Poly1305 and its server ignores the client's order: Go frps and Go frpc
(and Go frps with our frpc) speak AES-128-GCM. AES-128 runs 10 rounds per block where AES-256
runs 14; on the project's VM OpenSSL does 6.1 GB/s of AES-128-GCM against 5.1 GB/s of AES-256-GCM
(``openssl speed -evp``, 16 KiB blocks), and a bulk transfer through frp encrypts and decrypts
every byte once each (docs/performance.md, "TLS 1.3 suites in Go's order").

Python 3.11's ``ssl`` has no way to set the TLS 1.3 suites (``set_ciphers`` covers TLS 1.2 and
older), so ``SSL_CTX_set_ciphersuites`` is called through ``ctypes`` on the libssl that ``_ssl``
has loaded (dlopen of a mapped library hands back the same one), on the ``SSL_CTX *`` of the
context (CPython's ``PySSLContext``: the object header, then ``SSL_CTX *ctx``). Before the call
the pointer is checked (``SSL_CTX_get_options`` must give ``ctx.options``); after it,
``ctx.get_ciphers()`` must list the suites in the new order. Where anything does not match
(another interpreter, a statically linked ``_ssl``, no ``/proc/self/maps``), or with
``AIOFRP_TLS_GO_SUITES=0``, the context keeps OpenSSL's order: every peer still agrees on a
suite, only the CPU per byte differs.
"""

from __future__ import annotations

import ctypes
import os
import ssl
import sys
from typing import Final

from ..proto.evp import mapped_library

__all__ = ["GO_TLS13_SUITES", "prefer_go_suites"]

GO_TLS13_SUITES: Final = ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")
_CTX_OFFSET: Final = object.__basicsize__  # PySSLContext: PyObject_HEAD, then SSL_CTX *ctx

_lib: ctypes.CDLL | None = None
_loaded = False


def _load() -> ctypes.CDLL | None:
    global _lib, _loaded
    if _loaded:
        return _lib
    _loaded = True
    if os.environ.get("AIOFRP_TLS_GO_SUITES", "1") == "0" or sys.implementation.name != "cpython":
        return None
    path = mapped_library("libssl.so")
    if path is None:
        return None
    try:
        lib = ctypes.CDLL(path)  # already mapped: the same library _ssl uses
        lib.SSL_CTX_get_options.restype = ctypes.c_uint64
        lib.SSL_CTX_get_options.argtypes = [ctypes.c_void_p]
        lib.SSL_CTX_set_ciphersuites.restype = ctypes.c_int
        lib.SSL_CTX_set_ciphersuites.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    except (OSError, AttributeError):  # not OpenSSL 1.1.1+ (no TLS 1.3 suites to order)
        return None
    _lib = lib
    return lib


def _order(ctx: ssl.SSLContext) -> list[str]:
    return [c["name"] for c in ctx.get_ciphers() if c.get("protocol") == "TLSv1.3"]


def prefer_go_suites(ctx: ssl.SSLContext) -> bool:
    """Order the TLS 1.3 suites of ``ctx`` as Go does; False (the context unchanged) where that
    cannot be done safely."""
    lib = _load()
    if lib is None or type(ctx).__basicsize__ < _CTX_OFFSET + ctypes.sizeof(ctypes.c_void_p):
        return False
    if sorted(_order(ctx)) != sorted(GO_TLS13_SUITES):
        return False  # a restricted or unusual build: leave its choice alone
    ptr = ctypes.c_void_p.from_address(id(ctx) + _CTX_OFFSET).value
    if not ptr or lib.SSL_CTX_get_options(ptr) != ctx.options:
        return False
    if lib.SSL_CTX_set_ciphersuites(ptr, ":".join(GO_TLS13_SUITES).encode()) != 1:
        return False
    return tuple(_order(ctx)) == GO_TLS13_SUITES
