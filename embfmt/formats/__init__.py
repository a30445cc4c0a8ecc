"""Reading and writing embedding matrices in the formats people use.

- ``npy`` (``.npy``): every dtype but bfloat16; no keys.
- ``hdf5`` (``.h5 .hdf5 .hdf .he5``): every dtype (bfloat16 as marked uint16 bits); no keys.
- ``safetensors`` (``.safetensors``): every dtype; no keys.
- ``parquet`` (``.parquet .pq``) and ``arrow`` (``.arrow .feather .ipc``): every dtype
  (bfloat16 as marked uint16 bits); a key column.
- ``word2vec`` (``.vec .txt``; reading detects the ``N D`` header, so GloVe files read too) and
  ``glove`` (no header; by ``fmt="glove"``): every dtype, parsed with ``dtype=`` (default
  float32); words are the keys.
- ``word2vec-bin`` (``.bin``): float32; words are the keys.
- ``torch`` (``.pt .pth``, and ``.bin`` zip archives), read only: one tensor of a file loaded by
  ``torch.load(weights_only=True)`` (see :mod:`embfmt.formats.pt`); needs torch.

Every reader is out-of-core except the text formats: ``.npy`` and ``.safetensors`` are
memory-mapped, HDF5 datasets are read block by block, Parquet and Arrow batch by batch.
Every writer streams block by block into a temporary file renamed into place, so a reader
never sees a half-written file and a failed write leaves nothing behind. Optional
dependencies are imported only when their format is used; a missing one raises
:class:`~embfmt.errors.InputError` of kind ``missing-extra`` naming the extra to install.

Examples
--------
>>> import os, tempfile, numpy as np
>>> from embfmt import formats
>>> d = tempfile.mkdtemp()
>>> x = np.arange(6, dtype=np.float32).reshape(3, 2)
>>> formats.write(os.path.join(d, "w.vec"), x, keys=["a", "b", "c"])
'word2vec'
>>> with formats.read(os.path.join(d, "w.vec")) as src:
...     src.format, src.matrix.shape, src.keys
('word2vec', (3, 2), ['a', 'b', 'c'])
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO

from ..errors import EmbfmtError, ErrorKind, FormatError, InputError, NotFoundError
from ..canonical.matrix import Matrix
from ._common import Rows, Source, as_rows, atomic_output
from .safetensors import read_safetensors_header

__all__ = [
    "FORMATS",
    "Rows",
    "Source",
    "detect_format",
    "open_matrix",
    "read",
    "read_safetensors_header",
    "split_dataset",
    "STREAMABLE",
    "write",
    "write_stream",
]


@dataclass(frozen=True)
class _Format:
    name: str
    extensions: tuple[str, ...]
    module: str
    reader: str = "read"
    writer: str = "write"
    checker: str = "check"
    opts: tuple[tuple[str, Any], ...] = ()
    # A file that holds many named tables (HDF5 datasets, safetensors tensors): writing one
    # into an existing file goes through this function, which keeps all the others.
    merger: str | None = None
    # Writes the format to an open binary stream, front to back (standard output): only
    # formats that never seek back have one.
    streamer: str | None = None

    def _mod(self) -> Any:
        import importlib

        return importlib.import_module(f"{__name__}.{self.module}")

    def read(self) -> Callable[..., Any]:
        return getattr(self._mod(), self.reader)  # type: ignore[no-any-return]

    def write(self) -> Callable[..., Any]:
        return getattr(self._mod(), self.writer)  # type: ignore[no-any-return]

    def check(self) -> Callable[..., Any]:
        return getattr(self._mod(), self.checker)  # type: ignore[no-any-return]

    def stream(self) -> Callable[..., Any]:
        assert self.streamer is not None
        return getattr(self._mod(), self.streamer)  # type: ignore[no-any-return]

    def merge(self) -> Callable[..., Any]:
        assert self.merger is not None
        return getattr(self._mod(), self.merger)  # type: ignore[no-any-return]


_REGISTRY: dict[str, _Format] = {f.name: f for f in (
    _Format("npy", (".npy",), "npy", streamer="write_stream"),
    _Format("hdf5", (".h5", ".hdf5", ".hdf", ".he5"), "hdf5", merger="write_into"),
    _Format("safetensors", (".safetensors",), "safetensors", merger="write_into",
            streamer="write_stream"),
    _Format("parquet", (".parquet", ".pq"), "parquet"),
    _Format("arrow", (".arrow", ".feather", ".ipc"), "arrow"),
    _Format("word2vec", (".vec", ".txt"), "word2vec", "read_text", "write_text", "check_text",
            streamer="write_text_stream"),
    _Format("glove", (), "word2vec", "read_text", "write_text", "check_text", (("header", False),),
            streamer="write_text_stream"),
    _Format("word2vec-bin", (".bin",), "word2vec", "read_bin", "write_bin", "check_bin",
            streamer="write_bin_stream"),
    _Format("torch", (".pt", ".pth"), "pt", writer=""),  # read only, through weights_only=True
)}
FORMATS: tuple[str, ...] = tuple(_REGISTRY)
"""Every format name accepted by ``fmt=`` and the CLI's ``--format``."""
STREAMABLE: tuple[str, ...] = tuple(f.name for f in _REGISTRY.values() if f.streamer)
"""The formats :func:`write_stream` writes (written front to back, no seeking)."""
ALIASES = {"pt": "torch", "pytorch": "torch",
           "h5": "hdf5", "pq": "parquet", "feather": "arrow", "ipc": "arrow", "vec": "word2vec",
           "txt": "word2vec", "text": "word2vec", "bin": "word2vec-bin", "word2vec-binary": "word2vec-bin"}
_EXT = {e: f.name for f in _REGISTRY.values() for e in f.extensions}
_MAGIC = ((b"\x93NUMPY", "npy"), (b"\x89HDF\r\n\x1a\n", "hdf5"), (b"PAR1", "parquet"),
          (b"ARROW1", "arrow"))


def _name(fmt: str) -> str:
    f = ALIASES.get(fmt, fmt)
    if f not in _REGISTRY:
        raise InputError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}",
                         ErrorKind.BAD_ARGUMENT)
    return f


def format_for_output(path: str, fmt: str | None = None) -> str:
    """The format to write ``path`` in: ``fmt``, else by extension (no default guess)."""
    name = _name(fmt) if fmt else _EXT.get(os.path.splitext(path)[1].lower())
    if name is not None and not _REGISTRY[name].writer:
        raise InputError(f"{path}: embfmt reads {name} files but does not write them; write "
                         ".safetensors instead", ErrorKind.BAD_ARGUMENT)
    if name is not None:
        return name
    ext = os.path.splitext(path)[1].lower()
    what = f"extension {ext!r} is not one embfmt writes" if ext else "it has no extension"
    raise InputError(f"{path}: cannot tell the output format ({what}); use one of "
                     f"{' '.join(sorted(_EXT))} or give --format ({', '.join(FORMATS)})",
                     ErrorKind.BAD_ARGUMENT)


def detect_format(path: str, fmt: str | None = None) -> str:
    """The format of the existing file ``path``: ``fmt``, else by extension, else by magic bytes.

    Examples
    --------
    >>> detect_format("emb.parquet"), detect_format("x", "h5")
    ('parquet', 'hdf5')
    """
    if fmt:
        return _name(fmt)
    ext = os.path.splitext(path)[1].lower()
    if ext in _EXT and ext != ".bin":
        return _EXT[ext]
    with open(path, "rb") as fh:
        head = fh.read(64)
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    if len(head) >= 9 and head[8:9] == b"{":
        return "safetensors"
    # ".bin" says little (PyTorch, raw dumps, ...): word2vec binary only with its "N D" line,
    # torch only as the zip archive torch.save writes (pytorch_model.bin).
    if ext == ".bin" and re.match(rb"[0-9]+ [0-9]+\r?\n", head):
        return "word2vec-bin"
    if ext == ".bin" and head.startswith(b"PK\x03\x04"):
        return "torch"
    raise FormatError(f"{path}: format not recognized (extension and magic bytes); give --format "
                      f"({', '.join(FORMATS)})", ErrorKind.BAD_FILE)


def split_dataset(spec: str, where: Callable[[str], str] = lambda p: p) -> tuple[str, str | None]:
    """``FILE`` or ``FILE:DATASET`` for an existing FILE (the longest existing prefix wins, so
    ``a:b.h5:/x`` works when ``a:b.h5`` is the file). ``where`` maps a name to the path to test
    (the CLI resolves names relative to ``-C``); the returned FILE is the name as given.

    >>> split_dataset("no-such-file.h5:/group/emb")
    ('no-such-file.h5:/group/emb', None)
    """
    if os.path.exists(where(spec)):
        return spec, None
    for i in [i for i, c in enumerate(spec) if c == ":"][::-1]:
        head = spec[:i]
        if head and os.path.isfile(where(head)):
            return head, spec[i + 1:] or None
    return spec, None


def has_matrix_extension(name: str) -> bool:
    """Whether ``name`` ends in the extension of a matrix format (``.npy``, ``.h5``, ...).

    >>> has_matrix_extension("emb.NPY"), has_matrix_extension("v1.0")
    (True, False)
    """
    return os.path.splitext(name)[1].lower() in _EXT


@contextmanager
def read(path: str | os.PathLike[str], dataset: str | None = None, fmt: str | None = None,
         **opts: Any) -> Iterator[Source]:
    """Open the matrix stored in ``path`` with the row keys the file carries.

    Parameters
    ----------
    path
        A matrix file; ``FILE:DATASET`` names an HDF5 dataset, safetensors tensor or
        Parquet/Arrow vector column when ``FILE`` exists and ``dataset`` is not given.
    dataset
        HDF5 dataset path, safetensors tensor name, or Parquet/Arrow vector column; optional
        when the file holds exactly one candidate.
    fmt
        Force the format (see :data:`FORMATS`) instead of detecting it.
    **opts
        Format options: ``vector_column``, ``key_column`` (Parquet/Arrow), ``dtype`` (text
        formats; default ``"float32"``).

    Yields a :class:`Source` (``.matrix``, ``.keys``, ``.format``); the file is closed on exit.

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> p = os.path.join(tempfile.mkdtemp(), "x.npy"); np.save(p, np.eye(3, dtype=np.float16))
    >>> with read(p) as src:
    ...     src.matrix.shape, src.matrix.dtype.name, src.keys
    ((3, 3), 'float16', None)
    """
    p = os.fspath(path)
    if dataset is None and not os.path.exists(p):
        p, dataset = split_dataset(p)
    if not os.path.exists(p):
        raise NotFoundError(f"{p}: no such file")
    if os.path.isdir(p):
        raise InputError(f"{p}: is a directory, expected a matrix file", ErrorKind.BAD_FILE)
    f = _REGISTRY[detect_format(p, fmt)]
    kw = dict(f.opts)
    kw.update({k: v for k, v in opts.items() if v is not None})
    with f.read()(p, dataset, **kw) as src:
        yield src


@contextmanager
def open_matrix(path: str | os.PathLike[str], dataset: str | None = None, fmt: str | None = None,
                **opts: Any) -> Iterator[Matrix]:
    """Like :func:`read`, yielding only the :class:`~embfmt.canonical.matrix.Matrix`."""
    with read(path, dataset, fmt, **opts) as src:
        yield src.matrix


def write(path: str | os.PathLike[str], data: Any, keys: Any = None, dataset: str | None = None,
          fmt: str | None = None, *, overwrite: bool = True, **opts: Any) -> str:
    """Write a table to ``path`` atomically; returns the format name used.

    HDF5 and safetensors files hold many named tables: into an existing one, only ``dataset``
    is written (added, or replaced when ``overwrite``) and every other dataset / tensor, group,
    attribute and ``__metadata__`` entry is copied bit for bit. Every other format holds one
    table, so an existing file is replaced as a whole (refused unless ``overwrite``).

    Parameters
    ----------
    data
        A :class:`~embfmt.history.table.TableView` (``repo.open(...)``, decoded chunk by chunk; its row
        keys are written unless ``keys`` is given), or anything
        :func:`~embfmt.canonical.matrix.as_matrix` accepts (numpy, torch, CuPy, DLPack, ...).
    keys
        Row keys to store (Parquet/Arrow key column, word2vec words); other formats ignore them.
    dataset
        HDF5 dataset path (default ``embeddings``), safetensors tensor name (default
        ``embeddings``) or Parquet/Arrow vector column (default ``embedding``).
    fmt
        The format; by default chosen by the extension of ``path``.
    overwrite
        Replace an existing dataset / tensor of that name, or an existing single-table file;
        when False either is refused (:class:`~embfmt.errors.InputError`, ``bad-argument``).
    **opts
        ``vector_column`` / ``key_column`` (Parquet/Arrow), ``header`` (text).

    A dtype the format cannot hold raises :class:`~embfmt.errors.InputError` of kind
    ``unsupported-dtype`` before any file is created; any error leaves no file behind and an
    existing file as it was (the new file is written next to it, fsynced, then renamed over it).

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> p = os.path.join(tempfile.mkdtemp(), "x.safetensors")
    >>> write(p, np.ones((2, 3), dtype=np.int8), dataset="w")
    'safetensors'
    """
    p = os.fspath(path)
    if os.path.isdir(p):
        raise InputError(f"{p}: is a directory; give an output file", ErrorKind.BAD_ARGUMENT)
    d = os.path.dirname(os.path.abspath(p))
    if not os.path.isdir(d):
        raise NotFoundError(f"{p}: directory {d} does not exist")
    f = _REGISTRY[format_for_output(p, fmt)]
    rows, keys, kw = _prepare(f, p, data, keys, opts)
    if os.path.exists(p) and f.merger is not None:
        merge = f.merge()
        atomic_output(p, lambda tmp: _named_errors(p, tmp, lambda: merge(
            p, tmp, rows, keys, dataset, overwrite=overwrite, **kw)), like=p)
        return f.name
    if os.path.exists(p) and not overwrite:
        raise InputError(f"{p} already exists; pass --force (overwrite=True) to overwrite it",
                         ErrorKind.BAD_ARGUMENT)
    writer = f.write()
    atomic_output(p, lambda tmp: _named_errors(p, tmp, lambda: writer(tmp, rows, keys, dataset, **kw)))
    return f.name


def write_stream(stream: BinaryIO, data: Any, keys: Any = None, dataset: str | None = None,
                 fmt: str = "npy", *, name: str = "<stdout>", **opts: Any) -> str:
    """Write a table to an open binary stream (standard output, a pipe) in ``fmt``, which must
    be one of :data:`STREAMABLE`; returns the format name. ``name`` stands for the stream in
    error messages. A dtype the format cannot hold is refused before any byte is written; an
    error found while writing (a text NaN with a payload) leaves what was written so far.

    Examples
    --------
    >>> import io, numpy as np
    >>> buf = io.BytesIO()
    >>> write_stream(buf, np.eye(2, dtype=np.float32), keys=["a", "b"], fmt="word2vec")
    'word2vec'
    >>> buf.getvalue()
    b'2 2\\na 1 0\\nb 0 1\\n'
    """
    f = _REGISTRY[_name(fmt)]
    if f.streamer is None:
        raise InputError(f"{name}: {f.name} cannot be written to a stream (it needs a seekable "
                         f"file); stream one of {', '.join(STREAMABLE)}", ErrorKind.BAD_ARGUMENT)
    rows, keys, kw = _prepare(f, name, data, keys, opts)
    f.stream()(stream, rows, keys, dataset, name=name, **kw)
    return f.name


def _prepare(f: _Format, name: str, data: Any, keys: Any,
             opts: dict[str, Any]) -> tuple[Rows, Any, dict[str, Any]]:
    """The rows to write (checked against the format before any byte is written), their keys
    (the table's own unless given) and the writer's options."""
    rows = as_rows(data)
    f.check()(name, rows)
    kw = dict(f.opts)
    kw.update({k: v for k, v in opts.items() if v is not None})
    return rows, rows.keys if keys is None else keys, kw


def _named_errors(path: str, tmp: str, fn: Callable[[], None]) -> None:
    """Errors raised while writing the temporary file name the real output instead."""
    try:
        fn()
    except EmbfmtError as e:
        if tmp in e.message:
            raise type(e)(e.message.replace(tmp, path), e.kind) from None
        raise
