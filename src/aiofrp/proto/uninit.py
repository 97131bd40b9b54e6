"""Buffers whose bytes are not written before C code fills them, through ``ctypes.pythonapi``.

``bytearray(n)`` writes n zeros, and ``bytes`` has no constructor that leaves room to fill: a C
function writing its result (OpenSSL's ``EVP_CipherUpdate`` in ``proto/evp.py``, ISA-L's
``ec_encode_data`` in ``proto/reedsolomon.py``, OpenSSL's reads into the read buffers of
``net/tls.py`` and ``net/tls_socket.py``) would otherwise pay a memset or a copy. ``PyBytes_FromStringAndSize(NULL, n)`` and
``PyByteArray_FromStringAndSize(NULL, n)`` make such objects, as C extensions build their results.

Only the part the C code wrote may be handed on. A bytes object to fill must be new and referenced
only by its filler until filled, and never of size 0 or 1: CPython shares the empty object (and
the one-byte objects made from data).
"""

from __future__ import annotations

import ctypes

__all__ = ["new_bytearray", "new_bytes"]

new_bytes = ctypes.pythonapi.PyBytes_FromStringAndSize
new_bytes.restype = ctypes.py_object
new_bytes.argtypes = [ctypes.c_void_p, ctypes.c_ssize_t]

new_bytearray = ctypes.pythonapi.PyByteArray_FromStringAndSize
new_bytearray.restype = ctypes.py_object
new_bytearray.argtypes = [ctypes.c_void_p, ctypes.c_ssize_t]
