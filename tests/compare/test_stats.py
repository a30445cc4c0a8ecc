"""Per-row statistics of ``embfmt.compare.diff`` against an independent float64 numpy computation, for
every dtype, on random and adversarial rows (NaN, inf, -0.0, zero rows, subnormals)."""

from __future__ import annotations

import numpy as np
import pytest

import embfmt
from embfmt._kernels import cpu, reference

from ._util import (DTYPES, FLOATS, adversarial_pair, assert_stats_match, bits_dtype, np_dtype,
                    oracle_stats, random_matrix)

U64_MAX = 2 ** 64 - 1


@pytest.mark.parametrize("backend", ["reference", "cpu"])
@pytest.mark.parametrize("name", DTYPES)
def test_stats_match_oracle_random(name: str, backend: str) -> None:
    rng = np.random.default_rng(DTYPES.index(name))
    a = random_matrix(name, 300, 24, rng)
    b = a.copy()
    rows = rng.choice(300, 60, replace=False)
    b[rows] = random_matrix(name, 60, 24, rng)
    b[rows[:10], 3] = a[rows[:10], 3] + np.array(1, a.dtype)  # small moves
    d = embfmt.diff(a, b, backend=backend)
    want_rows = np.flatnonzero((a.view(bits_dtype(name)) != b.view(bits_dtype(name))).any(axis=1))
    assert d.changed_b.tolist() == want_rows.tolist()
    assert d.unchanged == 300 - len(want_rows)
    assert_stats_match(d.stats, oracle_stats(a[want_rows], b[want_rows], name), f"{name}/{backend}")


@pytest.mark.parametrize("backend", ["reference", "cpu"])
@pytest.mark.parametrize("name", DTYPES)
@pytest.mark.parametrize("d", [1, 7, 33])
def test_stats_match_oracle_adversarial(name: str, backend: str, d: int) -> None:
    rng = np.random.default_rng(1000 + DTYPES.index(name) * 10 + d)
    a, b = adversarial_pair(name, d, rng)
    res = embfmt.diff(a, b, backend=backend)
    changed = res.changed_b
    # changed means different *bytes*: -0.0 vs +0.0 and NaN payloads count
    want_rows = np.flatnonzero((a.view(bits_dtype(name)) != b.view(bits_dtype(name))).any(axis=1))
    assert changed.tolist() == want_rows.tolist()
    assert_stats_match(res.stats, oracle_stats(a[changed], b[changed], name), f"{name}/{backend}/D={d}")


@pytest.mark.parametrize("kernel", [reference, cpu], ids=["reference", "cpu"])
@pytest.mark.parametrize("name", DTYPES)
def test_kernel_all_rows_match_oracle(kernel: object, name: str) -> None:
    """The kernel itself, on every row (identical ones too: all statistics of equal rows)."""
    rng = np.random.default_rng(7)
    a, b = adversarial_pair(name, 9, rng)
    # 5 identical rows: 4 of special values (NaN, inf, -0.0, subnormals where the dtype has
    # them) and the last row, which is all NaN for floats
    same = np.concatenate([a[20:24], a[-1:]])
    a = np.concatenate([a, same])
    b = np.concatenate([b, same])
    code = embfmt.canonical.dtype.dtype_of(np_dtype(name)).code
    got = kernel.row_stats(np.ascontiguousarray(a).view(np.uint8), np.ascontiguousarray(b).view(np.uint8), code)
    assert_stats_match(dict(zip(("l2", "cosine", "max_abs", "ulp"), got)), oracle_stats(a, b, name), name)
    # identical rows: no ULP distance at all; l2 is 0 for finite rows and NaN for rows holding
    # a NaN or an infinity (spec §20: inf - inf is NaN, and NaN propagates)
    l2, _, _, ulp = (x[-5:] for x in got)
    assert ulp.tolist() == [0] * 5
    finite = np.isfinite(a[-5:].astype(np.float64)).all(axis=1)
    if np.dtype(np_dtype(name)).kind == "f":
        assert np.isnan(a[-1].astype(np.float64)).all(), "the all-NaN row must be among the identical ones"
        assert not finite.all()
    assert np.array_equal(np.isnan(l2), ~finite)
    assert (l2[finite] == 0).all()


# --- definitions on known pairs ----------------------------------------------------------------
def _one(a: list[float], b: list[float], name: str) -> dict[str, float]:
    dt = np_dtype(name)
    x = np.array([a], dtype=np.float64).astype(dt)
    y = np.array([b], dtype=np.float64).astype(dt)
    d = embfmt.diff(x, y)
    assert d.n_changed == 1, (a, b, name)
    return {m: d.stats[m][0] for m in d.stats}


@pytest.mark.parametrize("name", FLOATS)
def test_cosine_definition(name: str) -> None:
    # both rows zero (bytes differ through -0.0) -> 1.0; one zero -> 0.0; NaN propagates
    assert _one([0.0, -0.0], [0.0, 0.0], name)["cosine"] == 1.0
    assert _one([0.0, 0.0], [1.0, 2.0], name)["cosine"] == 0.0
    assert _one([1.0, 2.0], [-0.0, 0.0], name)["cosine"] == 0.0
    assert np.isnan(_one([1.0, np.nan], [1.0, 2.0], name)["cosine"])
    assert np.isnan(_one([1.0, 2.0], [np.nan, 2.0], name)["cosine"])
    assert _one([1.0, 0.0], [-2.0, 0.0], name)["cosine"] == -1.0
    assert _one([1.0, 0.0], [0.0, 3.0], name)["cosine"] == 0.0


@pytest.mark.parametrize("name", ["int8", "uint8"])
def test_integer_zero_rows(name: str) -> None:
    x = np.zeros((2, 3), np_dtype(name))
    y = x.copy()
    y[1] = [1, 2, 3]
    d = embfmt.diff(x, y)
    assert d.changed_b.tolist() == [1]
    assert d.stats["cosine"][0] == 0.0 and d.stats["ulp"][0] == 3 and d.stats["max_abs"][0] == 3.0
    assert d.stats["l2"][0] == np.sqrt(14.0)


def test_ulp_known_pairs_float32() -> None:
    one = np.float32(1.0)
    cases = [
        ([one, 5.0], [np.nextafter(one, np.float32(2)), 5.0], 1),
        ([-0.0, 5.0], [0.0, 5.0], 0),  # bytes differ, distance 0
        ([1.0, 5.0], [2.0, 5.0], 2 ** 23),
        ([np.nan, 1.0], [np.nan, np.nextafter(one, np.float32(2))], 1),  # identical NaNs: 0
        ([np.nan, 1.0], [3.0, 1.0], U64_MAX),  # NaN vs a number
        ([1.0, 1.0], [np.inf, 1.0], int(np.float32(np.inf).view(np.uint32)) - int(one.view(np.uint32))),
        ([-1.0, 0.0], [1.0, 0.0], 2 * int(one.view(np.uint32))),  # across zero
        ([np.float32(1e-45), 0.0], [np.float32(-1e-45), 0.0], 2),  # subnormals straddling zero
    ]
    for a, b, want in cases:
        x = np.array([a], np.float32)
        y = np.array([b], np.float32)
        d = embfmt.diff(x, y)
        assert d.n_changed == 1
        assert int(d.stats["ulp"][0]) == want, (a, b, int(d.stats["ulp"][0]), want)
        assert d.stats["ulp"].dtype == np.uint64


@pytest.mark.parametrize("name", FLOATS)
def test_ulp_one_vs_next_every_float(name: str) -> None:
    dt = np_dtype(name)
    x = np.array([[1.0, 2.0]], np.float64).astype(dt)
    y = x.copy()
    y.view(bits_dtype(name))[0, 0] += 1  # the next representable value above 1.0
    d = embfmt.diff(x, y)
    assert int(d.stats["ulp"][0]) == 1
    mant = {"float64": 52, "float32": 23, "float16": 10, "bfloat16": 7}[name]
    z = np.array([[2.0, 2.0]], np.float64).astype(dt)
    assert int(embfmt.diff(x, z).stats["ulp"][0]) == 2 ** mant  # 1.0 vs 2.0


def test_nan_payloads_are_a_change_with_identical_nan_ulp() -> None:
    x = np.array([[np.nan, 1.0]], np.float32)
    y = x.copy()
    y.view(np.uint32)[0, 0] |= 1  # another NaN payload
    d = embfmt.diff(x, y)
    assert d.n_changed == 1
    assert int(d.stats["ulp"][0]) == U64_MAX
    for m in ("l2", "cosine", "max_abs"):
        assert np.isnan(d.stats[m][0])
        assert d.stats[m].view(np.uint64)[0] == 0x7FF8000000000000
