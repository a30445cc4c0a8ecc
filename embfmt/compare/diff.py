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

import json
import os
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import blake3
import numpy as np

from .. import _layout as L
from .. import progress
from ..backend import Kernels, _threads, cpu_kernels, kernels, resolve_name
from ..canonical.matrix import Matrix, as_matrix
from ..errors import ErrorKind, InputError
from ..history.cache import MIN_CHUNKS
from ..history.reader import ChunkReader
from ..history.table import TableView
from ..objects.change import METRICS
from ..objects.keys import normalize_keys
from ..objects.table_version import TableVersion
from .drift import knn_overlap, procrustes_drift, sample_pairs

__all__ = ["METRICS", "RowChanges", "changed_rows", "Diff", "TablesDiff", "diff", "DIFF_SCHEMA_VERSION"]

#: Version of the ``Diff.to_dict()`` / ``embfmt diff --json`` schema (docs: spec/diff-json.md).
DIFF_SCHEMA_VERSION = 1


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


def _patch_changes(reader: ChunkReader, da: bytes, db: bytes, m: int) -> np.ndarray | None:
    """Changed row offsets (< m) when one chunk is a sparse patch of the other, else None.

    A patch may store rows whose bytes equal the base's (spec §13.3 allows it; our writer never
    does), so its index lists candidates: each must have a rowprint that differs from the
    base's. When one does not, the bytes decide (None: the caller's general path)."""
    for x, y in ((db, da), (da, db)):
        h = reader.header(x, rows_hint=m)  # the rowprint section comes along for pass 2
        if h.codec == L.CODEC_SPARSE and h.base == y:
            _, idx = reader.patch_rows(x)
            idx = idx[idx < m]
            if np.any(reader.rowprints(x, rows_hint=m)[idx] == reader.rowprints(y, rows_hint=m)[idx]):
                return None
            return idx
    return None


def changed_rows(reader: ChunkReader, a: TableVersion, b: TableVersion, *, exact: bool = True) -> RowChanges:
    """Compare two table versions of the same dtype and D by row position."""
    if a.dtype != b.dtype or a.dim != b.dim:
        raise InputError(f"cannot compare {a.dtype.name} x {a.dim} with {b.dtype.name} x {b.dim} "
                         "row by row", ErrorKind.SHAPE_MISMATCH)
    cr = a.chunk_rows
    m_all = min(a.n_rows, b.n_rows)
    differing = [c for c in range(-(-m_all // cr)) if a.digests[c] != b.digests[c]]
    # Headers and rowprint sections are trusted only from objects bound to their ids (spec
    # §13.7): bindings recorded by the writer or an earlier reader save the full checks.
    if differing:
        reader.load_seals(a)
        reader.load_seals(b)
    # Changed rows among the first m_all, marked chunk by chunk in any order; read out sorted
    # at the end (one pass over m_all bytes instead of a sorted merge of per-chunk arrays).
    changed_mask = np.zeros(m_all, dtype=bool)
    # With whole-table rowprints from the rowprint cache (a cold process would otherwise read
    # two or three objects per chunk), chunks whose rows all differ need no object at all.
    many = len(differing) >= MIN_CHUNKS
    whole_a = reader.table_rowprints(a) if many else None
    whole_b = reader.table_rowprints(b) if many else None
    candidates = differing
    if whole_a is not None and whole_b is not None:
        # Whole arrays at once: a Python loop over ~500 chunks cost ~5 ms of a ~25 ms call.
        differ = whole_a[:m_all] != whole_b[:m_all]
        n_all = -(-m_all // cr)
        in_differing = np.zeros(n_all, dtype=bool)
        in_differing[differing] = True
        if exact:
            all_differ = np.logical_and.reduceat(differ, np.arange(n_all, dtype=np.int64) * cr)
            changed_mask |= np.repeat(in_differing & all_differ, cr)[:m_all]
            candidates = [c for c in differing if not all_differ[c]]
        else:  # rowprints decide (equal chunk ids have equal rowprints)
            changed_mask |= differ & np.repeat(in_differing, cr)[:m_all]
            candidates = []
    # Pass 1, serial (a few microseconds of header reading per chunk: threads would only add
    # GIL hand-offs): chunks that are sparse patches of each other answer from their index.
    todo = []
    for c in candidates:
        lo = c * cr
        idx = _patch_changes(reader, a.digests[c], b.digests[c], min(m_all, lo + cr) - lo)
        if idx is None:
            todo.append(c)
        else:
            changed_mask[idx + lo] = True

    # Pass 2, serial: rowprints from rowprint sections. Rows whose rowprints differ changed
    # for certain; a chunk where some agree is confirmed byte by byte in pass 3 (exact mode).
    confirm = []
    for c in todo:
        lo = c * cr
        m = min(m_all, lo + cr) - lo
        differ = (reader.rowprints(reader.chunk_of(a, c), rows_hint=cr)[:m]
                  != reader.rowprints(reader.chunk_of(b, c), rows_hint=cr)[:m])
        if differ.all():
            changed_mask[lo:lo + m] = True
        elif exact:
            confirm.append(c)
        else:
            changed_mask[lo:lo + m] = differ

    if many and (whole_a is None or whole_b is None) and reader.rowprint_cache is not None:
        # Most chunks differ: keep the rowprints of each side that has no entry yet for the
        # next process (their sections were just read, so this mostly reuses them).
        for tv, whole in ((a, whole_a), (b, whole_b)):
            if whole is None:
                reader.fill_table_rowprints(tv)

    def decode_compare(c: int) -> np.ndarray:
        lo = c * cr
        m = min(m_all, lo + cr) - lo
        ra = np.ascontiguousarray(reader.rows(a.digests[c], fits=reader.expected(a, c))[:m])
        rb = np.ascontiguousarray(reader.rows(b.digests[c], fits=reader.expected(b, c))[:m])
        return np.flatnonzero(~cpu_kernels().rows_equal(ra, rb)) + lo

    # Pass 3: decoding releases the GIL, so chunks are decoded in parallel.
    if len(confirm) > 1:
        with ThreadPoolExecutor(_threads()) as pool, \
                progress.bar(len(confirm), "compare chunks", unit="chunk") as bar:
            for r in pool.map(decode_compare, confirm):
                changed_mask[r] = True
                bar.update(1)
    else:
        for c in confirm:
            changed_mask[decode_compare(c)] = True
    if differing:  # bindings established by full checks here: keep them for the next process
        reader.save_seals(a)
        reader.save_seals(b)
    compared, decoded = len(differing), len(confirm)
    changed = np.flatnonzero(changed_mask).astype(np.int64, copy=False)
    return RowChanges(changed, np.arange(a.n_rows, b.n_rows, dtype=np.int64),
                      np.arange(b.n_rows, a.n_rows, dtype=np.int64), compared, decoded)


class Side:
    """One diff operand: a stored version (:class:`~embfmt.history.table.TableView`) or any matrix."""

    def __init__(self, obj: Any, keys: Any = None, label: str = "") -> None:
        self.label = label
        self.view: TableView | None = obj if isinstance(obj, TableView) else None
        self.matrix: Matrix | None = None
        if self.view is not None:
            tv = self.view.version
            self.n_rows, self.dim, self.dtype = tv.n_rows, tv.dim, tv.dtype
            raw_keys = self.view.keys if keys is None else keys
        else:
            self.matrix = as_matrix(obj)
            self.n_rows, self.dim, self.dtype = self.matrix.n_rows, self.matrix.dim, self.matrix.dtype
            raw_keys = keys
        self.prefetched: tuple[np.ndarray, np.ndarray] | None = None
        self.keys: np.ndarray | None = None
        if raw_keys is not None:
            self.keys = normalize_keys(raw_keys, self.n_rows, label or "diff operand")

    @property
    def row_bytes(self) -> int:
        return self.dim * self.dtype.itemsize

    def gather(self, idx: np.ndarray) -> np.ndarray:
        """Canonical bytes of rows ``idx``: (len(idx), row_bytes) uint8."""
        if len(idx) == 0:
            return np.empty((0, self.row_bytes), np.uint8)
        if self.prefetched is not None:  # rows already decoded while matching
            pidx, prows = self.prefetched
            pos = np.searchsorted(pidx, idx)
            if len(pidx) and pos.max() < len(pidx) and np.array_equal(pidx[pos], idx):
                return prows[pos]
        if self.view is not None:
            vals = np.ascontiguousarray(self.view.rows(idx))
            return vals.view(np.uint8).reshape(len(idx), self.row_bytes)
        m = self.matrix
        assert m is not None
        if m.zero_copy is not None:
            picked: np.ndarray = m.zero_copy[idx]
            return picked
        out = np.empty((len(idx), self.row_bytes), np.uint8)
        order = np.argsort(idx, kind="stable")
        sidx = idx[order]
        step = max(1, (64 << 20) // self.row_bytes)
        for s in range(0, self.n_rows, step):
            lo, hi = np.searchsorted(sidx, [s, s + step])
            if hi > lo:
                blk = m.rows(s, min(self.n_rows, s + step))
                out[order[lo:hi]] = blk[sidx[lo:hi] - s]
        return out


def _summary(v: np.ndarray, n_matched: int) -> dict[str, Any]:
    """count, fraction of matched rows, nan count, mean, min, p50, p90, p99, max."""
    vf = v.astype(np.float64)
    finite = vf[np.isfinite(vf)]
    out: dict[str, Any] = {"count": int(len(v)),
                           "fraction": (len(v) / n_matched) if n_matched else 0.0,
                           "nonfinite": int(len(v) - len(finite))}
    if len(finite):
        q = np.percentile(finite, [50, 90, 99])
        out.update(mean=float(finite.mean()), min=float(finite.min()), p50=float(q[0]),
                   p90=float(q[1]), p99=float(q[2]), max=float(finite.max()))
    else:
        out.update(mean=None, min=None, p50=None, p90=None, p99=None, max=None)
    return out


def _json_num(x: Any) -> Any:
    if isinstance(x, (np.floating, float)):
        f = float(x)
        return f if np.isfinite(f) else str(f)  # JSON has no NaN/inf: "nan", "inf", "-inf"
    if isinstance(x, (np.integer,)):
        return int(x)
    return x


@dataclass
class Diff:
    """The row-level difference between two matrices (``b`` compared with ``a``).

    Index arrays refer to rows of ``a`` (``*_a``) or ``b``; with keys, ``*_keys`` give the keys.
    Per-row statistics (aligned with ``changed_b``) are float64 arrays ``l2``, ``cosine``,
    ``max_abs`` and uint64 ``ulp`` (see :func:`embfmt._kernels.reference.row_stats`).
    """

    n_a: int
    n_b: int
    dim: int
    dtype: str
    matched_by: str
    changed_a: np.ndarray
    changed_b: np.ndarray
    added: np.ndarray
    removed: np.ndarray
    unchanged: int
    keys_a: np.ndarray | None = None
    keys_b: np.ndarray | None = None
    stats: dict[str, np.ndarray] | None = None
    procrustes: dict[str, Any] | None = None
    knn: dict[str, Any] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_changed(self) -> int:
        return int(len(self.changed_b))

    @property
    def identical(self) -> bool:
        """No added, removed or changed row (and the same dtype and shape)."""
        return not (self.n_changed or len(self.added) or len(self.removed))

    @property
    def n_matched(self) -> int:
        return self.unchanged + self.n_changed

    def summary(self) -> dict[str, Any]:
        """Per-metric summary statistics over the changed rows."""
        if self.stats is None:
            return {}
        return {m: _summary(self.stats[m], self.n_matched) for m in METRICS}

    def top(self, k: int = 10, by: str = "l2") -> list[dict[str, Any]]:
        """The ``k`` rows that moved most by ``by`` (``l2``, ``max_abs``, ``ulp``; ``cosine``:
        lowest similarity first). NaN statistics rank first: they are the most suspicious."""
        if by not in METRICS:
            raise InputError(f"cannot rank by {by!r}; choose one of {', '.join(METRICS)}",
                             ErrorKind.BAD_ARGUMENT)
        if k < 0:
            raise InputError(f"top: k must be >= 0, got {k}", ErrorKind.BAD_ARGUMENT)
        if self.stats is None or not self.n_changed or k == 0:
            return []
        v = self.stats[by]
        if by == "ulp":
            # Rank the uint64 distances exactly (a float64 copy would merge values above 2**53).
            order = np.argsort(~v.astype(np.uint64), kind="stable")[:k]
        else:
            v = v.astype(np.float64)
            nan = np.isnan(v)
            key = np.where(nan, 0.0, v if by != "cosine" else -v)
            # NaN first (its own tier, above +inf: spec/diff-json.md), then descending; lexsort
            # is stable, so ties keep row order.
            order = np.lexsort((-key, ~nan))[:k]
        out = []
        for i in order:
            row: dict[str, Any] = {"a": int(self.changed_a[i]), "b": int(self.changed_b[i])}
            if self.keys_b is not None:
                kb = self.keys_b[self.changed_b[i]]
                row["key"] = kb.item() if hasattr(kb, "item") else kb
            for m in METRICS:
                row[m] = _json_num(self.stats[m][i])
            out.append(row)
        return out

    def to_dict(self, top: int = 10, rows: bool = False) -> dict[str, Any]:
        """The stable JSON form (schema version :data:`DIFF_SCHEMA_VERSION`)."""

        def keys_of(idx: np.ndarray, keys: np.ndarray | None) -> list[Any] | None:
            return None if keys is None else [k.item() if hasattr(k, "item") else k for k in keys[idx]]

        d: dict[str, Any] = {
            "schema": DIFF_SCHEMA_VERSION,
            "identical": self.identical,
            "a": {"rows": self.n_a, **self.info.get("a", {})},
            "b": {"rows": self.n_b, **self.info.get("b", {})},
            "dim": self.dim, "dtype": self.dtype, "matched_by": self.matched_by,
            "counts": {"changed": self.n_changed, "added": int(len(self.added)),
                       "removed": int(len(self.removed)), "unchanged": int(self.unchanged)},
            "summary": {m: {k: _json_num(v) for k, v in s.items()} for m, s in self.summary().items()},
            "top": self.top(top),
            "procrustes": None if self.procrustes is None else {k: _json_num(v) for k, v in self.procrustes.items()},
            "knn": None if self.knn is None else {k: _json_num(v) for k, v in self.knn.items()},
            "timing": self.info.get("timing", {}),
            "backend": self.info.get("backend"),
        }
        if rows:
            d["rows"] = {"changed_a": self.changed_a.tolist(), "changed_b": self.changed_b.tolist(),
                         "added": self.added.tolist(), "removed": self.removed.tolist(),
                         "changed_keys": keys_of(self.changed_b, self.keys_b),
                         "added_keys": keys_of(self.added, self.keys_b),
                         "removed_keys": keys_of(self.removed, self.keys_a)}
        return d

    def to_json(self, **kw: Any) -> str:
        return json.dumps(self.to_dict(**kw), indent=2, sort_keys=True)


class TablesDiff(Mapping[str, Diff]):
    """Every table of two revisions compared (:meth:`embfmt.Repo.diff` without ``table``).

    A mapping of table name -> :class:`Diff` for the tables both revisions have with the same
    dtype and D (``d["item_emb"].n_changed``), plus the tables that exist on one side only
    (:attr:`added`, :attr:`removed`) and those whose dtype or D changed, which have no row diff
    (:attr:`schema_changed`). Each of those maps a name to the side's ``rows``, ``dim``,
    ``dtype``, ``fingerprint`` and table-``version`` id.
    """

    def __init__(self, diffs: dict[str, Diff], added: dict[str, dict[str, Any]],
                 removed: dict[str, dict[str, Any]],
                 schema_changed: dict[str, tuple[dict[str, Any], dict[str, Any]]],
                 info: dict[str, Any]) -> None:
        self.diffs = dict(sorted(diffs.items()))
        self.added = dict(sorted(added.items()))
        self.removed = dict(sorted(removed.items()))
        self.schema_changed = dict(sorted(schema_changed.items()))
        self.info = info
        """``a`` and ``b``: the revisions as given and the commits they resolved to."""

    def __getitem__(self, name: str) -> Diff:
        return self.diffs[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.diffs)

    def __len__(self) -> int:
        return len(self.diffs)

    def __repr__(self) -> str:
        return f"TablesDiff({self.status()})"

    def status(self) -> dict[str, str]:
        """Every table of either side -> ``added``, ``removed``, ``changed`` or ``unchanged``."""
        out = {n: ("unchanged" if d.identical else "changed") for n, d in self.diffs.items()}
        out.update({n: "added" for n in self.added})
        out.update({n: "removed" for n in self.removed})
        out.update({n: "changed" for n in self.schema_changed})
        return dict(sorted(out.items()))

    @property
    def changed(self) -> list[str]:
        """Tables on both sides that differ (rows, or dtype / D)."""
        return [n for n, s in self.status().items() if s == "changed"]

    @property
    def identical(self) -> bool:
        """No table added, removed or changed."""
        return all(s == "unchanged" for s in self.status().values())

    def to_dict(self, top: int = 10, rows: bool = False) -> dict[str, Any]:
        """The multi-table JSON form (spec/diff-json.md, "Several tables")."""
        tables: dict[str, Any] = {}
        for name, st in self.status().items():
            t: dict[str, Any] = {"status": st}
            if name in self.diffs:
                t["diff"] = self.diffs[name].to_dict(top=top, rows=rows)
            elif name in self.schema_changed:
                t["a"], t["b"] = self.schema_changed[name]
                t["diff"] = None
                t["reason"] = "dtype or D changed: rows cannot be compared"
            elif name in self.added:
                t["b"] = self.added[name]
            else:
                t["a"] = self.removed[name]
            tables[name] = t
        counts = {k: 0 for k in ("changed", "added", "removed", "unchanged")}
        for st in self.status().values():
            counts[st] += 1
        return {"schema": DIFF_SCHEMA_VERSION, "identical": self.identical,
                "a": dict(self.info.get("a", {})), "b": dict(self.info.get("b", {})),
                "tables": tables, "table_counts": counts}

    def to_json(self, **kw: Any) -> str:
        return json.dumps(self.to_dict(**kw), indent=2, sort_keys=True)


def _changed_positions(a: Side, b: Side, exact: bool, k: Kernels, info: dict[str, Any]) -> np.ndarray:
    """Indices i < min(n_a, n_b) where row i differs (bit-exact)."""
    m = min(a.n_rows, b.n_rows)
    if a.view is not None and b.view is not None:
        rc = changed_rows(a.view.reader, a.view.version, b.view.version, exact=exact)
        info["chunks_compared"], info["chunks_decoded"] = rc.chunks_compared, rc.chunks_decoded
        return rc.changed
    if a.view is not None or b.view is not None:
        stored, mem = (a, b) if a.view is not None else (b, a)
        return _stored_vs_matrix(stored, mem, m, exact, k, info)
    parts = []
    step = max(1, (64 << 20) // a.row_bytes)
    assert a.matrix is not None and b.matrix is not None
    for s in range(0, m, step):
        e = min(m, s + step)
        eq = k.rows_equal(np.ascontiguousarray(a.matrix.rows(s, e)), np.ascontiguousarray(b.matrix.rows(s, e)))
        parts.append(np.flatnonzero(~eq) + s)
    return np.concatenate(parts) if parts else np.empty(0, np.int64)


def _stored_vs_matrix(stored: Side, mem: Side, m: int, exact: bool, k: Kernels,
                      info: dict[str, Any]) -> np.ndarray:
    """Changed rows between a stored version and a matrix, chunk by chunk, in parallel.

    For each chunk the matrix rows are hashed as the writer would (XXH3-64 per row; BLAKE3
    of the chunk too when ``exact``) and compared with the stored rowprints, read from the
    chunk's rowprint section. Rows whose rowprints differ changed for certain; only those are
    decoded from the stored side (no full unshuffle; checked against their rowprints). Exact
    mode then confirms the rest without decoding it: the matrix chunk with those rows
    replaced by the stored ones must hash (BLAKE3) to the stored chunk id, which holds iff
    every other row is bit-identical. Where that cannot be used (a chunk the matrix covers
    only in part) or fails (an XXH3 collision), the chunk is decoded and compared in full.
    """
    cpu = cpu_kernels()

    assert stored.view is not None and mem.matrix is not None
    tv = stored.view.version
    reader = stored.view.reader
    cr = tv.chunk_rows
    n_chunks = -(-m // cr)
    mat = mem.matrix
    reader.load_seals(tv)

    def one(c: int) -> tuple[np.ndarray, np.ndarray, bool]:
        """(changed rows, their stored bytes, whether the chunk was decoded in full)"""
        lo, hi = c * cr, min(m, (c + 1) * cr)
        d = reader.chunk_of(tv, c)
        mrows = np.ascontiguousarray(mat.rows(lo, hi))
        whole = hi - lo == min(cr, tv.n_rows - lo)  # the matrix covers the stored chunk
        mrp = np.empty(hi - lo, dtype=np.uint64)
        if exact and whole:
            if cpu.fingerprint_chunk_into(mrows, mrp) == d:
                return np.empty(0, np.int64), np.empty((0, mrows.shape[1]), np.uint8), False
        else:
            cpu.rowprints_into(mrows, mrp)
        local = np.flatnonzero(mrp != reader.rowprints(d, rows_hint=cr)[:hi - lo])
        srows = reader.rows_subset(d, local)
        decoded = False
        if exact and len(local) < hi - lo:
            confirmed = False
            if whole:
                patched = mrows.copy()
                patched[local] = srows
                confirmed = blake3.blake3(patched).digest() == d
            if not confirmed:
                decoded = True
                full = reader.rows(d)[:hi - lo]
                local = np.flatnonzero(~k.rows_equal(np.ascontiguousarray(full), mrows))
                srows = full[local]
        return local + lo, srows, decoded  # the stored side of changed rows: for the stats

    parts = []
    with progress.bar(n_chunks, "diff chunks", unit="chunk") as bar:
        if n_chunks > 1 and mat.zero_copy is not None:
            with ThreadPoolExecutor(_threads()) as pool:
                for part in pool.map(one, range(n_chunks)):
                    parts.append(part)
                    bar.update(1)
        else:
            for c in range(n_chunks):
                parts.append(one(c))
                bar.update(1)
    reader.save_seals(tv)
    info["chunks_compared"] = n_chunks
    info["chunks_decoded"] = sum(p[2] for p in parts)
    if not parts:
        return np.empty(0, np.int64)
    idx = np.concatenate([p[0] for p in parts]).astype(np.int64)
    stored.prefetched = (idx, np.concatenate([p[1] for p in parts]))
    return idx


def diff(a: Any, b: Any, *, keys_a: Any = None, keys_b: Any = None, stats: bool = True,
         exact: bool = True, procrustes: bool = False, knn: int = 0, sample: int = 10_000,
         seed: int = 0, backend: str = "auto") -> Diff:
    """Row-level diff of ``b`` against ``a``.

    Parameters
    ----------
    a, b
        Stored versions (``repo.open(table, rev)``), numpy arrays or anything
        :func:`embfmt.fingerprint` accepts, or paths of .npy, HDF5 (``file.h5:/dataset``) and
        .safetensors (``file:tensor``) files. Use :meth:`embfmt.Repo.diff` for revisions.
    keys_a, keys_b
        Row keys; stored versions use their own. With keys on both sides rows are matched by
        key (reordering is not a change), else by position.
    stats
        Compute per-row L2, cosine, max-abs and max-ULP for changed rows.
    exact
        Confirm rows whose rowprints agree by comparing bytes (default). ``False`` trusts
        XXH3-64 rowprints (a collision would hide a change; probability ~2^-64 per row).
    procrustes, knn, sample, seed
        Alignment-aware drift (orthogonal Procrustes) and exact kNN overlap (Jaccard@``knn``),
        each on a deterministic sample of at most ``sample`` matched rows.

    Examples
    --------
    >>> import numpy as np, embfmt
    >>> x = np.eye(4, dtype=np.float32); y = x.copy(); y[2, 2] = 0.5
    >>> d = embfmt.diff(x, y)
    >>> d.changed_b.tolist(), d.stats["l2"].tolist()
    ([2], [0.5])
    """
    from ..formats import open_matrix  # lazy: the file formats' libraries (h5py, ...)

    with ExitStack() as stack:
        ops = []
        for x in (a, b):
            if isinstance(x, (str, os.PathLike)):
                path, dataset = os.fspath(x), None
                if not os.path.exists(path) and ":" in path:
                    path, dataset = path.rsplit(":", 1)
                x = stack.enter_context(open_matrix(path, dataset))
            ops.append(x)
        return _diff(ops[0], ops[1], keys_a=keys_a, keys_b=keys_b, stats=stats, exact=exact,
                     procrustes=procrustes, knn=knn, sample=sample, seed=seed, backend=backend)


def _diff(a: Any, b: Any, *, keys_a: Any = None, keys_b: Any = None, stats: bool = True,
          exact: bool = True, procrustes: bool = False, knn: int = 0, sample: int = 10_000,
          seed: int = 0, backend: str = "auto") -> Diff:
    """Implementation of :func:`diff` on opened operands."""


    t0 = time.perf_counter()
    A, B = Side(a, keys_a, "a"), Side(b, keys_b, "b")
    if A.dtype != B.dtype or A.dim != B.dim:
        raise InputError(f"cannot diff {A.dtype.name} x {A.dim} against {B.dtype.name} x {B.dim}",
                         ErrorKind.SHAPE_MISMATCH)
    k = kernels(backend)
    info: dict[str, Any] = {}
    ka, kb = A.keys, B.keys
    keyed = ka is not None and kb is not None
    ia: np.ndarray | None
    ib: np.ndarray | None
    if ka is not None and kb is not None and not (A.n_rows == B.n_rows and np.array_equal(ka, kb)):
        ia, ib, added, removed = _match_keys(ka, kb)
        ca, cb = [], []
        step = max(1, (32 << 20) // A.row_bytes)
        for s in range(0, len(ia), step):
            ra, rb = A.gather(ia[s:s + step]), B.gather(ib[s:s + step])
            ne = np.flatnonzero(~k.rows_equal(np.ascontiguousarray(ra), np.ascontiguousarray(rb)))
            ca.append(ia[s:s + step][ne])
            cb.append(ib[s:s + step][ne])
        changed_a = np.concatenate(ca) if ca else np.empty(0, np.int64)
        changed_b = np.concatenate(cb) if cb else np.empty(0, np.int64)
        n_matched = len(ia)
        matched = "key"
    else:
        changed_b = _changed_positions(A, B, exact, k, info)
        changed_a = changed_b
        added = np.arange(A.n_rows, B.n_rows, dtype=np.int64)
        removed = np.arange(B.n_rows, A.n_rows, dtype=np.int64)
        n_matched = min(A.n_rows, B.n_rows)
        matched = "key" if keyed else "position"
        ia = ib = None
    t1 = time.perf_counter()
    result = Diff(A.n_rows, B.n_rows, A.dim, A.dtype.name, matched, changed_a.astype(np.int64),
                  changed_b.astype(np.int64), added, removed, n_matched - len(changed_b),
                  A.keys, B.keys)
    if stats:
        out = [np.empty(0, np.float64)] * 3 + [np.empty(0, np.uint64)]
        parts: list[tuple[np.ndarray, ...]] = []
        step = max(1, (32 << 20) // A.row_bytes)
        for s in range(0, len(changed_b), step):
            ra = A.gather(changed_a[s:s + step])
            rb = B.gather(changed_b[s:s + step])
            parts.append(k.row_stats(np.ascontiguousarray(ra), np.ascontiguousarray(rb), A.dtype.code))
        if parts:
            out = [np.concatenate([p[i] for p in parts]) for i in range(4)]
        result.stats = dict(zip(METRICS, out))
    t2 = time.perf_counter()
    if procrustes or knn:
        if ia is None or ib is None:  # both or neither (set together above)
            ia = ib = np.arange(n_matched, dtype=np.int64)
        sa, sb = sample_pairs(ia, ib, sample, seed)
        xa = A.gather(sa).view(A.dtype.numpy).astype(np.float64)
        xb = B.gather(sb).view(B.dtype.numpy).astype(np.float64)
        if procrustes:
            result.procrustes = procrustes_drift(xa, xb)
        if knn:
            result.knn = knn_overlap(xa, xb, knn)
    result.info = {"timing": {"match_s": round(t1 - t0, 6), "stats_s": round(t2 - t1, 6),
                              "total_s": round(time.perf_counter() - t0, 6)},
                   "backend": resolve_name(backend), **info}
    return result


def _match_keys(ka: np.ndarray, kb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(rows of a, rows of b) for common keys in b's order; rows of b added; rows of a removed."""
    if ka.dtype == object or kb.dtype == object:
        pos = {k: i for i, k in enumerate(ka)}
        ib_l, ia_l, added_l = [], [], []
        for j, k in enumerate(kb):
            i = pos.pop(k, None)
            if i is None:
                added_l.append(j)
            else:
                ia_l.append(i)
                ib_l.append(j)
        return (np.array(ia_l, np.int64), np.array(ib_l, np.int64), np.array(added_l, np.int64),
                np.array(sorted(pos.values()), np.int64))
    common, ia, ib = np.intersect1d(ka, kb, assume_unique=True, return_indices=True)
    order = np.argsort(ib, kind="stable")
    ia, ib = ia[order].astype(np.int64), ib[order].astype(np.int64)
    added = np.flatnonzero(~np.isin(kb, common)).astype(np.int64)
    removed = np.flatnonzero(~np.isin(ka, common)).astype(np.int64)
    return ia, ib, added, removed
