"""Reed–Solomon erasure coding over GF(2^8), bit-compatible with klauspost/reedsolomon (the codec
kcp-go uses for its FEC parity shards).

klauspost's default code (``reedsolomon.New``): the field GF(2^8) with the generating polynomial
x^8 + x^4 + x^3 + x^2 + 1 (0x11D) and generator 2; the encoding matrix is the (data + parity) x data
Vandermonde matrix ``V[r][c] = r ** c`` (``r`` taken as a field element, ``0 ** 0 = 1``) times the
inverse of its top square, so the top rows are the identity (data shards pass unchanged) and every
square subset of rows is invertible (any ``data`` of the shards rebuild the rest).

No maintained Python library builds this matrix (``reedsolo`` is the polynomial BCH view, ``zfec``
evaluates at other points), so the matrices are built here. The byte work (parity = matrix rows times
the data shards) is done by Intel's ISA-L where it is installed: ``ec_encode_data`` takes any
coefficient matrix and runs its SIMD kernels, bit for bit the same products (:func:`accelerator`).
Without it, by C code of the standard library: ``bytes.translate`` multiplies a whole shard by a
constant, big-int XOR adds shards (about 8x the CPU: 60 against 7 us for 10 shards of 1,400 bytes).
"""

from __future__ import annotations

import ctypes
import logging
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from .uninit import new_bytes

__all__ = ["ReedSolomon", "accelerator", "gf_mul"]

log = logging.getLogger("aiofrp.proto.reedsolomon")

_POLY = 0x11D
EXP = [0] * 512
LOG = [0] * 256
_x = 1
for _i in range(255):
    EXP[_i] = _x
    LOG[_x] = _i
    _x <<= 1
    if _x & 0x100:
        _x ^= _POLY
for _i in range(255, 512):
    EXP[_i] = EXP[_i - 255]


def gf_mul(a: int, b: int) -> int:
    if a == 0 or b == 0:
        return 0
    return EXP[LOG[a] + LOG[b]]


def gf_inv(a: int) -> int:
    if a == 0:
        raise ZeroDivisionError("0 has no inverse in GF(2^8)")
    return EXP[255 - LOG[a]]


def gf_exp(a: int, n: int) -> int:
    if n == 0:
        return 1
    if a == 0:
        return 0
    return EXP[(LOG[a] * n) % 255]


# multiplication tables for bytes.translate: _MUL[c][x] = c * x
_MUL = [bytes(gf_mul(c, x) for x in range(256)) for c in range(256)]

Matrix = list[list[int]]


def mat_mul(a: Matrix, b: Matrix) -> Matrix:
    cols = len(b[0])
    out: Matrix = []
    for row in a:
        r = []
        for c in range(cols):
            acc = 0
            for k, v in enumerate(row):
                acc ^= gf_mul(v, b[k][c])
            r.append(acc)
        out.append(r)
    return out


def mat_inv(m: Matrix) -> Matrix:
    """Gauss–Jordan inverse; ValueError if singular."""
    n = len(m)
    work = [list(row) + [1 if i == j else 0 for j in range(n)] for i, row in enumerate(m)]
    for col in range(n):
        pivot = next((r for r in range(col, n) if work[r][col]), None)
        if pivot is None:
            raise ValueError("singular matrix")
        work[col], work[pivot] = work[pivot], work[col]
        inv = gf_inv(work[col][col])
        work[col] = [gf_mul(v, inv) for v in work[col]]
        for r in range(n):
            f = work[r][col]
            if r != col and f:
                pr = work[col]
                work[r] = [v ^ gf_mul(f, p) for v, p in zip(work[r], pr, strict=True)]
    return [row[n:] for row in work]


@lru_cache(maxsize=8)
def encoding_matrix(data: int, total: int) -> Matrix:
    """klauspost's ``buildMatrix``: Vandermonde times the inverse of its top square.

    Cached (shared, never mutated): building it costs about 1.5 ms of CPU, which every KCP session
    with FEC paid on its first datagram, from any source address."""
    vm = [[gf_exp(r, c) for c in range(data)] for r in range(total)]
    return mat_mul(vm, mat_inv(vm[:data]))


@lru_cache(maxsize=512)
def decoding_matrix(data: int, total: int, rows: tuple[int, ...]) -> Matrix:
    """The inverse of the encoding matrix's ``rows`` (the shards present): data shard ``k`` is
    row ``k`` of it times those shards.

    Cached process-wide (shared, never mutated): a 10 + 3 code has C(13, 10) = 286 sets of
    present rows, each inverse ~0.5 ms of Python to build, and every KCP session meets the same ones."""
    return mat_inv([encoding_matrix(data, total)[r] for r in rows])


def _combine(coeffs: Sequence[int], shards: Sequence[bytes], size: int) -> bytes:
    """sum(coeffs[i] * shards[i]) over GF(2^8), byte by byte (shards all ``size`` long)."""
    acc = 0
    for c, s in zip(coeffs, shards, strict=True):
        if c == 0:
            continue
        acc ^= int.from_bytes(s if c == 1 else s.translate(_MUL[c]), "little")
    return acc.to_bytes(size, "little")


# -- ISA-L ------------------------------------------------------------------------------------

ACCEL_MIN = 64  # bytes per shard: below this the table setup costs more than it saves


class Isal:
    """ISA-L's general GF(2^8) dot products (``ec_init_tables``, ``ec_encode_data``) through ctypes.

    ISA-L's erasure-code functions take the coefficient matrix from the caller, so klauspost's
    matrices (built above) run on its SIMD kernels unchanged; ISA-L's own matrix generators are not
    used (they are not klauspost's, which is also why pyeclib's codecs themselves cannot be)."""

    def __init__(self, lib: ctypes.CDLL, path: str) -> None:
        self.path = path
        init = lib.ec_init_tables
        init.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p]
        init.restype = None
        encode = lib.ec_encode_data
        encode.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                           ctypes.c_void_p]
        encode.restype = None
        self._init = init
        self._encode = encode

    def tables(self, rows: Sequence[Sequence[int]]) -> ctypes.Array[ctypes.c_char]:
        """ISA-L's expanded tables (32 bytes per coefficient) of a ``len(rows)`` x k matrix."""
        k, n = len(rows[0]), len(rows)
        out = ctypes.create_string_buffer(32 * k * n)
        self._init(k, n, bytes(v for row in rows for v in row), out)
        return out

    def apply(self, tables: ctypes.Array[ctypes.c_char], n: int, sources: Sequence[bytes | bytearray | memoryview],
              size: int) -> list[bytes]:
        """The ``n`` rows of the matrix behind ``tables`` times ``sources`` (k buffers of at
        least ``size`` >= ACCEL_MIN bytes): n new bytes objects of ``size``."""
        k = len(sources)
        # c_char_p points into a bytes object's own buffer: other buffers are copied into one
        srcs = [s if type(s) is bytes else bytes(s) for s in sources]
        # uninitialised bytes objects that ec_encode_data fills (proto/uninit.py: one allocation,
        # no copy; never of size 0 or 1, which CPython shares: ACCEL_MIN)
        outs = [new_bytes(None, size) for _ in range(n)]
        self._encode(size, k, n, tables, (ctypes.c_char_p * k)(*srcs), (ctypes.c_char_p * n)(*outs))
        return outs


def _isal_candidates() -> list[str]:
    """Where ISA-L may be: the copy pyeclib's wheels bundle (pyeclib.libs/, next to the package;
    pyeclib itself is not imported), then the system's (Debian/Ubuntu ``libisal2``)."""
    import importlib.util

    found: list[str] = []
    try:
        spec = importlib.util.find_spec("pyeclib")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.origin:
        libs = Path(spec.origin).parent.parent / "pyeclib.libs"
        found += [str(p) for p in sorted(libs.glob("libisal*.so*"))]
    if not found:
        import ctypes.util

        name = ctypes.util.find_library("isal")
        if name:
            found.append(name)
    return found


def _self_check(isal: Isal) -> bool:
    """Parity and a rebuild through ISA-L equal the pure-Python ones on a fixed 10 + 3 group."""
    data, parity, size = 10, 3, 200
    shards = [bytes((i * 37 + b * 11 + (b >> 3)) & 0xFF for b in range(size)) for i in range(data)]
    m = encoding_matrix(data, data + parity)
    want = [_combine(m[data + j], shards, size) for j in range(parity)]
    if isal.apply(isal.tables(m[data:]), parity, shards, size) != want:
        return False
    rows = (1, 2, 3, 4, 5, 6, 7, 8, 10, 12)  # shards 0 and 9 lost
    dec = decoding_matrix(data, data + parity, rows)
    present = [(shards + want)[r] for r in rows]
    return isal.apply(isal.tables([dec[0], dec[9]]), 2, present, size) == [shards[0], shards[9]]


_accel: Isal | None = None
_accel_loaded = False


def accelerator() -> Isal | None:
    """ISA-L, found and checked once per process (``AIOFRP_RS=python``: never); None where it is
    missing or gives other bytes than the pure-Python code."""
    global _accel, _accel_loaded
    if _accel_loaded:
        return _accel
    _accel_loaded = True
    if os.environ.get("AIOFRP_RS") == "python":
        return None
    for path in _isal_candidates():
        try:
            isal = Isal(ctypes.CDLL(path), path)
            ok = _self_check(isal)
        except (OSError, AttributeError, ValueError) as exc:
            log.debug("reedsolomon: ISA-L at %s unusable: %s", path, exc)
            continue
        if ok:
            log.debug("reedsolomon: parity by ISA-L (%s)", path)
            _accel = isal
            return isal
        log.debug("reedsolomon: ISA-L at %s gave other bytes than the reference: not used", path)
    return None


@lru_cache(maxsize=8)
def _parity_tables(data: int, total: int) -> ctypes.Array[ctypes.c_char]:
    """ISA-L's tables of the encoding matrix's parity rows (shared by every encoder, read-only)."""
    isal = accelerator()
    assert isal is not None
    return isal.tables(encoding_matrix(data, total)[data:])


@lru_cache(maxsize=512)
def _rebuild_tables(data: int, total: int, rows: tuple[int, ...], missing: tuple[int, ...]) -> ctypes.Array[ctypes.c_char]:
    """ISA-L's tables of the decoding matrix's rows that rebuild the ``missing`` data shards."""
    isal = accelerator()
    assert isal is not None
    dec = decoding_matrix(data, total, rows)
    return isal.tables([dec[k] for k in missing])


class ReedSolomon:
    """``data`` data shards + ``parity`` parity shards of equal length. ``accel=False``: the
    pure-Python products even where ISA-L is loaded (tests compare the two)."""

    def __init__(self, data: int, parity: int, *, accel: bool = True) -> None:
        if data <= 0 or parity <= 0 or data + parity > 256:
            raise ValueError(f"bad shard counts {data}+{parity}")
        self.data = data
        self.parity = parity
        self.matrix = encoding_matrix(data, data + parity)
        # per data shard, the tables multiplying it by each parity row's coefficient
        self._columns = [tuple(_MUL[self.matrix[data + j][i]] for j in range(parity)) for i in range(data)]
        self._isal = accelerator() if accel else None

    def encode(self, shards: Sequence[bytes]) -> list[bytes]:
        """The parity shards of ``data`` equal-length data shards."""
        if len(shards) != self.data:
            raise ValueError(f"need {self.data} data shards, got {len(shards)}")
        size = len(shards[0])
        if any(len(s) != size for s in shards):
            raise ValueError("shards differ in length")
        if self._isal is not None and size >= ACCEL_MIN:
            return self._isal.apply(_parity_tables(self.data, self.data + self.parity), self.parity, shards, size)
        # all parity rows at once: each data shard's products for every row, side by side in one
        # integer, XORed over the shards (fewer, longer C calls than one _combine per row)
        acc = 0
        for s, tables in zip(shards, self._columns, strict=True):
            acc ^= int.from_bytes(b"".join([s.translate(t) for t in tables]), "little")
        out = acc.to_bytes(size * self.parity, "little")
        return [out[j * size:(j + 1) * size] for j in range(self.parity)]

    def reconstruct_data(self, shards: Sequence[bytes | None]) -> list[bytes]:
        """The data shards, given ``data + parity`` slots of which at least ``data`` are present
        (equal lengths); ValueError if too few are."""
        if len(shards) != self.data + self.parity:
            raise ValueError(f"need {self.data + self.parity} shard slots, got {len(shards)}")
        present = [i for i, s in enumerate(shards) if s is not None]
        if len(present) < self.data:
            raise ValueError(f"too few shards: {len(present)} of {self.data} needed")
        if all(shards[i] is not None for i in range(self.data)):
            return [s for s in shards[:self.data] if s is not None]
        rows = tuple(present[:self.data])
        sub = [s for i in rows if (s := shards[i]) is not None]
        size = len(sub[0])
        if any(len(s) != size for s in sub):
            raise ValueError("shards differ in length")
        if self._isal is not None and size >= ACCEL_MIN:
            missing = tuple(k for k in range(self.data) if shards[k] is None)
            tables = _rebuild_tables(self.data, self.data + self.parity, rows, missing)
            rebuilt = iter(self._isal.apply(tables, len(missing), sub, size))
            return [s if s is not None else next(rebuilt) for s in shards[:self.data]]
        dec = decoding_matrix(self.data, self.data + self.parity, rows)
        out: list[bytes] = []
        for k in range(self.data):
            s = shards[k]
            out.append(s if s is not None else _combine(dec[k], sub, size))
        return out
