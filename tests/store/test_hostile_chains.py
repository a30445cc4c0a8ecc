"""Hostile or damaged chunk objects that are well-formed on their own: every read path ends in
a typed error (never a RecursionError, a crash, an internal ValueError or a huge allocation)."""

from __future__ import annotations

import os
import resource
from pathlib import Path

import numpy as np
import pytest
import zstandard

import embfmt
from embfmt import _layout as L
from embfmt._kernels import cpu, reference
from embfmt.chunk import Scratch, encode_sparse, plane_list
from embfmt.errors import IntegrityError


def _overwrite(repo: embfmt.Repo, oid: bytes, data: bytes) -> None:
    p = repo.store.path(oid)
    os.chmod(p, 0o644)
    Path(p).write_bytes(data)


def test_cycle_of_sparse_patches(tmp_path: Path) -> None:
    """A's base is B and B's base is A: every reader stops at the chain-depth limit."""
    repo = embfmt.Repo.init(tmp_path)
    x = np.random.default_rng(0).standard_normal((100, 8)).astype(np.float32)
    rev = repo.commit({"t": x})
    a = repo.table_version("t", rev).digests[0]
    b = bytes(range(32))
    rows = x.view(np.uint8).reshape(100, -1)
    rp = cpu.rowprints(rows)
    _overwrite(repo, a, bytes(encode_sparse(rows, np.array([0]), 4, rp, b, 100, 0, cpu)))
    repo.store.put(b, bytes(encode_sparse(rows, np.array([0]), 4, rp, a, 100, 0, cpu)))
    reads = [lambda r: r.reader.rows(a), lambda r: r.reader.rows_subset(a, np.array([0])),
             lambda r: r.reader.rowprints(a), lambda r: embfmt.diff(r.open("t", rev), x + 1),
             lambda r: embfmt.diff(r.open("t", rev), x, exact=False), lambda r: r.read("t", rev)]
    for read in reads:
        with pytest.raises(IntegrityError) as e:
            read(embfmt.Repo(tmp_path))
        assert "delta chain longer" in str(e.value)


def test_patch_claiming_more_base_rows_than_its_base_has(tmp_path: Path) -> None:
    repo = embfmt.Repo.init(tmp_path)
    x = np.random.default_rng(1).standard_normal((100, 8)).astype(np.float32)
    small = repo.table_version("s", repo.commit({"s": x[:50].copy()})).digests[0]
    rev = repo.commit({"t": x})
    a = repo.table_version("t", rev).digests[0]
    rows = x.view(np.uint8).reshape(100, -1)
    _overwrite(repo, a, bytes(encode_sparse(rows, np.array([99]), 4, cpu.rowprints(rows), small, 100, 0, cpu)))
    for read in (lambda r: r.reader.rows(a), lambda r: r.reader.rows_subset(a, np.array([70]))):
        with pytest.raises(IntegrityError):
            read(embfmt.Repo(tmp_path))


def test_zstd_plane_stating_a_huge_size_is_refused_before_allocating() -> None:
    z = zstandard.ZstdCompressor(level=19).compress(bytes(256 << 20))  # 8 KiB frame
    payload = L.PLANE_ENTRY_STRUCT.pack(L.PLANE_ZSTD, b"\0\0\0", len(z)) + z
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(IntegrityError) as e:
        plane_list(payload, 1, 1024, "hostile")  # the chunk needs 1 KiB
    assert "states 268435456" in str(e.value)
    grew_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before  # KiB on Linux
    assert grew_kib < 64 << 10


def test_kernels_refuse_an_out_that_overlaps_an_input() -> None:
    x = np.arange(64, dtype=np.uint8)
    for k in (cpu, reference):
        with pytest.raises(ValueError):
            k.unshuffle(x, 4, out=x)
        with pytest.raises(ValueError):
            k.delta_decode(x, x.copy(), 4, 2, out=x)
        base = x.copy()
        with pytest.raises(ValueError):
            k.delta_decode(x.copy(), base, 4, 3, out=base)
        out = np.empty_like(x)
        assert np.array_equal(k.unshuffle(k.shuffle(x, 4), 4, out=out), x) and out.tobytes() == x.tobytes()


def test_scratch_keeps_only_chunk_sized_buffers() -> None:
    sc = Scratch()
    small = sc.get("planes", 0, 1000)
    assert sc.get("planes", 0, 500).base is small.base  # reused
    big = sc.get("planes", 0, 8 << 20)
    assert big.size == 8 << 20
    assert sc.get("planes", 0, 1000).base is small.base  # the big one was not kept
    assert all(b.size <= Scratch.KEEP_BYTES for b in sc._bufs.values())


def test_writer_does_not_trust_rowprints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer compares rows with the parent byte by byte, not by rowprint: with the parent's
    stored rowprint of a changed row forged to match (an XXH3 collision), the row is still
    found, and the new version reads back bit-exactly with the right change record."""
    from embfmt.reader import ChunkReader

    rng = np.random.default_rng(3)
    x = rng.standard_normal((5000, 32)).astype(np.float32)
    repo = embfmt.Repo.init(tmp_path)
    r1 = repo.commit({"t": x})
    y = x.copy()
    y[[10, 20, 4000]] += 1
    forged = cpu.rowprints(y.view(np.uint8).reshape(len(y), -1))
    real = ChunkReader.rowprints
    first = repo.table_version("t", r1).digests[0]

    def lying(self, digest, rows_hint=0, **kw):  # type: ignore[no-untyped-def]
        rp = real(self, digest, rows_hint, **kw)
        if digest == first:
            rp = rp.copy()
            rp[20] = forged[20]
        return rp

    monkeypatch.setattr(ChunkReader, "rowprints", lying)
    r2 = repo.commit({"t": y})
    monkeypatch.undo()
    fresh = embfmt.Repo(tmp_path)
    assert fresh.read("t", r2).tobytes() == y.tobytes()
    assert fresh.diff(r1, r2, "t").changed_b.tolist() == [10, 20, 4000]
    assert fresh.diff(r1, r2, "t").info["source"] == "change-record"
    assert fresh.verify().ok
