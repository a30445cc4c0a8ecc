"""A write batch that only counts: ``commit --dry-run`` runs the real write path (the same
encodings, dedup and delta decisions) through it, and nothing reaches the store."""

from __future__ import annotations

from .abc import Store, WriteBatch

__all__ = ["DryRunBatch"]


class DryRunBatch(WriteBatch):
    """``put`` records the size of each object a real batch would store (one not stored yet)
    instead of storing it; ``touch`` refreshes nothing. Reads go to the store as usual."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self.written: dict[bytes, int] = {}

    @property
    def bytes_written(self) -> int:
        return sum(self.written.values())

    def put(self, oid: bytes, data: bytes | memoryview | list[bytes | memoryview]) -> bool:
        if self.has(oid):
            return False
        parts = data if isinstance(data, list) else [data]
        self.written[oid] = sum(memoryview(p).nbytes for p in parts)
        return True

    def has(self, oid: bytes) -> bool:
        return oid in self.written or self.store.has(oid)

    def touch(self, oid: bytes) -> bool:
        return self.has(oid)
