"""A Repo on s3:// (the loopback S3 server process) and memory:// through ObjectStore,
ObjectStoreRefs and ObjectLeases: the whole workflow, and committers racing on one branch."""

from __future__ import annotations

import uuid
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

import numpy as np
import pytest

pytest.importorskip("obstore", reason="object storage needs obstore: pip install -e '.[test]'")

import embfmt  # noqa: E402
from embfmt.errors import ConflictError, NotFoundError  # noqa: E402
from embfmt.history.objrefs import ObjectStoreRefs  # noqa: E402
from embfmt.store import ObjectStore  # noqa: E402
from embfmt.store._objlease import ObjectLeases  # noqa: E402


def open_repo(url: str, options: dict[str, Any] | None = None, *, init: bool = False) -> embfmt.Repo:
    st = ObjectStore(url, options)
    refs = ObjectStoreRefs(st)
    if init:
        refs.objects.init(b"ref: refs/heads/main\n")
    assert refs.objects.is_repository()
    repo = embfmt.Repo.__new__(embfmt.Repo)
    repo.path = url
    repo._assemble(st, refs, ObjectLeases(st), True, None, None)
    return repo


@pytest.fixture(params=["s3", "memory"])
def where(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any] | None]:
    if request.param == "memory":
        return f"memory://repo-{uuid.uuid4().hex}", None
    return request.getfixturevalue("s3_url"), request.getfixturevalue("s3_options")


@pytest.fixture
def repo(where: tuple[str, dict[str, Any] | None]):  # type: ignore[no-untyped-def]
    r = open_repo(*where, init=True)
    yield r
    r.close()


def test_workflow_on_object_storage(repo: embfmt.Repo, where: tuple[str, dict[str, Any] | None]) -> None:
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
    assert list(repo.changed_rows("emb", c1, c2).changed) == [3, 4000]

    # another Repo on the same URL (as another process would open it) sees the same history
    with open_repo(*where) as again:
        assert again.resolve("HEAD") == c2 and np.array_equal(again.read("emb", c1), x)

    assert repo.tag("v1", c1) == c1 and repo.branch("exp", c1) == c1
    with pytest.raises(ConflictError):
        repo.tag("v1")
    assert repo.switch("exp") == c1 and repo.head_branch == "exp"
    with repo.writer("emb", shape=x.shape, dtype="float32", keys="carry", message="streamed") as w:
        w.write(2500, x[2500:])
        w.write(0, x[:2500])
    assert np.array_equal(repo.read("emb", "exp"), x) and repo.branches()["exp"] == w.commit_id
    assert [e.reason for e in repo.reflog("exp")][:1] == ["commit: streamed"]

    repo.switch("main")
    reverted = repo.revert(c2)
    assert np.array_equal(repo.read("emb"), x) and repo.resolve("HEAD") == reverted
    report = repo.verify()
    assert report.ok, report.errors

    repo.delete_branch("exp", force=True)
    assert "exp" not in repo.branches()
    before = sum(1 for _ in repo.store.iter())
    gone = repo.gc(grace_seconds=0, reflog_expire_seconds=0)
    assert gone.objects_removed > 0 and sum(1 for _ in repo.store.iter()) == before - gone.objects_removed
    with pytest.raises(NotFoundError):
        repo.resolve(w.commit_id)
    assert repo.verify().ok and np.array_equal(repo.read("emb", "v1"), x)
    assert np.array_equal(repo.read("emb", c2), x2)
    assert list(repo.store.list_keys("tmp/")) == []  # leases and collector markers all gone


def _commit_loop(url: str, options: dict[str, Any], writer: int, n: int) -> tuple[list[str], int]:
    repo = open_repo(url, options)
    landed, conflicts = [], 0
    rng = np.random.default_rng(writer)
    for i in range(n):
        try:
            landed.append(repo.commit({f"t{writer}": rng.standard_normal((64, 8)).astype(np.float32)},
                                      message=f"w{writer} c{i}"))
        except ConflictError:
            conflicts += 1
    repo.close()
    return landed, conflicts


def test_committers_racing_on_one_branch_of_s3(s3_url: str, s3_options: dict[str, Any]) -> None:
    """4 processes x 6 commits to main of one s3:// repository: each commit lands or gets
    ConflictError, and main's history holds exactly the ones that landed."""
    open_repo(s3_url, s3_options, init=True).close()
    procs, per = 4, 6
    with ProcessPoolExecutor(procs, mp_context=get_context("spawn")) as ex:
        results = list(ex.map(_commit_loop, [s3_url] * procs, [s3_options] * procs, range(procs), [per] * procs))
    landed = {c for r in results for c in r[0]}
    assert sum(len(r[0]) for r in results) + sum(r[1] for r in results) == procs * per
    repo = open_repo(s3_url, s3_options)
    history = {c.id for c in repo.log()}
    assert history == landed
    repo.close()


def test_gc_keeps_what_another_writers_lease_reuses(repo: embfmt.Repo, where: tuple[str, dict[str, Any] | None]) -> None:
    """An unreachable object older than gc's cutoff survives while a live lease (of another
    process: another store instance) names it as reused; once the lease is gone, gc removes it."""
    import time

    from embfmt.store._objlease import ObjectLease

    oid = bytes(range(32))
    repo.store.put(oid, b"an old, unreachable chunk")
    time.sleep(1.2)  # S3's Last-Modified has whole seconds: the lease comes strictly later
    other = ObjectStore(*where)
    lease = ObjectLease(other)
    assert lease.reuse([oid]) == []
    repo.gc(grace_seconds=0)
    assert repo.store.has(oid)
    assert list(repo.store.list_keys("tmp/gc-")) == []  # the collection ended with the gc
    lease.release()
    repo.gc(grace_seconds=0)
    assert not repo.store.has(oid)
