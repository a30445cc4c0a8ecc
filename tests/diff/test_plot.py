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
    from embfmt.plot import plot_diff

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
