"""Lazy, read-only access to one stored table version."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ..backend import _threads, map_runs
from ..errors import ErrorKind, InputError
from ..objects.keys import KeyIndex, one_or_many
from ..objects.table_version import TableVersion
from .reader import ChunkReader

__all__ = ["TableView"]


class TableView:
    """A stored table version as a read-only, lazily decoded array.

    Slicing and integer-array indexing of rows decode only the chunks that hold those rows.

    Examples
    --------
    >>> import numpy as np, tempfile, embfmt
    >>> repo = embfmt.Repo.init(tempfile.mkdtemp())
    >>> _ = repo.commit({"emb": np.arange(12, dtype=np.float32).reshape(4, 3)}, message="v1")
    >>> t = repo.open("emb")
    >>> t.shape, t[1].tolist(), t[[3, 0], 1].tolist()
    ((4, 3), [3.0, 4.0, 5.0], [10.0, 1.0])
    """

    def __init__(self, tv: TableVersion, reader: ChunkReader, *, name: str = "table",
                 keys_loader: Any = None, pool: ThreadPoolExecutor | None = None) -> None:
        self.version = tv
        self.name = name
        self._reader = reader
        self._keys_loader = keys_loader
        self._key_index: KeyIndex | None = None
        self._pool = pool
        self.commit: str | None = None
        """The commit this view was opened from (set by :meth:`Repo.open`)."""
        self.rev: str | None = None
        self.environment: dict[str, Any] | None = None
        """The environment recorded with that commit."""

    @property
    def reader(self) -> ChunkReader:
        """The chunk reader this view decodes through (comparisons use it to find changed rows
        from stored rowprints without decoding chunks)."""
        return self._reader

    # --- array protocol ---------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        return self.version.shape

    @property
    def dtype(self) -> np.dtype:
        return self.version.dtype.numpy

    @property
    def ndim(self) -> int:
        return 2

    @property
    def size(self) -> int:
        return self.shape[0] * self.shape[1]

    @property
    def nbytes(self) -> int:
        return self.size * self.version.dtype.itemsize

    @property
    def fingerprint(self) -> str:
        """The table's fingerprint root text (same as ``embfmt.fingerprint(self[:])``)."""
        return self.version.fingerprint

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"TableView({self.name!r}, shape={self.shape}, dtype={self.version.dtype.name})"

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        a = self.read()
        return a if dtype is None else a.astype(dtype)

    # --- reading ----------------------------------------------------------------------------
    def _chunk(self, c: int) -> np.ndarray:
        raw = self._reader.rows(self.version.digests[c], fits=self._reader.expected(self.version, c))
        return raw.view(self.dtype).reshape(raw.shape[0], self.shape[1])

    def read(self) -> np.ndarray:
        """The whole table as a new numpy array (chunks decoded in parallel)."""
        tv = self.version
        out = np.empty(tv.shape, dtype=self.dtype)
        if tv.n_rows == 0:
            return out
        cr = tv.chunk_rows
        flat = out.reshape(-1).view(np.uint8)
        chunk_bytes = cr * tv.dim * self.dtype.itemsize

        def run(first: int, stop: int) -> None:
            for c in range(first, stop):
                # Decoded straight into the result: no per-chunk array, no copy.
                self._reader.rows_into(tv.digests[c], flat[c * chunk_bytes:(c + 1) * chunk_bytes],
                                       self._reader.expected(tv, c))

        map_runs(self._pool, run, tv.n_chunks, _threads())
        return out

    def rows(self, index: Any) -> np.ndarray:
        """Rows by integer index array (negative indices count from the end)."""
        idx = np.asarray(index)
        if idx.dtype == bool:
            if idx.shape != (self.shape[0],):
                raise InputError(f"boolean mask of shape {idx.shape} for {self.shape[0]} rows",
                                 ErrorKind.SHAPE_MISMATCH)
            idx = np.flatnonzero(idx)
        if idx.size == 0:  # [] is float64 to numpy, yet selects no rows
            idx = idx.astype(np.int64)
        if idx.dtype.kind not in "iu":
            raise InputError(f"row index must be integers, got {idx.dtype}", ErrorKind.BAD_ARGUMENT)
        flat = idx.astype(np.int64).reshape(-1)
        n = self.shape[0]
        flat = np.where(flat < 0, flat + n, flat)
        if flat.size and (flat.min() < 0 or flat.max() >= n):
            raise IndexError(f"row index out of range for {n} rows")
        out = np.empty((flat.size, self.shape[1]), dtype=self.dtype)
        if flat.size:
            cr = self.version.chunk_rows
            chunk_of = flat // cr
            order = np.argsort(chunk_of, kind="stable")
            cs, starts = np.unique(chunk_of[order], return_index=True)
            bounds = list(starts) + [len(order)]

            def fill(j: int) -> None:
                sel = order[bounds[j]:bounds[j + 1]]
                c = int(cs[j])
                out[sel] = self._chunk(c)[flat[sel] - c * cr]

            if self._pool is not None and len(cs) > 1:
                list(self._pool.map(fill, range(len(cs))))
            else:
                for j in range(len(cs)):
                    fill(j)
        return out.reshape(idx.shape + (self.shape[1],))

    def _slice(self, s: slice) -> np.ndarray:
        start, stop, step = s.indices(self.shape[0])
        if step != 1:
            return self.rows(np.arange(start, stop, step, dtype=np.int64))
        if stop <= start:
            return np.empty((0, self.shape[1]), dtype=self.dtype)
        if start == 0 and stop == self.shape[0]:
            return self.read()
        cr = self.version.chunk_rows
        out = np.empty((stop - start, self.shape[1]), dtype=self.dtype)
        for c in range(start // cr, (stop - 1) // cr + 1):
            lo, hi = max(start, c * cr), min(stop, (c + 1) * cr)
            out[lo - start:hi - start] = self._chunk(c)[lo - c * cr:hi - c * cr]
        return out

    def __getitem__(self, key: Any) -> np.ndarray:
        cols: Any = slice(None)
        if isinstance(key, tuple):
            if len(key) > 2:
                raise IndexError("too many indices for a 2-D table")
            key, cols = key if len(key) == 2 else (key[0], slice(None))
        if isinstance(key, (int, np.integer)):
            k = int(key)
            if not -self.shape[0] <= k < self.shape[0]:
                raise IndexError(f"row {k} out of range for {self.shape[0]} rows")
            rows = self.rows(np.array([k]))[0]
            row: np.ndarray = rows[cols]
            return row
        if isinstance(key, slice):
            rows = self._slice(key)
        elif key is Ellipsis:
            rows = self.read()
        else:
            rows = self.rows(key)
        return rows[..., cols] if not isinstance(cols, slice) or cols != slice(None) else rows

    # --- keys -------------------------------------------------------------------------------
    @property
    def keys(self) -> np.ndarray | None:
        """The row keys (int64 array or object array of str), or None."""
        if self._keys_loader is None or self.version.keys_id is None:
            return None
        if self._key_index is None:
            self._key_index = KeyIndex(self._keys_loader(self.version.keys_id))
        return self._key_index.keys

    def index_of(self, keys: Any) -> Any:
        """Row index of one key (a str, bytes or int: one key, never split into characters), or
        an int64 array of row indices for a sequence or array of keys, in that order;
        :class:`~embfmt.errors.NotFoundError` for an unknown key.

        >>> import numpy as np, tempfile, embfmt
        >>> repo = embfmt.Repo.init(tempfile.mkdtemp())
        >>> _ = repo.commit({"t": np.zeros((3, 2), np.float32)}, keys={"t": ["h", "i", "hi"]})
        >>> t = repo.open("t")
        >>> int(t.index_of("hi")), t.index_of(["i", "h"]).tolist()
        (2, [1, 0])
        """
        if self.keys is None:
            raise InputError(f"table {self.name!r} has no row keys", ErrorKind.BAD_ARGUMENT)
        assert self._key_index is not None
        keys, one = one_or_many(keys)
        if one:
            return self._key_index.rows([keys])[0]
        return self._key_index.rows(list(keys) if not isinstance(keys, np.ndarray) else keys)

    def get(self, key: Any) -> np.ndarray:
        """The row whose key is ``key``."""
        row: np.ndarray = self.rows(self.index_of([key]))[0]
        return row

    def lookup(self, keys: Any) -> np.ndarray:
        """The rows whose keys are ``keys``, in that order; one key (a str, bytes or int) gives
        its row, as :meth:`get` does."""
        idx = self.index_of(keys)
        return self.rows(np.asarray([idx]))[0] if np.ndim(idx) == 0 else self.rows(idx)
