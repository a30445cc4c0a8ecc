"""A repository on another store: the whole workflow on MemoryStore and in-memory refs, with no
repository directory at all. The layers above the store (history, compare, the Repo facade) go
through the Store, Refs and Leases interfaces only; a LocalStore-only member used anywhere on
these paths fails here."""

from __future__ import annotations

import os

import numpy as np
import pytest

import embfmt
from embfmt.errors import ConflictError, NotFoundError
from embfmt.store import MemoryStore


@pytest.fixture
def repo(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may be written here (nor anywhere else)
    r = embfmt.Repo.in_memory()
    yield r
    r.close()
    assert os.listdir(tmp_path) == []


def test_workflow_on_memory_store(repo: embfmt.Repo) -> None:
    assert isinstance(repo.store, MemoryStore)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((5000, 16)).astype(np.float32)
    c1 = repo.commit({"emb": x}, message="v1", keys={"emb": np.arange(5000)})
    x2 = x.copy()
    x2[[3, 4000]] += 1
    c2 = repo.commit({"emb": x2}, message="v2", keys={"emb": "carry"})
    assert repo.resolve("HEAD") == c2 and repo.resolve("HEAD~1") == c1
    assert np.array_equal(repo.read("emb", c1), x) and np.array_equal(repo.read("emb"), x2)
    assert repo.open("emb").fingerprint == embfmt.fingerprint(x2).root
    assert [c.message for c in repo.log()] == ["v2", "v1"]

    d = repo.diff(c1, c2, "emb")
    assert list(d.changed_b) == [3, 4000] and d.info["source"] == "change-record"
    assert list(repo.changed_rows("emb", c1, c2).changed) == [3, 4000]
    assert [e.kind for e in repo.blame("emb", 3)] == ["changed", "added"]

    assert repo.tag("v1", c1) == c1 and repo.branch("exp", c1) == c1
    with pytest.raises(ConflictError):
        repo.tag("v1")
    assert repo.switch("exp") == c1 and repo.head_branch == "exp"
    with repo.writer("emb", shape=x.shape, dtype="float32", keys="carry", message="streamed") as w:
        w.write(2500, x[2500:])  # out of order: rows wait in the store's scratch directory
        w.write(0, x[:2500])
    assert np.array_equal(repo.read("emb", "exp"), x) and repo.branches()["exp"] == w.commit_id
    assert [e.reason for e in repo.reflog("exp")][:1] == ["commit: streamed"]

    repo.switch("main")
    reverted = repo.revert(c2)
    assert np.array_equal(repo.read("emb"), x) and repo.resolve("HEAD") == reverted

    report = repo.verify()
    assert report.ok, report.errors
    assert report.commits == 4 and report.tables >= 2

    # A branch gone and its reflog expired: gc removes what only it reached, keeps the rest.
    repo.delete_branch("exp", force=True)
    before = sum(1 for _ in repo.store.iter())
    gone = repo.gc(grace_seconds=0, reflog_expire_seconds=0)
    assert gone.objects_removed > 0 and sum(1 for _ in repo.store.iter()) == before - gone.objects_removed
    with pytest.raises(NotFoundError):
        repo.resolve(w.commit_id)
    assert repo.verify().ok and np.array_equal(repo.read("emb", "v1"), x)
    assert np.array_equal(repo.read("emb", c2), x2)  # still reached through main's history
