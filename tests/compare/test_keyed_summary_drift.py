"""Keyed diffs (added, removed, reordered rows; int and str keys), the summary and top-K, and
the drift analyses (Procrustes, kNN overlap)."""

from __future__ import annotations

import numpy as np
import pytest

import embfmt
from embfmt.compare.diff import _summary

from ._util import oracle_stats


def _keys(kind: str, ids: np.ndarray) -> object:
    return ids.astype(np.int64) if kind == "int" else [f"item-{i:05d}" for i in ids]


@pytest.mark.parametrize("kind", ["int", "str"])
def test_reordering_alone_is_identical(kind: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(1)
    x = rng.standard_normal((500, 8)).astype(np.float32)
    ids = np.arange(500) * 7 + 3
    perm = rng.permutation(500)
    d = embfmt.diff(x, x[perm], keys_a=_keys(kind, ids), keys_b=_keys(kind, ids[perm]))
    assert d.matched_by == "key" and d.identical and d.unchanged == 500
    assert d.n_changed == 0 and len(d.added) == 0 and len(d.removed) == 0
    # by position the same data is all changed
    assert embfmt.diff(x, x[perm]).n_changed == int((perm != np.arange(500)).sum())
    # stored with keys, both ways
    repo = embfmt.Repo.init(tmp_path)
    repo.commit({"t": x}, keys={"t": _keys(kind, ids)}, message="1")
    repo.commit({"t": x[perm]}, keys={"t": _keys(kind, ids[perm])}, message="2")
    ds = repo.diff("HEAD~1", "HEAD", "t")
    assert ds.identical and ds.matched_by == "key"


@pytest.mark.parametrize("kind", ["int", "str"])
def test_added_removed_changed_by_key(kind: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(2)
    n = 300
    x = rng.standard_normal((n, 6)).astype(np.float32)
    ids = np.arange(n)
    keep = np.setdiff1d(ids, [3, 50, 299])  # removed: 3, 50, 299
    perm = rng.permutation(len(keep))
    y_ids = np.concatenate([keep[perm], [1000, 1001]])  # added 1000, 1001
    y = np.concatenate([x[keep[perm]], rng.standard_normal((2, 6)).astype(np.float32)])
    changed_ids = [10, 20, 200]
    for cid in changed_ids:
        y[np.flatnonzero(y_ids == cid)[0], 2] += 1
    for d in (embfmt.diff(x, y, keys_a=_keys(kind, ids), keys_b=_keys(kind, y_ids)),
              _stored(tmp_path / kind, x, y, _keys(kind, ids), _keys(kind, y_ids))):
        assert d.matched_by == "key"
        assert sorted(ids[d.changed_a].tolist()) == changed_ids
        assert np.array_equal(ids[d.changed_a], y_ids[d.changed_b])
        assert sorted(y_ids[d.added].tolist()) == [1000, 1001]
        assert sorted(ids[d.removed].tolist()) == [3, 50, 299]
        assert d.unchanged == n - 3 - 3
        want = oracle_stats(x[d.changed_a], y[d.changed_b], "float32")
        assert np.allclose(d.stats["l2"], want["l2"]) and np.allclose(d.stats["cosine"], want["cosine"])
        j = d.to_dict(top=2, rows=True)
        want_keys = sorted(_keys(kind, np.array(changed_ids)))  # type: ignore[arg-type]
        assert sorted(j["rows"]["changed_keys"]) == want_keys
        assert sorted(j["rows"]["added_keys"]) == sorted(_keys(kind, np.array([1000, 1001])))  # type: ignore[arg-type]
        assert sorted(j["rows"]["removed_keys"]) == sorted(_keys(kind, np.array([3, 50, 299])))  # type: ignore[arg-type]
        assert all(r["key"] in want_keys for r in j["top"])
        assert j["counts"] == {"changed": 3, "added": 2, "removed": 3, "unchanged": n - 6}


def _stored(path, x, y, ka, kb) -> embfmt.Diff:  # type: ignore[no-untyped-def]
    repo = embfmt.Repo.init(path)
    repo.commit({"t": x}, keys={"t": ka}, message="1")
    repo.commit({"t": y}, keys={"t": kb}, message="2")
    return repo.diff("HEAD~1", "HEAD", "t")


def test_keys_on_one_side_match_by_position() -> None:
    x = np.eye(4, dtype=np.float32)
    d = embfmt.diff(x, x[::-1].copy(), keys_a=[1, 2, 3, 4])
    assert d.matched_by == "position" and d.n_changed == 4


# --- summary and top-K -------------------------------------------------------------------------
def test_summary_and_top_k() -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1000, 16)).astype(np.float32)
    y = x.copy()
    rows = rng.choice(1000, 200, replace=False)
    y[rows] += rng.standard_normal((200, 16)).astype(np.float32) * rng.uniform(0.01, 2, (200, 1)).astype(np.float32)
    y[rows[0], 0] = np.nan
    d = embfmt.diff(x, y)
    s = d.summary()
    l2 = d.stats["l2"]
    fin = l2[np.isfinite(l2)]
    assert s["l2"]["count"] == 200 and s["l2"]["nonfinite"] == 1
    assert s["l2"]["fraction"] == 200 / 1000
    assert s["l2"]["mean"] == pytest.approx(fin.mean(), rel=1e-12)
    for q, key in ((50, "p50"), (90, "p90"), (99, "p99")):
        assert s["l2"][key] == pytest.approx(np.percentile(fin, q), rel=1e-12)
    assert s["l2"]["max"] == fin.max() and s["l2"]["min"] == fin.min()
    top = d.top(10)
    assert len(top) == 10
    assert top[0]["b"] == rows[0] and top[0]["l2"] == "nan"  # NaN ranks first
    rest = [t["l2"] for t in top[1:]]
    assert rest == sorted(fin, reverse=True)[:9]
    # by cosine: lowest first
    tc = d.top(5, by="cosine")
    cos = d.stats["cosine"]
    assert [t["cosine"] for t in tc[1:]] == sorted(cos[np.isfinite(cos)])[:4]
    # by ulp: exact uint64 order
    tu = d.top(3, by="ulp")
    assert [t["ulp"] for t in tu] == sorted(d.stats["ulp"].tolist(), reverse=True)[:3]
    assert d.top(0) == [] and d.to_dict(top=0)["top"] == []
    with pytest.raises(embfmt.InputError):
        d.top(3, by="nope")
    # no stats
    ns = embfmt.diff(x, y, stats=False)
    assert ns.summary() == {} and ns.top(5) == [] and ns.to_dict()["summary"] == {}


def test_top_ranks_nan_above_inf_for_every_metric() -> None:
    """spec/diff-json.md: NaN first, then +inf, then descending; ties keep row order. A row
    moved to +inf must not outrank a NaN row because it comes first."""
    x = np.ones((5, 2), np.float32)
    y = x.copy()
    y[0, 0] = np.inf          # l2 and max_abs +inf
    y[1, 0] = np.nan          # every float statistic NaN
    y[2, 0] = 6.0
    y[3, 0] = -3.0e38         # the largest finite l2
    y[4, 0] = 2.0
    d = embfmt.diff(x, y)
    assert [t["b"] for t in d.top(5)] == [1, 0, 3, 2, 4]
    assert [t["b"] for t in d.top(5, by="max_abs")] == [1, 0, 3, 2, 4]
    assert d.top(5)[0]["l2"] == "nan"
    # cosine of the +inf row is NaN too (inf / inf): two NaN rows tie, in row order
    assert [(t["b"], t["cosine"]) for t in d.top(2, by="cosine")] == [(0, "nan"), (1, "nan")]


def test_summary_empty_and_all_nonfinite() -> None:
    s = _summary(np.array([np.nan, np.inf]), 4)
    assert s["count"] == 2 and s["nonfinite"] == 2 and s["fraction"] == 0.5
    assert s["mean"] is None and s["max"] is None
    assert _summary(np.empty(0), 0)["fraction"] == 0.0
    x = np.ones((3, 2), np.float32)
    d = embfmt.diff(x, x)
    assert d.identical and d.summary()["l2"]["count"] == 0 and d.top() == []


def test_ulp_top_ranks_beyond_2_53() -> None:
    # two ULP distances that a float64 copy would merge: exact order is kept
    x = np.zeros((2, 1), np.float64)
    y = x.copy()
    y.view(np.uint64)[0, 0] = 2 ** 62
    y.view(np.uint64)[1, 0] = 2 ** 62 + 1
    d = embfmt.diff(x, y)
    assert [t["b"] for t in d.top(2, by="ulp")] == [1, 0]


# --- drift ---------------------------------------------------------------------------------------
def test_procrustes_rotation_vs_random_change() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, 16))
    q, _ = np.linalg.qr(rng.standard_normal((16, 16)))
    d = embfmt.diff(x, x @ q, procrustes=True, sample=1500)
    p = d.procrustes
    assert p is not None and p["rows"] == 1500
    assert p["residual_l2_mean"] < 1e-9 < p["raw_l2_mean"]
    assert p["rotation_explains"] == pytest.approx(1.0, abs=1e-12) and p["is_rotation_like"]
    noisy = x + rng.standard_normal(x.shape)
    p2 = embfmt.diff(x, noisy, procrustes=True).procrustes
    assert p2 is not None and p2["rotation_explains"] < 0.5 and not p2["is_rotation_like"]
    assert p2["residual_l2_mean"] > 0.5 * p2["raw_l2_mean"]
    assert 0.0 <= p2["rotation_explains"] <= 1.0


def test_knn_overlap_scaled_copy_and_shuffle() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((600, 12)).astype(np.float32)
    k = embfmt.diff(x, (x * np.float32(3)), knn=5).knn
    assert k is not None and k["mean"] == 1.0 and k["min"] == 1.0 and k["k"] == 5
    shuffled = x[rng.permutation(600)]
    k2 = embfmt.diff(x, shuffled, knn=5).knn
    assert k2 is not None and k2["mean"] < 0.2
    # the sample bounds the cost and is deterministic
    a = embfmt.diff(x, shuffled, knn=5, sample=100).knn
    b = embfmt.diff(x, shuffled, knn=5, sample=100).knn
    assert a == b and a is not None and a["rows"] == 100
    # too few rows: mean is None
    assert embfmt.diff(x[:4], x[:4] * 2, knn=5).knn["mean"] is None  # type: ignore[index]


def test_drift_json_safe() -> None:
    import json

    x = np.random.default_rng(2).standard_normal((50, 4)).astype(np.float32)
    d = embfmt.diff(x, x * 2, procrustes=True, knn=3)
    json.dumps(d.to_dict(), allow_nan=False)
