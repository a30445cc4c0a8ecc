"""Beyond raw drift: did the space rotate, or did the meaning change?

* :func:`procrustes_drift` fits the orthogonal map ``R`` minimising ``||A R - B||_F`` (the
  orthogonal Procrustes problem: ``R = U V^T`` from the SVD ``A^T B = U S V^T``) and reports
  the drift left after it. A pure rotation of the space leaves ~0 residual; a change of meaning
  does not.
* :func:`knn_overlap` compares each sampled row's exact k nearest neighbours (cosine) in the two
  versions: Jaccard@k = |N_a ∩ N_b| / |N_a ∪ N_b|, which is invariant to any rotation.

Both run on a deterministic sample (fixed seed) so their cost is bounded by the sample size.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["sample_pairs", "procrustes_drift", "knn_overlap"]


def sample_pairs(ia: np.ndarray, ib: np.ndarray, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """At most ``size`` matched pairs, chosen by a seeded RNG and returned in row order."""
    n = len(ia)
    if n <= size:
        return ia, ib
    pick = np.sort(np.random.default_rng(seed).choice(n, size, replace=False))
    return ia[pick], ib[pick]


def _finite_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    finite: np.ndarray = np.isfinite(a).all(axis=1) & np.isfinite(b).all(axis=1)
    return finite


def procrustes_drift(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """Raw and rotation-corrected drift between matched rows ``a`` and ``b`` (float64, n x D).

    Returns mean and p90 per-row L2 drift before and after the best orthogonal map, and the
    fraction of the squared drift the rotation explains. Rows with NaN/inf are left out.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.random.default_rng(0).standard_normal((200, 8))
    >>> q, _ = np.linalg.qr(np.random.default_rng(1).standard_normal((8, 8)))
    >>> r = procrustes_drift(a, a @ q)
    >>> r["residual_l2_mean"] < 1e-9 < r["raw_l2_mean"]
    True
    """
    ok = _finite_rows(a, b)
    a, b = a[ok], b[ok]
    if len(a) == 0:
        return {"rows": 0}
    u, _, vt = np.linalg.svd(a.T @ b)
    r = u @ vt
    raw = np.linalg.norm(b - a, axis=1)
    res = np.linalg.norm(a @ r - b, axis=1)
    raw2 = float((raw ** 2).sum())
    return {"rows": int(len(a)), "raw_l2_mean": float(raw.mean()), "raw_l2_p90": float(np.percentile(raw, 90)),
            "residual_l2_mean": float(res.mean()), "residual_l2_p90": float(np.percentile(res, 90)),
            # The identity is one candidate map, so res <= raw exactly; clamp rounding noise.
            "rotation_explains": min(1.0, max(0.0, 1.0 - float((res ** 2).sum()) / raw2)) if raw2 > 0 else 1.0,
            "is_rotation_like": bool(raw2 > 0 and float((res ** 2).sum()) < 0.01 * raw2)}


def _knn(x: np.ndarray, k: int, block: int = 1024) -> np.ndarray:
    """Exact k nearest neighbours by cosine (self excluded); among the k, ordered by similarity
    then row index. Memory is bounded by ``block`` x n similarities."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    # float32 similarities: half the time of float64, and neighbour sets only differ on
    # near-exact ties, which a sampled overlap statistic does not care about.
    xn = (x / np.where(norms == 0, 1.0, norms)).astype(np.float32)
    n = len(x)
    out = np.empty((n, k), dtype=np.int64)
    for s in range(0, n, block):
        sim = xn[s:s + block] @ xn.T
        r = np.arange(len(sim))
        sim[r, r + s] = -np.inf
        cand = np.argpartition(sim, n - k, axis=1)[:, n - k:]
        simc = np.take_along_axis(sim, cand, axis=1)
        order = np.lexsort((cand, -simc), axis=-1)
        out[s:s + len(sim)] = np.take_along_axis(cand, order, axis=1)
    return out


def _rowwise_searchsorted(a: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``np.searchsorted(a[i], v[i])`` for every row i at once (rows of ``a`` sorted)."""
    n, k = a.shape
    off = (np.arange(n, dtype=np.int64) * (int(max(a.max(initial=0), v.max(initial=0))) + 1))[:, None]
    flat = (a + off).ravel()
    pos: np.ndarray = np.searchsorted(flat, (v + off).ravel()).reshape(n, -1) - np.arange(n)[:, None] * k
    return pos


def knn_overlap(a: np.ndarray, b: np.ndarray, k: int = 10) -> dict[str, Any]:
    """Mean / p10 / p50 / min Jaccard@k overlap of exact cosine neighbourhoods of matched rows.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.random.default_rng(0).standard_normal((300, 16))
    >>> knn_overlap(a, 3 * a, k=5)["mean"]
    1.0
    """
    ok = _finite_rows(a, b)
    a, b = a[ok], b[ok]
    n = len(a)
    if n <= k:
        return {"rows": int(n), "k": k, "mean": None}
    na, nb = _knn(a, k), _knn(b, k)
    # |N_a ∩ N_b| per row: sort both neighbour lists, then count matches of b's in a's.
    sa, sb = np.sort(na, axis=1), np.sort(nb, axis=1)
    pos = np.minimum(_rowwise_searchsorted(sa, sb), k - 1)
    inter = (np.take_along_axis(sa, pos, axis=1) == sb).sum(axis=1)
    jac = inter / (2 * k - inter)
    return {"rows": int(n), "k": int(k), "mean": float(jac.mean()), "p10": float(np.percentile(jac, 10)),
            "p50": float(np.percentile(jac, 50)), "min": float(jac.min())}
