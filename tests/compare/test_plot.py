"""``plot_diff`` in-process: degenerate inputs that used to raise (values a few ULPs apart)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import embfmt

pytestmark = pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None,
                                reason="matplotlib is not installed (pip install 'embfmt[plot]')")


def _png_ok(p: Path) -> None:
    data = p.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) > 5 * 1024


def test_plot_degenerate_inputs(tmp_path: Path) -> None:
    from embfmt.compare.plot import plot_diff

    x = np.random.default_rng(0).standard_normal((500, 8)).astype(np.float32)
    y = x.copy()
    y[:50] *= np.float32(1.5)  # cosines all ~1.0, a few ULPs apart: np.histogram used to raise
    cases = {"scaled": embfmt.diff(x, y), "nostats": embfmt.diff(x, y, stats=False),
             "identical": embfmt.diff(x, x), "empty": embfmt.diff(x[:0], x[:0]),
             "nan": embfmt.diff(x, np.full_like(x, np.nan)), "removed": embfmt.diff(x, x[:100])}
    for name, d in cases.items():
        out = tmp_path / f"{name}.png"
        assert plot_diff(d, str(out)) == str(out)
        _png_ok(out)


def _no_overlap(fig) -> None:  # type: ignore[no-untyped-def]
    """No axis shows offset notation, and no two tick labels of one axis overlap."""
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            assert axis.get_offset_text().get_text() == "", (ax, axis.get_offset_text().get_text())
            boxes = [t.get_window_extent(r) for t in axis.get_ticklabels() if t.get_visible() and t.get_text()]
            for i, a in enumerate(boxes):
                for b in boxes[i + 1:]:
                    assert not a.overlaps(b), [t.get_text() for t in axis.get_ticklabels()]


@pytest.mark.parametrize("n", [12, 300_000])
def test_plot_readable_axes_colorbar_and_labelled_movers(n: int) -> None:
    import matplotlib.pyplot as plt

    from embfmt.compare.plot import render_diff

    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, 8)).astype(np.float32)
    y = x.copy()
    moved = rng.choice(n, min(n, 2000) // 4 or 1, replace=False)
    y[moved] += np.float32(1e-3) * rng.standard_normal((len(moved), 8)).astype(np.float32)
    y[moved[0]] += 5  # the top mover
    keys = np.arange(n, dtype=np.int64) * 10 + 7
    fig = render_diff(embfmt.diff(x, y, keys_a=keys, keys_b=keys))
    try:
        _no_overlap(fig)
        assert sum(ax.get_label() == "<colorbar>" for ax in fig.axes) == 1
        movers = [ax for ax in fig.axes if ax.get_title().startswith("moved most")]
        assert len(movers) == 1
        labels = [t.get_text() for t in movers[0].get_yticklabels()]
        assert labels[0] == str(int(keys[moved[0]])) and len(labels) == min(10, len(moved))
        assert all(lab.isdigit() for lab in labels)  # keys, not "row N"
    finally:
        plt.close(fig)


def test_plot_tables_one_panel_group_per_changed_table(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    from embfmt.compare.plot import plot_tables, render_tables

    repo = embfmt.Repo.init(tmp_path / "r")
    x = np.arange(400, dtype=np.float32).reshape(100, 4)
    repo.commit({"a": x, "b": x, "c": x, "gone": x})
    y = x.copy()
    y[5] += 1
    repo.commit({"a": y, "c": y * 2, "new": x}, remove=("gone",))
    td = repo.diff("HEAD~1", "HEAD")
    fig = render_tables(td)
    try:
        titles = [sf.get_suptitle() for sf in fig.subfigs]
        assert len(titles) == 2 and titles[0].startswith("table a:") and titles[1].startswith("table c:")
        assert "added: new" in fig.get_suptitle() and "removed: gone" in fig.get_suptitle()
        assert "unchanged: b" in fig.get_suptitle()
        assert all(len(sf.axes) == 5 for sf in fig.subfigs)  # 2 histograms, movers, strip, colour bar
        _no_overlap(fig)
        movers = [ax for ax in fig.subfigs[0].axes if ax.get_title().startswith("moved most")]
        assert [t.get_text() for t in movers[0].get_yticklabels()] == ["row 5"]
    finally:
        plt.close(fig)
    out = tmp_path / "t.png"
    assert plot_tables(td, str(out)) == str(out)
    _png_ok(out)
