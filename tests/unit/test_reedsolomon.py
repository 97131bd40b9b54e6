"""proto/reedsolomon.py: the field, the encoding matrix, and erasure recovery (property tests),
through ISA-L and through the pure-Python products, which must give the same bytes.

Bit-compatibility with klauspost/reedsolomon (kcp-go's codec) is checked against parity shards a
real Go frpc sends (tests/compat/test_go_transports.py)."""

from __future__ import annotations

import itertools
import os
import platform
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiofrp.proto import reedsolomon
from aiofrp.proto.reedsolomon import (
    ACCEL_MIN,
    EXP,
    LOG,
    ReedSolomon,
    accelerator,
    encoding_matrix,
    gf_inv,
    gf_mul,
    mat_inv,
    mat_mul,
)

# pyproject.toml installs pyeclib (whose wheels bundle ISA-L) on these platforms
ISAL_PLATFORM = sys.platform == "linux" and platform.machine() in ("x86_64", "aarch64")


def test_field_tables() -> None:
    assert sorted(EXP[:255]) == list(range(1, 256))  # 2 generates the multiplicative group
    assert all(EXP[LOG[x]] == x for x in range(1, 256))
    assert gf_mul(0x53, 0xCA) == gf_mul(0xCA, 0x53)
    assert all(gf_mul(a, gf_inv(a)) == 1 for a in range(1, 256))
    # x^8 = x^4 + x^3 + x^2 + 1 (0x11D): 2^8 = 0x1D
    assert EXP[8] == 0x1D


def test_matrix_is_systematic_and_every_square_subset_invertible() -> None:
    m = encoding_matrix(10, 13)
    assert m[:10] == [[int(i == j) for j in range(10)] for i in range(10)]
    for rows in itertools.combinations(range(13), 10):
        sub = [m[r] for r in rows]
        inv = mat_inv(sub)
        assert mat_mul(sub, inv) == [[int(i == j) for j in range(10)] for i in range(10)]


@pytest.mark.parametrize("accel", [True, False], ids=["isal", "python"])
@settings(max_examples=100, deadline=None)
@given(st.integers(1, 12).flatmap(lambda d: st.tuples(
    st.just(d), st.integers(1, 4), st.integers(1, 200), st.data())))
def test_any_data_shards_rebuild_the_rest(accel: bool, args: tuple[int, int, int, st.DataObject]) -> None:
    data, parity, size, draw = args
    rs = ReedSolomon(data, parity, accel=accel)
    shards = [draw.draw(st.binary(min_size=size, max_size=size)) for _ in range(data)]
    full = shards + rs.encode(shards)
    lost = draw.draw(st.sets(st.integers(0, data + parity - 1), max_size=parity))
    slots = [None if i in lost else s for i, s in enumerate(full)]
    assert rs.reconstruct_data(slots) == shards


def test_too_few_shards() -> None:
    rs = ReedSolomon(10, 3)
    shards = [bytes([i]) * 8 for i in range(10)]
    full: list[bytes | None] = [*shards, *rs.encode(shards)]
    for i in range(4):
        full[i] = None
    with pytest.raises(ValueError, match="too few shards"):
        rs.reconstruct_data(full)


@pytest.mark.parametrize("accel", [True, False], ids=["isal", "python"])
@settings(max_examples=50, deadline=None)
@given(st.integers(1, 12).flatmap(lambda d: st.tuples(
    st.just(d), st.integers(1, 4), st.integers(1, 160), st.data())))
def test_encode_matches_the_per_byte_reference(accel: bool, args: tuple[int, int, int, st.DataObject]) -> None:
    """Both encoders (ISA-L's dot products; bytes.translate with all rows in one integer) against
    the definition: parity byte = sum over shards of matrix coefficient * data byte in GF(2^8)."""
    data, parity, size, draw = args
    rs = ReedSolomon(data, parity, accel=accel)
    shards = [draw.draw(st.binary(min_size=size, max_size=size)) for _ in range(data)]
    want = []
    for j in range(parity):
        row = rs.matrix[data + j]
        out = bytearray(size)
        for b in range(size):
            acc = 0
            for i in range(data):
                acc ^= gf_mul(row[i], shards[i][b])
            out[b] = acc
        want.append(bytes(out))
    assert rs.encode(shards) == want



def test_isal_is_loaded_where_pyproject_installs_it() -> None:
    """Not a silent fallback: on Linux x86_64/aarch64 the runtime dependency pyeclib brings ISA-L,
    and it passed the self-check against the pure-Python products."""
    if not ISAL_PLATFORM:
        pytest.skip(f"pyeclib (ISA-L) is not a dependency on {sys.platform}/{platform.machine()}")
    isal = accelerator()
    assert isal is not None, "ISA-L not found or failed its self-check (is pyeclib installed?)"
    assert "isal" in os.path.basename(isal.path)
    assert ReedSolomon(10, 3)._isal is isal


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 12).flatmap(lambda d: st.tuples(
    st.just(d), st.integers(1, 4), st.integers(ACCEL_MIN, 1500), st.data())))
def test_isal_and_python_give_the_same_bytes(args: tuple[int, int, int, st.DataObject]) -> None:
    """kcp-go's sizes (up to a 1,500-byte datagram): the same parity, and the same data rebuilt from
    every kind of loss, through either path."""
    if accelerator() is None:
        pytest.skip("no ISA-L here (test_isal_is_loaded_where_pyproject_installs_it says why)")
    data, parity, size, draw = args
    fast, slow = ReedSolomon(data, parity), ReedSolomon(data, parity, accel=False)
    assert fast._isal is not None and slow._isal is None
    shards = [draw.draw(st.binary(min_size=size, max_size=size)) for _ in range(data)]
    p = fast.encode(shards)
    assert p == slow.encode(shards)
    assert all(type(x) is bytes and len(x) == size for x in p)
    lost = draw.draw(st.sets(st.integers(0, data + parity - 1), max_size=parity))
    slots = [None if i in lost else s for i, s in enumerate(shards + p)]
    assert fast.reconstruct_data(slots) == slow.reconstruct_data(slots) == shards


def test_python_only_when_told() -> None:
    """AIOFRP_RS=python: the pure-Python products, for comparison runs (bench)."""
    code = "from aiofrp.proto import reedsolomon as r; print(r.accelerator(), r.ReedSolomon(10, 3)._isal)"
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "AIOFRP_RS": "python"},
                         capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.split() == ["None", "None"]


def test_an_unusable_library_is_not_used(monkeypatch: pytest.MonkeyPatch, tmp_path: os.PathLike[str]) -> None:
    """A candidate that is not ISA-L (here: not a shared library at all) is passed over."""
    bogus = os.path.join(tmp_path, "libisal.so.2")
    with open(bogus, "wb") as f:
        f.write(b"not an ELF file")
    monkeypatch.setattr(reedsolomon, "_accel", None)
    monkeypatch.setattr(reedsolomon, "_accel_loaded", False)
    monkeypatch.setattr(reedsolomon, "_isal_candidates", lambda: [bogus])
    assert accelerator() is None
    rs = ReedSolomon(10, 3)
    shards = [bytes([i]) * 100 for i in range(10)]
    assert rs.encode(shards) == ReedSolomon(10, 3, accel=False).encode(shards)
