"""Canonical row access to anything embfmt accepts as a matrix (spec §2).

:func:`as_matrix` turns a numpy array, ``np.memmap``, h5py Dataset, torch tensor, CuPy array,
DLPack producer or any object with ``__array__`` into a :class:`Matrix`: shape, :class:`~embfmt.canonical.dtype.DType`, and canonical
row blocks, i.e. C-order little-endian bit patterns as a ``(rows, row_bytes)`` uint8 array.
A C-contiguous little-endian numpy input is served as zero-copy views; anything else (big
endian, Fortran order, strided, memory-mapped, HDF5) is converted one bounded block at a time,
so a table larger than RAM is never loaded whole.
"""

from __future__ import annotations

import ctypes
import mmap
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np

from .. import _layout as L
from .chunking import chunk_rows_for
from .dtype import DType, dtype_of
from ..errors import BackendUnavailableError, ErrorKind, FormatError, InputError
from ..backend import gpu_status

__all__ = ["Matrix", "as_matrix", "canonical_rows", "check_shape"]

# Converted (copied) blocks are at most this many bytes: big enough that per-block Python
# overhead vanishes, small enough to keep peak memory bounded (64 MiB = 64 chunks of 1 MiB).
BLOCK_BYTES = 64 << 20


def check_shape(n_rows: int, dim: int, dt: DType, what: str = "matrix") -> None:
    """Validate N and D against the spec limits (spec §9), with checked arithmetic."""
    if dim <= 0:
        raise InputError(f"{what} has D = {dim} columns; embeddings need D >= 1",
                         ErrorKind.ZERO_DIM)
    if n_rows < 0:
        raise InputError(f"{what} has negative row count {n_rows}", ErrorKind.BAD_ARGUMENT)
    if n_rows > L.MAX_ROWS or dim > L.MAX_DIM or n_rows * dim * dt.itemsize > L.MAX_TOTAL_BYTES:
        raise InputError(f"{what} of shape ({n_rows}, {dim}) {dt.name} exceeds the format limits "
                         f"(N <= {L.MAX_ROWS}, D <= {L.MAX_DIM}, N*D*itemsize <= 2**62)",
                         ErrorKind.TOO_LARGE)


def canonical_rows(a: np.ndarray, dt: DType) -> np.ndarray:
    """Return the canonical bytes of a 2-D numpy block as a C-contiguous ``(n, row_bytes)`` uint8.

    Zero-copy when ``a`` is already C-contiguous little-endian; otherwise one exact integer copy
    (byte swapping through the unsigned view never touches float values, so NaN payloads and
    -0.0 survive).
    """
    if a.dtype.itemsize != dt.itemsize:
        raise InputError(f"block dtype {a.dtype} does not match {dt.name}", ErrorKind.DTYPE_MISMATCH)
    n, d = a.shape
    # A same-itemsize view is legal for any strides, so reinterpret first, then let one
    # integer copy fix order and layout together.
    big = a.dtype.byteorder == ">" or (a.dtype.byteorder == "=" and sys.byteorder == "big")
    bits = a.view(np.dtype(f"{'>' if big else '<'}u{dt.itemsize}"))
    out = np.ascontiguousarray(bits, dtype=dt.bits)
    return out.view(np.uint8).reshape(n, d * dt.itemsize)


class Matrix:
    """A read-only, canonical view of a 2-D input.

    Attributes
    ----------
    n_rows, dim : int
        N and D.
    dtype : DType
        The element type.
    row_bytes : int
        ``dim * dtype.itemsize``.
    """

    def __init__(self, obj: Any, n_rows: int, dim: int, dt: DType, *, kind: str,
                 zero_copy: np.ndarray | None = None) -> None:
        check_shape(n_rows, dim, dt)
        self.obj = obj
        self.n_rows = int(n_rows)
        self.dim = int(dim)
        self.dtype = dt
        self.row_bytes = self.dim * dt.itemsize
        self.kind = kind
        self._zero_copy = zero_copy

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_rows, self.dim)

    @property
    def zero_copy(self) -> np.ndarray | None:
        """The rows as one (n_rows, row_bytes) uint8 view of the caller's memory, when the input
        allows it without a copy (C-contiguous host memory); None otherwise. Read-only use."""
        return self._zero_copy

    @property
    def on_device(self) -> bool:
        """Whether the rows live in GPU memory (CuPy, torch CUDA, ``__cuda_array_interface__``
        or a CUDA DLPack producer): ``backend="auto"`` then hashes them where they are."""
        if self.kind in ("cupy", "cai", "dlpack"):
            return True
        return self.kind == "torch" and self.obj.device.type == "cuda"

    def device_rows(self) -> Any:
        """The canonical rows as a C-contiguous ``(N, row_bytes)`` uint8 CuPy array, without
        leaving the device: a view of the input when it is C-contiguous, else one device copy.
        Imports CuPy (raises :class:`~embfmt.errors.BackendUnavailableError` without it)."""
        ok, why = gpu_status()
        if not ok:
            raise BackendUnavailableError(f"cannot hash {self.kind} rows on the GPU: {why}")
        import cupy as cp

        x = self.obj
        if self.kind == "torch":
            t = x.detach()
            if not t.is_contiguous():
                t = t.contiguous()
            if self.dtype.name == "bfloat16":  # CuPy has no bfloat16: take the bit patterns
                import torch

                t = t.view(torch.int16)
            a = cp.from_dlpack(t)
        elif self.kind == "dlpack":
            a = cp.from_dlpack(x)
        else:  # cupy, or anything with __cuda_array_interface__ (zero-copy wrap)
            a = cp.asarray(x)
        if a.dtype.byteorder == ">":
            raise InputError(f"{self.kind} input is big-endian on the device; embfmt hashes "
                             "little-endian bit patterns", ErrorKind.UNSUPPORTED_DTYPE)
        a = cp.ascontiguousarray(a)
        if self.n_rows * self.dim == 0:
            return cp.zeros((self.n_rows, self.row_bytes), dtype=cp.uint8)
        return a.view(cp.uint8).reshape(self.n_rows, self.row_bytes)

    @property
    def nbytes(self) -> int:
        return self.n_rows * self.row_bytes

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Canonical bytes of rows ``[start, stop)`` as a ``(stop-start, row_bytes)`` uint8 array."""
        if self._zero_copy is not None:
            return self._zero_copy[start:stop]
        if self.kind in ("cai", "dlpack"):
            return canonical_rows(self._device_block_to_host(start, stop), self.dtype)
        try:
            block = self.obj[start:stop]
        except OSError as e:  # h5py: a corrupt or unreadable chunk of the dataset
            if self.kind != "h5py":
                raise
            where = f"{getattr(getattr(self.obj, 'file', None), 'filename', '?')}:{self.obj.name}"
            raise FormatError(f"{where}: cannot read rows [{start}, {stop}) ({e})",
                              ErrorKind.BAD_FILE) from None
        if self.kind == "torch":
            block = _torch_to_numpy(block)
        elif self.kind == "cupy":
            block = block.get()  # one bounded device-to-host copy per block
        return canonical_rows(np.asarray(block), self.dtype)

    def _device_block_to_host(self, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)`` of a ``__cuda_array_interface__`` or CUDA DLPack input, copied
        to the host: through its own ``copy_to_host`` (Numba device arrays) or CuPy."""
        x = self.obj
        if self.kind == "cai" and hasattr(x, "copy_to_host"):
            return np.asarray(x[start:stop].copy_to_host())
        try:
            import cupy as cp
        except Exception as e:
            raise BackendUnavailableError(
                f"{_describe(x)} lives in GPU memory and copying it to the host needs CuPy "
                f"({type(e).__name__}: {e}); install embfmt[gpu] or pass a host array") from None
        a = cp.asarray(x) if self.kind == "cai" else cp.from_dlpack(x)
        host: np.ndarray = a[start:stop].get()
        return host

    def blocks(self, rows_per_block: int | None = None) -> Iterator[np.ndarray]:
        """Yield consecutive canonical row blocks covering the whole matrix.

        ``rows_per_block`` defaults to a multiple of the canonical chunk size near
        :data:`BLOCK_BYTES`, so blocks never split a chunk.
        """
        if self._zero_copy is not None and rows_per_block is None:
            yield self._zero_copy
            return
        if rows_per_block is None:
            cr = chunk_rows_for(self.dtype, self.dim)
            rows_per_block = cr * max(1, BLOCK_BYTES // max(1, cr * self.row_bytes))
        mapped = self._mapped_rows()
        older: np.ndarray | None = None
        for start in range(0, self.n_rows, rows_per_block):
            stop = min(self.n_rows, start + rows_per_block)
            if mapped is None:
                yield self.rows(start, stop)
                continue
            block = mapped[start:stop]
            yield block  # zero-copy: a view of the file mapping
            # Consumers may hold one block back (to flag the last one), so the pages released
            # now are those of the block before this one.
            if older is not None:
                _release_pages(older)
            older = block
        if older is not None:
            _release_pages(older)

    def _mapped_rows(self) -> np.ndarray | None:
        """Canonical rows of a C-contiguous little-endian ``np.memmap`` as a view of the
        mapping, else None. Shared mappings only: see :func:`_release_pages`."""
        x = self.obj
        if not isinstance(x, np.memmap) or self.nbytes == 0 or not x.flags.c_contiguous:
            return None
        if getattr(x, "mode", "c") not in ("r", "r+", "w+"):  # np.memmap normalizes mode names
            return None  # copy-on-write ("c"): dropping pages would discard in-memory edits
        if not (x.dtype.byteorder in "<|" or (x.dtype.byteorder == "=" and np.little_endian)):
            return None
        return np.asarray(x).view(np.uint8).reshape(self.n_rows, self.row_bytes)


_PAGE = mmap.PAGESIZE


def _release_pages(block: np.ndarray) -> None:
    """Drop the pages of a consumed block of a read-only file mapping from this process's
    resident set (``madvise(MADV_DONTNEED)``). Without it, streaming a 4 GiB ``.npy`` leaves
    all 4 GiB counted as resident until the mapping closes. Safe for file-backed mappings:
    a later access faults the same bytes back in from the file (or the page cache).
    Best effort: a no-op where madvise is unavailable."""
    if _libc_madvise is None or block.nbytes < _PAGE:
        return
    addr = block.ctypes.data
    lo = -(-addr // _PAGE) * _PAGE  # only whole pages inside the block: its neighbours may
    hi = (addr + block.nbytes) // _PAGE * _PAGE  # still be in use by the next block
    if hi > lo:
        _libc_madvise(ctypes.c_void_p(lo), ctypes.c_size_t(hi - lo), _MADV_DONTNEED)


def _load_madvise() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.madvise
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


_MADV_DONTNEED = 4  # <sys/mman.h> on Linux (all architectures)
_libc_madvise = _load_madvise()


def _torch_to_numpy(t: Any) -> np.ndarray:
    t = t.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    if str(t.dtype) == "torch.bfloat16":
        import ml_dtypes
        import torch

        bf16: np.ndarray = t.contiguous().view(torch.int16).numpy().view(ml_dtypes.bfloat16)
        return bf16
    host: np.ndarray = t.numpy()
    return host


def _describe(x: Any) -> str:
    return f"{type(x).__module__}.{type(x).__qualname__}"


_KDL_CUDA = 2  # DLPack device type of CUDA device memory


def _dlpack_device_type(x: Any) -> int | None:
    """The DLPack device type ``x`` reports, or None (not a DLPack producer, or it failed)."""
    if not hasattr(x, "__dlpack_device__") or not hasattr(x, "__dlpack__"):
        return None
    try:
        return int(x.__dlpack_device__()[0])
    except (AttributeError, TypeError, ValueError, RuntimeError):
        return None


def _from_dlpack(x: Any) -> np.ndarray | None:
    """A zero-copy numpy view of a host DLPack producer, or None when numpy cannot take it
    (then ``__array__``, if any, is tried)."""
    try:
        dev = x.__dlpack_device__()[0] if hasattr(x, "__dlpack_device__") else 1
    except (AttributeError, TypeError, ValueError, RuntimeError):  # fall back to __array__
        dev = 1
    if int(dev) not in (1, 3):  # kDLCPU, kDLCUDAHost: numpy can read it in place
        if hasattr(x, "__array__"):
            return None
        raise InputError(f"{_describe(x)} lives on DLPack device type {int(dev)}, not host "
                         "memory; copy it to the CPU first (or pass a torch/CuPy array, which "
                         "embfmt copies block by block)", ErrorKind.NOT_A_MATRIX)
    try:
        return np.from_dlpack(x)
    except (TypeError, ValueError, BufferError, RuntimeError, AttributeError) as e:
        if hasattr(x, "__array__"):
            return None
        raise InputError(f"cannot read {_describe(x)} through DLPack ({e})",
                         ErrorKind.UNSUPPORTED_DTYPE) from None


def as_matrix(x: Any) -> Matrix:
    """Wrap ``x`` as a canonical :class:`Matrix`, validating shape and dtype.

    Accepts numpy arrays and memmaps, h5py Datasets (read block by block), torch tensors on
    any device, CuPy arrays, objects with ``__cuda_array_interface__`` and CUDA DLPack
    producers (hashed in place by the GPU backend, else copied to the host block by block,
    never whole), objects with ``__dlpack__`` on the host (viewed in place through
    ``np.from_dlpack``) and any object with ``__array__``. Raises
    :class:`~embfmt.errors.InputError` with a message that says what was wrong and what is
    accepted.

    Examples
    --------
    >>> import numpy as np
    >>> m = as_matrix(np.zeros((3, 4), dtype=">f4"))
    >>> m.shape, m.dtype.name, m.row_bytes
    ((3, 4), 'float32', 16)
    """
    if isinstance(x, Matrix):
        return x
    mod = type(x).__module__.split(".")[0]
    if mod == "h5py":
        shape, npdt, kind = tuple(x.shape), x.dtype, "h5py"
    elif mod == "torch":
        shape, kind = tuple(x.shape), "torch"
        npdt = _torch_dtype(x)
    elif isinstance(x, np.ndarray):
        shape, npdt, kind = x.shape, x.dtype, "numpy"
    elif mod == "cupy":  # checked by module name so that cupy is never imported here
        shape, npdt, kind = tuple(x.shape), np.dtype(x.dtype), "cupy"
    elif hasattr(x, "__cuda_array_interface__"):  # Numba device arrays, PyCUDA, ...
        iface = x.__cuda_array_interface__
        shape, npdt, kind = tuple(iface["shape"]), np.dtype(iface["typestr"]), "cai"
    elif _dlpack_device_type(x) == _KDL_CUDA:  # e.g. JAX arrays on a GPU
        try:
            shape, npdt, kind = tuple(x.shape), np.dtype(x.dtype), "dlpack"
        except (AttributeError, TypeError):
            raise InputError(f"{_describe(x)} lives in CUDA memory (DLPack) without a numpy "
                             "shape and dtype; pass a CuPy array or torch tensor, or copy it to "
                             "the CPU first", ErrorKind.NOT_A_MATRIX) from None
    elif hasattr(x, "__dlpack__") and (arr := _from_dlpack(x)) is not None:
        x = arr
        shape, npdt, kind = x.shape, x.dtype, "numpy"
    elif hasattr(x, "__array__"):
        x = np.asarray(x)
        shape, npdt, kind = x.shape, x.dtype, "numpy"
    else:
        raise InputError(f"cannot read a matrix from {_describe(x)}; accepted: numpy arrays, "
                         "np.memmap, h5py Datasets, torch tensors, CuPy arrays, objects with "
                         "__dlpack__ or __array__", ErrorKind.NOT_A_MATRIX)
    if len(shape) != 2:
        raise InputError(f"expected a 2-D matrix (rows x dim), got {len(shape)}-D shape {shape}",
                         ErrorKind.NOT_A_MATRIX)
    dt = dtype_of(npdt)
    n, d = int(shape[0]), int(shape[1])
    zero_copy = None
    if kind == "numpy" and not isinstance(x, np.memmap):
        assert isinstance(x, np.ndarray)
        if x.flags.c_contiguous and (x.dtype.byteorder in "<|" or (x.dtype.byteorder == "=" and np.little_endian)):
            zero_copy = x.view(np.uint8).reshape(n, d * dt.itemsize) if n * d else np.zeros((n, d * dt.itemsize), np.uint8)
    return Matrix(x, n, d, dt, kind=kind, zero_copy=zero_copy)


def _torch_dtype(t: Any) -> np.dtype:
    name = str(t.dtype).removeprefix("torch.")
    if name == "bfloat16":
        import ml_dtypes

        bf16: np.dtype = np.dtype(ml_dtypes.bfloat16)
        return bf16
    try:
        return np.dtype(name)
    except TypeError:
        raise InputError(f"unsupported torch dtype {t.dtype}", ErrorKind.UNSUPPORTED_DTYPE) from None
