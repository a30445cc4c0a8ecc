"""Deleting branches and tags, and switching HEAD (spec §17): the API and the CLI in real
processes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from embfmt.errors import ConflictError, ErrorKind, NotFoundError
from embfmt.repo import Repo

from ..cli.test_cli_repo import fails, ok, run, run_all
from .conftest import assert_bits_equal, fresh

ZERO = "0" * 64


def _x(i: int) -> np.ndarray:
    return np.full((5, 3), i, np.float32)


def test_delete_branch(repo: Repo) -> None:
    c1 = repo.commit({"t": _x(1)})
    repo.branch("merged")  # at c1, which main reaches too
    c2 = repo.commit({"t": _x(2)}, branch="exp")
    assert repo.delete_branch("merged") == c1
    assert "merged" not in repo.branches()
    with pytest.raises(ConflictError) as e:  # only exp reaches c2
        repo.delete_branch("exp")
    assert e.value.kind is ErrorKind.NOT_MERGED and "exp" in str(e.value) and "force" in str(e.value)
    assert repo.branches()["exp"] == c2
    with pytest.raises(ConflictError) as e:
        repo.delete_branch("main")
    assert e.value.kind is ErrorKind.BRANCH_IN_USE
    with pytest.raises(NotFoundError):
        repo.delete_branch("nosuch")
    assert repo.delete_branch("exp", force=True) == c2
    assert set(repo.branches()) == {"main"}
    # the reflog keeps the deleted tip: gc keeps it, and the log says where it was
    (last, *_) = repo.reflog("exp")
    assert (last.old, last.new, last.reason) == (c2, ZERO, "branch: deleted")
    repo.gc(grace_seconds=0)
    assert_bits_equal(fresh(repo).read("t", c2), _x(2))
    # a name whose branch was deleted can be made again, and its log goes on
    repo.branch("exp", c2)
    assert [e.new for e in repo.reflog("exp")] == [c2, ZERO, c2]


def test_delete_branch_reachable_from_a_tag(repo: Repo) -> None:
    repo.commit({"t": _x(1)})
    c2 = repo.commit({"t": _x(2)}, branch="exp")
    repo.tag("keep", c2)
    assert repo.delete_branch("exp") == c2  # the tag still reaches its tip


def test_delete_tag_keeps_recorded_uses_protected(repo: Repo) -> None:
    c1 = repo.commit({"t": _x(1)})
    c2 = repo.commit({"t": _x(2)})
    repo.tag("prod", c2)
    repo.record_use(repo.stamp("t", "prod"), consumer="ranker")
    repo.reset("main", c1)
    assert repo.delete_tag("prod") == c2
    assert repo.tags() == {}
    with pytest.raises(NotFoundError):
        repo.delete_tag("prod")
    repo.gc(grace_seconds=0, reflog_expire_seconds=0)  # no ref, no reflog: the use keeps it
    assert_bits_equal(fresh(repo).read("t", c2), _x(2))
    assert fresh(repo).verify().ok


def test_switch(repo: Repo) -> None:
    c1 = repo.commit({"t": _x(1)})
    assert repo.switch("exp", create=True) == c1 and repo.head_branch == "exp"
    c2 = repo.commit({"t": _x(2)})  # lands on exp
    assert repo.branches() == {"main": c1, "exp": c2}
    assert repo.switch("main") == c1 and repo.head_branch == "main"
    with pytest.raises(NotFoundError):
        repo.switch("nosuch")
    with pytest.raises(ConflictError) as e:
        repo.switch("exp", create=True)
    assert e.value.kind is ErrorKind.REF_EXISTS and repo.head_branch == "main"
    repo.switch("old", create=True, start=c1)
    assert repo.branches()["old"] == c1
    repo.checkout_branch("exp")  # the older name still works
    assert repo.head_branch == "exp"


def test_cli_ref_verbs(tmp_path: Path) -> None:
    P = tmp_path / "r"
    repo = Repo.init(P)
    c1 = repo.commit({"t": _x(1)}, message="one")
    c2 = repo.commit({"t": _x(2)}, message="two", branch="exp")
    repo.tag("prod", c1)
    repo.record_use(repo.stamp("t", "prod"), consumer="ranker-v7")
    repo.tag("plain", c2)
    repo.close()
    C = ("-C", str(P))
    helps = run_all({v: (*C, v, "--help") for v in ("branch", "tag", "switch")})
    assert "--delete" in ok(helps["branch"]).stdout and "-D" in helps["branch"].stdout
    assert "--delete" in ok(helps["tag"]).stdout
    assert "-c" in ok(helps["switch"]).stdout
    fails(run(*C, "branch", "-d", "main"), "branch-in-use", "main")
    ok(run(*C, "tag", "-d", "plain"))  # now only exp reaches c2
    fails(run(*C, "branch", "-d", "exp"), "not-merged", "exp", "-D")
    d = json.loads(ok(run(*C, "branch", "-D", "exp", "--json")).stdout)
    assert d == {"deleted": "exp", "id": c2}
    fails(run(*C, "branch", "-d", "exp"), "not-found", "exp")
    fails(run(*C, "branch", "-d"), "bad-argument")
    r = ok(run(*C, "tag", "-d", "prod"))
    assert "warning" in r.stderr and "ranker-v7" in r.stderr and "prod" in r.stderr
    assert r.stdout.strip() == c1
    s = ok(run(*C, "switch", "-c", "side", "--json"))
    assert json.loads(s.stdout) == {"branch": "side", "id": c1, "created": True}
    assert json.loads(ok(run(*C, "branch", "--json")).stdout)["head"] == "side"
    assert ok(run(*C, "switch", "main")).stdout.strip() == c1
    fails(run(*C, "switch", "nosuch"), "not-found", "nosuch")
    j = json.loads(ok(run(*C, "reflog", "HEAD", "--json")).stdout)
    assert [e["reason"] for e in j["entries"]] == ["switch: from side to main", "switch: from main to side"]
