"""Word-vector files: word2vec / fastText text (``N D`` header), GloVe text (no header) and
word2vec binary.

Text files hold one ``WORD v1 v2 ... vD`` line per row; the reader detects the ``N D`` header.
Values are parsed into the dtype given by ``dtype`` (default float32) and must fit it. Words
become the table's row keys (always strings). The whole matrix is parsed into memory: a text
file is several times larger than the binary matrix it holds, so this is not the path for
tables larger than RAM.

Writers need a word per row: a table's keys, or, when it has none, the row index written as
the word (``"0"``, ``"1"``, ...). Integer keys are written as decimal words and come back as
strings. Floats are written in the shortest form that reads back to the same bits in the
table's dtype (``-0``, ``inf`` and ``-inf`` included); a NaN other than the canonical quiet NaN
has no text form and is refused, naming its row, before any output file appears.

Word2vec binary (``.bin``) stores float32 only: ``N D\\n`` then, per row, the word, a space and
D little-endian float32 values (bit-exact, NaN payloads included), as gensim reads and writes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

import numpy as np

from .. import _layout as L
from ..canonical.dtype import DType, dtype_from_name
from ..errors import ErrorKind, FormatError, InputError
from ._common import Rows, Source, named_matrix, unsupported_dtype
from ._decimal import format_rows as format_decimal_rows
from ._decimal import precisions

TEXT_EXTENSIONS = (".txt", ".vec")
BIN_EXTENSIONS = (".bin",)
TEXT_DTYPES = ("float64", "float32", "float16", "bfloat16", "int8", "uint8")
BIN_DTYPES = ("float32",)
# Rows per block when writing text (formatting is per element; blocks keep memory bounded).
TEXT_BLOCK_ROWS = 4096
# Lines whose values are parsed together when reading text (bounded memory, few array calls).
TEXT_PARSE_LINES = 1024
_WS = (" ", "\t", "\n", "\r", "\v", "\f")


# --- parsing numbers -------------------------------------------------------------------------
def parse_values(tokens: Any, dt: DType) -> np.ndarray:
    """Parse decimal text into ``dt``: via float64 for floats (the writer checks that its
    output reads back through exactly this path), via int64 with a range check for ints."""
    if dt.is_float:
        text = tokens if isinstance(tokens, list) else list(tokens)
        # Python's float() is what numpy's str -> float64 cast applies to each string (same
        # values, same accepted spellings), without building a string array first: ~3x faster.
        wide = np.fromiter(map(float, text), dtype=np.float64, count=len(text))
        inf = np.isinf(wide)
        if inf.any():  # "1e400" overflows float64 itself: only a spelled infinity may be inf
            for i in np.nonzero(inf)[0]:
                if text[i].lower().lstrip("+-") not in ("inf", "infinity"):
                    raise OverflowError(str(text[i]))
        with np.errstate(over="ignore"):
            out = wide.astype(dt.numpy)
        over = np.isinf(out.astype(np.float64)) & np.isfinite(wide)
        if over.any():
            raise OverflowError(str(text[int(np.nonzero(over)[0][0])]))
        return out
    wide_i = np.asarray(tokens, dtype=np.str_).astype(np.int64)
    info = np.iinfo(dt.numpy)
    if wide_i.size and (wide_i.min() < info.min or wide_i.max() > info.max):
        raise OverflowError(str(wide_i[(wide_i < info.min) | (wide_i > info.max)][0]))
    return wide_i.astype(dt.numpy)


def format_rows(block: np.ndarray, dt: DType, path: str, first_row: int) -> list[str]:
    """Each row's values as text, space-separated: the shortest decimal that
    :func:`parse_values` reads back bit-exactly (see :mod:`embfmt.formats._decimal`)."""
    if not dt.is_float:
        row = " ".join(["%d"] * block.shape[1])
        return [row % tuple(r) for r in block.tolist()]
    p = precisions(block, dt)
    if not p.all():
        r, c = (int(v[0]) for v in np.nonzero(p == 0))
        bits = int(block.view(dt.bits)[r, c])
        raise InputError(f"{path}: row {first_row + r} column {c} holds a NaN with payload "
                         f"0x{bits:0{2 * dt.itemsize}x}; text can only hold the "
                         "canonical quiet NaN, write .npy, .safetensors, HDF5 or Parquet to "
                         "keep it", ErrorKind.UNSUPPORTED_DTYPE)
    return format_decimal_rows(block, p)


# --- words -----------------------------------------------------------------------------------
def words_for(path: str, rows: Rows, keys: Any) -> list[str]:
    """One word per row: the keys, else the row index (see module docstring)."""
    if keys is None:
        return [str(i) for i in range(rows.n_rows)]
    words = [str(k) for k in (keys.tolist() if isinstance(keys, np.ndarray) else keys)]
    if len(words) != rows.n_rows:
        raise InputError(f"{path}: {len(words)} keys for {rows.n_rows} rows", ErrorKind.BAD_KEYS)
    for i, w in enumerate(words):
        if not w or any(c in w for c in _WS):
            raise InputError(f"{path}: row {i} key {w!r} is empty or contains whitespace; a "
                             "word-vector file cannot hold it", ErrorKind.BAD_KEYS)
    return words


# --- text ------------------------------------------------------------------------------------
def _lines(path: str) -> Iterator[tuple[int, str]]:
    with open(path, "rb") as fh:
        for no, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise FormatError(f"{path}: line {no} is not UTF-8 ({e})", ErrorKind.BAD_FILE) from None
            line = line.rstrip("\r\n").rstrip(" ")
            if line:
                yield no, line


def _check_header(path: str, n: int, dim: int) -> None:
    """An ``N D`` header within the format limits (spec §9), checked before any allocation."""
    if dim == 0:
        raise FormatError(f"{path}: header says D = 0", ErrorKind.BAD_HEADER)
    if n > L.MAX_ROWS or dim > L.MAX_DIM:
        raise FormatError(f"{path}: header says {n} x {dim}, beyond the limits "
                          f"(N <= {L.MAX_ROWS}, D <= {L.MAX_DIM})", ErrorKind.BAD_HEADER)


def _is_header(tokens: list[str]) -> bool:
    return len(tokens) == 2 and all(t.isascii() and t.isdigit() for t in tokens)


def _parse_line(path: str, no: int, tokens: list[str], dt: DType) -> np.ndarray:
    """The values of line ``no``, with the typed error naming the line."""
    try:
        return parse_values(tokens, dt)
    except ValueError as e:
        raise FormatError(f"{path}: line {no} holds a value that is not a number ({e})",
                          ErrorKind.BAD_FILE) from None
    except OverflowError as e:
        raise InputError(f"{path}: line {no} value {e} does not fit {dt.name}; read it with "
                         "a wider --dtype", ErrorKind.UNSUPPORTED_DTYPE) from None


@contextmanager
def read_text(path: str, dataset: str | None = None, *, dtype: str | None = None,
              header: bool | None = None, **opts: Any) -> Iterator[Source]:
    """Parse a word2vec (``header=True``), GloVe (``False``) or either (``None``) text file."""
    dt = dtype_from_name(dtype or "float32")
    words: list[str] = []
    vecs: list[np.ndarray] = []
    n_header: int | None = None
    dim: int | None = None
    # Values are parsed TEXT_PARSE_LINES lines at a time (one array call, not one per line);
    # a block that fails is parsed again line by line to name the line at fault, and every
    # structural error first parses the lines before it, so errors come in line order.
    todo: list[str] = []
    todo_lines: list[int] = []

    def flush() -> None:
        if not todo_lines:
            return
        assert dim is not None
        try:
            vecs.append(parse_values(todo, dt).reshape(len(todo_lines), dim))
        except (ValueError, OverflowError):
            for i, no in enumerate(todo_lines):
                _parse_line(path, no, todo[i * dim:(i + 1) * dim], dt)
            raise
        todo.clear()
        todo_lines.clear()

    for no, line in _lines(path):
        tokens = line.split(" ")
        if dim is None:  # the first line: a header, or the first row
            if header is not False and _is_header(tokens):
                n_header, dim = int(tokens[0]), int(tokens[1])
                _check_header(path, n_header, dim)
                continue
            if header is True:
                raise FormatError(f"{path}: line {no} is not a word2vec 'N D' header",
                                  ErrorKind.BAD_HEADER)
            dim = len(tokens) - 1
            if dim < 1:
                raise FormatError(f"{path}: line {no} has a word and no values", ErrorKind.BAD_FILE)
        assert dim is not None
        if len(tokens) < dim + 1:
            flush()
            raise FormatError(f"{path}: line {no} has {len(tokens) - 1} values, expected {dim}",
                              ErrorKind.BAD_FILE)
        # A GloVe word may itself contain spaces: the last D tokens are the values.
        todo.extend(tokens[-dim:])
        todo_lines.append(no)
        words.append(" ".join(tokens[:-dim]))
        if n_header is not None and len(words) > n_header:
            flush()
            raise FormatError(f"{path}: more rows than the header's {n_header}", ErrorKind.BAD_FILE)
        if len(todo_lines) >= TEXT_PARSE_LINES:
            flush()
    flush()
    if n_header is not None and len(words) != n_header:
        raise FormatError(f"{path}: header says {n_header} rows, the file has {len(words)}",
                          ErrorKind.TRUNCATED)
    if dim is None:
        raise FormatError(f"{path}: empty word-vector file", ErrorKind.TRUNCATED)
    arr = np.concatenate(vecs) if vecs else np.empty((0, dim), dtype=dt.numpy)
    kind = "word2vec" if n_header is not None else "glove"
    yield Source(named_matrix(path, arr), words, kind, path)


def check_text(path: str, rows: Rows) -> None:
    """Text holds every dtype; NaN payloads are checked while writing."""


def write_text(path: str, rows: Rows, keys: Any = None, dataset: str | None = None, *,
               header: bool = True, **opts: Any) -> None:
    """Write word2vec text (``header=True``, an ``N D`` first line) or GloVe text."""
    with open(path, "wb") as f:
        write_text_stream(f, rows, keys, dataset, header=header, name=path)


def write_text_stream(f: BinaryIO, rows: Rows, keys: Any = None, dataset: str | None = None, *,
                      header: bool = True, name: str = "<stream>", **opts: Any) -> None:
    """:func:`write_text` to an open binary stream (UTF-8, ``\\n`` line ends)."""
    words = words_for(name, rows, keys if keys is not None else rows.keys)
    if header:
        f.write(f"{rows.n_rows} {rows.dim}\n".encode())
    for lo, hi, block in rows.blocks(TEXT_BLOCK_ROWS * max(1, rows.row_bytes)):
        f.write("".join(words[lo + i] + " " + vals + "\n"
                        for i, vals in enumerate(format_rows(block, rows.dtype, name, lo))).encode())


# --- binary ----------------------------------------------------------------------------------
@contextmanager
def read_bin(path: str, dataset: str | None = None, **opts: Any) -> Iterator[Source]:
    """Read word2vec binary (float32): bit-exact, bounded by the file size before allocating."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        head = fh.readline(256)
        tokens = head.decode("ascii", "replace").split()
        if not head.endswith(b"\n") or not _is_header(tokens):
            raise FormatError(f"{path}: not a word2vec binary file (no 'N D' header line)",
                              ErrorKind.BAD_HEADER)
        n, dim = int(tokens[0]), int(tokens[1])
        _check_header(path, n, dim)
        if n * (dim * 4 + 2) > size:
            raise FormatError(f"{path}: header says {n} x {dim} float32, impossible in a "
                              f"{size}-byte file", ErrorKind.TRUNCATED)
        arr = np.empty((n, dim), dtype="<f4")
        words: list[str] = []
        data = fh.read()
    pos, rb = 0, dim * 4
    for i in range(n):
        while pos < len(data) and data[pos:pos + 1] == b"\n":
            pos += 1
        sp = data.find(b" ", pos, pos + 4096 + 1)
        if sp < 0:
            raise FormatError(f"{path}: row {i}: no word before the vector", ErrorKind.TRUNCATED)
        try:
            words.append(data[pos:sp].decode("utf-8"))
        except UnicodeDecodeError as e:
            raise FormatError(f"{path}: row {i} word is not UTF-8 ({e})", ErrorKind.BAD_FILE) from None
        if sp + 1 + rb > len(data):
            raise FormatError(f"{path}: row {i} is truncated", ErrorKind.TRUNCATED)
        arr[i] = np.frombuffer(data, dtype="<f4", count=dim, offset=sp + 1)
        pos = sp + 1 + rb
    if data[pos:].strip(b"\n"):
        raise FormatError(f"{path}: {len(data) - pos} unexpected bytes after {n} rows",
                          ErrorKind.BAD_FILE)
    yield Source(named_matrix(path, arr), words, "word2vec-bin", path)


def check_bin(path: str, rows: Rows) -> None:
    if rows.dtype.name not in BIN_DTYPES:
        raise unsupported_dtype(path, "word2vec binary", rows.dtype.name, BIN_DTYPES,
                                "word2vec text (.vec), .safetensors or Parquet")


def write_bin(path: str, rows: Rows, keys: Any = None, dataset: str | None = None, **opts: Any) -> None:
    """Write word2vec binary: the ``N D`` header, then word, space, D float32, newline per row."""
    with open(path, "wb") as f:
        write_bin_stream(f, rows, keys, dataset, name=path)


def write_bin_stream(f: BinaryIO, rows: Rows, keys: Any = None, dataset: str | None = None, *,
                     name: str = "<stream>", **opts: Any) -> None:
    """:func:`write_bin` to an open binary stream."""
    check_bin(name, rows)
    words = words_for(name, rows, keys if keys is not None else rows.keys)
    f.write(f"{rows.n_rows} {rows.dim}\n".encode())
    for lo, hi, block in rows.blocks():
        raw = block.astype("<f4", copy=False)
        f.writelines(words[lo + i].encode("utf-8") + b" " + raw[i].tobytes() + b"\n"
                     for i in range(hi - lo))
