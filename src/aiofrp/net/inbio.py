"""The incoming BIO of :class:`~aiofrp.net.tls.TLSTransport`: ciphertext lent to OpenSSL, not copied in.

``ssl.MemoryBIO.write`` copies every chunk read from the socket into OpenSSL's memory buffer, and
zeroes the room for it first (``BUF_MEM_grow_clean``); OpenSSL then copies each record out of that
buffer into its record buffer. On frps receiving a bulk transfer (iperf3 ``-R`` through a tcp
proxy) the zeroing and that first copy were 4.8 % of its perf samples; without them its CPU per
byte received fell about a tenth (docs/performance.md, "Lending each read to OpenSSL").

:class:`IncomingBIO` points the same memory BIO at the ``bytes`` object itself instead
(``BIO_C_SET_BUF_MEM`` through ``ctypes``, the BIO told not to free it), and keeps that object
alive while OpenSSL reads from it. OpenSSL reads records straight out of the chunk, as it does out
of a socket. Bytes left unread when the next chunk comes (reading paused) are read out and put in
front of it. Nothing ever writes into the BIO again: the buffer it points at is not OpenSSL's.

The BIO is reached through the ``MemoryBIO`` object (CPython's ``PySSLMemoryBIO``: the object
header, then ``BIO *``). ``available()`` checks that layout before trusting it: the object's size,
that the pointer leads to a BIO whose method is ``BIO_s_mem()``, and a round trip of a probe
through a fresh BIO. Where anything does not match (another interpreter, a statically linked
``_ssl``, no ``/proc/self/maps``), or with ``AIOFRP_TLS_LEND=0``, ``IncomingBIO`` copies with
``MemoryBIO.write`` as before. ``tests/unit/test_inbio.py`` runs TLS both ways.
"""

from __future__ import annotations

import ctypes
import os
import ssl
import sys
from collections.abc import Callable
from typing import Final

from ..proto.evp import libcrypto_path

__all__ = ["IncomingBIO", "available"]

_BIO_C_SET_BUF_MEM: Final = 114
_BIO_NOCLOSE: Final = 0
_POINTER: Final = ctypes.sizeof(ctypes.c_void_p)
_BIO_OFFSET: Final = object.__basicsize__  # PySSLMemoryBIO: PyObject_HEAD, then BIO *bio
_BYTES_DATA: Final = bytes.__basicsize__ - 1  # PyBytesObject: the header, then char ob_sval[1]


class _BufMem(ctypes.Structure):
    """OpenSSL's ``BUF_MEM``; the BIO copies it into its read pointer when it is set."""

    _fields_ = [
        ("length", ctypes.c_size_t),
        ("data", ctypes.c_void_p),
        ("max", ctypes.c_size_t),
        ("flags", ctypes.c_ulong),
    ]


# One BUF_MEM for every BIO: BIO_C_SET_BUF_MEM copies it into the BIO's read pointer at once;
# afterwards the BIO uses the one it was given only to write (never done here) and to work out a
# seek offset (read, never used). BIO_NOCLOSE: freeing the BIO leaves it and the chunk alone.
# The function is bound through PyDLL, which keeps the GIL, so no other thread fills it meanwhile.
_bufmem = _BufMem()
_bufmem_ref = ctypes.byref(_bufmem)
_ctrl: Callable[[int, int, int, object], int] | None = None
_checked = False


def _bio_of(bio: ssl.MemoryBIO) -> int:
    return ctypes.c_void_p.from_address(id(bio) + _BIO_OFFSET).value or 0


def _set(bio_ptr: int, data: bytes) -> None:
    buf = _bufmem
    buf.length = buf.max = len(data)
    buf.data = id(data) + _BYTES_DATA  # an address only: IncomingBIO keeps the object alive
    _ctrl(bio_ptr, _BIO_C_SET_BUF_MEM, _BIO_NOCLOSE, _bufmem_ref)  # type: ignore[misc]


def available() -> bool:
    """Whether chunks can be lent to OpenSSL in this process (checked once)."""
    global _ctrl, _checked
    if _checked:
        return _ctrl is not None
    _checked = True
    if os.environ.get("AIOFRP_TLS_LEND", "1") == "0" or sys.implementation.name != "cpython":
        return False
    if ssl.MemoryBIO.__basicsize__ != _BIO_OFFSET + 2 * _POINTER:  # BIO *bio; int eof_written (padded)
        return False
    path = libcrypto_path()
    if path is None:
        return False
    try:
        lib = ctypes.PyDLL(path)  # already mapped by _ssl; PyDLL: called with the GIL held
        ctrl = lib.BIO_ctrl
        ctrl.restype = ctypes.c_long
        ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
        s_mem = lib.BIO_s_mem
        s_mem.restype = ctypes.c_void_p
        s_mem.argtypes = []
        method = s_mem()
    except (OSError, AttributeError):
        return False
    probe = ssl.MemoryBIO()
    ptr = _bio_of(probe)
    if not ptr or not method:
        return False
    # struct bio_st starts with the method (OpenSSL 1.1) or the library context and then the
    # method (3.x): the pointer is a memory BIO before anything is called with it
    head = (ctypes.c_void_p * 2).from_address(ptr)
    if method not in (head[0], head[1]):
        return False
    _ctrl = ctrl
    sample = b"aiofrp: lent to OpenSSL"
    try:
        _set(ptr, sample)
        ok = probe.pending == len(sample) and probe.read(5) == sample[:5] and probe.read() == sample[5:]
        ok = ok and probe.pending == 0
    except (OSError, ssl.SSLError):
        ok = False
    if not ok:
        _ctrl = None
    return ok


class IncomingBIO:
    """The incoming ``ssl.MemoryBIO`` of one SSLObject, fed by lending it each chunk."""

    __slots__ = ("_lent", "_ptr", "bio")

    def __init__(self) -> None:
        self.bio = ssl.MemoryBIO()
        self._ptr = _bio_of(self.bio) if available() else 0
        self._lent = b""

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Give OpenSSL the next ciphertext (after whatever it has not read yet)."""
        ptr = self._ptr
        if not ptr:
            self.bio.write(data)
            return
        if type(data) is not bytes:
            data = bytes(data)  # a view or bytearray may be reused by its producer
        bio = self.bio
        if bio.pending:
            data = bio.read() + data
        _set(ptr, data)
        self._lent = data

    def release(self) -> None:
        """Point the BIO at nothing, so that nothing can read a chunk after its owner is gone."""
        if self._ptr and self._lent:
            _set(self._ptr, b"")
            self._lent = b""
