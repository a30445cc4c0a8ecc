"""gc versus a write lease being created (issue 20, gc versus writers): a lease is created as
``tmp/pending-<token>``, locked, then renamed to ``lease-<token>``. gc with a grace of 0 used to
delete the pending file while its writer held it, and the writer's rename failed with a bare
FileNotFoundError (seen in the race campaign). Spec §18.4 rule 2: a pending file whose lock is
held stays whatever the grace period; one whose lock is free (a dead writer's) goes; a writer
whose pending file vanished retries."""

from __future__ import annotations

import fcntl
import os
import time

import numpy as np

import embfmt
from embfmt.store import _lease


def _repo(tmp_path):
    repo = embfmt.Repo.init(str(tmp_path / "r"))
    repo.commit({"t": np.zeros((4, 4), np.float32)}, message="v1")
    return repo


def test_gc_keeps_a_pending_lease_its_writer_holds(tmp_path):
    repo = _repo(tmp_path)
    tmp = os.path.join(repo.path, "tmp")
    os.makedirs(tmp, exist_ok=True)
    held = os.path.join(tmp, "pending-" + "a" * 32)
    dead = os.path.join(tmp, "pending-" + "b" * 32)
    other = os.path.join(tmp, "obj-leftover")
    for p in (dead, other):
        open(p, "wb").close()
    fd = os.open(held, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a live writer between its lock and its rename
        time.sleep(0.01)
        repo.gc(grace_seconds=0)
        assert os.path.exists(held), "gc removed a lease still being created"
        assert not os.path.exists(dead), "a dead writer's pending file must go"
        assert not os.path.exists(other)
    finally:
        os.close(fd)
    repo.gc(grace_seconds=0)  # its writer gone, the lock is free: removed
    assert not os.path.exists(held)


def test_a_writer_whose_pending_file_vanishes_retries(tmp_path, monkeypatch):
    repo = _repo(tmp_path)
    real_flock = _lease.fcntl.flock
    removed = []

    def flock_then_cleaner_strikes(fd, op):
        real_flock(fd, op)
        if not removed:  # a cleaner that ignores the rule removes the pending file once
            tmp = os.path.join(repo.path, "tmp")
            for name in os.listdir(tmp):
                if name.startswith("pending-"):
                    os.unlink(os.path.join(tmp, name))
                    removed.append(name)

    monkeypatch.setattr(_lease.fcntl, "flock", flock_then_cleaner_strikes)
    cid = repo.commit({"t": np.ones((4, 4), np.float32)}, message="v2")
    monkeypatch.undo()
    assert removed, "the test's cleaner never ran"
    assert repo.resolve("HEAD") == cid
    np.testing.assert_array_equal(embfmt.Repo(repo.path).read("t"), np.ones((4, 4), np.float32))
    assert not [n for n in os.listdir(os.path.join(repo.path, "tmp")) if n.startswith(("pending-", "lease-"))]
