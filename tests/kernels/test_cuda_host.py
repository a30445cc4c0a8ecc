"""The CUDA cores (kernels/cuda/embfmt_core.cuh, __host__ __device__) built for the host with
nvcc and checked bit for bit against the numpy oracle and the official xxhash / blake3
packages; the device kernels are compiled for a current GPU architecture. No GPU needed:
skipped visibly where nvcc is not installed.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess

import blake3
import numpy as np
import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from embfmt._kernels import reference

CUDA_DIR = os.path.join(os.path.dirname(reference.__file__), "cuda")
NVCC = shutil.which("nvcc")
pytestmark = pytest.mark.skipif(NVCC is None, reason="nvcc (CUDA toolkit) not installed: CUDA sources not compiled")

u8p = ctypes.POINTER(ctypes.c_uint8)


def _ptr(a: np.ndarray, t=u8p):  # type: ignore[no-untyped-def]
    return a.ctypes.data_as(t)


@pytest.fixture(scope="module")
def lib(tmp_path_factory):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("cuda") / "embfmt_host.so"
    proc = subprocess.run([NVCC, "-shared", "-Xcompiler", "-fPIC", "-O2", "-o", str(out),
                           os.path.join(CUDA_DIR, "host_check.cu")], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    return ctypes.CDLL(str(out))


def test_device_kernels_compile(tmp_path):
    proc = subprocess.run([NVCC, "-c", "-arch=sm_90", "-O2", "-Werror", "all-warnings", "-o",
                           str(tmp_path / "k.o"), os.path.join(CUDA_DIR, "embfmt_kernels.cu")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr


def _rowprints(lib, rows: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    rows = np.ascontiguousarray(rows, dtype=np.uint8)
    out = np.empty(rows.shape[0], np.uint64)
    lib.emb_host_rowprints(_ptr(rows), ctypes.c_uint64(rows.shape[0]), ctypes.c_uint64(rows.shape[1]),
                           _ptr(out, ctypes.POINTER(ctypes.c_uint64)))
    return out


# Every XXH3 length class (0, 1-3, 4-8, 9-16, 17-128, 129-240, > 240) and its edges, block
# boundaries of the long path (1024 bytes) and rows over 1 KiB.
LENGTHS = sorted({*range(0, 260), 511, 512, 513, 1023, 1024, 1025, 1088, 2047, 2048, 2049, 4100})


@pytest.mark.parametrize("length", LENGTHS)
def test_rowprints_match_xxhash(lib, length):
    rows = np.random.default_rng(length).integers(0, 256, (5, length), dtype=np.uint8)
    got = _rowprints(lib, rows)
    assert [int(v) for v in got] == [xxhash.xxh3_64_intdigest(r.tobytes()) for r in rows]
    assert np.array_equal(got, reference.rowprints(rows))


@pytest.mark.parametrize("length", [0, 1, 63, 64, 65, 1023, 1024, 1025, 2048, 3073, 4096, 5 * 1024 + 7,
                                    (1 << 20), (1 << 20) + 1, 3 * (1 << 20) - 5])
def test_blake3_matches_official(lib, length):
    data = np.random.default_rng(length).integers(0, 256, length, dtype=np.uint8)
    want = blake3.blake3(data.tobytes()).digest()
    out = np.empty(32, np.uint8)
    lib.emb_host_blake3(_ptr(data), ctypes.c_uint64(length), _ptr(out))
    assert out.tobytes() == want
    cvs = np.empty(max(1, -(-length // 1024)) * 8, np.uint32)
    out2 = np.empty(32, np.uint8)
    lib.emb_host_blake3_levels(_ptr(data), ctypes.c_uint64(length), _ptr(cvs, ctypes.POINTER(ctypes.c_uint32)),
                               _ptr(out2))
    assert out2.tobytes() == want  # the GPU kernel's level-by-level merge order


@settings(max_examples=60, deadline=None)
@given(itemsize=st.sampled_from(reference.ITEMSIZES), mode=st.sampled_from(reference.DELTA_MODES),
       n=st.integers(0, 300), seed=st.integers(0, 2**32 - 1))
def test_delta_encode_decode_match_oracle(lib, itemsize, mode, n, seed):
    rng = np.random.default_rng(seed)
    new = rng.integers(0, 256, n * itemsize, dtype=np.uint8)
    base = rng.integers(0, 256, n * itemsize, dtype=np.uint8)
    base[: n * itemsize // 2] = new[: n * itemsize // 2]  # equal words too
    enc = np.empty(n * itemsize, np.uint8)
    lib.emb_host_delta_encode(_ptr(new), _ptr(base), ctypes.c_uint64(n), itemsize, mode, _ptr(enc))
    assert np.array_equal(enc, reference.delta_encode(new, base, itemsize, mode))
    dec = np.empty(n * itemsize, np.uint8)
    lib.emb_host_delta_decode(_ptr(enc), _ptr(base), ctypes.c_uint64(n), itemsize, mode, _ptr(dec))
    assert np.array_equal(dec, new)


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=3000))
def test_rowprint_and_blake3_of_arbitrary_bytes(lib, data):
    arr = np.frombuffer(data, dtype=np.uint8).reshape(1, len(data))
    assert int(_rowprints(lib, arr)[0]) == xxhash.xxh3_64_intdigest(data)
    out = np.empty(32, np.uint8)
    lib.emb_host_blake3(_ptr(np.ascontiguousarray(arr[0])), ctypes.c_uint64(len(data)), _ptr(out))
    assert out.tobytes() == blake3.blake3(data).digest()


def test_gpu_module_source_inlines_the_core(tmp_path):
    """kernels/gpu.py hands CuPy one self-contained source (its cache keys on the text): the
    inlined form must compile for the device like the #include form does."""
    with open(os.path.join(CUDA_DIR, "embfmt_kernels.cu")) as f:
        src = f.read()
    with open(os.path.join(CUDA_DIR, "embfmt_core.cuh")) as f:
        core = f.read()
    assert src.count('#include "embfmt_core.cuh"') == 1
    inlined = tmp_path / "inlined.cu"
    inlined.write_text(src.replace('#include "embfmt_core.cuh"', core, 1))
    proc = subprocess.run([NVCC, "-c", "-arch=sm_90", "-o", str(tmp_path / "k.o"), str(inlined)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr

