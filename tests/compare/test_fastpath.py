"""The fast paths give exactly the full answer.

For random edit sequences committed to a repository, ``repo.diff(v_i, v_j)`` (stored vs stored:
sparse patches, rowprints, recorded change objects) equals ``embfmt.diff`` of the numpy arrays
(matrix vs matrix) equals stored vs matrix in both directions: the same changed, added and
removed rows and bit-identical statistics.
"""

from __future__ import annotations

import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import embfmt
from embfmt.canonical.fingerprint import chunk_rows_for

from ._util import bits_dtype, np_dtype

D = 256  # float32: 1024 rows per chunk; float16/bfloat16: 2048; int8: 4096


def _same(d1: embfmt.Diff, d2: embfmt.Diff, what: str) -> None:
    for f in ("changed_a", "changed_b", "added", "removed"):
        assert np.array_equal(getattr(d1, f), getattr(d2, f)), (what, f, getattr(d1, f), getattr(d2, f))
    assert d1.unchanged == d2.unchanged and d1.n_a == d2.n_a and d1.n_b == d2.n_b, what
    assert d1.stats is not None and d2.stats is not None
    for m in ("l2", "cosine", "max_abs"):
        assert np.array_equal(d1.stats[m].view(np.uint64), d2.stats[m].view(np.uint64)), (what, m)
    assert np.array_equal(d1.stats["ulp"], d2.stats["ulp"]), (what, "ulp")


def _apply(x: np.ndarray, op: tuple, rng: np.random.Generator, name: str) -> np.ndarray:
    kind = op[0]
    n = len(x)
    y = x.copy()
    if kind == "edit" and n:
        rows = rng.choice(n, min(n, op[1]), replace=False)
        fresh = rng.standard_normal((len(rows), x.shape[1])) if name != "int8" else rng.integers(-128, 128, (len(rows), x.shape[1]))
        y[rows] = fresh.astype(x.dtype)
    elif kind == "nudge" and n:  # one bit of one element (a 1-ULP move; -0.0 from +0.0)
        rows = rng.choice(n, min(n, op[1]), replace=False)
        y.view(bits_dtype(name))[rows, rng.integers(0, x.shape[1])] ^= 1
    elif kind == "signzero" and n and name != "int8":
        r = int(rng.integers(0, n))
        y[r] = np.array(0.0, x.dtype)
        y.view(bits_dtype(name))[r, 0] = 1 << (8 * x.dtype.itemsize - 1)  # -0.0
    elif kind == "nan" and n and name != "int8":
        r = int(rng.integers(0, n))
        y[r, 1] = np.array(np.nan, x.dtype)
    elif kind == "append":
        extra = rng.standard_normal((op[1], x.shape[1])).astype(x.dtype)
        y = np.concatenate([y, extra])
    elif kind == "truncate":
        y = y[:max(0, n - op[1])].copy()
    return y


OPS = st.one_of(
    st.tuples(st.just("edit"), st.integers(1, 40)),
    st.tuples(st.just("nudge"), st.integers(1, 5)),
    st.tuples(st.just("signzero")),
    st.tuples(st.just("nan")),
    st.tuples(st.just("append"), st.integers(1, 1500)),
    st.tuples(st.just("truncate"), st.integers(1, 1500)),
    st.tuples(st.just("none")),
)


@settings(max_examples=20, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(name=st.sampled_from(["float32", "float16", "bfloat16", "int8"]),
       n_chunks=st.floats(0.3, 2.6), ops=st.lists(OPS, min_size=1, max_size=3),
       seed=st.integers(0, 2 ** 16))
def test_stored_equals_matrix_diff(name: str, n_chunks: float, ops: list[tuple], seed: int) -> None:
    rng = np.random.default_rng(seed)
    dt = np_dtype(name)
    n0 = max(1, int(n_chunks * chunk_rows_for(name, D)))
    if name == "int8":
        x = rng.integers(-128, 128, (n0, D)).astype(dt)
    else:
        x = rng.standard_normal((n0, D)).astype(dt)
    versions = [x]
    with tempfile.TemporaryDirectory() as tmp:
        repo = embfmt.Repo.init(tmp)
        revs = [repo.commit({"t": x}, message="v0")]
        for k, op in enumerate(ops):
            x = _apply(x, op, rng, name)
            versions.append(x)
            revs.append(repo.commit({"t": x}, message=f"v{k + 1}"))
        pairs = [(i, j) for i in range(len(revs)) for j in range(len(revs)) if i != j]
        pairs += [(0, 0)]
        for i, j in pairs:
            full = embfmt.diff(versions[i], versions[j])
            want = np.flatnonzero((versions[i][:len(versions[j])].view(bits_dtype(name))
                                   != versions[j][:len(versions[i])].view(bits_dtype(name))).any(axis=1))
            assert full.changed_b.tolist() == want.tolist()
            stored = repo.diff(revs[i], revs[j], "t")
            _same(stored, full, f"stored/stored {i}->{j}")
            _same(embfmt.diff(repo.open("t", revs[i]), versions[j]), full, f"stored/matrix {i}->{j}")
            _same(embfmt.diff(versions[i], repo.open("t", revs[j])), full, f"matrix/stored {i}->{j}")
            # rowprints trusted (exact=False) gives the same rows here (no collision)
            fast = embfmt.diff(repo.open("t", revs[i]), repo.open("t", revs[j]), exact=False)
            _same(fast, full, f"exact=False {i}->{j}")
            fast = embfmt.diff(repo.open("t", revs[i]), versions[j], exact=False)
            _same(fast, full, f"exact=False stored/matrix {i}->{j}")
            # every stored chunk's rows, picked one subset at a time, equal the full decode
            tv = repo.table_version("t", revs[j])
            for dg in tv.digests:
                whole = repo.reader.rows(dg)
                pick = np.flatnonzero(rng.random(len(whole)) < 0.3)
                fresh = embfmt.Repo(tmp).reader  # nothing cached: decodes from the objects
                assert np.array_equal(fresh.rows_subset(dg, pick), whole[pick])
            assert full.identical == (versions[i].shape == versions[j].shape and len(want) == 0)


def test_sparse_patch_path_decodes_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3 * 1024 + 17, D)).astype(np.float32)
    repo = embfmt.Repo.init(tmp_path)
    r0 = repo.commit({"t": x}, message="v0")
    y = x.copy()
    y[[5, 1500, 3080]] += 1
    r1 = repo.commit({"t": y}, message="v1")
    d = embfmt.diff(repo.open("t", r0), repo.open("t", r1))  # the engine itself, not a record
    assert d.changed_b.tolist() == [5, 1500, 3080]
    assert d.info["chunks_compared"] == 3 and d.info["chunks_decoded"] == 0
    _same(d, embfmt.diff(x, y), "patch path")
    # reversed direction: the patch's base is now b
    _same(embfmt.diff(repo.open("t", r1), repo.open("t", r0)), embfmt.diff(y, x), "patch path reversed")


def test_stored_vs_matrix_survives_a_rowprint_collision(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Exact mode does not trust rowprints: with a stored rowprint forged to equal the matrix
    row's (what an XXH3 collision would look like), the BLAKE3 confirmation fails and the
    chunk is compared byte by byte, so the changed row is still reported. exact=False trusts
    the rowprint and misses it, as documented."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3000, D)).astype(np.float32)
    repo = embfmt.Repo.init(tmp_path)
    rev = repo.commit({"t": x})
    y = x.copy()
    y[[7, 1500]] += 1
    from embfmt._kernels import cpu
    from embfmt.history.reader import ChunkReader

    forged = cpu.rowprints(y.view(np.uint8).reshape(len(y), -1))
    real = ChunkReader.rowprints
    cr = chunk_rows_for("float32", D)

    def lying(self, digest, rows_hint=0, **kw):  # type: ignore[no-untyped-def]
        rp = real(self, digest, rows_hint, **kw).copy()
        c = repo.table_version("t", rev).digests.index(digest)
        if c == 0:
            rp[7] = forged[7]  # row 7 "collides"; row 1500 does not
        return rp

    monkeypatch.setattr(ChunkReader, "rowprints", lying)
    d = embfmt.diff(repo.open("t", rev), y)
    assert d.changed_b.tolist() == [7, 1500] and d.info["chunks_decoded"] == 1
    assert 1500 // cr == 1
    fast = embfmt.diff(repo.open("t", rev), y, exact=False)
    assert fast.changed_b.tolist() == [1500]


def test_rows_subset_detects_a_damaged_object(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A flipped byte in a raw plane of a full chunk: the rows picked from it no longer match
    their rowprints, an IntegrityError naming the object (not wrong statistics)."""
    from embfmt.errors import IntegrityError

    x = np.random.default_rng(2).standard_normal((1000, D)).astype(np.float32)
    repo = embfmt.Repo.init(tmp_path)
    rev = repo.commit({"t": x})
    dg = repo.table_version("t", rev).digests[0]
    path = repo.store.path(dg)
    import os
    from pathlib import Path

    os.chmod(path, 0o644)
    raw = bytearray(Path(path).read_bytes())
    n = len(x)
    assert fresh_header_codec(repo, dg) == "shuffle-planes"
    # header, rowprints, plane table, then plane 0 (the low mantissa bytes: stored raw);
    # byte D * 5 + 3 of that plane is the low byte of word 3 of row 5.
    raw[80 + 8 * n + 8 * 4 + D * 5 + 3] ^= 0xFF
    Path(path).write_bytes(bytes(raw))
    fresh = embfmt.Repo(tmp_path)
    # As a diff does: the writer's binding of the object to its id (spec §13.7) is loaded, so
    # the subset read trusts the stored rowprints instead of checking the whole chunk first.
    fresh.reader.load_seals(fresh.table_version("t", rev))
    with pytest.raises(IntegrityError) as e:
        fresh.reader.rows_subset(dg, np.arange(3, 8))
    assert "row 5" in str(e.value)
    assert np.array_equal(fresh.reader.rows_subset(dg, np.arange(6, 9)),
                          x[6:9].view(np.uint8).reshape(3, -1))  # other rows are still right
    assert dg.hex() in str(e.value)
    with pytest.raises(IntegrityError):
        embfmt.diff(fresh.open("t", rev), x + 1)


def fresh_header_codec(repo: embfmt.Repo, digest: bytes) -> str:
    from embfmt import _layout as L

    h = embfmt.Repo(repo.path).reader.header(digest)
    assert h.payload_offset == 80 + 8 * h.n_rows
    return L.CODEC_NAMES[h.codec]
