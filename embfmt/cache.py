"""Derived data kept beside a repository's objects: whole-table rowprints (spec §11.1).

A table version's rowprints live in the rowprint sections of its chunk objects, one object per
chunk. A process that starts cold (a CLI call) and compares two 1M-row versions reads ~1000
objects for them: ~50 µs each, mostly per-object bookkeeping. The cache keeps the
concatenated rowprints of a table version in one file, written the first time they are
assembled, so later processes read one 8 MB file instead.

Cache entries are never referenced by objects or refs. A reader checks every entry (magic,
row count, BLAKE3 check value) before use and treats a bad or missing one as absent; anything
under ``cache/`` may be deleted at any time, and ``gc`` deletes entries of table versions no
longer reachable.

Examples
--------
>>> import tempfile, numpy as np
>>> c = RowprintCache(tempfile.mkdtemp())
>>> key = c.key("float32", 3, 8, [bytes(32)])
>>> c.get(key, 3) is None
True
>>> c.put(key, np.array([1, 2, 3], np.uint64))
>>> c.get(key, 3).tolist()
[1, 2, 3]
"""

from __future__ import annotations

import os
import struct
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import blake3
import numpy as np

from .dtype import dtype_of

__all__ = ["RowprintCache"]

MAGIC = b"EMBRPC1\0"
# magic[8] n_rows:u64le check[32], then n_rows u64le rowprints
HEADER = struct.Struct("<8sQ32s")
KEY_DOMAIN = b"embfmt rowprint cache v1\0"
# Below this many chunks, reading the rowprint sections is as fast as the cache file.
MIN_CHUNKS = 32


class RowprintCache:
    """Whole-table rowprints under ``<root>/cache/rowprints/<key hex>``; thread-safe."""

    def __init__(self, root: str) -> None:
        self.dir = os.path.join(root, "cache", "rowprints")
        self.tmp = os.path.join(root, "tmp")

    @staticmethod
    def key(dtype: Any, n_rows: int, dim: int, digests: Sequence[bytes]) -> bytes:
        """The cache key of a table's content: BLAKE3 of a domain string, dtype code, N, D and
        the chunk digests (cheaper than the Merkle root, and equally unique)."""
        h = blake3.blake3(KEY_DOMAIN + struct.pack("<BQQ", dtype_of(dtype).code, n_rows, dim))
        h.update(b"".join(digests))
        return h.digest()

    @staticmethod
    def _check(key: bytes, n_rows: int, body: bytes | memoryview) -> bytes:
        h = blake3.blake3(key + n_rows.to_bytes(8, "little"), max_threads=blake3.blake3.AUTO)
        h.update(body)
        return h.digest()

    def path(self, key: bytes) -> str:
        return os.path.join(self.dir, key.hex())

    def get(self, key: bytes, n_rows: int) -> np.ndarray | None:
        """The cached rowprints (read-only uint64[n_rows]), or None when absent or not valid."""
        try:
            with open(self.path(key), "rb") as f:
                buf = f.read(HEADER.size + 8 * n_rows + 1)
        except OSError:
            return None
        if len(buf) != HEADER.size + 8 * n_rows:
            return None
        magic, n, check = HEADER.unpack_from(buf)
        body = memoryview(buf)[HEADER.size:]
        if magic != MAGIC or n != n_rows or self._check(key, n_rows, body) != check:
            return None
        rp = np.frombuffer(buf, dtype="<u8", count=n_rows, offset=HEADER.size).astype(np.uint64, copy=False)
        return rp

    def put(self, key: bytes, rowprints: np.ndarray) -> None:
        """Store ``rowprints`` under ``key``; best effort (a read-only repository, a full disk or
        a concurrent writer of the same entry are not errors: the cache is optional)."""
        arr = np.ascontiguousarray(rowprints, dtype="<u8")
        body = memoryview(arr).cast("B")
        head = HEADER.pack(MAGIC, len(arr), self._check(key, len(arr), body))
        tmp = os.path.join(self.tmp, f"rowprints-{key.hex()[:16]}.{uuid.uuid4().hex}")
        try:
            os.makedirs(self.dir, exist_ok=True)
            os.makedirs(self.tmp, exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(head)
                f.write(body)
            os.replace(tmp, self.path(key))
        except OSError:
            try:
                os.unlink(tmp)
            except OSError:
                pass

    def prune(self, keep: Iterable[bytes]) -> int:
        """Delete every entry whose key is not in ``keep``; returns the bytes freed."""
        wanted = {k.hex() for k in keep}
        freed = 0
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return 0
        for name in names:
            if name in wanted:
                continue
            p = os.path.join(self.dir, name)
            try:
                size = os.path.getsize(p)
                os.unlink(p)
                freed += size
            except OSError:
                pass
        return freed
