"""An in-memory Store (tests, scratch work)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

from ..errors import ErrorKind, FormatError, NotFoundError
from .abc import Leases, Store

__all__ = ["MemoryStore", "MemoryLeases"]


class MemoryStore(Store):
    """A dict of id -> bytes."""

    def __init__(self) -> None:
        self._d: dict[bytes, bytes] = {}
        self._t: dict[bytes, float] = {}

    def get(self, oid: bytes, max_size: int | None = None) -> bytes:
        try:
            data = self._d[oid]
        except KeyError:
            raise NotFoundError(f"object {oid.hex()} is missing from the memory store") from None
        if max_size is not None and len(data) > max_size:
            raise FormatError(f"object {oid.hex()} is {len(data)} bytes, more than its limit of "
                              f"{max_size}", ErrorKind.BAD_OBJECT)
        return data

    def get_range(self, oid: bytes, offset: int, length: int) -> bytes:
        return self.get(oid)[offset:offset + length]

    def touch(self, oid: bytes) -> bool:
        if oid not in self._d:
            return False
        self._t[oid] = time.time()
        return True

    def put(self, oid: bytes, data: bytes | memoryview | list[bytes | memoryview]) -> bool:
        if self.touch(oid):
            return False
        self._d[oid] = b"".join(bytes(memoryview(x).cast("B")) for x in data) if isinstance(data, (list, tuple)) else bytes(data)
        self._t[oid] = time.time()
        return True

    def has(self, oid: bytes) -> bool:
        return oid in self._d

    def size(self, oid: bytes) -> int:
        return len(self.get(oid))

    def mtime(self, oid: bytes) -> float:
        return self._t.get(oid, 0.0)

    def delete(self, oid: bytes) -> int:
        self._t.pop(oid, None)
        return len(self._d.pop(oid, b""))

    def iter(self) -> Iterator[bytes]:
        return iter(list(self._d))


class _MemoryLease:
    def __init__(self, owner: MemoryLeases, token: str) -> None:
        self._owner, self._token = owner, token

    def release(self) -> None:
        with self._owner._lock:
            self._owner._live.pop(self._token, None)


class MemoryLeases(Leases):
    """Write leases of one process: a lease lives until released (no writer can die apart
    from the process that holds them all)."""

    def __init__(self) -> None:
        self._live: dict[str, float] = {}
        self._lock = threading.Lock()

    def acquire(self) -> _MemoryLease:
        token = uuid.uuid4().hex
        with self._lock:
            self._live[token] = time.time()
        return _MemoryLease(self, token)

    def scan(self, *, remove_stale: bool = True) -> tuple[float | None, int, int]:
        with self._lock:
            times = list(self._live.values())
        return (min(times) if times else None), len(times), 0
