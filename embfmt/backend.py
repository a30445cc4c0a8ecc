"""Kernel backends: ``reference`` (numpy oracle), ``cpu`` (Numba + official blake3), ``gpu`` (CuPy).

A backend is a named set of kernels with the same names and meanings in every implementation.
Importing this module imports neither Numba nor CuPy: each backend's kernel module is loaded the
first time that backend is asked for.

Selection: ``get_backend("auto")`` reads ``EMBFMT_BACKEND`` (``auto``, ``cpu``, ``gpu``,
``reference``) and otherwise picks ``cpu`` for host memory; :func:`resolve_name` with
``on_device=True`` picks ``gpu`` for input already in GPU memory when CuPy and a device are
present. Asking for ``"gpu"`` where CuPy or a device is missing raises
:class:`~embfmt.errors.BackendUnavailableError` naming what is missing; embfmt never catches a
GPU failure to run the CPU path instead.

Examples
--------
>>> get_backend("reference").name
'reference'
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, cast

import numpy as np

from . import progress
from .errors import BackendUnavailableError, InputError

__all__ = ["Backend", "Kernels", "CpuKernels", "get_backend", "kernels", "cpu_kernels", "available_backends",
           "gpu_status"]

BACKEND_NAMES = ("auto", "cpu", "gpu", "reference")
TASKS_PER_WORKER = 8


class Kernels(Protocol):
    """The array kernels of one implementation (``kernels/reference.py``, ``kernels/cpu.py``,
    ``kernels/gpu.py``: the same names and meanings, bit for bit). Modules that hash, encode,
    decode or compare rows receive an object of this type; :func:`kernels` chooses it."""

    def rowprints(self, rows: np.ndarray) -> np.ndarray:
        """XXH3-64 (seed 0) of each row of a ``(N, row_bytes)`` uint8 array -> uint64[N]."""

    def chunk_digests(self, rows: np.ndarray, chunk_rows: int) -> np.ndarray:
        """BLAKE3-256 of each ``chunk_rows``-row block -> uint8[n_chunks, 32]."""

    def shuffle(self, data: np.ndarray, itemsize: int) -> np.ndarray:
        """Byte planes of little-endian words (plane k holds byte k of every word)."""

    def unshuffle(self, data: np.ndarray | Sequence[np.ndarray], itemsize: int,
                  out: np.ndarray | None = None) -> np.ndarray:
        """The inverse of :meth:`shuffle`."""

    def delta_encode(self, new: np.ndarray, base: np.ndarray, itemsize: int, mode: int) -> np.ndarray:
        """Shuffled delta of ``new`` against ``base`` (spec §13.4: XOR or sub-zigzag)."""

    def delta_decode(self, shuffled: np.ndarray | Sequence[np.ndarray], base: np.ndarray, itemsize: int,
                     mode: int, out: np.ndarray | None = None) -> np.ndarray:
        """The inverse of :meth:`delta_encode`."""

    def rows_equal(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """bool[N]: row i of ``a`` and ``b`` has the same bytes."""

    def row_stats(self, a: np.ndarray, b: np.ndarray,
                  dtype_code: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per-row drift of ``b`` against ``a``: l2, cosine, max_abs, ulp (spec §16.1)."""


class CpuKernels(Kernels, Protocol):
    """The CPU kernels' extra entry points, for callers that run their own thread pool."""

    def rowprints_into(self, rows: np.ndarray, out: np.ndarray) -> None: ...

    def fingerprint_chunk_into(self, rows: np.ndarray, out: np.ndarray) -> bytes: ...

    def rows_equal_into(self, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None: ...


def cpu_kernels() -> CpuKernels:
    """The Numba CPU kernel module (kernels/cpu.py), imported on first use. Each kernel compiles
    on its first call where Numba's on-disk cache has none; with progress output on, the first
    such compile of the process is announced on the terminal (it takes seconds)."""
    from ._kernels import cpu  # lazy: Numba, and the kernels it compiles

    progress.watch_kernel_compiles()
    return cast(CpuKernels, cpu)


def kernels(name: str | None = "auto") -> Kernels:
    """The kernel set of backend ``name`` (``auto``, ``cpu``, ``gpu``, ``reference``): the one
    place that chooses one. ``gpu`` is self-checked first (:class:`GpuBackend`); its kernels
    then run on the device."""
    resolved = resolve_name(name)
    if resolved == "reference":
        from ._kernels import reference  # lazy: each kernel set loads on first use

        return cast(Kernels, reference)
    if resolved == "gpu":
        get_backend("gpu")  # raises BackendUnavailableError with the reason (self-checked)
        from ._kernels import gpu  # lazy: CuPy

        return cast(Kernels, gpu)
    return cpu_kernels()


class LazyCpuKernels:
    """The CPU kernels, imported (and their Numba code loaded) on the first attribute access:
    a repository is opened by log, show, tag, branch and reset, which never need them."""

    def __getattr__(self, name: str) -> Any:
        return getattr(cpu_kernels(), name)


def map_runs(pool: ThreadPoolExecutor | None, run: Callable[[int, int], None], n: int, workers: int) -> None:
    """Call ``run(first, stop)`` over items ``[0, n)``: in the caller's thread without a pool
    or for at most one item, else on ``pool`` in contiguous runs, TASKS_PER_WORKER per
    worker. One task per ~1 MiB chunk spends ~15% of a fingerprint in executor hand-offs
    (measured: 0.57x vs 0.67x of blake3 AUTO; a checkout gains ~7% from runs), while too few
    tasks leave a core idle at the end. The first worker exception is re-raised here.
    """
    if pool is None or n <= 1:
        run(0, n)
        return
    n_tasks = min(n, workers * TASKS_PER_WORKER)
    edges = [n * k // n_tasks for k in range(n_tasks + 1)]
    list(pool.map(run, edges[:-1], edges[1:]))  # list() re-raises in the caller's thread


class Backend(Protocol):
    """The kernel interface every backend implements."""

    name: str

    def rowprints(self, rows: np.ndarray) -> np.ndarray:
        """XXH3-64 (seed 0) of each row of a ``(N, row_bytes)`` uint8 array -> uint64[N]."""

    def chunk_digests(self, rows: np.ndarray, chunk_rows: int) -> np.ndarray:
        """BLAKE3-256 of each ``chunk_rows``-row block -> uint8[n_chunks, 32]."""

    def fingerprint_chunks(self, rows: np.ndarray, chunk_rows: int) -> tuple[np.ndarray, np.ndarray]:
        """Both of the above in one pass over the data."""


class ReferenceBackend:
    """The pure-numpy oracle (slow, readable; every other backend must match it bit for bit)."""

    name = "reference"

    def __init__(self) -> None:
        from ._kernels import reference  # lazy: each kernel set loads on first use

        self._k = reference

    def rowprints(self, rows: np.ndarray) -> np.ndarray:
        out: np.ndarray = self._k.rowprints(rows)
        return out

    def chunk_digests(self, rows: np.ndarray, chunk_rows: int) -> np.ndarray:
        out: np.ndarray = self._k.chunk_digests(rows, chunk_rows)
        return out

    def fingerprint_chunks(self, rows: np.ndarray, chunk_rows: int) -> tuple[np.ndarray, np.ndarray]:
        return self._k.rowprints(rows), self._k.chunk_digests(rows, chunk_rows)


def _threads() -> int:
    env = os.environ.get("EMBFMT_THREADS")
    if env:
        try:
            n = int(env)
        except ValueError:
            raise InputError(f"EMBFMT_THREADS={env!r} is not an integer") from None
        return max(1, n)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


class CpuBackend:
    """Numba rowprints and the official multithreaded ``blake3`` package.

    ``fingerprint_chunks`` hands runs of whole chunks to a thread pool: each chunk is hashed
    with BLAKE3 (which releases the GIL) in 512 KiB pieces, each piece's rowprints computed by
    a ``nogil`` Numba kernel right after, while the bytes are still in the core's L2. Each
    chunk's results go to fixed slots, so the output never depends on scheduling.
    """

    name = "cpu"

    def __init__(self) -> None:
        self._k = cpu_kernels()
        self._workers = _threads()
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="embfmt-cpu")
            return self._pool

    def rowprints(self, rows: np.ndarray) -> np.ndarray:
        return self._k.rowprints(rows)

    def chunk_digests(self, rows: np.ndarray, chunk_rows: int) -> np.ndarray:
        return self._k.chunk_digests(rows, chunk_rows)

    def fingerprint_chunks(self, rows: np.ndarray, chunk_rows: int) -> tuple[np.ndarray, np.ndarray]:
        n = rows.shape[0]
        n_chunks = -(-n // chunk_rows)
        rp = np.empty(n, dtype=np.uint64)
        dg = np.empty((n_chunks, 32), dtype=np.uint8)
        one = self._k.fingerprint_chunk_into

        def run(first: int, stop: int) -> None:
            for c in range(first, stop):
                sl = slice(c * chunk_rows, (c + 1) * chunk_rows)
                dg[c] = np.frombuffer(one(rows[sl], rp[sl]), dtype=np.uint8)

        pool = None if n_chunks <= 1 or self._workers == 1 else self._executor()
        map_runs(pool, run, n_chunks, self._workers)
        return rp, dg


class GpuBackend:
    """CuPy kernels (``kernels/gpu.py``, CUDA sources in ``kernels/cuda/``).

    Before first use the kernels run on the device on inputs covering every XXH3 length class
    and a multi-level BLAKE3 tree, and must match the numpy oracle bit for bit: a device, driver
    or compiler that disagrees is refused (:class:`BackendUnavailableError`), never used and
    never silently replaced by the CPU.
    """

    name = "gpu"

    def __init__(self) -> None:
        try:
            from ._kernels import gpu  # lazy: CuPy
        except Exception as e:  # a CuPy that imports but cannot load its CUDA libraries
            raise BackendUnavailableError(
                f"backend 'gpu' is unavailable: cannot load the GPU kernels ({type(e).__name__}: {e})") from None
        self._k = gpu
        try:
            self._self_check()
        except BackendUnavailableError:
            raise
        except Exception as e:  # NVRTC compile errors, CUDA launch errors
            raise BackendUnavailableError(
                f"backend 'gpu' is unavailable: the GPU kernels failed to run ({type(e).__name__}: {e})") from None

    def _self_check(self) -> None:
        from ._kernels import reference  # lazy: each kernel set loads on first use

        def refuse(what: str) -> BackendUnavailableError:
            return BackendUnavailableError(f"backend 'gpu' is unavailable: its {what} differ from the "
                                           "reference on this device; refusing to use it")

        rng = np.random.default_rng(0)
        # Every XXH3 length class; 256, 1040 and 2064 (over 240 bytes, multiples of 16) take the
        # staged kernel, whose 128-row tiles 300 rows leave partial.
        for length in (0, 2, 7, 15, 100, 200, 241, 256, 1040, 1500, 2064):
            rows = rng.integers(0, 256, (300, length), dtype=np.uint8)
            if not np.array_equal(self._k.rowprints(rows), reference.rowprints(rows)):
                raise refuse(f"rowprints of {length}-byte rows")
        rows = rng.integers(0, 256, (301, 700), dtype=np.uint8)  # 3 full chunks + 1 row; 69 KiB trees
        if not np.array_equal(self._k.chunk_digests(rows, 100), reference.chunk_digests(rows, 100)):
            raise refuse("BLAKE3 chunk digests")
        # The Merkle tree hash (tree_hash_device) is checked by the layer that owns the tree,
        # before its first use: canonical.fingerprint (merkle.check_device_tree_hash).
        # Changed rows: one flipped byte per changed row, some on 16-byte word boundaries.
        a = rng.integers(0, 256, (300, 520), dtype=np.uint8)
        b = a.copy()
        b[::3, 0] ^= 1
        b[1::7, 15] ^= 0x80
        b[2::11, 519] ^= 2
        if not np.array_equal(self._k.rows_equal(a, b), reference.rows_equal(a, b)):
            raise refuse("changed rows")
        # Dense deltas: 16-byte groups and a tail of single words, both modes.
        new, base = a.reshape(-1)[:4099 * 4], b.reshape(-1)[:4099 * 4]
        for itemsize, mode in ((4, 2), (2, 3)):
            enc = self._k.delta_encode(new, base, itemsize, mode)
            if (not np.array_equal(enc, reference.delta_encode(new, base, itemsize, mode))
                    or not np.array_equal(self._k.delta_decode(enc, base, itemsize, mode), new)):
                raise refuse(f"dense deltas (itemsize {itemsize}, mode {mode})")
        # Row statistics: float64 arithmetic must round like the host (no FMA contraction), and
        # float32 subnormals must not be flushed to zero.
        a = rng.standard_normal((64, 24)).astype(np.float32)
        b = rng.standard_normal((64, 24)).astype(np.float32) * np.float32(3)
        a[0] = (rng.integers(1, 1 << 23, 24, dtype=np.uint32) | np.uint32(1 << 31)).view(np.float32)  # subnormals
        b[0] = 0.0
        got = self._k.row_stats(a.view(np.uint8), b.view(np.uint8), 2)
        want = reference.row_stats(a.view(np.uint8), b.view(np.uint8), 2)
        if not all(np.array_equal(np.asarray(g).view(np.uint64), np.asarray(w).view(np.uint64))
                   for g, w in zip(got, want)):
            raise refuse("row statistics")

    def rowprints(self, rows: Any) -> np.ndarray:
        out: np.ndarray = self._k.rowprints(rows)
        return out

    def chunk_digests(self, rows: Any, chunk_rows: int) -> np.ndarray:
        out: np.ndarray = self._k.chunk_digests(rows, chunk_rows)
        return out

    def fingerprint_chunks(self, rows: Any, chunk_rows: int) -> tuple[np.ndarray, np.ndarray]:
        out: tuple[np.ndarray, np.ndarray] = self._k.fingerprint_chunks(rows, chunk_rows)
        return out

    def tree_hash_device(self, digests: Any) -> bytes:
        """The Merkle tree hash of ``digests`` (``(n, 32)`` uint8, n >= 1), computed on the
        device: see ``kernels/gpu.py`` ``tree_hash_device``."""
        out: bytes = self._k.tree_hash_device(digests)
        return out

    def fingerprint_device(self, rows: Any, chunk_rows: int) -> tuple[Any, Any, bytes | None]:
        """Rowprints and digests left on the device, and their Merkle tree hash (``None`` for
        no rows): see ``kernels/gpu.py`` ``fingerprint_device``."""
        out: tuple[Any, Any, bytes | None] = self._k.fingerprint_device(rows, chunk_rows)
        return out


@functools.lru_cache(maxsize=1)
def gpu_status() -> tuple[bool, str]:
    """``(available, reason)``: CuPy imports *and* at least one CUDA device is present.

    Probed once per process and cached. Importing CuPy happens here, never at ``import embfmt``.
    """
    try:
        import cupy  # noqa: F401
    except Exception as e:  # ImportError, or a broken CUDA install raising at import
        return False, f"CuPy is not importable ({type(e).__name__}: {e}); install embfmt[gpu]"
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:
        return False, f"CuPy found no usable CUDA device ({type(e).__name__}: {e})"
    if n <= 0:
        return False, "CuPy is installed but no CUDA device is present"
    return True, f"{n} CUDA device(s)"


@functools.lru_cache(maxsize=None)
def _make(name: str) -> Any:
    if name == "reference":
        return ReferenceBackend()
    if name == "cpu":
        return CpuBackend()
    if name == "gpu":
        ok, why = gpu_status()
        if not ok:
            raise BackendUnavailableError(f"backend 'gpu' is unavailable: {why}")
        return GpuBackend()
    raise InputError(f"unknown backend {name!r}; choose one of {', '.join(BACKEND_NAMES)}")


def resolve_name(name: str | None = "auto", *, on_device: bool = False) -> str:
    """Turn ``"auto"``/``None`` into a concrete backend name (``EMBFMT_BACKEND`` first).

    ``auto`` is ``gpu`` for input in GPU memory (``on_device``) when CuPy and a device are
    available, else ``cpu``: host input never goes to the GPU unasked, and without CuPy device
    input is copied to the host. A GPU that is available but fails later raises; it is never
    replaced by the CPU.

    Examples
    --------
    >>> resolve_name("cpu"), resolve_name("reference")
    ('cpu', 'reference')
    """
    if name is None or name == "auto":
        name = os.environ.get("EMBFMT_BACKEND", "auto") or "auto"
        if name == "auto":
            return "gpu" if on_device and gpu_status()[0] else "cpu"
    if name not in BACKEND_NAMES:
        raise InputError(f"unknown backend {name!r}; choose one of {', '.join(BACKEND_NAMES)}")
    return name


def get_backend(name: str | None = "auto") -> Backend:
    """Return the backend called ``name`` (``auto``, ``cpu``, ``gpu`` or ``reference``)."""
    backend: Backend = _make(resolve_name(name))
    return backend


def available_backends() -> list[str]:
    """Names of the backends that can run in this process (``reference`` and ``cpu`` always)."""
    names = ["reference", "cpu"]
    if gpu_status()[0]:
        names.append("gpu")
    return names
