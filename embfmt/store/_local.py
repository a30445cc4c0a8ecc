"""A Store on the local filesystem: ``objects/<2 hex>/<62 hex>``, written atomically."""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager

import numpy as np

from .. import _fs
from .. import _layout as L
from ..errors import ConflictError, ErrorKind, FormatError, NotFoundError
from .abc import Store, WriteBatch

__all__ = ["LocalStore", "LocalBatch", "open_regular", "read_bounded", "real_dir", "remove_entries"]

# Opened for reading with O_NOFOLLOW (a symlink in place of a repository file is refused, never
# followed out of the repository: to /dev/zero, another disk, a secret) and O_NONBLOCK (the
# open of a FIFO returns at once instead of waiting for a writer; fstat then refuses it).
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


def open_regular(path: str, what: str, *, dir_fd: int | None = None) -> tuple[int, int]:
    """Open ``path`` for reading only if it is a regular file: ``(fd, size)``. A symlink, FIFO,
    device, socket or directory in its place is a :class:`FormatError` (``not-a-file``);
    a missing file raises :class:`FileNotFoundError` (the caller knows what that means)."""
    try:
        fd = os.open(path, _READ_FLAGS, dir_fd=dir_fd)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise FormatError(f"{what} {path} is a symbolic link; the repository keeps regular files "
                              "there and never follows links out of it", ErrorKind.NOT_A_FILE) from None
        if e.errno in (errno.EISDIR, errno.ENXIO):  # (ENOTDIR: a parent is a file, i.e. missing)
            raise FormatError(f"{what} {path} is not a regular file", ErrorKind.NOT_A_FILE) from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise FormatError(f"{what} {path} is not a regular file (mode {stat.filemode(st.st_mode)})",
                              ErrorKind.NOT_A_FILE)
        if getattr(os, "O_NONBLOCK", 0):  # a regular file: plain blocking reads from here on
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd, st.st_size


def real_dir(path: str, what: str) -> bool:
    """Whether directory ``path`` exists, refusing (:class:`ConflictError`, ``unsafe-path``) a
    symbolic link or a non-directory in its place: writes and deletes inside it would land
    outside the repository (gc would delete files there)."""
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    if stat.S_ISDIR(st.st_mode):
        return True
    kind = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a directory"
    raise ConflictError(f"{what} {path} is {kind}: embfmt never writes or deletes through it, "
                        "so that nothing outside the repository is touched; make it a plain "
                        "directory", ErrorKind.UNSAFE_PATH)


#: A write lease is created as ``tmp/pending-<token>``, locked, then renamed to ``lease-<token>``
#: (so gc never sees an unlocked live lease). Between its lock and its rename the pending file is a
#: live lease under another name: gc keeps a pending file whose lock is held (spec §18.4 rule 2)
#: and may remove one whose lock is free (a dead writer's, or one in the instant between create
#: and lock: that writer finds its file gone at the rename and retries under a new name).
PENDING_PREFIX = "pending-"


def remove_entries(path: str, what: str, older_than: float | None = None,
                   keep: set[str] | frozenset[str] = frozenset()) -> int:
    """Delete the entries of directory ``path`` whose names are not in ``keep`` and (with
    ``older_than``) whose own modification time is not later; returns the bytes freed.

    ``path`` must be a plain directory (:func:`real_dir`); it is opened without following a
    link and entries are removed relative to it, so nothing outside it is touched: a link
    among them is removed itself, never its target, and directories are left alone."""
    if not real_dir(path, what):
        return 0
    freed = 0
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_NOFOLLOW", 0))
    try:
        with os.scandir(fd) as it:
            entries = [e for e in it if e.name not in keep]
        for e in entries:
            try:
                st = e.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode) or (older_than is not None and st.st_mtime > older_than):
                    continue
                _fs.unlink_at(fd, e.name, os.path.join(path, e.name))
                freed += st.st_size
            except FileNotFoundError:
                continue
    finally:
        os.close(fd)
    return freed


def _read_fd(fd: int, size: int) -> bytes:
    """Up to ``size`` bytes (fewer if the file shrank under us)."""
    parts = []
    while size > 0:
        b = os.read(fd, min(size, 1 << 24))
        if not b:
            break
        parts.append(b)
        size -= len(b)
    return b"".join(parts) if len(parts) != 1 else parts[0]


def read_bounded(path: str, limit: int, what: str, *, dir_fd: int | None = None,
                 kind: ErrorKind = ErrorKind.BAD_FILE) -> bytes:
    """The bytes of regular file ``path``, refused (``kind``) before reading when it holds more
    than ``limit`` bytes: a damaged or hostile repository never makes a reader allocate more
    than the spec's limit for that file (spec §19)."""
    fd, size = open_regular(path, what, dir_fd=dir_fd)
    try:
        if size > limit:
            raise FormatError(f"{what} {path} is {size} bytes, more than its limit of {limit}", kind)
        data = _read_fd(fd, limit + 1)  # +1: a file that grew past the limit since fstat
        if len(data) > limit:
            raise FormatError(f"{what} {path} is more than its limit of {limit} bytes", kind)
        return data
    finally:
        os.close(fd)

# How long a refresh or a deletion waits for the objects lock. gc holds it for one stat and one
# unlink at a time, so a wait this long means a stopped process, never a busy one.
OBJECTS_LOCK_TIMEOUT_S = 30.0


class LocalStore(Store):
    """Objects as files under ``root/objects``; temp files under ``root/tmp``.

    A put writes a uniquely named temp file and links it into place, so a reader (or a process
    killed mid-write) never sees a partial object. With ``durable`` (the default), a name in
    ``objects/`` is only ever published after its file's data is on stable storage, and
    :meth:`WriteBatch.sync` makes the names of a batch durable (spec §18.6): a commit syncs
    its batch before it moves a ref.
    """

    def __init__(self, root: str, *, durable: bool = True) -> None:
        self.root = root
        self.objects = os.path.join(root, "objects")
        self.tmp = os.path.join(root, "tmp")
        self.durable = durable
        self._dirs: set[str] = set()

    def path(self, oid: bytes) -> str:
        h = oid.hex()
        return os.path.join(self.objects, h[:2], h[2:])

    def get(self, oid: bytes, max_size: int | None = None) -> bytes:
        try:
            return read_bounded(self.path(oid), L.MAX_OBJECT_BYTES if max_size is None else max_size,
                                f"object {oid.hex()}", kind=ErrorKind.BAD_OBJECT)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFoundError(f"object {oid.hex()} is missing from {self.objects}") from None

    def _open(self, oid: bytes) -> tuple[int, int]:
        try:
            return open_regular(self.path(oid), f"object {oid.hex()}")
        except (FileNotFoundError, NotADirectoryError):
            raise NotFoundError(f"object {oid.hex()} is missing from {self.objects}") from None

    def get_buffer(self, oid: bytes, alloc: Callable[[int], np.ndarray] | None = None) -> bytes | memoryview:
        """Read into ``alloc(size)``: decoders reuse one buffer per chain level instead of a fresh
        bytes object per object, whose pages the kernel must fault in and zero every time
        (measured: 0.55 -> 0.46 ms for the 1.4 MiB of a three-object delta chain). Files are
        read, not memory-mapped: a mapped file that shrinks under the reader (damage from
        outside) would kill the process with SIGBUS instead of raising an error."""
        if alloc is None:
            return self.get(oid)
        fd, size = self._open(oid)
        with open(fd, "rb", buffering=0) as f:
            if size > L.MAX_OBJECT_BYTES:  # checked before allocating a buffer of its size
                raise FormatError(f"object {oid.hex()} is {size} bytes, more than any object may be "
                                  f"({L.MAX_OBJECT_BYTES})", ErrorKind.BAD_OBJECT)
            view = memoryview(alloc(size)).cast("B")  # type: ignore[arg-type]  # numpy's stubs: ndarray.__buffer__ on 3.12+ only
            done = 0
            while done < size:  # a short read: the file shrank, or a signal interrupted us
                n = f.readinto(view[done:])
                if not n:
                    break
                done += n
            return view[:done]

    def get_range(self, oid: bytes, offset: int, length: int) -> bytes:
        fd, _ = self._open(oid)
        try:
            return os.pread(fd, length, offset)
        finally:
            os.close(fd)

    def get_prefix(self, oid: bytes, length: int) -> tuple[bytes, int]:
        # One open, one fstat, one read: headers of many objects are read in tight loops.
        fd, size = self._open(oid)
        try:
            return os.read(fd, length), size
        finally:
            os.close(fd)

    def has(self, oid: bytes) -> bool:
        return os.path.exists(self.path(oid))

    def size(self, oid: bytes) -> int:
        try:
            return os.stat(self.path(oid)).st_size
        except FileNotFoundError:
            raise NotFoundError(f"object {oid.hex()} is missing from {self.objects}") from None

    def mtime(self, oid: bytes) -> float:
        try:
            return os.stat(self.path(oid)).st_mtime
        except FileNotFoundError:
            return 0.0

    @contextmanager
    def _objects_lock(self, exclusive: bool) -> Iterator[None]:
        """A ``flock`` on the ``objects/`` directory itself (no lock file to create or leave
        behind; spec §18.4): shared while a writer refreshes an object, exclusive while gc
        checks an object's age and deletes it, so the two never interleave."""
        try:
            fd = os.open(self.objects, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except FileNotFoundError:  # no objects yet: nothing to refresh or delete
            yield
            return
        try:
            mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
            deadline = time.monotonic() + OBJECTS_LOCK_TIMEOUT_S
            while True:
                try:
                    fcntl.flock(fd, mode)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise ConflictError(f"timed out after {OBJECTS_LOCK_TIMEOUT_S:.0f} s waiting "
                                            f"for the lock on {self.objects} (a stopped gc?)",
                                            ErrorKind.LOCKED) from None
                    time.sleep(0.001)
            yield
        finally:
            os.close(fd)  # drops the lock

    def touch(self, oid: bytes) -> bool:
        # Under the shared objects lock: gc's age check and unlink of this object happen either
        # wholly before (then utime fails: the object is gone, and we say so) or wholly after
        # (then gc sees the new time and keeps it). Without the lock, gc could read the old
        # time, we refresh and report the object present, and gc unlinks it anyway.
        p = self.path(oid)
        with self._objects_lock(exclusive=False):
            try:
                os.utime(p)
                return True
            except FileNotFoundError:
                return False
            except PermissionError:  # a repository we may read but not write
                return os.path.exists(p)

    def delete_if_older(self, oid: bytes, cutoff: float) -> int:
        """Remove ``oid`` if its modification time is at most ``cutoff``, atomically with
        respect to :meth:`touch` (see there); returns the bytes freed (0: kept or absent)."""
        p = self.path(oid)
        self._check_dirs(os.path.dirname(p))
        with self._objects_lock(exclusive=True):
            try:
                st = os.lstat(p)  # a link in its place is removed, never what it points to
                if st.st_mtime > cutoff:
                    return 0
                _fs.unlink(p)
                return st.st_size
            except FileNotFoundError:
                return 0

    def put(self, oid: bytes, data: bytes | memoryview | list[bytes | memoryview]) -> bool:
        """Store one object; when durable, it is on stable storage when this returns (one
        write, up to two fsyncs). Writers of many objects use :meth:`batch` instead."""
        dest = self.path(oid)
        # exists: keep its bytes, refresh its age for gc (the cheap probe first: a new object
        # needs no lock)
        if os.path.exists(dest) and self.touch(oid):
            return False
        self._prepare(dest)
        wrote = self._publish(self._write_tmp(oid, data), dest)
        if self.durable:
            _fs.fsync_dirs([os.path.dirname(dest), self.objects])
        return wrote

    def batch(self) -> LocalBatch:
        return LocalBatch(self)

    def _prepare(self, dest: str) -> None:
        d = os.path.dirname(dest)
        if d not in self._dirs:  # 256 fan-out dirs: stat them once per process, not per object
            self._check_dirs(d)
            _fs.makedirs(d, durable=self.durable)
            _fs.makedirs(self.tmp, durable=self.durable)
            self._check_dirs(d)  # made by someone else meanwhile: the same checks
            self._dirs.add(d)

    def _check_dirs(self, fanout: str | None = None) -> None:
        """``tmp/``, ``objects/`` and a fan-out directory must be plain directories of the
        repository, never symlinks out of it (checked before writing or deleting there)."""
        real_dir(self.tmp, "temp directory")
        real_dir(self.objects, "object directory")
        if fanout is not None:
            real_dir(fanout, "object directory")

    @property
    def scratch_dir(self) -> str:
        return self.tmp

    def check_layout(self) -> None:
        """Every directory a garbage collection deletes in (``tmp/``, ``objects/`` and its
        fan-out directories) is a plain directory, before anything is deleted."""
        self._check_dirs()
        if os.path.isdir(self.objects):
            for d in os.listdir(self.objects):
                real_dir(os.path.join(self.objects, d), "object directory")

    def _write_tmp(self, oid: bytes, data: bytes | memoryview | list[bytes | memoryview]) -> str:
        tmp = os.path.join(self.tmp, f"{oid.hex()[:16]}.{uuid.uuid4().hex}")
        _fs.write_new(tmp, data, sync=False)
        return tmp

    def _publish(self, tmp: str, dest: str) -> bool:
        """Make the temp file ``tmp`` the object ``dest``: fsync its data first when durable
        (a name in objects/ must never outlive its data: after a power loss, a later commit
        would reuse an empty object under a valid name), then link it into place."""
        try:
            if self.durable:
                _fs.fsync_file(tmp)
            # Publish with link(), which fails when the id exists: a concurrent writer of the
            # same id may have encoded the same content differently (full vs delta, another
            # base), and replacing its object would change the delta depths that objects based
            # on it rely on.
            try:
                _fs.link(tmp, dest)
            except FileExistsError:
                return False
            except OSError as e:  # pragma: no cover - file systems without hard links
                if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                    raise
                _fs.replace(tmp, dest)
                return True
            return True
        finally:
            try:
                _fs.unlink(tmp)
            except FileNotFoundError:
                pass

    def delete(self, oid: bytes) -> int:
        """Remove one object; the caller fsyncs its directory (:meth:`sync_deletions`)."""
        p = self.path(oid)
        self._check_dirs(os.path.dirname(p))
        try:
            n = os.lstat(p).st_size  # a link in its place is removed, never what it points to
            _fs.unlink(p)
            return n
        except FileNotFoundError:
            return 0

    def sync_deletions(self, oids: list[bytes]) -> None:
        """Make the removal of ``oids`` durable (each fan-out directory fsynced once)."""
        if self.durable and oids:
            _fs.fsync_dirs(os.path.dirname(self.path(o)) for o in oids)

    def iter(self) -> Iterator[bytes]:
        if not os.path.isdir(self.objects):
            return
        for d in sorted(os.listdir(self.objects)):
            sub = os.path.join(self.objects, d)
            if len(d) != 2 or not os.path.isdir(sub):
                continue
            for name in os.listdir(sub):
                if len(name) == 62:
                    try:
                        yield bytes.fromhex(d + name)
                    except ValueError:
                        continue

    def iter_prefix(self, hex_prefix: str) -> Iterator[bytes]:
        """Ids starting with ``hex_prefix`` (at least 2 hex digits)."""
        sub = os.path.join(self.objects, hex_prefix[:2])
        if not os.path.isdir(sub):
            return
        rest = hex_prefix[2:]
        for name in os.listdir(sub):
            if name.startswith(rest) and len(name) == 62:
                yield bytes.fromhex(hex_prefix[:2] + name)

    def tmp_files(self) -> Iterator[tuple[str, int, float]]:
        """``(name, size, mtime)`` of each plain file under ``tmp/`` (temp objects, scratch
        files, leases)."""
        try:
            names = os.listdir(self.tmp)
        except FileNotFoundError:
            return
        for name in names:
            try:
                st = os.lstat(os.path.join(self.tmp, name))
            except FileNotFoundError:
                continue
            if stat.S_ISREG(st.st_mode):
                yield name, st.st_size, st.st_mtime

    def clean_tmp(self, older_than: float) -> int:
        """Remove temp files older than ``older_than`` (epoch seconds); returns bytes freed.

        ``tmp/`` itself must be a plain directory (else ``unsafe-path``); entries are looked at
        without following links (a link is removed, never its target) and directories in it
        are left alone (writers make none: not ours to delete). A lease still being created
        (``pending-*``) whose lock is held is kept whatever ``older_than`` says."""
        return remove_entries(self.tmp, "temp directory", older_than, self._held_pending())

    def _held_pending(self) -> set[str]:
        """Names of ``tmp/pending-*`` files whose lock a running writer holds."""
        if not real_dir(self.tmp, "temp directory"):
            return set()
        try:
            names = [n for n in os.listdir(self.tmp) if n.startswith(PENDING_PREFIX)]
        except FileNotFoundError:
            return set()
        held = set()
        for name in names:
            try:
                fd, _ = open_regular(os.path.join(self.tmp, name), "lease")
            except (FileNotFoundError, FormatError):
                continue  # renamed meanwhile, or not a regular file: no writer holds it
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                held.add(name)
            finally:
                os.close(fd)  # drops the lock if we took it
        return held


class LocalBatch(WriteBatch):
    """The objects one commit writes or reuses in a :class:`LocalStore`.

    When the store is durable, each object's temp file is fsynced and linked into place on a
    thread of :func:`embfmt._fs.io_pool` (the writer goes on encoding meanwhile), and
    :meth:`sync` waits for them and fsyncs each fan-out directory the batch wrote to or reused
    from once, plus ``objects/``: after it returns, every object of the batch survives a power
    loss (spec §18.6).
    """

    store: LocalStore

    def __init__(self, store: LocalStore) -> None:
        self.store = store
        self._futures: list[Future[bool]] = []
        self._dirs: set[str] = set()
        self._lock = threading.Lock()
        #: ids this batch linked into objects/ itself (not ones that existed already): what a
        #: failed commit may remove again (Maintenance.discard)
        self.published: list[bytes] = []

    def has(self, oid: bytes) -> bool:
        return self.store.has(oid)

    def touch(self, oid: bytes) -> bool:
        ok = self.store.touch(oid)
        if ok and self.store.durable:
            # A reused object may have been linked by a writer that has not synced its
            # directory yet; this commit depends on that name, so it syncs the directory too.
            with self._lock:
                self._dirs.add(os.path.dirname(self.store.path(oid)))
        return ok

    def put(self, oid: bytes, data: bytes | memoryview | list[bytes | memoryview]) -> bool:
        st = self.store
        dest = st.path(oid)
        # exists: keep its bytes, refresh its age for gc (the cheap probe first: a new object
        # needs no lock)
        if os.path.exists(dest) and self.touch(oid):
            return False
        st._prepare(dest)
        tmp = st._write_tmp(oid, data)
        if not st.durable:
            return self._linked(oid, st._publish(tmp, dest))
        fut = _fs.io_pool().submit(lambda: self._linked(oid, st._publish(tmp, dest)))
        with self._lock:
            self._futures.append(fut)
            self._dirs.add(os.path.dirname(dest))
        return True

    def _linked(self, oid: bytes, wrote: bool) -> bool:
        if wrote:
            with self._lock:
                self.published.append(oid)
        return wrote

    def wait(self) -> None:
        with self._lock:
            futures, self._futures = self._futures, []
        error: BaseException | None = None
        for f in futures:  # wait for all, then raise the first failure
            try:
                f.result()
            except BaseException as e:  # noqa: BLE001 - re-raised below
                error = error or e
        if error is not None:
            raise error

    def sync(self) -> None:
        if not self.store.durable:
            return
        with self._lock:
            dirs = set(self._dirs)
        self.wait()
        if dirs:
            _fs.fsync_dirs([*dirs, self.store.objects])
        with self._lock:
            self._dirs -= dirs

    def abandon(self) -> None:
        """Wait for the objects in flight (a failed commit must not go on writing after it
        returned); they stay as unreferenced objects, removed by gc."""
        with self._lock:
            futures, self._futures = self._futures, []
        for f in futures:
            try:
                f.result()
            except BaseException:  # noqa: BLE001 - the commit already failed
                pass
