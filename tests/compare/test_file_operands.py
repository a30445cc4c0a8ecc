"""embfmt.diff accepts file paths (.npy, HDF5 with :dataset, .safetensors with :tensor)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import embfmt


def test_diff_between_files_and_arrays(tmp_path: Path) -> None:
    import h5py

    rng = np.random.default_rng(5)
    x = rng.standard_normal((300, 12)).astype(np.float32)
    y = x.copy()
    y[[3, 150]] += 1
    y = np.concatenate([y, x[:4]])
    np.save(tmp_path / "x.npy", x)
    with h5py.File(tmp_path / "y.h5", "w") as f:
        f.create_dataset("model/emb", data=y)
    want = embfmt.diff(x, y)
    got = embfmt.diff(str(tmp_path / "x.npy"), f"{tmp_path / 'y.h5'}:model/emb")
    assert got.changed_b.tolist() == want.changed_b.tolist() == [3, 150]
    assert got.added.tolist() == [300, 301, 302, 303]
    assert np.array_equal(got.stats["l2"].view(np.uint64), want.stats["l2"].view(np.uint64))
    st = pytest.importorskip("safetensors.numpy")
    st.save_file({"w": y}, str(tmp_path / "y.safetensors"))
    got2 = embfmt.diff(tmp_path / "x.npy", f"{tmp_path / 'y.safetensors'}:w")
    assert got2.changed_b.tolist() == [3, 150]
    with pytest.raises(embfmt.NotFoundError):
        embfmt.diff(tmp_path / "missing.npy", x)
