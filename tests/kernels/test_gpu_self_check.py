"""The GPU backend's self-check, run on the CPU: a stand-in for kernels/gpu.py built from the
oracle passes it, and each kernel that disagrees (one wrong row, digest, tree, flag, delta byte
or statistic) makes it refuse the device with BackendUnavailableError. The real kernels run it
on a device (marker ``gpu``, tests/kernels/test_gpu.py)."""

from __future__ import annotations

import os
import re
import types
from typing import Any

import numpy as np
import pytest

from embfmt.canonical import merkle
from embfmt._kernels import reference
from embfmt.backend import GpuBackend
from embfmt.errors import BackendUnavailableError


def _stand_in(**broken: Any) -> types.SimpleNamespace:
    k = types.SimpleNamespace(
        rowprints=reference.rowprints,
        chunk_digests=reference.chunk_digests,
        tree_hash_device=lambda dg: merkle.tree_hash([bytes(d) for d in np.asarray(dg)]),
        rows_equal=reference.rows_equal,
        delta_encode=reference.delta_encode,
        delta_decode=reference.delta_decode,
        row_stats=reference.row_stats,
    )
    for name, wrap in broken.items():
        setattr(k, name, wrap(getattr(k, name)))
    return k


def _check(k: types.SimpleNamespace) -> None:
    be = GpuBackend.__new__(GpuBackend)  # no CuPy here: skip __init__'s import
    be._k = k
    be._self_check()


def test_the_oracle_passes() -> None:
    _check(_stand_in())


def _flip_last(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    if a.size:
        a.reshape(-1)[-1] ^= 1
    return a


@pytest.mark.parametrize("name, wrap, what", [
    # Only the staged kernel's lengths (over 240 bytes, multiples of 16) wrong: still caught.
    ("rowprints", lambda f: lambda r: _flip_last(f(r)) if r.shape[1] in (256, 1040, 2064) else f(r), "rowprints"),
    ("chunk_digests", lambda f: lambda r, c: _flip_last(f(r, c)), "chunk digests"),
    ("rows_equal", lambda f: lambda a, b: np.ones(len(a), bool), "changed rows"),
    ("delta_encode", lambda f: lambda n, b, i, m: _flip_last(f(n, b, i, m)), "dense deltas"),
    ("delta_decode", lambda f: lambda s, b, i, m: _flip_last(f(s, b, i, m)), "dense deltas"),
    # A device flushing float32 subnormals to zero (seen under CuPy on an H200) changes the
    # statistics of the self-check's first row.
    ("row_stats", lambda f: lambda a, b, c: f(np.where(np.abs(a.view(np.float32)) < np.float32(1.2e-38),
                                                       np.float32(0), a.view(np.float32)).view(np.uint8), b, c),
     "row statistics"),
])
def test_a_disagreeing_kernel_is_refused(name: str, wrap: Any, what: str) -> None:
    with pytest.raises(BackendUnavailableError, match=what):
        _check(_stand_in(**{name: wrap}))


def test_stage_rows_agree_between_source_and_launcher() -> None:
    """emb_rowprints_staged maps thread i to row i of a tile: gpu.py must launch EMB_STAGE_ROWS
    threads per block (gpu.py imports CuPy, so both files are read as text)."""
    kdir = os.path.dirname(reference.__file__)
    with open(os.path.join(kdir, "cuda", "embfmt_kernels.cu"), encoding="utf-8") as f:
        cu = re.search(r"#define EMB_STAGE_ROWS (\d+)", f.read())
    with open(os.path.join(kdir, "gpu.py"), encoding="utf-8") as f:
        py = re.search(r"^_STAGE_ROWS = (\d+)", f.read(), re.M)
    assert cu and py and cu.group(1) == py.group(1)


# The device Merkle tree hash is checked by the canonical layer that owns the tree (backend.py
# is below it), before canonical.fingerprint first trusts it.

def test_the_oracle_tree_hash_passes() -> None:
    merkle.check_device_tree_hash(_stand_in().tree_hash_device)


@pytest.mark.parametrize("wrong", [
    lambda dg: bytes(32),
    lambda dg: merkle.tree_hash([bytes(d) for d in np.asarray(dg)[:-1]]),  # the odd node dropped
])
def test_a_disagreeing_tree_hash_is_refused(wrong: Any) -> None:
    with pytest.raises(BackendUnavailableError, match="Merkle"):
        merkle.check_device_tree_hash(wrong)


def test_fingerprint_refuses_a_gpu_whose_tree_hash_disagrees(monkeypatch: pytest.MonkeyPatch) -> None:
    from embfmt.canonical import fingerprint as fpmod

    be = types.SimpleNamespace(tree_hash_device=lambda dg: bytes(32))
    monkeypatch.setattr(fpmod, "get_backend", lambda name: be)
    fpmod._checked_gpu_backend.cache_clear()
    try:
        for _ in range(2):  # a refusal is not cached: it raises again
            with pytest.raises(BackendUnavailableError, match="Merkle"):
                fpmod._checked_gpu_backend()
        be.tree_hash_device = _stand_in().tree_hash_device
        assert fpmod._checked_gpu_backend() is be
    finally:
        fpmod._checked_gpu_backend.cache_clear()
