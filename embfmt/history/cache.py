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
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import blake3
import numpy as np

from .. import _fs
from .. import _layout as L
from ..canonical.dtype import dtype_of
from ..errors import EmbfmtError
from ..store import read_bounded, real_dir, remove_entries

__all__ = ["RowprintCache", "SealCache"]

# The byte layout of an entry (magic, header, key, seals) is in _layout.py (spec §11.1).
MAGIC = L.ROWPRINT_CACHE_MAGIC
HEADER = L.CACHE_HEADER_STRUCT
# Below this many chunks, reading the rowprint sections is as fast as the cache file.
MIN_CHUNKS = 32


class _Entries:
    """One kind of cache entry, ``<root>/cache/<kind>/<key hex>``: magic, item count, a check
    bound to the key, then the items; thread-safe."""

    kind = ""
    magic = b""

    def __init__(self, root: str) -> None:
        self.dir = os.path.join(root, "cache", self.kind)
        self.tmp = os.path.join(root, "tmp")

    @staticmethod
    def key(dtype: Any, n_rows: int, dim: int, digests: Sequence[bytes]) -> bytes:
        """The cache key of a table's content: BLAKE3 of a domain string, dtype code, N, D and
        the chunk digests (cheaper than the Merkle root, and equally unique)."""
        h = blake3.blake3(L.CACHE_KEY_DOMAIN + L.CACHE_KEY_STRUCT.pack(dtype_of(dtype).code, n_rows, dim))
        h.update(b"".join(digests))
        return h.digest()

    @staticmethod
    def _check(key: bytes, n_rows: int, body: bytes | memoryview) -> bytes:
        h = blake3.blake3(key + n_rows.to_bytes(8, "little"), max_threads=blake3.blake3.AUTO)
        h.update(body)
        return h.digest()

    def path(self, key: bytes) -> str:
        return os.path.join(self.dir, key.hex())

    def _read(self, key: bytes, item: int, max_items: int, n_items: int | None = None) -> memoryview | None:
        """The checked body of entry ``key`` (``n_items`` items of ``item`` bytes, or any count up
        to ``max_items``), or None when absent, not a regular file, too long or not valid."""
        try:
            buf = read_bounded(self.path(key), HEADER.size + item * max_items, "cache entry")
        except (OSError, EmbfmtError):
            return None
        if len(buf) < HEADER.size:
            return None
        magic, n, check = HEADER.unpack_from(buf)
        body = memoryview(buf)[HEADER.size:]
        if (magic != self.magic or len(body) != item * n or (n_items is not None and n != n_items)
                or self._check(key, n, body) != check):
            return None
        return body

    def _write(self, key: bytes, count: int, body: bytes | memoryview) -> None:
        """Store an entry; best effort (a read-only repository, a full disk or a concurrent
        writer of the same entry are not errors: the cache is optional)."""
        head = HEADER.pack(self.magic, count, self._check(key, count, body))
        tmp = os.path.join(self.tmp, f"{self.kind}-{key.hex()[:16]}.{uuid.uuid4().hex}")
        try:
            # Never through a symlink out of the repository (the entry is skipped instead).
            for d, what in ((os.path.dirname(self.dir), "cache directory"), (self.dir, "cache directory"),
                            (self.tmp, "temp directory")):
                real_dir(d, what)
            os.makedirs(self.dir, exist_ok=True)
            os.makedirs(self.tmp, exist_ok=True)
            _fs.write_new(tmp, [head, body], sync=False)  # O_EXCL: never through a link
            _fs.replace(tmp, self.path(key))
        except (OSError, EmbfmtError):
            _fs.discard(tmp)

    def prune(self, keep: Iterable[bytes], older_than: float | None = None) -> int:
        """Delete every entry whose key is not in ``keep`` (and, with ``older_than``, whose
        modification time is not later than it: gc's grace period); returns the bytes freed."""
        # A symlinked cache/ or cache/<kind>/ is refused (unsafe-path), never emptied: its
        # files are outside the repository.
        if not real_dir(os.path.dirname(self.dir), "cache directory"):
            return 0
        return remove_entries(self.dir, "cache directory", older_than, {k.hex() for k in keep})


class RowprintCache(_Entries):
    """Whole-table rowprints under ``<root>/cache/rowprints/<key hex>``; thread-safe."""

    kind = "rowprints"
    magic = MAGIC

    def get(self, key: bytes, n_rows: int) -> np.ndarray | None:
        """The cached rowprints (read-only uint64[n_rows]), or None when absent or not valid."""
        body = self._read(key, 8, n_rows, n_rows)
        if body is None:
            return None
        return np.frombuffer(body, dtype="<u8", count=n_rows).astype(np.uint64, copy=False)

    def put(self, key: bytes, rowprints: np.ndarray) -> None:
        """Store ``rowprints`` under ``key`` (best effort)."""
        arr = np.ascontiguousarray(rowprints, dtype="<u8")
        self._write(key, len(arr), memoryview(arr).cast("B"))  # type: ignore[arg-type]  # numpy's stubs: ndarray.__buffer__ on 3.12+ only


SEAL = L.SEAL_STRUCT  # chunk id, header checksum, delta base (zero for full codecs)


class SealCache(_Entries):
    """Chunk objects bound to their ids (spec §13.7), per table version, under
    ``<root>/cache/seals/<key hex>`` (same key and layout as rowprint entries, magic
    ``EMBSEAL1``, items of 72 bytes: chunk id, header checksum u64le, base id or zeros).

    An entry says "the object with this checksum was checked to be this id": it saves the
    full decode a reader would otherwise need before trusting a header or rowprint section.
    """

    kind = "seals"
    magic = L.SEAL_CACHE_MAGIC

    def get(self, key: bytes, max_items: int) -> list[tuple[bytes, int, bytes | None]] | None:
        body = self._read(key, SEAL.size, max_items)
        if body is None:
            return None
        return [(d, cs, base if any(base) else None) for d, cs, base in SEAL.iter_unpack(body)]

    def put(self, key: bytes, entries: list[tuple[bytes, int, bytes | None]]) -> None:
        body = b"".join(SEAL.pack(d, cs, base or bytes(32)) for d, cs, base in entries)
        self._write(key, len(entries), body)
