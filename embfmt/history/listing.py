"""What a revision holds, table by table: ``embfmt ls`` and ``embfmt show REV:TABLE``.

Everything here is read from object headers and metadata: no chunk is decoded. The stored
bytes of a table version are the sizes of the objects a read of it touches: the table-version
object, its key object, and every chunk object with every base on its delta chain, each
counted once (objects shared with other versions count in full for each version, as
``du`` counts hard links in each directory).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..objects.table_version import TableVersion
    from ..repo import Repo

__all__ = ["list_tables", "table_detail", "stored_bytes"]


def stored_bytes(repo: Repo, tid: str, tv: TableVersion) -> dict[str, int]:
    """Object sizes behind table version ``tid``: chunks (with delta bases), keys, the version."""
    objs: set[bytes] = set()
    for d in tv.digests:
        if d not in objs:
            objs.update(repo.reader.chain(d))
    chunks = sum(repo.store.size(o) for o in objs)
    keys = repo.store.size(tv.keys_id) if tv.keys_id is not None else 0
    return {"chunks": chunks, "keys": keys, "table_version": repo.store.size(bytes.fromhex(tid)),
            "chunk_objects": len(objs)}


def _entry(repo: Repo, name: str, tid: str) -> dict[str, Any]:
    tv = repo.get_table_version(tid)
    st = stored_bytes(repo, tid, tv)
    return {"table": name, "version": tid, "dtype": tv.dtype.name, "rows": tv.n_rows, "dim": tv.dim,
            "bytes_raw": tv.n_rows * tv.dim * tv.dtype.itemsize,
            "bytes_stored": st["chunks"] + st["keys"] + st["table_version"],
            "keys": tv.keys_id is not None, "keys_count": tv.n_rows if tv.keys_id is not None else 0,
            "identity": tv.identity, "fingerprint": tv.fingerprint, "chunks": tv.n_chunks}


def list_tables(repo: Repo, rev: str = "HEAD") -> dict[str, Any]:
    """The tables of ``rev``: dtype, shape, raw and stored bytes, keys, identity, fingerprint."""
    cid = repo.resolve(rev)
    c = repo.get_commit(cid)
    return {"rev": rev, "commit": cid,
            "tables": [_entry(repo, name, tid) for name, tid in sorted(c.tables.items())]}


def table_detail(repo: Repo, rev: str, table: str) -> dict[str, Any]:
    """One table version of ``rev`` in detail: :func:`list_tables`' entry, the stored bytes by
    kind, the chunks by codec, and its change against the first parent commit (from the
    change record written at commit time: rows changed, added, removed and their drift)."""
    from .. import _layout as L
    from ..compare.diff import Diff

    cid = repo.resolve(rev)
    c = repo.get_commit(cid)
    if table not in c.tables:
        from ..errors import NotFoundError

        raise NotFoundError(f"no table {table!r} in revision {rev!r} (tables: "
                            f"{', '.join(sorted(c.tables)) or 'none'})")
    tid = c.tables[table]
    tv = repo.get_table_version(tid)
    out = _entry(repo, table, tid)
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
            d = Diff(ptv.n_rows, tv.n_rows, tv.dim, tv.dtype.name, "position", rec.index, rec.index,
                     rec.index[:0], rec.index[:0], m - len(rec.index),
                     stats={"l2": rec.l2, "cosine": rec.cosine, "max_abs": rec.max_abs, "ulp": rec.ulp})
            change.update(rows_changed=len(rec.index), drift=d.to_dict(top=0)["summary"])
        else:  # schema changed, or a writer that records no change object
            change.update(rows_changed=None, drift=None)
    out["change"] = change
    return out
