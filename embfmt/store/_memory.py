"""An in-memory Store (tests, scratch work)."""

from __future__ import annotations

import time
from collections.abc import Iterator

from ..errors import ErrorKind, FormatError, NotFoundError
from .abc import Store

__all__ = ["MemoryStore"]


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
