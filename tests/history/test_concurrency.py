"""Concurrent writers and crashes, with real processes.

(a) processes committing different tables to one branch: every commit lands exactly once;
(b) processes committing the same table: each commit lands or gets ConflictError, none is lost;
(c) a committing process SIGKILLed at random points: the repository verifies, every commit
    reads back as written, and gc cleans up what the dead process left;
(d) processes writing the same object ids at once: exactly one write wins, and its bytes stay.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import embfmt
from embfmt.errors import ConflictError, ErrorKind, NotFoundError
from embfmt.repo import Repo
from embfmt.store import LocalStore

from . import _conc_worker as W
from .conftest import assert_bits_equal, expected_live, object_files

WORKER = Path(W.__file__).resolve()
PROC_TIMEOUT_S = 45


def _spawn(*args: object) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("EMBFMT_BACKEND", None)
    return subprocess.Popen([sys.executable, str(WORKER), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _run_together(tmp_path: Path, mode: str, repo_path: Path, n_procs: int, n_each: int) -> list[list[dict]]:
    """Start ``n_procs`` workers, release them at once, return each one's JSON lines."""
    go = tmp_path / "go"
    ready = [tmp_path / f"ready{i}" for i in range(n_procs)]
    procs = [_spawn(mode, repo_path, i, n_each, ready[i], go) for i in range(n_procs)]
    try:
        deadline = time.monotonic() + PROC_TIMEOUT_S
        while not all(r.exists() for r in ready):
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
            assert time.monotonic() < deadline, "workers did not start"
            time.sleep(0.01)
        go.touch()
        outs = []
        for p in procs:
            out, err = p.communicate(timeout=PROC_TIMEOUT_S)
            assert p.returncode == 0, err
            outs.append([json.loads(line) for line in out.splitlines()])
        return outs
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


# --- (a) different tables -------------------------------------------------------------------
def test_concurrent_commits_to_different_tables_all_land(tmp_path: Path) -> None:
    n_procs, n_each = 4, 6
    path = tmp_path / "repo"
    with Repo.init(path) as r:
        root = r.commit({"base": np.zeros((3, 3), np.float32)}, message="root")
    outs = _run_together(tmp_path, "tables", path, n_procs, n_each)

    landed = {}
    for i, lines in enumerate(outs):
        assert [x["k"] for x in lines] == list(range(n_each))
        for x in lines:
            # disjoint tables never conflict: the committer rebuilds on the moved branch
            assert "id" in x, f"worker {i} commit {x['k']} refused: {x}"
            landed[x["id"]] = (i, x["k"])
    with Repo(path) as r:
        log = r.log()
        assert [c.id for c in log][-1] == root
        assert len(log) == 1 + n_procs * n_each
        assert set(c.id for c in log[:-1]) == set(landed)  # every commit, each exactly once
        # Replay history: each commit changes exactly its own table, to exactly its data, and
        # keeps every other table as the previous commit had it (no lost update).
        state = dict(log[-1].tables)
        for c in reversed(log[:-1]):
            i, k = landed[c.id]
            changed = {t for t in set(state) | set(c.tables) if state.get(t) != c.tables.get(t)}
            assert changed == {f"t{i}"}, (c.message, changed)
            assert c.message == f"{i}:{k}"
            assert_bits_equal(r.read(f"t{i}", c.id), W.table_data(i, k))
            state = dict(c.tables)
        for i in range(n_procs):
            assert_bits_equal(r.read(f"t{i}"), W.table_data(i, n_each - 1))
        assert r.verify().ok


# --- (b) the same table -----------------------------------------------------------------------
def test_concurrent_commits_to_same_table_land_or_conflict(tmp_path: Path) -> None:
    n_procs, n_each = 3, 8
    path = tmp_path / "repo"
    with Repo.init(path) as r:
        root = r.commit({"shared": np.zeros((2, 24), np.float32)}, message="root")
    outs = _run_together(tmp_path, "same", path, n_procs, n_each)

    landed, refused = {}, []
    for i, lines in enumerate(outs):
        assert [x["k"] for x in lines] == list(range(n_each))
        for x in lines:
            if "id" in x:
                landed[x["id"]] = (i, x["k"])
            else:
                assert x["conflict"] == ErrorKind.CONFLICT.value
                refused.append((i, x["k"]))
    assert len(landed) + len(refused) == n_procs * n_each
    assert landed  # somebody got through
    with Repo(path) as r:
        log = r.log()
        assert log[-1].id == root
        assert [c.id for c in log[:-1]] and set(c.id for c in log[:-1]) == set(landed)
        assert len(log) == 1 + len(landed)  # linear history, no duplicates, nothing lost
        on_branch = set()
        for c in log[:-1]:
            i, k = landed[c.id]
            assert c.message == f"{i}:{k}"
            assert_bits_equal(r.read("shared", c.id), W.table_data(i, k))
            on_branch.add(r.table_version("shared", c.id).fingerprint)
        for i, k in refused:  # a refused commit's data is nowhere on the branch
            assert embfmt.fingerprint(W.table_data(i, k)).root not in on_branch
        assert r.verify().ok


# --- (c) SIGKILL at random points ---------------------------------------------------------------
def _check_history(r: Repo, upto_checked: int) -> int:
    try:
        log = r.log()[::-1]
    except NotFoundError:  # killed before the first commit landed
        assert upto_checked == 0
        return 0
    for k, c in enumerate(log):
        if k < upto_checked and k != len(log) - 1:
            continue
        assert_bits_equal(r.read("emb", c.id), W.kill_data(k))
        assert_bits_equal(r.read("small", c.id), W.kill_data(k)[:, :16])
        assert np.array_equal(r.keys("small", c.id), W.kill_keys(k))
    return len(log)


def _run_until_killed(args: list[str], checked: int, kill_after_s: float | None = None) -> None:
    """Run a kill-test worker (mode and arguments ``args``) until SIGKILL ends it: itself, at
    its chosen point, or this process after ``kill_after_s`` seconds of committing. It must
    start from the ``checked`` commits already in the log."""
    p = _spawn(*args)
    try:
        line = p.stdout.readline()  # after imports: the kill falls inside the commit loop
        assert line, p.stderr.read()
        assert json.loads(line)["ready"] == checked  # it resumes from the log, nothing else
        if kill_after_s is not None:
            time.sleep(kill_after_s)
            os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=PROC_TIMEOUT_S)
        assert p.returncode == -signal.SIGKILL, p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()
        p.stderr.close()


def _gc_leaves_history(path: Path, checked: int) -> None:
    """gc after the kills removes exactly the unreferenced leftovers, and history still reads."""
    with Repo(path) as r:
        live_before = expected_live(r)
        # (a commit killed after its reflog entry and before its ref update left an entry
        # naming its commit: gc would keep it until the entry expires)
        r.gc(grace_seconds=0, reflog_expire_seconds=0)
        assert set(object_files(path)) == live_before  # only unreferenced leftovers went
        assert os.listdir(path / "tmp") == []
        assert r.verify().ok
        assert _check_history(r, 0) == checked


# (stage, n): the worker kills itself at the n-th such point (see _conc_worker.py "killat").
# A commit of the kill table writes ~6-9 objects (chunks of two tables, keys, table versions,
# change records, the commit) and one ref: these points fall inside commits, between them,
# right before publishing an object, and between the last object and the ref update.
KILL_POINTS = [("object", 1), ("link", 3), ("cas", 1), ("ref", 1), ("object", 11), ("link", 14),
               ("cas", 3), ("ref", 2), ("object", 6), ("link", 1)]


def test_sigkill_at_chosen_points_leaves_a_consistent_repository(tmp_path: Path) -> None:
    """Deterministic kill points (no timing): after each, verify passes, every earlier commit
    reads back bit for bit, and the kill was inside a commit (a leftover object or temp file
    that no commit references)."""
    path = tmp_path / "repo"
    Repo.init(path).close()
    checked = 0
    for stage, n in KILL_POINTS:
        before = set(object_files(path))
        _run_until_killed(["killat", str(path), stage, str(n)], checked)
        with Repo(path) as r:
            rep = r.verify()
            assert rep.ok, (stage, n, rep.errors)
            checked = _check_history(r, checked)
            leftovers = set(object_files(path)) - before - expected_live(r)
            tmp_left = os.listdir(path / "tmp")
        # Each point is inside a commit, so the kill interrupted one: its unpublished object's
        # temp file is left in tmp/, or its published objects are left referenced by nothing.
        if stage == "link":
            assert any(not f.startswith("lease-") for f in tmp_left), (stage, n, tmp_left)
        else:
            assert leftovers, (stage, n)
    assert checked >= 5, "too few commits landed for the test to mean anything"
    _gc_leaves_history(path, checked)


def test_sigkill_at_random_points_leaves_a_consistent_repository(tmp_path: Path) -> None:
    rng = random.Random(20240611)
    path = tmp_path / "repo"
    Repo.init(path).close()
    n_kills, checked = 8, 0
    for attempt in range(n_kills):
        _run_until_killed(["kill", str(path)], checked, rng.uniform(0.0, 0.3))
        with Repo(path) as r:
            rep = r.verify()
            assert rep.ok, (attempt, rep.errors)
            checked = _check_history(r, checked)
    assert checked >= 3, "too few commits landed for the test to mean anything"
    _gc_leaves_history(path, checked)
    with Repo(path) as r:  # and the repository still takes commits
        r.commit({"emb": W.kill_data(checked)})
        assert_bits_equal(r.read("emb"), W.kill_data(checked))


# --- (d) the same object id from several processes ----------------------------------------
def test_concurrent_puts_of_one_id_never_overwrite(tmp_path: Path) -> None:
    n_procs, n_ids = 3, 300
    path = tmp_path / "store"
    outs = _run_together(tmp_path, "put", path, n_procs, n_ids)
    won = [set(lines[0]["won"]) for lines in outs]
    store = LocalStore(str(path))
    import blake3

    for j in range(n_ids):
        winners = [i for i in range(n_procs) if j in won[i]]
        assert len(winners) == 1, (j, winners)
        oid = blake3.blake3(f"race {j}".encode()).digest()
        assert store.get(oid) == f"writer {winners[0]} ".encode() * 200
    assert os.listdir(path / "tmp") == []


def test_put_loses_the_race_without_overwriting(tmp_path: Path, monkeypatch) -> None:
    """Deterministic form of (d): the existence check passed, then another writer published the
    same id; the late put must report False and leave the first bytes in place."""
    store = LocalStore(str(tmp_path))
    oid = bytes(range(32))
    assert store.put(oid, b"first encoding")
    monkeypatch.setattr(store, "touch", lambda _oid: False)  # the check ran before the winner
    assert store.put(oid, b"second encoding") is False
    assert store.get(oid) == b"first encoding"
    assert os.listdir(tmp_path / "tmp") == []


def _move_branch_before_cas(monkeypatch, repo: Repo, move) -> None:
    """Run ``move`` (another writer) between the commit's object writes and its ref update."""
    real_locked = repo.refs.locked
    done = []

    def locked(*a, **k):
        if not done:
            done.append(1)
            move()
        return real_locked(*a, **k)

    monkeypatch.setattr(repo.refs, "locked", locked)


@pytest.mark.parametrize("what", ["reset", "deleted", "same-table", "other-table"])
def test_branch_moved_between_write_and_cas(tmp_path: Path, monkeypatch, what: str) -> None:
    path = tmp_path / "repo"
    with Repo.init(path) as r:
        c1 = r.commit({"a": W.table_data(0, 0), "b": W.table_data(1, 0)})
        c2 = r.commit({"a": W.table_data(0, 1)})
        other = Repo(path)
        moves = {
            "reset": lambda: other.reset("main", c1),
            "deleted": lambda: other.refs.delete("heads", "main"),
            "same-table": lambda: other.commit({"a": W.table_data(0, 9)}, message="theirs"),
            "other-table": lambda: other.commit({"b": W.table_data(1, 9)}, message="theirs"),
        }
        _move_branch_before_cas(monkeypatch, r, moves[what])
        if what == "other-table":  # rebuilt on their commit: both land
            mine = r.commit({"a": W.table_data(0, 2)}, message="mine")
            log = r.log()
            assert [c.message for c in log[:2]] == ["mine", "theirs"] and log[0].id == mine
            assert_bits_equal(r.read("a"), W.table_data(0, 2))
            assert_bits_equal(r.read("b"), W.table_data(1, 9))
        else:
            head_after_move = {"reset": c1, "deleted": None}.get(what, "theirs")
            with pytest.raises(ConflictError) as e:
                r.commit({"a": W.table_data(0, 2)}, message="mine")
            assert e.value.kind == ErrorKind.CONFLICT
            heads = r.branches()
            if head_after_move is None:
                assert "main" not in heads
            elif head_after_move == "theirs":
                assert r.log()[0].message == "theirs" and r.log()[1].id == c2
            else:
                assert heads["main"] == head_after_move
            assert all(c.message != "mine" for c in r.iter_commits())
        other.close()


@pytest.mark.parametrize("n_threads", [4])
def test_threads_in_one_process_share_the_ref_lock(tmp_path: Path, n_threads: int) -> None:
    """Threads with separate Repo objects, different tables: all commits land."""
    from concurrent.futures import ThreadPoolExecutor

    path = tmp_path / "repo"
    Repo.init(path).close()

    def work(i: int) -> list[str]:
        with Repo(path) as r:
            return [r.commit({f"t{i}": W.table_data(i, k)}, message=f"{i}:{k}") for k in range(5)]

    with ThreadPoolExecutor(n_threads) as ex:
        ids = [c for lst in ex.map(work, range(n_threads)) for c in lst]
    with Repo(path) as r:
        assert set(c.id for c in r.log()) == set(ids)
        for i in range(n_threads):
            assert_bits_equal(r.read(f"t{i}"), W.table_data(i, 4))
