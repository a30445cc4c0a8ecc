"""``.safetensors`` files: one named tensor read or written among any others.

The header is parsed by our own bounded reader (no dependency, no code execution): its length is
capped before anything is read and every entry's offsets and shape are checked against the
file size before the tensor is memory-mapped.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

import numpy as np

from .. import _layout as L
from ..canonical.dtype import dtype_from_name
from ..errors import ErrorKind, FormatError, InputError, NotFoundError
from ._common import WRITE_BLOCK_BYTES, Rows, Source, named_matrix

NAME = "safetensors"
EXTENSIONS = (".safetensors",)
DTYPES = ("float64", "float32", "float16", "bfloat16", "int8", "uint8")

# safetensors: an 8-byte little-endian header length, then that many bytes of JSON. The
# reference implementation caps the header at 100 MB (MAX_HEADER_SIZE); we apply the same cap
# before reading it so a hostile length cannot make us allocate.
SAFETENSORS_MAX_HEADER = 100_000_000
ST_DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
             "I8": "int8", "U8": "uint8"}
ST_NAMES = {v: k for k, v in ST_DTYPES.items()}


def sniff(head: bytes) -> bool:
    """A JSON object right after the 8-byte header length."""
    return len(head) >= 9 and head[8:9] == b"{"


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
        except (UnicodeDecodeError, ValueError, RecursionError) as e:  # JSONDecodeError is a ValueError
            raise FormatError(f"{path}: safetensors header is not JSON ({type(e).__name__}: "
                              f"{str(e)[:200]})", ErrorKind.BAD_HEADER) from None
    if not isinstance(header, dict):
        raise FormatError(f"{path}: safetensors header is not a JSON object", ErrorKind.BAD_HEADER)
    data_len = size - 8 - hlen
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            b, end = info["data_offsets"]
            shape = info["shape"]
            # JSON integers only: int() would read 1.9 as 1, "12" as (1, 2) and fail on 1e400
            ok = all(isinstance(v, int) and not isinstance(v, bool) for v in (b, end, *shape))
            ok = ok and isinstance(shape, list) and 0 <= b <= end <= data_len
            ok = ok and all(s >= 0 for s in shape) and isinstance(info["dtype"], str)
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok:
            raise FormatError(f"{path}: safetensors entry {name!r} has invalid offsets or shape",
                              ErrorKind.BAD_HEADER)
    return header, 8 + hlen


@contextmanager
def read(path: str, dataset: str | None = None, **opts: Any) -> Iterator[Source]:
    """Memory-map tensor ``dataset`` (optional when the file holds exactly one 2-D tensor)."""
    header, base = read_safetensors_header(path)
    tensors = [k for k in header if k != "__metadata__"]
    name = dataset
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
    if st not in ST_DTYPES:
        raise InputError(f"{path}: tensor {name!r} has dtype {st}; accepted: "
                         f"{', '.join(ST_DTYPES)}", ErrorKind.UNSUPPORTED_DTYPE)
    dt = dtype_from_name(ST_DTYPES[st])
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
    if shape[0] > L.MAX_ROWS or shape[1] > L.MAX_DIM:
        raise FormatError(f"{path}: tensor {name!r} has shape {shape}, beyond the limits "
                          f"(N <= {L.MAX_ROWS}, D <= {L.MAX_DIM})", ErrorKind.BAD_HEADER)
    if count == 0:
        arr = np.zeros(shape, dtype=dt.numpy)
    else:
        arr = np.memmap(path, dtype=dt.numpy, mode="r", offset=base + b, shape=shape)
    yield Source(named_matrix(path, arr, f" tensor {name!r}"), None, NAME, path, name)


def check(path: str, rows: Rows) -> None:
    """Every embfmt dtype has a safetensors code; nothing to refuse."""


def _entry(rows: Rows, begin: int) -> dict[str, Any]:
    return {"dtype": ST_NAMES[rows.dtype.name], "shape": list(rows.shape),
            "data_offsets": [begin, begin + rows.n_rows * rows.row_bytes]}


def _header_bytes(header: dict[str, Any]) -> bytes:
    """The JSON header, padded with spaces to a multiple of 8 bytes as the reference writer
    does, so the data (and every 8-byte-aligned offset in it) starts aligned."""
    hb = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(hb) + (-len(hb) % 8)) + hb + b" " * (-len(hb) % 8)


def write(path: str, rows: Rows, keys: Any = None, dataset: str | None = None, **opts: Any) -> None:
    """Write one tensor named ``dataset`` (default ``"embeddings"``), streaming block by block.

    The data starts 8-byte aligned, so readers can map it directly. Keys are not stored.
    """
    with open(path, "wb") as f:
        write_stream(f, rows, keys, dataset)


def write_stream(f: BinaryIO, rows: Rows, keys: Any = None, dataset: str | None = None, *,
                 name: str = "<stream>", **opts: Any) -> None:
    """:func:`write` to an open binary stream (the header needs no seeking back)."""
    f.write(_header_bytes({dataset or "embeddings": _entry(rows, 0)}))
    f.writelines(block.tobytes() for _, _, block in rows.blocks())


def write_into(path: str, tmp: str, rows: Rows, keys: Any = None, dataset: str | None = None, *,
               overwrite: bool = True, **opts: Any) -> None:
    """Write ``tmp`` as the existing safetensors file ``path`` with tensor ``dataset`` added or
    (with ``overwrite``) replaced; every other tensor's bytes and the ``__metadata__`` entry are
    copied unchanged.

    safetensors requires the data of all tensors to be contiguous, without holes, so the others
    keep their order; a replaced tensor takes its old place (one of the same byte size leaves
    every other offset unchanged) and a new one goes at the end.
    """
    tensor = dataset or "embeddings"
    if tensor == "__metadata__":
        raise InputError(f"{path}: '__metadata__' is the safetensors metadata entry, not a "
                         "tensor name", ErrorKind.BAD_ARGUMENT)
    try:
        header, base = read_safetensors_header(path)
    except FormatError as e:
        raise FormatError(f"{e.message}; it is kept as it is: remove it or choose another output",
                          e.kind) from None
    if tensor in header and not overwrite:
        raise InputError(f"{path} already holds tensor {tensor!r}; pass --force (overwrite=True) "
                         "to replace it (the file's other tensors are kept)", ErrorKind.BAD_ARGUMENT)
    order = sorted((k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"])
    if tensor not in header:
        order.append(tensor)
    new: dict[str, Any] = dict(header)  # keeps the entries' order and __metadata__ as they were
    pos = 0
    for k in order:
        if k == tensor:
            new[k] = _entry(rows, pos)
            size = rows.n_rows * rows.row_bytes
        else:
            b, end = header[k]["data_offsets"]
            new[k] = dict(header[k], data_offsets=[pos, pos + end - b])
            size = end - b
        pos += size
    with open(path, "rb") as src, open(tmp, "wb") as f:
        f.write(_header_bytes(new))
        for k in order:
            if k == tensor:
                f.writelines(block.tobytes() for _, _, block in rows.blocks())
                continue
            b, end = header[k]["data_offsets"]
            _copy_range(src, f, base + b, end - b)


def _copy_range(src: BinaryIO, dst: BinaryIO, offset: int, size: int) -> None:
    src.seek(offset)
    while size:
        buf = src.read(min(size, WRITE_BLOCK_BYTES))
        if not buf:  # the header was checked against the file size; it shrank since
            raise FormatError(f"{src.name}: ended while copying its tensors", ErrorKind.TRUNCATED)
        dst.write(buf)
        size -= len(buf)
