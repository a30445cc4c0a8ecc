"""HDF5 files via h5py: ``FILE.h5:/path/to/dataset`` (or ``--dataset``), read block by block.

h5py has no bfloat16 type, so embfmt stores a bfloat16 table as its raw ``uint16`` bit
patterns with the dataset attribute ``embfmt.dtype = "bfloat16"``; the reader honours that
attribute (without it, a ``uint16`` dataset is refused like any other unsupported dtype).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from ..dtype import dtype_from_name
from ..errors import ErrorKind, FormatError, InputError, NotFoundError
from ..matrix import Matrix
from ._common import Rows, Source, missing_extra, named_matrix

NAME = "hdf5"
EXTENSIONS = (".h5", ".hdf5", ".hdf", ".he5")
MAGIC = b"\x89HDF\r\n\x1a\n"
DTYPES = ("float64", "float32", "float16", "bfloat16", "int8", "uint8")
DTYPE_ATTR = "embfmt.dtype"
DEFAULT_DATASET = "embeddings"
# Stored HDF5 chunks hold about this many bytes of whole rows: big enough for fast sequential
# reads, small enough that a reader of a few rows does not decode much.
CHUNK_BYTES = 1 << 20


def _h5py(path: str) -> Any:
    try:
        import h5py
    except ImportError:
        raise missing_extra("h5py", "hdf5", path, "HDF5 files") from None
    return h5py


@contextmanager
def read(path: str, dataset: str | None = None, **opts: Any) -> Iterator[Source]:
    """Open dataset ``dataset`` (optional when the file holds exactly one 2-D dataset)."""
    h5py = _h5py(path)
    try:
        fh = h5py.File(path, "r")
    except OSError as e:
        raise FormatError(f"{path}: not a readable HDF5 file ({e})", ErrorKind.BAD_FILE) from None
    # h5py raises RuntimeError, KeyError, ValueError or TypeError as well as OSError from
    # damaged files (bad B-tree nodes, soft-link loops, a dataset without a dataspace).
    damaged = (OSError, RuntimeError, KeyError, ValueError, TypeError)
    try:
        if dataset is None:
            found: list[str] = []
            try:
                fh.visititems(lambda n, o: found.append(n) if isinstance(o, h5py.Dataset) and o.ndim == 2 else None)
            except damaged as e:
                raise FormatError(f"{path}: cannot list its datasets ({type(e).__name__}: {e})",
                                  ErrorKind.BAD_FILE) from None
            if len(found) != 1:
                raise InputError(f"{path}: choose a dataset with --dataset or FILE:DATASET; 2-D "
                                 f"datasets: {', '.join(found) or '(none)'}", ErrorKind.BAD_ARGUMENT)
            dataset = found[0]
        try:
            obj = fh.get(dataset)
            if obj is not None and isinstance(obj, h5py.Dataset):
                shape, marker = obj.shape, obj.attrs.get(DTYPE_ATTR)
        except damaged as e:
            raise FormatError(f"{path}: cannot open {dataset!r} ({type(e).__name__}: {e})",
                              ErrorKind.BAD_FILE) from None
        if obj is None:
            raise NotFoundError(f"{path}: no dataset {dataset!r}")
        if not isinstance(obj, h5py.Dataset):
            raise InputError(f"{path}: {dataset!r} is a group, not a dataset", ErrorKind.NOT_A_MATRIX)
        if shape is None:  # a null dataspace: no shape at all
            raise FormatError(f"{path}: dataset {dataset!r} has no dataspace (no shape)", ErrorKind.BAD_FILE)
        if isinstance(marker, bytes):
            marker = marker.decode("utf-8", "replace")
        if marker is not None and not isinstance(marker, str):
            raise FormatError(f"{path}: dataset {dataset!r} has a {DTYPE_ATTR} attribute that is not "
                              f"a string ({type(marker).__name__})", ErrorKind.BAD_FILE)
        if marker == "bfloat16":
            if obj.dtype.kind != "u" or obj.dtype.itemsize != 2 or obj.ndim != 2:
                raise FormatError(f"{path}: dataset {dataset!r} is marked bfloat16 but holds "
                                  f"{obj.dtype} of shape {obj.shape}; expected 2-D uint16 bits",
                                  ErrorKind.BAD_FILE)
            # The dataset yields uint16 blocks; Matrix treats them as bfloat16 bit patterns
            # (canonical_rows only reinterprets, it never converts).
            m = Matrix(obj, obj.shape[0], obj.shape[1], dtype_from_name("bfloat16"), kind="h5py")
        else:
            m = named_matrix(path, obj, f" dataset {dataset!r}")
        yield Source(m, None, NAME, path, dataset)
    finally:
        fh.close()


def check(path: str, rows: Rows) -> None:
    """Every embfmt dtype fits (bfloat16 as marked uint16 bits)."""


def write(path: str, rows: Rows, keys: Any = None, dataset: str | None = None, **opts: Any) -> None:
    """Write a new HDF5 file with one chunked dataset ``dataset`` (default ``"embeddings"``).

    Written block by block; a bfloat16 table is stored as uint16 bits plus the
    ``embfmt.dtype`` attribute. Keys are not stored.
    """
    h5py = _h5py(path)
    name = (dataset or DEFAULT_DATASET).strip("/") or DEFAULT_DATASET
    n, d = rows.shape
    bf16 = rows.dtype.name == "bfloat16"
    store = np.dtype("<u2") if bf16 else rows.dtype.numpy
    chunk_rows = max(1, min(max(n, 1), CHUNK_BYTES // max(1, rows.row_bytes)))
    with h5py.File(path, "w") as fh:
        ds = fh.create_dataset(name, shape=(n, d), dtype=store,
                               chunks=(chunk_rows, d) if n else None)
        if bf16:
            ds.attrs[DTYPE_ATTR] = "bfloat16"
        for lo, hi, block in rows.blocks():
            ds[lo:hi] = block.view(store) if bf16 else block
