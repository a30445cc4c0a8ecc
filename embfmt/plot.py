"""PNG report of a diff: where and how much rows moved (needs the ``plot`` extra: matplotlib)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import ErrorKind, InputError

__all__ = ["plot_diff"]


def plot_diff(d: Any, path: str, *, chunk_rows: int | None = None, title: str | None = None) -> str:
    """Write a PNG: histograms of per-row cosine similarity and L2 change of the changed rows,
    and a strip showing the fraction of changed rows per chunk along the table."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display needed; never opens a window
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("--plot needs matplotlib: pip install 'embfmt[plot]'", ErrorKind.MISSING_EXTRA) from None
    from .fingerprint import chunk_rows_for

    cr = chunk_rows or chunk_rows_for(d.dtype, d.dim)
    fig = plt.figure(figsize=(10, 6), dpi=100)
    gs = fig.add_gridspec(2, 2, height_ratios=[3, 1])
    ax1, ax2, ax3 = fig.add_subplot(gs[0, 0]), fig.add_subplot(gs[0, 1]), fig.add_subplot(gs[1, :])
    stats = d.stats or {}
    for ax, key, label in ((ax1, "cosine", "cosine similarity (changed rows)"),
                           (ax2, "l2", "L2 change (changed rows)")):
        v = np.asarray(stats.get(key, np.empty(0)), dtype=np.float64)
        v = v[np.isfinite(v)]
        if len(v):
            # Values a few ULPs apart (e.g. cosines of scaled rows, all ~1.0) cannot be split
            # into 50 finite-width bins (numpy raises): widen the range around them instead.
            lo, hi = float(v.min()), float(v.max())
            pad = 1e-6 * max(1.0, abs(lo), abs(hi))
            ax.hist(v, bins=50, range=None if hi - lo > pad else (lo - pad, hi + pad),
                    color="#3b6ea8")
        else:
            why = ("statistics not computed" if d.stats is None
                   else "no changed rows" if not d.n_changed else "no finite values")
            ax.text(0.5, 0.5, why, ha="center", va="center", transform=ax.transAxes)
        ax.set_xlabel(label)
        ax.set_ylabel("rows")
    n = max(d.n_a, d.n_b, 1)
    n_chunks = max(1, -(-n // cr))
    counts = np.bincount(np.asarray(d.changed_b, dtype=np.int64) // cr, minlength=n_chunks)[:n_chunks].astype(float)
    if len(d.added):
        counts += np.bincount(np.asarray(d.added) // cr, minlength=n_chunks)[:n_chunks]
    sizes = np.full(n_chunks, float(cr))
    sizes[-1] = n - (n_chunks - 1) * cr
    ax3.imshow((counts / sizes)[None, :], aspect="auto", cmap="magma", vmin=0, vmax=1,
               extent=(0, n, 0, 1), interpolation="nearest")
    ax3.set_yticks([])
    ax3.set_xlabel(f"row (chunks of {cr}); colour = fraction of rows changed or added")
    fig.suptitle(title or f"{d.n_changed} changed, {len(d.added)} added, {len(d.removed)} removed "
                          f"of {d.n_a} -> {d.n_b} rows ({d.dtype} x {d.dim})")
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return path
