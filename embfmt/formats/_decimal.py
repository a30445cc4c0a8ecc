"""Shortest round-trip decimal text for floats of every embfmt dtype, a block at a time.

The text of a value ``v`` is ``"%.{p}g" % v`` with the smallest ``p`` (1..17) whose text, read
as float64 and cast to the dtype (exactly what the text reader does), gives back ``v``'s bits:
``-0``, ``inf``, ``0.1``, ``1e-05``. A NaN other than the canonical quiet NaN has no such text.

:func:`search_precisions` computes that definition directly, formatting and re-reading each
candidate (one Python ``%`` per value and precision: ~10^4-10^5 values/s). :func:`precisions`
reaches the same ``p`` with array arithmetic and formats only the answer: for a value
``a = |v|`` of decimal exponent ``e``, ``"%.{q}g"`` is the integer ``m = round_half_even(a *
10**k)`` (``k = q - 1 - e``) scaled back by ``10**-k``, and its float64 reading is the one
correctly rounded IEEE operation ``m / 10**k``. Both steps are exact in float64 when the
product ``a * 10**k`` fits 53 bits (``a`` has at most 24 significant bits, ``10**k = 5**k *
2**k``), so the fast path decides ``p`` bit for bit as the definition does; values outside that
range go through exact int64 arithmetic, and whatever int64 cannot hold either (huge or tiny
magnitudes) falls back to :func:`search_precisions`. float64 has 53 significant bits, so its
``p`` starts from the digit count of Python's shortest ``repr`` (no shorter ``%g`` text can read
back) and is checked by re-reading.
"""

from __future__ import annotations

import numpy as np

from ..canonical.dtype import DType

__all__ = ["format_rows", "precisions", "search_precisions"]

# Exact powers of ten in float64 (10**22 < 2**53 * 2**22 is the largest exact one).
_P10F = np.array([10.0 ** i for i in range(23)])
_P10I = np.array([10 ** i for i in range(19)], dtype=np.int64)  # int64 holds up to 10**18
# Significant bits of each narrow float dtype (the implicit leading bit included) and the most
# significant digits any of its values needs (ceil(bits * log10(2)) + 1).
_SIG_BITS = {"float32": 24, "float16": 11, "bfloat16": 8}
_MAX_DIGITS = {"float32": 9, "float16": 5, "bfloat16": 4, "float64": 17}
# The largest k for which a * 10**k is exact in float64: sig_bits + bit_length(5**k) <= 53.
_KMAX = {n: max(k for k in range(23) if b + (5 ** k).bit_length() <= 53) for n, b in _SIG_BITS.items()}
_SIGN = {8: np.uint64(1 << 63), 4: np.uint32(1 << 31), 2: np.uint16(1 << 15)}
_LOG2_10 = 3.33  # > log2(10), for conservative int64 range bounds


def search_precisions(wide: np.ndarray, bits: np.ndarray, dt: DType) -> np.ndarray:
    """The definition: for each value of the 1-D ``wide`` (float64) with bit patterns ``bits``,
    the smallest ``p`` whose ``"%.{p}g"`` reads back to those bits, or 0 if none does."""
    p = np.zeros(wide.shape, np.int8)
    todo = np.ones(wide.shape, bool)
    for q in range(1, 18):  # 17 digits always suffice for a finite float64
        idx = np.nonzero(todo)[0]
        if not len(idx):
            break
        cand = np.char.mod(f"%.{q}g", wide[idx])
        with np.errstate(over="ignore", invalid="ignore"):
            back = cand.astype(np.float64).astype(dt.numpy).view(dt.bits)
        hit = back == bits[idx]
        p[idx[hit]] = q
        todo[idx[hit]] = False
    return p


def precisions(block: np.ndarray, dt: DType) -> np.ndarray:
    """:func:`search_precisions` for a whole block of a float dtype, by array arithmetic
    (see the module docstring); same shape as ``block``, 0 where no text reads back."""
    bits = block.view(dt.bits).reshape(-1)
    with np.errstate(invalid="ignore"):  # a signalling NaN warns on the cast; refused later
        wide = block.astype(np.float64).reshape(-1)
    p = np.zeros(wide.shape, np.int8)
    finite = np.isfinite(wide) & (wide != 0)
    # 0, -0, inf, -inf and the canonical NaN are written "%.1g" ("0", "-0", "inf", "nan"),
    # which reads back exactly; any other NaN has no text and keeps p = 0.
    canonical_nan = np.array([np.nan]).astype(dt.numpy).view(dt.bits)[0]
    p[~finite & (~np.isnan(wide) | (bits == canonical_nan))] = 1
    idx = np.nonzero(finite)[0]
    if len(idx):
        if dt.name == "float64":
            p[idx] = _float64_precisions(wide[idx], bits[idx], dt)
        else:
            p[idx] = _narrow_precisions(wide[idx], bits[idx], dt)
    return p.reshape(block.shape)


def _narrow_precisions(w: np.ndarray, target: np.ndarray, dt: DType) -> np.ndarray:
    """``p`` for finite nonzero values of a dtype of at most 24 significant bits."""
    kmax, maxp = _KMAX[dt.name], _MAX_DIGITS[dt.name]
    a = np.abs(w)
    e = _exact_exponent(a, kmax)  # -9999 where it could not be settled exactly
    p = np.zeros(w.shape, np.int8)
    # Values below 10 whose every a * 10**k (k = q - 1 - e, q <= maxp) is exact, which is
    # nearly all of an embedding, take the float64 path for every q; the rest the mixed one.
    simple = (e != -9999) & (e <= 0) & (maxp - 1 - e <= kmax)
    idx = np.nonzero(simple)[0]
    if len(idx):
        p[idx] = _simple_precisions(a[idx], e[idx], target[idx], dt, maxp)
    rest = np.nonzero(~simple)[0]
    if len(rest):
        p[rest] = _mixed_precisions(a[rest], e[rest], np.signbit(w[rest]), target[rest], dt, kmax)
    slow = np.nonzero(p <= 0)[0]
    if len(slow):
        p[slow] = search_precisions(w[slow], target[slow], dt)
    return p


def _simple_precisions(a: np.ndarray, e: np.ndarray, target: np.ndarray, dt: DType,
                       maxp: int) -> np.ndarray:
    """The float64 path for every q; the arrays shrink to the undecided values each pass.
    Reading "-t" gives the negation of reading "t", so magnitudes are compared without signs."""
    p = np.zeros(a.shape, np.int8)
    where = np.arange(len(a))
    target = target & ~_SIGN[dt.itemsize]
    scale = _P10F[-e]
    b = a * scale  # a * 10**-e, in [1, 10): exact
    open_ = np.ones(len(a), bool)  # not decided yet; the arrays are compacted once few are
    for q in range(1, maxp + 1):
        if not len(where):
            break
        m = np.rint(b * _P10F[q - 1])  # a * 10**k, exact, so rint rounds as "%g" does
        val = m / (scale * _P10F[q - 1])  # 10**k exactly: one correctly rounded division
        hit = (val.astype(dt.numpy).view(dt.bits) == target) & open_
        p[where[hit]] = q
        open_ &= ~hit
        if 4 * np.count_nonzero(open_) < 3 * len(open_):  # compacting costs four gathers
            where, b, scale, target = where[open_], b[open_], scale[open_], target[open_]
            open_ = np.ones(len(where), bool)
    return p


def _mixed_precisions(a: np.ndarray, e: np.ndarray, negative: np.ndarray, target: np.ndarray,
                      dt: DType, kmax: int) -> np.ndarray:
    """The float64 path where it is exact for that q, else exact int64 arithmetic; -1 where
    neither can compute ``"%.{q}g"`` (left to the definition)."""
    p = np.zeros(a.shape, np.int8)
    undecided = np.ones(a.shape, bool)
    for q in range(1, _MAX_DIGITS[dt.name] + 1):
        u = np.nonzero(undecided)[0]
        if not len(u):
            break
        k = q - 1 - e[u]
        fast = (e[u] != -9999) & (k >= 0) & (k <= kmax)
        val = np.empty(len(u))
        ok = np.zeros(len(u), bool)
        f = np.nonzero(fast)[0]
        if len(f):
            kf = k[f]
            val[f] = np.rint(a[u[f]] * _P10F[kf]) / _P10F[kf]
            ok[f] = True
        s = np.nonzero(~fast)[0]
        if len(s):
            val[s], ok[s] = _round_exact(a[u[s]], q)
        val = np.where(negative[u], -val, val)
        with np.errstate(over="ignore"):
            back = val.astype(dt.numpy).view(dt.bits)
        hit = ok & (back == target[u])
        p[u[hit]] = q
        undecided[u[hit]] = False
        undecided[u[~ok]] = False
        p[u[~ok]] = -1
    return p


def _exact_exponent(a: np.ndarray, kmax: int) -> np.ndarray:
    """floor(log10(a)), settled by exact comparisons (log10 may be off by one next to a power
    of ten); -9999 where no exact comparison is available."""
    e = np.floor(np.log10(a)).astype(np.int64)
    out = np.full(a.shape, -9999, np.int64)
    big = (e >= 0) & (e <= 21)
    eb = e[big]
    ab = a[big]
    out[big] = eb - (ab < _P10F[eb]) + (ab >= _P10F[eb + 1])
    small = (e < 0) & (-e <= kmax)
    es = e[small]
    y = a[small] * _P10F[-es]  # exact: a has few significant bits and -e <= kmax
    out[small] = es - (y < 1.0) + (y >= 10.0)
    return out


def _round_exact(a: np.ndarray, q: int) -> tuple[np.ndarray, np.ndarray]:
    """The float64 reading of ``"%.{q}g" % a`` for values of at most 24 significant bits, in
    int64: ``a = A / 2**s``, ``m = round_half_even(A * 10**k / 2**s)``; ``ok`` is False where
    int64 cannot hold the operands (the caller then searches)."""
    frac, ex = np.frexp(a)  # a = frac * 2**ex, 0.5 <= frac < 1
    big_a = (frac * 2.0 ** 24).astype(np.int64)  # exact: at most 24 significant bits
    s = 24 - ex.astype(np.int64)
    k = q - 1 - np.floor(np.log10(a)).astype(np.int64)
    for _ in range(2):  # a first guess of the exponent off by one is corrected once
        ok = ((24 + np.maximum(k, 0) * _LOG2_10 + np.maximum(-s, 0) < 62)
              & (np.maximum(s, 0) + np.maximum(-k, 0) * _LOG2_10 < 62))
        kk, ss = np.where(ok, k, 0), np.where(ok, s, 0)
        num = (big_a * _P10I[np.maximum(kk, 0)]) << np.maximum(-ss, 0)
        den = _P10I[np.maximum(-kk, 0)] << np.maximum(ss, 0)
        quo, rem = np.divmod(num, den)
        low, high = quo < _P10I[q - 1], quo >= _P10I[q]  # a * 10**k must be in [10**(q-1), 10**q)
        if not (ok & (low | high)).any():
            break
        k = np.where(ok & low, k + 1, np.where(ok & high, k - 1, k))
    ok &= ~(low | high) & (np.abs(k) <= 22)
    m = (quo + ((2 * rem > den) | ((2 * rem == den) & (quo % 2 == 1)))).astype(np.float64)
    kc = np.clip(k, -22, 22)
    val = np.where(kc >= 0, m / _P10F[np.maximum(kc, 0)], m * _P10F[np.maximum(-kc, 0)])
    return val, ok


def _float64_precisions(w: np.ndarray, target: np.ndarray, dt: DType) -> np.ndarray:
    """``p`` for finite nonzero float64 values: the digit count of ``repr`` (the shortest text
    that reads back, so no shorter ``%g`` can), raised while ``%g`` does not read back (at a
    power of two the nearest ``%g`` of that length may fall outside the narrower half-gap)."""
    p = np.array([len(r.partition("e")[0].replace("-", "").replace(".", "").strip("0")) or 1
                  for r in map(repr, w.tolist())], dtype=np.int8)
    todo = np.arange(len(w))
    while len(todo):
        text = np.array(["%.*g" % (int(q), v) for q, v in zip(p[todo].tolist(), w[todo].tolist())])
        back = text.astype(np.float64).view(dt.bits)
        todo = todo[back != target[todo]]
        p[todo] += 1
    return p


def format_rows(block: np.ndarray, p: np.ndarray) -> list[str]:
    """Each row of ``block`` as its values in ``"%.{p}g"`` text, separated by spaces."""
    n, d = block.shape
    if n == 0:
        return []
    row = " ".join(["%.*g"] * d)
    with np.errstate(invalid="ignore"):
        wide = block.astype(np.float64)
    pairs = np.empty((n, 2 * d), dtype=object)
    pairs[:, 0::2] = p
    pairs[:, 1::2] = wide
    return [row % tuple(r) for r in pairs.tolist()]
