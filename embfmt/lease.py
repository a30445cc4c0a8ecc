"""Write leases: how a running table write keeps ``gc`` away from objects it has not referenced yet.

A table write stores its chunk objects long before the commit that references them; a streaming
writer fed by a training job may stay open for hours. ``gc`` keeps unreferenced objects younger
than its grace period, which alone does not protect such a writer. So every write holds a
*lease*: a file ``tmp/lease-<random>`` created when the write starts and locked (``flock``,
exclusive) for as long as it runs. ``gc`` treats the oldest live lease's creation time as a
floor: no object or temporary file modified after it is removed. The kernel drops the lock when
the writer's process dies, so a killed writer's lease is recognised as stale (it can be locked
by ``gc``) and removed; it protects nothing after that.

Objects a write reuses instead of writing (content dedup) get their modification time refreshed
(``Store.touch``), so they too are newer than the lease.
"""

from __future__ import annotations

import fcntl
import os
import uuid

__all__ = ["WriteLease", "oldest_live_lease"]

PREFIX = "lease-"


class WriteLease:
    """An exclusive lock file under ``tmp_dir`` held while one table write runs."""

    def __init__(self, tmp_dir: str) -> None:
        os.makedirs(tmp_dir, exist_ok=True)
        token = uuid.uuid4().hex
        self.path = os.path.join(tmp_dir, f"{PREFIX}{token}")
        # Locked under a name gc ignores, then renamed: gc never sees an unlocked live lease.
        pending = os.path.join(tmp_dir, f"pending-{token}")
        self._fd: int | None = os.open(pending, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        os.rename(pending, self.path)

    def release(self) -> None:
        """Remove the lease (idempotent)."""
        if self._fd is None:
            return
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        os.close(self._fd)  # closing drops the lock
        self._fd = None

    def __del__(self) -> None:
        self.release()


def oldest_live_lease(tmp_dir: str) -> float | None:
    """Creation time (the file's mtime) of the oldest lease whose writer is alive, or None.
    Stale leases (their lock is free: the writer died) are removed on the way."""
    try:
        names = [n for n in os.listdir(tmp_dir) if n.startswith(PREFIX)]
    except FileNotFoundError:
        return None
    oldest: float | None = None
    for name in names:
        path = os.path.join(tmp_dir, name)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue  # released meanwhile
        try:
            when = os.fstat(fd).st_mtime
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # held: a live writer
                oldest = when if oldest is None else min(oldest, when)
                continue
            try:  # we got the lock: its writer is gone
                os.unlink(path)
            except FileNotFoundError:
                pass
        finally:
            os.close(fd)
    return oldest
