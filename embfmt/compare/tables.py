"""The tables of two revisions compared: diffs, changed rows and one table's change in detail.

Between a commit and its first parent the change object recorded at commit time answers
without decoding a chunk (spec §16.1), when it lists few enough rows; otherwise
:mod:`embfmt.compare.diff` compares the stored versions (unchanged chunks are never read).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _layout as L
from ..errors import NotFoundError
from ..history.listing import entry, stored_bytes
from ..history.revisions import Revisions
from ..objects.change import METRICS
from .diff import Diff, RowChanges, TablesDiff
from .diff import changed_rows as changed_views
from .diff import diff as diff_views
from .records import check_rows

__all__ = ["changed_rows", "diff", "diff_table", "diff_from_record", "table_detail", "RECORD_MAX_FRACTION"]

# changed_rows reads a parent <-> child answer from the change object when it lists at most
# this fraction of the rows: a change object costs 40 bytes a row to read and check,
# rowprints 8 (measured on 200k x 128 float32, every row changed: record 33 ms, rowprints
# from the rowprint cache 7 ms; 1% changed: record 1.6 ms).
RECORD_MAX_FRACTION = 0.125


def changed_rows(repo: Revisions, table: str, rev_a: str, rev_b: str = "HEAD", *, exact: bool = True) -> RowChanges:
    """Rows of ``table`` that differ between two revisions, by position (see
    :mod:`embfmt.compare.diff`): between a commit and its parent from the change object recorded
    at commit time; otherwise unchanged chunks are never read, and sparse patches answer
    without decompressing anything."""
    d = diff_from_record(repo, rev_a, rev_b, table, stats=False, max_changed=RECORD_MAX_FRACTION)
    if d is not None:  # positions: a record exists only where both sides share their keys
        return RowChanges(d.changed_b, d.added, d.removed, 0, 0)
    return changed_views(repo.reader, repo.table_version(table, rev_a),
                         repo.table_version(table, rev_b), exact=exact)


def diff_table(repo: Revisions, rev_a: str, rev_b: str, table: str, **kw: Any) -> Diff:
    """Row-level diff of ``table`` between two revisions, with both sides named in ``info``."""
    va, vb = repo.open(table, rev_a), repo.open(table, rev_b)  # each side read once
    d = diff_from_record(repo, rev_a, rev_b, table, **kw)
    if d is None:
        d = diff_views(va, vb, **kw)
    d.info["a"] = {"rev": rev_a, "commit": va.commit, "table": table, "fingerprint": va.fingerprint}
    d.info["b"] = {"rev": rev_b, "commit": vb.commit, "table": table, "fingerprint": vb.fingerprint}
    return d


def diff(repo: Revisions, rev_a: str, rev_b: str = "HEAD", table: str | None = None,
         **kw: Any) -> Diff | TablesDiff:
    """Row-level diff of ``table`` between two revisions (see :func:`embfmt.diff`).

    Without ``table``, every table of either revision: a :class:`~embfmt.compare.diff.TablesDiff`,
    a mapping of table name -> :class:`~embfmt.compare.diff.Diff` for the tables both have (with the
    same dtype and D), whose ``added``, ``removed`` and ``schema_changed`` name the others
    and whose ``identical`` is True only when no table was added, removed or changed.

    >>> import numpy as np, tempfile, embfmt
    >>> repo = embfmt.Repo.init(tempfile.mkdtemp())
    >>> _ = repo.commit({"a": np.zeros((3, 2), np.float32), "b": np.zeros((3, 2), np.float32)})
    >>> _ = repo.commit({"b": np.ones((3, 2), np.float32), "c": np.ones((1, 2), np.float32)})
    >>> d = repo.diff("HEAD~1", "HEAD")
    >>> d.status(), d["b"].n_changed, d.identical
    ({'a': 'unchanged', 'b': 'changed', 'c': 'added'}, 3, False)
    """
    if table is not None:
        return diff_table(repo, rev_a, rev_b, table, **kw)
    ca, cb = repo.resolve(rev_a), repo.resolve(rev_b)
    ta, tb = repo.get_commit(ca).tables, repo.get_commit(cb).tables

    def info(tid: str) -> dict[str, Any]:
        tv = repo.get_table_version(tid)
        return {"rows": tv.n_rows, "dim": tv.dim, "dtype": tv.dtype.name,
                "fingerprint": tv.fingerprint, "version": tid}

    diffs, schema = {}, {}
    for t in sorted(set(ta) & set(tb)):
        a, b = repo.get_table_version(ta[t]), repo.get_table_version(tb[t])
        if a.dtype != b.dtype or a.dim != b.dim:
            schema[t] = (info(ta[t]), info(tb[t]))
        else:
            diffs[t] = diff_table(repo, ca, cb, t, **kw)
            diffs[t].info["a"]["rev"], diffs[t].info["b"]["rev"] = rev_a, rev_b
    return TablesDiff(diffs, {t: info(tb[t]) for t in set(tb) - set(ta)},
                      {t: info(ta[t]) for t in set(ta) - set(tb)}, schema,
                      {"a": {"rev": rev_a, "commit": ca}, "b": {"rev": rev_b, "commit": cb}})


def diff_from_record(repo: Revisions, rev_a: str, rev_b: str, table: str, *, stats: bool = True,
                     exact: bool = True, procrustes: bool = False, knn: int = 0,
                     max_changed: float = 1.0, **kw: Any) -> Diff | None:
    """Parent <-> child diffs straight from the change object (no chunk is decoded); None
    when it does not apply, or when the record lists more than ``max_changed`` of the
    rows (its header says so: nothing else is read). Gives exactly what the full
    computation gives."""
    if procrustes or knn or kw.get("keys_a") is not None or kw.get("keys_b") is not None \
            or kw.get("backend", "auto") == "reference":
        return None
    ca, cb = repo.resolve(rev_a), repo.resolve(rev_b)
    for child, parent, flip in ((cb, ca, False), (ca, cb, True)):
        c = repo.get_commit(child)
        if not c.parents or c.parents[0] != parent or table not in c.tables:
            continue
        p = repo.get_commit(parent)
        if table not in p.tables:
            continue
        if max_changed < 1.0:
            n_listed = repo.change_count(child, table)
            rows = repo.get_table_version(c.tables[table]).n_rows
            if n_listed is None or n_listed > max_changed * max(1, rows):
                continue
        rec = repo.change_record(child, table)
        if rec is None or rec.table.hex() != c.tables[table] or rec.parent_table.hex() != p.tables[table]:
            continue
        rec_id = repo.change_id(child, table)
        tv_child = repo.get_table_version(c.tables[table])
        tv_parent = repo.get_table_version(p.tables[table])
        # A record answers only once its rows are those whose rowprints differ (no chunk is
        # decoded); its drift values are the writer's statement, which verify recomputes.
        check_rows(rec, repo.reader, tv_parent, tv_child, f"change object {rec_id}")
        ka = tv_parent.keys_id
        if (ka is not None or tv_child.keys_id is not None) and ka != tv_child.keys_id:
            continue  # keyed matching with different keys: not a positional diff
        n_a, n_b = (tv_child.n_rows, tv_parent.n_rows) if flip else (tv_parent.n_rows, tv_child.n_rows)
        keys = repo.keys_of(ka, tv_parent.n_rows) if ka is not None else None
        d = Diff(n_a, n_b, tv_child.dim, tv_child.dtype.name, "key" if keys is not None else "position",
                 rec.index, rec.index, np.arange(n_a, n_b, dtype=np.int64),
                 np.arange(n_b, n_a, dtype=np.int64), min(n_a, n_b) - len(rec.index), keys, keys)
        if stats:
            d.stats = dict(zip(METRICS, rec.drift))
        d.info = {"source": "change-record"}
        return d
    return None


def table_detail(repo: Revisions, rev: str, table: str) -> dict[str, Any]:
    """One table version of ``rev`` in detail: :func:`list_tables`' entry, the stored bytes by
    kind, the chunks by codec, and its change against the first parent commit (from the
    change record written at commit time: rows changed, added, removed and their drift)."""
    cid = repo.resolve(rev)
    c = repo.get_commit(cid)
    if table not in c.tables:
        raise NotFoundError(f"no table {table!r} in revision {rev!r} (tables: "
                            f"{', '.join(sorted(c.tables)) or 'none'})")
    tid = c.tables[table]
    tv = repo.get_table_version(tid)
    out = entry(repo, table, tid)
    out.update(rev=rev, commit=cid, stored=stored_bytes(repo, tid, tv), chunk_rows=tv.chunk_rows)
    codecs: dict[str, int] = {}
    for d in tv.digests:
        h = repo.reader.header(d)
        name = L.CODEC_NAMES.get(h.codec, str(h.codec))
        codecs[name] = codecs.get(name, 0) + 1
    out["codecs"] = dict(sorted(codecs.items()))
    parent = repo.get_commit(c.parents[0]) if c.parents else None
    ptid = parent.tables.get(table) if parent is not None else None
    change: dict[str, Any] = {"parent": c.parents[0] if c.parents else None}
    if ptid is None:
        change["status"] = "new"
    elif ptid == tid:
        change["status"] = "unchanged"
    else:
        ptv = repo.get_table_version(ptid)
        change.update(status="changed", parent_version=ptid, parent_rows=ptv.n_rows,
                      rows_added=max(0, tv.n_rows - ptv.n_rows),
                      rows_removed=max(0, ptv.n_rows - tv.n_rows))
        rec = repo.change_record(cid, table)
        if rec is not None and rec.table.hex() == tid and rec.parent_table.hex() == ptid:
            m = min(ptv.n_rows, tv.n_rows)
            recorded = Diff(ptv.n_rows, tv.n_rows, tv.dim, tv.dtype.name, "position", rec.index, rec.index,
                            rec.index[:0], rec.index[:0], m - len(rec.index),
                            stats=dict(zip(METRICS, rec.drift)))
            change.update(rows_changed=len(rec.index), drift=recorded.to_dict(top=0)["summary"])
        else:  # schema changed, or a writer that records no change object
            change.update(rows_changed=None, drift=None)
    out["change"] = change
    return out
