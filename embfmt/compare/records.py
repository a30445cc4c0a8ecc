"""Change objects checked against the table versions they describe (spec §16.1, §18.3): a
record is the writer's statement about two versions; before it answers anything its rows must
be those whose rowprints differ, and verify recomputes all of it from the decoded rows."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ErrorKind, FormatError
from ..objects.change import ChangeRecord
from .diff import changed_rows

__all__ = ["check_versions", "check_rows", "check_recomputed"]


def check_versions(rec: ChangeRecord, parent: Any, child: Any, name: str,
                   ids: tuple[str, str] | None = None) -> None:
    """A change object describes exactly its two table versions (spec §16.1): their ids (hex
    ``ids`` of parent and child, when given), dtype, D and row counts; ``bad-object``
    otherwise (a record forged or wired into the wrong commit: no answer may come from it)."""
    why = None
    if ids is not None and (rec.parent_table.hex(), rec.table.hex()) != ids:
        why = "names other table versions than its commit and its parent"
    elif parent.dtype != child.dtype or parent.dim != child.dim:
        why = "joins versions of another dtype or D"
    elif rec.dtype_code != child.dtype.code or rec.parent_rows != parent.n_rows or rec.rows != child.n_rows:
        why = (f"describes {rec.parent_rows} -> {rec.rows} rows (dtype code {rec.dtype_code}); its "
               f"versions hold {parent.n_rows} -> {child.n_rows} (dtype code {child.dtype.code})")
    if why:
        raise FormatError(f"{name}: {why}", ErrorKind.BAD_OBJECT)


def _mismatch(name: str, listed: np.ndarray, actual: np.ndarray) -> FormatError:
    extra = np.setdiff1d(listed, actual)[:5].tolist()
    missing = np.setdiff1d(actual, listed)[:5].tolist()
    return FormatError(f"{name}: lists {len(listed)} changed rows, its versions differ in "
                       f"{len(actual)} (listed but unchanged: {extra}; changed but not listed: "
                       f"{missing})", ErrorKind.BAD_OBJECT)


def check_rows(rec: ChangeRecord, reader: Any, parent: Any, child: Any, name: str) -> None:
    """The rows a change object lists are exactly those whose rowprints differ between its two
    versions (rowprint sections only, no chunk decoded; spec §16.1): a record that lies about
    which rows changed is refused (``bad-object``) before it answers anything."""
    check_versions(rec, parent, child, name)
    actual = changed_rows(reader, parent, child, exact=False).changed
    if not np.array_equal(actual, rec.index):
        raise _mismatch(name, rec.index, actual)


def check_recomputed(rec: ChangeRecord, reader: Any, kernels: Any, parent: Any, child: Any,
                     name: str, ids: tuple[str, str]) -> None:
    """Everything a change object states, recomputed from the decoded rows of its two
    versions (verify, spec §18.3): the changed rows by their bytes, and their drift (max-abs
    and max-ULP exactly; L2 and cosine to 1e-6 relative, as backends may round differently)."""
    check_versions(rec, parent, child, name, ids)
    m, cr = min(parent.n_rows, child.n_rows), child.chunk_rows
    idx: list[np.ndarray] = []
    stats: list[tuple[np.ndarray, ...]] = []
    for c in range(-(-m // cr)):
        if parent.digests[c] == child.digests[c]:
            continue
        a = reader.rows(parent.digests[c], fits=reader.expected(parent, c))
        b = reader.rows(child.digests[c], fits=reader.expected(child, c))
        k = min(m - c * cr, a.shape[0], b.shape[0])
        eq = np.empty(k, dtype=np.bool_)
        kernels.rows_equal_into(a[:k], b[:k], eq)
        inner = np.flatnonzero(~eq)
        idx.append(inner + c * cr)
        stats.append(kernels.row_stats(np.ascontiguousarray(a[inner]), np.ascontiguousarray(b[inner]),
                                       child.dtype.code))
    actual = np.concatenate(idx).astype(np.int64) if idx else np.zeros(0, np.int64)
    if not np.array_equal(actual, rec.index):
        raise _mismatch(name, rec.index, actual)
    if not idx:
        return
    l2, cos, mx, ulp = (np.concatenate([np.asarray(s[j]) for s in stats]) for j in range(4))
    close = all(np.allclose(x, y, rtol=1e-6, atol=0.0, equal_nan=True)
                for x, y in ((l2, rec.l2), (cos, rec.cosine)))
    exact = (np.array_equal(mx, rec.max_abs, equal_nan=True)
             and np.array_equal(ulp.astype(np.uint64), rec.ulp))
    if not (close and exact):
        raise FormatError(f"{name}: the drift it records for its changed rows is not what their "
                          "bytes give (spec §20)", ErrorKind.BAD_OBJECT)
