"""Change objects: the per-row drift of a table version against its parent, recorded at commit
time (spec §16.1), so that diffing a version against its parent decodes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import blake3
import numpy as np
import zstandard

from .. import _layout as L
from .chunk import decompress_exact
from ..errors import ErrorKind, FormatError, IntegrityError

__all__ = ["ChangeRecord", "ChangeHeader", "Drift", "METRICS"]


class Drift(NamedTuple):
    """The four per-row drift metrics of a changed row, each an array over the rows (spec
    §16.1): L2 distance, cosine distance ``1 - cos``, largest absolute change, and the largest
    change in units in the last place."""

    l2: np.ndarray
    cosine: np.ndarray
    max_abs: np.ndarray
    ulp: np.ndarray


#: The drift metric names, in their recorded order.
METRICS: tuple[str, ...] = Drift._fields


class ChangeHeader(NamedTuple):
    """The fixed header of a change object, field by field (``_layout.CHANGE_HEADER_STRUCT``)."""

    magic: bytes
    major: int
    dtype_code: int
    reserved: int
    n_changed: int
    parent_rows: int
    rows: int
    parent_table: bytes
    table: bytes
    payload_bytes: int

    @classmethod
    def unpack(cls, buf: bytes | memoryview) -> ChangeHeader:
        return cls._make(L.CHANGE_HEADER_STRUCT.unpack_from(buf))


@dataclass(frozen=True)
class ChangeRecord:
    """Rows of ``table`` that differ from the same positions of ``parent_table``, with stats."""

    dtype_code: int
    parent_rows: int
    rows: int
    parent_table: bytes
    table: bytes
    index: np.ndarray
    """int64 row indices, increasing, < min(parent_rows, rows)."""
    l2: np.ndarray
    cosine: np.ndarray
    max_abs: np.ndarray
    ulp: np.ndarray

    @property
    def drift(self) -> Drift:
        return Drift(self.l2, self.cosine, self.max_abs, self.ulp)

    def to_bytes(self) -> bytes:
        n = len(self.index)
        raw = b"".join((self.index.astype("<i8").tobytes(), self.l2.astype("<f8").tobytes(),
                        self.cosine.astype("<f8").tobytes(), self.max_abs.astype("<f8").tobytes(),
                        self.ulp.astype("<u8").tobytes()))
        z = zstandard.ZstdCompressor(level=3).compress(raw)
        head = L.CHANGE_HEADER_STRUCT.pack(L.CHANGE_MAGIC, L.FORMAT_MAJOR, self.dtype_code, 0, n,
                                           self.parent_rows, self.rows, self.parent_table, self.table, len(z))
        return head + z

    @classmethod
    def from_bytes(cls, buf: bytes, oid: bytes | None = None, name: str = "change object") -> ChangeRecord:
        if oid is not None and blake3.blake3(buf).digest() != oid:
            raise IntegrityError(f"{name}: bytes do not hash to its id")
        hs = L.CHANGE_HEADER_STRUCT.size
        if len(buf) < hs:
            raise FormatError(f"{name}: truncated", ErrorKind.TRUNCATED)
        h = ChangeHeader.unpack(buf)
        if h.magic != L.CHANGE_MAGIC:
            raise FormatError(f"{name}: bad magic {h.magic!r}", ErrorKind.BAD_MAGIC)
        if h.major != L.FORMAT_MAJOR:
            raise FormatError(f"{name}: format v{h.major}", ErrorKind.UNSUPPORTED_VERSION)
        code, r0, n, prow, rows, ptab, tab, zlen = (h.dtype_code, h.reserved, h.n_changed, h.parent_rows,
                                                    h.rows, h.parent_table, h.table, h.payload_bytes)
        if r0 or n > min(prow, rows) or len(buf) != hs + zlen or 40 * n > L.ZSTD_MAX_RATIO * zlen:
            raise FormatError(f"{name}: invalid header", ErrorKind.BAD_OBJECT)
        raw = decompress_exact(memoryview(buf)[hs:], 40 * n, f"{name}: payload")
        a = [np.frombuffer(raw, dtype=t, count=n, offset=8 * n * k) for k, t in
             enumerate(("<i8", "<f8", "<f8", "<f8", "<u8"))]
        idx = a[0].astype(np.int64)
        if n and (np.any(np.diff(idx) <= 0) or idx[0] < 0 or idx[-1] >= min(prow, rows)):
            raise FormatError(f"{name}: row indices are not increasing and in range", ErrorKind.BAD_OBJECT)
        return cls(code, prow, rows, ptab, tab, idx, a[1].astype(np.float64), a[2].astype(np.float64),
                   a[3].astype(np.float64), a[4].astype(np.uint64))

