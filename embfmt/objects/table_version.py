"""Table-version objects: one stored version of one table (spec §14).

A table version lists its chunk digests in order and binds them to the fingerprint root, so a
table's identity is its content. Free-form facts (row keys, identity stamp, change statistics)
live in a JSON section. The object id is BLAKE3 of the whole object.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import blake3

from .. import _layout as L
from ..canonical import merkle
from ..canonical.dtype import DType, dtype_from_code
from ..errors import ErrorKind, FormatError, InputError, IntegrityError
from ..canonical.chunking import chunk_rows_for, n_chunks_for
from ..canonical.fingerprint import descriptor_bytes, format_root, root_hash

__all__ = ["TableVersion", "canonical_json"]


def canonical_json(obj: Any, what: str = "metadata") -> bytes:
    """Sorted keys, no whitespace, UTF-8, no NaN/Infinity: one byte string per value (spec §16)."""
    try:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as e:
        raise InputError(f"{what} is not JSON-serializable ({e})", ErrorKind.BAD_ARGUMENT) from None


@dataclass(frozen=True, slots=True)
class TableVersion:
    """An immutable table version."""

    dtype: DType
    n_rows: int
    dim: int
    digests: tuple[bytes, ...]
    """Chunk digests in row order."""
    meta: dict[str, Any] = field(default_factory=dict)
    """``keys`` (hex id or None), ``key_kind``, ``identity`` (dict or None), ``stats``."""

    @property
    def chunk_rows(self) -> int:
        return chunk_rows_for(self.dtype, self.dim)

    @property
    def n_chunks(self) -> int:
        return len(self.digests)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_rows, self.dim)

    @property
    def root(self) -> bytes:
        th = merkle.tree_hash(self.digests)
        return root_hash(descriptor_bytes(self.dtype, self.n_rows, self.dim, self.chunk_rows, th))

    @property
    def fingerprint(self) -> str:
        return format_root(self.root)

    @property
    def keys_id(self) -> bytes | None:
        k = self.meta.get("keys")
        return bytes.fromhex(k) if k else None

    @property
    def identity(self) -> dict[str, Any] | None:
        ident = self.meta.get("identity")
        return ident if isinstance(ident, dict) else None

    def chunk_range(self, c: int) -> tuple[int, int]:
        cr = self.chunk_rows
        return c * cr, min(self.n_rows, (c + 1) * cr)

    def to_bytes(self) -> bytes:
        meta = canonical_json(self.meta, "table metadata")
        if len(meta) > L.MAX_META_BYTES:
            raise InputError(f"table metadata is {len(meta)} bytes (max {L.MAX_META_BYTES})",
                             ErrorKind.TOO_LARGE)
        head = L.TABLE_HEADER_STRUCT.pack(L.TABLE_MAGIC, L.FORMAT_MAJOR, self.dtype.code, 0,
                                          self.n_rows, self.dim, self.chunk_rows, self.n_chunks,
                                          self.root, len(meta), 0)
        return head + b"".join(self.digests) + meta

    @staticmethod
    def size_from_header(head: bytes) -> int | None:
        """The object size a table version's first bytes imply (``80 + 32·n_chunks +
        meta_bytes``), for a read bounded before it starts; None when they are too short or
        not a table version's (parsing them reports what is wrong)."""
        hs = L.TABLE_HEADER_STRUCT.size
        if len(head) < hs or head[:4] != L.TABLE_MAGIC:
            return None
        f = L.TABLE_HEADER_STRUCT.unpack_from(head)
        nch: int = f[7]
        mlen: int = f[9]
        return hs + 32 * min(nch, L.MAX_OBJECT_BYTES // 32) + min(mlen, L.MAX_META_BYTES)

    @classmethod
    def from_bytes(cls, buf: bytes, name: str = "table version") -> TableVersion:
        """Parse and validate; recomputes the root from the digests (``digest-mismatch`` if not)."""
        hs = L.TABLE_HEADER_STRUCT.size
        if len(buf) < hs:
            raise FormatError(f"{name}: {len(buf)} bytes, shorter than its header", ErrorKind.TRUNCATED)
        magic, major, code, r0, n, d, cr, nch, root, mlen, r1 = L.TABLE_HEADER_STRUCT.unpack_from(buf)
        if magic != L.TABLE_MAGIC:
            raise FormatError(f"{name}: bad magic {magic!r}", ErrorKind.BAD_MAGIC)
        if major != L.FORMAT_MAJOR:
            raise FormatError(f"{name}: format v{major}; this embfmt reads v{L.FORMAT_MAJOR}",
                              ErrorKind.UNSUPPORTED_VERSION)
        try:
            dt = dtype_from_code(code)
        except InputError as e:
            raise FormatError(f"{name}: {e}", ErrorKind.BAD_OBJECT) from None
        if r0 or r1 or not 1 <= d <= L.MAX_DIM or n > L.MAX_ROWS or n * d * dt.itemsize > L.MAX_TOTAL_BYTES:
            raise FormatError(f"{name}: invalid header fields", ErrorKind.BAD_OBJECT)
        if cr != chunk_rows_for(dt, d) or nch != n_chunks_for(n, cr) or mlen > L.MAX_META_BYTES:
            raise FormatError(f"{name}: chunking fields do not match N={n}, D={d}", ErrorKind.BAD_OBJECT)
        if len(buf) != hs + 32 * nch + mlen:
            raise FormatError(f"{name}: {len(buf)} bytes, header implies {hs + 32 * nch + mlen}",
                              ErrorKind.TRUNCATED)
        digests = tuple(bytes(buf[hs + 32 * i: hs + 32 * (i + 1)]) for i in range(nch))
        try:
            meta = json.loads(bytes(buf[hs + 32 * nch:]).decode("utf-8")) if mlen else {}
        except (UnicodeDecodeError, ValueError, RecursionError) as e:  # ValueError: JSON, 4300+ digit ints
            raise FormatError(f"{name}: metadata is not UTF-8 JSON ({type(e).__name__}: {str(e)[:200]})",
                              ErrorKind.BAD_OBJECT) from None
        if not isinstance(meta, dict):
            raise FormatError(f"{name}: metadata is not a JSON object", ErrorKind.BAD_OBJECT)
        keys = meta.get("keys")
        if keys is not None and not (isinstance(keys, str) and len(keys) == 64
                                     and all(ch in "0123456789abcdef" for ch in keys)):
            raise FormatError(f"{name}: metadata member keys is not a key object id", ErrorKind.BAD_OBJECT)
        if not isinstance(meta.get("identity", {}), dict):
            raise FormatError(f"{name}: metadata member identity is not a JSON object", ErrorKind.BAD_OBJECT)
        tv = cls(dt, n, d, digests, meta)
        if tv.root != root:
            raise IntegrityError(f"{name}: chunk digests do not hash to its stored root")
        return tv

    def object_id(self) -> bytes:
        return blake3.blake3(self.to_bytes()).digest()
