"""How a table is cut into canonical chunks (spec §4): rows per chunk and the chunk count.

It depends only on the element type and the row width, so every layer that sizes blocks
(the matrix reader, the fingerprinter, table-version objects, plots) asks here.
"""

from __future__ import annotations

from typing import Any

from .. import _layout as L
from ..errors import ErrorKind, InputError
from .dtype import dtype_of

__all__ = ["chunk_rows_for", "n_chunks_for"]


def chunk_rows_for(dtype: Any, dim: int) -> int:
    """Rows per canonical chunk: the largest power of two with ``rows * row_bytes <= 2**20``.

    At least 1 (a row over 1 MiB is a chunk by itself). Depends only on the row's byte size.

    Examples
    --------
    >>> chunk_rows_for("float32", 128)   # 512-byte rows: 2**20 / 512
    2048
    >>> chunk_rows_for("float16", 300)   # 600-byte rows: 1747 rounds down to 1024
    1024
    """
    dt = dtype_of(dtype)
    row_bytes = int(dim) * dt.itemsize
    if row_bytes <= 0:
        raise InputError(f"D = {dim}: embeddings need D >= 1", ErrorKind.ZERO_DIM)
    q = max(1, L.CHUNK_TARGET_BYTES // row_bytes)
    return 1 << (q.bit_length() - 1)


def n_chunks_for(n_rows: int, chunk_rows: int) -> int:
    return -(-n_rows // chunk_rows)
