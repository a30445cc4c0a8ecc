"""Arrow IPC files (``.arrow``, ``.feather`` v2): the same columns as Parquet, memory-mapped.

The schema rules (vector column, key column, the bfloat16 marker) are those of
:mod:`embfmt.formats.parquet`; record batches are read one at a time from a memory map.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import EmbfmtError, ErrorKind, FormatError, InputError
from ..canonical.matrix import Matrix
from . import parquet as P
from ._common import Rows, Source

NAME = "arrow"
EXTENSIONS = (".arrow", ".feather", ".ipc")
MAGIC = b"ARROW1"
DTYPES = P.DTYPES


@contextmanager
def read(path: str, dataset: str | None = None, *, vector_column: str | None = None,
         key_column: str | None = None, **opts: Any) -> Iterator[Source]:
    """Open an Arrow IPC file; ``dataset`` is a synonym of ``vector_column``."""
    pa = P.pyarrow(path, "Arrow files")
    try:
        src = pa.memory_map(path, "r")
    except P.ARROW_ERRORS as e:
        raise FormatError(f"{path}: cannot map ({e})", ErrorKind.BAD_FILE) from None
    try:
        try:
            reader = pa.ipc.open_file(src)
            schema = reader.schema
        except P.ARROW_ERRORS as e:
            raise FormatError(f"{path}: not a readable Arrow IPC file ({e})", ErrorKind.BAD_FILE) from None
        vcol, kcol = P.pick_columns(path, schema, vector_column or dataset, key_column)
        dt, dim = P.vector_type(path, schema.field(vcol))
        vi = schema.get_field_index(vcol)

        def batch(i: int) -> Any:
            """Record batch ``i``, fully validated first: an IPC file is memory-mapped and read
            without copies, so damaged offsets or lengths would otherwise be followed by
            pyarrow's C++ code (a crash of the process, not an error)."""
            try:
                b = reader.get_batch(i)
                b.validate(full=True)
                return b
            except P.ARROW_ERRORS as e:
                raise FormatError(f"{path}: corrupt Arrow batch {i} ({e})", ErrorKind.BAD_FILE) from None

        try:
            nb = reader.num_record_batches
            sizes = [batch(i).num_rows for i in range(nb)]
            if dim is None:
                dim = next((P.list_len(path, vcol, batch(i).column(vi)[0]) for i in range(nb) if sizes[i]), 0)
            keys = None
            if kcol is not None:
                ki = schema.get_field_index(kcol)
                keys = P.read_keys(path, pa.chunked_array([batch(i).column(ki) for i in range(nb)],
                                                          type=schema.field(kcol).type), kcol)
        except EmbfmtError:
            raise
        except P.ARROW_ERRORS as e:
            raise FormatError(f"{path}: corrupt Arrow data ({e})", ErrorKind.BAD_FILE) from None

        def batches() -> Iterator[Any]:
            for i in range(nb):
                yield batch(i).select([vi])

        rows = P.BatchRows(path, sum(sizes), dim, dt, vcol, batches)
        yield Source(Matrix(rows, sum(sizes), dim, dt, kind="arrow"), keys, NAME, path, vcol)
    finally:
        src.close()


def check(path: str, rows: Rows) -> None:
    P.pyarrow(path, "Arrow files")


def write(path: str, rows: Rows, keys: Any = None, dataset: str | None = None, *,
          vector_column: str | None = None, key_column: str | None = None, **opts: Any) -> None:
    """Write an Arrow IPC file with the Parquet writer's columns, one batch at a time."""
    pa = P.pyarrow(path, "Arrow files")
    keys = P.normalized(path, rows, keys)
    vcol = vector_column or dataset or P.DEFAULT_VECTOR
    kcol = key_column or P.DEFAULT_KEY
    if keys is not None and kcol == vcol:
        raise InputError(f"{path}: key and vector columns are both named {vcol!r}", ErrorKind.BAD_ARGUMENT)
    schema = P.arrow_schema(path, rows, keys, vcol, kcol)
    with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, schema) as w:
        for batch in P.record_batches(path, rows, keys, schema):
            w.write_batch(batch)
