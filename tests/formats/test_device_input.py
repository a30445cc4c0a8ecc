"""Input in GPU memory: ``backend="auto"`` hashes it on the GPU when CuPy and a device are
present, and otherwise copies it to the host block by block (never silently, never whole).

The CPU-only tests use stand-ins that speak the protocols (``__cuda_array_interface__`` with
``copy_to_host`` like Numba device arrays; DLPack device type 2); the ``gpu`` tests use CuPy,
Numba and torch on a real device and skip visibly elsewhere.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import embfmt
from embfmt import backend as B
from embfmt.errors import BackendUnavailableError, InputError
from embfmt.canonical.matrix import as_matrix

from ._util import make


class FakeDeviceArray:
    """What a Numba device array looks like from the outside: a CUDA array interface and a
    ``copy_to_host`` (here backed by host memory, so no GPU is needed)."""

    def __init__(self, a: np.ndarray) -> None:
        self._a = a
        self.copies = 0

    @property
    def __cuda_array_interface__(self) -> dict[str, Any]:
        return {"shape": self._a.shape, "typestr": self._a.dtype.str, "data": (0, True),
                "version": 3, "strides": None}

    def __getitem__(self, key: Any) -> FakeDeviceArray:
        return FakeDeviceArray(self._a[key])

    def copy_to_host(self) -> np.ndarray:
        self.copies += 1
        return self._a.copy()


class CudaDLPack:
    """A CUDA DLPack producer with shape and dtype (like a JAX array on a GPU)."""

    def __init__(self, a: np.ndarray) -> None:
        self.shape, self.dtype = a.shape, a.dtype

    def __dlpack__(self, **kw: Any) -> Any:
        raise RuntimeError("no device here")

    def __dlpack_device__(self) -> tuple[int, int]:
        return (2, 0)


def test_auto_prefers_the_gpu_only_for_device_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EMBFMT_BACKEND", raising=False)
    monkeypatch.setattr(B, "gpu_status", lambda: (True, ""))
    assert B.resolve_name("auto", on_device=True) == "gpu"
    assert B.resolve_name("auto", on_device=False) == "cpu"
    assert B.resolve_name("cpu", on_device=True) == "cpu"
    monkeypatch.setenv("EMBFMT_BACKEND", "cpu")
    assert B.resolve_name("auto", on_device=True) == "cpu"
    monkeypatch.delenv("EMBFMT_BACKEND")
    monkeypatch.setattr(B, "gpu_status", lambda: (False, "CuPy is not importable"))
    assert B.resolve_name("auto", on_device=True) == "cpu"


@pytest.mark.parametrize("dtype", ["float32", "float16", "int8"])
def test_cuda_array_interface_without_cupy_goes_through_the_host(dtype: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(B, "gpu_status", lambda: (False, "CuPy is not importable"))
    x = make(dtype, 5000, 24)
    dev = FakeDeviceArray(x)
    m = as_matrix(dev)
    assert m.kind == "cai" and m.on_device and m.shape == x.shape and m.dtype.name == dtype
    fp = embfmt.fingerprint(dev)
    assert fp.backend == "cpu" and fp.root == embfmt.fingerprint(x).root


def test_cuda_dlpack_without_cupy_says_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(B, "gpu_status", lambda: (False, "CuPy is not importable"))
    m = as_matrix(CudaDLPack(np.zeros((4, 3), np.float32)))
    assert m.kind == "dlpack" and m.on_device and m.shape == (4, 3)
    with pytest.raises(BackendUnavailableError, match="CuPy is not importable"):
        m.device_rows()
    import importlib.util

    if importlib.util.find_spec("cupy") is not None:
        pytest.skip("CuPy is installed: the host copy would go through it")
    with pytest.raises(BackendUnavailableError, match="needs CuPy"):
        embfmt.fingerprint(CudaDLPack(np.zeros((4, 3), np.float32)))


def test_cuda_dlpack_without_shape_is_refused_clearly() -> None:
    class Bare:
        def __dlpack__(self, **kw: Any) -> Any:
            raise RuntimeError

        def __dlpack_device__(self) -> tuple[int, int]:
            return (2, 0)

    with pytest.raises(InputError, match="copy it to the CPU"):
        as_matrix(Bare())


# --- on a device --------------------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "int8", "uint8"])
@pytest.mark.parametrize("n", [0, 1, 2047, 2048, 2049, 30000])
def test_cupy_input_is_hashed_on_the_gpu(dtype: str, n: int) -> None:
    cp = pytest.importorskip("cupy")
    x = make(dtype, n, 128)
    fp = embfmt.fingerprint(cp.asarray(x))
    assert fp.backend == "gpu"
    want = embfmt.fingerprint(x, backend="cpu")
    assert fp.root == want.root and np.array_equal(fp.rowprints, want.rowprints)


@pytest.mark.gpu
def test_non_contiguous_cupy_view_and_env_override(monkeypatch: pytest.MonkeyPatch) -> None:
    cp = pytest.importorskip("cupy")
    x = make("float32", 9000, 64)
    g = cp.asarray(x)[::3, 1:60]
    want = embfmt.fingerprint(x[::3, 1:60], backend="cpu").root
    assert embfmt.fingerprint(g).root == want and embfmt.fingerprint(g).backend == "gpu"
    monkeypatch.setenv("EMBFMT_BACKEND", "cpu")
    fp = embfmt.fingerprint(g)
    assert fp.backend == "cpu" and fp.root == want


@pytest.mark.gpu
def test_numba_device_array_is_hashed_on_the_gpu() -> None:
    cuda = pytest.importorskip("numba.cuda")
    if not cuda.is_available():
        pytest.skip("numba sees no CUDA device")
    x = make("float32", 10000, 96)
    fp = embfmt.fingerprint(cuda.to_device(x))
    assert fp.backend == "gpu" and fp.root == embfmt.fingerprint(x, backend="cpu").root


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_torch_cuda_tensor_is_hashed_on_the_gpu(dtype: str) -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA device")
    t = torch.randn(7000, 80, dtype=getattr(torch, dtype), device="cuda")
    fp = embfmt.fingerprint(t)
    assert fp.backend == "gpu" and fp.root == embfmt.fingerprint(t.cpu(), backend="cpu").root
    assert embfmt.fingerprint(t.t().contiguous().t()).root == fp.root  # a strided view
