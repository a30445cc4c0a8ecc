"""XXH3-64 row fingerprints: numpy reference and Numba kernel vs the xxhash package.

``xxhash.xxh3_64_intdigest`` (the C implementation by the algorithm's author) is
the ground truth; ``reference.rowprints`` is our readable oracle and
``cpu.rowprints`` / ``cpu.rowprints_into`` the fast kernels.  Every XXH3
length class (0, 1-3, 4-8, 9-16, 17-128, 129-240, >240) and every boundary of
the long path (stripe = 64 B, block = 1024 B) is covered.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from embfmt._kernels import cpu, reference

MASK64 = (1 << 64) - 1


def expected(rows: np.ndarray) -> np.ndarray:
    return np.array([xxhash.xxh3_64_intdigest(r.tobytes()) for r in rows], dtype=np.uint64)


def random_rows(n: int, row_bytes: int, seed: int, fill: str = "random") -> np.ndarray:
    """Rows of bytes; the constant fills exercise carries (0xFF) and zero products."""
    if fill == "zeros":
        return np.zeros((n, row_bytes), dtype=np.uint8)
    if fill == "ff":
        return np.full((n, row_bytes), 0xFF, dtype=np.uint8)
    return np.random.default_rng(seed).integers(0, 256, size=(n, row_bytes), dtype=np.uint8)


def all_kernels(rows: np.ndarray) -> dict[str, np.ndarray]:
    into = np.empty(rows.shape[0], dtype=np.uint64)
    cpu.rowprints_into(rows, into)
    return {
        "reference": reference.rowprints(rows),
        "cpu": cpu.rowprints(rows),
        "cpu_into": into,
    }


def assert_all_match(rows: np.ndarray) -> None:
    want = expected(rows)
    for name, got in all_kernels(rows).items():
        assert got.dtype == np.uint64 and got.shape == (rows.shape[0],), name
        np.testing.assert_array_equal(got, want, err_msg=f"{name}, row_bytes={rows.shape[1]}")


# Every length through the short, 17-128, 129-240 classes and the first stripes
# of the long path (241..260 straddles the 240/241 switch).
@pytest.mark.parametrize("row_bytes", range(0, 261))
def test_every_short_and_mid_length(row_bytes: int) -> None:
    assert_all_match(random_rows(4, row_bytes, seed=row_bytes))


# Long path: stripe (64) and block (1024) boundaries, +-1 around each, several
# full blocks with and without a partial tail.
LONG_LENGTHS = [
    255, 256, 257, 319, 320, 321, 511, 512, 513,
    1023, 1024, 1025, 1087, 1088, 1089,
    2047, 2048, 2049, 3072, 4096 + 17, 16 * 1024 + 1, 100_003,
]


@pytest.mark.parametrize("row_bytes", LONG_LENGTHS)
@pytest.mark.parametrize("fill", ["random", "zeros", "ff"])
def test_long_path_boundaries(row_bytes: int, fill: str) -> None:
    assert_all_match(random_rows(3, row_bytes, seed=row_bytes, fill=fill))


@pytest.mark.parametrize("fill", ["zeros", "ff"])
@pytest.mark.parametrize("row_bytes", [1, 3, 4, 8, 9, 16, 17, 128, 129, 240])
def test_constant_fills_short(row_bytes: int, fill: str) -> None:
    assert_all_match(random_rows(2, row_bytes, seed=0, fill=fill))


@pytest.mark.parametrize("row_bytes", [3, 7, 13, 33, 131, 241, 333, 513, 1001, 1025])
def test_unaligned_rows(row_bytes: int) -> None:
    # Odd row lengths: row i starts at byte i*row_bytes, so nearly every 8-byte
    # load of the kernel is unaligned.
    assert_all_match(random_rows(67, row_bytes, seed=row_bytes))


def test_unaligned_base_pointer() -> None:
    # The whole matrix starting at an odd address (a view one byte into a buffer).
    buf = np.random.default_rng(5).integers(0, 256, size=1 + 9 * 300, dtype=np.uint8)
    rows = buf[1:].reshape(9, 300)
    assert rows.ctypes.data % 2 == 1
    assert_all_match(rows)


def test_strided_input_is_accepted() -> None:
    base = random_rows(10, 64, seed=1)
    view = base[::2, 3:50]  # neither row- nor column-contiguous
    assert_all_match(np.ascontiguousarray(view))
    np.testing.assert_array_equal(cpu.rowprints(view), expected(np.ascontiguousarray(view)))


def test_readonly_input() -> None:
    data = bytes(range(256)) * 12
    rows = np.frombuffer(data, dtype=np.uint8).reshape(-1, 24)
    assert not rows.flags.writeable
    assert_all_match(rows)


@pytest.mark.parametrize("row_bytes", [0, 5, 512])
def test_zero_rows(row_bytes: int) -> None:
    rows = np.zeros((0, row_bytes), dtype=np.uint8)
    for name, got in all_kernels(rows).items():
        assert got.shape == (0,) and got.dtype == np.uint64, name


def test_zero_length_rows() -> None:
    rows = np.zeros((5, 0), dtype=np.uint8)
    want = np.full(5, xxhash.xxh3_64_intdigest(b""), dtype=np.uint64)
    for name, got in all_kernels(rows).items():
        np.testing.assert_array_equal(got, want, err_msg=name)


def test_float32_embedding_rows() -> None:
    # The intended use: 128 x float32 = 512-byte rows viewed as bytes.
    emb = np.random.default_rng(7).standard_normal((200, 128), dtype=np.float32)
    assert_all_match(emb.view(np.uint8))


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        cpu.rowprints(np.zeros((2, 3), dtype=np.float32))
    with pytest.raises(ValueError):
        cpu.rowprints(np.zeros(6, dtype=np.uint8))
    with pytest.raises(ValueError):
        reference.rowprints(np.zeros((2, 3), dtype=np.int8))
    rows = np.zeros((4, 8), dtype=np.uint8)
    with pytest.raises(ValueError):
        cpu.rowprints_into(rows, np.empty(3, dtype=np.uint64))
    with pytest.raises(ValueError):
        cpu.rowprints_into(rows, np.empty(4, dtype=np.int64))


def test_rowprints_into_concurrent_threads() -> None:
    # rowprints_into is nogil: hashing disjoint slices from several threads
    # must give exactly the single-call result.
    rows = random_rows(4000, 301, seed=11)
    want = cpu.rowprints(rows)
    out = np.empty(rows.shape[0], dtype=np.uint64)
    bounds = [(i, min(i + 333, rows.shape[0])) for i in range(0, rows.shape[0], 333)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda b: cpu.rowprints_into(rows[b[0] : b[1]], out[b[0] : b[1]]), bounds))
    np.testing.assert_array_equal(out, want)


def test_parallel_result_independent_of_thread_count() -> None:
    import numba

    rows = random_rows(5000, 96, seed=3)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = cpu.rowprints(rows)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(cpu.rowprints(rows), one)


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(0, 12),
    row_bytes=st.one_of(st.integers(0, 300), st.integers(0, 3000)),
    seed=st.integers(0, 2**32 - 1),
    fill=st.sampled_from(["random", "random", "random", "zeros", "ff"]),
)
def test_hypothesis_cpu_reference_xxhash(n: int, row_bytes: int, seed: int, fill: str) -> None:
    assert_all_match(random_rows(n, row_bytes, seed=seed, fill=fill))


@st.composite
def byte_rows(draw: st.DrawFn) -> np.ndarray:
    """Hypothesis-shrinkable byte matrices (every row the same length)."""
    row_bytes = draw(st.integers(0, 300))
    n = draw(st.integers(0, 6))
    data = draw(st.binary(min_size=n * row_bytes, max_size=n * row_bytes))
    return np.frombuffer(data, dtype=np.uint8).reshape(n, row_bytes)


@settings(max_examples=200, deadline=None)
@given(rows=byte_rows())
def test_hypothesis_arbitrary_bytes(rows: np.ndarray) -> None:
    assert_all_match(rows)


@settings(max_examples=500, deadline=None)
@given(a=st.integers(0, MASK64), b=st.integers(0, MASK64))
def test_reference_mul128_fold64(a: int, b: int) -> None:
    # The 32-bit-halves product against Python's exact big integers.
    p = a * b
    want = (p & MASK64) ^ (p >> 64)
    got = reference.mul128_fold64(np.array([a], dtype=np.uint64), np.array([b], dtype=np.uint64))
    assert int(got[0]) == want


def test_reference_mul128_fold64_extremes() -> None:
    vals = [0, 1, 0xFFFFFFFF, 0x100000000, MASK64, MASK64 - 1, 1 << 63]
    a = np.array([x for x in vals for _ in vals], dtype=np.uint64)
    b = np.array([y for _ in vals for y in vals], dtype=np.uint64)
    got = reference.mul128_fold64(a, b)
    want = [((x * y) & MASK64) ^ ((x * y) >> 64) for x in vals for y in vals]
    assert [int(g) for g in got] == want


@pytest.mark.parametrize("row_bytes", [0, 1, 12, 240, 241, 600, 1024, 3000, 1 << 20, (1 << 20) + 7])
@pytest.mark.parametrize("n", [0, 1, 5])
def test_fingerprint_chunk_into_equals_separate_kernels(row_bytes: int, n: int,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # The fused per-chunk kernel feeds BLAKE3 in pieces; shrink the piece so even small
    # inputs span several pieces, including pieces that are not a multiple of BLAKE3's
    # 1 KiB chunk (600-byte rows) and rows bigger than a piece.
    import blake3

    monkeypatch.setattr(cpu, "SUB_BLOCK_BYTES", 2048)
    rows = random_rows(n, row_bytes, seed=row_bytes + n)
    out = np.full(n, 7, dtype=np.uint64)
    digest = cpu.fingerprint_chunk_into(rows, out)
    assert digest == blake3.blake3(rows.tobytes()).digest()
    np.testing.assert_array_equal(out, expected(rows))


@settings(deadline=None, max_examples=60)
@given(st.integers(0, 40), st.integers(0, 700), st.integers(1, 5000), st.integers(0, 2**32 - 1))
def test_fingerprint_chunk_into_vs_reference(n: int, row_bytes: int, piece: int, seed: int) -> None:
    """Against the oracle (reference rowprints and BLAKE3 chunk digest) for any row length and
    any piece size the BLAKE3 feed is cut into, pieces smaller than a row included."""
    rows = random_rows(n, row_bytes, seed=seed)
    out = np.full(n, 7, dtype=np.uint64)
    saved = cpu.SUB_BLOCK_BYTES
    try:
        cpu.SUB_BLOCK_BYTES = piece
        digest = cpu.fingerprint_chunk_into(rows, out)
    finally:
        cpu.SUB_BLOCK_BYTES = saved
    assert digest == bytes(reference.blake3(rows.tobytes()))
    np.testing.assert_array_equal(out, reference.rowprints(rows))


def test_fingerprint_chunk_into_rejects_bad_out() -> None:
    rows = np.zeros((4, 8), dtype=np.uint8)
    for out in (np.empty(3, np.uint64), np.empty(4, np.int64), np.empty(8, np.uint64)[::2]):
        with pytest.raises(ValueError):
            cpu.fingerprint_chunk_into(rows, out)
