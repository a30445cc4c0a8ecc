"""Byte-plane shuffle, dense deltas and row equality: numpy reference vs Numba kernels.

``reference`` is the readable oracle, ``cpu`` the fast kernels; they must agree
bit for bit.  Independent ground truths: the shuffle against numpy's own
transpose, the zigzag against Python big-int arithmetic written with the
textbook formula (2s for s >= 0, -2s - 1 for s < 0), rows_equal against
``(a == b).all(axis=1)``.  Sizes straddle the cpu kernels' 32-word blocks
(_BLOCK_WORDS) so both the vector blocks and the scalar tail are exercised.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from embfmt._kernels import cpu, reference

BACKENDS = [pytest.param(reference, id="reference"), pytest.param(cpu, id="cpu")]
ITEMSIZES = (1, 2, 4, 8)
MODES = (reference.DELTA_XOR, reference.DELTA_SUB_ZIGZAG)
# Word counts around the 32-word block: empty, tail only, exact blocks, blocks + tail.
WORD_COUNTS = (0, 1, 2, 7, 31, 32, 33, 63, 64, 65, 100, 1000, 4099)


def random_bytes(n_bytes: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=n_bytes, dtype=np.uint8)


def readonly(x: np.ndarray) -> np.ndarray:
    """The same bytes as a read-only np.frombuffer view (as decoders receive them)."""
    return np.frombuffer(x.tobytes(), dtype=np.uint8).reshape(x.shape)


@st.composite
def canonical(draw: st.DrawFn, n_arrays: int = 1, max_words: int = 140) -> tuple[int, list[np.ndarray]]:
    """(itemsize, [arrays]): ``n_arrays`` 1-D uint8 arrays of the same whole number of words."""
    k = draw(st.sampled_from(ITEMSIZES))
    n = draw(st.integers(0, max_words))
    arrays = [
        np.frombuffer(draw(st.binary(min_size=n * k, max_size=n * k)), dtype=np.uint8).copy()
        for _ in range(n_arrays)
    ]
    return k, arrays


def assert_same(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == np.uint8 and got.ndim == 1
    np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------------------
# shuffle / unshuffle
# ---------------------------------------------------------------------------


@settings(deadline=None)
@given(canonical())
def test_shuffle_reference_vs_cpu(case: tuple[int, list[np.ndarray]]) -> None:
    k, (x,) = case
    want = x.reshape(-1, k).T.copy().ravel()
    assert_same(reference.shuffle(x, k), want)
    assert_same(cpu.shuffle(x, k), want)
    assert_same(reference.unshuffle(x, k), cpu.unshuffle(x, k))
    for kernels in (reference, cpu):
        assert_same(kernels.unshuffle(kernels.shuffle(x, k), k), x)
        assert_same(kernels.shuffle(kernels.unshuffle(x, k), k), x)


@pytest.mark.parametrize("k", ITEMSIZES)
@pytest.mark.parametrize("n", WORD_COUNTS)
def test_shuffle_against_transpose(k: int, n: int) -> None:
    x = random_bytes(n * k, seed=n * 10 + k)
    want = x.reshape(n, k).T.copy().ravel()
    for kernels in (reference, cpu):
        assert_same(kernels.shuffle(x, k), want)
        # unshuffle is the transpose back: planes (k, n) -> words (n, k).
        assert_same(kernels.unshuffle(want, k), x)


def test_shuffle_small_example() -> None:
    x = np.arange(12, dtype=np.uint8)  # three 4-byte words 00010203 04050607 08090a0b
    want = np.array([0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11], dtype=np.uint8)
    for kernels in (reference, cpu):
        assert_same(kernels.shuffle(x, 4), want)
        assert_same(kernels.unshuffle(want, 4), x)


@pytest.mark.parametrize("kernels", BACKENDS)
@pytest.mark.parametrize("k", ITEMSIZES)
def test_shuffle_returns_fresh_writable_array(kernels: ModuleType, k: int) -> None:
    x = readonly(random_bytes(40 * k, seed=k))
    for f in (kernels.shuffle, kernels.unshuffle):
        out = f(x, k)
        assert out.flags.writeable and out.flags.c_contiguous
        assert not np.shares_memory(out, x)  # itemsize 1 is a copy, not the input


# ---------------------------------------------------------------------------
# delta_encode / delta_decode
# ---------------------------------------------------------------------------


@settings(deadline=None)
@given(canonical(n_arrays=3), st.sampled_from(MODES))
def test_delta_reference_vs_cpu(case: tuple[int, list[np.ndarray]], mode: int) -> None:
    k, (new, base, other) = case
    enc = reference.delta_encode(new, base, k, mode)
    assert_same(cpu.delta_encode(new, base, k, mode), enc)
    # decode of arbitrary bytes (not only of encoder output) must agree too.
    assert_same(cpu.delta_decode(other, base, k, mode), reference.delta_decode(other, base, k, mode))
    for kernels in (reference, cpu):
        assert_same(kernels.delta_decode(enc, base, k, mode), new)
        assert_same(kernels.delta_encode(kernels.delta_decode(other, base, k, mode), base, k, mode), other)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("k", ITEMSIZES)
@pytest.mark.parametrize("n", WORD_COUNTS)
def test_delta_sizes(n: int, k: int, mode: int) -> None:
    new = random_bytes(n * k, seed=3 * n + k)
    # A base close to new (small differences, both signs) and an unrelated one.
    near = (new.view(f"<u{k}") + np.random.default_rng(n).integers(-3, 4, size=n).astype(f"<u{k}")).view(np.uint8)
    for base in (near, random_bytes(n * k, seed=7 * n + k)):
        enc = reference.delta_encode(new, base, k, mode)
        assert_same(cpu.delta_encode(new, base, k, mode), enc)
        assert_same(cpu.delta_decode(enc, base, k, mode), new)
        assert_same(reference.delta_decode(enc, base, k, mode), new)


def python_zigzag(new: int, base: int, bits: int) -> int:
    """Zigzag of the wrapped signed difference, in exact Python integers."""
    s = (new - base) % (1 << bits)
    if s >= 1 << (bits - 1):  # two's complement: the top half is negative
        s -= 1 << bits
    return 2 * s if s >= 0 else -2 * s - 1


def words_to_bytes(words: list[int], k: int) -> np.ndarray:
    return np.frombuffer(b"".join(w.to_bytes(k, "little") for w in words), dtype=np.uint8).copy()


def bytes_to_words(buf: np.ndarray, k: int) -> list[int]:
    raw = buf.tobytes()
    return [int.from_bytes(raw[i : i + k], "little") for i in range(0, len(raw), k)]


@pytest.mark.parametrize("kernels", BACKENDS)
@pytest.mark.parametrize("k", ITEMSIZES)
def test_zigzag_hand_picked(kernels: ModuleType, k: int) -> None:
    bits = 8 * k
    top = 1 << bits
    smax = (1 << (bits - 1)) - 1
    # (new, base) pairs: differences 0, 1, -1, 2, -2, min, max, and wrap-arounds.
    pairs = [
        (0, 0),
        (1, 0),
        (0, 1),
        (5, 3),
        (3, 5),
        (smax, 0),  # s = max -> 2**bits - 2
        (0, smax),  # s = -max -> 2**bits - 3
        (1 << (bits - 1), 0),  # s = min -> 2**bits - 1
        (0, 1 << (bits - 1)),  # -min wraps to min as well
        (top - 1, 0),  # s = -1
        (0, top - 1),  # s = +1 (wraps)
        (top - 1, top - 1),
    ]
    want = [python_zigzag(a, b, bits) for a, b in pairs]
    assert want[:5] == [0, 2, 1, 4, 3]
    assert want[5:9] == [top - 2, top - 3, top - 1, top - 1]
    # Repeat the pairs past one 32-word block so the vector path sees them too.
    reps = 40
    new = words_to_bytes([a for a, _ in pairs] * reps, k)
    base = words_to_bytes([b for _, b in pairs] * reps, k)
    enc = kernels.delta_encode(new, base, k, reference.DELTA_SUB_ZIGZAG)
    assert bytes_to_words(kernels.unshuffle(enc, k), k) == want * reps
    assert_same(kernels.delta_decode(enc, base, k, reference.DELTA_SUB_ZIGZAG), new)
    # XOR mode against Python ints as well.
    enc = kernels.delta_encode(new, base, k, reference.DELTA_XOR)
    assert bytes_to_words(kernels.unshuffle(enc, k), k) == [a ^ b for a, b in pairs] * reps


@pytest.mark.parametrize("kernels", BACKENDS)
def test_zigzag_small_differences_are_small(kernels: ModuleType) -> None:
    # float32 words one ulp apart in both directions: zigzag 2 and 1, so the
    # high planes of the delta are all zero (the point of the codec).
    base = np.array([1.0, 2.0, -3.5, 1e-30], dtype="<f4")
    f4 = np.float32
    new = np.array([np.nextafter(f4(1), f4(2)), np.nextafter(f4(2), f4(0)), -3.5, 1e-30], dtype="<f4")
    enc = kernels.delta_encode(new.view(np.uint8), base.view(np.uint8), 4, reference.DELTA_SUB_ZIGZAG)
    assert bytes_to_words(kernels.unshuffle(enc, 4), 4) == [2, 1, 0, 0]


@pytest.mark.parametrize("kernels", BACKENDS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("k", ITEMSIZES)
def test_delta_readonly_inputs(kernels: ModuleType, k: int, mode: int) -> None:
    n = 77
    new, base = random_bytes(n * k, 1), random_bytes(n * k, 2)
    want = reference.delta_encode(new, base, k, mode)
    enc = kernels.delta_encode(readonly(new), readonly(base), k, mode)
    assert_same(enc, want)
    assert enc.flags.writeable
    # Each argument read-only on its own too (the cpu kernels are compiled per combination).
    assert_same(kernels.delta_encode(new, readonly(base), k, mode), want)
    assert_same(kernels.delta_encode(readonly(new), base, k, mode), want)
    dec = kernels.delta_decode(readonly(enc), readonly(base), k, mode)
    assert_same(dec, new)
    assert dec.flags.writeable and not np.shares_memory(dec, base)
    assert_same(kernels.delta_decode(enc, readonly(base), k, mode), new)
    assert_same(kernels.delta_decode(readonly(enc), base, k, mode), new)
    assert_same(kernels.shuffle(readonly(new), k), reference.shuffle(new, k))
    assert_same(kernels.unshuffle(readonly(new), k), reference.unshuffle(new, k))


@pytest.mark.parametrize("kernels", BACKENDS)
def test_strided_input_is_accepted(kernels: ModuleType) -> None:
    wide = random_bytes(2 * 64 * 4, 5)
    x = wide[::2]  # a non-contiguous view of 256 bytes
    assert_same(kernels.shuffle(x, 4), reference.shuffle(x.copy(), 4))
    assert_same(kernels.delta_encode(x, x[::-1], 4, 3), reference.delta_encode(x.copy(), x[::-1].copy(), 4, 3))


BAD_ITEMSIZES = [0, 3, 5, 16, -1, True, 4.0, "4", None]
BAD_MODES = [0, 1, 4, -1, True, 2.0, "2", None]


@pytest.mark.parametrize("kernels", BACKENDS)
@pytest.mark.parametrize("itemsize", BAD_ITEMSIZES)
def test_invalid_itemsize(kernels: ModuleType, itemsize: object) -> None:
    x = random_bytes(16, 0)
    with pytest.raises(ValueError, match="itemsize"):
        kernels.shuffle(x, itemsize)
    with pytest.raises(ValueError, match="itemsize"):
        kernels.unshuffle(x, itemsize)
    with pytest.raises(ValueError, match="itemsize"):
        kernels.delta_encode(x, x, itemsize, 2)
    with pytest.raises(ValueError, match="itemsize"):
        kernels.delta_decode(x, x, itemsize, 3)


@pytest.mark.parametrize("kernels", BACKENDS)
@pytest.mark.parametrize("mode", BAD_MODES)
def test_invalid_mode(kernels: ModuleType, mode: object) -> None:
    x = random_bytes(16, 0)
    with pytest.raises(ValueError, match="mode"):
        kernels.delta_encode(x, x, 4, mode)
    with pytest.raises(ValueError, match="mode"):
        kernels.delta_decode(x, x, 4, mode)


@pytest.mark.parametrize("kernels", BACKENDS)
def test_invalid_arrays(kernels: ModuleType) -> None:
    x = random_bytes(12, 0)
    with pytest.raises(ValueError, match="multiple of itemsize"):
        kernels.shuffle(x, 8)
    with pytest.raises(ValueError, match="multiple of itemsize"):
        kernels.unshuffle(x[:10], 4)
    with pytest.raises(ValueError, match="1-D uint8"):
        kernels.shuffle(x.view("<u4"), 4)
    with pytest.raises(ValueError, match="1-D uint8"):
        kernels.shuffle(x.reshape(3, 4), 4)
    with pytest.raises(ValueError, match="1-D uint8"):
        kernels.shuffle(x.tobytes(), 4)
    with pytest.raises(ValueError, match="bytes but"):
        kernels.delta_encode(x, x[:8], 4, 2)
    with pytest.raises(ValueError, match="bytes but"):
        kernels.delta_decode(x[:8], x, 4, 3)


# ---------------------------------------------------------------------------
# separate planes (how decoders pass a chunk object's planes)
# ---------------------------------------------------------------------------


def split_planes(x: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    """The k planes of shuffled bytes ``x``, each a read-only view at its own odd offset of
    its own buffer (as raw planes inside an object's bytes lie), or writable, by seed."""
    n = x.size // k
    out = []
    for p in range(k):
        pad = (seed + 3 * p) % 7
        buf = np.zeros(n + pad, dtype=np.uint8)
        buf[pad:] = x[p * n:(p + 1) * n]
        view = buf[pad:]
        out.append(readonly(view) if (seed + p) % 2 else view)
    return out


def out_buffer(size: int, aligned: bool) -> np.ndarray:
    """A writable output of ``size`` bytes, word-aligned or at an odd address (the kernels
    then take the joined-planes path)."""
    return np.empty(size + 1, dtype=np.uint8)[0:size] if aligned else np.empty(size + 1, dtype=np.uint8)[1:]


@settings(deadline=None)
@given(canonical(n_arrays=2), st.sampled_from(MODES), st.integers(0, 100), st.booleans())
def test_separate_planes_match_joined(case: tuple[int, list[np.ndarray]], mode: int, seed: int,
                                      aligned: bool) -> None:
    k, (x, base) = case
    planes = split_planes(x, k, seed)
    for kernels in (reference, cpu):
        assert_same(kernels.unshuffle(planes, k), reference.unshuffle(x, k))
        assert_same(kernels.unshuffle(tuple(planes), k, out=out_buffer(x.size, aligned)),
                    reference.unshuffle(x, k))
        want = reference.delta_decode(x, base, k, mode)
        assert_same(kernels.delta_decode(planes, base, k, mode), want)
        b = out_buffer(base.size, aligned)
        b[:] = base  # an unaligned base too
        assert_same(kernels.delta_decode(planes, b, k, mode, out=out_buffer(x.size, aligned)), want)


@pytest.mark.parametrize("k", ITEMSIZES)
@pytest.mark.parametrize("n", WORD_COUNTS)
def test_separate_planes_sizes(k: int, n: int) -> None:
    new, base = random_bytes(n * k, seed=n + k), random_bytes(n * k, seed=n + k + 99)
    for mode in MODES:
        enc = reference.delta_encode(new, base, k, mode)
        assert_same(cpu.delta_decode(split_planes(enc, k, n), base, k, mode), new)
    assert_same(cpu.unshuffle(split_planes(reference.shuffle(new, k), k, n), k), new)


@pytest.mark.parametrize("kernels", BACKENDS)
def test_separate_planes_invalid(kernels: ModuleType) -> None:
    x = random_bytes(12, 0)
    with pytest.raises(ValueError, match="sequence of 4 planes"):
        kernels.unshuffle([x[:3], x[3:6], x[6:9]], 4)
    with pytest.raises(ValueError, match="planes differ in length"):
        kernels.unshuffle([x[:3], x[3:6], x[6:9], x[9:11]], 4)
    with pytest.raises(ValueError, match="plane 1 must be a 1-D uint8"):
        kernels.unshuffle([x[:3], x[3:6].tobytes(), x[6:9], x[9:12]], 4)
    with pytest.raises(ValueError, match="bytes but base has"):
        kernels.delta_decode([x[:3], x[3:6], x[6:9], x[9:12]], x[:8], 4, 3)
    planes = [x[:3], x[3:6], x[6:9], x[9:12]]
    with pytest.raises(ValueError, match="overlap"):
        kernels.unshuffle(planes, 4, out=x)


def test_numpy_integer_arguments_accepted() -> None:
    x = random_bytes(64, 0)
    for kernels in (reference, cpu):
        assert_same(kernels.shuffle(x, np.int64(4)), reference.shuffle(x, 4))
        assert_same(kernels.delta_encode(x, x[::-1].copy(), np.uint8(2), np.int32(3)),
                    reference.delta_encode(x, x[::-1].copy(), 2, 3))


# ---------------------------------------------------------------------------
# rows_equal
# ---------------------------------------------------------------------------


@st.composite
def row_pairs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(0, 40))
    row_bytes = draw(st.integers(0, 80))
    a = np.frombuffer(draw(st.binary(min_size=n * row_bytes, max_size=n * row_bytes)), dtype=np.uint8)
    a = a.reshape(n, row_bytes).copy()
    b = a.copy()
    if n and row_bytes:
        # Change a few bytes (by a non-zero xor) so that most rows stay equal.
        hits = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, row_bytes - 1), st.integers(1, 255)),
                             max_size=n))
        for i, j, flip in hits:
            b[i, j] ^= flip
    return a, b


@settings(deadline=None)
@given(row_pairs())
def test_rows_equal_vs_numpy(pair: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = pair
    want = (a == b).all(axis=1)
    for kernels in (reference, cpu):
        got = kernels.rows_equal(a, b)
        assert got.dtype == np.bool_ and got.shape == (a.shape[0],)
        np.testing.assert_array_equal(got, want)


@settings(deadline=None)
@given(row_pairs(), st.booleans())
def test_rows_equal_into_vs_reference(pair: tuple[np.ndarray, np.ndarray], stale: bool) -> None:
    """The writer's single-threaded entry point: every entry of ``out`` is written, whatever
    it held before (True or False), and equals the reference."""
    a, b = pair
    out = np.full(a.shape[0], stale, dtype=np.bool_)
    cpu.rows_equal_into(a, b, out)
    np.testing.assert_array_equal(out, reference.rows_equal(a, b))
    cpu.rows_equal_into(readonly(a), readonly(b), out)
    np.testing.assert_array_equal(out, reference.rows_equal(a, b))


def test_rows_equal_into_refuses_a_bad_out() -> None:
    a = random_bytes(40, 0).reshape(4, 10)
    for out in (np.empty(3, np.bool_), np.empty(4, np.uint8), np.empty(8, np.bool_)[::2],
                readonly(np.empty(4, np.bool_)), [True] * 4):
        with pytest.raises(ValueError, match="writable contiguous bool array of shape"):
            cpu.rows_equal_into(a, a.copy(), out)


@pytest.mark.parametrize("kernels", BACKENDS)
@pytest.mark.parametrize("row_bytes", [*range(0, 72), 127, 128, 129, 1536])
def test_rows_equal_every_byte_position(kernels: ModuleType, row_bytes: int) -> None:
    # Row j differs from b only at byte j (rows past row_bytes are equal), so
    # every position of the 32-byte, 8-byte and overlapping-tail steps is hit.
    n = row_bytes + 3
    a = random_bytes(n * row_bytes, seed=row_bytes).reshape(n, row_bytes)
    b = a.copy()
    for j in range(row_bytes):
        b[j, j] ^= 0x80
    want = np.arange(n) >= row_bytes
    np.testing.assert_array_equal(kernels.rows_equal(a, b), want)
    np.testing.assert_array_equal(kernels.rows_equal(readonly(a), readonly(b)), want)
    np.testing.assert_array_equal(kernels.rows_equal(a, readonly(b)), want)


@pytest.mark.parametrize("kernels", BACKENDS)
def test_rows_equal_empty(kernels: ModuleType) -> None:
    for shape in [(0, 0), (0, 12), (5, 0)]:
        a = np.zeros(shape, dtype=np.uint8)
        got = kernels.rows_equal(a, a.copy())
        assert got.dtype == np.bool_ and got.shape == (shape[0],)
        np.testing.assert_array_equal(got, np.ones(shape[0], dtype=bool))


@pytest.mark.parametrize("kernels", BACKENDS)
def test_rows_equal_is_bitwise_not_float(kernels: ModuleType) -> None:
    a = np.array([[0.0, 1.0, 2.0], [np.nan, 1.0, 2.0], [1.0, 1.0, 1.0]], dtype="<f4")
    b = a.copy()
    b[0, 0] = -0.0  # == 0.0 as floats, different bits
    b_bits = b.view("<u4")
    b_bits[1, 0] ^= 1  # another NaN payload
    c = a.copy()  # same NaN bits: equal as bytes, unequal as floats
    np.testing.assert_array_equal(kernels.rows_equal(a.view(np.uint8), b.view(np.uint8)), [False, False, True])
    np.testing.assert_array_equal(kernels.rows_equal(a.view(np.uint8), c.view(np.uint8)), [True, True, True])


def test_rows_equal_parallel_path() -> None:
    # >= 1 MiB per input takes the cpu kernel's parallel branch; also an odd
    # row count so the last 256-row task is partial.
    rng = np.random.default_rng(9)
    for n, row_bytes in [(2731, 384), (70001, 16)]:
        a = rng.integers(0, 256, size=(n, row_bytes), dtype=np.uint8)
        b = a.copy()
        changed = rng.choice(n, size=n // 10, replace=False)
        b[changed, rng.integers(0, row_bytes, size=changed.size)] ^= 1
        assert a.size >= cpu._ROWS_EQUAL_PARALLEL_MIN_BYTES
        want = (a == b).all(axis=1)
        np.testing.assert_array_equal(cpu.rows_equal(a, b), want)
        np.testing.assert_array_equal(reference.rows_equal(a, b), want)


@pytest.mark.parametrize("kernels", BACKENDS)
def test_rows_equal_invalid(kernels: ModuleType) -> None:
    a = np.zeros((3, 4), dtype=np.uint8)
    with pytest.raises(ValueError, match="shape"):
        kernels.rows_equal(a, np.zeros((3, 5), dtype=np.uint8))
    with pytest.raises(ValueError, match="2-D uint8"):
        kernels.rows_equal(a.reshape(-1), a.reshape(-1))
    with pytest.raises(ValueError, match="2-D uint8"):
        kernels.rows_equal(a.view("<u4"), a.view("<u4"))
