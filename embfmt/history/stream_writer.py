"""The streaming writer: one table's new version written block by block, at any row offset,
then committed through the commit transaction (:meth:`embfmt.Repo.writer`).

Rows go through a :class:`~embfmt.history.stream.RowStream` (bounded memory: rows written ahead
wait in a scratch file); nothing is visible until :meth:`StreamWriter.commit` lands.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from ..backend import resolve_name
from ..canonical.dtype import dtype_of
from ..canonical.matrix import as_matrix, check_shape
from ..errors import ConflictError, ErrorKind, InputError
from ..objects.names import check_ref_name
from .transaction import Transaction, commit_meta

__all__ = ["StreamWriter"]


class StreamWriter:
    """Write one table version block by block; commit on a clean exit.

    Made by :meth:`embfmt.Repo.writer`. Use it as a context manager: the commit happens when
    the ``with`` block ends without an exception (or on an explicit :meth:`commit`), and its id
    is :attr:`commit_id`. An exception, :meth:`abort`, or a killed process commits nothing.

    Blocks may come in any order and any size (a block is anything :func:`embfmt.fingerprint`
    accepts: numpy, torch on CPU or GPU, CuPy, h5py, ``__array__``), must have the table's dtype
    and D, and every row must be written before the commit. Memory stays bounded by a few
    chunks: rows written ahead of the first missing row wait in a scratch file on disk.

    Examples
    --------
    >>> import numpy as np, tempfile, embfmt
    >>> repo = embfmt.Repo.init(tempfile.mkdtemp())
    >>> x = np.arange(12_000, dtype=np.float32).reshape(3000, 4)
    >>> with repo.writer("item_emb", shape=x.shape, dtype="float32", message="streamed") as w:
    ...     w.write(2000, x[2000:])      # any order
    ...     w.write(0, x[:1000])
    ...     w.append(x[1000:2000])       # after the previous block
    >>> w.commit_id == repo.resolve("HEAD")
    True
    >>> embfmt.fingerprint(x).root == repo.open("item_emb").fingerprint
    True
    """

    def __init__(self, tx: Transaction, table: str, shape: tuple[int, int], dtype: Any, *,
                 keys: Any = None, identity: Mapping[str, Any] | None = None, message: str = "",
                 metadata: Mapping[str, Any] | None = None, branch: str | None = None,
                 author: str | None = None, allow_identity_change: bool = False,
                 allow_schema_change: bool = False, backend: str = "auto") -> None:
        revs = tx.revs
        self._tx = tx
        self.table = check_ref_name(table, "table")
        self.branch = check_ref_name(revs.head_branch if branch is None else branch, "branch")
        try:
            n_rows, dim = (int(s) for s in shape)
        except (TypeError, ValueError):
            raise InputError(f"table {table!r}: shape must be (rows, dim), got {shape!r}",
                             ErrorKind.NOT_A_MATRIX) from None
        self.dtype = dtype_of(dtype)
        check_shape(n_rows, dim, self.dtype, f"table {table!r}")
        self.shape = (n_rows, dim)
        self._meta = commit_meta(message, metadata)
        self._message = message
        self._author = author
        self._backend = resolve_name(backend)
        self._parent_id = revs.refs.read("heads", self.branch)
        parent_tables = dict(revs.get_commit(self._parent_id).tables) if self._parent_id else {}
        self._ptv = revs.get_table_version(parent_tables[table]) if table in parent_tables else None
        ident = dict(identity) if identity is not None else None
        self._keys, self._identity = tx.check_table(
            table, self.dtype, n_rows, dim, self._ptv, keys, ident, allow_identity_change,
            allow_schema_change)
        self._stream = tx.stream(table, self.dtype, n_rows, dim, self._ptv, self._backend)
        self._lock = threading.Lock()
        self._next = 0
        self._state = "open"
        self.commit_id: str | None = None

    @property
    def rows_consumed(self) -> int:
        """Rows ``[0, rows_consumed)`` are hashed and stored (the rest wait or are missing)."""
        return self._stream.cursor

    def write(self, start_row: int, block: Any) -> None:
        """Write ``block`` (``(n, D)``, the table's dtype) as rows ``[start_row, start_row + n)``."""
        m = as_matrix(block)
        if m.dtype != self.dtype:
            raise InputError(f"table {self.table!r} is {self.dtype.name}; got a {m.dtype.name} block "
                             "(convert it first: embfmt stores bits and never casts)",
                             ErrorKind.DTYPE_MISMATCH)
        if m.dim != self.shape[1]:
            raise InputError(f"table {self.table!r} has D = {self.shape[1]}; got a block of shape "
                             f"{m.shape}", ErrorKind.SHAPE_MISMATCH)
        start = int(start_row)
        with self._lock:
            self._check_open()
            if start < 0 or start + m.n_rows > self.shape[0]:
                raise InputError(f"table {self.table!r}: rows [{start}, {start + m.n_rows}) are "
                                 f"outside its {self.shape[0]} rows", ErrorKind.SHAPE_MISMATCH)
            if m.n_rows and start < self._stream.cursor:  # refuse before writing any of it
                raise ConflictError(f"table {self.table!r}: rows [{start}, "
                                    f"{min(start + m.n_rows, self._stream.cursor)}) were already "
                                    "written and hashed; each row can be rewritten only until all "
                                    "rows before it are in")
            pos = start
            for rows in m.blocks():
                self._stream.write(pos, rows)
                pos += rows.shape[0]
            # The chunks hashed by this call are stored when it returns (rows_consumed says
            # so): their files are linked before the next block comes, not at the commit.
            self._stream.batch.wait()
            self._next = start + m.n_rows

    def append(self, block: Any) -> None:
        """Write ``block`` right after the rows of the previous :meth:`write` or :meth:`append`
        (row 0 first)."""
        self.write(self._next, block)

    def commit(self) -> str:
        """Commit now (every row must be written); returns the commit id. Idempotent."""
        with self._lock:
            if self._state == "committed":
                assert self.commit_id is not None
                return self.commit_id
            self._check_open()
            try:
                gap = self._stream.missing()
                if gap is not None:
                    raise InputError(
                        f"table {self.table!r}: rows [{gap[0]}, {gap[1]}) were never written "
                        f"({self._stream.cursor} of {self.shape[0]} rows in order so far); "
                        "nothing was committed", ErrorKind.SHAPE_MISMATCH)
                tx = self._tx
                tid, info = tx.finish_table(self._stream, self._ptv, self._keys, self._identity)
                self.commit_id = tx.land(self.branch, self._parent_id, {self.table: tid}, (),
                                         self._message, self._meta, author=self._author,
                                         write_info={self.table: info}, backend_name=self._backend,
                                         batch=self._stream.batch)
            except BaseException:
                self._state = "aborted"
                self._stream.close()  # its lease goes first: the objects are then unprotected
                self._tx.maintenance.discard(self._stream.batch)
                raise
            finally:
                self._stream.close()
            self._state = "committed"
            return self.commit_id

    def abort(self) -> None:
        """Discard everything written; the repository stays as it was."""
        with self._lock:
            if self._state == "open":
                self._state = "aborted"
                self._stream.close()
                self._tx.maintenance.discard(self._stream.batch)

    def _check_open(self) -> None:
        if self._state != "open":
            raise InputError(f"writer for table {self.table!r} is {self._state}", ErrorKind.BAD_ARGUMENT)

    def __enter__(self) -> StreamWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            self.abort()
        elif self._state == "open":
            self.commit()

    def __del__(self) -> None:
        # A writer dropped without commit or abort must not leave its scratch file behind.
        stream = getattr(self, "_stream", None)
        if stream is not None and getattr(self, "_state", "") == "open":
            stream.close()
