"""Reed–Solomon erasure coding over GF(2^8), bit-compatible with klauspost/reedsolomon (the codec
kcp-go uses for its FEC parity shards).

klauspost's default code (``reedsolomon.New``): the field GF(2^8) with the generating polynomial
x^8 + x^4 + x^3 + x^2 + 1 (0x11D) and generator 2; the encoding matrix is the (data + parity) x data
Vandermonde matrix ``V[r][c] = r ** c`` (``r`` taken as a field element, ``0 ** 0 = 1``) times the
inverse of its top square, so the top rows are the identity (data shards pass unchanged) and every
square subset of rows is invertible (any ``data`` of the shards rebuild the rest).

No maintained Python library builds this matrix (``reedsolo`` is the polynomial BCH view, ``zfec``
evaluates at other points), so this is a small one. The byte work is done by C code:
``bytes.translate`` multiplies a whole shard by a constant, big-int XOR adds shards.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

__all__ = ["ReedSolomon", "gf_mul"]

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


class ReedSolomon:
    """``data`` data shards + ``parity`` parity shards of equal length."""

    def __init__(self, data: int, parity: int) -> None:
        if data <= 0 or parity <= 0 or data + parity > 256:
            raise ValueError(f"bad shard counts {data}+{parity}")
        self.data = data
        self.parity = parity
        self.matrix = encoding_matrix(data, data + parity)
        # per data shard, the tables multiplying it by each parity row's coefficient
        self._columns = [tuple(_MUL[self.matrix[data + j][i]] for j in range(parity)) for i in range(data)]

    def encode(self, shards: Sequence[bytes]) -> list[bytes]:
        """The parity shards of ``data`` equal-length data shards."""
        if len(shards) != self.data:
            raise ValueError(f"need {self.data} data shards, got {len(shards)}")
        size = len(shards[0])
        if any(len(s) != size for s in shards):
            raise ValueError("shards differ in length")
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
        dec = decoding_matrix(self.data, self.data + self.parity, rows)
        out: list[bytes] = []
        for k in range(self.data):
            s = shards[k]
            out.append(s if s is not None else _combine(dec[k], sub, size))
        return out
