"""Which rows differ between two stored table versions, in time proportional to what changed.

The Merkle leaves (chunk ids) decide which chunks changed; unchanged chunks are never read.
Inside a changed chunk, the cheapest exact source wins:

1. one chunk is a sparse patch whose base is the other: the patch's row list *is* the set of
   changed rows (the writer patches exactly the rows whose bytes differ), read from the
   object's first bytes without decompressing anything;
2. otherwise rowprints (read from rowprint sections) mark rows whose XXH3-64 differ, which
   certainly changed; rows whose rowprints agree are confirmed bit-exactly by decoding both
   chunks unless ``exact=False``.

So a fast path only skips work: the result always equals a full bit-exact comparison.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _layout as L
from .manifest import TableVersion
from .reader import ChunkReader

__all__ = ["RowChanges", "changed_rows"]


@dataclass(frozen=True)
class RowChanges:
    """Rows of ``b`` compared with ``a`` by position."""

    changed: np.ndarray
    """Indices ``i < min(len(a), len(b))`` whose bytes differ."""
    added: np.ndarray
    """Indices present in ``b`` only (``len(a) <= i < len(b)``)."""
    removed: np.ndarray
    """Indices present in ``a`` only (``len(b) <= i < len(a)``)."""
    chunks_compared: int = 0
    chunks_decoded: int = 0

    @property
    def n_changed(self) -> int:
        return int(len(self.changed))


def _chunk_changes(reader: ChunkReader, da: bytes, db: bytes, m: int, exact: bool) -> tuple[np.ndarray, bool]:
    """Changed row offsets (< m) between two different chunk objects; and whether decoded."""
    for x, y in ((db, da), (da, db)):
        h = reader.header(x)
        if h.codec == L.CODEC_SPARSE and h.base == y:
            _, idx = reader.patch_rows(x)
            return idx[idx < m], False
    rpa = reader.rowprints(da)[:m]
    rpb = reader.rowprints(db)[:m]
    differ = rpa != rpb
    if exact and not differ.all():
        a = reader.rows(da)[:m]
        b = reader.rows(db)[:m]
        from ._kernels import cpu

        return np.flatnonzero(~cpu.rows_equal(np.ascontiguousarray(a), np.ascontiguousarray(b))), True
    return np.flatnonzero(differ), False


def changed_rows(reader: ChunkReader, a: TableVersion, b: TableVersion, *, exact: bool = True) -> RowChanges:
    """Compare two table versions of the same dtype and D by row position."""
    if a.dtype != b.dtype or a.dim != b.dim:
        from .errors import ErrorKind, InputError

        raise InputError(f"cannot compare {a.dtype.name} x {a.dim} with {b.dtype.name} x {b.dim} "
                         "row by row", ErrorKind.SHAPE_MISMATCH)
    cr = a.chunk_rows
    m_all = min(a.n_rows, b.n_rows)
    parts = []
    compared = decoded = 0
    for c in range(-(-m_all // cr)):
        da, db = a.digests[c], b.digests[c]
        if da == db:
            continue
        lo = c * cr
        m = min(m_all, lo + cr) - lo
        compared += 1
        idx, dec = _chunk_changes(reader, da, db, m, exact)
        decoded += dec
        if len(idx):
            parts.append(idx + lo)
    changed = np.concatenate(parts) if parts else np.empty(0, np.int64)
    return RowChanges(changed.astype(np.int64), np.arange(a.n_rows, b.n_rows, dtype=np.int64),
                      np.arange(b.n_rows, a.n_rows, dtype=np.int64), compared, decoded)
