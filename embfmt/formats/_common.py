"""What every format module shares: the opened :class:`Source`, the :class:`Rows` a writer
streams from, atomic output files, and the errors for missing extras and unsupported dtypes."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import progress
from ..canonical.dtype import DType
from ..errors import ErrorKind, InputError
from ..canonical.matrix import Matrix, as_matrix
from ..history.table import TableView

__all__ = [
    "WRITE_BLOCK_BYTES",
    "Rows",
    "Source",
    "as_rows",
    "atomic_output",
    "missing_extra",
    "named_matrix",
    "unsupported_dtype",
]

# Writers copy a table to its output file in blocks of about this many bytes: large enough
# that per-block overhead vanishes, small enough that a table larger than RAM streams through.
WRITE_BLOCK_BYTES = 64 << 20


@dataclass
class Source:
    """A matrix opened from a file, with the row keys the file carries (or None).

    Attributes
    ----------
    matrix
        The canonical, lazily read :class:`~embfmt.canonical.matrix.Matrix`.
    keys
        Row keys stored in the file (a Parquet/Arrow key column, word2vec words), else None.
    format
        The format name (``"npy"``, ``"parquet"``, ...).
    path, dataset
        The file, and the dataset / tensor / column that was read (None when not applicable).
    """

    matrix: Matrix
    keys: Any
    format: str
    path: str
    dataset: str | None = None


class Rows:
    """A table to write, served as typed row blocks in file order.

    Built by :func:`as_rows` from a :class:`~embfmt.history.table.TableView` (decoded chunk by chunk),
    a :class:`~embfmt.canonical.matrix.Matrix`, or anything :func:`~embfmt.canonical.matrix.as_matrix` accepts.
    """

    def __init__(self, shape: tuple[int, int], dtype: DType, get: Callable[[int, int], np.ndarray],
                 align: int = 1, keys: Any = None) -> None:
        self.shape = (int(shape[0]), int(shape[1]))
        self.dtype = dtype
        self._get = get
        self.align = max(1, int(align))
        self.keys = keys

    @property
    def n_rows(self) -> int:
        return self.shape[0]

    @property
    def dim(self) -> int:
        return self.shape[1]

    @property
    def row_bytes(self) -> int:
        return self.shape[1] * self.dtype.itemsize

    def block(self, lo: int, hi: int) -> np.ndarray:
        """Rows ``[lo, hi)`` as a C-contiguous little-endian array of ``dtype.numpy``."""
        return np.ascontiguousarray(self._get(lo, hi))

    def blocks(self, block_bytes: int = WRITE_BLOCK_BYTES) -> Iterator[tuple[int, int, np.ndarray]]:
        """Yield ``(lo, hi, block)`` covering every row, each block about ``block_bytes``."""
        step = max(1, block_bytes // max(1, self.row_bytes))
        step = max(self.align, step // self.align * self.align)  # never split a stored chunk
        with progress.bar(self.n_rows * self.row_bytes, "write file") as bar:
            for lo in range(0, self.n_rows, step):
                hi = min(self.n_rows, lo + step)
                yield lo, hi, self.block(lo, hi)
                bar.update((hi - lo) * self.row_bytes)


def as_rows(data: Any) -> Rows:
    """Wrap what :func:`embfmt.formats.write` was given as :class:`Rows`.

    A :class:`~embfmt.history.table.TableView` brings its own row keys; anything else has none.
    """
    if isinstance(data, Rows):
        return data
    if isinstance(data, TableView):
        view = data
        return Rows(view.shape, view.version.dtype, lambda lo, hi: view[lo:hi],
                    align=view.version.chunk_rows, keys=view.keys)
    m = as_matrix(data)
    dt = m.dtype

    def get(lo: int, hi: int) -> np.ndarray:
        # Canonical rows are little-endian bit patterns, so a view as the canonical dtype is
        # exact (no float conversion touches NaN payloads or -0.0).
        return m.rows(lo, hi).view(dt.numpy).reshape(hi - lo, m.dim)

    return Rows(m.shape, dt, get)


def named_matrix(path: str, x: Any, what: str = "") -> Matrix:
    """``as_matrix(x)``, with errors naming the file (and dataset) they come from."""
    try:
        return as_matrix(x)
    except InputError as e:
        raise InputError(f"{path}{what}: {e.message}", e.kind) from None


def missing_extra(module: str, extra: str, path: str, what: str) -> InputError:
    """The error for an optional dependency that is not installed."""
    return InputError(f"{path}: reading or writing {what} needs the optional dependency "
                      f"{module}; install it with: pip install 'embfmt[{extra}]'",
                      ErrorKind.MISSING_EXTRA)


def unsupported_dtype(path: str, fmt: str, dtype: str, supported: tuple[str, ...],
                      suggest: str) -> InputError:
    """The error for a dtype a format cannot hold, naming the file and a format that can."""
    return InputError(f"{path}: a {fmt} file cannot hold {dtype} (it holds "
                      f"{', '.join(supported)}); write {suggest} instead",
                      ErrorKind.UNSUPPORTED_DTYPE)


def atomic_output(path: str, write: Callable[[str], None], like: str | None = None) -> None:
    """Run ``write(tmp)`` on a temporary file next to ``path``, then rename it into place.

    A reader never sees a half-written file, and on any error (or Ctrl-C) nothing is left
    behind: the temporary file is removed and ``path`` is untouched. The temporary file is
    fsynced before the rename and the directory after it, so a crash leaves either the old
    file or the whole new one. ``like`` names a file whose permission bits the new one takes
    (a file rewritten in place keeps its mode).
    """
    d = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(d, f".{os.path.basename(path)}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        write(tmp)
        if like is not None:
            shutil.copymode(like, tmp)
        _fsync(tmp, os.O_RDONLY)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    _fsync(d, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))


def _fsync(path: str, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
