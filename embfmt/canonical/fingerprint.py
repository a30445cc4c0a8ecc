"""Canonical, order-aware fingerprints of embedding matrices (spec §4-§8).

Three levels of hash:

* **rowprints** - XXH3-64 (seed 0) of each row's canonical bytes; finds changed rows.
* **chunk digests** - BLAKE3-256 of each chunk's canonical bytes; the content id of a chunk.
* **root** - BLAKE3 over a table descriptor (format version, dtype, N, D, chunking) and the
  Merkle tree hash of the chunk digests; its text form is the *fingerprint*.

Examples
--------
>>> import numpy as np, embfmt
>>> x = np.arange(6, dtype=np.float32).reshape(2, 3)
>>> fp = embfmt.fingerprint(x)
>>> fp.root[:8], fp.shape, fp.dtype, fp.n_chunks
('emb1:b3:', (2, 3), 'float32', 1)
>>> fp == embfmt.fingerprint(x.astype(">f4"))      # byte order does not matter
True
>>> fp == embfmt.fingerprint(x[::-1])              # row order does
False
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import blake3
import numpy as np

from .. import _layout as L
from . import merkle
from ..backend import GpuBackend, get_backend, resolve_name
from .dtype import DType, dtype_from_code, dtype_of
from ..errors import ErrorKind, FormatError, InputError, IntegrityError
from .chunking import chunk_rows_for, n_chunks_for
from .matrix import as_matrix, canonical_rows, check_shape

__all__ = ["Fingerprint", "Fingerprinter", "InclusionProof", "fingerprint", "verify_proof",
           "chunk_rows_for", "descriptor_bytes", "parse_root", "format_root"]


def descriptor_bytes(dt: DType, n_rows: int, dim: int, chunk_rows: int, tree_hash: bytes) -> bytes:
    """The 80-byte table descriptor that the root binds (spec §7)."""
    return L.DESCRIPTOR_STRUCT.pack(
        L.DESCRIPTOR_MAGIC, L.FORMAT_MAJOR, L.FORMAT_MINOR, dt.code, L.HASH_ALGO_XXH3_BLAKE3,
        0, 0, n_rows, dim, chunk_rows, n_chunks_for(n_rows, chunk_rows), tree_hash)


def root_hash(descriptor: bytes) -> bytes:
    """``BLAKE3(0x03 || descriptor)``."""
    return blake3.blake3(L.TAG_ROOT + descriptor).digest()


def format_root(root: bytes) -> str:
    """The fingerprint text form: ``emb1:b3:`` + 64 lowercase hex digits."""
    return L.FINGERPRINT_PREFIX + root.hex()


_ROOT_RE = re.compile(r"emb(\d+):([a-z0-9]+):([0-9a-f]*)\Z")


def parse_root(text: str) -> bytes:
    """Parse a fingerprint text form back into its 32 root bytes.

    Raises :class:`FormatError` with kind ``bad-fingerprint`` (or ``unsupported-version`` for
    a well-formed fingerprint of another major version).
    """
    if not isinstance(text, str):
        raise FormatError(f"fingerprint must be a string, got {type(text).__name__}",
                          ErrorKind.BAD_FINGERPRINT)
    m = _ROOT_RE.match(text.strip())
    if not m:
        raise FormatError(f"not an embfmt fingerprint: {text[:80]!r} (expected "
                          f"'{L.FINGERPRINT_PREFIX}' + 64 hex digits)", ErrorKind.BAD_FINGERPRINT)
    if int(m.group(1)) != L.FORMAT_MAJOR:
        raise FormatError(f"fingerprint {text[:16]!r}... is format v{m.group(1)}; this embfmt "
                          f"reads v{L.FORMAT_MAJOR}", ErrorKind.UNSUPPORTED_VERSION)
    if m.group(2) != "b3" or len(m.group(3)) != 2 * L.DIGEST_BYTES:
        raise FormatError(f"not an embfmt fingerprint: {text[:80]!r} (expected "
                          f"'{L.FINGERPRINT_PREFIX}' + 64 hex digits)", ErrorKind.BAD_FINGERPRINT)
    return bytes.fromhex(m.group(3))


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """Proof that one chunk digest belongs to a fingerprint root (spec §6.3).

    Carries the descriptor fields needed to recompute the root, so a device holding only the
    root text, one chunk and this proof can check that chunk.
    """

    index: int
    """Chunk index."""
    dtype: str
    n_rows: int
    dim: int
    chunk_rows: int
    siblings: tuple[bytes, ...]
    """Audit path, leaf level first."""

    @property
    def n_chunks(self) -> int:
        return n_chunks_for(self.n_rows, self.chunk_rows)

    def to_bytes(self) -> bytes:
        """Serialize: a 48-byte header then 32 bytes per sibling (spec §6.3)."""
        dt = dtype_of(self.dtype)
        head = L.PROOF_HEADER_STRUCT.pack(L.PROOF_MAGIC, L.FORMAT_MAJOR, L.HASH_ALGO_XXH3_BLAKE3,
                                          dt.code, 0, self.n_rows, self.dim, self.chunk_rows,
                                          self.index, len(self.siblings), 0)
        return head + b"".join(self.siblings)

    @classmethod
    def from_bytes(cls, buf: bytes) -> InclusionProof:
        """Parse and validate the bytes written by :meth:`to_bytes`."""
        hs = L.PROOF_HEADER_STRUCT.size
        if len(buf) < hs:
            raise FormatError(f"proof is {len(buf)} bytes, shorter than its {hs}-byte header",
                              ErrorKind.TRUNCATED)
        magic, major, algo, code, r0, n_rows, dim, cr, index, nsib, r1 = \
            L.PROOF_HEADER_STRUCT.unpack_from(buf)
        if magic != L.PROOF_MAGIC:
            raise FormatError(f"proof magic {magic!r} is not {L.PROOF_MAGIC!r}", ErrorKind.BAD_MAGIC)
        if major != L.FORMAT_MAJOR:
            raise FormatError(f"proof is format v{major}; this embfmt reads v{L.FORMAT_MAJOR}",
                              ErrorKind.UNSUPPORTED_VERSION)
        if algo != L.HASH_ALGO_XXH3_BLAKE3 or r0 or r1:
            raise FormatError("proof header has an unknown hash algorithm or non-zero reserved "
                              "fields", ErrorKind.BAD_PROOF)
        if nsib > L.MAX_PROOF_SIBLINGS:
            raise FormatError(f"proof claims {nsib} siblings (max {L.MAX_PROOF_SIBLINGS})",
                              ErrorKind.BAD_PROOF)
        if len(buf) != hs + nsib * L.DIGEST_BYTES:
            raise FormatError(f"proof is {len(buf)} bytes; its header implies "
                              f"{hs + nsib * L.DIGEST_BYTES}", ErrorKind.TRUNCATED)
        try:
            dt = dtype_from_code(code)
        except InputError as e:
            raise FormatError(f"proof: {e}", ErrorKind.BAD_PROOF) from None
        sib = tuple(bytes(buf[hs + k * 32: hs + (k + 1) * 32]) for k in range(nsib))
        return cls(index, dt.name, n_rows, dim, cr, sib)


class Fingerprint:
    """The fingerprint of one matrix: root, rowprints and chunk digests.

    Compares equal (and hashes) by :attr:`root`; also compares equal to its root text.

    Attributes
    ----------
    root : str
        ``emb1:b3:<64 hex>``.
    rowprints : numpy.ndarray
        uint64[N], XXH3-64 of each row (read-only).
    chunk_digests : tuple of bytes
        BLAKE3-256 of each chunk, 32 bytes each.
    chunk_rows : int
        Rows per chunk (the last chunk may be shorter).
    shape : tuple of int
        ``(N, D)``.
    dtype : str
        Canonical dtype name.
    backend : str
        The backend that computed it.
    """

    __slots__ = ("root", "_rowprints", "_digests", "chunk_rows", "shape", "dtype", "backend",
                 "tree_hash", "seconds", "_levels", "_chunk_digests")

    def __init__(self, *, rowprints: Any, digests: np.ndarray, dtype: DType,
                 shape: tuple[int, int], backend: str, seconds: float = 0.0,
                 tree_hash: bytes | None = None) -> None:
        # rowprints: a numpy array, or a device array (anything with .get(), e.g. CuPy) copied
        # to the host on first use of :attr:`rowprints` (8 bytes a row: for a table in GPU
        # memory, most callers only want the root). Until then the object holds that device
        # memory; the producer must have finished writing it (the GPU path's tree hash waits
        # for its stream). tree_hash: the Merkle tree hash of the digests where the backend
        # computed it (the GPU's emb_tree_hash), else computed here.
        n, d = shape
        self.chunk_rows = chunk_rows_for(dtype, d)
        if digests.shape != (n_chunks_for(n, self.chunk_rows), L.DIGEST_BYTES):
            raise ValueError("digest array shape does not match the matrix")  # internal bug guard
        if len(rowprints) != n:
            raise ValueError("rowprint count does not match the matrix")  # internal bug guard
        self._rowprints = rowprints
        self._digests = digests
        self._chunk_digests: tuple[bytes, ...] | None = None
        self.shape = (int(n), int(d))
        self.dtype = dtype.name
        self.backend = backend
        self.seconds = seconds
        self._levels: list[list[bytes]] | None = None
        self.tree_hash = merkle.tree_hash(self.chunk_digests) if tree_hash is None else bytes(tree_hash)
        self.root = format_root(root_hash(descriptor_bytes(dtype, n, d, self.chunk_rows,
                                                           self.tree_hash)))

    def __getstate__(self) -> dict[str, Any]:
        # Pickles and copies carry host rowprints: one made on a GPU restores without one.
        self.rowprints  # noqa: B018 (fetches them)
        return {k: getattr(self, k) for k in self.__slots__}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            object.__setattr__(self, k, v)

    @property
    def rowprints(self) -> np.ndarray:
        """uint64[N], XXH3-64 of each row (read-only; fetched from the device on first use)."""
        rp = self._rowprints
        if isinstance(rp, np.ndarray) and rp.dtype == np.uint64 and not rp.flags.writeable:
            return rp
        rp = np.asarray(rp if isinstance(rp, np.ndarray) else rp.get(), dtype=np.uint64)
        rp.flags.writeable = False
        self._rowprints = rp
        return rp

    @property
    def chunk_digests(self) -> tuple[bytes, ...]:
        if self._chunk_digests is None:
            self._chunk_digests = tuple(bytes(r) for r in self._digests)
        return self._chunk_digests

    @property
    def n_chunks(self) -> int:
        return len(self._digests)

    @property
    def nbytes(self) -> int:
        """Canonical bytes covered."""
        return self.shape[0] * self.shape[1] * dtype_of(self.dtype).itemsize

    def chunk_of_row(self, row: int) -> int:
        """Index of the chunk holding ``row``."""
        return row // self.chunk_rows

    def proof(self, i: int) -> InclusionProof:
        """Inclusion proof for chunk ``i`` (see :func:`verify_proof`)."""
        if not 0 <= i < self.n_chunks:
            raise InputError(f"chunk index {i} outside 0..{self.n_chunks - 1}")
        if self._levels is None:
            levels = merkle.tree_levels(self.chunk_digests)
            # The root may have come from the backend's own tree (the GPU's emb_tree_hash):
            # a proof built from a different tree would never verify against it.
            if levels[-1][0] != self.tree_hash:
                raise IntegrityError(f"fingerprint {self.root}: the tree hash does not match its chunk "
                                     f"digests (computed by backend {self.backend!r})")
            self._levels = levels
        return InclusionProof(i, self.dtype, self.shape[0], self.shape[1], self.chunk_rows,
                              tuple(merkle.audit_path(self._levels, i)))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no per-row data)."""
        return {"fingerprint": self.root, "rows": self.shape[0], "dim": self.shape[1],
                "dtype": self.dtype, "chunk_rows": self.chunk_rows, "chunks": self.n_chunks,
                "backend": self.backend}

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Fingerprint):
            return self.root == other.root
        if isinstance(other, str):
            return self.root == other.strip()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.root)

    def __str__(self) -> str:
        return self.root

    def __repr__(self) -> str:
        return f"Fingerprint({self.root!r}, shape={self.shape}, dtype={self.dtype!r})"


class Fingerprinter:
    """Streaming fingerprint: feed row blocks of any size, get the one-shot result.

    Memory stays bounded by one chunk of buffered rows plus the rowprints (8 bytes per row)
    and chunk digests (32 bytes per chunk).

    Examples
    --------
    >>> import numpy as np, embfmt
    >>> x = np.random.default_rng(0).standard_normal((5000, 64)).astype(np.float32)
    >>> f = embfmt.Fingerprinter("float32", 64)
    >>> for block in np.array_split(x, 7):
    ...     f.update(block)
    >>> f.finalize() == embfmt.fingerprint(x)
    True
    """

    def __init__(self, dtype: Any, dim: int, *, backend: str = "auto",
                 on_chunks: Callable[[int, np.ndarray, np.ndarray, np.ndarray], None] | None = None) -> None:
        self.dtype = dtype_of(dtype)
        self._on_chunks = on_chunks
        self.dim = int(dim)
        check_shape(0, self.dim, self.dtype, "Fingerprinter")
        self.row_bytes = self.dim * self.dtype.itemsize
        self.chunk_rows = chunk_rows_for(self.dtype, self.dim)
        self._backend_name = resolve_name(backend)
        self._backend = get_backend(self._backend_name)
        self._buf = np.empty((0, self.row_bytes), dtype=np.uint8)
        self._fill = 0
        self._rowprints: list[np.ndarray] = []
        self._digests: list[np.ndarray] = []
        self._n_rows = 0
        self._done = False
        self._chunks_done = 0
        self._t0 = time.perf_counter()

    @property
    def backend(self) -> str:
        """The backend computing the hashes."""
        return self._backend_name

    @property
    def n_rows(self) -> int:
        """Rows fed so far."""
        return self._n_rows

    def _process(self, rows: np.ndarray) -> None:
        rp, dg = self._backend.fingerprint_chunks(rows, self.chunk_rows)
        self._rowprints.append(rp)
        self._digests.append(dg)
        if self._on_chunks is not None:
            # ``rows`` may be this object's reusable buffer: a callback keeping it must copy.
            self._on_chunks(self._chunks_done, rows, rp, dg)
        self._chunks_done += len(dg)

    def update_canonical(self, rows: np.ndarray, *, last: bool = False) -> None:
        """Feed canonical bytes: a C-contiguous ``(n, row_bytes)`` uint8 array.

        ``last=True`` promises that no rows follow, so a trailing partial chunk is hashed in
        the same pass instead of being buffered (saves a copy of the rowprints)."""
        if self._done:
            raise InputError("Fingerprinter.update() after finalize()")
        n = rows.shape[0]
        if n == 0:
            return
        if self._n_rows + n > L.MAX_ROWS:
            raise InputError(f"more than {L.MAX_ROWS} rows", ErrorKind.TOO_LARGE)
        self._n_rows += n
        cr = self.chunk_rows
        pos = 0
        if self._fill:
            take = min(cr - self._fill, n)
            self._buf[self._fill:self._fill + take] = rows[:take]
            self._fill += take
            pos = take
            if self._fill == cr:
                self._process(self._buf)
                self._fill = 0
        full = (n - pos) // cr * cr
        if last and not self._fill:
            full = n - pos  # the partial last chunk goes along with the full ones
        if full:
            self._process(np.ascontiguousarray(rows[pos:pos + full]))
            pos += full
        rest = n - pos
        if rest:
            if self._buf.shape[0] == 0:
                self._buf = np.empty((cr, self.row_bytes), dtype=np.uint8)
            self._buf[:rest] = rows[pos:]
            self._fill = rest

    def update(self, block: Any) -> None:
        """Feed the next rows: a 2-D array-like of shape ``(n, dim)`` and this dtype."""
        a = np.asarray(block) if not isinstance(block, np.ndarray) else block
        if a.ndim != 2 or a.shape[1] != self.dim:
            raise InputError(f"block of shape {a.shape} does not match (n, {self.dim})",
                             ErrorKind.SHAPE_MISMATCH)
        if dtype_of(a.dtype) != self.dtype:
            raise InputError(f"block dtype {a.dtype} does not match {self.dtype.name}",
                             ErrorKind.DTYPE_MISMATCH)
        self.update_canonical(canonical_rows(a, self.dtype))

    def finalize(self) -> Fingerprint:
        """Finish and return the :class:`Fingerprint`; the Fingerprinter cannot be fed after."""
        if self._done:
            raise InputError("Fingerprinter.finalize() called twice")
        if self._fill:
            self._process(self._buf[:self._fill])
            self._fill = 0
        self._done = True
        # One block (the usual case for in-memory input): no copy of N*8 bytes of rowprints.
        rp = (self._rowprints[0] if len(self._rowprints) == 1 else np.concatenate(self._rowprints)
              if self._rowprints else np.empty(0, np.uint64))
        dg = (self._digests[0] if len(self._digests) == 1 else np.concatenate(self._digests)
              if self._digests else np.empty((0, L.DIGEST_BYTES), np.uint8))
        self._buf = np.empty((0, self.row_bytes), dtype=np.uint8)
        return Fingerprint(rowprints=rp, digests=dg, dtype=self.dtype,
                           shape=(self._n_rows, self.dim), backend=self._backend_name,
                           seconds=time.perf_counter() - self._t0)


def fingerprint(x: Any, *, backend: str = "auto") -> Fingerprint:
    """Fingerprint a 2-D matrix.

    Parameters
    ----------
    x
        numpy array (any byte order or layout), ``np.memmap``, h5py Dataset, torch tensor, or
        any object with ``__array__``. Non-contiguous and out-of-core inputs are read in bounded
        blocks.
    backend
        ``"auto"`` (default; honours ``EMBFMT_BACKEND``): the GPU for input already in GPU
        memory (CuPy, torch CUDA, ``__cuda_array_interface__``, CUDA DLPack) when CuPy and a
        device are present, else the CPU. ``"cpu"``, ``"gpu"`` (moves host input to the
        device) or ``"reference"``. :attr:`Fingerprint.backend` says which ran.

        GPU input is read by kernels on CuPy's current stream, as any CuPy operation would
        read it: data written on another stream (e.g. a torch tensor produced on a non-default
        torch stream) must be complete first (``torch.cuda.current_stream().synchronize()``).
        The result's rowprints stay in GPU memory until :attr:`Fingerprint.rowprints` is first
        read.

    Returns
    -------
    Fingerprint

    Examples
    --------
    >>> import numpy as np, embfmt
    >>> embfmt.fingerprint(np.zeros((0, 8), np.float16)).shape
    (0, 8)
    """
    m = as_matrix(x)
    name = resolve_name(backend, on_device=m.on_device)
    if name == "gpu" and m.on_device:
        return _fingerprint_on_device(m)
    f = Fingerprinter(m.dtype, m.dim, backend=name)
    prev = None
    for block in m.blocks():
        if prev is not None:
            f.update_canonical(prev)
        prev = block
    if prev is not None:
        f.update_canonical(prev, last=True)
    return f.finalize()


@functools.lru_cache(maxsize=1)
def _checked_gpu_backend() -> GpuBackend:
    """The GPU backend (self-checked by backend.py), with its device Merkle tree hash checked
    here against merkle.tree_hash, once per process; a refusal is not cached and raises again."""
    # tree_hash_device and fingerprint_device are the GPU backend's alone (not on Backend).
    be = cast(GpuBackend, get_backend("gpu"))
    merkle.check_device_tree_hash(be.tree_hash_device)
    return be


def _fingerprint_on_device(m: Any) -> Fingerprint:
    """Hash rows that live in GPU memory where they are: one view (or one device copy, for a
    non-contiguous input) and no transfer but the results (8 bytes a row, 32 a chunk)."""
    t0 = time.perf_counter()
    be = _checked_gpu_backend()
    rows = m.device_rows()
    rp, dg, th = be.fingerprint_device(rows, chunk_rows_for(m.dtype, m.dim))
    # The digests come back (32 bytes a chunk); the rowprints stay on the device until asked for.
    return Fingerprint(rowprints=rp, digests=dg.get(), dtype=m.dtype, shape=(m.n_rows, m.dim),
                       backend="gpu", seconds=time.perf_counter() - t0, tree_hash=th)


def verify_proof(root: str | Fingerprint, i: int, digest: bytes, proof: InclusionProof | bytes) -> bool:
    """Check that ``digest`` is chunk ``i`` of the table whose fingerprint is ``root``.

    Returns ``False`` for a proof that does not lead to ``root``; raises :class:`FormatError`
    (``bad-proof``, ``bad-fingerprint``) for inputs that are malformed rather than wrong.

    Examples
    --------
    >>> import numpy as np, embfmt
    >>> fp = embfmt.fingerprint(np.arange(640_000, dtype=np.float32).reshape(5000, 128))
    >>> p = fp.proof(1)
    >>> embfmt.verify_proof(fp.root, 1, fp.chunk_digests[1], p)
    True
    >>> embfmt.verify_proof(fp.root, 1, fp.chunk_digests[0], p)
    False
    """
    want = parse_root(root.root if isinstance(root, Fingerprint) else root)
    if isinstance(proof, (bytes, bytearray, memoryview)):
        proof = InclusionProof.from_bytes(bytes(proof))
    if not isinstance(proof, InclusionProof):
        raise FormatError(f"expected an InclusionProof, got {type(proof).__name__}", ErrorKind.BAD_PROOF)
    try:
        dt = dtype_of(proof.dtype)
        check_shape(proof.n_rows, proof.dim, dt, "proof's table")
    except InputError as e:
        raise FormatError(f"proof: {e}", ErrorKind.BAD_PROOF) from None
    if proof.chunk_rows != chunk_rows_for(dt, proof.dim):
        raise FormatError(f"proof's chunk_rows {proof.chunk_rows} is not the canonical "
                          f"{chunk_rows_for(dt, proof.dim)} for {proof.dim} x {dt.name}", ErrorKind.BAD_PROOF)
    if not 0 <= proof.index < proof.n_chunks:
        raise FormatError(f"proof index {proof.index} outside 0..{proof.n_chunks - 1}",
                          ErrorKind.BAD_PROOF)
    if proof.index != i:
        return False
    th = merkle.root_from_path(bytes(digest), i, proof.n_chunks, proof.siblings)
    got = root_hash(descriptor_bytes(dt, proof.n_rows, proof.dim, proof.chunk_rows, th))
    return got == want
