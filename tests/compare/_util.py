"""Helpers shared by the diff tests: an independent float64 oracle for the per-row statistics,
and adversarial matrices for every dtype."""

from __future__ import annotations

import ml_dtypes
import numpy as np

DTYPES = ["float64", "float32", "float16", "bfloat16", "int8", "uint8"]
FLOATS = ["float64", "float32", "float16", "bfloat16"]
CANONICAL_NAN = 0x7FF8000000000000


def np_dtype(name: str) -> np.dtype:
    return np.dtype(ml_dtypes.bfloat16) if name == "bfloat16" else np.dtype(name)


def bits_dtype(name: str) -> np.dtype:
    return np.dtype(f"<u{np_dtype(name).itemsize}")


def as_f64(x: np.ndarray) -> np.ndarray:
    """Exact widening to float64 (numpy / ml_dtypes casts; every supported value fits)."""
    return x.astype(np.float64)


def _ordered(bits: int, width: int) -> int:
    """A float's bit pattern as a signed integer monotone in its value (-0.0 and +0.0 both 0)."""
    sign = 1 << (width - 1)
    mag = bits & (sign - 1)
    return -mag if bits & sign else mag


def _is_nan_bits(bits: int, name: str) -> bool:
    width = 8 * np_dtype(name).itemsize
    exp_bits = {"float64": 11, "float32": 8, "float16": 5, "bfloat16": 8}[name]
    mant = width - 1 - exp_bits
    exp = (bits >> mant) & ((1 << exp_bits) - 1)
    return exp == (1 << exp_bits) - 1 and (bits & ((1 << mant) - 1)) != 0


def oracle_ulp(x: np.ndarray, y: np.ndarray, name: str) -> np.ndarray:
    """Max ULP distance per row, element by element with Python integers."""
    out = np.zeros(len(x), dtype=np.uint64)
    if name in ("int8", "uint8"):
        for i in range(len(x)):
            out[i] = max((abs(int(p) - int(q)) for p, q in zip(x[i], y[i])), default=0)
        return out
    bx, by = x.view(bits_dtype(name)), y.view(bits_dtype(name))
    width = 8 * np_dtype(name).itemsize
    for i in range(len(x)):
        best = 0
        for p, q in zip(bx[i].tolist(), by[i].tolist()):
            if _is_nan_bits(p, name) or _is_nan_bits(q, name):
                d = 0 if p == q else 2 ** 64 - 1
            else:
                d = abs(_ordered(p, width) - _ordered(q, width))
            best = max(best, d)
        out[i] = best
    return out


def oracle_stats(x: np.ndarray, y: np.ndarray, name: str) -> dict[str, np.ndarray]:
    """l2, cosine, max_abs (float64, numpy's own sums) and ulp (Python ints) of row pairs."""
    a, b = as_f64(x), as_f64(y)
    with np.errstate(all="ignore"):
        d = b - a
        l2 = np.sqrt(np.sum(d * d, axis=1))
        max_abs = np.max(np.abs(d), axis=1, initial=0.0) if a.shape[1] else np.zeros(len(a))
        dot = np.sum(a * b, axis=1)
        nx = np.sqrt(np.sum(a * a, axis=1))
        ny = np.sqrt(np.sum(b * b, axis=1))
        cos = np.empty(len(a))
        for i in range(len(a)):
            if np.isnan(dot[i]) or np.isnan(nx[i]) or np.isnan(ny[i]):
                cos[i] = np.nan
            elif nx[i] == 0 and ny[i] == 0:
                cos[i] = 1.0
            elif nx[i] == 0 or ny[i] == 0:
                cos[i] = 0.0
            else:
                c = dot[i] / (nx[i] * ny[i])
                cos[i] = c if np.isnan(c) else min(1.0, max(-1.0, c))
    return {"l2": l2, "cosine": cos, "max_abs": max_abs, "ulp": oracle_ulp(x, y, name)}


def assert_stats_match(got: dict[str, np.ndarray], want: dict[str, np.ndarray], where: str = "") -> None:
    """Same NaN / inf pattern; finite values equal up to summation order (max_abs and ulp
    exactly); every NaN written as the canonical quiet NaN."""
    for m in ("l2", "cosine", "max_abs"):
        g, w = np.asarray(got[m], np.float64), want[m]
        assert g.shape == w.shape, (m, where)
        assert np.array_equal(np.isnan(g), np.isnan(w)), (m, where, g, w)
        assert np.all(g.view(np.uint64)[np.isnan(g)] == CANONICAL_NAN), (m, where)
        assert np.array_equal(np.isinf(g), np.isinf(w)) and np.array_equal(g[np.isinf(g)], w[np.isinf(w)]), (m, where, g, w)
        fin = np.isfinite(w)
        if m == "max_abs":
            assert np.array_equal(g[fin], w[fin]), (m, where, g, w)
        else:
            np.testing.assert_allclose(g[fin], w[fin], rtol=1e-12, atol=1e-12 if m == "cosine" else 0,
                                       err_msg=f"{m} {where}")
    assert got["ulp"].dtype == np.uint64
    assert np.array_equal(got["ulp"], want["ulp"]), ("ulp", where, got["ulp"], want["ulp"])


def special_values(name: str) -> np.ndarray:
    """Adversarial element values of dtype ``name``."""
    dt = np_dtype(name)
    if name in ("int8", "uint8"):
        info = np.iinfo(dt)
        return np.array([info.min, info.max, 0, 1, info.max - 1, info.min + 1], dtype=dt)
    fi = ml_dtypes.finfo(dt) if name == "bfloat16" else np.finfo(dt)
    tiny_sub = fi.smallest_subnormal
    vals = [0.0, -0.0, 1.0, -1.0, float(fi.max), -float(fi.max), float(fi.tiny), float(tiny_sub),
            -float(tiny_sub), np.inf, -np.inf, np.nan, 0.5, 3.0]
    out = np.array(vals, dtype=np.float64).astype(dt)
    # A NaN with another payload and the sign bit set (same class, different bits).
    bits = out.view(bits_dtype(name)).copy()
    nan2 = np.array([np.nan], dtype=dt).view(bits_dtype(name))[0]
    width = 8 * dt.itemsize
    extra = np.array([nan2 | (1 << (width - 1)) | 1], dtype=bits_dtype(name))
    return np.concatenate([bits, extra]).view(dt)


def random_matrix(name: str, n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    dt = np_dtype(name)
    if name in ("int8", "uint8"):
        info = np.iinfo(dt)
        return rng.integers(info.min, int(info.max) + 1, size=(n, d)).astype(dt)
    return rng.standard_normal((n, d)).astype(dt)


def adversarial_pair(name: str, d: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Row pairs: random, all-special, zero rows, -0.0 vs +0.0, subnormals, NaN, inf."""
    dt = np_dtype(name)
    sv = special_values(name)
    rows_a, rows_b = [], []
    base = random_matrix(name, 40, d, rng)
    other = random_matrix(name, 40, d, rng)
    rows_a += list(base[:20])
    rows_b += list(other[:20])
    # every pair of special values, spread over rows
    pa = rng.choice(sv, size=(30, d))
    pb = rng.choice(sv, size=(30, d))
    rows_a += list(pa)
    rows_b += list(pb)
    # mixes: mostly equal with a few special elements
    for i in range(20, 40):
        a = base[i].copy()
        b = base[i].copy()
        j = rng.integers(0, d, 2)
        a[j[0]] = rng.choice(sv)
        b[j[1]] = rng.choice(sv)
        rows_a.append(a)
        rows_b.append(b)
    z = np.zeros(d, dtype=dt)
    rows_a += [z, z, base[0], z]
    rows_b += [z.copy(), base[1], z, z.copy()]
    if name in FLOATS:
        neg0 = np.full(d, -0.0, dtype=np.float64).astype(dt)
        sub = np.full(d, float(sv[7]), dtype=np.float64).astype(dt)  # smallest subnormal
        rows_a += [neg0, sub, sub, np.full(d, np.nan).astype(dt)]
        rows_b += [z.copy(), sub * np.array(2, dt), -sub, np.full(d, np.nan).astype(dt)]
    return np.stack(rows_a).astype(dt), np.stack(rows_b).astype(dt)
