"""Revert: undo the change one commit made, as a new commit (git's revert).

The inverse of a commit's change against its first parent is worked out here, table by table
and, where a table changed again since, row by row (a comparison of stored versions); the
result is committed through the one commit path, :meth:`Transaction.commit_prepared`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import resolve_name
from ..errors import ConflictError, ErrorKind, InputError, NotFoundError
from ..history.revisions import Revisions
from ..history.transaction import PreparedTable, Transaction, commit_meta
from ..objects.names import check_ref_name
from ..objects.table_version import TableVersion
from .tables import changed_rows

__all__ = ["revert"]


def _bits(rows: np.ndarray, u: Any) -> np.ndarray:
    """Rows as unsigned words of their itemsize: equality of bits (NaN payloads, -0.0)."""
    out: np.ndarray = np.ascontiguousarray(rows).view(u).reshape(rows.shape[0], -1)
    return out


def _conflict_text(what: Any) -> str:
    if isinstance(what, str):
        return what
    rows = ", ".join(map(str, what[:10])) + (f" ... ({len(what)} rows in all)" if len(what) > 10 else "")
    return f"rows {rows} changed since"


def revert(revs: Revisions, tx: Transaction, rev: str, *, branch: str | None = None,
           message: str | None = None, author: str | None = None, backend: str = "auto") -> str:
    """Undo the change commit ``rev`` made, as a new commit on ``branch`` (git's revert):
    the inverse of ``rev``'s change against its first parent, applied to the branch head.

    Per table: a table ``rev`` added is removed, one it removed comes back, and one it
    changed goes back to the parent's version when the head still holds ``rev``'s
    version (no chunk is written). When the table changed again since, the revert works
    row by row, by position: rows ``rev`` changed get their parent values back, rows it
    appended are removed and rows it truncated come back, provided the head still holds
    ``rev``'s values for them. A row (or table) changed since is a conflict:
    :class:`ConflictError` (``revert-conflict``) whose ``conflicts`` maps each table to
    the rows at fault (or to a reason), and nothing is committed.

    Examples
    --------
    >>> import numpy as np, tempfile, embfmt
    >>> repo = embfmt.Repo.init(tempfile.mkdtemp())
    >>> x = np.zeros((4, 2), np.float32)
    >>> _ = repo.commit({"t": x}, message="zeros")
    >>> x[1] = 1
    >>> bad = repo.commit({"t": x}, message="row 1 set")
    >>> x[3] = 3
    >>> _ = repo.commit({"t": x}, message="row 3 set")
    >>> _ = repo.revert(bad)
    >>> repo.read("t")[:, 0].tolist()
    [0.0, 0.0, 0.0, 3.0]
    """
    target = revs.resolve(rev)
    branch = check_ref_name(revs.head_branch if branch is None else branch, "branch")
    c = revs.get_commit(target)
    parent = c.parents[0] if c.parents else None
    p_tables = dict(revs.get_commit(parent).tables) if parent else {}
    head_id = revs.refs.read("heads", branch)
    if head_id is None:
        raise NotFoundError(f"branch {branch!r} has no commits to revert {rev!r} on")
    h_tables = dict(revs.get_commit(head_id).tables)
    reuse: dict[str, str] = {}  # table -> an existing version that comes back
    remove: list[str] = []
    rows_back: list[tuple[str, TableVersion, TableVersion, TableVersion]] = []
    conflicts: dict[str, Any] = {}
    for t in sorted(set(c.tables) | set(p_tables)):
        pv, rv, hv = p_tables.get(t), c.tables.get(t), h_tables.get(t)
        if pv == rv:
            continue  # rev did not touch t
        if hv == rv:  # the head holds what rev made: the parent's state comes back whole
            if pv is None:
                remove.append(t)
            else:
                reuse[t] = pv
        elif pv is None:
            if hv is not None:
                conflicts[t] = "added by the commit and changed since"
        elif rv is None:
            conflicts[t] = "removed by the commit and added again since"
        elif hv is None:
            conflicts[t] = "changed by the commit and removed since"
        else:
            rows_back.append((t, revs.get_table_version(pv), revs.get_table_version(rv),
                              revs.get_table_version(hv)))
    prepared: list[PreparedTable] = []
    for t, ptv, rtv, htv in rows_back:
        res = _revert_rows(revs, t, parent, target, ptv, rtv, htv)
        if isinstance(res, tuple):
            out, keys, ident = res
            prepared.append(tx.prepare_table(t, out, htv, keys, ident, True, False))
        else:
            conflicts[t] = res
    if conflicts:
        named = target[:12] + (f" ({rev})" if rev != target else "")
        e = ConflictError(f"cannot revert {named}: "
                          + "; ".join(f"table {t!r} {_conflict_text(v)}" for t, v in sorted(conflicts.items()))
                          + "; nothing was committed", ErrorKind.REVERT_CONFLICT)
        e.conflicts = conflicts  # type: ignore[attr-defined]
        raise e
    if not reuse and not remove and not prepared:
        raise InputError(f"commit {target[:12]} changed no table: nothing to revert",
                         ErrorKind.BAD_ARGUMENT)
    first = c.message.splitlines()[0] if c.message else target[:12]
    text = message if message is not None else f'Revert "{first}"\n\nThis reverts commit {target}.'
    meta = commit_meta(text, None)
    # versions that come back are reused objects: refreshed under a lease (spec §18.4)
    return tx.commit_prepared(branch, head_id, prepared, reuse, tuple(remove), text, meta, author,
                              resolve_name(backend), embfmt_meta={"reverts": target})


def _revert_rows(revs: Revisions, table: str, parent: str | None, target: str, ptv: TableVersion,
                 rtv: TableVersion, htv: TableVersion) -> tuple[np.ndarray, Any, dict[str, Any] | None] | str | list[int]:
    """The head's rows of ``table`` with the change ``target`` made undone, by position:
    (rows, keys, identity); or what conflicts (a list of rows, or a reason)."""
    if len({(v.dtype, v.dim) for v in (ptv, rtv, htv)}) > 1:
        return "changed dtype or D (revert it by hand)"
    np_, nr, nh = ptv.n_rows, rtv.n_rows, htv.n_rows
    kp, kr, kh = (revs.keys_of(v.keys_id, v.n_rows) if v.keys_id is not None else None
                  for v in (ptv, rtv, htv))
    m = min(np_, nr)
    if kp is not None and kr is not None and not np.array_equal(kp[:m], kr[:m]):
        return "changed row keys (revert it by hand)"
    if kh is not None and kr is not None and not np.array_equal(kh[:min(nh, nr)], kr[:min(nh, nr)]):
        return "has row keys changed since"
    ch = changed_rows(revs, table, parent, target) if parent else None
    assert ch is not None  # a changed table has a parent version, so the commit a parent
    rv = revs.view(rtv, table)
    hv = revs.view(htv, table)
    pview = revs.view(ptv, table)
    mine = np.concatenate([ch.changed, ch.added]).astype(np.int64)  # rows rev wrote
    bad: list[int] = mine[mine >= nh].tolist()
    have = mine[mine < nh]
    if len(have):
        u = np.dtype(f"u{htv.dtype.itemsize}")
        same = (_bits(hv.rows(have), u) == _bits(rv.rows(have), u)).all(axis=1)
        bad = sorted(bad + have[~same].tolist())
    if len(ch.removed) and nh < nr:
        bad += list(range(nh, nr))  # rows rev kept that the head no longer has
    if bad:
        return bad
    out = hv.read()  # a fresh array: ours to change
    if len(ch.changed):
        out[ch.changed] = pview.rows(ch.changed)
    keys = kh
    if len(ch.added):  # rows rev appended go; rows appended after them move up
        out = np.concatenate([out[:np_], out[nr:]])
        keys = None if kh is None else np.concatenate([kh[:np_], kh[nr:]])
    elif len(ch.removed):  # rows rev truncated come back where they were
        out = np.concatenate([out[:nr], pview[nr:np_], out[nr:]])
        if kh is not None:
            if kp is None:
                return "has row keys, but the rows it removed had none"
            keys = np.concatenate([kh[:nr], kp[nr:np_], kh[nr:]])
    ident = ptv.identity if htv.identity == rtv.identity else htv.identity
    return out, (keys.tolist() if keys is not None and keys.dtype == object else keys), ident
