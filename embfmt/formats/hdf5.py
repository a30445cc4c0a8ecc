"""HDF5 files via h5py: ``FILE.h5:/path/to/dataset`` (or ``--dataset``), read block by block.

h5py has no bfloat16 type, so embfmt stores a bfloat16 table as its raw ``uint16`` bit
patterns with the dataset attribute ``embfmt.dtype = "bfloat16"``; the reader honours that
attribute (without it, a ``uint16`` dataset is refused like any other unsupported dtype).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from ..canonical.dtype import dtype_from_name
from ..errors import EmbfmtError, ErrorKind, FormatError, InputError, NotFoundError
from ..canonical.matrix import Matrix
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


def _dataset_name(dataset: str | None) -> str:
    return (dataset or DEFAULT_DATASET).strip("/") or DEFAULT_DATASET


def _fill(ds: Any, rows: Rows) -> None:
    """Copy every row into ``ds``; bfloat16 is stored as its uint16 bits, marked."""
    bf16 = rows.dtype.name == "bfloat16"
    if bf16:
        ds.attrs[DTYPE_ATTR] = "bfloat16"
    elif DTYPE_ATTR in ds.attrs:
        del ds.attrs[DTYPE_ATTR]
    for lo, hi, block in rows.blocks():
        ds[lo:hi] = block.view("<u2") if bf16 else block


def _create(fh: Any, name: str, rows: Rows) -> Any:
    n, d = rows.shape
    store = np.dtype("<u2") if rows.dtype.name == "bfloat16" else rows.dtype.numpy
    chunk_rows = max(1, min(max(n, 1), CHUNK_BYTES // max(1, rows.row_bytes)))
    return fh.create_dataset(name, shape=(n, d), dtype=store, chunks=(chunk_rows, d) if n else None)


def write(path: str, rows: Rows, keys: Any = None, dataset: str | None = None, **opts: Any) -> None:
    """Write a new HDF5 file with one chunked dataset ``dataset`` (default ``"embeddings"``).

    Written block by block; a bfloat16 table is stored as uint16 bits plus the
    ``embfmt.dtype`` attribute. Keys are not stored.
    """
    h5py = _h5py(path)
    with h5py.File(path, "w") as fh:
        _fill(_create(fh, _dataset_name(dataset), rows), rows)


def write_into(path: str, tmp: str, rows: Rows, keys: Any = None, dataset: str | None = None, *,
               overwrite: bool = True, **opts: Any) -> None:
    """Write ``tmp`` as a copy of the existing HDF5 file ``path`` in which only dataset
    ``dataset`` is new: every other group, dataset, link and attribute keeps its bytes.

    The copy is byte for byte (userblock, layout and free space included) and only the one
    dataset is then written through HDF5, so nothing else is re-encoded. An existing dataset of
    that name is refused unless ``overwrite``; when replaced, it keeps its own attributes (other
    than the bfloat16 marker, set from the new dtype) and, when shape and stored dtype are
    unchanged, its storage (chunks, compression) as well, since its values are written in place.
    A replacement of another shape or dtype is a new dataset: HDF5 does not reclaim the old
    one's space (``h5repack`` does).
    """
    h5py = _h5py(path)
    name = _dataset_name(dataset)
    store = np.dtype("<u2") if rows.dtype.name == "bfloat16" else rows.dtype.numpy
    damaged = (OSError, RuntimeError, KeyError, ValueError, TypeError)
    try:
        with h5py.File(path, "r") as fh:
            _check_target(h5py, fh, path, name, overwrite)
    except EmbfmtError:
        raise
    except damaged as e:
        raise FormatError(f"{path}: not a readable HDF5 file ({type(e).__name__}: {e}); it is "
                          "kept as it is: remove it or choose another output", ErrorKind.BAD_FILE) from None
    shutil.copyfile(path, tmp)
    with h5py.File(tmp, "r+") as fh:
        old = fh.get(name)
        # In place only when its bytes live in this file: a virtual or external dataset's
        # values are in other files, which this write must not touch.
        if (old is not None and old.shape == rows.shape and old.dtype == store
                and not old.is_virtual and not old.external):
            _fill(old, rows)
            return
        attrs = {}
        if old is not None:
            attrs = {k: old.attrs[k] for k in old.attrs if k != DTYPE_ATTR}
            del fh[name]
        ds = _create(fh, name, rows)
        for k, v in attrs.items():
            ds.attrs[k] = v
        _fill(ds, rows)


def _check_target(h5py: Any, fh: Any, path: str, name: str, overwrite: bool) -> None:
    """Refuse a dataset path that names a group, passes through a dataset, or (without
    ``overwrite``) names an existing dataset."""
    parts = name.split("/")
    for i in range(1, len(parts)):
        obj = fh.get("/".join(parts[:i]))
        if obj is None:
            return
        if not isinstance(obj, h5py.Group):
            raise InputError(f"{path}: {'/'.join(parts[:i])!r} is a dataset, so it cannot hold "
                             f"{name!r}", ErrorKind.BAD_ARGUMENT)
    obj = fh.get(name)
    if obj is None:
        return
    if not isinstance(obj, h5py.Dataset):
        raise InputError(f"{path}: {name!r} is a group, not a dataset; give a dataset path",
                         ErrorKind.BAD_ARGUMENT)
    if not overwrite:
        raise InputError(f"{path} already holds dataset {name!r}; pass --force (overwrite=True) "
                         "to replace it (the file's other datasets are kept)", ErrorKind.BAD_ARGUMENT)
