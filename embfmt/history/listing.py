"""What a revision holds, table by table: ``embfmt ls`` (``show REV:TABLE`` adds the change:
:func:`embfmt.compare.tables.table_detail`).

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
    from .revisions import Revisions

__all__ = ["list_tables", "stored_bytes", "entry"]


def stored_bytes(repo: Revisions, tid: str, tv: TableVersion) -> dict[str, int]:
    """Object sizes behind table version ``tid``: chunks (with delta bases), keys, the version."""
    objs: set[bytes] = set()
    for d in tv.digests:
        if d not in objs:
            objs.update(repo.reader.chain(d))
    chunks = sum(repo.store.size(o) for o in objs)
    keys = repo.store.size(tv.keys_id) if tv.keys_id is not None else 0
    return {"chunks": chunks, "keys": keys, "table_version": repo.store.size(bytes.fromhex(tid)),
            "chunk_objects": len(objs)}


def entry(repo: Revisions, name: str, tid: str) -> dict[str, Any]:
    tv = repo.get_table_version(tid)
    st = stored_bytes(repo, tid, tv)
    return {"table": name, "version": tid, "dtype": tv.dtype.name, "rows": tv.n_rows, "dim": tv.dim,
            "bytes_raw": tv.n_rows * tv.dim * tv.dtype.itemsize,
            "bytes_stored": st["chunks"] + st["keys"] + st["table_version"],
            "keys": tv.keys_id is not None, "keys_count": tv.n_rows if tv.keys_id is not None else 0,
            "identity": tv.identity, "fingerprint": tv.fingerprint, "chunks": tv.n_chunks}


def list_tables(repo: Revisions, rev: str = "HEAD") -> dict[str, Any]:
    """The tables of ``rev``: dtype, shape, raw and stored bytes, keys, identity, fingerprint;
    decodes no chunk.

    >>> import numpy as np, tempfile, embfmt
    >>> repo = embfmt.Repo.init(tempfile.mkdtemp())
    >>> _ = repo.commit({"emb": np.ones((4, 3), np.float32)}, keys={"emb": ["a", "b", "c", "d"]})
    >>> [(t["table"], t["rows"], t["bytes_raw"], t["keys_count"]) for t in repo.ls()["tables"]]
    [('emb', 4, 48, 4)]
    """
    cid = repo.resolve(rev)
    c = repo.get_commit(cid)
    return {"rev": rev, "commit": cid,
            "tables": [entry(repo, name, tid) for name, tid in sorted(c.tables.items())]}
