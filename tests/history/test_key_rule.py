"""Keys are never silently dropped or carried to rows whose identity is unknown (issue 13,
defect 3): a new version of a keyed table needs its keys, an explicit carry (same rows, same
order; or the parent's keys plus keys for appended rows), or an explicit drop. Checked for
Repo.commit, repo.writer, Tracker and the CLI, in real processes for the CLI."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import embfmt
from embfmt import CarryKeys, ErrorKind, InputError
from tests.history.conftest import hash_tree


def _repo(tmp_path: Path) -> tuple[embfmt.Repo, np.ndarray, list[str]]:
    repo = embfmt.Repo.init(tmp_path / "r")
    x = np.arange(40, dtype=np.float32).reshape(10, 4)
    keys = [f"k{i}" for i in range(10)]
    repo.commit({"t": x}, keys={"t": keys}, message="v1")
    return repo, x, keys


def test_appending_without_keys_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    repo, x, keys = _repo(tmp_path)
    before = hash_tree(repo.path)
    grown = np.concatenate([x, np.ones((3, 4), np.float32)])
    with pytest.raises(InputError) as e:
        repo.commit({"t": grown}, message="append")
    assert e.value.kind == ErrorKind.KEYS_REQUIRED
    assert "'t'" in e.value.message and "carry" in e.value.message
    assert hash_tree(repo.path) == before
    assert list(repo.keys("t")) == keys


def test_same_row_count_without_keys_is_refused(tmp_path: Path) -> None:
    # A reordered export with the same row count: carrying the old keys would be wrong.
    repo, x, keys = _repo(tmp_path)
    with pytest.raises(InputError) as e:
        repo.commit({"t": x[::-1].copy()}, message="reordered")
    assert e.value.kind == ErrorKind.KEYS_REQUIRED
    assert list(repo.keys("t")) == keys


def test_explicit_carry_keeps_keys_same_rows(tmp_path: Path) -> None:
    repo, x, keys = _repo(tmp_path)
    repo.commit({"t": x + 1}, keys={"t": "carry"}, message="carry")
    assert list(repo.keys("t")) == keys
    assert repo.show()["tables"]["t"]["keys"] is True
    repo.commit({"t": x + 2}, keys={"t": CarryKeys()}, message="carry object")
    assert list(repo.keys("t")) == keys


def test_carry_needs_the_same_row_count(tmp_path: Path) -> None:
    repo, x, _ = _repo(tmp_path)
    grown = np.concatenate([x, np.ones((3, 4), np.float32)])
    with pytest.raises(InputError) as e:
        repo.commit({"t": grown}, keys={"t": "carry"})
    assert e.value.kind == ErrorKind.BAD_KEYS and "appended" in e.value.message


def test_carry_with_appended_keys(tmp_path: Path) -> None:
    repo, x, keys = _repo(tmp_path)
    grown = np.concatenate([x, np.ones((3, 4), np.float32)])
    repo.commit({"t": grown}, keys={"t": CarryKeys(appended=["n0", "n1", "n2"])}, message="append")
    assert list(repo.keys("t")) == keys + ["n0", "n1", "n2"]
    t = repo.open("t")
    assert np.array_equal(t.get("n1"), grown[11])
    with pytest.raises(InputError) as e:  # wrong number of appended keys
        repo.commit({"t": grown}, keys={"t": CarryKeys(appended=["z"])})
    assert e.value.kind == ErrorKind.BAD_KEYS
    with pytest.raises(InputError) as e:  # an appended key that is already a key
        repo.commit({"t": np.concatenate([grown, grown[:1]])},
                    keys={"t": CarryKeys(appended=["k0"])})
    assert e.value.kind == ErrorKind.DUPLICATE_KEY


def test_explicit_drop(tmp_path: Path) -> None:
    repo, x, _ = _repo(tmp_path)
    repo.commit({"t": x}, keys={"t": "drop"}, message="drop")
    assert repo.keys("t") is None


def test_carry_from_a_table_without_keys_needs_no_keys(tmp_path: Path) -> None:
    repo = embfmt.Repo.init(tmp_path / "r")
    x = np.zeros((4, 2), np.float32)
    repo.commit({"t": x})
    repo.commit({"t": x + 1})  # no keys before, none now: nothing to carry or lose
    repo.commit({"t": x + 2}, keys={"t": "carry"})
    assert repo.keys("t") is None
    with pytest.raises(InputError) as e:
        repo.commit({"t": np.zeros((5, 2), np.float32)}, keys={"t": CarryKeys(appended=["a"])})
    assert e.value.kind == ErrorKind.BAD_KEYS


def test_a_bare_string_is_not_a_key_list(tmp_path: Path) -> None:
    repo = embfmt.Repo.init(tmp_path / "r")
    with pytest.raises(InputError) as e:
        repo.commit({"t": np.zeros((3, 2), np.float32)}, keys={"t": "abc"})
    assert e.value.kind == ErrorKind.BAD_KEYS


def test_writer_follows_the_rule_before_any_row(tmp_path: Path) -> None:
    repo, x, keys = _repo(tmp_path)
    with pytest.raises(InputError) as e:
        repo.writer("t", shape=(13, 4), dtype="float32")
    assert e.value.kind == ErrorKind.KEYS_REQUIRED
    with repo.writer("t", shape=(10, 4), dtype="float32", keys="carry") as w:
        w.append(x * 3)
    assert list(repo.keys("t")) == keys
    with repo.writer("t", shape=(12, 4), dtype="float32",
                     keys=CarryKeys(appended=["a", "b"])) as w:
        w.append(np.zeros((12, 4), np.float32))
    assert list(repo.keys("t")) == keys + ["a", "b"]
    with repo.writer("t", shape=(12, 4), dtype="float32", keys="drop") as w:
        w.append(np.zeros((12, 4), np.float32))
    assert repo.keys("t") is None


def test_tracker_carries_only_the_same_rows(tmp_path: Path) -> None:
    # A tracker commits one tensor over time: row i is the same entity in every commit, so its
    # keys carry while the row count holds; a grown tensor needs keys.
    repo = embfmt.Repo.init(tmp_path / "r")
    emb = np.zeros((6, 2), np.float32)
    keys = np.arange(100, 106)
    tracker = embfmt.Tracker(repo, {"emb": lambda: emb}, every=1, keys={"emb": keys})
    tracker.step(1)
    tracker.keys = None
    emb = emb + 1
    tracker.step(2)
    assert np.array_equal(repo.keys("emb"), keys)
    emb = np.zeros((8, 2), np.float32)
    with pytest.raises(InputError) as e:
        tracker.step(3)
    assert e.value.kind == ErrorKind.BAD_KEYS
    tracker.keys = {"emb": CarryKeys(appended=[7, 8])}
    tracker.step(4)
    assert repo.keys("emb").tolist() == list(range(100, 106)) + [7, 8]


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("embfmt")
    cmd = [exe, *args] if exe else [sys.executable, "-m", "embfmt", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=300)


def test_cli_commit_key_options(tmp_path: Path) -> None:
    repo, x, keys = _repo(tmp_path)
    d = Path(repo.path)
    grown, same, new_keys = (str(tmp_path / n) for n in ("grown.npy", "same.npy", "new_keys.npy"))
    np.save(grown, np.concatenate([x, np.ones((2, 4), np.float32)]))
    np.save(same, x + 1)
    np.save(new_keys, np.array(["a", "b"]))
    before = hash_tree(d)
    r = _run("commit", f"t={grown}", "-m", "append", cwd=d)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    line = r.stderr.strip()
    assert line.startswith("embfmt: error [keys-required]: ") and "grown.npy" in line
    for opt in ("--keys", "--carry-keys", "--append-keys", "--drop-keys"):
        assert opt in line, line
    r = _run("commit", f"t={same}", "-m", "same", cwd=d)
    assert r.returncode == 2 and "[keys-required]" in r.stderr, r.stderr
    assert hash_tree(d) == before  # the refused commits stored nothing
    assert _run("commit", f"t={same}", "-m", "carry", "--carry-keys", "t", cwd=d).returncode == 0
    assert list(embfmt.Repo(d).keys("t")) == keys
    r = _run("commit", f"t={grown}", "-m", "append", "--append-keys", f"t={new_keys}", cwd=d)
    assert r.returncode == 0, r.stderr
    assert list(embfmt.Repo(d).keys("t")) == keys + ["a", "b"]
    r = _run("commit", f"t={grown}", "-m", "drop", "--drop-keys", "t", cwd=d)
    assert r.returncode == 0, r.stderr
    assert embfmt.Repo(d).keys("t") is None
    r = _run("commit", f"t={grown}", "-m", "x", "--drop-keys", "t", "--carry-keys", "t", cwd=d)
    assert r.returncode == 2 and "[bad-argument]" in r.stderr and "'t'" in r.stderr, r.stderr
