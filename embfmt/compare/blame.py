"""Blame: the versions in which one row of a table changed, with the drift of each change.

From a revision, the walk follows first parents back to the first commit, then goes forward
over consecutive versions of the table. For each pair it decides whether the row changed at
the least cost:

1. the same table-version id: unchanged (nothing is read);
2. the row sits at the same offset of chunks with the same digest: unchanged (the chunk
   digest is BLAKE3 of the rows);
3. otherwise the two rowprints (XXH3-64 of the row, read from the chunks' header and rowprint
   sections, never from payloads) decide. Like ``diff(exact=False)``, this trusts rowprints:
   a 2^-64 collision would hide a change.

A chunk payload is decoded only for a row that did change and whose drift the commit's change
object (spec §16.1) does not already hold, i.e. when rows moved (keys reordered) or no change
object applies.

Rows are followed by position (``row=``) or by key (``key=``: the row holding that key in
each version, so reordering or inserting rows does not count as a change of that key's row).

Examples
--------
>>> import numpy as np, tempfile, embfmt
>>> repo = embfmt.Repo.init(tempfile.mkdtemp())
>>> x = np.zeros((10, 4), dtype=np.float32)
>>> _ = repo.commit({"emb": x}, message="init")
>>> x[3] = 1.0
>>> _ = repo.commit({"emb": x}, message="bump row 3")
>>> _ = repo.commit({"emb": x[:8]}, message="truncate")
>>> [(e.kind, e.message, e.drift and e.drift["l2"]) for e in repo.blame("emb", 3)]
[('changed', 'bump row 3', 2.0), ('added', 'init', None)]
>>> [e.kind for e in repo.blame("emb", 9)]
['removed', 'added']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..backend import kernels
from ..errors import ErrorKind, InputError, NotFoundError
from ..objects.table_version import TableVersion
from ..objects.change import METRICS
from ..objects.names import check_ref_name

if TYPE_CHECKING:
    from ..history.revisions import Revisions

__all__ = ["BlameEntry", "BlameReport", "blame"]

@dataclass(frozen=True)
class BlameEntry:
    """One version in which the row was added, changed or removed."""

    kind: str
    """``added`` (the row exists here and not in the parent: first appearance, an append, a new
    key, a re-added table), ``changed`` (its bytes differ from the parent's row) or ``removed``."""
    commit: str
    parent: str | None
    """The first parent (None for the first commit)."""
    time: str
    author: str
    message: str
    table_version: str | None
    """The table-version id at ``commit`` (None when the table itself was removed)."""
    row: int | None
    """The row's index in this version (None when removed)."""
    parent_row: int | None
    """The row's index in the parent's version (None when added)."""
    key: Any = None
    drift: dict[str, Any] | None = None
    """For ``changed``: ``l2``, ``cosine``, ``max_abs`` (floats) and ``ulp`` (int), spec §20;
    None when the dtype or D changed (no row drift is defined across schemas)."""
    drift_source: str | None = None
    """``change-record`` (read from the commit's change object) or ``computed`` (from the two
    decoded rows); None without drift."""
    schema_change: bool = False
    """The dtype or D differs from the parent's version."""

    def to_dict(self) -> dict[str, Any]:
        drift = None
        if self.drift is not None:
            drift = {k: (v if isinstance(v, int) or np.isfinite(v) else str(v)) for k, v in self.drift.items()}
        key = self.key.item() if isinstance(self.key, np.generic) else self.key
        return {"kind": self.kind, "commit": self.commit, "parent": self.parent, "time": self.time,
                "author": self.author, "message": self.message, "table_version": self.table_version,
                "row": self.row, "parent_row": self.parent_row, "key": key, "drift": drift,
                "drift_source": self.drift_source, "schema_change": self.schema_change}


@dataclass
class BlameReport:
    """:func:`blame`'s answer: the entries, newest first, and what the walk cost."""

    table: str
    rev: str
    commit: str
    row: int | None
    key: Any
    entries: list[BlameEntry] = field(default_factory=list)
    commits_walked: int = 0
    versions_compared: int = 0
    rowprint_reads: int = 0
    """Chunks whose rowprints were read (header + rowprint section only)."""
    chunks_decoded: int = 0
    """Chunk payloads decoded (only for changed rows without a change record)."""

    def to_dict(self) -> dict[str, Any]:
        key = self.key.item() if isinstance(self.key, np.generic) else self.key
        return {"table": self.table, "rev": self.rev, "commit": self.commit, "row": self.row,
                "key": key, "entries": [e.to_dict() for e in self.entries],
                "stats": {"commits_walked": self.commits_walked,
                          "versions_compared": self.versions_compared,
                          "rowprint_reads": self.rowprint_reads,
                          "chunks_decoded": self.chunks_decoded}}


@dataclass(frozen=True)
class _State:
    """The row in one version of the table."""

    tid: str
    tv: TableVersion
    idx: int


class _Walker:
    def __init__(self, repo: Revisions, table: str, row: int | None, key: Any, report: BlameReport) -> None:
        self.repo, self.table, self.row, self.key, self.report = repo, table, row, key, report
        self.tvs: dict[str, TableVersion] = {}
        self.key_rows: dict[tuple[bytes, int], int | None] = {}

    def version(self, tid: str) -> TableVersion:
        tv = self.tvs.get(tid)
        if tv is None:
            tv = self.tvs[tid] = self.repo.get_table_version(tid)
            self.repo.reader.load_seals(tv)  # its rowprints are read through bound headers
        return tv

    def locate(self, tv: TableVersion) -> int | None:
        """The row's index in ``tv``, or None when it has no such row."""
        if self.key is None:
            assert self.row is not None
            return self.row if self.row < tv.n_rows else None
        kid = tv.keys_id
        if kid is None:  # a version without keys has no row for any key
            return None
        if (kid, tv.n_rows) not in self.key_rows:  # key objects repeat across versions: look each up once
            keys = self.repo.keys_of(kid, tv.n_rows)
            hit = self.key_rows[kid, tv.n_rows] = _find_key(keys, self.key)
            if hit is not None and keys.dtype != object and isinstance(self.key, str):
                self.key = int(keys[hit])  # "42" from the command line is the integer key 42
        return self.key_rows[kid, tv.n_rows]

    def rowprint(self, digest: bytes, off: int) -> int:
        self.report.rowprint_reads += 1
        return int(self.repo.reader.rowprints(digest)[off])

    def changed(self, a: _State, b: _State) -> bool:
        cr = a.tv.chunk_rows
        ca, oa = divmod(a.idx, cr)
        cb, ob = divmod(b.idx, cr)
        da, db = a.tv.digests[ca], b.tv.digests[cb]
        if da == db and oa == ob:
            return False  # the same chunk content, the same place in it
        return self.rowprint(da, oa) != self.rowprint(db, ob)

    def drift(self, cid: str, a: _State, b: _State) -> tuple[dict[str, Any], str]:
        if a.idx == b.idx:
            # The change object lists rows by position against the first parent's version: it
            # applies when it names exactly these two versions and the row did not move.
            rec = self.repo.change_record(cid, self.table)
            if rec is not None and rec.table.hex() == b.tid and rec.parent_table.hex() == a.tid:
                j = int(np.searchsorted(rec.index, b.idx))
                if j < len(rec.index) and int(rec.index[j]) == b.idx:
                    return _drift_of(rec.drift, j), "change-record"
        ra, rb = self.raw_row(a), self.raw_row(b)
        # One row: the readable numpy oracle is exact (spec §20) and needs no JIT warm-up.
        return _drift_of(kernels("reference").row_stats(ra[None, :], rb[None, :], b.tv.dtype.code), 0), "computed"

    def raw_row(self, s: _State) -> np.ndarray:
        c, off = divmod(s.idx, s.tv.chunk_rows)
        self.report.chunks_decoded += 1
        reader = self.repo.reader
        return np.ascontiguousarray(reader.rows(s.tv.digests[c], fits=reader.expected(s.tv, c))[off])


def _drift_of(drift: Any, j: int) -> dict[str, Any]:
    """Row ``j`` of per-row drift arrays (in :data:`METRICS` order) as plain numbers."""
    return {m: (int(v[j]) if m == "ulp" else float(v[j])) for m, v in zip(METRICS, drift)}


def _find_key(keys: np.ndarray, key: Any) -> int | None:
    """Index of ``key`` in ``keys``; a decimal string matches an integer key (for the CLI)."""
    if keys.dtype == object:
        if not isinstance(key, str):
            return None
        hits = np.flatnonzero(keys == key)
    else:
        if isinstance(key, (bool, np.bool_)):
            return None
        if isinstance(key, str):
            try:
                key = int(key.strip(), 10)
            except ValueError:
                return None
        if not isinstance(key, (int, np.integer)) or not -(1 << 63) <= int(key) < (1 << 63):
            return None
        hits = np.flatnonzero(keys == np.int64(key))
    return int(hits[0]) if len(hits) else None


def blame(repo: Revisions, table: str, row: int | None = None, *, key: Any = None,
          rev: str = "HEAD") -> BlameReport:
    """The versions, on the first-parent history of ``rev``, in which one row of ``table`` was
    added, changed or removed, newest first.

    Parameters
    ----------
    table
        The table name.
    row
        Follow the row at this position (0-based). It may be past the end of the table at
        ``rev``: the history then ends with its removal.
    key
        Follow the row holding this key instead (int or str; a decimal string matches an
        integer key). Versions without keys hold no row for any key.
    rev
        Where the walk starts (any revision, or a stamp).

    Raises :class:`NotFoundError` when the row (or key) exists in no version of the walk.
    """
    check_ref_name(table, "table")
    if (row is None) == (key is None):
        raise InputError("blame needs exactly one of a row index or a key", ErrorKind.BAD_ARGUMENT)
    if row is not None:
        if isinstance(row, (bool, np.bool_)) or not isinstance(row, (int, np.integer)) or row < 0:
            raise InputError(f"row must be an integer >= 0, got {row!r}", ErrorKind.BAD_ARGUMENT)
        row = int(row)
    head = repo.resolve(rev)
    report = BlameReport(table, rev, head, row, key)
    w = _Walker(repo, table, row, key, report)
    chain = []
    cid: str | None = head
    while cid is not None:
        c = repo.get_commit(cid)
        chain.append((cid, c))
        cid = c.parents[0] if c.parents else None
    report.commits_walked = len(chain)
    chain.reverse()
    prev_tid: str | None = None
    prev: _State | None = None
    prev_cid: str | None = None
    seen = False
    events: list[BlameEntry] = []
    for cid, c in chain:
        tid = c.tables.get(table)
        if tid is not None and tid == prev_tid:
            prev_cid = cid
            continue  # the same version: nothing about the row can differ
        cur: _State | None = None
        if tid is not None:
            tv = w.version(tid)
            idx = w.locate(tv)
            if idx is not None:
                # The row's chunk holds what this version puts there (spec §18.2): a version
                # whose header lies about its rows or D answers nothing about the row.
                repo.reader.chunk_of(tv, idx // tv.chunk_rows)
                cur = _State(tid, tv, idx)
                seen = True
        base: dict[str, Any] = {"commit": cid, "parent": c.parents[0] if c.parents else None,
                                "time": c.time, "author": c.author, "message": c.message,
                                "table_version": tid, "key": w.key}
        if prev is None and cur is not None:
            events.append(BlameEntry("added", row=cur.idx, parent_row=None, **base))
        elif prev is not None and cur is None:
            events.append(BlameEntry("removed", row=None, parent_row=prev.idx, **base))
        elif prev is not None and cur is not None:
            report.versions_compared += 1
            if prev.tv.dtype != cur.tv.dtype or prev.tv.dim != cur.tv.dim:
                events.append(BlameEntry("changed", row=cur.idx, parent_row=prev.idx,
                                         schema_change=True, **base))
            elif w.changed(prev, cur):
                assert prev_cid is not None
                d, src = w.drift(cid, prev, cur)
                events.append(BlameEntry("changed", row=cur.idx, parent_row=prev.idx, drift=d,
                                         drift_source=src, **base))
        prev, prev_tid, prev_cid = cur, tid, cid
    if not seen:
        what = f"key {key!r}" if key is not None else f"row {row}"
        raise NotFoundError(f"table {table!r} has no {what} in any version on the first-parent "
                            f"history of {rev!r} ({len(chain)} commits)")
    events.reverse()
    report.entries = events
    report.key = w.key
    return report
