"""Reading chunk objects back: decode with bounded delta chains, a small cache, and rowprints
from rowprint sections without touching payloads."""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from .. import _layout as L
from ..backend import cpu_kernels
from .cache import RowprintCache, SealCache
from ..objects.chunk import (ChunkHeader, Scratch, check_base, check_fits, chunk_rowprints, decode_chunk, decode_rows,
                    parse_header, thread_scratch)
from ..errors import ErrorKind, FormatError, IntegrityError, NotFoundError
from ..objects.table_version import TableVersion
from ..store import Store
from ..objects.chunk import header_checksum

__all__ = ["ChunkReader"]

# Decoded chunks kept for reuse (delta bases, repeated slicing): 64 chunks of up to 1 MiB.
CACHE_BYTES = 64 << 20
# First read of a chunk object: the 80-byte header plus, for a sparse patch of up to ~330 rows,
# its whole index + rowprint section (12 bytes a row), in one system call.
PREFIX_BYTES = 4096
# Header + rowprint sections kept for the rowprints()/patch_rows() call that usually follows a
# header() read: 1024 sections of a 2048-row chunk are 16 MiB at most.
SECTIONS_KEPT = 1024
# Whole-table rowprints kept in memory: four tables of 2M rows.
TABLES_KEPT_BYTES = 64 << 20


class ChunkReader:
    """Decodes chunk objects of one store. Thread-safe."""

    def __init__(self, store: Store, kernels: object, *, cache_bytes: int = CACHE_BYTES,
                 rowprint_cache: RowprintCache | None = None, seal_cache: SealCache | None = None) -> None:
        self.store = store
        self.kernels = kernels
        self.rowprint_cache = rowprint_cache
        self.seal_cache = seal_cache
        self.cache_bytes = cache_bytes
        self._rows: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._rp: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._headers: OrderedDict[bytes, ChunkHeader] = OrderedDict()
        self._sections: OrderedDict[bytes, tuple[bytes, int]] = OrderedDict()
        self._patches: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._tables: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._fits: OrderedDict[bytes, tuple[int, int, int]] = OrderedDict()
        # Chunk ids bound to the header checksum of their own object (spec §13.7): id ->
        # (checksum, base id or None). Rowprints, sparse indices and headers are trusted only
        # from an object whose checksum is bound to the id asked for: the file of another chunk
        # of the same shape is well-formed too, and only a full decode would tell them apart.
        self._bound: dict[bytes, tuple[int, bytes | None]] = {}
        self._seals_loaded: set[bytes] = set()
        self._seals_saved: dict[bytes, int] = {}
        self._held = 0
        self._lock = threading.Lock()

    def _get(self, digest: bytes, scratch: Scratch | None = None, level: int = 0) -> bytes | memoryview:
        """The object's bytes; with ``scratch``, read into its ("file", level) buffer (reused
        from chunk to chunk: no fresh allocation to page-fault in for every object)."""
        alloc = None if scratch is None else (lambda n: scratch.get("file", level, n))
        try:
            return self.store.get_buffer(digest, alloc)
        except NotFoundError:
            raise NotFoundError(f"chunk object {digest.hex()} is missing", ErrorKind.MISSING_OBJECT) from None

    def _prefix(self, digest: bytes, length: int) -> tuple[bytes, int]:
        try:
            return self.store.get_prefix(digest, length)
        except NotFoundError:
            raise NotFoundError(f"chunk object {digest.hex()} is missing", ErrorKind.MISSING_OBJECT) from None

    def header(self, digest: bytes, rows_hint: int = 0) -> ChunkHeader:
        """Parse only the fixed header of a chunk object (cached: objects are immutable).

        ``rows_hint`` (the chunk's expected row count) asks for the rowprint section in the
        same read: a caller that will want :meth:`rowprints` next saves a system call.
        """
        with self._lock:
            h = self._headers.get(digest)
        if h is not None:
            return h
        # Read a little more than the header: a sparse patch's index section usually comes
        # along, so patch_rows() needs no second read. With a hint, read enough for a full
        # section (8 bytes of rowprint per row; a sparse patch adds a 4-byte index per row).
        want = max(PREFIX_BYTES, L.CHUNK_HEADER_BYTES + 12 * rows_hint) if rows_hint > 0 else PREFIX_BYTES
        head, size = self._prefix(digest, want)
        h = parse_header(head, f"chunk object {digest.hex()}", total_size=size)
        if h.payload_offset <= len(head) and (h.codec == L.CODEC_SPARSE or rows_hint > 0):
            with self._lock:
                self._sections[digest] = (head[:h.payload_offset], size)
                if len(self._sections) > SECTIONS_KEPT:
                    self._sections.popitem(last=False)
        with self._lock:
            self._headers[digest] = h
            if len(self._headers) > 1 << 16:
                self._headers.popitem(last=False)
        return h

    def _base_rows(self, digest: bytes, *, out: np.ndarray, level: int,
                   delta: ChunkHeader | None = None, delta_name: str = "") -> np.ndarray:
        """A delta base for an in-progress decode, written into ``out``: copied from the cache
        if verified before, else decoded without its own digest check (the final chunk's
        check covers the whole chain). Either way it must fit ``delta`` (spec §13.3): its depth
        one less, so a chain through cached bases is bounded like a decoded one."""
        with self._lock:
            cached = digest in self._rows
        if cached:
            if delta is not None:
                check_base(delta, self.header(digest), delta_name, f"chunk object {digest.hex()}")
            hit = self._copy_cached(digest, out)
            if hit is not None:
                return hit
        sc = thread_scratch()
        return decode_chunk(self._get(digest, sc, level), digest, f"chunk object {digest.hex()}",
                            self._base_rows, self.kernels, verify=False, out=out,
                            scratch=sc, level=level, delta=delta, delta_name=delta_name)

    def _copy_cached(self, digest: bytes, out: np.ndarray) -> np.ndarray | None:
        """Copy chunk ``digest``'s rows from the decoded-chunk cache into ``out`` and return
        them viewed ``(rows, row_bytes)``; None when it is not cached."""
        with self._lock:
            hit = self._rows.get(digest)
        if hit is None:
            return None
        if out.size != hit.size:
            raise IntegrityError(f"chunk object {digest.hex()}: holds {hit.size} bytes where "
                                 f"{out.size} were expected")
        out.reshape(-1)[:] = hit.reshape(-1)
        return out.reshape(hit.shape)

    def _checked_base_rows(self, digest: bytes, *, out: np.ndarray, level: int,
                           delta: ChunkHeader | None = None, delta_name: str = "") -> np.ndarray:
        """Like :meth:`_base_rows`, but every base on the chain is checked against its id (the
        slow path that names the culprit once a chain failed its final check; fresh scratch
        buffers, so it cannot disturb the decode it is part of)."""
        return decode_chunk(self._get(digest), digest, f"chunk object {digest.hex()}",
                            self._checked_base_rows, self.kernels, verify=True, out=out,
                            scratch=Scratch(), level=level, delta=delta, delta_name=delta_name)

    def rows(self, digest: bytes, *, verify: bool = True,
             fits: tuple[int, int, int] | None = None) -> np.ndarray:
        """The decoded canonical rows of chunk ``digest`` (read-only array).

        The BLAKE3 of the result is checked against ``digest``. Bases on its delta chain are not
        hashed one by one (a wrong base cannot produce the right digest); when the check fails,
        the chain is decoded again with every base checked, so the error names the culprit.
        ``fits``: what the table version reading it expects (:meth:`expected`), checked from
        the header the decode parses anyway, or from memory for a cached chunk.
        """
        with self._lock:
            hit = self._rows.get(digest)
            if hit is not None:
                self._rows.move_to_end(digest)
        if hit is not None:
            self._check_cached_fits(digest, fits)
            return hit
        out = self._decode(digest, None, verify, fits)
        out.flags.writeable = False
        if verify:
            with self._lock:
                if out.nbytes <= self.cache_bytes and digest not in self._rows:  # another thread may have won
                    self._rows[digest] = out
                    self._held += out.nbytes
                    while self._held > self.cache_bytes:
                        _, old = self._rows.popitem(last=False)
                        self._held -= old.nbytes
        return out

    def rows_into(self, digest: bytes, out: np.ndarray,
                  fits: tuple[int, int, int] | None = None) -> None:
        """Decode chunk ``digest`` (digest checked) straight into ``out``, a writable
        C-contiguous uint8 array of its ``n_rows * row_bytes`` bytes; the cache is consulted
        but not filled (a whole-table read would only churn it). ``fits`` as for :meth:`rows`."""
        if self._copy_cached(digest, out) is None:
            self._decode(digest, out, True, fits)
        else:
            self._check_cached_fits(digest, fits)

    @staticmethod
    def expected(tv: TableVersion, c: int) -> tuple[int, int, int]:
        """``(n_rows, row_bytes, itemsize)`` of chunk ``c`` of table version ``tv``."""
        k = tv.dtype.itemsize
        return min(tv.chunk_rows, tv.n_rows - c * tv.chunk_rows), tv.dim * k, k

    def _remember_fit(self, digest: bytes, fits: tuple[int, int, int]) -> None:
        with self._lock:
            self._fits[digest] = fits
            if len(self._fits) > 1 << 16:
                self._fits.popitem(last=False)

    def _check_cached_fits(self, digest: bytes, fits: tuple[int, int, int] | None) -> None:
        """:func:`check_fits` for a chunk served from memory: from the memo of chunks already
        checked, else from its (cached) header."""
        if fits is None:
            return
        with self._lock:
            if self._fits.get(digest) == fits:
                return
        check_fits(self.header(digest), fits, f"chunk object {digest.hex()}")
        self._remember_fit(digest, fits)

    def rows_subset(self, digest: bytes, idx: np.ndarray) -> np.ndarray:
        """Rows ``idx`` (sorted, unique) of chunk ``digest`` without decoding the others.

        Checked against the chunk's stored rowprints (XXH3-64 of each row, from its
        checksummed rowprint section) instead of the chunk digest, which needs every row.
        """
        idx = np.asarray(idx, dtype=np.int64)
        with self._lock:
            hit = self._rows.get(digest)
        if hit is not None:
            picked: np.ndarray = hit[idx]
            return picked
        sc = thread_scratch()

        def base_rows(d: bytes, sub: np.ndarray, level: int = 1, *, delta: ChunkHeader,
                      delta_name: str) -> np.ndarray:
            with self._lock:
                cached = self._rows.get(d)
            if cached is not None:
                check_base(delta, self.header(d), delta_name, f"chunk object {d.hex()}")
                picked: np.ndarray = cached[sub]
                return picked
            return decode_rows(self._get(d, sc, level), f"chunk object {d.hex()}", sub,
                               lambda d2, s2, **kw: base_rows(d2, s2, level + 1, **kw), self.kernels,
                               level, delta=delta, delta_name=delta_name)

        rows = decode_rows(self._get(digest, sc, 0), f"chunk object {digest.hex()}", idx,
                           base_rows, self.kernels, 0)
        cpu = cpu_kernels()
        want = self.rowprints(digest)[idx]
        got = np.empty(len(idx), dtype=np.uint64)
        cpu.rowprints_into(np.ascontiguousarray(rows), got)  # serial: callers run it in pools
        if not np.array_equal(got, want):
            bad = int(idx[np.flatnonzero(got != want)[0]])
            raise IntegrityError(f"chunk object {digest.hex()}: decoded row {bad} does not match "
                                 "its stored rowprint")
        return rows

    def _decode(self, digest: bytes, out: np.ndarray | None, verify: bool,
                fits: tuple[int, int, int] | None = None) -> np.ndarray:
        sc = thread_scratch()
        buf = self._get(digest, sc, 0)
        name = f"chunk object {digest.hex()}"
        try:
            rows = decode_chunk(buf, digest, name, self._base_rows, self.kernels, verify=verify,
                                out=out, scratch=sc, fits=fits)
        except IntegrityError:
            rows = decode_chunk(buf, digest, name, self._checked_base_rows, self.kernels,
                                verify=verify, out=out, scratch=sc, fits=fits)
        if fits is not None:
            self._remember_fit(digest, fits)
        return rows

    def rowprints(self, digest: bytes, rows_hint: int = 0, *, _level: int = 0) -> np.ndarray:
        """The rowprints of chunk ``digest`` from rowprint sections (payloads are not decoded)."""
        if _level > L.MAX_CHAIN_DEPTH:  # a hostile cycle of sparse patches
            raise IntegrityError(f"chunk object {digest.hex()}: delta chain longer than "
                                 f"{L.MAX_CHAIN_DEPTH}")
        with self._lock:
            hit = self._rp.get(digest)
            if hit is not None:
                self._rp.move_to_end(digest)
                return hit
        # Only the header and the rowprint section are read: never the payload.
        h = self.bound_header(digest, rows_hint)
        with self._lock:
            kept = self._sections.get(digest)
        buf, size = kept if kept is not None else self._prefix(digest, h.payload_offset)
        # A sparse patch's base has about as many rows: ask for its section in the same read.
        hint = max(rows_hint, h.n_rows)
        name = f"chunk object {digest.hex()}"

        def base_rowprints(b: bytes) -> np.ndarray:
            check_base(h, self.header(b, hint), name, f"chunk object {b.hex()}")
            return self.rowprints(b, rows_hint=hint, _level=_level + 1)

        rp = chunk_rowprints(buf, name, base_rowprints, size, header=h)
        rp.flags.writeable = False
        with self._lock:
            self._rp[digest] = rp
            while len(self._rp) > 4096:
                self._rp.popitem(last=False)
        return rp

    # --- binding objects to their ids (spec §13.7) ---------------------------------------------
    def bind(self, digest: bytes, checksum: int, base: bytes | None = None) -> None:
        """Record that chunk ``digest``'s own object has header checksum ``checksum`` (and delta
        base ``base``): the writer calls this for objects it encoded and wrote itself."""
        with self._lock:
            self._bound[digest] = (checksum, base)

    def bound_header(self, digest: bytes, rows_hint: int = 0) -> ChunkHeader:
        """:meth:`header`, once the object is known to be ``digest``'s own: its checksum is the
        one bound to ``digest``, or a full check (:meth:`check_bound`) binds it now."""
        h = self.header(digest, rows_hint)
        with self._lock:
            b = self._bound.get(digest)
        if b is None or b[0] != h.checksum:
            self.check_bound(digest, h)
        return h

    def check_bound(self, digest: bytes, h: ChunkHeader | None = None) -> None:
        """Decode chunk ``digest`` in full (digest checked), check that its rowprint section holds
        the rowprints of the decoded rows (the patched rows for a sparse patch, whose other
        rowprints are its base's, bound in their own right), and bind its checksum.

        ``h``: the header a fast path read; the object read here must be that object (else it
        changed between the two reads). Raises :class:`IntegrityError` naming the object."""
        name = f"chunk object {digest.hex()}"
        buf = self._get(digest)
        own = parse_header(buf, name)
        if h is not None and own.checksum != h.checksum:
            raise IntegrityError(f"{name}: changed while it was being read")
        try:
            rows = decode_chunk(buf, digest, name, self._base_rows, self.kernels, verify=True)
        except IntegrityError:
            rows = decode_chunk(buf, digest, name, self._checked_base_rows, self.kernels, verify=True)
        cpu = cpu_kernels()
        if own.codec == L.CODEC_SPARSE:
            idx = np.frombuffer(buf, dtype="<u4", count=own.n_patch, offset=own.rowprint_offset).astype(np.int64)
            stored = np.frombuffer(buf, dtype="<u8", count=own.n_patch,
                                   offset=own.rowprint_offset + 4 * own.n_patch)
            rows = rows[idx]
        else:
            stored = np.frombuffer(buf, dtype="<u8", count=own.n_rows, offset=own.rowprint_offset)
        got = np.empty(len(rows), dtype=np.uint64)
        cpu.rowprints_into(np.ascontiguousarray(rows), got)
        if not np.array_equal(got, stored):
            raise IntegrityError(f"{name}: its rowprint section does not hold the rowprints of its rows")
        self.bind(digest, own.checksum, own.base if own.is_delta else None)

    def load_seals(self, tv: TableVersion) -> None:
        """Bindings recorded for ``tv``'s chunks by an earlier process (cache/seals/, spec §11.1);
        a missing or damaged record only costs full checks."""
        if self.seal_cache is None:
            return
        key = self.table_key(tv)
        with self._lock:
            if key in self._seals_loaded:
                return
            self._seals_loaded.add(key)
        got = self.seal_cache.get(key, (L.MAX_CHAIN_DEPTH + 1) * tv.n_chunks)
        if got:
            with self._lock:
                for d, cs, base in got:
                    self._bound.setdefault(d, (cs, base))
                self._seals_saved[key] = len(got)

    def save_seals(self, tv: TableVersion) -> None:
        """Record the bindings known for ``tv``'s chunks and their delta bases for later
        processes (best effort; nothing is written when the record would not grow)."""
        if self.seal_cache is None:
            return
        key = self.table_key(tv)
        entries: dict[bytes, tuple[int, bytes | None]] = {}
        with self._lock:
            for d in tv.digests:
                for _ in range(L.MAX_CHAIN_DEPTH + 1):
                    b = self._bound.get(d)
                    if b is None or d in entries:
                        break
                    entries[d] = b
                    if b[1] is None:
                        break
                    d = b[1]
            if not entries or self._seals_saved.get(key, -1) >= len(entries):
                return
            self._seals_saved[key] = len(entries)
        self.seal_cache.put(key, [(d, cs, base) for d, (cs, base) in sorted(entries.items())])

    def table_rowprints(self, tv: TableVersion) -> np.ndarray | None:
        """All rowprints of table version ``tv`` from memory or the rowprint cache, or None when
        there is no cache or no valid entry (see :meth:`fill_table_rowprints`)."""
        if self.rowprint_cache is None:
            return None
        key = self.table_key(tv)
        with self._lock:
            hit = self._tables.get(key)
        if hit is None:
            hit = self.rowprint_cache.get(key, tv.n_rows)
            if hit is not None:
                self._keep_table(key, hit)
        return hit

    def _keep_table(self, key: bytes, rp: np.ndarray) -> None:
        """Whole-table rowprints stay in memory too (up to TABLES_KEPT_BYTES): reading and
        checking an 8 MB entry costs ~5 ms, which a process comparing the same versions
        again should not pay twice."""
        with self._lock:
            if rp.nbytes > TABLES_KEPT_BYTES or key in self._tables:
                return
            self._tables[key] = rp
            while sum(x.nbytes for x in self._tables.values()) > TABLES_KEPT_BYTES:
                self._tables.popitem(last=False)

    def fill_table_rowprints(self, tv: TableVersion) -> np.ndarray:
        """All rowprints of ``tv``, assembled from its chunks' rowprint sections, and kept in
        the rowprint cache (when there is one) for the next process."""
        cr = tv.chunk_rows
        out = np.empty(tv.n_rows, dtype=np.uint64)
        self.load_seals(tv)
        for c in range(tv.n_chunks):
            out[c * cr:(c + 1) * cr] = self.rowprints(self.chunk_of(tv, c), rows_hint=cr)
        out.flags.writeable = False
        self.save_seals(tv)
        if self.rowprint_cache is not None:
            key = self.table_key(tv)
            self.rowprint_cache.put(key, out)
            self._keep_table(key, out)
        return out

    @staticmethod
    def table_key(tv: TableVersion) -> bytes:
        """The rowprint-cache key of table version ``tv``."""
        return RowprintCache.key(tv.dtype, tv.n_rows, tv.dim, tv.digests)

    def patch_rows(self, digest: bytes) -> tuple[ChunkHeader, np.ndarray]:
        """Header and patched row indices of a sparse-patch chunk, from its first bytes only
        (header + index section; checksum verified)."""
        h = self.bound_header(digest)
        if h.codec != L.CODEC_SPARSE:
            raise ValueError("not a sparse patch")
        with self._lock:
            idx = self._patches.get(digest)
            if idx is not None:  # checked before (objects are immutable)
                return h, idx
            kept = self._sections.get(digest)
        sect = kept[0] if kept is not None else self._prefix(digest, h.payload_offset)[0]
        name = f"chunk object {digest.hex()}"
        if header_checksum(sect[:L.CHUNK_CHECKSUM_OFFSET], sect[h.rowprint_offset:]) != h.checksum:
            raise IntegrityError(f"{name}: header/rowprint checksum mismatch")
        idx = np.frombuffer(sect, dtype="<u4", count=h.n_patch, offset=h.rowprint_offset).astype(np.int64)
        if len(idx) and (np.any(np.diff(idx) <= 0) or idx[-1] >= h.n_rows):
            raise FormatError(f"{name}: sparse patch indices are not strictly increasing", ErrorKind.BAD_HEADER)
        idx.flags.writeable = False
        with self._lock:
            self._patches[digest] = idx
            while len(self._patches) > SECTIONS_KEPT:
                self._patches.popitem(last=False)
        return h, idx

    def chain(self, digest: bytes) -> list[bytes]:
        """The object ids a read of ``digest`` touches: itself, then its bases."""
        out = [digest]
        h = self.header(digest)
        while h.is_delta:
            if len(out) > L.MAX_CHAIN_DEPTH:
                raise IntegrityError(f"chunk object {digest.hex()}: delta chain longer than "
                                     f"{L.MAX_CHAIN_DEPTH}")
            base = self.header(h.base)
            check_base(h, base, f"chunk object {out[-1].hex()}", f"chunk object {h.base.hex()}")
            out.append(h.base)
            h = base
        return out

    def chunk_of(self, tv: TableVersion, c: int) -> bytes:
        """The id of chunk ``c`` of table version ``tv``, once its header is known to hold what
        the table version puts there (:meth:`expected`, :func:`check_fits`). For the rowprint
        paths: the header read brings the rowprint section along. Decoders pass ``fits`` to
        :meth:`rows` / :meth:`rows_into` instead, which check the header they parse anyway."""
        d = tv.digests[c]
        want = self.expected(tv, c)
        with self._lock:
            if self._fits.get(d) == want:
                return d
        check_fits(self.header(d, want[0]), want,
                   f"chunk object {d.hex()} (chunk {c} of a {tv.dtype.name} table of {tv.n_rows} x {tv.dim})")
        self._remember_fit(d, want)
        return d

    def clear(self) -> None:
        with self._lock:
            self._rows.clear()
            self._rp.clear()
            self._headers.clear()
            self._sections.clear()
            self._patches.clear()
            self._tables.clear()
            self._fits.clear()
            self._bound.clear()
            self._seals_loaded.clear()
            self._seals_saved.clear()
            self._held = 0

