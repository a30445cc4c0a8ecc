"""CuPy kernels: the CUDA sources in ``cuda/`` loaded as a RawModule (compiled by NVRTC on first
use, cached by CuPy). Same names and meanings as :mod:`reference` and :mod:`cpu`.

The per-row and per-word work is the ``__host__ __device__`` code of ``cuda/embfmt_core.cuh``,
which ``tests/kernels/test_cuda_host.py`` checks on the host (nvcc, no GPU) against the oracle;
``embfmt.backend.GpuBackend`` re-checks these kernels on the device against the oracle before
first use and refuses a device that disagrees.

Importing this module imports CuPy: only the GPU backend does, and only when asked for.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import cupy as cp
import numpy as np

_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cuda")
_THREADS = 256
# Chunks per emb_chunk_digests launch: bounds the scratch of chaining values (two per BLAKE3
# chunk of 1 KiB: 64 bytes per KiB of input, 256 MiB for 4096 chunks of 1 MiB). Launches of
# 1024 chunks were 9% slower on an H200 (each launch's last wave leaves multiprocessors idle).
_CHUNKS_PER_LAUNCH = 4096


def _source() -> str:
    """The kernel source with embfmt_core.cuh inlined: CuPy caches compiled modules by source
    text and options, so an #include would let an edited header reuse a stale binary."""
    with open(os.path.join(_DIR, "embfmt_kernels.cu"), encoding="utf-8") as f:
        src = f.read()
    with open(os.path.join(_DIR, "embfmt_core.cuh"), encoding="utf-8") as f:
        core = f.read()
    include = '#include "embfmt_core.cuh"'
    if include not in src:
        raise RuntimeError(f"{_DIR}/embfmt_kernels.cu no longer includes embfmt_core.cuh")
    return src.replace(include, core, 1)


@functools.lru_cache(maxsize=None)
def _module(device: int) -> Any:
    return cp.RawModule(code=_source(), options=("--std=c++17",))


def _fn(name: str) -> Any:
    return _module(cp.cuda.Device().id).get_function(name)


def _device_rows(rows: Any) -> Any:
    """A C-contiguous 2-D uint8 CuPy array of ``rows`` (host input is copied once)."""
    a = rows if isinstance(rows, cp.ndarray) else cp.asarray(np.ascontiguousarray(rows))
    if a.dtype != cp.uint8 or a.ndim != 2:
        raise ValueError(f"rows must be a 2-D uint8 array, got {a.dtype} {a.shape}")
    return cp.ascontiguousarray(a)


def _grid(n: int, per_block: int = _THREADS) -> tuple[int]:
    """Blocks of ``per_block`` for ``n`` work items; grid-stride loops cover the rest."""
    return (max(1, min(-(-n // per_block), 65535 * 32)),)


# Rows longer than this take XXH3's long path (stripes of 64 bytes).
_XXH3_MIDSIZE_MAX = 240
# Rows per block of emb_rowprints_staged (EMB_STAGE_ROWS in the CUDA source).
_STAGE_ROWS = 128


ROWPRINT_KERNELS = ("staged", "thread")


def _rowprint_kernel(a: Any) -> str:
    """The kernel for rows ``a``: ``staged`` (rows over 240 bytes, a multiple of 16 bytes long
    at a 16-byte-aligned address: tiles of rows staged through shared memory, 0.93x of read
    bandwidth on an H200 for 512-byte rows), else ``thread`` (one thread per row: 0.39x
    there). Rows of up to 240 bytes take XXH3's short paths, which have no stripes to stage."""
    return "staged" if _stageable(a) else "thread"


def _stageable(a: Any) -> bool:
    """Whether emb_rowprints_staged can hash rows ``a``."""
    length = a.shape[1]
    return length > _XXH3_MIDSIZE_MAX and length % 16 == 0 and a.data.ptr % 16 == 0


def rowprints_device(rows: Any, *, kernel: str | None = None) -> Any:
    """XXH3-64 (seed 0) of every row, left on the device (CuPy uint64[N]).

    ``kernel`` (tests and benchmarks only) forces one of :data:`ROWPRINT_KERNELS`:
    ``staged`` (long rows of a multiple of 16 bytes at a 16-byte-aligned address) or
    ``thread`` (one thread per row, any rows).
    """
    a = _device_rows(rows)
    n, length = a.shape
    kernel = kernel or _rowprint_kernel(a)
    if kernel not in ROWPRINT_KERNELS:
        raise ValueError(f"unknown rowprint kernel {kernel!r}")
    if kernel == "staged" and not _stageable(a):
        raise ValueError("the staged kernel needs rows over 240 bytes, a multiple of 16 long, 16-byte aligned")
    out = cp.empty(n, dtype=cp.uint64)
    if n:
        args = (a, np.uint64(n), np.uint64(length), out)
        if kernel == "staged":
            _fn("emb_rowprints_staged")(_grid(n, _STAGE_ROWS), (_STAGE_ROWS,), args)
        else:
            _fn("emb_rowprints")(_grid(n), (_THREADS,), args)
    return out


def rowprints(rows: Any) -> np.ndarray:
    """XXH3-64 (seed 0) of every row -> host uint64[N]."""
    return rowprints_device(rows).get()


def chunk_digests_device(rows: Any, chunk_rows: int, *, _per_launch: int = _CHUNKS_PER_LAUNCH) -> Any:
    """BLAKE3-256 of each run of ``chunk_rows`` rows, left on the device (uint8[n_chunks, 32])."""
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    a = _device_rows(rows)
    n, length = a.shape
    n_chunks = -(-n // chunk_rows) if n else 0
    out = cp.empty((n_chunks, 32), dtype=cp.uint8)
    chunk_bytes = chunk_rows * length
    cap = max(1, -(-chunk_bytes // 1024))
    flat = a.reshape(-1)
    for c0 in range(0, n_chunks, _per_launch):
        k = min(_per_launch, n_chunks - c0)
        part = flat[c0 * chunk_bytes:min(flat.size, (c0 + k) * chunk_bytes)]
        scratch = cp.empty(k * cap * 16, dtype=cp.uint32)
        _fn("emb_chunk_digests")((k,), (_THREADS,),
                                 (part, np.uint64(part.size), np.uint64(chunk_bytes), np.uint64(k),
                                  scratch, out[c0:c0 + k]))
    return out


def chunk_digests(rows: Any, chunk_rows: int) -> np.ndarray:
    """BLAKE3-256 of each run of ``chunk_rows`` rows -> host uint8[n_chunks, 32]."""
    return chunk_digests_device(rows, chunk_rows).get()


def tree_hash_device(digests: Any) -> bytes:
    """The Merkle tree hash (spec §6) of n >= 1 chunk digests on the device (uint8[n, 32]),
    computed there by ``emb_tree_hash``; only the 32-byte result comes back."""
    d = cp.ascontiguousarray(cp.asarray(digests))
    if d.dtype != cp.uint8 or d.ndim != 2 or d.shape[1] != 32 or d.shape[0] < 1:
        raise ValueError(f"digests must be a uint8[n >= 1, 32] array, got {d.dtype} {d.shape}")
    n = d.shape[0]
    scratch = cp.empty(2 * n * 8, dtype=cp.uint32)
    out = cp.empty(32, dtype=cp.uint8)
    _fn("emb_tree_hash")((1,), (1024,), (d, np.uint64(n), scratch, out))
    return out.get().tobytes()


def fingerprint_device(rows: Any, chunk_rows: int) -> tuple[Any, Any, bytes | None]:
    """Rowprints (left on the device), chunk digests (on the device) and the tree hash of the
    digests (``None`` for no rows) of rows in GPU memory, on the current stream.

    The two kernels run one after the other: running the rowprints on a second stream beside
    the digests gained nothing on an H200 (7.78 ms against 7.82 for 4 GiB), since each kernel
    alone fills the multiprocessors' registers.
    """
    a = _device_rows(rows)
    rp = rowprints_device(a)
    dg = chunk_digests_device(a, chunk_rows)
    return rp, dg, tree_hash_device(dg) if dg.shape[0] else None


def fingerprint_chunks(rows: Any, chunk_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Rowprints and chunk digests of the same rows (one host-to-device copy for host input)."""
    a = _device_rows(rows)
    return rowprints_device(a).get(), chunk_digests_device(a, chunk_rows).get()


def _delta(kernel: str, data: Any, base: Any, itemsize: int, mode: int) -> np.ndarray:
    x, bw = cp.asarray(data).reshape(-1), cp.asarray(base).reshape(-1)
    if x.dtype != cp.uint8 or bw.dtype != cp.uint8:
        raise ValueError(f"delta inputs must be uint8 byte arrays, got {x.dtype} and {bw.dtype}")
    if x.size != bw.size or x.size % itemsize or itemsize not in (1, 2, 4, 8) or mode not in (2, 3):
        raise ValueError(f"delta of {x.size} and {bw.size} bytes, itemsize {itemsize}, mode {mode}: "
                         "sizes must be equal multiples of itemsize (1, 2, 4, 8), mode 2 or 3")
    x, bw = cp.ascontiguousarray(x), cp.ascontiguousarray(bw)
    n = x.size // itemsize
    out = cp.empty(x.size, dtype=cp.uint8)
    if n:  # one thread per 16 bytes (emb_delta_encode_range); at least one for the last words
        _fn(kernel)(_grid(max(1, x.size // 16)), (_THREADS,),
                    (x, bw, np.uint64(n), np.int32(itemsize), np.int32(mode), out))
    return out.get()


def delta_encode(new: Any, base: Any, itemsize: int, mode: int) -> np.ndarray:
    """Shuffled dense delta (mode 2 XOR, 3 sub-zigzag) of two equal-length byte arrays."""
    return _delta("emb_delta_encode", new, base, itemsize, mode)


def delta_decode(shuffled: Any, base: Any, itemsize: int, mode: int) -> np.ndarray:
    """Inverse of :func:`delta_encode`. ``shuffled`` is one byte array or, as for the CPU
    kernels, a sequence of its ``itemsize`` byte planes of equal length."""
    if isinstance(shuffled, (list, tuple)):
        planes = [cp.asarray(p).reshape(-1) for p in shuffled]
        if len(planes) != itemsize or any(p.size != planes[0].size or p.dtype != cp.uint8 for p in planes):
            raise ValueError(f"shuffled must be {itemsize} uint8 planes of equal length, got "
                             f"{[(str(p.dtype), p.size) for p in planes]}")
        shuffled = cp.concatenate(planes) if planes else cp.empty(0, dtype=cp.uint8)
    return _delta("emb_delta_decode", shuffled, base, itemsize, mode)


def rows_equal_device(a: Any, b: Any) -> Any:
    """Whether each row of ``a`` is bit-identical to the same row of ``b`` (CuPy uint8[N], 0/1).

    ``emb_rows_equal`` compares the flat arrays 16 bytes per thread and clears the flag of a
    row holding a difference, so it reads both inputs once, coalesced, at any row length.
    """
    x, y = _device_rows(a), _device_rows(b)
    if x.shape != y.shape:
        raise ValueError(f"row sets of shapes {x.shape} and {y.shape}")
    n, length = x.shape
    out = cp.ones(n, dtype=cp.uint8)
    if n and length:
        _fn("emb_rows_equal")(_grid(max(1, -(-(n * length) // 16))), (_THREADS,),
                              (x, y, np.uint64(n), np.uint64(length), out))
    return out


def rows_equal(a: Any, b: Any) -> np.ndarray:
    """Whether each row of ``a`` is bit-identical to the same row of ``b`` -> host bool[N]."""
    return rows_equal_device(a, b).get().astype(bool)


def row_stats_device(a: Any, b: Any, dtype_code: int) -> tuple[Any, Any, Any, Any]:
    """Per-row (l2, cosine, max_abs, max_ulp) of two row sets, left on the device; the same
    bits as :func:`.reference.row_stats` (explicit round-to-nearest operations, no FMA)."""
    if dtype_code not in (1, 2, 3, 4, 5, 6):
        raise ValueError(f"dtype_code must be 1..6, got {dtype_code}")
    x, y = _device_rows(a), _device_rows(b)
    if x.shape != y.shape:
        raise ValueError(f"row sets of shapes {x.shape} and {y.shape}")
    n, length = x.shape
    k = {1: 8, 2: 4, 3: 2, 4: 2, 5: 1, 6: 1}[dtype_code]
    if length % k:
        raise ValueError(f"row_bytes {length} is not a multiple of the itemsize {k}")
    out = [cp.empty(n, dtype=cp.float64) for _ in range(3)] + [cp.empty(n, dtype=cp.uint64)]
    if n:
        _fn("emb_row_stats")(_grid(n), (_THREADS,), (x, y, np.uint64(n), np.uint64(length),
                                                     np.int32(dtype_code), *out))
    return out[0], out[1], out[2], out[3]


def row_stats(a: Any, b: Any, dtype_code: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-row (l2, cosine, max_abs, max_ulp) -> host arrays (see :func:`row_stats_device`)."""
    l2, cos, mx, ulp = row_stats_device(a, b, dtype_code)
    return l2.get(), cos.get(), mx.get(), ulp.get()
