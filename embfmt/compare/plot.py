"""PNG report of a diff: where and how much rows moved (needs the ``plot`` extra: matplotlib).

One table (:func:`plot_diff`) or every changed table of two revisions (:func:`plot_tables`, one
panel group per table). Each group shows the distribution of the cosine distance ``1 - cos``
and of the L2 change over the changed rows, the rows that moved most (labelled by key where
the table has keys), and a strip along the table with the fraction of rows changed or added per
chunk, with its colour bar. Tick labels are plain numbers (no offset or ``1e-7`` corner
notation, which hides the scale of tiny drifts), few enough per axis not to overlap.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..canonical.chunking import chunk_rows_for
from ..errors import ErrorKind, InputError

__all__ = ["plot_diff", "plot_tables", "render_diff", "render_tables"]

#: Rows named in the "moved most" panel.
TOP_MOVERS = 10
#: Tables drawn by plot_tables; the title says how many more changed.
MAX_TABLE_PANELS = 8
_BLUE, _ORANGE = "#3b6ea8", "#d9822b"


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display needed; never opens a window
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("--plot needs matplotlib: pip install 'embfmt[plot]'", ErrorKind.MISSING_EXTRA) from None
    return plt


def _num(v: float, digits: int = 3) -> str:
    """A tick label: plain and short (``250k``, ``1.5M``, ``4e-07``), never an offset."""
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.{digits}g}M"
    if a >= 1e4:
        return f"{v / 1e3:.{digits}g}k"
    if v == round(v) and a < 1e4:
        return str(int(v))
    return f"{v:.{digits}g}"


def _formatter() -> Any:
    from matplotlib.ticker import Formatter

    class Plain(Formatter):
        """Plain labels with as many digits as it takes for neighbours to differ (ticks of a
        narrow range, e.g. cosines of 0.99999990 and 0.99999995, would all read "1")."""

        def __call__(self, x: float, pos: Any = None) -> str:
            return _num(x)

        def format_ticks(self, values: Any) -> list[str]:
            for digits in range(3, 12):
                labels = [_num(v, digits) for v in values]
                if len(set(labels)) == len(labels):
                    return labels
            return labels

    return Plain()


def _plain_axes(ax: Any, nx: int = 4, ny: int = 4, integer_y: bool = False) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(nbins=nx))
    ax.xaxis.set_major_formatter(_formatter())
    ax.yaxis.set_major_locator(MaxNLocator(nbins=ny, integer=integer_y))
    ax.yaxis.set_major_formatter(_formatter())


def _hist(ax: Any, v: np.ndarray, label: str, why: str, color: str) -> None:
    v = v[np.isfinite(v)]
    if len(v):
        # Values a few ULPs apart (e.g. cosines of scaled rows, all ~1.0) cannot be split
        # into 40 finite-width bins (numpy raises): widen the range around them instead.
        lo, hi = float(v.min()), float(v.max())
        pad = 1e-6 * max(abs(lo), abs(hi)) or 1e-12
        narrow = hi - lo <= pad
        ax.hist(v, bins=40, range=(lo - pad, hi + pad) if narrow else None, color=color)
    else:
        ax.text(0.5, 0.5, why, ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel(label)
    ax.set_ylabel("rows")
    _plain_axes(ax, nx=3, integer_y=True)
    if len(v) and narrow:  # one value (or a few ULPs apart): label it, not the padding around it
        ax.set_xticks([lo] if lo == hi else [lo, hi])


def _label(row: dict[str, Any]) -> str:
    if "key" in row:
        k = str(row["key"])
        return k if len(k) <= 18 else k[:17] + "…"
    return f"row {row['b']}"


def _movers(ax: Any, d: Any) -> None:
    rows = d.top(TOP_MOVERS) if d.stats is not None else []
    ax.set_title(f"moved most (L2){', by key' if rows and 'key' in rows[0] else ''}", fontsize=9)
    if not rows:
        ax.text(0.5, 0.5, "no changed rows" if d.stats is not None else "statistics not computed",
                ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
        return
    l2 = [r["l2"] if isinstance(r["l2"], float) else float("nan") for r in rows]
    finite = [v for v in l2 if np.isfinite(v)]
    cap = max(finite) * 1.05 if finite and max(finite) > 0 else 1.0
    shown = [v if np.isfinite(v) else cap for v in l2]  # NaN / inf drawn at the end, marked
    y = np.arange(len(rows))[::-1]
    ax.barh(y, shown, color=[_BLUE if np.isfinite(v) else _ORANGE for v in l2])
    ax.set_yticks(y, [_label(r) + ("" if np.isfinite(v) else f" ({r['l2']})") for r, v in zip(rows, l2)],
                  fontsize=7)
    ax.set_xlabel("L2 change")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(nbins=3))
    ax.xaxis.set_major_formatter(_formatter())


def _strip(fig: Any, ax: Any, d: Any, chunk_rows: int | None) -> None:
    cr = chunk_rows or chunk_rows_for(d.dtype, d.dim)
    n = max(d.n_a, d.n_b, 1)
    n_chunks = max(1, -(-n // cr))
    counts = np.bincount(np.asarray(d.changed_b, dtype=np.int64) // cr, minlength=n_chunks)[:n_chunks].astype(float)
    if len(d.added):
        counts += np.bincount(np.asarray(d.added) // cr, minlength=n_chunks)[:n_chunks]
    sizes = np.full(n_chunks, float(cr))
    sizes[-1] = n - (n_chunks - 1) * cr
    frac = counts / sizes
    # Scaled to the largest fraction (the colour bar says what it is): a 1% update on a fixed
    # 0..100% scale would be uniformly black.
    top = float(frac.max()) if frac.max() > 0 else 1.0
    im = ax.imshow(frac[None, :], aspect="auto", cmap="magma", vmin=0, vmax=top,
                   extent=(0, n, 0, 1), interpolation="nearest")
    ax.set_xlabel(f"row of b ({n_chunks} chunk{'s' if n_chunks != 1 else ''} of {cr} rows)")
    _plain_axes(ax, nx=6)
    ax.set_yticks([])
    from matplotlib.ticker import FuncFormatter

    cb = fig.colorbar(im, ax=ax, orientation="vertical", fraction=0.04, pad=0.01,
                      format=FuncFormatter(lambda v, _p: f"{100 * v:.3g}%"))
    cb.set_ticks([0, top / 2, top])
    cb.ax.tick_params(labelsize=7)
    cb.set_label("rows changed\nor added", fontsize=7)


def _headline(d: Any) -> str:
    return (f"{d.n_changed} changed, {len(d.added)} added, {len(d.removed)} removed of "
            f"{d.n_a} -> {d.n_b} rows ({d.dtype} x {d.dim})")


def _draw(fig: Any, d: Any, title: str, chunk_rows: int | None) -> None:
    """One table's panels into ``fig`` (a Figure or a SubFigure)."""
    gs = fig.add_gridspec(2, 3, height_ratios=[3, 1], width_ratios=[1, 1, 1.1])
    ax1, ax2, ax3 = (fig.add_subplot(gs[0, i]) for i in range(3))
    ax4 = fig.add_subplot(gs[1, :])
    stats = d.stats or {}
    why = ("statistics not computed" if d.stats is None
           else "no changed rows" if not d.n_changed else "no finite values")
    cos = np.asarray(stats.get("cosine", np.empty(0)), dtype=np.float64)
    _hist(ax1, 1.0 - cos, "cosine distance 1 - cos (changed rows)", why, _BLUE)
    _hist(ax2, np.asarray(stats.get("l2", np.empty(0)), dtype=np.float64), "L2 change (changed rows)",
          why, _BLUE)
    _movers(ax3, d)
    _strip(fig, ax4, d, chunk_rows)
    fig.suptitle(title, fontsize=10)


def render_diff(d: Any, *, chunk_rows: int | None = None, title: str | None = None) -> Any:
    """The figure :func:`plot_diff` writes (a matplotlib Figure; close it when done)."""
    plt = _pyplot()
    fig = plt.figure(figsize=(12, 5.5), dpi=100, layout="constrained")
    _draw(fig, d, title or _headline(d), chunk_rows)
    return fig


def plot_diff(d: Any, path: str, *, chunk_rows: int | None = None, title: str | None = None) -> str:
    """Write a PNG of one table's diff: histograms of the cosine distance and L2 change of the
    changed rows, the rows that moved most (by key where present), and the fraction of rows
    changed per chunk along the table with a colour bar."""
    plt = _pyplot()
    fig = render_diff(d, chunk_rows=chunk_rows, title=title)
    try:
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return path


def render_tables(td: Any) -> Any:
    """The figure :func:`plot_tables` writes: one panel group (a SubFigure) per table whose
    rows changed, at most :data:`MAX_TABLE_PANELS`; the title lists the other changes."""
    plt = _pyplot()
    status = td.status()
    changed = [n for n in td.diffs if status[n] == "changed"]
    shown = changed[:MAX_TABLE_PANELS]
    notes = []
    if len(changed) > len(shown):
        notes.append(f"{len(changed) - len(shown)} more changed tables not drawn")
    for what, names in (("added", td.added), ("removed", td.removed), ("dtype or D changed", td.schema_changed)):
        if names:
            notes.append(f"{what}: {', '.join(names)}")
    unchanged = [n for n, s in status.items() if s == "unchanged"]
    if unchanged:
        notes.append(f"unchanged: {', '.join(unchanged)}")
    a, b = td.info.get("a", {}), td.info.get("b", {})
    head = f"{a.get('rev', 'a')} -> {b.get('rev', 'b')}: {len(changed)} of {len(status)} tables changed rows"
    fig = plt.figure(figsize=(12, 0.9 + 5.0 * max(1, len(shown))), dpi=100, layout="constrained")
    fig.suptitle(head + ("\n" + "; ".join(notes) if notes else ""), fontsize=11)
    if not shown:
        fig.text(0.5, 0.5, "no table has changed rows", ha="center", va="center")
        return fig
    subs = fig.subfigures(len(shown), 1) if len(shown) > 1 else [fig.subfigures(1, 1)]
    for sub, name in zip(subs, shown):
        _draw(sub, td.diffs[name], f"table {name}: {_headline(td.diffs[name])}", None)
    return fig


def plot_tables(td: Any, path: str) -> str:
    """Write a PNG of a :class:`~embfmt.compare.diff.TablesDiff`: one panel group per changed table."""
    plt = _pyplot()
    fig = render_tables(td)
    try:
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return path
