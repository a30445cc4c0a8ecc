"""In-memory inputs of as_matrix: torch (CPU, CUDA), CuPy, DLPack producers, __array__."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import embfmt
from embfmt.errors import InputError
from embfmt.canonical.matrix import as_matrix

from ._util import make, read_all, same_bits


class DLPackOnly:
    """A producer exposing only the DLPack protocol (no __array__), wrapping a numpy array."""

    def __init__(self, a: np.ndarray, device: tuple[int, int] = (1, 0)) -> None:
        self._a, self._device = a, device

    def __dlpack__(self, **kw: Any) -> Any:
        return self._a.__dlpack__(**kw)

    def __dlpack_device__(self) -> tuple[int, int]:
        return self._device


class ArrayOnly:
    def __init__(self, a: np.ndarray) -> None:
        self._a = a

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self._a


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "int8", "uint8"])
def test_dlpack_producer_zero_copy(dtype: str) -> None:
    x = make(dtype, 64, 9)
    m = as_matrix(DLPackOnly(x))
    assert m.shape == x.shape and m.dtype.name == dtype
    assert same_bits(read_all(m), x)
    assert np.shares_memory(next(m.blocks()), x)  # viewed in place, not copied
    assert embfmt.fingerprint(DLPackOnly(x)).root == embfmt.fingerprint(x).root


def test_dlpack_on_a_device_is_refused_clearly() -> None:
    with pytest.raises(InputError, match="copy it to the CPU"):
        as_matrix(DLPackOnly(np.zeros((2, 2), np.float32), device=(2, 0)))


def test_array_protocol_object() -> None:
    x = make("float32", 10, 3)
    assert same_bits(read_all(as_matrix(ArrayOnly(x))), x)


def test_not_a_matrix_lists_what_is_accepted() -> None:
    with pytest.raises(InputError, match="__dlpack__"):
        as_matrix(object())


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "bfloat16", "int8", "uint8"])
def test_torch_cpu_bit_exact(dtype: str) -> None:
    torch = pytest.importorskip("torch")
    x = make(dtype, 100, 6)
    if dtype == "bfloat16":
        t = torch.from_numpy(x.view(np.int16).copy()).view(torch.bfloat16)
    else:
        t = torch.from_numpy(x.copy())
    m = as_matrix(t)
    assert m.dtype.name == dtype and same_bits(read_all(m), x)
    assert same_bits(read_all(as_matrix(t.t().contiguous().t())), x)  # strided (Fortran) too


def test_torch_parameter_with_grad() -> None:
    torch = pytest.importorskip("torch")
    w = torch.nn.Embedding(20, 4).weight
    assert w.requires_grad
    assert same_bits(read_all(as_matrix(w)), w.detach().numpy())


@pytest.mark.gpu
def test_torch_cuda_block_by_block() -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA device")
    x = make("float32", 3000, 8)
    m = as_matrix(torch.from_numpy(x).cuda())
    assert same_bits(np.concatenate(list(m.blocks(rows_per_block=512))).view(np.float32).reshape(x.shape), x)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "int8", "uint8"])
def test_cupy_block_by_block(dtype: str) -> None:
    cp = pytest.importorskip("cupy")
    x = make(dtype, 3000, 8)
    g = cp.asarray(x)
    m = as_matrix(g)
    assert m.kind == "cupy" and m.dtype.name == dtype
    got = np.concatenate(list(m.blocks(rows_per_block=512)))
    assert same_bits(got.view(x.dtype).reshape(x.shape), x)
    assert embfmt.fingerprint(g).root == embfmt.fingerprint(x).root
