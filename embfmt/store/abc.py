"""The Store interface: immutable blobs addressed by 32-byte content ids."""

from __future__ import annotations

import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Protocol

import numpy as np

__all__ = ["Store", "WriteBatch", "Lease", "Leases"]


class WriteBatch:
    """The objects one commit writes or reuses, made durable together by :meth:`sync`.

    A commit puts its objects through one batch and calls :meth:`sync` before it moves a ref
    (spec §18.6): stores that write to stable storage overlap the writes of a batch and wait
    once. This base class forwards to the store one call at a time (right for stores whose
    ``put`` is durable on return, or that keep nothing, such as a memory store).
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        #: ids this batch stored itself (not ones that existed already)
        self.published: list[bytes] = []

    def put(self, oid: bytes, data: bytes | memoryview | list[bytes | memoryview]) -> bool:
        """As :meth:`Store.put`; durable only after :meth:`sync`."""
        wrote = self.store.put(oid, data)
        if wrote:
            self.published.append(oid)
        return wrote

    def has(self, oid: bytes) -> bool:
        return self.store.has(oid)

    def touch(self, oid: bytes) -> bool:
        """As :meth:`Store.touch`; a reused object is part of the batch for :meth:`sync`."""
        return self.store.touch(oid)

    def wait(self) -> None:
        """Return once every object put so far is stored (readable by name), durable or not
        yet; raises the first failure."""

    def sync(self) -> None:
        """Return once every object put or touched so far is on stable storage."""

    def abandon(self) -> None:
        """The commit failed: stop (wait for writes in flight); what was written stays for gc."""


class Store(ABC):
    """Immutable blobs by content id.

    ``put`` is idempotent: writing an id that exists leaves the stored bytes untouched. A
    store never checks that the id matches the bytes; readers do (spec §12).
    """

    #: whether ``put`` of one object is atomic (never visible half-written)
    atomic_put: bool = True
    #: whether :meth:`touch` refreshes the age that :meth:`delete_if_older` looks at; where it
    #: does not (object storage), a writer protects reused objects through its write lease
    #: instead (spec/objstore-v1.md §6)
    touch_refreshes: bool = True

    @abstractmethod
    def get(self, oid: bytes, max_size: int | None = None) -> bytes:
        """The bytes of object ``oid``; raises :class:`~embfmt.errors.NotFoundError`, or
        :class:`~embfmt.errors.FormatError` (``bad-object``) without reading it when it holds
        more than ``max_size`` bytes (default: the limit for any object, spec §19)."""

    @abstractmethod
    def get_range(self, oid: bytes, offset: int, length: int) -> bytes:
        """At most ``length`` bytes of ``oid`` starting at ``offset``."""

    @abstractmethod
    def put(self, oid: bytes, data: bytes | memoryview | list[bytes | memoryview]) -> bool:
        """Store ``data`` (bytes, or a list of buffers to concatenate) under ``oid``; returns
        False when it already existed."""

    @abstractmethod
    def has(self, oid: bytes) -> bool:
        """Whether ``oid`` is stored."""

    @abstractmethod
    def size(self, oid: bytes) -> int:
        """Stored size in bytes of ``oid``."""

    @abstractmethod
    def delete(self, oid: bytes) -> int:
        """Remove ``oid``; returns the bytes freed (0 if absent)."""

    @abstractmethod
    def iter(self) -> Iterator[bytes]:
        """Every stored id, in no particular order."""

    def batch(self) -> WriteBatch:
        """A :class:`WriteBatch` for the objects of one commit."""
        return WriteBatch(self)

    def get_buffer(self, oid: bytes, alloc: Callable[[int], np.ndarray] | None = None) -> bytes | memoryview:
        """The bytes of ``oid``; with ``alloc`` (n -> a writable uint8 array of n bytes), a store
        may read them into that array instead of allocating (the result is then a view of it,
        valid until the array is reused)."""
        return self.get(oid)

    def get_prefix(self, oid: bytes, length: int) -> tuple[bytes, int]:
        """The first ``length`` bytes of ``oid`` (or all of it) and its total size."""
        return self.get_range(oid, 0, length), self.size(oid)

    def touch(self, oid: bytes) -> bool:
        """Mark ``oid`` as just written, so that a garbage collection running now keeps it for
        its grace period; returns whether ``oid`` is stored. A writer that reuses an existing
        object instead of writing it calls this (``put`` of an existing id does it too)."""
        return self.has(oid)

    def delete_if_older(self, oid: bytes, cutoff: float) -> int:
        """Remove ``oid`` if it was last written or refreshed (:meth:`touch`) at or before
        ``cutoff`` (epoch seconds); returns the bytes freed. Garbage collection deletes
        through this: a store where a concurrent :meth:`touch` can interleave with the check
        and the removal MUST override it to make the two atomic (spec §18.4)."""
        if self.mtime(oid) > cutoff:
            return 0
        return self.delete(oid)

    def mtime(self, oid: bytes) -> float:
        """When ``oid`` was written (seconds since the epoch); 0 where unknown."""
        return 0.0

    def iter_prefix(self, hex_prefix: str) -> Iterator[bytes]:
        """The stored ids whose hex form starts with ``hex_prefix`` (revision prefixes)."""
        return (oid for oid in self.iter() if oid.hex().startswith(hex_prefix))

    def check_layout(self) -> None:
        """Refuse (``unsafe-path``) a layout in which deleting would reach outside the store;
        called by gc before it deletes anything. Nothing to check where nothing is a path."""

    def sync_deletions(self, oids: list[bytes]) -> None:
        """Make the deletion of ``oids`` durable (a no-op where deletions are at once)."""

    @property
    def scratch_dir(self) -> str:
        """A local directory for a streaming writer's scratch file (rows written ahead wait
        there until the rows before them are in)."""
        return tempfile.gettempdir()

    def clean_tmp(self, cutoff: float) -> int:
        """Remove temporary files last changed at or before ``cutoff``; returns the bytes freed."""
        return 0

    def tmp_files(self) -> Iterator[tuple[str, int, float]]:
        """``(name, size, mtime)`` of every temporary file (``gc --status``)."""
        return iter(())


class Lease(Protocol):
    """A held write lease: gc keeps everything written or refreshed after it was taken."""

    def release(self) -> None: ...


class Leases(ABC):
    """The write leases of a repository (spec §18.4): every table write holds one while it
    runs, and gc keeps whatever was written after the oldest live lease was taken."""

    @abstractmethod
    def acquire(self) -> Lease:
        """Take a lease for one write (release it when the write has landed or failed)."""

    @abstractmethod
    def scan(self, *, remove_stale: bool = True) -> tuple[float | None, int, int]:
        """``(creation time of the oldest live lease or None, live leases, stale leases)``;
        stale ones (their writer died) are removed unless ``remove_stale`` is False."""
