"""``commit(..., dry_run=True)``: the real write path against a store that only counts, so the
plan says exactly what a commit would store, and nothing on disk changes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from embfmt.repo import CommitPlan, Repo


def _tree(root: str) -> dict[str, tuple[int, float]]:
    """Every file under the repository with its size and modification time."""
    out = {}
    for d, _, fs in os.walk(root):
        for f in fs:
            p = os.path.join(d, f)
            st = os.stat(p)
            out[os.path.relpath(p, root)] = (st.st_size, st.st_mtime_ns)
    return out


def test_dry_run_changes_nothing_and_predicts_the_bytes(repo: Repo) -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((70_000, 16)).astype(np.float32)  # 5 chunks
    repo.commit({"t": x, "same": x[:100], "gone": x[:3]}, keys={"same": np.arange(100)})
    before = _tree(repo.path)
    y = np.concatenate([x, x[:10]])
    y[[3, 40_000]] += 1
    plan = repo.commit({"t": y, "same": x[:100], "new": x[:7]}, remove=("gone",), dry_run=True,
                       keys={"same": "carry"})
    assert isinstance(plan, CommitPlan)
    assert _tree(repo.path) == before  # no object, ref, lease or scratch file left or touched
    t = plan.tables["t"]
    assert (t["status"], t["rows_changed"], t["rows_added"], t["rows_removed"]) == ("changed", 2, 10, 0)
    assert t["chunks"] == 5 and t["chunks_reused"] == 2 and sum(t["codecs"].values()) == 3  # 0, 2, 4
    same = plan.tables["same"]
    assert same["status"] == "unchanged" and same["chunks_written"] == 0 and same["codecs"] == {}
    assert plan.tables["new"]["status"] == "new" and sum(plan.tables["new"]["codecs"].values()) == 1
    assert plan.tables["gone"] == {"status": "removed", "version": None, "bytes_written": 0}
    cid = repo.commit({"t": y, "same": x[:100], "new": x[:7]}, remove=("gone",), keys={"same": "carry"})
    after = _tree(repo.path)
    new = {p: s for p, (s, _) in after.items() if p.startswith("objects") and p not in before}
    commit_file = os.path.join("objects", cid[:2], cid[2:])
    assert plan.bytes_written == sum(new.values()) - new[commit_file]  # exact, but for the commit
    assert sum(v["bytes_written"] for v in plan.tables.values()) == plan.bytes_written
    c = repo.get_commit(cid)
    assert {n: c.tables[n] for n in ("t", "same", "new")} == {n: plan.tables[n]["version"] for n in ("t", "same", "new")}
    assert plan.to_dict()["dry_run"] is True and plan.parent is not None
    # what the commit records it wrote per table is what the plan predicted (it once left out
    # the table-version object and the change record)
    shown = repo.show(cid)["tables"]
    for n in ("t", "new"):
        assert shown[n]["write"]["bytes_written"] == plan.tables[n]["bytes_written"], n


def test_dry_run_on_an_empty_repository(tmp_path: Path) -> None:
    with Repo.init(tmp_path / "r") as repo:
        plan = repo.commit({"t": np.ones((3, 2), np.float16)}, dry_run=True)
        assert plan.parent is None and plan.tables["t"]["status"] == "new"
        assert plan.bytes_written > 0 and repo.branches() == {}
        assert list(repo.store.iter()) == []
