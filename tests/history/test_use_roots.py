"""Versions the usage log records as used are gc roots (spec §18.4, §21.2), and verify reports a
recorded use whose version is gone (issue 13, defect 1)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from embfmt.repo import Repo

from ..cli.test_cli_repo import ok, run


def _age_objects(path: Path | str, seconds: float) -> None:
    t = time.time() - seconds
    for dirpath, _dirs, files in os.walk(os.path.join(path, "objects")):
        for f in files:
            os.utime(os.path.join(dirpath, f), (t, t))


def test_cli_recorded_use_survives_reset_and_gc(tmp_path: Path) -> None:
    """The issue's reproduction, through the CLI: commit v1, v2; record a use of v2; reset to
    v1; gc with no grace. v2 must stay readable, and verify stays clean."""
    P = str(tmp_path / "r")
    repo = Repo.init(P)
    x1 = np.arange(40, dtype=np.float32).reshape(10, 4)
    x2 = x1 + 1
    repo.commit({"t": x1}, message="v1")
    c2 = repo.commit({"t": x2}, message="v2")
    repo.close()
    C = ("-C", P)
    s = ok(run(*C, "stamp", "t")).stdout.strip()
    ok(run(*C, "record-use", s, "--consumer", "prod"))
    ok(run(*C, "reset", "main", "HEAD~1"))
    gc = json.loads(ok(run(*C, "gc", "--grace", "0", "--expire-reflog", "now", "--json")).stdout)
    assert gc["objects_removed"] == 0, gc
    res = json.loads(ok(run(*C, "stamp", "--resolve", s, "--json")).stdout)
    assert res["commit"] == c2
    ver = ok(run(*C, "verify", "--json"))
    assert json.loads(ver.stdout)["ok"] is True
    r = Repo(P)
    assert np.array_equal(r.read("t", s), x2)


def test_gc_keeps_used_version_and_its_history(tmp_path: Path) -> None:
    repo = Repo.init(tmp_path / "r")
    xs = [np.full((6, 3), i, np.float32) for i in range(3)]
    ids = [repo.commit({"t": x}, message=f"v{i}") for i, x in enumerate(xs)]
    repo.record_use(repo.stamp("t", ids[1]), consumer="ranker")
    repo.reset("main", ids[0])
    _age_objects(repo.path, 7200)
    repo.gc(grace_seconds=0, reflog_expire_seconds=0)
    r = Repo(repo.path)
    assert np.array_equal(r.read("t", ids[1]), xs[1])  # the used version
    assert r.log(ids[1])[-1].id == ids[0]  # and its history: it works wherever a revision does
    assert r.verify().ok, r.verify().errors


def test_verify_reports_a_recorded_use_whose_version_is_gone(tmp_path: Path) -> None:
    """A used version removed anyway (by an older embfmt's gc, or by hand): verify reports the
    record as a finding (exit 1), naming the log line, instead of saying ok."""
    P = tmp_path / "r"
    repo = Repo.init(P)
    repo.commit({"t": np.zeros((4, 2), np.float32)}, message="v1")
    c2 = repo.commit({"t": np.ones((4, 2), np.float32)}, message="v2")
    s = repo.stamp("t")
    repo.record_use(s, consumer="prod")
    repo.reset("main", "HEAD~1")
    os.unlink(repo.store.path(bytes.fromhex(c2)))  # the version is gone
    rep = repo.verify()
    assert not rep.ok
    hits = [e for e in rep.errors if e["object"] == "lineage/uses.log:1"]
    assert len(hits) == 1 and hits[0]["kind"] == "missing-object", rep.errors
    assert c2 in hits[0]["error"] and "prod" in hits[0]["error"]
    v = run("-C", str(P), "verify")
    assert v.returncode == 1 and "Traceback" not in v.stderr
    assert "lineage/uses.log:1" in v.stderr
    # gc still runs (the used commit is gone; nothing else it could keep for it), and the
    # finding stays (the reflog's own finding for the commit goes with its expired entries)
    repo.gc(grace_seconds=0, reflog_expire_seconds=0)
    assert Repo(P).verify().errors == hits


def test_gc_keeps_commits_named_by_damaged_log_lines(tmp_path: Path) -> None:
    """gc reads the stamps in the log conservatively: a line that fails verification (edited by
    hand) still protects the commit it names."""
    repo = Repo.init(tmp_path / "r")
    repo.commit({"t": np.zeros((4, 2), np.float32)})
    c2 = repo.commit({"t": np.ones((4, 2), np.float32)})
    repo.record_use(repo.stamp("t"), consumer="prod")
    repo.reset("main", "HEAD~1")
    log = Path(repo.path) / "lineage" / "uses.log"
    log.write_bytes(log.read_bytes().replace(b'"prod"', b'"prodX"'))
    assert not repo.verify().ok
    _age_objects(repo.path, 7200)
    repo.gc(grace_seconds=0, reflog_expire_seconds=0)
    assert repo.store.has(bytes.fromhex(c2))
    assert np.array_equal(Repo(repo.path).read("t", c2), np.ones((4, 2), np.float32))


@pytest.mark.parametrize("junk", [b"", b"not json at all\n"])
def test_gc_with_empty_or_junk_log(tmp_path: Path, junk: bytes) -> None:
    repo = Repo.init(tmp_path / "r")
    repo.commit({"t": np.zeros((4, 2), np.float32)})
    os.makedirs(os.path.join(repo.path, "lineage"), exist_ok=True)
    (Path(repo.path) / "lineage" / "uses.log").write_bytes(junk)
    rep = repo.gc(grace_seconds=0, reflog_expire_seconds=0)
    assert rep.objects_removed == 0
