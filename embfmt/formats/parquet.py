"""Parquet files via pyarrow: a fixed-size-list vector column plus an optional key column.

Reading is batch by batch (``ParquetFile.iter_batches`` over the vector column only), so
memory stays bounded by a few batches however large the file. The vector column is the one
named by ``vector_column`` or, by default, the file's only list column; the key column is
``key_column`` or, by default, a column named ``key`` or ``id`` when there is one. Plain
``list``/``large_list`` vector columns (pandas writes those) are accepted when every row has
the same length.

Arrow has no bfloat16 type: embfmt stores a bfloat16 table as ``fixed_size_list<uint16>`` of
raw bit patterns with the field metadata ``embfmt.dtype = bfloat16``, which the reader honours.
The vector column is written without dictionary encoding, as plain IEEE bytes, so NaN payloads
and -0.0 round-trip bit-exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from ..canonical.dtype import DType, dtype_from_name, dtype_of
from ..errors import EmbfmtError, ErrorKind, FormatError, InputError, NotFoundError
from ..canonical.matrix import Matrix
from ._common import Rows, Source, missing_extra
from ..objects.keys import normalize_keys

NAME = "parquet"
EXTENSIONS = (".parquet", ".pq")
MAGIC = b"PAR1"
DTYPES = ("float64", "float32", "float16", "bfloat16", "int8", "uint8")
DTYPE_META = b"embfmt.dtype"
DEFAULT_VECTOR = "embedding"
DEFAULT_KEY = "key"
KEY_NAMES = ("key", "id")
# Rows per batch read from or written to a file: about this many bytes of vectors.
BATCH_BYTES = 8 << 20
ROW_GROUP_BYTES = 64 << 20
# What pyarrow raises on corrupt or truncated files (ArrowInvalid is a ValueError, ArrowIOError
# an OSError; a few decoders raise other ArrowException subclasses).
ARROW_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, IndexError, KeyError)


def pyarrow(path: str, what: str = "Parquet files") -> Any:
    """Import pyarrow, or raise the missing-extra error naming ``path``."""
    try:
        import pyarrow as pa
    except ImportError:
        raise missing_extra("pyarrow", "parquet", path, what) from None
    global ARROW_ERRORS
    ARROW_ERRORS = (ValueError, OSError, IndexError, KeyError, pa.lib.ArrowException)
    return pa


# --- schema ----------------------------------------------------------------------------------
def pick_columns(path: str, schema: Any, vector_column: str | None,
                 key_column: str | None) -> tuple[str, str | None]:
    """Choose the vector column and the key column of ``schema`` (see module docstring)."""
    pa = pyarrow(path)
    names = list(schema.names)
    twice = sorted({x for x in names if names.count(x) > 1})
    if twice:
        raise FormatError(f"{path}: columns named more than once: {', '.join(map(repr, twice))}",
                          ErrorKind.BAD_FILE)
    if vector_column is None:
        lists = [f.name for f in schema if pa.types.is_fixed_size_list(f.type)]
        if not lists:
            lists = [f.name for f in schema
                     if pa.types.is_list(f.type) or pa.types.is_large_list(f.type)]
        if len(lists) != 1:
            raise InputError(f"{path}: choose the vector column with --vector-column; list "
                             f"columns: {', '.join(lists) or '(none)'}", ErrorKind.BAD_ARGUMENT)
        vector_column = lists[0]
    elif vector_column not in names:
        raise NotFoundError(f"{path}: no column {vector_column!r}; columns: {', '.join(names)}")
    if key_column is None:
        key_column = next((k for k in KEY_NAMES if k in names and k != vector_column), None)
    elif key_column not in names:
        raise NotFoundError(f"{path}: no key column {key_column!r}; columns: {', '.join(names)}")
    return vector_column, key_column


def vector_type(path: str, field: Any) -> tuple[DType, int | None]:
    """The embfmt dtype of a vector column, and its fixed dimension (None for a plain list)."""
    pa = pyarrow(path)
    t = field.type
    if pa.types.is_fixed_size_list(t):
        dim: int | None = t.list_size
    elif pa.types.is_list(t) or pa.types.is_large_list(t):
        dim = None
    else:
        raise InputError(f"{path}: column {field.name!r} has type {t}; expected a fixed-size list "
                         "of numbers", ErrorKind.NOT_A_MATRIX)
    vt = t.value_type
    marker = (field.metadata or {}).get(DTYPE_META)
    if marker == b"bfloat16":
        if vt != pa.uint16():
            raise FormatError(f"{path}: column {field.name!r} is marked bfloat16 but holds {vt}",
                              ErrorKind.BAD_FILE)
        return dtype_from_name("bfloat16"), dim
    try:
        npdt = vt.to_pandas_dtype()
        dt = dtype_of(np.dtype(npdt))
    except (NotImplementedError, TypeError, EmbfmtError):
        raise InputError(f"{path}: column {field.name!r} holds {vt}; accepted: float64, float32, "
                         "float16, int8, uint8 (and uint16 marked embfmt.dtype=bfloat16)",
                         ErrorKind.UNSUPPORTED_DTYPE) from None
    return dt, dim


def batch_to_numpy(path: str, col: Any, dt: DType, dim: int, first_row: int, column: str) -> np.ndarray:
    """One batch of a vector column as an ``(n, dim)`` array of ``dt`` (zero-copy when it can)."""
    pa = pyarrow(path)
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    n = len(col)
    if col.null_count:
        bad = first_row + int(np.flatnonzero(~np.asarray(col.is_valid()))[0])
        raise InputError(f"{path}: column {column!r} row {bad} is null", ErrorKind.NOT_A_MATRIX)
    if not pa.types.is_fixed_size_list(col.type):
        lengths = np.asarray(col.value_lengths())
        if n and (lengths != dim).any():
            bad = int(np.flatnonzero(lengths != dim)[0])
            raise InputError(f"{path}: column {column!r} row {first_row + bad} has "
                             f"{int(lengths[bad])} values, row 0 has {dim}", ErrorKind.SHAPE_MISMATCH)
    values = col.flatten()  # honours the slice offset, unlike .values
    if values.null_count:
        bad = first_row + int(np.flatnonzero(~np.asarray(values.is_valid()))[0]) // max(1, dim)
        raise InputError(f"{path}: column {column!r} row {bad} holds a null value",
                         ErrorKind.NOT_A_MATRIX)
    flat = values.to_numpy(zero_copy_only=False)
    if dt.name == "bfloat16":
        flat = flat.view(dt.numpy)
    if flat.dtype.itemsize != dt.itemsize:
        raise FormatError(f"{path}: column {column!r} changes type between batches", ErrorKind.BAD_FILE)
    matrix: np.ndarray = flat.reshape(n, dim)
    return matrix


# --- reading ---------------------------------------------------------------------------------
class BatchRows:
    """Sliceable rows of one vector column, fetched by a sequential batch iterator.

    :class:`~embfmt.canonical.matrix.Matrix` asks for consecutive row ranges; they are served from the
    current batches, and the iterator restarts only if a range goes backwards. Memory holds
    the requested range plus at most one batch.
    """

    def __init__(self, path: str, n_rows: int, dim: int, dt: DType, column: str,
                 open_batches: Any) -> None:
        self.path, self.column = path, column
        self.shape = (n_rows, dim)
        self.dtype = dt.numpy
        self._dt = dt
        self._open = open_batches
        self._it: Iterator[Any] | None = None
        self._pos = 0           # first row of self._buf
        self._buf = np.empty((0, dim), dtype=dt.numpy)
        self.batches_read = 0   # for tests: proof that reads are batched

    def _next(self) -> bool:
        assert self._it is not None
        try:
            batch = next(self._it)
        except StopIteration:
            return False
        self.batches_read += 1
        arr = batch_to_numpy(self.path, batch.column(0), self._dt, self.shape[1],
                             self._pos + len(self._buf), self.column)
        self._buf = np.concatenate([self._buf, arr]) if len(self._buf) else arr
        return True

    def __getitem__(self, s: slice) -> np.ndarray:
        start, stop, step = s.indices(self.shape[0])
        if step != 1:
            raise IndexError("batch rows support contiguous slices only")
        if self._it is None or start < self._pos:
            self._it, self._pos = iter(self._open()), 0
            self._buf = self._buf[:0]
        out: list[np.ndarray] = []
        while start < stop:
            if start >= self._pos + len(self._buf):
                self._pos += len(self._buf)
                self._buf = self._buf[:0]
                if not self._next():
                    raise FormatError(f"{self.path}: column {self.column!r} ends at row "
                                      f"{self._pos}; its metadata says {self.shape[0]} rows",
                                      ErrorKind.TRUNCATED)
                continue
            lo = start - self._pos
            hi = min(stop - self._pos, len(self._buf))
            out.append(self._buf[lo:hi])
            start = self._pos + hi
        # Drop what was served so memory stays at one batch.
        done = start - self._pos
        self._pos, self._buf = self._pos + done, self._buf[done:]
        if stop == self.shape[0] and (len(self._buf) or self._next()):
            # The last row served: the column must end here too, or the metadata undercounts
            # it and the rows past its count would be dropped without a word.
            raise FormatError(f"{self.path}: column {self.column!r} has more rows than the "
                              f"{self.shape[0]} its metadata says", ErrorKind.BAD_FILE)
        if not out:
            return np.empty((0, self.shape[1]), dtype=self.dtype)
        return out[0] if len(out) == 1 else np.concatenate(out)


def read_keys(path: str, col: Any, column: str) -> Any:
    """A key column as int64 array or list of str (validated later by normalize_keys)."""
    pa = pyarrow(path)
    if col.null_count:
        raise InputError(f"{path}: key column {column!r} has null keys", ErrorKind.BAD_KEYS)
    t = col.type
    if pa.types.is_integer(t):
        return np.asarray(col.to_numpy())  # any width; normalize_keys checks the int64 range
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return col.to_pylist()
    raise InputError(f"{path}: key column {column!r} has type {t}; keys must be integers or "
                     "strings", ErrorKind.BAD_KEYS)


def batch_rows(dim_hint: int | None, dt: DType) -> int:
    row_bytes = max(1, (dim_hint or 1) * dt.itemsize)
    return max(1, BATCH_BYTES // row_bytes)


@contextmanager
def read(path: str, dataset: str | None = None, *, vector_column: str | None = None,
         key_column: str | None = None, **opts: Any) -> Iterator[Source]:
    """Open a Parquet file; ``dataset`` is a synonym of ``vector_column``."""
    pyarrow(path)
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        schema = pf.schema_arrow
    except ARROW_ERRORS as e:
        raise FormatError(f"{path}: not a readable Parquet file ({e})", ErrorKind.BAD_FILE) from None
    vcol, kcol = pick_columns(path, schema, vector_column or dataset, key_column)
    dt, dim = vector_type(path, schema.field(vcol))
    n = pf.metadata.num_rows
    groups = sum(pf.metadata.row_group(i).num_rows for i in range(pf.metadata.num_row_groups))
    if n != groups:
        raise FormatError(f"{path}: its footer says {n} rows, its row groups hold {groups}", ErrorKind.BAD_FILE)
    try:
        if dim is None:  # a plain list column: the first row gives D
            dim = 0
            for b in pf.iter_batches(batch_size=1, columns=[vcol]):
                dim = list_len(path, vcol, b.column(0)[0]) if len(b) else 0
                break
        bs = batch_rows(dim, dt)
        keys = None
        if kcol is not None:
            keys = read_keys(path, pf.read(columns=[kcol]).column(0), kcol)
    except EmbfmtError:
        raise
    except ARROW_ERRORS as e:
        raise FormatError(f"{path}: cannot read Parquet data ({e})", ErrorKind.BAD_FILE) from None
    rows = BatchRows(path, n, dim, dt, vcol, lambda: _guard(path, pf.iter_batches(batch_size=bs, columns=[vcol])))
    yield Source(Matrix(rows, n, dim, dt, kind="parquet"), keys, NAME, path, vcol)


def _guard(path: str, it: Iterator[Any]) -> Iterator[Any]:
    """Turn pyarrow's errors on corrupt pages into FormatError naming the file."""
    while True:
        try:
            b = next(it)
        except StopIteration:
            return
        except ARROW_ERRORS as e:
            raise FormatError(f"{path}: corrupt Parquet data ({e})", ErrorKind.BAD_FILE) from None
        yield b


# --- writing ---------------------------------------------------------------------------------
def arrow_schema(path: str, rows: Rows, keys: Any, vector_column: str, key_column: str) -> Any:
    pa = pyarrow(path)
    name = rows.dtype.name
    value = {"float64": pa.float64(), "float32": pa.float32(), "float16": pa.float16(),
             "bfloat16": pa.uint16(), "int8": pa.int8(), "uint8": pa.uint8()}[name]
    meta = {DTYPE_META: b"bfloat16"} if name == "bfloat16" else None
    fields = []
    if keys is not None:
        fields.append(pa.field(key_column, pa.int64() if keys.dtype != object else pa.string(),
                               nullable=False))
    fields.append(pa.field(vector_column, pa.list_(value, rows.dim), nullable=False, metadata=meta))
    return pa.schema(fields)


def record_batches(path: str, rows: Rows, keys: Any, schema: Any) -> Iterator[Any]:
    """The table as record batches of about :data:`ROW_GROUP_BYTES` each."""
    pa = pyarrow(path)
    vfield = schema.field(len(schema) - 1)
    for lo, hi, block in rows.blocks(ROW_GROUP_BYTES):
        flat = block.reshape(-1)
        if rows.dtype.name == "bfloat16":
            flat = flat.view(np.uint16)
        vec = pa.FixedSizeListArray.from_arrays(pa.array(flat, type=vfield.type.value_type), rows.dim)
        cols = [vec]
        if keys is not None:
            k = keys[lo:hi]
            cols.insert(0, pa.array(k.tolist() if k.dtype == object else k, type=schema.field(0).type))
        yield pa.RecordBatch.from_arrays(cols, schema=schema)


def normalized(path: str, rows: Rows, keys: Any) -> Any:

    if keys is None:
        return None
    try:
        return normalize_keys(keys, rows.n_rows, "keys")
    except InputError as e:
        raise InputError(f"{path}: {e.message}", e.kind) from None


def check(path: str, rows: Rows) -> None:
    pyarrow(path)


def write(path: str, rows: Rows, keys: Any = None, dataset: str | None = None, *,
          vector_column: str | None = None, key_column: str | None = None, **opts: Any) -> None:
    """Write a Parquet file: column ``vector_column`` (default ``"embedding"``) of
    fixed-size lists, preceded by ``key_column`` (default ``"key"``) when there are keys.

    Written one row group at a time (about 64 MiB each); the vector column is stored plain
    (no dictionary encoding) so every bit pattern survives.
    """
    pyarrow(path)
    import pyarrow.parquet as pq

    keys = normalized(path, rows, keys)
    vcol = vector_column or dataset or DEFAULT_VECTOR
    kcol = key_column or DEFAULT_KEY
    if keys is not None and kcol == vcol:
        raise InputError(f"{path}: key and vector columns are both named {vcol!r}", ErrorKind.BAD_ARGUMENT)
    schema = arrow_schema(path, rows, keys, vcol, kcol)
    with pq.ParquetWriter(path, schema, use_dictionary=[kcol] if keys is not None else False,
                          compression="zstd") as w:
        wrote = False
        for batch in record_batches(path, rows, keys, schema):
            w.write_batch(batch)
            wrote = True
        if not wrote:
            w.write_table(schema.empty_table())


def list_len(path: str, column: str, value: Any) -> int:
    """Length of one list value of the vector column (a null has none: refused)."""
    if not value.is_valid:
        raise FormatError(f"{path}: column {column!r} row 0 is null; every row needs a vector",
                          ErrorKind.BAD_FILE)
    return len(value.values)
