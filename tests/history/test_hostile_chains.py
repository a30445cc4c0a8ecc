"""Hostile or damaged chunk objects that are well-formed on their own: every read path ends in
a typed error (never a RecursionError, a crash, an internal ValueError or a huge allocation)."""

from __future__ import annotations

import os
import resource
import struct
from pathlib import Path

import numpy as np
import pytest
import zstandard

import embfmt
from embfmt import _layout as L
from embfmt._kernels import cpu, reference
from embfmt.objects.chunk import (Scratch, _pack, decode_chunk, encode_sparse, header_checksum, pack_planes,
                          plane_list)
from embfmt.errors import FormatError, IntegrityError


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
        # A cycle breaks the depth rule (each base one shallower, spec §13.3) at its first link.
        with pytest.raises(FormatError, match=r"depth 1\); the delta needs .* depth 0\)") as e:
            read(embfmt.Repo(tmp_path))
        assert e.value.kind.value == "bad-header"


def test_patch_claiming_more_base_rows_than_its_base_has(tmp_path: Path) -> None:
    repo = embfmt.Repo.init(tmp_path)
    x = np.random.default_rng(1).standard_normal((100, 8)).astype(np.float32)
    small = repo.table_version("s", repo.commit({"s": x[:50].copy()})).digests[0]
    rev = repo.commit({"t": x})
    a = repo.table_version("t", rev).digests[0]
    rows = x.view(np.uint8).reshape(100, -1)
    _overwrite(repo, a, bytes(encode_sparse(rows, np.array([99]), 4, cpu.rowprints(rows), small, 100, 0, cpu)))
    for read in (lambda r: r.reader.rows(a), lambda r: r.reader.rows_subset(a, np.array([70])),
                 lambda r: r.reader.rowprints(a)):
        with pytest.raises(FormatError, match="holds 50 rows of 32 bytes .* needs 100 rows") as e:
            read(embfmt.Repo(tmp_path))
        assert e.value.kind.value == "bad-header"


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
    from embfmt.history.reader import ChunkReader

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


# --- objects that are valid on their own but do not fit where they are used -----------------
def _rp(rows: np.ndarray) -> bytes:
    return reference.rowprints(rows).astype("<u8").tobytes()


def _raw_object(rows: np.ndarray, itemsize: int) -> bytes:
    n, rb = rows.shape
    return bytes(_pack(L.CODEC_RAW, itemsize, 0, n, rb, bytes(32), 0, 0, _rp(rows), [rows.tobytes()]))


def _put_over(repo: embfmt.Repo, oid: bytes, data: bytes) -> None:
    p = Path(repo.store.path(oid))
    p.parent.mkdir(parents=True, exist_ok=True)
    if p.exists():
        os.chmod(p, 0o644)
    p.write_bytes(data)


def _reads(repo_path: Path, rev: str = "HEAD") -> list:
    return [lambda r: r.read("t", rev), lambda r: r.open("t", rev)[1], lambda r: r.open("t", rev)[[0, 2]],
            lambda r: r.reader.fill_table_rowprints(r.table_version("t", rev)),
            lambda r: embfmt.diff(r.open("t", rev), np.zeros((4, 2), np.float32))]


@pytest.mark.parametrize("shape, itemsize", [((1, 32), 1), ((2, 16), 4), ((4, 8), 1)])
def test_chunk_that_splits_the_table_otherwise(tmp_path: Path, shape: tuple[int, int], itemsize: int) -> None:
    """The same 32 bytes as 1 row of 32, 2 rows of 16 or 4 rows of itemsize 1 hash to the chunk's
    id: only the header says they are not the 4 float32 rows of 8 bytes the table puts there."""
    repo = embfmt.Repo.init(tmp_path)
    x = np.arange(8, dtype=np.float32).reshape(4, 2)
    repo.commit({"t": x})
    d = repo.table_version("t").digests[0]
    _put_over(repo, d, _raw_object(x.view(np.uint8).reshape(shape), itemsize))
    for read in _reads(tmp_path):
        with pytest.raises(FormatError, match="the table version puts 4 rows of 8 bytes") as e:
            read(embfmt.Repo(tmp_path))
        assert e.value.kind.value == "bad-header"
    rep = embfmt.Repo(tmp_path).verify()
    assert not rep.ok and {e["kind"] for e in rep.errors} == {"bad-header"}
    assert rep.errors[0]["object"] == d.hex()


@pytest.mark.parametrize("codec, base_shape, base_itemsize", [
    (L.CODEC_XOR, (2, 16), 4), (L.CODEC_XOR, (4, 8), 1),  # a dense delta's base has its byte count
    (L.CODEC_SPARSE, (2, 16), 4), (L.CODEC_SPARSE, (4, 8), 1), (L.CODEC_SPARSE, (8, 8), 4)])
def test_delta_whose_base_does_not_fit(tmp_path: Path, base_shape: tuple[int, int], base_itemsize: int,
                                       codec: int) -> None:
    """Spec §13.3: a base of another row length, itemsize or row count is bad-header on every
    read path (full decode, row subsets, rowprints), never an internal error or a silent read."""
    repo = embfmt.Repo.init(tmp_path)
    x = np.arange(8, dtype=np.float32).reshape(4, 2)
    repo.commit({"t": x})
    d = repo.table_version("t").digests[0]
    canon = x.view(np.uint8).reshape(4, 8)
    base_rows = np.zeros(base_shape, np.uint8)
    b = reference.chunk_digests(base_rows.reshape(1, -1), 1)[0].tobytes()
    _put_over(repo, b, _raw_object(base_rows, base_itemsize))
    if codec == L.CODEC_XOR:
        payload = pack_planes(cpu.delta_encode(canon.reshape(-1), base_rows.reshape(-1), 4, 2), 4)
        obj = _pack(L.CODEC_XOR, 4, 1, 4, 8, b, 4, 0, _rp(canon), payload)
    else:
        idx = np.array([0], "<u4")
        obj = _pack(L.CODEC_SPARSE, 4, 1, 4, 8, b, 4, 1, idx.tobytes() + _rp(canon[:1]),
                    pack_planes(cpu.shuffle(canon[:1].reshape(-1), 4), 4))
    _put_over(repo, d, bytes(obj))
    reads = [*_reads(tmp_path), lambda r: r.reader.rows_subset(d, np.array([1])),
             lambda r: r.reader.chain(d)]
    if codec == L.CODEC_SPARSE:  # a dense delta's rowprints are its own: no base is read for them
        reads.append(lambda r: r.reader.rowprints(d))
    else:
        reads = [f for f in reads if f is not reads[3]]  # fill_table_rowprints: rowprints only
    for read in reads:
        with pytest.raises(FormatError, match="its base .* the delta needs") as e:
            read(embfmt.Repo(tmp_path))
        assert e.value.kind.value == "bad-header"
    rep = embfmt.Repo(tmp_path).verify()
    assert not rep.ok and "bad-header" in {e["kind"] for e in rep.errors}


def _two_versions(tmp_path: Path, row: int, by: float) -> tuple[embfmt.Repo, np.ndarray, np.ndarray]:
    """A repository whose HEAD changes one row of a 10 x 4 float32 table (a sparse patch)."""
    repo = embfmt.Repo.init(tmp_path)
    x = np.arange(40, dtype=np.float32).reshape(10, 4)
    repo.commit({"t": x})
    y = x.copy()
    y[row] += by
    repo.commit({"t": y})
    return repo, x, y


def test_sparse_patch_claiming_a_huge_base_is_refused_before_allocating(tmp_path: Path) -> None:
    repo, _, _ = _two_versions(tmp_path, 2, 1)
    d = repo.table_version("t").digests[0]
    buf = bytearray(Path(repo.store.path(d)).read_bytes())
    assert buf[5] == L.CODEC_SPARSE
    struct.pack_into("<I", buf, 48, 2**32 - 1)  # base_rows: 64 GiB of 16-byte rows
    rp_len = struct.unpack_from("<Q", buf, 56)[0]
    struct.pack_into("<Q", buf, 72, header_checksum(bytes(buf[:72]), bytes(buf[80:80 + rp_len])))
    _put_over(repo, d, bytes(buf))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for read in (lambda r: r.read("t"), lambda r: r.open("t")[0:1]):
        with pytest.raises(FormatError, match="exceeds the chunk size limit"):
            read(embfmt.Repo(tmp_path))
    rep = embfmt.Repo(tmp_path).verify()
    assert [e["kind"] for e in rep.errors] == ["bad-header"]
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 256 << 10  # KiB


def test_forged_depth_is_reported_and_refused(tmp_path: Path) -> None:
    """A delta whose depth field disagrees with its base's (checksum resealed) is bad-header for
    verify, for reads, and for a commit that must decode it as its parent (nothing committed)."""
    repo = embfmt.Repo.init(tmp_path)
    x = np.arange(400, dtype=np.float32).reshape(100, 4)
    repo.commit({"t": x})
    for i in range(3):
        x = x.copy()
        x[i] += 1
        repo.commit({"t": x})
    d = repo.table_version("t").digests[0]
    buf = bytearray(Path(repo.store.path(d)).read_bytes())
    assert buf[7] == 3
    buf[7] = 1  # depth field
    rp_len = struct.unpack_from("<Q", buf, 56)[0]
    struct.pack_into("<Q", buf, 72, header_checksum(bytes(buf[:72]), bytes(buf[80:80 + rp_len])))
    _put_over(repo, d, bytes(buf))
    r = embfmt.Repo(tmp_path)
    rep = r.verify()
    assert not rep.ok and {e["kind"] for e in rep.errors} == {"bad-header"}
    assert d.hex() in {e["object"] for e in rep.errors}
    with pytest.raises(FormatError, match="depth 2\\); the delta needs .* depth 0\\)"):
        r.read("t")
    head = r.resolve("HEAD")
    y = x.copy()
    y[50] += 1
    with pytest.raises(FormatError) as e:
        r.commit({"t": y})
    assert e.value.kind.value == "bad-header" and embfmt.Repo(tmp_path).resolve("HEAD") == head


def test_diff_does_not_trust_a_patch_index_that_restores_unchanged_rows(tmp_path: Path) -> None:
    """Spec §13.3 lets a sparse patch store rows equal to its base's; only row 0 changed."""
    repo, _, y = _two_versions(tmp_path, 0, 100)
    da, db = repo.table_version("t", "HEAD~1").digests[0], repo.table_version("t").digests[0]
    canon = y.view(np.uint8).reshape(10, 16)
    idx = np.array([0, 1, 2], "<u4")
    obj = _pack(L.CODEC_SPARSE, 4, 1, 10, 16, da, 10, 3, idx.tobytes() + _rp(canon[idx]),
                pack_planes(cpu.shuffle(canon[idx].reshape(-1), 4), 4))
    _put_over(repo, db, bytes(obj))
    r = embfmt.Repo(tmp_path)
    assert r.verify().ok
    for exact in (True, False):
        assert r.changed_rows("t", "HEAD~1", "HEAD", exact=exact).changed.tolist() == [0]
    d = embfmt.diff(r.open("t", "HEAD~1"), r.open("t", "HEAD"))
    assert d.changed_b.tolist() == [0] and d.stats["l2"].tolist() == [200.0]


def test_a_bad_delta_is_reported_as_itself_when_its_base_is_missing_too(tmp_path: Path) -> None:
    """§13.4: the object is validated in full before its base is read."""
    x = np.arange(8, dtype=np.float32).reshape(4, 2)
    canon = x.view(np.uint8).reshape(4, 8)
    missing = bytes(range(32))
    bad_planes = L.PLANE_ENTRY_STRUCT.pack(7, b"\0\0\0", 8) * 4 + bytes(32)  # method 7
    objs = [_pack(L.CODEC_XOR, 4, 1, 4, 8, missing, 4, 0, _rp(canon), [bad_planes]),
            _pack(L.CODEC_SPARSE, 4, 1, 4, 8, missing, 4, 0, b"", [b"\0" * 8])]  # empty patch, payload
    for obj in objs:
        with pytest.raises(FormatError) as e:
            decode_chunk(bytes(obj), bytes(32), "under test", lambda *a, **k: pytest.fail("base read"), cpu)
        assert e.value.kind.value == "bad-header"
