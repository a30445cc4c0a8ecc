"""Refs, HEAD, logs and the repository marker on object storage, moved only by conditional
writes (spec/objstore-v1.md §4): the object-storage side of the small ref interface a Repo uses
(read, create-if-absent, compare-and-swap, list, delete, append), with no lock server.

Values are the bytes Part II gives the files (a ref is 64 hex digits and ``0A``; a reflog is lines
of canonical JSON); this module does not parse them. A deleted ref is a tombstone (64 zeros and
``0A``) that readers see as absent, because a plain delete could remove a ref a racing writer
just created in its place.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from .. import _layout as L
from ..errors import ConflictError, ErrorKind, FormatError, StorageError
from ._objstore import ObjectStore

__all__ = ["ObjectRefs", "RefValue", "TOMBSTONE", "REPO_MARKER", "REPO_MARKER_BYTES"]

#: a deleted ref (spec/objstore-v1.md §4): the zero id, as reflogs write "no commit"
TOMBSTONE = b"0" * 64 + b"\n"
REPO_MARKER = L.REPO_MARKER
#: the same bytes as a local repository's marker (spec §11)
REPO_MARKER_BYTES = json.dumps({"format": L.REPO_FORMAT_NAME, "version": L.REPO_FORMAT_VERSION}).encode() + b"\n"
# how often an append retries a lost race before giving up (each loss means another writer's
# append landed: progress, so this bounds only a pathological pile-up)
APPEND_RETRIES = 1000


@dataclass(frozen=True, slots=True)
class RefValue:
    """A ref key as read: ``data`` None when absent or deleted; ``version`` the ETag a
    compare-and-swap is conditioned on (None: no key at all, create it)."""

    data: bytes | None
    version: str | None


class ObjectRefs:
    """The mutable keys of one repository on object storage (``store`` with compare-and-swap)."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def _need_cas(self) -> None:
        if not self.store.supports_cas:
            raise StorageError(f"{self.store.url} has no compare-and-swap (If-Match): refs cannot move "
                               "there safely (spec/objstore-v1.md §5)", ErrorKind.UNSUPPORTED_BY_STORE)

    def read(self, key: str, max_size: int) -> RefValue:
        """The value and version of ``key`` (``refs/heads/main``, ``HEAD``, ``logs/...``)."""
        got = self.store.read_key(key, max_size)
        if got is None:
            return RefValue(None, None)
        return RefValue(None if got.data == TOMBSTONE else got.data, got.etag)

    def create(self, key: str, data: bytes) -> str:
        """Create ``key`` only if it is absent or deleted; :class:`ConflictError` (``ref-exists``)
        otherwise, including when a racing writer created it first. Returns the new version."""
        self._need_cas()
        for _ in range(APPEND_RETRIES):
            cur = self.read(key, 1 << 20)
            if cur.data is not None:
                raise ConflictError(f"{key} already exists in {self.store.url}", ErrorKind.REF_EXISTS)
            try:
                if cur.version is None:
                    return self.store.create_key(key, data)
                return self.store.swap_key(key, data, cur.version)  # over its tombstone
            except ConflictError:
                continue  # the key changed under us: look again (a tombstone removed, a ref made)
        raise ConflictError(f"{key} in {self.store.url} keeps changing; retry", ErrorKind.CONFLICT)

    def swap(self, key: str, data: bytes, version: str) -> str:
        """Replace ``key`` if it still has ``version``; :class:`ConflictError` (``conflict``)
        when another writer moved or deleted it since it was read. Returns the new version."""
        self._need_cas()
        return self.store.swap_key(key, data, version)

    def delete(self, key: str, version: str) -> str:
        """Delete ``key`` if it still has ``version`` (a tombstone, spec §4); returns the
        tombstone's version."""
        return self.swap(key, TOMBSTONE, version)

    def list(self, prefix: str) -> Iterator[str]:
        """Keys under ``prefix`` (``refs/heads/``), deleted ones included: a reader skips those
        whose :meth:`read` is absent."""
        return self.store.list_keys(prefix)

    def append(self, key: str, line: bytes, max_size: int) -> None:
        """Append ``line`` (ending in ``0A``) to log ``key`` by read-modify-write, retrying on a
        lost race (spec §4.1): appends commute. A last line cut short (no ``0A``) is dropped
        first, as spec §17.1 does for a file."""
        self._need_cas()
        if not line.endswith(b"\n"):
            raise FormatError("a log line must end in 0A", ErrorKind.BAD_ARGUMENT)
        for _ in range(APPEND_RETRIES):
            got = self.store.read_key(key, max_size)
            try:
                if got is None:
                    self.store.create_key(key, line)
                    return
                body = got.data
                if body and not body.endswith(b"\n"):
                    body = body[:body.rfind(b"\n") + 1]
                self.store.swap_key(key, body + line, got.etag)
                return
            except ConflictError:
                continue
        raise ConflictError(f"log {key} in {self.store.url} keeps changing; retry", ErrorKind.CONFLICT)

    # -- the repository itself ----------------------------------------------------------------
    def probe_conditional_writes(self) -> None:
        """Check that the store refuses a second create-if-absent and a stale compare-and-swap
        (spec/objstore-v1.md §1); :class:`StorageError` (``unsupported-by-store``) if not. The
        probe key is removed again."""
        self._need_cas()
        key = f"tmp/probe-{uuid.uuid4().hex}"
        first = self.store.create_key(key, b"1")
        try:
            try:
                self.store.create_key(key, b"2")
                ok_create = False
            except ConflictError:
                ok_create = True
            second = self.store.swap_key(key, b"3", first)
            try:
                self.store.swap_key(key, b"4", first)
                ok_swap = False
            except ConflictError:
                ok_swap = True
            if not (ok_create and ok_swap) or second == first:
                raise StorageError(f"{self.store.url} accepted a conditional write that must fail "
                                   f"(If-None-Match: {'ok' if ok_create else 'IGNORED'}, If-Match: "
                                   f"{'ok' if ok_swap else 'IGNORED'}): refs cannot move safely there",
                                   ErrorKind.UNSUPPORTED_BY_STORE)
        finally:
            self.store.delete_key(key)

    def is_repository(self) -> bool:
        """Whether the prefix holds a repository (its ``embfmt.json``); a marker of another
        format is ``bad-file``, of another version ``unsupported-version`` (spec §11)."""
        got = self.store.read_key(REPO_MARKER, 4096)
        if got is None:
            return False
        try:
            doc = json.loads(got.data)
        except ValueError:
            doc = None
        if not isinstance(doc, dict) or doc.get("format") != L.REPO_FORMAT_NAME:
            raise FormatError(f"{REPO_MARKER} of {self.store.url} is not an embfmt repository marker",
                              ErrorKind.BAD_FILE)
        if doc.get("version") != L.REPO_FORMAT_VERSION:
            raise FormatError(f"{self.store.url} is a repository of format version {doc.get('version')!r}; "
                              f"embfmt reads version {L.REPO_FORMAT_VERSION}", ErrorKind.UNSUPPORTED_VERSION)
        return True

    def init(self, head: bytes) -> None:
        """Create a repository: probe, ``HEAD`` (create-if-absent), then ``embfmt.json`` last
        (spec §4): of two racing inits one wins, the other gets ``ref-exists``."""
        self.probe_conditional_writes()
        if self.is_repository():
            raise ConflictError(f"{self.store.url} is a repository already", ErrorKind.REF_EXISTS)
        try:
            self.store.create_key("HEAD", head)
        except ConflictError:
            pass  # a racing init wrote it; the marker decides below
        self.store.create_key(REPO_MARKER, REPO_MARKER_BYTES)
