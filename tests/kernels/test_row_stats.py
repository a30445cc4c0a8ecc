"""row_stats (l2, cosine, max_abs, max_ulp per row pair): numpy reference vs Numba kernel.

``reference`` defines the statistics (normative sequential summation order,
canonical NaN); ``cpu`` must agree with it bit for bit, which is checked on the
``uint64`` views of the float outputs.  Independent ground truth: plain Python
loops over Python floats in the same column order (no ``math.fsum``, no numpy
reductions), values decoded by numpy / ml_dtypes casts, and ULP distances from
Python ints with the textbook "sign-magnitude to ordered integer" mapping
(Dawson), NaN detected with ``math.isnan`` on the decoded value.
"""

from __future__ import annotations

import math
from types import ModuleType

import ml_dtypes
import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from embfmt._kernels import cpu, reference

BACKENDS = [pytest.param(reference, id="reference"), pytest.param(cpu, id="cpu")]

F64, F32, F16, BF16, I8, U8 = 1, 2, 3, 4, 5, 6
CODES = (F64, F32, F16, BF16, I8, U8)
FLOAT_CODES = (F64, F32, F16, BF16)
ITEMSIZE = {F64: 8, F32: 4, F16: 2, BF16: 2, I8: 1, U8: 1}
# Exponent width and mantissa width of each float format.
FORMAT = {F64: (11, 52), F32: (8, 23), F16: (5, 10), BF16: (8, 7)}
ONE_BITS = {F64: 0x3FF0000000000000, F32: 0x3F800000, F16: 0x3C00, BF16: 0x3F80}
TWO_BITS = {F64: 0x4000000000000000, F32: 0x40000000, F16: 0x4000, BF16: 0x4000}
U64_MAX = 2**64 - 1
CANONICAL_NAN = 0x7FF8000000000000


def sign_bit(code: int) -> int:
    return 1 << (8 * ITEMSIZE[code] - 1)


def inf_bits(code: int) -> int:
    e, m = FORMAT[code]
    return ((1 << e) - 1) << m


def special_bits(code: int) -> list[int]:
    """Bit patterns worth hitting: zeros, subnormals, inf, NaN payloads, extremes, 1.0."""
    if code not in FLOAT_CODES:
        return [0, 1, 0x7F, 0x80, 0x81, 0xFF]
    s, inf = sign_bit(code), inf_bits(code)
    _, m = FORMAT[code]
    quiet = inf | (1 << (m - 1))
    patterns = [
        0,  # +0.0
        1,  # smallest subnormal
        (1 << m) - 1,  # largest subnormal
        1 << m,  # smallest normal
        ONE_BITS[code],
        ONE_BITS[code] + 1,
        inf - 1,  # largest finite
        inf,
        inf | 1,  # signalling NaN, smallest payload
        quiet,  # the quiet NaN
        quiet | 0x5,  # quiet NaN with a payload
        inf | ((1 << m) - 1),  # all-ones NaN
    ]
    return patterns + [p | s for p in patterns]


def to_rows(words: list[int], n: int, d: int, code: int) -> np.ndarray:
    """Little-endian bytes of n x d words, as an (n, d * itemsize) uint8 array."""
    k = ITEMSIZE[code]
    return np.array(words, dtype=np.dtype(f"<u{k}")).reshape(n, d).view(np.uint8).reshape(n, d * k)


def bits_of(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x).view(np.uint64)


def readonly(x: np.ndarray) -> np.ndarray:
    return np.frombuffer(x.tobytes(), dtype=np.uint8).reshape(x.shape)


def assert_backends_agree(a: np.ndarray, b: np.ndarray, code: int) -> tuple[np.ndarray, ...]:
    """Run both backends, check dtypes/shapes and bit-for-bit agreement; return the reference result."""
    want = reference.row_stats(a, b, code)
    got = cpu.row_stats(a, b, code)
    n = a.shape[0]
    for name, r, c, dt in zip(("l2", "cosine", "max_abs", "max_ulp"), want, got, ("f8", "f8", "f8", "u8")):
        assert r.dtype == np.dtype(dt) and c.dtype == np.dtype(dt), name
        assert r.shape == (n,) and c.shape == (n,), name
        np.testing.assert_array_equal(bits_of(c), bits_of(r), err_msg=name)
    return want


# ---------------------------------------------------------------------------
# Independent Python model.
# ---------------------------------------------------------------------------


def py_values(rows: np.ndarray, code: int) -> list[list[float]]:
    """Decode with numpy / ml_dtypes casts (bfloat16: ml_dtypes' own dtype) into Python floats."""
    np_type = {F64: "<f8", F32: "<f4", F16: "<f2", BF16: ml_dtypes.bfloat16, I8: "i1", U8: "u1"}[code]
    with np.errstate(invalid="ignore"):  # widening a signalling NaN
        return rows.view(np_type).astype(np.float64).tolist()  # type: ignore[no-any-return]


def py_words(rows: np.ndarray, code: int) -> list[list[int]]:
    return rows.view(f"<u{ITEMSIZE[code]}").tolist()  # type: ignore[no-any-return]


def py_ulp(xb: int, yb: int, xv: float, yv: float, code: int) -> int:
    if code not in FLOAT_CODES:
        return abs(int(yv) - int(xv))
    if math.isnan(xv) or math.isnan(yv):
        return 0 if xb == yb else U64_MAX
    s = sign_bit(code)

    def ordered(bits: int) -> int:
        # Sign-magnitude -> an integer line: -m for negatives, +m otherwise (so -0 == +0 == 0).
        return -(bits & (s - 1)) if bits & s else bits

    return abs(ordered(xb) - ordered(yb))


def py_row_stats(a: np.ndarray, b: np.ndarray, code: int) -> list[tuple[float, float, float, int]]:
    out = []
    for xs, ys, xw, yw in zip(py_values(a, code), py_values(b, code), py_words(a, code), py_words(b, code)):
        s2 = dot = sx = sy = 0.0
        m_abs = 0.0
        abs_nan = False
        ulp = 0
        for x, y, xb, yb in zip(xs, ys, xw, yw):
            d = y - x
            s2 = s2 + d * d
            dot = dot + x * y
            sx = sx + x * x
            sy = sy + y * y
            if math.isnan(d):
                abs_nan = True
            elif abs(d) > m_abs:
                m_abs = abs(d)
            ulp = max(ulp, py_ulp(xb, yb, x, y, code))
        nx, ny = math.sqrt(sx), math.sqrt(sy)
        if math.isnan(dot) or math.isnan(nx) or math.isnan(ny):
            cos = math.nan
        elif nx == 0 and ny == 0:
            cos = 1.0
        elif nx == 0 or ny == 0:
            cos = 0.0
        else:
            cos = dot / (nx * ny)
            if not math.isnan(cos):
                cos = min(1.0, max(-1.0, cos))
        out.append((math.sqrt(s2), cos, math.nan if abs_nan else m_abs, ulp))
    return out


def float_bits(x: float) -> int:
    return CANONICAL_NAN if math.isnan(x) else int(np.float64(x).view(np.uint64))


def assert_matches_model(result: tuple[np.ndarray, ...], a: np.ndarray, b: np.ndarray, code: int) -> None:
    model = py_row_stats(a, b, code)
    for i, row in enumerate(model):
        for s, name in enumerate(("l2", "cosine", "max_abs")):
            got = int(bits_of(result[s])[i])
            assert got == float_bits(row[s]), (name, i, result[s][i], row[s])
        assert int(result[3][i]) == row[3], ("max_ulp", i, result[3][i], row[3])


# ---------------------------------------------------------------------------
# Random bit patterns.
# ---------------------------------------------------------------------------


@st.composite
def row_stats_cases(draw: st.DrawFn, max_rows: int = 8, max_cols: int = 12) -> tuple[int, np.ndarray, np.ndarray]:
    code = draw(st.sampled_from(CODES))
    w = 8 * ITEMSIZE[code]
    n = draw(st.integers(0, max_rows))
    d = draw(st.integers(0, max_cols))
    word = st.one_of(st.integers(0, 2**w - 1), st.sampled_from(special_bits(code)))
    xs = draw(st.lists(word, min_size=n * d, max_size=n * d))
    # b: mostly related to a (equal, neighbour, sign flipped), sometimes independent.
    ys = []
    for x in xs:
        how = draw(st.sampled_from(("same", "next", "prev", "neg", "new", "new")))
        if how == "same":
            ys.append(x)
        elif how == "next":
            ys.append((x + 1) % 2**w)
        elif how == "prev":
            ys.append((x - 1) % 2**w)
        elif how == "neg":
            ys.append(x ^ (1 << (w - 1)))
        else:
            ys.append(draw(word))
    a, b = to_rows(xs, n, d, code), to_rows(ys, n, d, code)
    # Zero rows (+0.0 or -0.0 everywhere) in either matrix.
    for i in draw(st.lists(st.integers(0, max(n - 1, 0)), max_size=2)) if n else []:
        which = draw(st.sampled_from((a, b)))
        which[i] = 0
        if draw(st.booleans()) and code in FLOAT_CODES:
            which[i].view(f"<u{ITEMSIZE[code]}")[:] = sign_bit(code)
    return code, a, b


@settings(deadline=None, max_examples=300)
@given(row_stats_cases())
def test_reference_vs_cpu_vs_model(case: tuple[int, np.ndarray, np.ndarray]) -> None:
    code, a, b = case
    want = assert_backends_agree(a, b, code)
    assert_matches_model(want, a, b, code)


def random_words(rng: np.random.Generator, code: int, size: int) -> np.ndarray:
    """Random bit patterns with ~1/4 special values, as uint64."""
    w = 8 * ITEMSIZE[code]
    words = rng.integers(0, 2**w, size=size, dtype=np.uint64)
    special = rng.random(size) < 0.25
    words[special] = rng.choice(np.array(special_bits(code), dtype=np.uint64), size=int(special.sum()))
    return words


@settings(deadline=None, max_examples=60)
@given(st.sampled_from(CODES), st.integers(1, 4), st.integers(13, 300), st.integers(0, 2**32 - 1))
def test_long_rows(code: int, n: int, d: int, seed: int) -> None:
    # Rows longer than the cpu kernel's vectorized ULP loop (up to 32 words
    # per iteration), so its main body and every remainder length are hit.
    # Bulk random bits come from numpy (hypothesis draws per element are slow).
    rng = np.random.default_rng(seed)
    w = 8 * ITEMSIZE[code]
    xs = random_words(rng, code, n * d)
    how = rng.integers(0, 5, size=n * d)
    ys = np.where(how == 0, xs, random_words(rng, code, n * d))
    ys = np.where(how == 1, (xs + np.uint64(1)) & np.uint64(2**w - 1), ys)
    ys = np.where(how == 2, xs ^ np.uint64(1 << (w - 1)), ys)
    a, b = to_rows(xs.tolist(), n, d, code), to_rows(ys.tolist(), n, d, code)
    want = assert_backends_agree(a, b, code)
    assert_matches_model(want, a, b, code)


@pytest.mark.parametrize("code", CODES)
def test_every_16_bit_pattern(code: int) -> None:
    # Exhaustive decode/ULP check for the narrow types: every pattern against
    # zero, 1.0 (as an element of the same type) and its bitwise neighbour.
    k = ITEMSIZE[code]
    w = 8 * k
    if w > 16:  # a sample for float32 / float64
        words = random_words(np.random.default_rng(code), code, 2**14)
        words[: len(special_bits(code))] = special_bits(code)
    else:
        words = np.arange(2**w, dtype=np.uint64)
    x = to_rows(words.tolist(), words.size, 1, code)
    one = ONE_BITS.get(code, 1)
    for i, other in enumerate((np.zeros_like(words), (words + np.uint64(1)) & np.uint64(2**w - 1),
                               np.full_like(words, one))):
        y = to_rows(other.tolist(), words.size, 1, code)
        want = assert_backends_agree(x, y, code)
        if i < 2:  # the Python model is slow; vs zero (decode) and vs neighbour (ULP) suffice
            assert_matches_model(want, x, y, code)


# ---------------------------------------------------------------------------
# Shapes, the parallel path, read-only inputs.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("kernels", BACKENDS)
@pytest.mark.parametrize("code", CODES)
@pytest.mark.parametrize("n,d", [(0, 0), (0, 1), (0, 7), (4, 0), (1, 1), (3, 1)])
def test_degenerate_shapes(kernels: ModuleType, code: int, n: int, d: int) -> None:
    k = ITEMSIZE[code]
    rng = np.random.default_rng(n * 10 + d)
    a = rng.integers(0, 256, size=(n, d * k), dtype=np.uint8)
    b = rng.integers(0, 256, size=(n, d * k), dtype=np.uint8)
    l2, cos, mab, ulp = kernels.row_stats(a, b, code)
    for arr, dt in ((l2, np.float64), (cos, np.float64), (mab, np.float64), (ulp, np.uint64)):
        assert arr.dtype == dt and arr.shape == (n,)
    if d == 0:  # empty rows: nothing differs, both norms are zero
        np.testing.assert_array_equal(bits_of(l2), bits_of(np.zeros(n)))
        np.testing.assert_array_equal(cos, np.ones(n))
        np.testing.assert_array_equal(bits_of(mab), bits_of(np.zeros(n)))
        np.testing.assert_array_equal(ulp, np.zeros(n, dtype=np.uint64))
    assert_backends_agree(a, b, code)


@pytest.mark.parametrize("code", CODES)
def test_large_parallel_with_specials(code: int) -> None:
    # Big enough for cpu's parallel path; a sprinkling of special values.
    n, d = 3001, 97
    k = ITEMSIZE[code]
    rng = np.random.default_rng(code)
    if code in FLOAT_CODES:
        np_type = {F64: np.float64, F32: np.float32, F16: np.float16}.get(code)
        base = rng.standard_normal((n, d))
        x = base.astype(np_type) if np_type else base.astype(ml_dtypes.bfloat16)
        y = (base + 1e-3 * rng.standard_normal((n, d))).astype(x.dtype)
        xw = x.view(f"<u{k}").copy()
        yw = y.view(f"<u{k}").copy()
        specials = np.array(special_bits(code), dtype=xw.dtype)
        for w in (xw, yw):
            idx = rng.integers(0, n * d, size=n // 10)
            w.reshape(-1)[idx] = rng.choice(specials, size=idx.size)
        a, b = xw.view(np.uint8).reshape(n, d * k), yw.view(np.uint8).reshape(n, d * k)
    else:
        a = rng.integers(0, 256, size=(n, d), dtype=np.uint8)
        b = a.copy()
        b[rng.random((n, d)) < 0.05] += np.uint8(3)
    want = assert_backends_agree(a, b, code)
    assert_backends_agree(readonly(a), b, code)
    assert_backends_agree(a, readonly(b), code)
    # Rows are independent: the result does not depend on the thread count.
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = cpu.row_stats(a, b, code)
    finally:
        numba.set_num_threads(threads)
    for w_, o in zip(want, one):
        np.testing.assert_array_equal(bits_of(o), bits_of(w_))
    sample = np.random.default_rng(0).choice(n, size=40, replace=False)
    assert_matches_model(tuple(s[sample] for s in want), a[sample], b[sample], code)


@pytest.mark.parametrize("kernels", BACKENDS)
def test_readonly_and_strided_inputs(kernels: ModuleType) -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((20, 16)).astype(np.float32).view(np.uint8)
    y = rng.standard_normal((20, 16)).astype(np.float32).view(np.uint8)
    want = reference.row_stats(x, y, F32)
    for a, b in ((readonly(x), readonly(y)), (readonly(x), y), (x, readonly(y))):
        for w_, g in zip(want, kernels.row_stats(a, b, F32)):
            np.testing.assert_array_equal(bits_of(g), bits_of(w_))
    # A strided view (every other row) is copied to contiguous first.
    for w_, g in zip(reference.row_stats(x[::2].copy(), y[::2].copy(), F32), kernels.row_stats(x[::2], y[::2], F32)):
        np.testing.assert_array_equal(bits_of(g), bits_of(w_))


# ---------------------------------------------------------------------------
# Known values.
# ---------------------------------------------------------------------------


def ulp_of(kernels: ModuleType, code: int, xb: int, yb: int) -> int:
    a = to_rows([xb], 1, 1, code)
    b = to_rows([yb], 1, 1, code)
    (u,) = kernels.row_stats(a, b, code)[3]
    (u_swapped,) = kernels.row_stats(b, a, code)[3]
    assert u == u_swapped
    return int(u)


@pytest.mark.parametrize("kernels", BACKENDS)
def test_known_ulp_pairs(kernels: ModuleType) -> None:
    f64_next = int(np.nextafter(1.0, 2.0).view(np.uint64))
    assert ulp_of(kernels, F64, ONE_BITS[F64], f64_next) == 1
    assert ulp_of(kernels, F32, ONE_BITS[F32], int(np.nextafter(np.float32(1), np.float32(2)).view(np.uint32))) == 1
    assert ulp_of(kernels, F16, ONE_BITS[F16], int(np.nextafter(np.float16(1), np.float16(2)).view(np.uint16))) == 1
    assert ulp_of(kernels, BF16, ONE_BITS[BF16], 0x3F81) == 1
    for code in FLOAT_CODES:
        s = sign_bit(code)
        assert ulp_of(kernels, code, s, 0) == 0, code  # -0.0 vs +0.0
        assert ulp_of(kernels, code, 1, s | 1) == 2, code  # +-smallest subnormal
        assert ulp_of(kernels, code, 0, 1) == 1, code
        assert ulp_of(kernels, code, inf_bits(code) - 1, inf_bits(code)) == 1, code  # max finite -> inf
        assert ulp_of(kernels, code, ONE_BITS[code], TWO_BITS[code]) == 1 << FORMAT[code][1], code
        assert ulp_of(kernels, code, ONE_BITS[code], s | ONE_BITS[code]) == 2 * ONE_BITS[code], code
        assert ulp_of(kernels, code, inf_bits(code), s | inf_bits(code)) == 2 * inf_bits(code), code
        nan = inf_bits(code) | (1 << (FORMAT[code][1] - 1))
        assert ulp_of(kernels, code, nan, nan) == 0, code  # identical NaN
        assert ulp_of(kernels, code, s | nan | 3, s | nan | 3) == 0, code
        assert ulp_of(kernels, code, nan, ONE_BITS[code]) == U64_MAX, code
        assert ulp_of(kernels, code, nan, nan | 1) == U64_MAX, code  # different payloads
        assert ulp_of(kernels, code, nan, s | nan) == U64_MAX, code  # different signs
        assert ulp_of(kernels, code, inf_bits(code) | 1, inf_bits(code)) == U64_MAX, code  # sNaN vs inf
    assert ulp_of(kernels, F32, 0x3F800000, 0x40000000) == 2**23  # float32 1.0 vs 2.0
    assert ulp_of(kernels, F64, 0x3FF0000000000000, 0x4000000000000000) == 2**52
    assert ulp_of(kernels, F16, 0x3C00, 0x4000) == 2**10
    assert ulp_of(kernels, BF16, 0x3F80, 0x4000) == 2**7
    assert ulp_of(kernels, F16, 0x7BFF, 0xFBFF) == 2 * 0x7BFF  # +-65504
    assert ulp_of(kernels, I8, 0x80, 0x7F) == 255  # -128 vs 127
    assert ulp_of(kernels, I8, 0xFF, 0x01) == 2  # -1 vs 1
    assert ulp_of(kernels, U8, 0, 255) == 255
    # The max over a row: the NaN mismatch dominates.
    a = to_rows([ONE_BITS[F32], 0x7FC00000, 0], 1, 3, F32)
    b = to_rows([0x40000000, 0x7FC00001, 0], 1, 3, F32)
    assert int(kernels.row_stats(a, b, F32)[3][0]) == U64_MAX


def f64_rows(*rows: list[float]) -> np.ndarray:
    return np.array(rows, dtype="<f8").view(np.uint8)


def one_row(kernels: ModuleType, x: list[float], y: list[float]) -> tuple[float, float, float, int]:
    l2, cos, mab, ulp = kernels.row_stats(f64_rows(x), f64_rows(y), F64)
    for s in (l2, cos, mab):
        if np.isnan(s[0]):
            assert int(bits_of(s)[0]) == CANONICAL_NAN
    return float(l2[0]), float(cos[0]), float(mab[0]), int(ulp[0])


@pytest.mark.parametrize("kernels", BACKENDS)
def test_known_float_statistics(kernels: ModuleType) -> None:
    l2, cos, mab, _ = one_row(kernels, [3.0, 0.0], [0.0, 4.0])
    assert (l2, cos, mab) == (5.0, 0.0, 4.0)
    assert one_row(kernels, [1.0, 0.0], [-2.0, 0.0])[1] == -1.0
    assert one_row(kernels, [0.0, -0.0], [-0.0, 0.0])[:3] == (0.0, 1.0, 0.0)  # two zero rows
    assert one_row(kernels, [0.0, 0.0], [1.0, 0.0])[1] == 0.0  # one zero row
    # inf - inf is NaN: l2 and max_abs NaN; the norms are inf, inf / inf is NaN.
    l2, cos, mab, ulp = one_row(kernels, [math.inf, 1.0], [math.inf, 1.0])
    assert math.isnan(l2) and math.isnan(cos) and math.isnan(mab) and ulp == 0
    l2, cos, mab, _ = one_row(kernels, [math.inf], [-math.inf])
    assert l2 == math.inf and math.isnan(cos) and mab == math.inf  # -inf / (inf * inf)
    # A NaN anywhere in the row is NaN for every float statistic, even if the
    # other row is all zeros (where the zero rule alone would give 0.0).
    l2, cos, mab, ulp = one_row(kernels, [0.0, 0.0], [math.nan, 0.0])
    assert math.isnan(l2) and math.isnan(cos) and math.isnan(mab) and ulp == U64_MAX
    # A NaN max_abs even when a larger finite difference comes after it.
    assert math.isnan(one_row(kernels, [math.nan, 0.0], [0.0, 1e300])[2])


@pytest.mark.parametrize("kernels", BACKENDS)
def test_cosine_is_clipped(kernels: ModuleType) -> None:
    # x == y, but the rounded dot / (nx * ny) exceeds 1 for some rows: found
    # by search, and re-checked here so the test keeps its point.
    rng = np.random.default_rng(1)
    rows = rng.standard_normal((2000, 5))
    raw = [
        sum_seq([v * v for v in r]) / (math.sqrt(sum_seq([v * v for v in r])) ** 2) for r in rows.tolist()
    ]
    assert max(raw) > 1.0 and min(raw) < 1.0
    a = rows.astype("<f8").view(np.uint8)
    _, cos, _, _ = kernels.row_stats(a, a, F64)
    assert cos.max() == 1.0
    np.testing.assert_array_equal(cos[np.array(raw) > 1.0], 1.0)
    neg = (-rows).astype("<f8").view(np.uint8)
    _, cos, _, _ = kernels.row_stats(a, neg, F64)
    assert cos.min() == -1.0 and np.all(cos <= -1.0 + 1e-15)


def sum_seq(values: list[float]) -> float:
    s = 0.0
    for v in values:
        s += v
    return s


@pytest.mark.parametrize("kernels", BACKENDS)
def test_summation_order_is_sequential(kernels: ModuleType) -> None:
    # Squared differences 1e16, 1, 1, ..., 1 (16 ones).  Left to right, each
    # 1e16 + 1 is a tie that rounds back to 1e16 (even), so l2 = 1e8 exactly;
    # pairwise or reordered sums add the ones first and give sqrt(1e16 + 16).
    d = [1e8] + [1.0] * 16
    l2, _, mab, _ = one_row(kernels, [0.0] * len(d), d)
    assert l2 == 1e8 and mab == 1e8
    assert math.sqrt(1e16 + 16) != 1e8


# ---------------------------------------------------------------------------
# Validation.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("kernels", BACKENDS)
def test_invalid_arguments(kernels: ModuleType) -> None:
    a = np.zeros((3, 8), dtype=np.uint8)
    for code in (0, 7, -1, 255, True, 2.0, "2", None):
        with pytest.raises(ValueError, match="dtype_code"):
            kernels.row_stats(a, a, code)
    with pytest.raises(ValueError, match="shape"):
        kernels.row_stats(a, np.zeros((3, 4), dtype=np.uint8), F32)
    with pytest.raises(ValueError, match="shape"):
        kernels.row_stats(a, np.zeros((2, 8), dtype=np.uint8), F32)
    with pytest.raises(ValueError):
        kernels.row_stats(a.reshape(-1), a.reshape(-1), U8)  # 1-D
    with pytest.raises(ValueError):
        kernels.row_stats(a.view(np.int8), a.view(np.int8), I8)  # not uint8
    with pytest.raises(ValueError):
        kernels.row_stats(a.tolist(), a, U8)  # not an array
    with pytest.raises(ValueError, match="multiple"):
        kernels.row_stats(np.zeros((3, 6), dtype=np.uint8), np.zeros((3, 6), dtype=np.uint8), F32)
    with pytest.raises(ValueError, match="multiple"):
        kernels.row_stats(np.zeros((3, 4), dtype=np.uint8), np.zeros((3, 4), dtype=np.uint8), F64)
    with pytest.raises(ValueError, match="multiple"):
        kernels.row_stats(np.zeros((3, 3), dtype=np.uint8), np.zeros((3, 3), dtype=np.uint8), F16)
