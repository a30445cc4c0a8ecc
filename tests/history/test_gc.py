"""Garbage collection: removes what no ref reaches, keeps everything reachable (delta bases
included), and respects the grace period."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from embfmt.errors import ConflictError, NotFoundError
from embfmt.repo import Repo

from .conftest import (DTYPES, WIDE_DIM, assert_bits_equal, expected_live, fresh, hash_tree,
                       object_files, objects_by_kind, random_bits)

D = WIDE_DIM["float32"]


def _data(seed: int, n: int = 6) -> np.ndarray:
    return random_bits(np.random.default_rng(seed), n, D, DTYPES["float32"])


def _age_all(repo_path: str, seconds: float) -> None:
    """Make every object and temp file look ``seconds`` old."""
    t = time.time() - seconds
    for sub in ("objects", "tmp"):
        for dirpath, _dirs, files in os.walk(os.path.join(repo_path, sub)):
            for f in files:
                os.utime(os.path.join(dirpath, f), (t, t))


def _cache_bytes(repo_path: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(os.path.join(repo_path, "cache"))
               for f in fs)


def test_gc_after_reset_frees_space(repo: Repo) -> None:
    xs = [_data(i) for i in range(3)]
    ids = [repo.commit({"t": x}, keys={"t": np.arange(6) + 10 * i}) for i, x in enumerate(xs)]
    repo.reset("main", ids[0])
    usage = repo.disk_usage() + _cache_bytes(repo.path)  # bytes_freed counts cache/ entries too
    n_before = len(object_files(repo.path))
    rep = repo.gc(grace_seconds=0, reflog_expire_seconds=0)
    assert rep.objects_removed > 0 and rep.bytes_freed > 0
    assert rep.bytes_freed >= 2 * 6 * D * 4  # the two dropped versions of random data
    assert repo.disk_usage() + _cache_bytes(repo.path) == usage - rep.bytes_freed
    assert len(object_files(repo.path)) == n_before - rep.objects_removed
    assert rep.objects_kept == len(object_files(repo.path))
    assert set(object_files(repo.path)) == expected_live(repo)
    r = fresh(repo)
    assert_bits_equal(r.read("t"), xs[0])
    assert np.array_equal(r.keys("t"), np.arange(6))
    assert r.verify().ok
    for cid in ids[1:]:
        with pytest.raises(NotFoundError):
            r.resolve(cid)
    rep2 = r.gc(grace_seconds=0, reflog_expire_seconds=0)  # nothing left to collect
    assert rep2.objects_removed == 0 and rep2.bytes_freed == 0


def test_gc_keeps_tags_branches_and_history(repo: Repo) -> None:
    xs = [_data(10 + i) for i in range(4)]
    ids = [repo.commit({"t": x, "u": np.full((2, 2), i, np.int8)}) for i, x in enumerate(xs)]
    repo.tag("keep", ids[2])
    repo.branch("side", ids[3])
    side = repo.commit({"t": _data(99)}, branch="side")
    repo.reset("main", ids[0])
    dropped = repo.commit({"t": _data(98)})  # main moves on, then is reset away from it
    repo.reset("main", ids[1])
    all_before = set(object_files(repo.path))
    live = expected_live(repo)
    assert dropped in all_before and dropped not in live
    rep = repo.gc(grace_seconds=0, reflog_expire_seconds=0)
    after = set(object_files(repo.path))
    assert after == live
    assert rep.objects_removed == len(all_before - live) > 0
    r = fresh(repo)
    assert r.verify().ok
    for i, cid in enumerate(ids):  # all reachable: ids[0..1] from main, [2] tag, [3] side
        assert_bits_equal(r.read("t", cid), xs[i])
    assert_bits_equal(r.read("t", side), _data(99))
    assert_bits_equal(r.read("t", "keep"), xs[2])
    with pytest.raises(NotFoundError):
        r.resolve(dropped)


def test_gc_keeps_delta_bases_of_reachable_chunks(repo: Repo) -> None:
    x1 = _data(20, 4)  # one chunk
    x2 = x1.copy()
    x2[2] = _data(21, 1)[0]
    repo.commit({"t": x1}, branch="a")
    repo.commit({"t": x2}, branch="a")  # sparse patch against x1's chunk
    tv1 = repo.table_version("t", "a~1")
    tv2 = repo.table_version("t", "a")
    chain = repo.reader.chain(tv2.digests[0])
    assert chain == [tv2.digests[0], tv1.digests[0]]
    c_b = repo.commit({"t": x2}, branch="b")  # a root commit on b reusing the same objects
    assert repo.table_version("t", "b").digests == tv2.digests
    repo.refs.delete("heads", "a")  # x1's commit and table version are now unreachable
    repo.refs.delete("heads", "main") if "main" in repo.branches() else None
    repo.checkout_branch("b")
    rep = repo.gc(grace_seconds=0, reflog_expire_seconds=0)
    assert rep.objects_removed >= 3  # two commits of a, x1's table version
    left = set(object_files(repo.path))
    assert tv1.digests[0].hex() in left  # kept: the base of a reachable delta
    assert tv1.object_id().hex() not in left
    r = fresh(repo)
    assert_bits_equal(r.read("t", c_b), x2)
    assert r.verify().ok


def test_gc_respects_grace_period(repo: Repo) -> None:
    ids = [repo.commit({"t": _data(30 + i)}) for i in range(3)]
    repo.reset("main", ids[0])
    before = hash_tree(repo.path)
    rep = repo.gc()  # default grace: one hour; everything was just written
    assert rep.objects_removed == 0 and rep.bytes_freed == 0
    assert hash_tree(repo.path) == before
    rep = repo.gc(grace_seconds=60, reflog_expire_seconds=0)
    assert rep.objects_removed == 0
    # age everything: now the unreachable objects are older than the grace period ...
    _age_all(repo.path, 7200)
    # ... except one more unreachable object written just now (a commit in progress elsewhere)
    young = repo.revisions.put_hashed(b"EMBCOMMIT1\n{}")
    old_tmp = Path(repo.path) / "tmp" / "deadbeef.stale"
    old_tmp.write_bytes(b"x" * 100)
    t = time.time() - 7200
    os.utime(old_tmp, (t, t))
    young_tmp = Path(repo.path) / "tmp" / "cafebabe.inflight"
    young_tmp.write_bytes(b"y" * 10)
    live = expected_live(repo)
    rep = repo.gc(grace_seconds=3600, reflog_expire_seconds=0)
    left = set(object_files(repo.path))
    assert left == live | {young.hex()}
    assert rep.objects_removed > 0
    assert not old_tmp.exists() and young_tmp.exists()
    assert fresh(repo).verify().ok


def test_gc_never_drops_objects_a_concurrent_commit_reuses(repo: Repo, monkeypatch) -> None:
    """A commit that reuses old unreachable objects (dedup) while gc runs must not lose them:
    gc runs between the commit's object writes and its ref update."""
    x1, x2 = _data(40), _data(41)
    c1 = repo.commit({"t": x1})
    repo.commit({"t": x2})
    repo.reset("main", c1)  # x2's chunks and table version are unreachable now ...
    _age_all(repo.path, 7200)  # ... and old
    other = Repo(repo.path)  # another process's gc
    real_locked = repo.refs.locked

    def locked_after_gc(*a, **k):
        other.gc(grace_seconds=3600, reflog_expire_seconds=0)
        return real_locked(*a, **k)

    monkeypatch.setattr(repo.refs, "locked", locked_after_gc)
    c3 = repo.commit({"t": x2}, message="same content as the dropped commit")
    monkeypatch.undo()
    r = fresh(repo)
    assert r.resolve("HEAD") == c3
    assert r.verify().ok, r.verify().errors
    assert_bits_equal(r.read("t"), x2)


def test_gc_reads_leases_before_refs(repo: Repo, monkeypatch) -> None:
    """A streaming writer open for hours commits, and drops its lease, while gc walks the refs:
    gc must have read the lease first (spec §18.4), or it sees neither the new ref nor the
    lease and deletes chunks the new commit references."""
    x = _data(50, n=5000)
    w = repo.writer("t", shape=x.shape, dtype="float32")
    w.write(0, x)  # every chunk stored; lease held; nothing committed yet
    _age_all(repo.path, 10 * 3600)  # the stream (its lease and its objects) is 10 hours old
    real_walk = repo.maintenance.reachable_objects

    def walk_then_commit(*a, **k):
        live = real_walk(*a, **k)
        w.commit()  # lands right after the ref walk, and releases the lease
        return live

    monkeypatch.setattr(repo.maintenance, "reachable_objects", walk_then_commit)
    repo.gc(grace_seconds=3600, reflog_expire_seconds=0)
    monkeypatch.undo()
    r = fresh(repo)
    assert r.verify().ok, r.verify().errors
    assert_bits_equal(r.read("t"), x)


def test_commit_refuses_to_reuse_a_chunk_whose_base_gc_removed(repo: Repo) -> None:
    """A gc that began before a commit took its lease removes an old unreachable delta base; the
    commit then finds the delta object itself still present and would reuse it. It must refuse
    (typed conflict, nothing committed, the delta left old), and succeed once gc is done."""
    z = _data(60)
    c0 = repo.commit({"t": z})
    x = _data(61)
    repo.commit({"t": x})  # chunk X, stored in full
    x2 = x.copy()
    x2[3] = _data(62)[3]
    repo.commit({"t": x2})  # chunk D: a sparse patch on X
    d_id = repo.table_version("t").digests[0]
    x_id = repo.table_version("t", "HEAD~1").digests[0]
    assert repo.reader.chain(d_id) == [d_id, x_id]
    repo.reset("main", c0)  # X and D are unreachable now ...
    _age_all(repo.path, 7200)  # ... and old
    repo.store.delete(x_id)  # the concurrent gc got to X first
    with pytest.raises(ConflictError, match="delta base .* is gone") as e:
        repo.commit({"t": x2})
    assert e.value.kind == "conflict"
    assert repo.resolve("HEAD") == c0
    assert repo.store.mtime(d_id) < time.time() - 3600  # left old: gc will take it
    repo.gc(grace_seconds=3600, reflog_expire_seconds=0)
    assert not repo.store.has(d_id)
    cid = fresh(repo).commit({"t": x2})
    r = fresh(repo)
    assert r.resolve("HEAD") == cid and r.verify().ok
    assert_bits_equal(r.read("t"), x2)


def test_restore_refreshes_what_it_references(repo: Repo) -> None:
    """Restoring a commit no ref reaches reuses its old objects: they must be refreshed, so
    a gc that computed its live set before the revert landed does not delete them."""
    c1 = repo.commit({"t": _data(70)}, keys={"t": np.arange(6)})
    x2 = _data(71)
    c2 = repo.commit({"t": x2}, keys={"t": np.arange(6) + 10})
    repo.reset("main", c1)  # c2 is unreachable (a rolled-back run) ...
    _age_all(repo.path, 7200)  # ... and old
    live = repo.maintenance.reachable_objects()  # a concurrent gc's live set, taken before the restore
    cid = repo.restore(c2)
    cutoff = time.time() - 3600
    for oid in list(repo.store.iter()):  # ... and its deletions, after it
        if oid not in live and repo.store.mtime(oid) <= cutoff:
            repo.store.delete(oid)
    r = fresh(repo)
    assert r.resolve("HEAD") == cid and r.verify().ok, r.verify().errors
    assert_bits_equal(r.read("t"), x2)
    assert np.array_equal(r.keys("t"), np.arange(6) + 10)


def test_restore_of_a_commit_with_lost_objects_commits_nothing(repo: Repo) -> None:
    c1 = repo.commit({"t": _data(72)})
    c2 = repo.commit({"t": _data(73)})
    repo.reset("main", c1)
    repo.store.delete(repo.table_version("t", c2).digests[0])
    with pytest.raises(NotFoundError, match="is missing") as e:
        repo.restore(c2)
    assert e.value.kind == "missing-object" and repo.resolve("HEAD") == c1


def test_gc_on_empty_repository(repo: Repo) -> None:
    rep = repo.gc(grace_seconds=0, reflog_expire_seconds=0)
    assert (rep.objects_kept, rep.objects_removed, rep.bytes_freed) == (0, 0, 0)
    assert objects_by_kind(repo.path)["commit"] == set()


def test_gc_keeps_branches_whose_names_contain_tmp(repo: Repo) -> None:
    """A valid branch name like "exp.tmp.1" must not be mistaken for a ref temp file (it was,
    and gc then deleted the branch's commits)."""
    repo.commit({"t": _data(50)})
    x = _data(51)
    c = repo.commit({"t": x}, branch="exp.tmp.1")
    repo.tag("rel.tmp.0123456789abcdef0123456789abcdef0", c)
    assert repo.branches()["exp.tmp.1"] == c
    assert "rel.tmp.0123456789abcdef0123456789abcdef0" in repo.tags()
    repo.gc(grace_seconds=0, reflog_expire_seconds=0)
    assert_bits_equal(fresh(repo).read("t", "exp.tmp.1"), x)
    assert fresh(repo).verify().ok


# --- gc versus writers (issue 20, defect 3) -----------------------------------------------------
def _orphan(repo: Repo, seed: int) -> tuple[str, np.ndarray]:
    """A commit no ref reaches, whose objects are old (a run rolled back long ago)."""
    c1 = repo.commit({"t": _data(seed)}, keys={"t": np.arange(6)})
    x2 = _data(seed + 1)
    c2 = repo.commit({"t": x2}, keys={"t": np.arange(6) + 10})
    repo.reset("main", c1)
    _age_all(repo.path, 7200)
    return c2, x2


def test_gc_never_deletes_an_object_a_writer_refreshed_after_gc_looked_at_it(repo: Repo) -> None:
    """gc decides an unreachable object is old, then a writer in another Repo reuses it (dedup:
    refresh + commit, acknowledged), then gc deletes it: the acknowledged commit referenced a
    missing object. gc must re-check the age atomically with the deletion (spec §18.4)."""
    _c2, x2 = _orphan(repo, 80)
    other = Repo(repo.path)  # the gc process
    real_mtime = other.store.mtime
    landed: list[str] = []

    def mtime_then_commit(oid: bytes) -> float:
        t = real_mtime(oid)
        if not landed:  # gc has just looked at the first object: the writer runs now
            landed.append(repo.commit({"t": x2}, keys={"t": np.arange(6) + 10}, message="again"))
        return t

    other.store.mtime = mtime_then_commit  # type: ignore[method-assign]
    other.gc(grace_seconds=3600, reflog_expire_seconds=0)
    assert landed
    r = fresh(repo)
    assert r.resolve("HEAD") == landed[0]
    assert r.verify().ok, r.verify().errors
    assert_bits_equal(r.read("t"), x2)


def _move(repo: Repo, move: str, cid: str) -> None:
    """Point a ref at ``cid``: a new tag or branch ``keep``, or main reset onto it."""
    if move == "tag":
        repo.tag("keep", cid)
    elif move == "branch":
        repo.branch("keep", cid)
    else:
        repo.reset("main", cid)


@pytest.mark.parametrize("move", ["tag", "branch", "reset"])
def test_ref_move_onto_an_orphan_racing_gc(repo: Repo, move: str) -> None:
    """A tag / branch / reset onto an old orphan lands after gc computed its live set and before
    it deletes: the move must make the orphan's objects live before it is acknowledged."""
    c2, x2 = _orphan(repo, 90)
    other = Repo(repo.path)
    real_walk = other.maintenance.reachable_objects

    def walk_then_move(*a, **k):
        live = real_walk(*a, **k)
        _move(repo, move, c2)
        return live

    other.maintenance.reachable_objects = walk_then_move  # type: ignore[method-assign]
    other.gc(grace_seconds=3600, reflog_expire_seconds=0)
    r = fresh(repo)
    rev = "main" if move == "reset" else "keep"
    assert r.resolve(rev) == c2
    assert r.verify().ok, r.verify().errors
    assert_bits_equal(r.read("t", rev), x2)
    assert np.array_equal(r.keys("t", rev), np.arange(6) + 10)


@pytest.mark.parametrize("move", ["tag", "branch", "reset"])
def test_ref_move_onto_an_orphan_with_lost_objects_changes_nothing(repo: Repo, move: str) -> None:
    c2, _x2 = _orphan(repo, 95)
    repo.store.delete(repo.table_version("t", c2).digests[0])  # a gc got there first
    before = (repo.branches(), repo.tags())
    with pytest.raises(ConflictError, match="gone") as e:
        _move(repo, move, c2)
    assert e.value.kind == "conflict"
    assert (repo.branches(), repo.tags()) == before


def test_ref_move_onto_a_reachable_commit_reads_no_chunk(repo: Repo) -> None:
    """Moves onto commits some ref reaches stay cheap: nothing is refreshed (a ref keeps them)."""
    ids = [repo.commit({"t": _data(100 + i)}) for i in range(3)]
    _age_all(repo.path, 7200)
    repo.tag("v0", ids[0])
    repo.branch("b1", ids[1])
    repo.reset("main", ids[0])
    cutoff = time.time() - 3600
    assert all(repo.store.mtime(o) < cutoff for o in repo.store.iter())  # nothing refreshed
