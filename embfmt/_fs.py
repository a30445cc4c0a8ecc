"""The file-system calls that change a repository, in one place (spec §18.6, Durability).

Every write of the object store, refs, ``HEAD``, the usage log, leases and every deletion of
gc goes through these few functions, so that one module decides what is fsynced and in which
order, and one hook (:data:`tracer`) can observe the exact sequence of changes: the power-loss
test (tests/history/test_power_loss.py) records it and replays every state a crash could leave.

Failures of the file system itself (read-only, permission denied, no space left) become a
:class:`~embfmt.errors.StorageError` naming the file and the repository, instead of a bare
``OSError`` with an empty file name.
"""

from __future__ import annotations

import errno
import os
import threading
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .errors import ConflictError, ErrorKind, StorageError

__all__ = ["tracer", "storage_error", "create", "write_new", "write_atomic", "fsync_fd",
           "fsync_file", "fsync_dir", "fsync_dirs", "makedirs", "link", "replace", "unlink",
           "unlink_at", "discard", "pwrite", "ftruncate", "io_pool"]

#: Set by tests to a callable ``(op, path, *args)`` that sees every change made through this
#: module, in the order it completed: ``create``, ``write`` (path, offset, bytes),
#: ``truncate`` (path, size), ``fsync`` (a file), ``fsync_dir``, ``mkdir``, ``link`` and
#: ``rename`` (src, dst), ``unlink``. None in normal use (one attribute check per call).
tracer: Callable[..., None] | None = None

# The marker file of a repository (embfmt/_layout.py REPO_MARKER; not imported, to keep this
# module free of the format tables: it only needs the name to find the repository of a path).
_MARKER = "embfmt.json"

_READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
# The device itself failed (a disk or network file system error): not the caller's input and
# not fixed by freeing space; the write did not happen, so the caller retries or moves on.
_DEVICE = (errno.EIO, errno.ENXIO, errno.ENODEV)


def _repo_of(path: str) -> str | None:
    d = os.path.dirname(os.path.abspath(path))
    for _ in range(64):
        if os.path.exists(os.path.join(d, _MARKER)):
            return d
        up = os.path.dirname(d)
        if up == d:
            return None
        d = up
    return None


def storage_error(e: OSError, path: str, doing: str = "write") -> OSError:
    """``e`` as a typed :class:`StorageError` when the file system refused the change (read-only,
    permission, space) or the device failed (I/O error); other errors (an existing file for an
    exclusive create, a missing one) come back unchanged for the caller, which expects them."""
    if isinstance(e, StorageError) or e.errno not in _READ_ONLY + _NO_SPACE + _DEVICE:
        return e
    repo = _repo_of(path)
    where = f" in repository {repo}" if repo else ""
    if e.errno in _READ_ONLY:
        reason = "read-only file system" if e.errno == errno.EROFS else "permission denied"
        msg = f"cannot {doing} {path}: {reason}"
        if repo:
            msg += (f": the repository {repo} is read-only for this process (reads work; commit, "
                    "tag, branch, reset, record-use and gc need write access)")
        kind = ErrorKind.READ_ONLY_REPOSITORY
    elif e.errno in _DEVICE:
        msg = (f"cannot {doing} {path}: {e.strerror or 'input/output error'} (the storage device "
               f"failed){where}; the change was not made")
        kind = ErrorKind.STORAGE_UNAVAILABLE
    else:
        reason = ("no space left on device" if e.errno != errno.EFBIG
                  else "file too large: no space left on device for it")
        msg = (f"cannot {doing} {path}: {reason}{where}; the change was not made. Free space and "
               "retry (`embfmt gc --status` lists what interrupted writes left behind)")
        kind = ErrorKind.NO_SPACE
    err = StorageError(msg, kind)
    err.errno, err.strerror, err.filename = e.errno, e.strerror, path
    return err


def _emit(op: str, *args: Any) -> None:
    t = tracer
    if t is not None:
        t(op, *args)


def _pieces(parts: bytes | memoryview | list[bytes | memoryview] | tuple[Any, ...]) -> list[memoryview]:
    seq = parts if isinstance(parts, (list, tuple)) else [parts]
    return [memoryview(x).cast("B") for x in seq]


def create(path: str, mode: int = 0o644, *, flags: int = os.O_WRONLY) -> int:
    """A new file (``O_EXCL``: never an existing one); returns the open descriptor."""
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, mode)
    except OSError as e:
        raise storage_error(e, path, "create") from None
    _emit("create", path)
    return fd


def _write_all(fd: int, path: str, parts: Any) -> None:
    views = _pieces(parts)
    want = sum(len(v) for v in views)
    try:
        done = os.writev(fd, views) if views else 0
        if done != want:  # short write (rare): finish piece by piece
            rest = b"".join(bytes(v) for v in views)[done:]
            while rest:
                n = os.write(fd, rest)
                if n <= 0:  # a device that accepts nothing: never spin on it
                    raise OSError(errno.EIO, "short write")
                rest = rest[n:]
    except OSError as e:
        raise storage_error(e, path) from None
    if tracer is not None:
        _emit("write", path, 0, b"".join(bytes(v) for v in views))


def fsync_fd(fd: int, path: str) -> None:
    """fsync an open file (its data and size)."""
    try:
        os.fsync(fd)
    except OSError as e:  # ENOSPC surfaces here on file systems that allocate late
        raise storage_error(e, path, "sync") from None
    _emit("fsync", path)


def write_new(path: str, parts: Any, *, sync: bool, mode: int = 0o644) -> None:
    """Create ``path`` (it must not exist) holding ``parts``; with ``sync``, fsync it before
    closing. On failure the partial file is removed, so a full disk leaves nothing behind."""
    fd = create(path, mode)
    try:
        _write_all(fd, path, parts)
        if sync:
            fsync_fd(fd, path)
    except BaseException:
        os.close(fd)
        _unlink_quiet(path)
        raise
    os.close(fd)


def _unlink_quiet(path: str) -> None:
    try:
        unlink(path)
    except (OSError, ConflictError):
        return


def discard(path: str) -> None:
    """Remove a temporary file of this process if it is there (best effort, never raises), as
    :func:`unlink` does: never through a symbolic link in place of its directory."""
    _unlink_quiet(path)


def write_atomic(path: str, data: bytes, *, durable: bool) -> None:
    """Replace ``path`` by a file holding ``data``: written to a temporary name in the same
    directory (starting with '.', which no ref or object name may), fsynced, renamed over
    ``path``, then the directory fsynced, so that the new content is what a power loss keeps
    once this returns. A reader sees the old content or the new one, never a mix."""
    d, base = os.path.split(path)
    tmp = os.path.join(d, f".{base}.tmp.{uuid.uuid4().hex}")
    write_new(tmp, data, sync=durable)
    try:
        replace(tmp, path)
    except BaseException:
        _unlink_quiet(tmp)
        raise
    if durable:
        fsync_dir(d)


def fsync_file(path: str) -> None:
    """fsync the file at ``path`` (opened read-only, which is enough on POSIX systems)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as e:
        raise storage_error(e, path, "sync") from None
    try:
        fsync_fd(fd, path)
    finally:
        os.close(fd)


def fsync_dir(path: str) -> None:
    """fsync a directory: its entries (names created, renamed or removed) become durable."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except FileNotFoundError:
        return  # removed meanwhile (gc of a concurrent process): nothing left to persist
    except OSError as e:
        raise storage_error(e, path, "sync") from None
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno != errno.EINVAL:  # some file systems cannot fsync directories
            raise storage_error(e, path, "sync") from None
    finally:
        os.close(fd)
    _emit("fsync_dir", path)


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()
# fsync waits on the device, not the CPU: enough threads to keep a device queue busy (the
# kernel merges concurrent fsyncs of one file system into few journal commits), independent of
# the core count.
IO_THREADS = 16


def io_pool() -> ThreadPoolExecutor:
    """The shared pool that runs fsyncs concurrently."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(IO_THREADS, thread_name_prefix="embfmt-sync")
        return _POOL


def fsync_dirs(paths: Iterable[str]) -> None:
    """fsync each distinct directory of ``paths`` once, concurrently."""
    todo = sorted(set(paths))
    if len(todo) <= 2:
        for p in todo:
            fsync_dir(p)
        return
    for f in [io_pool().submit(fsync_dir, p) for p in todo]:
        f.result()


def makedirs(path: str, *, durable: bool) -> list[str]:
    """Create ``path`` and missing parents; returns the directories created. With ``durable``,
    the parent of each created directory is fsynced, so the new names survive a power loss."""
    made: list[str] = []
    p = os.path.abspath(path)
    missing = []
    while not os.path.isdir(p):
        missing.append(p)
        up = os.path.dirname(p)
        if up == p:
            break
        p = up
    for d in reversed(missing):
        try:
            os.mkdir(d)
        except FileExistsError:
            if not os.path.isdir(d):
                raise
            continue
        except OSError as e:
            raise storage_error(e, d, "create directory") from None
        _emit("mkdir", d)
        made.append(d)
    if durable and made:
        fsync_dirs(os.path.dirname(d) for d in made)
    return made


def link(src: str, dst: str) -> None:
    """Hard-link ``src`` as ``dst`` (fails with FileExistsError when ``dst`` exists)."""
    try:
        os.link(src, dst)
    except FileExistsError:
        raise
    except OSError as e:
        raise storage_error(e, dst, "create") from None
    _emit("link", src, dst)


def replace(src: str, dst: str) -> None:
    """Rename ``src`` over ``dst`` (atomic)."""
    try:
        os.replace(src, dst)
    except OSError as e:
        raise storage_error(e, dst, "replace") from None
    _emit("rename", src, dst)


def unlink(path: str) -> None:
    """Remove a file (FileNotFoundError when it is already gone): the entry itself (a link in
    its place is removed, never its target), through its directory opened without following a
    link, so that a ``tmp/``, ``cache/`` or fan-out directory swapped for a symbolic link out
    of the repository is refused (``unsafe-path``, spec §19.1) instead of deleting there."""
    d, name = os.path.split(path)
    try:
        fd = os.open(d or ".", os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR):
            raise ConflictError(f"{d} is a symbolic link or not a directory: embfmt never deletes "
                                f"through it ({name} not removed)", ErrorKind.UNSAFE_PATH) from None
        raise storage_error(e, path, "remove") from None
    try:
        unlink_at(fd, name, path)
    finally:
        os.close(fd)


def unlink_at(dir_fd: int, name: str, path: str) -> None:
    """Remove entry ``name`` of the directory open as ``dir_fd`` (``path``: its full name, for
    errors and the tracer); the entry itself, never what a link there points to."""
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        raise
    except OSError as e:
        raise storage_error(e, path, "remove") from None
    _emit("unlink", path)


def pwrite(fd: int, data: bytes | memoryview, offset: int, path: str) -> None:
    """Write all of ``data`` at ``offset`` of an open file."""
    try:
        done = 0
        while done < len(data):
            n = os.pwrite(fd, data[done:], offset + done)
            if n <= 0:
                raise OSError(errno.EIO, "short write")
            done += n
    except OSError as e:
        raise storage_error(e, path) from None
    if tracer is not None:  # the copy only for the test that records it
        _emit("write", path, offset, bytes(data))


def ftruncate(fd: int, size: int, path: str) -> None:
    try:
        os.ftruncate(fd, size)
    except OSError as e:
        raise storage_error(e, path) from None
    _emit("truncate", path, size)
