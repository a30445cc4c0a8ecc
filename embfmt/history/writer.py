"""Writing one table version: fingerprint, then store each new chunk in its smallest encoding.

For chunk ``c`` of the new version the writer, in order (spec §13.4):

1. skips it when an object with its digest exists (content dedup across versions and tables);
2. otherwise, when the parent version has a chunk at position ``c`` whose delta chain is shorter
   than MAX_CHAIN_DEPTH, decodes that base and compares rows *bit-exactly*;
3. writes a sparse patch when at most half of the rows differ, else a dense delta
   (sub-zigzag, and XOR where that is smaller) when the row counts match, else a full chunk;
   a delta that is not smaller than the full encoding is replaced by the full encoding.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import _layout as L
from ..backend import _threads
from ..objects.change import METRICS, Drift
from ..objects.chunk import encode_dense, encode_full, encode_sparse, thread_scratch
from ..errors import ConflictError, ErrorKind
from ..canonical.fingerprint import Fingerprint, Fingerprinter
from ..objects.table_version import TableVersion
from .reader import ChunkReader
from ..store import Store, WriteBatch

__all__ = ["TableWriter", "WriteStats"]

# A sparse patch stores 12 bytes of index+rowprint and the row itself per changed row; a dense
# delta stores 8 bytes of rowprint per row and a delta that compresses to ~0 for unchanged rows.
# Both cost about the same at half the rows changed, so that is the switch-over point.
SPARSE_MAX_FRACTION = 0.5
# Try the other dense transform (XOR) only when sub-zigzag compressed to more than this fraction
# of the raw chunk: below it, the two differ by a few percent at most (measured on fine-tuning
# deltas: 0.49 vs 0.54 of raw) and a second zstd pass would cost more than it saves.
XOR_RETRY_FRACTION = 0.6


@dataclass
class WriteStats:
    """What one table write did."""

    chunks: int = 0
    chunks_written: int = 0
    chunks_reused: int = 0
    bytes_written: int = 0
    rows_changed: int = 0
    rows_added: int = 0
    codecs: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"chunks": self.chunks, "chunks_written": self.chunks_written,
                "chunks_reused": self.chunks_reused, "bytes_written": self.bytes_written,
                "codecs": dict(sorted(self.codecs.items()))}


_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(_threads(), thread_name_prefix="embfmt-write")
    return _POOL


class TableWriter:
    """Stores the chunks of one table version as a :class:`Fingerprinter` produces them.

    Feed rows with :meth:`update_canonical` (any block sizes, in row order), then :meth:`finish`.
    """

    def __init__(self, store: Store | WriteBatch, reader: ChunkReader, kernels: Any, dtype: Any, dim: int,
                 parent: TableVersion | None, *, backend: str = "auto") -> None:
        self.store = store
        self.reader = reader
        self.kernels = kernels
        self.fp = Fingerprinter(dtype, dim, backend=backend, on_chunks=self._on_chunks)
        self.parent = parent if (parent is not None and parent.dtype == self.fp.dtype
                                 and parent.dim == self.fp.dim) else None
        self.itemsize = self.fp.dtype.itemsize
        if self.parent is not None:  # its chunks are this version's bases and unchanged chunks
            reader.load_seals(self.parent)
        self.stats = WriteStats()
        self.collect_changes = self.parent is not None
        self._changes: dict[int, tuple[np.ndarray, tuple[np.ndarray, ...]]] = {}
        self._changes_lock = threading.Lock()

    def update_canonical(self, rows: np.ndarray, *, last: bool = False) -> None:
        self.fp.update_canonical(rows, last=last)

    def _on_chunks(self, c0: int, rows: np.ndarray, rp: np.ndarray, dg: np.ndarray) -> None:
        cr = self.fp.chunk_rows
        n_chunks = len(dg)

        def one(k: int) -> tuple[str, int, int]:
            blk = rows[k * cr:(k + 1) * cr]
            return self._store_chunk(c0 + k, blk, rp[k * cr:(k + 1) * cr], bytes(dg[k]))

        if n_chunks > 1:
            # Wait for every chunk before raising: a failed commit must not go on writing
            # objects (or reading ``rows``, a buffer the caller reuses) after it returned.
            futures = [_pool().submit(one, k) for k in range(n_chunks)]
            wait(futures)
            results = [f.result() for f in futures]
        else:
            results = [one(0)]
        for codec, written, changed in results:
            self.stats.chunks += 1
            self.stats.rows_changed += changed
            if written:
                self.stats.chunks_written += 1
                self.stats.bytes_written += written
                self.stats.codecs[codec] = self.stats.codecs.get(codec, 0) + 1
            else:
                self.stats.chunks_reused += 1

    def _store_chunk(self, c: int, rows: np.ndarray, rp: np.ndarray, digest: bytes) -> tuple[str, int, int]:
        """Store chunk ``c``; returns (codec name, bytes written, rows changed vs parent)."""
        parent = self.parent
        pd = parent.digests[c] if parent is not None and c < parent.n_chunks else None
        n = rows.shape[0]
        if pd == digest:
            return "same", 0, 0
        base = None
        changed: np.ndarray | None = None
        depth = L.MAX_CHAIN_DEPTH
        if pd is not None:
            # A damaged parent chunk fails the commit with its typed error (nothing is
            # committed): `verify` names it, and the user decides, as for any damaged object.
            assert parent is not None
            h = self.reader.header(pd)
            depth = h.depth
            # Decoded (digest-checked) into this thread's scratch, not the reader's cache: each
            # parent chunk is read once per commit, and a fresh 1 MiB array per chunk costs
            # page faults. The buffer is reused after this function returns: nothing keeps it.
            base = thread_scratch().get("writer-base", 0, h.n_rows * h.row_bytes).reshape(h.n_rows, h.row_bytes)
            self.reader.rows_into(pd, base, self.reader.expected(parent, c))
            m = min(n, base.shape[0])
            eq = np.empty(m, dtype=np.bool_)
            self.kernels.rows_equal_into(rows[:m], base[:m], eq)
            changed = np.concatenate([np.flatnonzero(~eq), np.arange(m, n)]).astype(np.int64)
            if self.collect_changes:
                # The writer holds both sides of every changed row now: record their drift so
                # that diffing this version against its parent never decodes anything.
                inner = changed[changed < m]
                stats = self.kernels.row_stats(np.ascontiguousarray(base[inner]),
                                               np.ascontiguousarray(rows[inner]), self.fp.dtype.code)
                with self._changes_lock:
                    self._changes[c] = (inner + c * self.fp.chunk_rows, stats)
        n_changed = n if changed is None else len(changed)
        if self.store.has(digest):
            # Reused: refresh it and its delta bases, so that a concurrent gc (which cannot
            # see this commit yet) does not remove old objects this commit will reference.
            # Deepest base first, the object itself last: when a base is already gone (a gc
            # that started before this write took its lease removed it), the object is left
            # as old as it was, so that gc removes it too and a retry writes the chunk afresh.
            chain = self.reader.chain(digest)
            for b in reversed(chain):
                if not self.store.touch(b):
                    raise ConflictError(
                        f"chunk object {digest.hex()} cannot be reused: its delta base {b.hex()} "
                        "is gone (removed by a garbage collection running now, or lost; "
                        "`embfmt verify` tells which). Nothing was committed; retry once gc "
                        "has finished", ErrorKind.CONFLICT)
            return "dedup", 0, n_changed
        obj = None
        if base is not None and changed is not None and depth < L.MAX_CHAIN_DEPTH:
            assert pd is not None
            if n_changed <= SPARSE_MAX_FRACTION * n:
                obj = encode_sparse(rows, changed, self.itemsize, rp, pd, base.shape[0], depth,
                                    self.kernels)
            elif base.shape[0] == n:
                obj = encode_dense(rows, base, self.itemsize, rp, pd, depth, L.CODEC_SUBZZ, self.kernels)
                if len(obj) > XOR_RETRY_FRACTION * rows.nbytes:
                    alt = encode_dense(rows, base, self.itemsize, rp, pd, depth, L.CODEC_XOR, self.kernels)
                    if len(alt) < len(obj):
                        obj = alt
                    full = encode_full(rows, self.itemsize, rp, self.kernels)
                    if len(full) <= len(obj):
                        obj = full
        if obj is None:
            obj = encode_full(rows, self.itemsize, rp, self.kernels)
        wrote = self.store.put(digest, obj.parts)
        if wrote:  # this writer encoded it from rows whose digest it computed: bound (§13.7)
            self.reader.bind(digest, obj.checksum, pd if obj.codec in L.DELTA_CODECS else None)
        return L.CODEC_NAMES[obj.codec], len(obj) if wrote else 0, n_changed

    def changes(self) -> tuple[np.ndarray, Drift] | None:
        """Changed row indices (< both lengths) and their drift vs the parent, in row order;
        None without a parent of the same dtype and D."""
        if not self.collect_changes:
            return None
        cs = [self._changes[c] for c in sorted(self._changes)]
        if not cs:
            return np.empty(0, np.int64), Drift(np.empty(0), np.empty(0), np.empty(0), np.empty(0, np.uint64))
        idx = np.concatenate([c[0] for c in cs])
        return idx, Drift(*(np.concatenate([c[1][k] for c in cs]) for k in range(len(METRICS))))

    def finish(self) -> tuple[Fingerprint, WriteStats]:
        """Flush the last partial chunk; returns the fingerprint and what was written."""
        fp = self.fp.finalize()
        return fp, self.stats
