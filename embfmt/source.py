"""Opening matrices stored in files: ``.npy``, HDF5 and ``.safetensors``.

Every reader is out-of-core: ``.npy`` and ``.safetensors`` are memory-mapped (their headers are
parsed and bounded before anything is mapped), HDF5 datasets are read block by block through
h5py. The format is chosen by extension, else by the file's magic bytes.
"""

from __future__ import annotations

import json
import os
import struct
from contextlib import contextmanager
from collections.abc import Iterator
from typing import Any

import numpy as np

from .dtype import dtype_from_name
from .errors import ErrorKind, FormatError, InputError, NotFoundError
from .matrix import Matrix, as_matrix

__all__ = ["open_matrix", "detect_format", "read_safetensors_header", "FORMATS"]

FORMATS = ("npy", "hdf5", "safetensors")
_EXT = {".npy": "npy", ".h5": "hdf5", ".hdf5": "hdf5", ".hdf": "hdf5", ".he5": "hdf5",
        ".safetensors": "safetensors"}
_NPY_MAGIC = b"\x93NUMPY"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"

# safetensors: an 8-byte little-endian header length, then that many bytes of JSON. The
# reference implementation caps the header at 100 MB (MAX_HEADER_SIZE); we apply the same cap
# before reading it so a hostile length cannot make us allocate.
SAFETENSORS_MAX_HEADER = 100_000_000
_ST_DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
              "I8": "int8", "U8": "uint8"}


def detect_format(path: str, fmt: str | None = None) -> str:
    """Return ``"npy"``, ``"hdf5"`` or ``"safetensors"`` for ``path`` (by extension, then magic)."""
    if fmt:
        f = {"h5": "hdf5"}.get(fmt, fmt)
        if f not in FORMATS:
            raise InputError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
        return f
    ext = os.path.splitext(path)[1].lower()
    if ext in _EXT:
        return _EXT[ext]
    with open(path, "rb") as fh:
        head = fh.read(16)
    if head.startswith(_NPY_MAGIC):
        return "npy"
    if head.startswith(_HDF5_MAGIC):
        return "hdf5"
    if len(head) >= 9 and head[8:9] == b"{":
        return "safetensors"
    raise FormatError(f"{path}: not a .npy, HDF5 or .safetensors file (unrecognized magic bytes)",
                      ErrorKind.BAD_FILE)


def read_safetensors_header(path: str) -> tuple[dict[str, Any], int]:
    """Parse and validate a safetensors header; returns ``(header, data_offset)``."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        raw = fh.read(8)
        if len(raw) < 8:
            raise FormatError(f"{path}: truncated safetensors file ({size} bytes)", ErrorKind.TRUNCATED)
        (hlen,) = struct.unpack("<Q", raw)
        if hlen > SAFETENSORS_MAX_HEADER or 8 + hlen > size:
            raise FormatError(f"{path}: safetensors header length {hlen} is invalid for a "
                              f"{size}-byte file", ErrorKind.BAD_HEADER)
        try:
            header = json.loads(fh.read(hlen))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise FormatError(f"{path}: safetensors header is not JSON ({e})", ErrorKind.BAD_HEADER) from None
    if not isinstance(header, dict):
        raise FormatError(f"{path}: safetensors header is not a JSON object", ErrorKind.BAD_HEADER)
    data_len = size - 8 - hlen
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            b, e = info["data_offsets"]
            shape = [int(s) for s in info["shape"]]
            ok = isinstance(b, int) and isinstance(e, int) and 0 <= b <= e <= data_len
            ok = ok and all(s >= 0 for s in shape)
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok:
            raise FormatError(f"{path}: safetensors entry {name!r} has invalid offsets or shape",
                              ErrorKind.BAD_HEADER)
    return header, 8 + hlen


def _named(path: str, x: Any, what: str = "") -> Matrix:
    """``as_matrix(x)``, with errors naming the file (and dataset) they come from."""
    try:
        return as_matrix(x)
    except InputError as e:
        raise InputError(f"{path}{what}: {e.message}", e.kind) from None


def _open_safetensors(path: str, name: str | None) -> Matrix:
    header, base = read_safetensors_header(path)
    tensors = [k for k in header if k != "__metadata__"]
    if name is None:
        two_d = [k for k in tensors if len(header[k]["shape"]) == 2]
        if len(two_d) != 1:
            raise InputError(f"{path}: choose a tensor with --dataset; 2-D tensors: "
                             f"{', '.join(sorted(two_d)) or '(none)'}", ErrorKind.BAD_ARGUMENT)
        name = two_d[0]
    if name not in header or name == "__metadata__":
        raise NotFoundError(f"{path}: no tensor named {name!r}; tensors: {', '.join(sorted(tensors))}")
    info = header[name]
    st = info["dtype"]
    if st not in _ST_DTYPES:
        raise InputError(f"{path}: tensor {name!r} has dtype {st}; accepted: "
                         f"{', '.join(_ST_DTYPES)}", ErrorKind.UNSUPPORTED_DTYPE)
    dt = dtype_from_name(_ST_DTYPES[st])
    shape = tuple(int(s) for s in info["shape"])
    b, e = info["data_offsets"]
    count = 1
    for s in shape:
        count *= s
    if count * dt.itemsize != e - b:
        raise FormatError(f"{path}: tensor {name!r} of shape {shape} {st} needs "
                          f"{count * dt.itemsize} bytes, its offsets give {e - b}", ErrorKind.BAD_HEADER)
    if len(shape) != 2:
        raise InputError(f"{path}: tensor {name!r} has shape {shape}; expected a 2-D matrix",
                         ErrorKind.NOT_A_MATRIX)
    if count == 0:
        arr = np.zeros(shape, dtype=dt.numpy)
    else:
        arr = np.memmap(path, dtype=dt.numpy, mode="r", offset=base + b, shape=shape)
    return _named(path, arr, f" tensor {name!r}")


@contextmanager
def open_matrix(path: str, dataset: str | None = None, fmt: str | None = None) -> Iterator[Matrix]:
    """Open the matrix stored in ``path`` (closing the file on exit).

    Parameters
    ----------
    path
        A ``.npy``, HDF5 or ``.safetensors`` file.
    dataset
        HDF5 dataset path or safetensors tensor name; optional when the file holds exactly one
        2-D matrix.
    fmt
        Force the format instead of detecting it.
    """
    if not os.path.exists(path):
        raise NotFoundError(f"{path}: no such file")
    if os.path.isdir(path):
        raise InputError(f"{path}: is a directory, expected a matrix file", ErrorKind.BAD_FILE)
    kind = detect_format(path, fmt)
    if kind == "npy":
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise FormatError(f"{path}: not a readable .npy file ({e})", ErrorKind.BAD_FILE) from None
        if not isinstance(arr, np.ndarray):
            raise FormatError(f"{path}: not a .npy array", ErrorKind.BAD_FILE)
        yield _named(path, arr)
    elif kind == "hdf5":
        import h5py

        try:
            fh = h5py.File(path, "r")
        except OSError as e:
            raise FormatError(f"{path}: not a readable HDF5 file ({e})", ErrorKind.BAD_FILE) from None
        try:
            if dataset is None:
                found: list[str] = []
                fh.visititems(lambda n, o: found.append(n) if isinstance(o, h5py.Dataset) and o.ndim == 2 else None)
                if len(found) != 1:
                    raise InputError(f"{path}: choose a dataset with --dataset; 2-D datasets: "
                                     f"{', '.join(found) or '(none)'}", ErrorKind.BAD_ARGUMENT)
                dataset = found[0]
            obj = fh.get(dataset)
            if obj is None:
                raise NotFoundError(f"{path}: no dataset {dataset!r}")
            if not isinstance(obj, h5py.Dataset):
                raise InputError(f"{path}: {dataset!r} is a group, not a dataset", ErrorKind.NOT_A_MATRIX)
            yield _named(path, obj, f" dataset {dataset!r}")
        finally:
            fh.close()
    else:
        yield _open_safetensors(path, dataset)
