"""``Repo.revert`` with git's meaning: undo the change one commit made, as a new commit on top
of the branch (rows back to the parent's values, appended rows removed, tables back or gone),
refusing with a typed conflict when the head changed those rows since. ``Repo.restore`` keeps
the old meaning (a new commit whose content is REV's) and is tested in test_roundtrip/test_gc."""

from __future__ import annotations

import numpy as np
import pytest

from embfmt.errors import ConflictError, ErrorKind, InputError
from embfmt.repo import Repo

from .conftest import assert_bits_equal, fresh, object_files, objects_by_kind


def _x(n: int = 300, d: int = 8, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    x.view(np.uint32)[0, :2] = [0x7FC00042, 0x80000000]  # a NaN payload and -0.0 must survive
    return x


def _refs(r: Repo) -> tuple[dict[str, str], dict[str, str], str]:
    return r.branches(), r.tags(), r.head_branch


def test_revert_undoes_rows_of_a_middle_commit_and_keeps_later_ones(repo: Repo) -> None:
    x0 = _x()
    c0 = repo.commit({"t": x0, "u": x0[:5]}, message="v0")
    x1 = x0.copy()
    x1[[3, 150, 299]] += 1
    c1 = repo.commit({"t": x1}, message="bad fine-tune\nsecond line")
    x2 = x1.copy()
    x2[[10, 200]] -= 2  # a later change to other rows: kept
    c2 = repo.commit({"t": x2}, message="good")
    rv = repo.revert(c1)
    r = fresh(repo)
    want = x2.copy()
    want[[3, 150, 299]] = x0[[3, 150, 299]]
    assert_bits_equal(r.read("t"), want)
    assert_bits_equal(r.read("u"), x0[:5])
    log = r.log()
    assert [c.id for c in log] == [rv, c2, c1, c0]  # history kept: a new commit on top
    assert log[0].message == f'Revert "bad fine-tune"\n\nThis reverts commit {c1}.'
    assert log[0].metadata["embfmt"]["reverts"] == c1
    assert log[0].metadata["embfmt"]["tables"]["t"]["rows_changed"] == 3
    assert r.changed_rows("t", c2, rv).changed.tolist() == [3, 150, 299]
    assert r.verify().ok


def test_revert_of_the_head_commit_reuses_the_parent_version(repo: Repo) -> None:
    x0 = _x(seed=1)
    c0 = repo.commit({"t": x0}, keys={"t": np.arange(300) * 3})
    x1 = x0.copy()
    x1[7] = 0
    c1 = repo.commit({"t": x1}, keys={"t": "carry"})
    chunks = objects_by_kind(repo.path)["chunk"]
    rv = repo.revert("HEAD")
    assert repo.get_commit(rv).tables == repo.get_commit(c0).tables  # the parent's version back
    assert objects_by_kind(repo.path)["chunk"] == chunks  # nothing written
    assert_bits_equal(fresh(repo).read("t"), x0)
    # reverting the revert brings c1's change back, again without writing rows
    rr = repo.revert(rv)
    assert repo.get_commit(rr).tables == repo.get_commit(c1).tables


def test_conflict_names_table_and_rows_and_commits_nothing(repo: Repo) -> None:
    x0 = _x(seed=2)
    repo.commit({"t": x0})
    x1 = x0.copy()
    x1[[5, 6, 40]] += 1
    c1 = repo.commit({"t": x1})
    x2 = x1.copy()
    x2[[6, 41]] += 1  # row 6 changed again since c1
    repo.commit({"t": x2})
    before, refs = object_files(repo.path), _refs(repo)
    with pytest.raises(ConflictError) as e:
        repo.revert(c1)
    assert e.value.kind is ErrorKind.REVERT_CONFLICT
    assert e.value.conflicts == {"t": [6]}  # type: ignore[attr-defined]
    assert "'t'" in str(e.value) and "rows 6 " in str(e.value) and "nothing was committed" in str(e.value)
    assert object_files(repo.path) == before and _refs(repo) == refs


def test_tables_added_go_and_tables_removed_come_back(repo: Repo) -> None:
    x = _x(seed=3)
    repo.commit({"a": x, "b": x[:10]}, keys={"b": [f"k{i}" for i in range(10)]})
    c_add = repo.commit({"c": x[:20]}, message="add c")
    c_rm = repo.commit({}, remove=("b",), message="drop b")
    repo.commit({"a": x + 1})
    repo.revert(c_rm)
    r = fresh(repo)
    assert sorted(r.get_commit(r.resolve("HEAD")).tables) == ["a", "b", "c"]
    assert_bits_equal(r.read("b"), x[:10])
    assert r.keys("b").tolist() == [f"k{i}" for i in range(10)]
    repo.revert(c_add)
    r = fresh(repo)
    assert sorted(r.get_commit(r.resolve("HEAD")).tables) == ["a", "b"]
    assert_bits_equal(r.read("a"), x + 1)
    # a table the commit added and that changed since is a conflict
    c_add2 = repo.commit({"d": x[:4]})
    repo.commit({"d": x[:4] * 2})
    with pytest.raises(ConflictError) as e:
        repo.revert(c_add2)
    assert e.value.conflicts == {"d": "added by the commit and changed since"}  # type: ignore[attr-defined]


def test_appended_rows_are_removed_with_their_keys(repo: Repo) -> None:
    x0 = _x(100, seed=4)
    repo.commit({"t": x0}, keys={"t": np.arange(100)})
    x1 = np.concatenate([x0, _x(20, seed=5)])
    c1 = repo.commit({"t": x1}, keys={"t": np.arange(120)}, message="append 20")
    x2 = np.concatenate([x1, _x(5, seed=6)])
    x2[50] += 1
    repo.commit({"t": x2}, keys={"t": np.arange(125)}, message="append 5 more, edit row 50")
    repo.revert(c1)
    r = fresh(repo)
    want = np.concatenate([x2[:100], x2[120:]])
    assert_bits_equal(r.read("t"), want)
    assert r.keys("t").tolist() == list(range(100)) + list(range(120, 125))
    # an appended row edited since is a conflict
    x3 = np.concatenate([want, _x(3, seed=7)])
    c3 = repo.commit({"t": x3}, keys={"t": list(range(100)) + list(range(120, 128))})
    x4 = x3.copy()
    x4[106] = 0
    repo.commit({"t": x4}, keys={"t": "carry"})
    with pytest.raises(ConflictError) as e:
        repo.revert(c3)
    assert e.value.conflicts == {"t": [106]}  # type: ignore[attr-defined]


def test_truncated_rows_come_back(repo: Repo) -> None:
    x0 = _x(60, seed=8)
    repo.commit({"t": x0})
    c1 = repo.commit({"t": x0[:40]}, message="truncate")
    x2 = x0[:40].copy()
    x2[1] += 1
    repo.commit({"t": x2})
    repo.revert(c1)
    want = np.concatenate([x2, x0[40:]])
    assert_bits_equal(fresh(repo).read("t"), want)


def test_revert_of_the_first_commit_removes_its_tables(repo: Repo) -> None:
    x = _x(seed=9)
    c0 = repo.commit({"t": x})
    repo.commit({"u": x[:3]})
    repo.revert(c0)
    assert sorted(fresh(repo).get_commit(repo.resolve("HEAD")).tables) == ["u"]


def test_nothing_to_revert(repo: Repo) -> None:
    x = _x(seed=10)
    repo.commit({"t": x})
    same = repo.restore("HEAD")  # same tables as its parent
    with pytest.raises(InputError, match="nothing to revert") as e:
        repo.revert(same)
    assert e.value.kind is ErrorKind.BAD_ARGUMENT
