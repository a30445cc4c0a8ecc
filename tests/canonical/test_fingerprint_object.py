"""The Fingerprint object's contract where a backend hands it device results: rowprints fetched
on first use, pickles and copies that carry host rowprints, and a backend-computed tree hash
that proofs refuse when it disagrees with the digests (CPU stand-ins for the device arrays)."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import embfmt
from embfmt.canonical.dtype import dtype_of
from embfmt.errors import IntegrityError
from embfmt.canonical.fingerprint import Fingerprint


class DeviceArray:
    """What the GPU path hands over: an array with ``.get()`` and ``len``, counting fetches."""

    def __init__(self, host: np.ndarray) -> None:
        self.host, self.fetches = host, 0

    def __len__(self) -> int:
        return len(self.host)

    def get(self) -> np.ndarray:
        self.fetches += 1
        return self.host.copy()


def _parts(n: int = 5000, d: int = 64):  # type: ignore[no-untyped-def]
    x = np.random.default_rng(n).standard_normal((n, d)).astype(np.float32)
    fp = embfmt.fingerprint(x, backend="cpu")
    dg = np.frombuffer(b"".join(fp.chunk_digests), np.uint8).reshape(-1, 32)
    return fp, dg


def test_device_rowprints_are_fetched_once_on_first_use() -> None:
    fp, dg = _parts()
    dev = DeviceArray(np.array(fp.rowprints))
    lazy = Fingerprint(rowprints=dev, digests=dg, dtype=dtype_of(fp.dtype), shape=fp.shape, backend="gpu",
                       tree_hash=fp.tree_hash)
    assert dev.fetches == 0 and lazy.root == fp.root
    assert np.array_equal(lazy.rowprints, fp.rowprints) and not lazy.rowprints.flags.writeable
    lazy.rowprints
    assert dev.fetches == 1


@pytest.mark.parametrize("clone", [lambda f: pickle.loads(pickle.dumps(f)), copy.copy, copy.deepcopy])
def test_pickles_and_copies_carry_host_rowprints(clone) -> None:  # type: ignore[no-untyped-def]
    fp, dg = _parts()
    lazy = Fingerprint(rowprints=DeviceArray(np.array(fp.rowprints)), digests=dg, dtype=dtype_of(fp.dtype),
                       shape=fp.shape, backend="gpu", tree_hash=fp.tree_hash)
    other = clone(lazy)
    assert isinstance(other._rowprints, np.ndarray)
    assert other == fp and np.array_equal(other.rowprints, fp.rowprints)
    assert embfmt.verify_proof(other.root, 1, other.chunk_digests[1], other.proof(1))


def test_a_tree_hash_that_disagrees_with_the_digests_is_refused_by_proofs() -> None:
    fp, dg = _parts()
    bad = Fingerprint(rowprints=np.array(fp.rowprints), digests=dg, dtype=dtype_of(fp.dtype), shape=fp.shape,
                      backend="gpu", tree_hash=bytes(32))
    with pytest.raises(IntegrityError, match="tree hash does not match"):
        bad.proof(0)
    good = Fingerprint(rowprints=np.array(fp.rowprints), digests=dg, dtype=dtype_of(fp.dtype), shape=fp.shape,
                       backend="gpu", tree_hash=fp.tree_hash)
    assert embfmt.verify_proof(good.root, 0, good.chunk_digests[0], good.proof(0))
