"""proto/reedsolomon.py: the field, the encoding matrix, and erasure recovery (property tests).

Bit-compatibility with klauspost/reedsolomon (kcp-go's codec) is checked against parity shards a
real Go frpc sends (tests/compat/test_go_transports.py)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiofrp.proto.reedsolomon import EXP, LOG, ReedSolomon, encoding_matrix, gf_inv, gf_mul, mat_inv, mat_mul


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


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 12).flatmap(lambda d: st.tuples(
    st.just(d), st.integers(1, 4), st.integers(1, 64), st.data())))
def test_any_data_shards_rebuild_the_rest(args: tuple[int, int, int, st.DataObject]) -> None:
    data, parity, size, draw = args
    rs = ReedSolomon(data, parity)
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


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 12).flatmap(lambda d: st.tuples(
    st.just(d), st.integers(1, 4), st.integers(1, 80), st.data())))
def test_encode_matches_the_per_byte_reference(args: tuple[int, int, int, st.DataObject]) -> None:
    """The table-driven encoder (bytes.translate, all rows in one integer) against the definition:
    parity byte = sum over shards of matrix coefficient * data byte in GF(2^8)."""
    data, parity, size, draw = args
    rs = ReedSolomon(data, parity)
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

