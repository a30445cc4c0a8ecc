"""``.npy`` files: memory-mapped on read (zero-copy), written through ``open_memmap``.

A ``.npy`` header has no way to record bfloat16 (numpy would write an anonymous ``V2``), so
bfloat16 tables are refused with a pointer to a format that keeps them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

import numpy as np

from ..errors import ErrorKind, FormatError
from ._common import Rows, Source, named_matrix, unsupported_dtype

NAME = "npy"
EXTENSIONS = (".npy",)
MAGIC = b"\x93NUMPY"
DTYPES = ("float64", "float32", "float16", "int8", "uint8")


@contextmanager
def read(path: str, dataset: str | None = None, **opts: Any) -> Iterator[Source]:
    """Memory-map ``path``; the matrix is served as zero-copy views of the mapping."""
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - numpy's header parser raises whatever the text provokes
        # (ValueError, OSError, EOFError, and from a damaged header dict tokenize.TokenError,
        # IndexError, TypeError, SyntaxError): every one means "this is not a readable .npy".
        raise FormatError(f"{path}: not a readable .npy file ({type(e).__name__}: {str(e)[:200]})",
                          ErrorKind.BAD_FILE) from None
    if not isinstance(arr, np.ndarray):
        raise FormatError(f"{path}: not a .npy array", ErrorKind.BAD_FILE)
    yield Source(named_matrix(path, arr), None, NAME, path)


def check(path: str, rows: Rows) -> None:
    """Refuse a dtype ``.npy`` cannot record, before any file is created."""
    if rows.dtype.name not in DTYPES:
        raise unsupported_dtype(path, ".npy", rows.dtype.name, DTYPES,
                                "a .safetensors, HDF5 or Parquet file (they keep bfloat16)")


def write(path: str, rows: Rows, keys: Any = None, dataset: str | None = None, **opts: Any) -> None:
    """Write ``rows`` to ``path`` block by block through a writable memory map (keys are not
    stored: a ``.npy`` file holds one array)."""
    check(path, rows)
    n, d = rows.shape
    npdt = rows.dtype.numpy
    if n == 0:
        with open(path, "wb") as f:
            np.save(f, np.empty((n, d), dtype=npdt))
        return
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=npdt, shape=(n, d))  # same header as below
    try:
        for lo, hi, block in rows.blocks():
            mm[lo:hi] = block
        mm.flush()
    finally:
        del mm


def write_stream(f: BinaryIO, rows: Rows, keys: Any = None, dataset: str | None = None, *,
                 name: str = "<stream>", **opts: Any) -> None:
    """Write ``rows`` as ``.npy`` to an open binary stream: the version 1.0 header numpy's own
    writers give a C-ordered 2-D array, then the rows block by block (no seeking back)."""
    check(name, rows)
    header = {"descr": np.lib.format.dtype_to_descr(rows.dtype.numpy), "fortran_order": False,
              "shape": rows.shape}
    np.lib.format.write_array_header_1_0(f, header)
    f.writelines(block.tobytes() for _, _, block in rows.blocks())
