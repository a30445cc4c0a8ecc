"""A repository's refs, HEAD and reflog on object storage (spec/objstore-v1.md §4): the
:class:`~embfmt.history.ref.Refs` interface by conditional writes, with no lock.

Every move reads the ref's value and ETag, checks the value against what the caller expects,
appends the reflog entry (read-modify-write by compare-and-swap, retried: appends commute), then
replaces the ref with ``If-Match`` on the ETag read (``If-None-Match: *`` when it never existed).
Of racing moves from one value exactly one lands; every other one is a :class:`ConflictError`
and changes nothing but its (harmless) reflog entry. A deleted ref is a tombstone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext

from ..errors import ConflictError, ErrorKind, FormatError, NotFoundError
from ..objects.names import check_ref_name
from ..objects.table_version import canonical_json
from ..store import ObjectRefs, ObjectStore
from .ref import HEAD_BYTES, LOCK_TIMEOUT_S, REF_BYTES, Refs
from .reflog import LOG_DIR, MAX_AUTHOR_BYTES, MAX_LINE, MAX_REASON_CHARS, ZERO, Reflog, now_utc

__all__ = ["ObjectStoreRefs", "ObjectReflog"]

_HEX64 = re.compile(rb"[0-9a-f]{64}\n\Z")
_HEAD = re.compile(rb"ref: refs/heads/(.+)\n\Z")
#: a reflog key is read whole: bounded like any object (expiry keeps logs far smaller)
MAX_LOG_BYTES = 1 << 26


class ObjectReflog(Reflog):
    """The reflogs as keys ``logs/heads/<name>``, ``logs/tags/<name>``, ``logs/HEAD`` holding the
    bytes of spec §17.1's files; reading, verifying and gc's roots are the local reflog's."""

    def __init__(self, refs: ObjectRefs) -> None:
        self.root = ""
        self.dir = LOG_DIR  # path() gives keys relative to the repository's prefix
        self.durable = True  # an acknowledged write is durable on object storage
        self._refs = refs

    def refs(self) -> list[str]:
        out = []
        for key in sorted(self._refs.list(f"{LOG_DIR}/")):
            rest = key[len(LOG_DIR) + 1:]
            if rest == "HEAD":
                out.append("HEAD")
            else:
                kind, _, name = rest.partition("/")
                if kind in ("heads", "tags") and name and "/" not in name:
                    out.append(f"{kind}/{name.replace('%2F', '/')}")
        return out

    def append(self, ref: str, old: bytes | None, new: bytes | None, author: str, reason: str) -> None:
        reason = " ".join(reason.split())[:MAX_REASON_CHARS]
        author = author.encode("utf-8", "replace")[:MAX_AUTHOR_BYTES].decode("utf-8", "ignore")
        line = canonical_json({"author": author, "new": new.hex() if new else ZERO,
                               "old": old.hex() if old else ZERO, "reason": reason, "ref": ref,
                               "time": now_utc()}, "reflog entry")
        self._refs.append(self.path(ref), line + b"\n", MAX_LOG_BYTES)

    def _raw_lines(self, ref: str, problems: list[dict[str, str]],
                   torn: bool = False) -> list[tuple[int, bytes | None]]:
        got = self._refs.store.read_key(self.path(ref), MAX_LOG_BYTES)
        if got is None:
            return []
        parts = got.data.split(b"\n")
        last = parts.pop()  # b"" when the log ends in 0A; else an append cut short
        out: list[tuple[int, bytes | None]] = [(n, None if len(raw) > MAX_LINE else raw)
                                               for n, raw in enumerate(parts, 1)]
        if last and torn:
            out.append((len(parts) + 1, None if len(last) > MAX_LINE else last))
        return out

    def expire(self, cutoff: float) -> int:
        """As the local reflog's, each log rewritten by compare-and-swap on the version it read
        (re-read when a concurrent append landed meanwhile)."""
        from .reflog import _parse

        dropped = 0
        everything = cutoff == float("inf")
        for ref in self.refs():
            key = self.path(ref)
            while True:
                got = self._refs.store.read_key(key, MAX_LOG_BYTES)
                if got is None:
                    break
                keep, gone = [], 0
                for n, raw in enumerate(got.data.split(b"\n")[:-1], 1):
                    e = None if len(raw) > MAX_LINE else _parse(raw, ref, n)
                    if (e is None and not everything and len(raw) <= MAX_LINE) or (e is not None and e.epoch >= cutoff):
                        keep.append(raw)
                    else:
                        gone += 1
                if not gone:
                    break
                try:
                    self._refs.swap(key, b"".join(x + b"\n" for x in keep), got.etag)
                except ConflictError:
                    continue
                dropped += gone
                break
        return dropped


class ObjectStoreRefs(Refs):
    """Branches, tags, ``HEAD`` and their reflog on an :class:`~embfmt.store.ObjectStore` with
    compare-and-swap (spec/objstore-v1.md §4)."""

    durable = True

    def __init__(self, store: ObjectStore) -> None:
        self.objects = ObjectRefs(store)
        self.reflog = ObjectReflog(self.objects)
        self.author: Callable[[], str] = lambda: "unknown"

    @staticmethod
    def _key(kind: str, name: str) -> str:
        check_ref_name(name, "branch" if kind == "heads" else "tag")
        return f"refs/{kind}/{name}"

    def _value(self, key: str, data: bytes | None) -> bytes | None:
        if data is None:
            return None
        if not _HEX64.match(data):
            raise FormatError(f"ref {key} of {self.objects.store.url} is corrupt: expected 64 hex digits "
                              f"and a newline, found {data[:80]!r}", ErrorKind.BAD_REF)
        return bytes.fromhex(data[:64].decode())

    def read(self, kind: str, name: str) -> bytes | None:
        key = self._key(kind, name)
        return self._value(key, self.objects.read(key, REF_BYTES).data)

    def list(self, kind: str, errors: list[tuple[str, FormatError]] | None = None) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for key in self.objects.list(f"refs/{kind}/"):
            name = key[len(f"refs/{kind}/"):]
            try:
                v = self.read(kind, name)
            except FormatError as e:
                if errors is None:
                    raise
                errors.append((key, e))
                continue
            except Exception:  # noqa: BLE001 - a key that is no valid ref name: not ours
                continue
            if v is not None:
                out[name] = v
        return dict(sorted(out.items()))

    def locked(self, timeout: float = LOCK_TIMEOUT_S) -> AbstractContextManager[None]:
        """Nothing to hold: every move is a compare-and-swap of its own key, and gc keeps what
        running writers need by their leases (spec/objstore-v1.md §4, §6)."""
        return nullcontext()

    def cas(self, kind: str, name: str, expected: bytes | None, new: bytes, *,
            reason: str = "update", author: str | None = None) -> None:
        key = self._key(kind, name)
        # objects this change reuses are named in the live leases before any ref names them
        # (spec/objstore-v1.md §6; conflict when gc took one meanwhile)
        flush = getattr(self.objects.store, "flush_reuses", None)
        if flush is not None:
            flush()
        cur = self.objects.read(key, REF_BYTES)
        value = self._value(key, cur.data)
        if value != expected:
            raise ConflictError(f"{key} moved: expected {expected.hex()[:12] if expected else '(none)'}, "
                                f"found {value.hex()[:12] if value else '(none)'}")
        self.reflog.append(f"{kind}/{name}", value, new, author or self.author(), reason)
        data = new.hex().encode() + b"\n"
        try:
            if cur.version is None:
                self.objects.store.create_key(key, data)
            else:
                self.objects.swap(key, data, cur.version)
        except ConflictError:
            raise ConflictError(f"{key} in {self.objects.store.url} was moved by another writer "
                                "meanwhile; nothing changed, retry from the new value", ErrorKind.CONFLICT) from None

    def delete(self, kind: str, name: str, *, reason: str = "delete", author: str | None = None) -> None:
        key = self._key(kind, name)
        cur = self.objects.read(key, REF_BYTES)
        value = self._value(key, cur.data)
        if value is None or cur.version is None:
            raise NotFoundError(f"no {kind} ref {name!r}")
        self.reflog.append(f"{kind}/{name}", value, None, author or self.author(), reason)
        self.objects.delete(key, cur.version)

    def _head(self) -> tuple[str, str]:
        got = self.objects.read("HEAD", HEAD_BYTES)
        m = _HEAD.match(got.data or b"")
        if got.data is None or got.version is None or m is None:
            raise FormatError(f"HEAD of {self.objects.store.url} is missing or damaged "
                              f"({(got.data or b'')[:80]!r})", ErrorKind.BAD_REF)
        try:
            name = check_ref_name(m.group(1).decode("utf-8"), "branch")
        except (UnicodeDecodeError, Exception):  # noqa: BLE001 - a damaged HEAD, not the caller's name
            raise FormatError(f"HEAD of {self.objects.store.url} names no valid branch", ErrorKind.BAD_REF) from None
        return name, got.version

    def head_branch(self) -> str:
        return self._head()[0]

    def set_head_branch(self, name: str, *, reason: str | None = None) -> None:
        check_ref_name(name, "branch")
        old, version = self._head()
        if reason is not None:
            self.reflog.append("HEAD", self.read("heads", old), self.read("heads", name), self.author(), reason)
        self.objects.swap("HEAD", f"ref: refs/heads/{name}\n".encode(), version)

    def keys(self) -> Iterator[str]:
        return self.objects.list("refs/")
