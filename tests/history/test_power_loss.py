"""Power loss at every step of a commit, a gc and a usage-log append (spec §18.6).

Each scenario runs for real on a repository while tests/history/_crash.py records the ordered
file-system changes embfmt makes (through embfmt._fs) and when each call returned. Then every
prefix of that log is replayed on a model file system, each prefix in every variant a power
loss could leave (unsynced data lost, cut short, or kept; unsynced directory entries lost or
kept, directory by directory), and each distinct resulting tree is written to a fresh
directory and checked:

- the repository opens and ``verify()`` is clean;
- every acknowledged commit reads back bit-exactly, every branch is at its last acknowledged
  commit or at one a call in flight was making, every acknowledged usage record is listed;
- the interrupted work can be redone: committing the same tables again gives a commit that
  reads back bit-exactly (a name in objects/ whose data was lost would be reused here).

The same harness finds lost commits in a non-durable repository, which shows it can fail.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import embfmt
from embfmt import _fs

from ._crash import Model, Recorder, materialize, tree_digest

ROWS, DIM = 20_000, 16  # 1.25 MiB of float32: two chunks per table


def table(seed: int, rows: int = ROWS) -> np.ndarray:
    # Few distinct values: objects compress to a few KiB, so hundreds of replays stay cheap.
    rng = np.random.default_rng(seed)
    return rng.integers(-3, 4, size=(rows, DIM)).astype(np.float32)


class Scenario:
    """A repository, the calls to record, and what each acknowledged call promised."""

    def __init__(self, root: str, durable: bool) -> None:
        self.path = os.path.join(root, "repo")
        self.durable = durable
        self.repo = embfmt.Repo.init(self.path, durable=durable)
        self.expected: dict[str, dict[str, np.ndarray]] = {}  # commit id -> tables
        self.in_flight: dict[str, dict[str, np.ndarray]] = {}  # tables of the call recorded now
        self.branch_acks: list[tuple[int, str]] = []  # (op index, commit id of main)
        self.use_acks: list[tuple[int, str]] = []
        self.recorder = Recorder(self.path)

    def commit(self, tables: dict[str, np.ndarray]) -> str:
        cid = self.repo.commit(tables)
        full = {t: self.repo.read(t, cid) for t in self.repo.get_commit(cid).tables}
        self.expected[cid] = full
        return cid

    def record(self, steps: list[tuple[str, Callable[[], Any]]]) -> list[tuple[Any, ...]]:
        _fs.tracer = self.recorder
        try:
            for what, f in steps:
                out = f()
                self.recorder.ack((what, out))
                idx = len(self.recorder.ops)
                if what in ("commit", "reset"):
                    self.branch_acks.append((idx, self.repo.resolve("main")))
                elif what == "use":
                    self.use_acks.append((idx, out))
        finally:
            _fs.tracer = None
        return list(self.recorder.ops)


def check_state(path: str, sc: Scenario, k: int, retry: dict[str, np.ndarray]) -> list[str]:
    """What is wrong with the repository at ``path`` (a crash after op ``k``)."""
    bad: list[str] = []
    try:
        repo = embfmt.Repo(path, durable=False)
    except embfmt.EmbfmtError as e:
        return [f"does not open: {e}"]
    with repo:
        rep = repo.verify()
        if not rep.ok:
            bad.append(f"verify: {rep.errors[:2]}")
        acked = [cid for i, cid in sc.branch_acks if i <= k]
        if acked:
            # The branch is at the last acknowledged commit, or at a commit made after it.
            try:
                head = repo.resolve("main")
            except embfmt.EmbfmtError as e:
                return bad + [f"main unreadable: {e}"]
            later = [cid for i, cid in sc.branch_acks if i > k]
            if head != acked[-1] and head not in later:
                bad.append(f"main at {head[:12]}, acknowledged {acked[-1][:12]}")
        for cid in acked:
            for t, x in sc.expected.get(cid, {}).items():
                try:
                    y = repo.read(t, cid)
                except embfmt.EmbfmtError as e:
                    bad.append(f"acknowledged commit {cid[:12]} table {t}: {e}")
                    continue
                if y.tobytes() != x.tobytes():
                    bad.append(f"acknowledged commit {cid[:12]} table {t}: wrong bytes")
        try:
            uses = {u.id for u in repo.uses()} if sc.use_acks else set()
        except embfmt.EmbfmtError as e:
            return bad + [f"usage log unreadable: {e}"]
        for i, rid in sc.use_acks:
            if i <= k and rid not in uses:
                bad.append(f"acknowledged usage record {rid[:12]} is gone")
        if not bad and retry:
            try:
                cid = repo.commit(retry, branch="retry")
                for t, x in retry.items():
                    if repo.read(t, cid).tobytes() != x.tobytes():
                        bad.append(f"retried commit table {t}: wrong bytes")
            except embfmt.EmbfmtError as e:
                bad.append(f"retried commit failed: {e}")
    return bad


def broken_names(tree: dict[str, bytes | None], model: Model) -> list[str]:
    """Object files whose bytes are not those they were published with (spec §18.6 rule 1:
    a name in objects/ never outlives its data). A later commit would reuse them by name."""
    return [f"object {p} lost data ({len(tree[p] or b'')} bytes left)" for p in model.partial_files(tree)
            if p.split(os.sep)[0] == "objects" and len(p.split(os.sep)) == 3]


def replay(sc: Scenario, start: str, ops: list[tuple[Any, ...]], work: str,
           retry: dict[str, np.ndarray], first_failure: bool = False) -> dict[str, Any]:
    """Check every crash state of every prefix; returns the figures and the failures."""
    model = Model(start)
    seen: dict[str, list[str]] = {}
    failures: list[str] = []
    states = acks = 0
    for k in range(len(ops) + 1):
        if k:
            model.apply(ops[k - 1])
            acks += ops[k - 1][0] == "ack"
        for variant, tree in model.crash_states():
            states += 1
            # What a tree must hold depends on what was acknowledged when the power went.
            key = f"{tree_digest(tree)}:{acks}"
            if key not in seen:
                seen[key] = broken_names(tree, model)
                if not seen[key]:
                    dest = os.path.join(work, f"s{len(seen)}")
                    materialize(tree, dest)
                    # Redoing the work reuses objects by name: tried where names survived and
                    # data did not, the state that rule 1 is about (the name check above
                    # covers it for every state).
                    seen[key] = check_state(dest, sc, k, retry if variant == "names-kept" else {})
                    shutil.rmtree(dest)
            if seen[key]:
                failures.append(f"after op {k} ({ops[k - 1][:2] if k else 'start'}), {variant}: "
                                f"{seen[key][0]}")
                if first_failure:
                    return {"failures": failures}
    assert not model.unknown, model.unknown[:5]
    return {"prefixes": len(ops) + 1, "states": states, "distinct": len(seen), "failures": failures}


def snapshot(sc: Scenario, work: str) -> str:
    start = os.path.join(work, "start")
    shutil.copytree(sc.path, start, symlinks=True)
    return start


def commit_scenario(tmp_path: Any, durable: bool, first_failure: bool = False) -> dict[str, Any]:
    sc = Scenario(str(tmp_path), durable)
    sc.commit({"a": table(1)})
    start = snapshot(sc, str(tmp_path))
    a2 = table(1)
    a2[:50] += 1  # a few rows: a delta object on the old chunk, the other chunk reused
    b = table(2)
    ops = sc.record([("commit", lambda: sc.commit({"a": a2})),
                     ("commit", lambda: sc.commit({"b": b})),
                     ("tag", lambda: sc.repo.tag("v1"))])
    return replay(sc, start, ops, str(tmp_path), {"a": a2, "b": b}, first_failure)


def gc_scenario(tmp_path: Any, durable: bool, first_failure: bool = False) -> dict[str, Any]:
    sc = Scenario(str(tmp_path), durable)
    v1 = sc.commit({"a": table(1)})
    sc.commit({"a": table(3)})
    start = snapshot(sc, str(tmp_path))
    # The reflog would keep the old tip: expire it, so gc deletes the second commit's objects.
    ops = sc.record([("reset", lambda: sc.repo.reset("main", v1)),
                     ("gc", lambda: sc.repo.gc(grace_seconds=0, reflog_expire_seconds=0).objects_removed)])
    assert any(o[0] == "unlink" and o[1].startswith("objects" + os.sep) for o in ops)
    return replay(sc, start, ops, str(tmp_path), {}, first_failure)


def usage_scenario(tmp_path: Any, durable: bool, first_failure: bool = False) -> dict[str, Any]:
    sc = Scenario(str(tmp_path), durable)
    sc.commit({"a": table(1)})
    stamp = sc.repo.stamp("a")
    start = snapshot(sc, str(tmp_path))
    ops = sc.record([("use", lambda: sc.repo.record_use(stamp, consumer="ranker")),
                     ("use", lambda: sc.repo.record_use(stamp, consumer="ranker", context={"n": 2}))])
    return replay(sc, start, ops, str(tmp_path), {}, first_failure)


def stream_scenario(tmp_path: Any, durable: bool, first_failure: bool = False) -> dict[str, Any]:
    sc = Scenario(str(tmp_path), durable)
    sc.commit({"a": table(1)})
    start = snapshot(sc, str(tmp_path))
    x = table(4)

    def streamed() -> str:
        # The second half first: it waits in a scratch file until the first half is in.
        with sc.repo.writer("a", shape=x.shape, dtype="float32") as w:
            w.write(ROWS // 2, x[ROWS // 2:])
            w.write(0, x[:ROWS // 2])
        assert w.commit_id is not None
        sc.expected[w.commit_id] = {"a": x}
        return w.commit_id

    ops = sc.record([("commit", streamed)])
    return replay(sc, start, ops, str(tmp_path), {"a": x}, first_failure)


SCENARIOS = {"commit": commit_scenario, "gc": gc_scenario, "usage-log": usage_scenario,
             "stream": stream_scenario}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_power_loss_keeps_acknowledged_work(tmp_path: Any, name: str) -> None:
    res = SCENARIOS[name](tmp_path, durable=True)
    print(f"power loss, {name}: {res['prefixes']} prefixes, {res['states']} crash states, "
          f"{res['distinct']} distinct trees checked, {len(res['failures'])} failures")
    assert res["distinct"] > res["prefixes"] // 2  # the variants do differ from each other
    assert not res["failures"], res["failures"][:5]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_harness_finds_lost_work_without_durability(tmp_path: Any, name: str) -> None:
    # Without fsyncs, a power loss undoes acknowledged commits and resets: the same checks
    # must fail, or the harness could not tell durable code from the rest.
    res = SCENARIOS[name](tmp_path, durable=False, first_failure=True)
    assert res["failures"], "no crash state of a non-durable repository lost anything"
