"""Deletions of ``tmp/`` and ``cache/`` entries go through embfmt._fs like every other change
of a repository (spec §18.6: the power-loss recorder sees them) and never through a directory
swapped for a symbolic link out of the repository (spec §19.1)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

import embfmt
from embfmt import _fs


def test_gc_removes_tmp_and_cache_entries_through_fs(tmp_path: Path, monkeypatch) -> None:
    repo = embfmt.Repo.init(tmp_path / "r")
    x = np.arange(64 * 8, dtype=np.float32).reshape(64, 8)
    v1 = repo.commit({"t": x})
    repo.commit({"t": x + 1})
    embfmt.diff(repo.open("t", v1), repo.open("t"), exact=False)  # fills cache/ entries
    repo.reset("main", v1)  # the second version is now unreachable, its cache entries with it
    r = repo.path
    old = time.time() - 7200
    stale = os.path.join(r, "tmp", "leftover-of-a-dead-writer")
    Path(stale).write_bytes(b"x")
    os.utime(stale, (old, old))
    cache_entries = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(r, "cache")) for f in fs]
    assert cache_entries
    for p in cache_entries:
        os.utime(p, (old, old))
    seen: list[tuple] = []
    monkeypatch.setattr(_fs, "tracer", lambda op, *a: seen.append((op, *a)))
    embfmt.Repo(r).gc(grace_seconds=0, reflog_expire_seconds=0)
    unlinked = {a[0] for op, *a in seen if op == "unlink"}
    assert stale in unlinked, sorted(unlinked)[:5]
    gone = [p for p in cache_entries if not os.path.exists(p)]
    assert gone and set(gone) <= unlinked


def test_scratch_file_removal_never_follows_a_swapped_tmp(tmp_path: Path) -> None:
    """A streaming writer's scratch file (rows waiting out of order) is removed when the writer
    gives up; with ``tmp/`` swapped for a link meanwhile, the file of the same name where the
    link points stays (it was deleted through the link)."""
    repo = embfmt.Repo.init(tmp_path / "r")
    outside = tmp_path / "outside"
    outside.mkdir()
    x = np.ones((200, 8), np.float32)
    w = repo.writer("t", shape=x.shape, dtype="float32")
    w.write(100, x[100:])  # rows ahead of row 0 wait in the scratch file
    tmp = Path(repo.path) / "tmp"
    scratch = [f for f in os.listdir(tmp) if f.startswith("stream-")]
    assert scratch
    for f in os.listdir(tmp):
        (outside / f).write_bytes(b"precious")
    os.rename(tmp, tmp_path / "tmp-moved")
    os.symlink(outside, tmp)
    w.abort()
    assert sorted(os.listdir(outside)) == sorted(os.listdir(tmp_path / "tmp-moved"))
    assert all((outside / f).read_bytes() == b"precious" for f in os.listdir(outside))
