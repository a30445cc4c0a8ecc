"""A repository's refs and reflog in memory: :class:`MemoryRefs`, for a :class:`embfmt.Repo`
on a :class:`~embfmt.store.MemoryStore` (``Repo.in_memory()``: tests, scratch work). It keeps
the rules of the local refs (names, compare-and-swap under a lock, a reflog entry before every
move) without a file, which shows what the layers above need of any ref storage.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ..errors import ConflictError, ErrorKind, FormatError, NotFoundError
from ..objects.names import check_ref_name
from .ref import LOCK_TIMEOUT_S, Refs
from .reflog import ZERO, ReflogEntry, now_utc

__all__ = ["MemoryRefs", "MemoryReflog"]


class MemoryReflog:
    """Reflog entries in memory, by ref, oldest first (nothing can be damaged)."""

    def __init__(self) -> None:
        self._logs: dict[str, list[ReflogEntry]] = {}

    def refs(self) -> list[str]:
        return sorted(self._logs)

    def append(self, ref: str, old: bytes | None, new: bytes | None, author: str, reason: str) -> None:
        log = self._logs.setdefault(ref, [])
        log.append(ReflogEntry(ref, old.hex() if old else ZERO, new.hex() if new else ZERO, now_utc(),
                               author, " ".join(reason.split()), len(log) + 1))

    def read(self, ref: str, problems: list[dict[str, str]] | None = None) -> list[ReflogEntry]:
        return list(self._logs.get(ref, []))

    def problems(self) -> list[dict[str, str]]:
        return []

    def missing(self, has: Callable[[bytes], bool]) -> list[dict[str, str]]:
        out: list[dict[str, str]] = []
        seen = {ZERO}
        for ref, log in sorted(self._logs.items()):
            for e in log:
                for x in (e.old, e.new):
                    if x not in seen:
                        seen.add(x)
                        if not has(bytes.fromhex(x)):
                            out.append({"object": f"reflog {ref}:{e.line}", "kind": ErrorKind.MISSING_OBJECT.value,
                                        "error": f"commit {x}, which {ref} held on {e.time} ({e.reason}), is missing"})
        return out

    def commits_named(self, cutoff: float | None = None) -> set[bytes]:
        out = {bytes.fromhex(x) for log in self._logs.values() for e in log
               if cutoff is None or e.epoch >= cutoff for x in (e.old, e.new)}
        out.discard(bytes(32))
        return out

    def expire(self, cutoff: float) -> int:
        dropped = 0
        for ref, log in self._logs.items():
            keep = [e for e in log if cutoff != float("inf") and e.epoch >= cutoff]
            dropped += len(log) - len(keep)
            self._logs[ref] = keep
        return dropped


class MemoryRefs(Refs):
    """Branches, tags, HEAD and their reflog in memory, under a process-local lock."""

    durable = False

    def __init__(self, default_branch: str = "main") -> None:
        self._refs: dict[tuple[str, str], bytes] = {}
        self._head = check_ref_name(default_branch, "branch")
        self._lock = threading.RLock()
        self.reflog = MemoryReflog()
        self.author: Callable[[], str] = lambda: "unknown"

    def read(self, kind: str, name: str) -> bytes | None:
        check_ref_name(name, "branch" if kind == "heads" else "tag")
        return self._refs.get((kind, name))

    def list(self, kind: str, errors: list[tuple[str, FormatError]] | None = None) -> dict[str, bytes]:
        return dict(sorted((n, v) for (k, n), v in self._refs.items() if k == kind))

    @contextmanager
    def locked(self, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
        if not self._lock.acquire(timeout=timeout):
            raise ConflictError(f"timed out after {timeout:.0f} s waiting for the ref lock", ErrorKind.LOCKED)
        try:
            yield
        finally:
            self._lock.release()

    def cas(self, kind: str, name: str, expected: bytes | None, new: bytes, *,
            reason: str = "update", author: str | None = None) -> None:
        cur = self.read(kind, name)
        if cur != expected:
            raise ConflictError(f"{kind[:-1] if kind == 'heads' else 'tag'} {name!r} moved: expected "
                                f"{expected.hex()[:12] if expected else '(none)'}, found "
                                f"{cur.hex()[:12] if cur else '(none)'}")
        self.reflog.append(f"{kind}/{name}", cur, new, author or self.author(), reason)
        self._refs[(kind, name)] = new

    def delete(self, kind: str, name: str, *, reason: str = "delete", author: str | None = None) -> None:
        cur = self.read(kind, name)
        if cur is None:
            raise NotFoundError(f"no {kind} ref {name!r}")
        self.reflog.append(f"{kind}/{name}", cur, None, author or self.author(), reason)
        del self._refs[(kind, name)]

    def head_branch(self) -> str:
        return self._head

    def set_head_branch(self, name: str, *, reason: str | None = None) -> None:
        check_ref_name(name, "branch")
        if reason is not None:
            self.reflog.append("HEAD", self.read("heads", self._head), self.read("heads", name),
                               self.author(), reason)
        self._head = name
