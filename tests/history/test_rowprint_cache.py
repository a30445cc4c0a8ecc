"""The rowprint cache (spec §11.1): derived data that only ever saves work.

Every test compares against a brute-force numpy answer: a missing, stale, corrupt or
unwritable cache must never change a result.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import embfmt
import embfmt.compare.diff as diff_mod
from embfmt.history.cache import HEADER, RowprintCache
from embfmt.history.reader import ChunkReader

D = 64  # float32: 256-byte rows, 4096 rows per chunk


def brute(a: np.ndarray, b: np.ndarray) -> list[int]:
    m = min(len(a), len(b))
    return np.flatnonzero((a[:m].view(np.uint32) != b[:m].view(np.uint32)).any(axis=1)).tolist()


@pytest.fixture()
def repo_versions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Five versions over 10 chunks: v1, v2 = 1% rows replaced, v3 = every row nudged, v4 = v3
    with a few rows put back to their v1 values (so some rows of v1 -> v4 are equal), v5 = v4
    with 1,000 rows appended (pairs with it compare a prefix ending inside a chunk)."""
    monkeypatch.setattr(diff_mod, "MIN_CHUNKS", 4)
    rng = np.random.default_rng(1)
    v1 = rng.standard_normal((40_000, D)).astype(np.float32)
    v2 = v1.copy()
    v2[rng.choice(len(v1), 400, replace=False)] += 1
    v3 = (v2 * np.float32(1.001)).astype(np.float32)
    v4 = v3.copy()
    back = rng.choice(len(v1), 50, replace=False)
    v4[back] = v1[back]
    v5 = np.concatenate([v4, rng.standard_normal((1000, D)).astype(np.float32)])
    repo = embfmt.Repo.init(tmp_path / "r")
    revs = [repo.commit({"t": x}) for x in (v1, v2, v3, v4, v5)]
    return tmp_path / "r", revs, [v1, v2, v3, v4, v5]


def count_section_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    real = ChunkReader.rowprints

    def counting(self, digest, rows_hint=0, **kw):  # type: ignore[no-untyped-def]
        calls[0] += 1
        return real(self, digest, rows_hint, **kw)

    monkeypatch.setattr(ChunkReader, "rowprints", counting)
    return calls


def test_second_process_reads_no_rowprint_section(repo_versions, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    path, revs, vs = repo_versions
    first = embfmt.Repo(path).changed_rows("t", revs[0], revs[2])
    assert first.changed.tolist() == brute(vs[0], vs[2])
    assert len(os.listdir(path / "cache" / "rowprints")) == 2
    calls = count_section_reads(monkeypatch)
    again = embfmt.Repo(path).changed_rows("t", revs[0], revs[2])  # a fresh Repo: cold caches
    assert again.changed.tolist() == first.changed.tolist()
    assert calls[0] == 0 and again.chunks_decoded == 0


@pytest.mark.parametrize("exact", [True, False])
def test_cached_answers_equal_brute_force(repo_versions, exact: bool) -> None:  # type: ignore[no-untyped-def]
    path, revs, vs = repo_versions
    for _ in range(2):  # the first round fills the cache, the second uses it
        for i in range(5):
            for j in range(5):
                got = embfmt.Repo(path).changed_rows("t", revs[i], revs[j], exact=exact)
                assert got.changed.tolist() == brute(vs[i], vs[j]), (i, j)


def test_bad_entries_are_ignored(repo_versions) -> None:  # type: ignore[no-untyped-def]
    path, revs, vs = repo_versions
    embfmt.Repo(path).changed_rows("t", revs[0], revs[3])
    entries = sorted((path / "cache" / "rowprints").iterdir())
    assert entries
    damage = [
        lambda b: b[:-8],                                  # truncated
        lambda b: b[:HEADER.size] + bytes(len(b) - HEADER.size),  # rowprints zeroed
        lambda b: b"X" + b[1:],                            # magic
        lambda b: b[:8] + (7).to_bytes(8, "little") + b[16:],     # row count
    ]
    for hurt in damage:
        for e in entries:
            good = e.read_bytes()
            e.write_bytes(hurt(good))
            got = embfmt.Repo(path).changed_rows("t", revs[0], revs[3])
            assert got.changed.tolist() == brute(vs[0], vs[3])
            e.write_bytes(good)


def test_read_only_repository_still_answers(repo_versions, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Writes refused by the file system (a read-only mount; root ignores mode bits, so the
    refusal is simulated at the system-call level) leave no cache and change no answer."""
    path, revs, vs = repo_versions
    from embfmt.history import cache as cache_mod

    def refuse(*a, **k):  # type: ignore[no-untyped-def]
        raise PermissionError(30, "Read-only file system")

    # The writer recorded its bindings (cache/seals/, spec §13.7) when it committed; reads of a
    # read-only repository add nothing to them.
    before = sorted(p.relative_to(path) for p in (path / "cache").rglob("*"))
    monkeypatch.setattr(cache_mod.os, "makedirs", refuse)
    got = embfmt.Repo(path).changed_rows("t", revs[0], revs[2])
    assert got.changed.tolist() == brute(vs[0], vs[2])
    assert sorted(p.relative_to(path) for p in (path / "cache").rglob("*")) == before
    assert not (path / "cache" / "rowprints").exists()
    assert not [f for f in os.listdir(path / "tmp") if f.startswith(("rowprints-", "seals-"))]


def test_unwritable_cache_dir_is_not_an_error(repo_versions) -> None:  # type: ignore[no-untyped-def]
    path, revs, vs = repo_versions
    shutil.rmtree(path / "cache", ignore_errors=True)  # the writer's seals (spec §13.7) too
    (path / "cache").write_text("not a directory")  # every put fails
    got = embfmt.Repo(path).changed_rows("t", revs[0], revs[2])
    assert got.changed.tolist() == brute(vs[0], vs[2])


def test_gc_drops_entries_of_unreachable_versions(repo_versions) -> None:  # type: ignore[no-untyped-def]
    path, revs, vs = repo_versions
    repo = embfmt.Repo(path)
    repo.changed_rows("t", revs[0], revs[2])
    repo.changed_rows("t", revs[1], revs[3])
    cache = RowprintCache(str(path))
    tvs = [repo.table_version("t", r) for r in revs[:4]]  # the four versions compared above
    keys = [cache.key(tv.dtype, tv.n_rows, tv.dim, tv.digests) for tv in tvs]
    assert sorted(os.listdir(cache.dir)) == sorted(k.hex() for k in keys)
    (Path(cache.dir) / ("ab" * 32)).write_bytes(b"stray")
    repo.gc()  # the stray entry is younger than the grace period, like any other file gc keeps
    assert sorted(os.listdir(cache.dir)) == sorted([k.hex() for k in keys] + ["ab" * 32])
    repo.reset("main", revs[1])
    rep = repo.gc(grace_seconds=0, reflog_expire_seconds=0)
    assert sorted(os.listdir(cache.dir)) == sorted(k.hex() for k in keys[:2])
    assert rep.bytes_freed > 0


def test_cache_unit_round_trip(tmp_path: Path) -> None:
    c = RowprintCache(str(tmp_path))
    rp = np.arange(5, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    k = c.key("float16", 5, 3, [b"\1" * 32])
    assert k != c.key("float16", 5, 4, [b"\1" * 32]) != c.key("bfloat16", 5, 3, [b"\1" * 32])
    c.put(k, rp)
    got = c.get(k, 5)
    assert got is not None and got.tolist() == rp.tolist() and not got.flags.writeable
    assert c.get(k, 6) is None and c.get(c.key("float16", 5, 3, [b"\2" * 32]), 5) is None
    assert not list((tmp_path / "tmp").iterdir())  # the temp file was renamed into place
    assert c.prune([]) == HEADER.size + 40 and c.get(k, 5) is None


def test_parent_child_answers_from_the_change_object(repo_versions, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """v1 -> v2 (1% changed): the change object answers once its rows are checked against the
    rowprint sections (spec §16.1: a forged record must not answer), nothing is decoded;
    v2 -> v3 (every row changed): its change object is too big to be worth it, rowprints
    answer. Both exact."""
    path, revs, vs = repo_versions
    calls = count_section_reads(monkeypatch)
    decoded = [0]
    real_decode = ChunkReader._decode

    def counting_decode(self, *a, **k):  # type: ignore[no-untyped-def]
        decoded[0] += 1
        return real_decode(self, *a, **k)

    monkeypatch.setattr(ChunkReader, "_decode", counting_decode)
    got = embfmt.Repo(path).changed_rows("t", revs[0], revs[1])
    assert got.changed.tolist() == brute(vs[0], vs[1]) and decoded[0] == 0
    back = embfmt.Repo(path).changed_rows("t", revs[1], revs[0])
    assert back.changed.tolist() == brute(vs[1], vs[0])
    got = embfmt.Repo(path).changed_rows("t", revs[1], revs[2])
    assert got.changed.tolist() == brute(vs[1], vs[2]) and calls[0] > 0
