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

Leases are never fsynced (spec §18.6): a lease protects a running writer from a concurrent gc,
and a power loss ends every writer, so a lease that a crash undoes or keeps protects nothing
either way (a kept one is stale, and gc removes it).
"""

from __future__ import annotations

import fcntl
import os
import uuid

from .. import _fs
from ..errors import ConflictError, FormatError
from ._local import PENDING_PREFIX, open_regular, real_dir
from .abc import Leases

__all__ = ["WriteLease", "LeaseDir", "oldest_live_lease", "scan_leases"]

PREFIX = "lease-"
_ATTEMPTS = 5


class WriteLease:
    """An exclusive lock file under ``tmp_dir`` held while one table write runs."""

    _fd: int | None = None  # set once the file exists: __del__ of a failed __init__ is a no-op

    def __init__(self, tmp_dir: str) -> None:
        real_dir(tmp_dir, "temp directory")  # never a lease (or objects) through a symlink
        _fs.makedirs(tmp_dir, durable=False)
        # Locked under a name gc keeps while its lock is held, then renamed: gc never sees an
        # unlocked live lease. In the instant between create and lock gc may remove the pending
        # file (it cannot tell it from a dead writer's): that costs a retry under a new name.
        for _attempt in range(_ATTEMPTS):
            token = uuid.uuid4().hex
            self.path = os.path.join(tmp_dir, f"{PREFIX}{token}")
            pending = os.path.join(tmp_dir, f"{PENDING_PREFIX}{token}")
            fd = _fs.create(pending, 0o600, flags=os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                _fs.replace(pending, self.path)
            except FileNotFoundError:
                os.close(fd)
                continue
            except BaseException:
                os.close(fd)
                _fs.discard(pending)
                raise
            self._fd = fd
            return
        raise ConflictError(f"cannot take a write lease in {tmp_dir}: its file was removed "
                            f"{_ATTEMPTS} times before it could be renamed (a concurrent cleaner of "
                            "tmp/ that ignores pending leases); nothing was written")

    def release(self) -> None:
        """Remove the lease (idempotent)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            _fs.unlink(self.path)
        except (FileNotFoundError, ConflictError):  # gone, or tmp/ swapped for a link: the lock
            pass  # drops with the descriptor, so gc removes the file as a dead writer's
        finally:
            os.close(fd)  # closing drops the lock

    def __del__(self) -> None:
        self.release()


def oldest_live_lease(tmp_dir: str, *, remove_stale: bool = True) -> float | None:
    """Creation time (the file's mtime) of the oldest lease whose writer is alive, or None.
    Stale leases (their lock is free: the writer died) are removed on the way, unless
    ``remove_stale`` is False (a status report changes nothing)."""
    return scan_leases(tmp_dir, remove_stale=remove_stale)[0]


def scan_leases(tmp_dir: str, *, remove_stale: bool = True) -> tuple[float | None, int, int]:
    """``(oldest live lease's creation time or None, live leases, stale leases)``."""
    if not real_dir(tmp_dir, "temp directory"):
        return None, 0, 0
    try:
        names = [n for n in os.listdir(tmp_dir) if n.startswith(PREFIX)]
    except FileNotFoundError:
        return None, 0, 0
    oldest: float | None = None
    live = stale = 0
    for name in names:
        path = os.path.join(tmp_dir, name)
        try:
            fd, _ = open_regular(path, "lease")
        except FileNotFoundError:
            continue  # released meanwhile
        except FormatError:
            continue  # a link, FIFO or directory named like a lease: no writer holds it
        try:
            when = os.fstat(fd).st_mtime
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # held: a live writer
                oldest = when if oldest is None else min(oldest, when)
                live += 1
                continue
            stale += 1
            if remove_stale:
                try:  # we got the lock: its writer is gone
                    _fs.unlink(path)
                except FileNotFoundError:
                    pass
        finally:
            os.close(fd)
    return oldest, live, stale


class LeaseDir(Leases):
    """The write leases of a local repository: lock files in its ``tmp/`` directory."""

    def __init__(self, tmp_dir: str) -> None:
        self.dir = tmp_dir

    def acquire(self) -> WriteLease:
        return WriteLease(self.dir)

    def scan(self, *, remove_stale: bool = True) -> tuple[float | None, int, int]:
        return scan_leases(self.dir, remove_stale=remove_stale)
