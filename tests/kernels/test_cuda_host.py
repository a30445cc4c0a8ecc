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
    # -ffp-contract=off: the row statistics must not fuse a*b+c on hosts with FMA (spec §20).
    proc = subprocess.run([NVCC, "-shared", "-Xcompiler", "-fPIC,-ffp-contract=off", "-O2", "-o", str(out),
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


def _tree_hash(lib, digests: np.ndarray) -> bytes:  # type: ignore[no-untyped-def]
    n = digests.shape[0]
    nodes = np.empty(n * 8, np.uint32)
    out = np.empty(32, np.uint8)
    lib.emb_host_tree_hash(_ptr(np.ascontiguousarray(digests)), ctypes.c_uint64(n),
                           _ptr(nodes, ctypes.POINTER(ctypes.c_uint32)), _ptr(out))
    return out.tobytes()


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 31, 33, 100, 1025])
def test_tree_hash_matches_merkle_module(lib, n):
    """The Merkle tree of the GPU's emb_tree_hash (leaf and node hashes, promotion of an odd
    last node) against embfmt.canonical.merkle, the spec's construction."""
    from embfmt.canonical import merkle

    digests = np.random.default_rng(n).integers(0, 256, (n, 32), dtype=np.uint8)
    assert _tree_hash(lib, digests) == merkle.tree_hash([bytes(d) for d in digests])


def test_tree_hash_of_the_spec_vectors(lib):
    """Every committed fingerprint vector's tree hash, recomputed from its chunk digests."""
    import embfmt
    from embfmt.canonical import merkle

    rng = np.random.default_rng(7)
    for n_rows, dim in [(5000, 64), (1, 3), (70_000, 16)]:
        fp = embfmt.fingerprint(rng.standard_normal((n_rows, dim)).astype(np.float32))
        dg = np.frombuffer(b"".join(fp.chunk_digests), dtype=np.uint8).reshape(-1, 32)
        assert _tree_hash(lib, dg) == fp.tree_hash == merkle.tree_hash(fp.chunk_digests)


@pytest.mark.parametrize("path", ["", "_groups"])
@settings(max_examples=80, deadline=None)
@given(itemsize=st.sampled_from(reference.ITEMSIZES), mode=st.sampled_from(reference.DELTA_MODES),
       n=st.integers(0, 300), seed=st.integers(0, 2**32 - 1))
def test_delta_encode_decode_match_oracle(lib, path, itemsize, mode, n, seed):
    """Word by word (path ""), and the kernels' 16-byte group path ("_groups": whole groups,
    then the last n % (16 / itemsize) words one by one): the oracle's shuffled bytes, and
    their inverse."""
    encode, decode = getattr(lib, f"emb_host_delta_encode{path}"), getattr(lib, f"emb_host_delta_decode{path}")
    rng = np.random.default_rng(seed)
    new = rng.integers(0, 256, n * itemsize, dtype=np.uint8)
    base = rng.integers(0, 256, n * itemsize, dtype=np.uint8)
    base[: n * itemsize // 2] = new[: n * itemsize // 2]  # equal words too
    enc = np.empty(n * itemsize, np.uint8)
    encode(_ptr(new), _ptr(base), ctypes.c_uint64(n), itemsize, mode, _ptr(enc))
    assert np.array_equal(enc, reference.delta_encode(new, base, itemsize, mode))
    dec = np.empty(n * itemsize, np.uint8)
    decode(_ptr(enc), _ptr(base), ctypes.c_uint64(n), itemsize, mode, _ptr(dec))
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



# --- row drift statistics (spec §20) ----------------------------------------------------------
def _row_stats(lib, a: np.ndarray, b: np.ndarray, code: int):  # type: ignore[no-untyped-def]
    n, row_len = a.shape
    outs = [np.empty(n, np.float64) for _ in range(3)] + [np.empty(n, np.uint64)]
    dp = ctypes.POINTER(ctypes.c_double)
    lib.emb_host_row_stats(_ptr(a), _ptr(b), ctypes.c_uint64(n), ctypes.c_uint64(row_len), ctypes.c_int(code),
                           _ptr(outs[0], dp), _ptr(outs[1], dp), _ptr(outs[2], dp),
                           _ptr(outs[3], ctypes.POINTER(ctypes.c_uint64)))
    return outs


def _same_bits(got, want) -> bool:  # type: ignore[no-untyped-def]
    return all(np.array_equal(np.asarray(g).view(np.uint64), np.asarray(w).view(np.uint64))
               for g, w in zip(got, want))


def _adversarial_rows(code: int, n: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random bit patterns (every NaN payload, inf, -0.0, subnormals appear), with a share of
    specials, identical rows and zero rows mixed in."""
    k = reference.ROW_STATS_ITEMSIZE[code]
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (n, dim * k), dtype=np.uint8)
    b = a.copy()
    flip = rng.random(b.shape) < 0.3
    b[flip] = rng.integers(0, 256, int(flip.sum()), dtype=np.uint8)
    if code in (1, 2, 3, 4):  # plant specials of this float type
        w = {8: np.uint64, 4: np.uint32, 2: np.uint16}[k]
        bits = {1: [0x0, 0x8000000000000000, 0x7FF0000000000000, 0x7FF8000000000001, 0x1, 0x3FF0000000000000],
                2: [0x0, 0x80000000, 0x7F800000, 0x7FC00001, 0x1, 0x3F800000],
                3: [0x0, 0x8000, 0x7C00, 0x7E01, 0x1, 0x03FF, 0x3C00],
                4: [0x0, 0x8000, 0x7F80, 0x7FC1, 0x1, 0x3F80]}[code]
        av, bv = a.view(w), b.view(w)
        pick = rng.random(av.shape) < 0.2
        av[pick] = rng.choice(np.array(bits, dtype=w), int(pick.sum()))
        pick = rng.random(bv.shape) < 0.2
        bv[pick] = rng.choice(np.array(bits, dtype=w), int(pick.sum()))
    a[: n // 8] = 0
    b[n // 8: n // 4] = a[n // 8: n // 4]
    return a, b


@pytest.mark.parametrize("code", [1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize("dim", [0, 1, 3, 17, 128])
def test_row_stats_match_oracle(lib, code: int, dim: int) -> None:
    a, b = _adversarial_rows(code, 400, dim, seed=code * 100 + dim)
    assert _same_bits(_row_stats(lib, a, b, code), reference.row_stats(a, b, code))


@settings(max_examples=60, deadline=None)
@given(code=st.integers(1, 6), dim=st.integers(0, 40), seed=st.integers(0, 2 ** 32 - 1))
def test_row_stats_match_oracle_hypothesis(lib, code: int, dim: int, seed: int) -> None:
    a, b = _adversarial_rows(code, 16, dim, seed)
    assert _same_bits(_row_stats(lib, a, b, code), reference.row_stats(a, b, code))


def test_row_stats_of_float16_covers_every_bit_pattern(lib) -> None:
    """All 65,536 half-precision patterns against 0.0 and against their neighbour: the host
    decoder of binary16 (subnormals, inf, NaN payloads) agrees with numpy's exact widening."""
    a = np.arange(65536, dtype=np.uint16).view(np.uint8).reshape(-1, 2)
    for b in (np.zeros_like(a), np.roll(a, 1, axis=0)):
        assert _same_bits(_row_stats(lib, a, b, 3), reference.row_stats(a, b, 3))
