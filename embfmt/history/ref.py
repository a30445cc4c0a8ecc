"""Branches, tags and HEAD, with atomic compare-and-swap updates (spec §17).

A ref is a file ``refs/heads/<name>`` or ``refs/tags/<name>`` holding 64 lowercase hex digits
and a newline. Updates take an exclusive ``flock`` on ``refs/.lock`` (the kernel releases it
when a process dies, so a killed writer never leaves a stale lock), re-read the ref, compare it
with what the caller expects, and replace it with ``os.replace`` of a fully written temp file.
"""

from __future__ import annotations

import fcntl
import os
import re
import stat
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from .. import _fs
from .. import _layout as L
from ..errors import ConflictError, ErrorKind, FormatError, InputError, NotFoundError
from ..objects.names import check_ref_name
from .reflog import Reflog
from ..store import read_bounded

__all__ = ["Refs", "RefStore", "check_ref_name"]

_HEX64 = re.compile(rb"[0-9a-f]{64}\n\Z")
# Temp files of refs as older versions named them ("<name>.tmp.<uuid4 hex>").
_LEGACY_TMP = re.compile(r"\.tmp\.[0-9a-f]{32}\Z")
LOCK_TIMEOUT_S = 30.0
REF_BYTES = 65  # 64 hex digits and a newline (spec §17)
HEAD_BYTES = len("ref: refs/heads/\n") + L.MAX_REF_NAME * 4  # a name of 200 characters of UTF-8


class Refs(ABC):
    """Branches, tags, ``HEAD`` and the reflog of a repository: all a repository needs of them.

    An implementation keeps refs as 32-byte commit ids under ``heads/<name>`` and
    ``tags/<name>``, moves them only by compare-and-swap (:meth:`cas`, :meth:`delete`) while
    :meth:`locked` is held, and logs every move in :attr:`reflog` before the move. The local
    one is :class:`RefStore` (files, spec §17); :class:`~embfmt.history.memory.MemoryRefs`
    keeps them in memory; object storage does it with conditional writes (spec/objstore-v1.md).
    """

    durable: bool
    #: who a reflog entry names when the caller gives no author (the Repo sets its default)
    author: Callable[[], str]
    #: the moves of every ref (``refs``, ``read``, ``problems``, ``missing``, ``commits_named``,
    #: ``expire``: see :class:`~embfmt.history.reflog.Reflog`)
    reflog: Any

    @abstractmethod
    def read(self, kind: str, name: str) -> bytes | None:
        """The commit ``kind/name`` holds (``kind``: heads or tags), None if it does not exist."""

    @abstractmethod
    def list(self, kind: str, errors: list[tuple[str, FormatError]] | None = None) -> dict[str, bytes]:
        """Every ref of ``kind``: name -> commit id (a damaged one raises, or goes to ``errors``)."""

    @abstractmethod
    def locked(self, timeout: float = LOCK_TIMEOUT_S) -> AbstractContextManager[None]:
        """Hold the ref lock: every ref move of every process is serialised by it."""

    @abstractmethod
    def cas(self, kind: str, name: str, expected: bytes | None, new: bytes, *,
            reason: str = "update", author: str | None = None) -> None:
        """Set ``kind/name`` to ``new`` if it holds ``expected`` (None: absent), else
        :class:`ConflictError`; logged first. Call with :meth:`locked` held."""

    @abstractmethod
    def delete(self, kind: str, name: str, *, reason: str = "delete", author: str | None = None) -> None:
        """Remove ``kind/name`` (:class:`NotFoundError` if absent); logged first."""

    @abstractmethod
    def head_branch(self) -> str:
        """The branch ``HEAD`` names (a damaged HEAD raises :class:`FormatError` ``bad-ref``)."""

    @abstractmethod
    def set_head_branch(self, name: str, *, reason: str | None = None) -> None:
        """Point ``HEAD`` at branch ``name`` (logged in ``HEAD``'s reflog with ``reason``)."""

    def sync(self) -> None:
        """Make every ref durable before gc deletes anything (a no-op where writes are)."""


class RefStore(Refs):
    """Refs of one repository."""

    def __init__(self, root: str, *, durable: bool = True) -> None:
        self.root = root
        self.refs = os.path.join(root, "refs")
        self.durable = durable
        self.reflog = Reflog(root, durable=durable)
        #: who a reflog entry names when the caller gives no author (the Repo sets its default)
        self.author: Callable[[], str] = lambda: "unknown"

    def _path(self, kind: str, name: str) -> str:
        check_ref_name(name, "branch" if kind == "heads" else "tag")
        return os.path.join(self.refs, kind, *name.split("/"))

    def read(self, kind: str, name: str) -> bytes | None:
        """The commit id a ref points to, or None when it does not exist."""
        p = self._path(kind, name)
        try:
            # Bounded, and never a symlink, FIFO or device (a FIFO would hang every read).
            data = read_bounded(p, REF_BYTES, f"ref {kind}/{name}", kind=ErrorKind.BAD_REF)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except FormatError:
            try:
                if stat.S_ISDIR(os.lstat(p).st_mode):  # refs named <name>/... exist, not <name>
                    return None
            except OSError:
                pass
            raise
        if not _HEX64.match(data):
            raise FormatError(f"ref {kind}/{name} ({p}) is corrupt: expected 64 hex digits and a "
                              f"newline, found {data[:80]!r}", ErrorKind.BAD_REF)
        return bytes.fromhex(data[:64].decode())

    def list(self, kind: str, errors: list[tuple[str, FormatError]] | None = None) -> dict[str, bytes]:
        """All refs of ``kind`` (``heads`` or ``tags``) by name.

        A corrupt ref raises :class:`FormatError` (``bad-ref``), or, when ``errors`` is given,
        is appended to it as ``("refs/<kind>/<name>", error)`` and skipped.
        """
        base = os.path.join(self.refs, kind)
        out: dict[str, bytes] = {}
        for dirpath, _dirs, files in os.walk(base):
            for f in files:
                if f.startswith(".") or _LEGACY_TMP.search(f):  # lock and temp files
                    continue
                name = os.path.relpath(os.path.join(dirpath, f), base).replace(os.sep, "/")
                try:
                    v = self.read(kind, name)
                except InputError:
                    continue
                except FormatError as e:
                    if errors is None:
                        raise
                    errors.append((f"refs/{kind}/{name}", e))
                    continue
                if v is not None:
                    out[name] = v
        return dict(sorted(out.items()))

    @contextmanager
    def locked(self, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
        """Hold the repository's ref lock (waits up to ``timeout`` seconds)."""
        lock = os.path.join(self.refs, ".lock")
        try:
            os.makedirs(self.refs, exist_ok=True)
            fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
        except OSError as e:  # a read-only repository: a typed error naming it
            raise _fs.storage_error(e, lock, "lock") from None
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise ConflictError(f"timed out after {timeout:.0f} s waiting for the ref "
                                            f"lock {self.refs}/.lock", ErrorKind.LOCKED) from None
                    time.sleep(0.005)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _write(self, kind: str, name: str, value: bytes,
               before_replace: Callable[[], None] | None = None) -> None:
        """Replace the ref's file; ``before_replace`` runs once everything that can refuse the
        update has passed, right before the new value is written (the reflog append: a
        refused update leaves no entry)."""
        p = self._path(kind, name)
        what = "branch" if kind == "heads" else "tag"
        try:
            _fs.makedirs(os.path.dirname(p), durable=self.durable)
        except (FileExistsError, NotADirectoryError):
            raise ConflictError(f"cannot create {what} {name!r}: a {what} named like one of its "
                                "leading segments exists", ErrorKind.REF_EXISTS) from None
        if os.path.isdir(p):
            raise ConflictError(f"cannot create {what} {name!r}: refs named {name}/... exist",
                                ErrorKind.REF_EXISTS)
        # The temp name starts with '.', which no ref name segment may: it can never be taken
        # for (or hide) a ref such as "x.tmp.1". The rename is atomic: a crash leaves the old
        # or the new value, never a mix; with durable, the new value is what a power loss
        # keeps once this returns (the file, then its directory, fsynced).
        if before_replace is not None:
            before_replace()
        _fs.write_atomic(p, value.hex().encode() + b"\n", durable=self.durable)

    def sync(self) -> None:
        """fsync every ref file and directory and HEAD: gc calls this before it deletes
        anything, so that the refs it walked, not older ones, are what a power loss keeps."""
        if not self.durable:
            return
        dirs = [self.root]
        for dirpath, _dirs, files in os.walk(self.refs):
            dirs.append(dirpath)
            for f in files:
                if not f.startswith("."):
                    _fs.fsync_file(os.path.join(dirpath, f))
        head = os.path.join(self.root, "HEAD")
        if os.path.exists(head):
            _fs.fsync_file(head)
        _fs.fsync_dirs(dirs)

    def cas(self, kind: str, name: str, expected: bytes | None, new: bytes, *,
            reason: str = "update", author: str | None = None) -> None:
        """Set ref to ``new`` if it currently equals ``expected`` (None: must not exist), and
        record the move in the reflog (spec §17.1). Call with :meth:`locked` held."""
        cur = self.read(kind, name)
        if cur != expected:
            raise ConflictError(f"{kind[:-1] if kind == 'heads' else 'tag'} {name!r} moved: expected "
                                f"{expected.hex()[:12] if expected else '(none)'}, found "
                                f"{cur.hex()[:12] if cur else '(none)'}")
        # Logged before the ref moves: a crash in between leaves an entry for a move that did
        # not happen (harmless: gc keeps a commit a while longer), never a move without one.
        who = author or self.author()
        self._write(kind, name, new, lambda: self.reflog.append(f"{kind}/{name}", cur, new, who, reason))

    def delete(self, kind: str, name: str, *, reason: str = "delete", author: str | None = None) -> None:
        """Remove a ref, recording it in the reflog (whose log stays: it keeps the old tip for
        gc until the entry expires). Call with :meth:`locked` held."""
        p = self._path(kind, name)
        cur = self.read(kind, name)
        if cur is None:
            raise NotFoundError(f"no {kind} ref {name!r}")
        self.reflog.append(f"{kind}/{name}", cur, None, author or self.author(), reason)
        try:
            _fs.unlink(p)
        except FileNotFoundError:
            raise NotFoundError(f"no {kind} ref {name!r}") from None
        if self.durable:
            _fs.fsync_dir(os.path.dirname(p))

    # HEAD names the current branch: "ref: refs/heads/<name>\n"
    def head_branch(self) -> str:
        """The branch HEAD names. A missing HEAD is damage, not "main": only ``init`` creates
        it, and guessing would read (and commit to) another branch than the user's (spec §17)."""
        p = os.path.join(self.root, "HEAD")
        try:
            raw = read_bounded(p, HEAD_BYTES, "HEAD", kind=ErrorKind.BAD_REF)
        except (FileNotFoundError, NotADirectoryError):
            raise FormatError(f"{p} is missing: it names the current branch (only `embfmt init` "
                              "creates it; `embfmt checkout BRANCH` writes it again)", ErrorKind.BAD_REF) from None
        data = raw.decode("utf-8", "replace")
        if not data.startswith("ref: refs/heads/") or not data.endswith("\n"):
            raise FormatError(f"{p} is corrupt: {data[:80]!r}", ErrorKind.BAD_REF)
        name = data[len("ref: refs/heads/"):-1]
        try:
            return check_ref_name(name, "branch")
        except InputError:  # the user did not type it: the file is damaged
            raise FormatError(f"{p} is corrupt: it names {name[:80]!r}, which is not a valid branch "
                              "name", ErrorKind.BAD_REF) from None

    def set_head_branch(self, name: str, *, reason: str | None = None) -> None:
        """Point HEAD at branch ``name``; with ``reason``, log the switch in ``logs/HEAD``
        (old and new: the two branches' tips). Call with :meth:`locked` held when logging."""
        check_ref_name(name, "branch")
        if reason is not None:
            try:
                old = self.read("heads", self.head_branch())
            except (FormatError, InputError):  # a damaged HEAD is being repaired by this switch
                old = None
            self.reflog.append("HEAD", old, self.read("heads", name), self.author(), reason)
        _fs.write_atomic(os.path.join(self.root, "HEAD"), f"ref: refs/heads/{name}\n".encode(),
                         durable=self.durable)
