"""Chunk objects: one canonical chunk, stored in full or as a delta against a base chunk (spec §13).

A chunk object's id is its chunk digest, BLAKE3 of the *decoded* canonical bytes, so the same
content is stored once whatever encoding was chosen. Every decode checks that digest.

Layout: an 80-byte header, a rowprint section, then the payload (a zstd frame, or raw bytes):

* full (codec 0/1): rowprints of all ``n_rows`` rows; payload = the rows.
* dense delta (codec 2 xor / 3 sub-zigzag): rowprints of all rows; payload = delta vs base,
  which has the same number of rows.
* sparse patch (codec 4): ``n_patch`` u32 row indices then their ``n_patch`` rowprints; payload
  = those rows. Every other row ``i < min(n_rows, base_rows)`` is the base's row ``i``.
"""

from __future__ import annotations

from collections.abc import Callable
import threading
from dataclasses import dataclass

import blake3
import numpy as np
import zstandard

from .. import _layout as L
from ..errors import ErrorKind, FormatError, IntegrityError

__all__ = ["ChunkHeader", "Encoded", "Scratch", "thread_scratch", "parse_header", "encode_full",
           "encode_dense", "encode_sparse", "decode_chunk", "decode_rows", "chunk_rowprints", "check_base",
           "check_fits",
           "header_checksum"]

_ZERO32 = bytes(32)


def header_checksum(header_wo_sum: bytes | memoryview, rowprint_section: bytes | memoryview) -> int:
    """First 8 bytes (u64le) of BLAKE3(header bytes 0..71 || rowprint section) (spec §13.2)."""
    h = blake3.blake3(header_wo_sum)
    h.update(rowprint_section)
    return int.from_bytes(h.digest()[:8], "little")


@dataclass(frozen=True, slots=True)
class ChunkHeader:
    """The parsed, validated header of a chunk object."""

    codec: int
    itemsize: int
    depth: int
    n_rows: int
    row_bytes: int
    base: bytes
    base_rows: int
    n_patch: int
    rowprint_bytes: int
    payload_bytes: int
    checksum: int

    @property
    def is_delta(self) -> bool:
        return self.codec in L.DELTA_CODECS

    @property
    def rowprint_offset(self) -> int:
        return L.CHUNK_HEADER_BYTES

    @property
    def payload_offset(self) -> int:
        return L.CHUNK_HEADER_BYTES + self.rowprint_bytes

    @property
    def total_bytes(self) -> int:
        return self.payload_offset + self.payload_bytes


def parse_header(buf: bytes | memoryview, name: str = "chunk object",
                 total_size: int | None = None) -> ChunkHeader:
    """Parse and validate a chunk header; raises :class:`FormatError` naming ``name``.

    ``buf`` holds at least the header; ``total_size`` is the object's size when ``buf`` holds
    only its first bytes (defaults to ``len(buf)``).
    """
    size = len(buf) if total_size is None else total_size
    if len(buf) < L.CHUNK_HEADER_BYTES:
        raise FormatError(f"{name}: {len(buf)} bytes, shorter than the {L.CHUNK_HEADER_BYTES}-byte "
                          "chunk header", ErrorKind.TRUNCATED)
    (magic, major, codec, itemsize, depth, n_rows, row_bytes, base, base_rows, n_patch,
     rp_bytes, payload_bytes, checksum) = L.CHUNK_HEADER_STRUCT.unpack_from(buf)
    if magic != L.CHUNK_MAGIC:
        raise FormatError(f"{name}: bad magic {bytes(magic)!r}, expected {L.CHUNK_MAGIC!r}",
                          ErrorKind.BAD_MAGIC)
    if major != L.FORMAT_MAJOR:
        raise FormatError(f"{name}: format v{major}; this embfmt reads v{L.FORMAT_MAJOR}",
                          ErrorKind.UNSUPPORTED_VERSION)

    def bad(why: str) -> FormatError:
        return FormatError(f"{name}: {why}", ErrorKind.BAD_HEADER)

    if codec not in L.CODEC_NAMES:
        raise bad(f"unknown codec {codec}")
    if itemsize not in (1, 2, 4, 8):
        raise bad(f"itemsize {itemsize} is not 1, 2, 4 or 8")
    if row_bytes == 0 or row_bytes % itemsize or n_rows == 0:
        raise bad(f"row_bytes {row_bytes} / n_rows {n_rows} invalid")
    if n_rows * row_bytes > L.MAX_CHUNK_BYTES and n_rows > 1:
        raise bad(f"{n_rows} rows of {row_bytes} bytes exceed the chunk size limit")
    if row_bytes > L.MAX_DIM * itemsize:  # D <= 2^24 (spec §9): a row is at most 2^27 bytes
        raise bad(f"row_bytes {row_bytes} exceeds {L.MAX_DIM} items of {itemsize} bytes")
    if base_rows * row_bytes > L.MAX_CHUNK_BYTES and base_rows > 1:
        # Checked here, before anything is allocated for the base (a decoder sizes its buffer
        # from these two fields before it has read the base).
        raise bad(f"a base of {base_rows} rows of {row_bytes} bytes exceeds the chunk size limit")
    if codec in L.DELTA_CODECS:
        if base == _ZERO32 or not 1 <= depth <= L.MAX_CHAIN_DEPTH or base_rows == 0:
            raise bad(f"delta codec with base {bytes(base).hex()[:16]}, depth {depth}, base_rows {base_rows}")
    elif base != _ZERO32 or depth or base_rows or n_patch:
        raise bad("full chunk with base fields set")
    if codec in (L.CODEC_XOR, L.CODEC_SUBZZ) and base_rows != n_rows:
        raise bad("dense delta with a base of another row count")
    if codec == L.CODEC_SPARSE:
        if n_patch > n_rows or n_patch < max(0, n_rows - base_rows):
            raise bad(f"sparse patch of {n_patch} rows cannot produce {n_rows} rows from {base_rows}")
        want_rp = n_patch * 12
    else:
        if n_patch:
            raise bad("n_patch set on a non-sparse chunk")
        want_rp = n_rows * 8
    if rp_bytes != want_rp:
        raise bad(f"rowprint section is {rp_bytes} bytes, expected {want_rp}")
    if codec == L.CODEC_RAW and payload_bytes != n_rows * row_bytes:
        raise bad("raw payload length does not match the rows")
    if size != L.CHUNK_HEADER_BYTES + rp_bytes + payload_bytes:
        raise FormatError(f"{name}: {size} bytes, header implies "
                          f"{L.CHUNK_HEADER_BYTES + rp_bytes + payload_bytes}", ErrorKind.TRUNCATED)
    return ChunkHeader(codec, itemsize, depth, n_rows, row_bytes, bytes(base), base_rows, n_patch,
                       rp_bytes, payload_bytes, checksum)


class Encoded:
    """A chunk object's bytes as a list of buffers: written with one ``writev``, never joined
    (a 1 MiB chunk would otherwise be copied twice more before reaching the file)."""

    __slots__ = ("parts", "codec", "nbytes")

    def __init__(self, parts: list[bytes | memoryview], codec: int) -> None:
        self.parts = parts
        self.codec = codec
        self.nbytes = _nbytes(parts)

    def __len__(self) -> int:
        return self.nbytes

    @property
    def checksum(self) -> int:
        """The header checksum (spec §13.2), from the first part (header + rowprint section)."""
        return int.from_bytes(memoryview(self.parts[0]).cast("B")[L.CHUNK_CHECKSUM_OFFSET:L.CHUNK_HEADER_BYTES],
                              "little")

    def __bytes__(self) -> bytes:
        return b"".join(memoryview(p).cast("B") for p in self.parts)

    def hex(self) -> str:
        return bytes(self).hex()


def _nbytes(parts: list[bytes | memoryview]) -> int:
    return sum(memoryview(p).nbytes for p in parts)


def _as_part(x: bytes | np.ndarray) -> bytes | memoryview:
    return x if isinstance(x, bytes) else memoryview(np.ascontiguousarray(x).reshape(-1))  # type: ignore[arg-type]  # numpy's stubs: ndarray.__buffer__ on 3.12+ only


def _pack(codec: int, itemsize: int, depth: int, n_rows: int, row_bytes: int, base: bytes,
          base_rows: int, n_patch: int, rp_section: bytes, payload: list[bytes | memoryview]) -> Encoded:
    head = L.CHUNK_HEADER_STRUCT.pack(L.CHUNK_MAGIC, L.FORMAT_MAJOR, codec, itemsize, depth,
                                      n_rows, row_bytes, base, base_rows, n_patch,
                                      len(rp_section), _nbytes(payload), 0)
    head = head[:L.CHUNK_CHECKSUM_OFFSET]
    cs = header_checksum(head, rp_section)
    return Encoded([head + cs.to_bytes(8, "little") + rp_section, *payload], codec)


_tls = threading.local()


def _zc() -> zstandard.ZstdCompressor:
    # zstandard objects must not be shared between threads: one compressor per thread.
    c = getattr(_tls, "c", None)
    if c is None:
        params = zstandard.ZstdCompressionParameters.from_level(
            L.ZSTD_LEVEL, min_match=L.ZSTD_MIN_MATCH, hash_log=L.ZSTD_HASH_LOG)
        c = _tls.c = zstandard.ZstdCompressor(compression_params=params)
    return c


def _zd() -> zstandard.ZstdDecompressor:
    d = getattr(_tls, "d", None)
    if d is None:
        d = _tls.d = zstandard.ZstdDecompressor()
    return d


def decompress_exact(data: bytes | memoryview, n: int, name: str) -> bytes:
    """One zstd frame that must decompress to exactly ``n`` bytes (chunk planes §13.3, key
    objects §15, change objects §16.1), allocating no more than ``n`` bytes for it:
    python-zstandard sizes its output by the content size a frame states and ignores
    ``max_output_size`` then, so a stated size other than ``n`` is refused before anything is
    decompressed (``digest-mismatch``); a frame that states none is decompressed with its
    output capped at ``n``."""
    try:
        stated = zstandard.frame_content_size(data)
    except zstandard.ZstdError as e:
        raise IntegrityError(f"{name} is not a zstd frame ({e})") from None
    if stated >= 0 and stated != n:
        raise IntegrityError(f"{name} states {stated} decompressed bytes, expected {n}")
    try:
        raw = _zd().decompress(data, max_output_size=n)
    except zstandard.ZstdError as e:
        raise IntegrityError(f"{name} does not decompress ({e})") from None
    if len(raw) != n:
        raise IntegrityError(f"{name} decompresses to {len(raw)} bytes, expected {n}")
    return raw


class Scratch:
    """Reusable decode buffers of one thread, by role and chain level.

    A whole-table read decodes every chunk through the same few MiB instead of allocating
    (and page-faulting) fresh ones per chunk and chain level.
    """

    #: A canonical chunk is at most 1 MiB unless one row is larger (spec §4), plus a little
    #: for a chunk object's header and rowprints.
    KEEP_BYTES = (1 << 20) + (64 << 10)

    def __init__(self) -> None:
        self._bufs: dict[tuple[str, int], np.ndarray] = {}

    def get(self, role: str, level: int, size: int) -> np.ndarray:
        """A uint8 array of exactly ``size`` bytes (contents undefined). Buffers up to
        KEEP_BYTES are kept for reuse; bigger ones (chunks of rows over 1 MiB) are not, so a
        thread holds at most ~KEEP_BYTES per role and chain level it has used."""
        b = self._bufs.get((role, level))
        if b is not None and b.size >= size:
            return b[:size]
        b = np.empty(max(size, 1), dtype=np.uint8)
        if size <= self.KEEP_BYTES:
            self._bufs[(role, level)] = b
        return b[:size]


def thread_scratch() -> Scratch:
    """This thread's :class:`Scratch`."""
    sc = getattr(_tls, "scratch", None)
    if sc is None:
        sc = _tls.scratch = Scratch()
    return sc


def _worth_compressing(plane: np.ndarray) -> bool:
    """Writer heuristic (non-normative): compress a sample of at most 16 KiB; planes of random
    bytes (the low mantissa bytes of floats) are stored raw, which saves ~3/4 of zstd's time on
    float32 embeddings at no cost in size (zstd gains < 0.01% on them)."""
    if len(plane) <= L.PLANE_SAMPLE_BYTES:
        return True
    sample = plane[:L.PLANE_SAMPLE_BYTES]
    return len(_zc().compress(sample)) < L.PLANE_RAW_RATIO * len(sample)  # type: ignore[arg-type]  # numpy's stubs: ndarray.__buffer__ on 3.12+ only


def pack_planes(shuffled: np.ndarray, itemsize: int) -> list[bytes | memoryview]:
    """The byte-plane container (spec §13.3): a table of ``itemsize`` entries (method u8, 3
    reserved bytes, stored length u32le), then each plane stored raw (0) or as a zstd frame (1).
    Returned as buffers to concatenate; raw planes are views of ``shuffled``."""
    n = len(shuffled) // itemsize
    table, parts = [], []
    for p in range(itemsize):
        plane = shuffled[p * n:(p + 1) * n]
        data: bytes | memoryview = memoryview(plane)  # type: ignore[arg-type]  # numpy's stubs: ndarray.__buffer__ on 3.12+ only
        method = L.PLANE_RAW
        if n and _worth_compressing(plane):
            z = _zc().compress(plane)  # type: ignore[arg-type]  # numpy's stubs: ndarray.__buffer__ on 3.12+ only
            if len(z) < n:
                data, method = z, L.PLANE_ZSTD
        table.append(L.PLANE_ENTRY_STRUCT.pack(method, b"\0\0\0", len(data)))
        parts.append(data)
    return [b"".join(table), *parts]


def plane_list(payload: memoryview | bytes, itemsize: int, n_items: int, name: str) -> list[np.ndarray]:
    """The ``itemsize`` planes of a byte-plane container, validated against their sizes: raw
    planes as read-only views of ``payload`` (nothing copied), zstd planes decompressed."""
    mv = memoryview(payload)
    head = L.PLANE_ENTRY_STRUCT.size * itemsize
    if len(mv) < head:
        raise FormatError(f"{name}: payload shorter than its plane table", ErrorKind.BAD_HEADER)
    entries = [L.PLANE_ENTRY_STRUCT.unpack_from(mv, L.PLANE_ENTRY_STRUCT.size * p) for p in range(itemsize)]
    if any(e[1] != b"\0\0\0" for e in entries):
        raise FormatError(f"{name}: plane table has non-zero reserved bytes", ErrorKind.BAD_HEADER)
    if sum(e[2] for e in entries) != len(mv) - head:
        raise FormatError(f"{name}: plane lengths do not add up to the payload", ErrorKind.BAD_HEADER)
    planes = []
    pos = head
    for p, (method, _reserved, length) in enumerate(entries):
        data = mv[pos:pos + length]
        pos += length
        if method == L.PLANE_RAW:
            if length != n_items:
                raise FormatError(f"{name}: raw plane {p} is {length} bytes, expected {n_items}",
                                  ErrorKind.BAD_HEADER)
            planes.append(np.frombuffer(data, dtype=np.uint8))
        elif method == L.PLANE_ZSTD:
            raw = decompress_exact(data, n_items, f"{name}: plane {p}")
            planes.append(np.frombuffer(raw, dtype=np.uint8))
        else:
            raise FormatError(f"{name}: plane {p} has unknown method {method}", ErrorKind.BAD_HEADER)
    return planes


def encode_full(rows: np.ndarray, itemsize: int, rowprints: np.ndarray, kernels: object) -> Encoded:
    """A full chunk: shuffle + zstd, or raw when compression does not pay."""
    n, rb = rows.shape
    rp = rowprints.astype("<u8", copy=False).tobytes()
    z = pack_planes(kernels.shuffle(rows.reshape(-1), itemsize), itemsize)  # type: ignore[attr-defined]
    if _nbytes(z) >= n * rb:
        return _pack(L.CODEC_RAW, itemsize, 0, n, rb, _ZERO32, 0, 0, rp, [_as_part(rows)])
    return _pack(L.CODEC_SHUFFLE_PLANES, itemsize, 0, n, rb, _ZERO32, 0, 0, rp, z)


def encode_dense(rows: np.ndarray, base: np.ndarray, itemsize: int, rowprints: np.ndarray,
                 base_digest: bytes, base_depth: int, mode: int, kernels: object) -> Encoded:
    """A dense delta (``mode`` = CODEC_XOR or CODEC_SUBZZ) against ``base`` of the same shape."""
    n, rb = rows.shape
    d = kernels.delta_encode(rows.reshape(-1), base.reshape(-1), itemsize, mode)  # type: ignore[attr-defined]
    return _pack(mode, itemsize, base_depth + 1, n, rb, base_digest, n, 0,
                 rowprints.astype("<u8", copy=False).tobytes(), pack_planes(d, itemsize))


def encode_sparse(rows: np.ndarray, patch_idx: np.ndarray, itemsize: int, rowprints: np.ndarray,
                  base_digest: bytes, base_rows: int, base_depth: int, kernels: object) -> Encoded:
    """A sparse patch: rows ``patch_idx`` (sorted, unique) replace or extend the base's rows."""
    n, rb = rows.shape
    idx = np.asarray(patch_idx, dtype="<u4")
    sect = idx.tobytes() + rowprints[idx].astype("<u8").tobytes()
    payload = (pack_planes(kernels.shuffle(rows[idx].reshape(-1), itemsize), itemsize)  # type: ignore[attr-defined]
               if len(idx) else [])
    return _pack(L.CODEC_SPARSE, itemsize, base_depth + 1, n, rb, base_digest, base_rows,
                 len(idx), sect, payload)


def _check_sum(buf: memoryview, h: ChunkHeader, name: str) -> None:
    got = header_checksum(buf[:L.CHUNK_CHECKSUM_OFFSET], buf[h.rowprint_offset:h.payload_offset])
    if got != h.checksum:
        raise IntegrityError(f"{name}: header/rowprint checksum mismatch (stored "
                             f"{h.checksum:016x}, computed {got:016x})")


def _sparse_index(buf: memoryview, h: ChunkHeader, name: str) -> np.ndarray:
    idx = np.frombuffer(buf, dtype="<u4", count=h.n_patch, offset=h.rowprint_offset).astype(np.int64)
    if len(idx) and (np.any(np.diff(idx) <= 0) or idx[-1] >= h.n_rows):
        raise FormatError(f"{name}: sparse patch indices are not strictly increasing below "
                          f"{h.n_rows}", ErrorKind.BAD_HEADER)
    if h.n_rows > h.base_rows:
        need = h.n_rows - h.base_rows  # every appended row must be in the patch
        if len(idx) < need or idx[len(idx) - need] != h.base_rows:
            raise FormatError(f"{name}: sparse patch does not cover appended rows", ErrorKind.BAD_HEADER)
    return idx


def _plane_rows(planes: list[np.ndarray], n_rows: int, row_bytes: int, idx: np.ndarray) -> np.ndarray:
    """The shuffled (plane-major) bytes of rows ``idx`` only: plane ``p`` holds byte ``p`` of
    word ``r * words + j`` of row ``r``, so each plane contributes ``words`` bytes a row
    (gathered straight from the planes: a raw plane is read only where the rows are)."""
    k = len(planes)
    words = row_bytes // k
    return np.concatenate([pl.reshape(n_rows, words)[idx].reshape(-1) for pl in planes])


def check_base(delta: ChunkHeader, base: ChunkHeader, delta_name: str, base_name: str) -> None:
    """A delta's base must hold ``base_rows`` rows of the delta's ``row_bytes`` and itemsize, at
    a depth one less than the delta's (spec §13.3); else ``bad-header`` naming both objects."""
    want = (delta.base_rows, delta.row_bytes, delta.itemsize, delta.depth - 1)
    got = (base.n_rows, base.row_bytes, base.itemsize, base.depth)
    if got != want:
        raise FormatError(f"{delta_name}: its base {base_name} holds {got[0]} rows of {got[1]} bytes "
                          f"(itemsize {got[2]}, depth {got[3]}); the delta needs {want[0]} rows of "
                          f"{want[1]} bytes (itemsize {want[2]}, depth {want[3]})", ErrorKind.BAD_HEADER)


def check_fits(h: ChunkHeader, want: tuple[int, int, int], name: str) -> None:
    """A chunk used by a table version must hold the ``(n_rows, row_bytes, itemsize)`` the table
    puts at its position (spec §18.2): the same bytes split into other rows, or words of another
    size, hash to the same id, so the digest check cannot see it. Else ``bad-header``."""
    if (h.n_rows, h.row_bytes, h.itemsize) != want:
        raise FormatError(f"{name}: holds {h.n_rows} rows of {h.row_bytes} bytes of itemsize {h.itemsize}; "
                          f"the table version puts {want[0]} rows of {want[1]} bytes of itemsize "
                          f"{want[2]} there", ErrorKind.BAD_HEADER)


def decode_rows(buf: bytes | memoryview, name: str, idx: np.ndarray,
                base_rows_of: Callable[..., np.ndarray], kernels: object,
                level: int = 0, *, delta: ChunkHeader | None = None,
                delta_name: str = "") -> np.ndarray:
    """Rows ``idx`` (sorted, unique, < n_rows) of a chunk object, ``(len(idx), row_bytes)``,
    without rebuilding the rest: compressed planes are decompressed, but only the wanted
    rows are unshuffled and un-delta'd. ``base_rows_of(digest, rows, delta=h, delta_name=name)``
    returns rows of the base of the delta ``h`` (and checks that base against it, as this
    function does when called for a base: ``delta`` is then the header of the object above).

    Nothing is hashed here: the caller checks the result against the chunk's rowprints.
    """
    if level > L.MAX_CHAIN_DEPTH:
        raise IntegrityError(f"{name}: delta chain longer than {L.MAX_CHAIN_DEPTH}")
    mv = memoryview(buf)
    h = parse_header(mv, name)
    if delta is not None:
        check_base(delta, h, delta_name, name)
    _check_sum(mv, h, name)
    idx = np.asarray(idx, dtype=np.int64)
    rb, k = h.row_bytes, h.itemsize
    if len(idx) and (idx[0] < 0 or idx[-1] >= h.n_rows):
        # The rows come from the caller's table version or from a delta header above this
        # object: a disagreement means the chain is damaged.
        raise IntegrityError(f"{name}: has {h.n_rows} rows, row {int(idx[-1])} was asked for")
    size = h.n_rows * rb
    payload = mv[h.payload_offset:]
    if len(idx) == 0:
        return np.empty((0, rb), dtype=np.uint8)
    if h.codec == L.CODEC_RAW:
        raw: np.ndarray = np.frombuffer(payload, dtype=np.uint8).reshape(h.n_rows, rb)[idx]
        return raw
    if h.codec == L.CODEC_SHUFFLE_PLANES:
        planes = plane_list(payload, k, size // k, name)
        full: np.ndarray = kernels.unshuffle(_plane_rows(planes, h.n_rows, rb, idx), k).reshape(len(idx), rb)  # type: ignore[attr-defined]
        return full
    if h.codec in (L.CODEC_XOR, L.CODEC_SUBZZ):
        base = base_rows_of(h.base, idx, delta=h, delta_name=name)
        d = _plane_rows(plane_list(payload, k, size // k, name), h.n_rows, rb, idx)
        dense: np.ndarray = kernels.delta_decode(d, np.ascontiguousarray(base).reshape(-1), k, h.codec).reshape(len(idx), rb)  # type: ignore[attr-defined]
        return dense
    pidx = _sparse_index(mv, h, name)
    out = np.empty((len(idx), rb), dtype=np.uint8)
    in_patch = np.isin(idx, pidx)
    if in_patch.any():
        nb = h.n_patch * rb
        planes = plane_list(payload, k, nb // k, name)
        want = np.searchsorted(pidx, idx[in_patch])  # their positions in the patch
        out[in_patch] = kernels.unshuffle(_plane_rows(planes, h.n_patch, rb, want), k).reshape(len(want), rb)  # type: ignore[attr-defined]
    rest = ~in_patch
    if rest.any():
        if idx[rest][-1] >= h.base_rows:  # every row past the base must be in the patch
            raise FormatError(f"{name}: row {int(idx[rest][-1])} is neither patched nor in the base",
                              ErrorKind.BAD_HEADER)
        out[rest] = base_rows_of(h.base, idx[rest], delta=h, delta_name=name)
    return out


def chunk_rowprints(buf: bytes | memoryview, name: str,
                    base_rowprints: Callable[[bytes], np.ndarray],
                    total_size: int | None = None, header: ChunkHeader | None = None) -> np.ndarray:
    """The rowprints of a chunk, read from rowprint sections only (no payload decode).

    ``buf`` may hold just the object's first bytes (header and rowprint section) when
    ``total_size`` gives the object's size. ``base_rowprints(digest)`` returns the rowprints of
    a base chunk (for sparse patches). ``header``: the header already parsed from ``buf``.
    """
    mv = memoryview(buf)
    h = header if header is not None else parse_header(mv, name, total_size)
    if len(mv) < h.payload_offset:
        raise FormatError(f"{name}: truncated rowprint section", ErrorKind.TRUNCATED)
    _check_sum(mv, h, name)
    if h.codec != L.CODEC_SPARSE:
        # No copy on little-endian hosts: a read-only view of the section bytes.
        return np.frombuffer(mv, dtype="<u8", count=h.n_rows, offset=h.rowprint_offset).astype(np.uint64, copy=False)
    idx = _sparse_index(mv, h, name)
    base = base_rowprints(h.base)
    if len(base) != h.base_rows:
        raise IntegrityError(f"{name}: base chunk {h.base.hex()} has {len(base)} rows, header says {h.base_rows}")
    out = np.empty(h.n_rows, dtype=np.uint64)
    m = min(h.n_rows, h.base_rows)
    out[:m] = base[:m]
    out[idx] = np.frombuffer(mv, dtype="<u8", count=h.n_patch, offset=h.rowprint_offset + 4 * h.n_patch)
    return out


def decode_chunk(buf: bytes | memoryview, digest: bytes, name: str,
                 base_rows_of: Callable[..., np.ndarray], kernels: object,
                 *, verify: bool = True, out: np.ndarray | None = None,
                 scratch: Scratch | None = None, level: int = 0,
                 delta: ChunkHeader | None = None, delta_name: str = "",
                 fits: tuple[int, int, int] | None = None) -> np.ndarray:
    """Decode a chunk object to its canonical rows, ``(n_rows, row_bytes)`` uint8.

    ``base_rows_of(digest, out=..., level=..., delta=h, delta_name=name)`` writes the decoded
    rows of the base of delta ``h`` into ``out`` and returns them as ``out`` viewed ``(rows,
    row_bytes)``; ``delta``/``delta_name``, when this call decodes a base, are the header and
    name of the delta above it, which this object must fit (:func:`check_base`); ``fits``: the
    ``(n_rows, row_bytes, itemsize)`` its table version expects (:func:`check_fits`). With ``verify`` (the
    default) the result's BLAKE3 must equal ``digest``, else :class:`IntegrityError` names
    the object. ``out`` (a writable C-contiguous
    uint8 array of ``n_rows * row_bytes`` bytes) receives the rows instead of a fresh array;
    ``scratch`` lends reusable buffers; ``level`` is this object's position on the chain being
    decoded (0 = the object asked for), bounded by MAX_CHAIN_DEPTH so that a hostile chain
    (a cycle) ends in an error, not a stack overflow.
    """
    if level > L.MAX_CHAIN_DEPTH:
        raise IntegrityError(f"{name}: delta chain longer than {L.MAX_CHAIN_DEPTH}")
    mv = memoryview(buf)
    h = parse_header(mv, name)
    if delta is not None:
        check_base(delta, h, delta_name, name)
    if fits is not None:
        check_fits(h, fits, name)
    _check_sum(mv, h, name)
    size = h.n_rows * h.row_bytes
    if out is None:
        out = np.empty(size, dtype=np.uint8)
    elif out.dtype != np.uint8 or not out.flags.c_contiguous:
        raise ValueError(f"{name}: out must be a C-contiguous uint8 array")  # internal bug guard
    elif out.size != size:
        # The caller knows the chunk's size from elsewhere (table version, delta header).
        raise IntegrityError(f"{name}: holds {h.n_rows} rows of {h.row_bytes} bytes, where "
                             f"{out.size} bytes were expected")
    out = out.reshape(-1)
    sc = scratch if scratch is not None else Scratch()
    payload = mv[h.payload_offset:]
    if h.codec == L.CODEC_RAW:
        out[:] = np.frombuffer(payload, dtype=np.uint8)
    elif h.codec == L.CODEC_SHUFFLE_PLANES:
        # The planes are passed where they lie (raw ones inside ``buf``), not joined first.
        planes = plane_list(payload, h.itemsize, size // h.itemsize, name)
        kernels.unshuffle(planes, h.itemsize, out=out)  # type: ignore[attr-defined]
    elif h.codec in (L.CODEC_XOR, L.CODEC_SUBZZ):
        # This object is validated in full (spec §13.4) before its base is read: a bad object
        # is reported as itself even when its base is missing too.
        planes = plane_list(payload, h.itemsize, size // h.itemsize, name)
        base = base_rows_of(h.base, out=sc.get("base", level, size), level=level + 1, delta=h,
                            delta_name=name)
        if base.shape != (h.n_rows, h.row_bytes):
            raise IntegrityError(f"{name}: base {h.base.hex()} has shape {base.shape}")
        kernels.delta_decode(planes, base.reshape(-1), h.itemsize, h.codec, out=out)  # type: ignore[attr-defined]
    else:
        idx = _sparse_index(mv, h, name)
        m = min(h.n_rows, h.base_rows)
        rows = out.reshape(h.n_rows, h.row_bytes)
        nb = h.n_patch * h.row_bytes
        if h.n_patch:
            planes = plane_list(payload, h.itemsize, nb // h.itemsize, name)
        elif h.payload_bytes:
            raise FormatError(f"{name}: empty patch with a payload", ErrorKind.BAD_HEADER)
        if h.base_rows <= h.n_rows:
            # The base's rows are this chunk's first rows: decode the base in place.
            base = base_rows_of(h.base, out=out[:h.base_rows * h.row_bytes], level=level + 1,
                                delta=h, delta_name=name)
        else:
            base = base_rows_of(h.base, out=sc.get("base", level, h.base_rows * h.row_bytes),
                                level=level + 1, delta=h, delta_name=name)
        if base.shape != (h.base_rows, h.row_bytes):
            raise IntegrityError(f"{name}: base {h.base.hex()} has shape {base.shape}")
        if h.base_rows > h.n_rows:
            rows[:m] = base[:m]
        if h.n_patch:
            patch = kernels.unshuffle(planes, h.itemsize, out=sc.get("patch", level, nb))  # type: ignore[attr-defined]
            rows[idx] = patch.reshape(h.n_patch, h.row_bytes)
    rows2d = out.reshape(h.n_rows, h.row_bytes)
    if verify:
        got = blake3.blake3(rows2d).digest()  # type: ignore[arg-type]  # numpy's stubs: ndarray.__buffer__ on 3.12+ only
        if got != digest:
            raise IntegrityError(f"{name}: decoded bytes hash to {got.hex()}, not its id {digest.hex()}")
    return rows2d
