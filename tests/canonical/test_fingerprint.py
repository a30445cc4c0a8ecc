"""Fingerprint API: canonicalization, streaming, proofs, typed errors, backend agreement."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import embfmt
from embfmt.canonical.dtype import DTYPES, dtype_from_name
from embfmt.canonical.fingerprint import chunk_rows_for

DTYPE_NAMES = [d.name for d in DTYPES]


def random_matrix(dtype: str, n: int, d: int, seed: int = 0) -> np.ndarray:
    """Random *bit patterns* of the dtype (so NaNs with payloads, -0.0, subnormals all occur)."""
    dt = dtype_from_name(dtype)
    raw = np.random.default_rng(seed).integers(0, 256, size=n * d * dt.itemsize, dtype=np.uint8)
    return raw.view(dt.numpy).reshape(n, d)


@pytest.mark.parametrize("dtype", DTYPE_NAMES)
def test_layout_and_byte_order_do_not_matter(dtype: str) -> None:
    x = random_matrix(dtype, 301, 37, seed=1)
    ref = embfmt.fingerprint(x)
    variants = [np.asfortranarray(x), x.copy(order="F")]
    if x.dtype.itemsize > 1 and dtype != "bfloat16":
        variants.append(x.astype(x.dtype.newbyteorder(">")))
        variants.append(np.asfortranarray(x.astype(x.dtype.newbyteorder(">"))))
    big = np.zeros((301, 74), dtype=x.dtype)
    big[:, ::2] = x
    variants.append(big[:, ::2])  # strided view
    t = np.ascontiguousarray(x.T)
    variants.append(t.T)  # transposed view (Fortran layout)
    for v in variants:
        fp = embfmt.fingerprint(v)
        assert fp == ref, (v.flags, v.dtype)
        assert np.array_equal(fp.rowprints, ref.rowprints)


def test_big_endian_preserves_nan_payloads_and_negative_zero() -> None:
    bits = np.array([[0x7F800001, 0x80000000, 0xFFC00123, 0x00000001]], dtype="<u4")
    x = bits.view("<f4")
    be = x.astype(">f4")  # numpy byte-swaps float arrays without touching NaN payloads
    assert be.view(">u4").tolist() == bits.tolist()
    assert embfmt.fingerprint(x) == embfmt.fingerprint(be)
    # A different NaN payload or +0.0 instead of -0.0 is a different matrix.
    for col, other in ((0, 0x7F800002), (1, 0x00000000), (2, 0x7FC00123)):
        y = bits.copy()
        y[0, col] = other
        assert embfmt.fingerprint(y.view("<f4")) != embfmt.fingerprint(x)


def test_order_aware_and_shape_bound() -> None:
    x = random_matrix("float32", 10, 8, seed=2)
    assert embfmt.fingerprint(x) != embfmt.fingerprint(x[::-1])
    # Same bytes, different shape or dtype: different roots.
    assert embfmt.fingerprint(x) != embfmt.fingerprint(x.reshape(20, 4))
    assert embfmt.fingerprint(x) != embfmt.fingerprint(x.view(np.uint8).reshape(10, 32))
    assert embfmt.fingerprint(x) != embfmt.fingerprint(x.view(np.float16).reshape(10, 16))


def test_memmap_and_hdf5_and_array_like(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import h5py

    x = random_matrix("float16", 5000, 96, seed=3)
    ref = embfmt.fingerprint(x)
    np.save(tmp_path / "x.npy", x)
    assert embfmt.fingerprint(np.load(tmp_path / "x.npy", mmap_mode="r")) == ref
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f.create_dataset("emb", data=x, chunks=(333, 96))
    with h5py.File(tmp_path / "x.h5", "r") as f:
        assert embfmt.fingerprint(f["emb"]) == ref

    class ArrayLike:
        def __array__(self, dtype=None, copy=None):  # type: ignore[no-untyped-def]
            return x

    assert embfmt.fingerprint(ArrayLike()) == ref


def test_torch_cpu_tensor() -> None:
    torch = pytest.importorskip("torch")
    x = random_matrix("float32", 100, 16, seed=4)
    assert embfmt.fingerprint(torch.from_numpy(x)) == embfmt.fingerprint(x)
    bf = torch.randn(50, 8).to(torch.bfloat16)
    bits = bf.view(torch.int16).numpy().view(np.uint16)
    assert embfmt.fingerprint(bf) == embfmt.fingerprint(bits.view(dtype_from_name("bfloat16").numpy))


@settings(max_examples=40, deadline=None)
@given(dtype=st.sampled_from(DTYPE_NAMES), n=st.integers(0, 70), d=st.integers(1, 300),
       seed=st.integers(0, 2**32 - 1))
def test_cpu_equals_reference_on_random_matrices(dtype: str, n: int, d: int, seed: int) -> None:
    x = random_matrix(dtype, n, d, seed)
    a = embfmt.fingerprint(x, backend="cpu")
    b = embfmt.fingerprint(x, backend="reference")
    assert a == b
    assert np.array_equal(a.rowprints, b.rowprints)
    assert a.chunk_digests == b.chunk_digests


@settings(max_examples=25, deadline=None)
@given(n=st.integers(0, 40), d=st.sampled_from([1, 3, 16, 60, 8192, 70000]),
       splits=st.lists(st.integers(0, 40), max_size=8), seed=st.integers(0, 1000))
def test_streaming_equals_one_shot(n: int, d: int, splits: list[int], seed: int) -> None:
    x = random_matrix("float32", n, d, seed)
    cuts = sorted({min(n, s) for s in splits})
    f = embfmt.Fingerprinter("float32", d)
    prev = 0
    for c in [*cuts, n]:
        f.update(x[prev:c])
        prev = c
    assert f.n_rows == n
    got = f.finalize()
    want = embfmt.fingerprint(x)
    assert got == want and np.array_equal(got.rowprints, want.rowprints)


def test_streaming_accepts_big_endian_blocks_and_rejects_mismatches() -> None:
    x = random_matrix("float64", 1000, 200, seed=5)  # chunk_rows 512: two chunks
    f = embfmt.Fingerprinter(np.dtype(">f8"), 200)
    f.update(x[:300].astype(">f8"))
    f.update(np.asfortranarray(x[300:]))
    assert f.finalize() == embfmt.fingerprint(x)
    g = embfmt.Fingerprinter("float64", 200)
    with pytest.raises(embfmt.InputError) as e1:
        g.update(x[:, :10])
    assert e1.value.kind == embfmt.ErrorKind.SHAPE_MISMATCH
    with pytest.raises(embfmt.InputError) as e2:
        g.update(np.zeros((2, 200), np.float32))
    assert e2.value.kind == embfmt.ErrorKind.DTYPE_MISMATCH
    g.finalize()
    with pytest.raises(embfmt.InputError):
        g.update(x)
    with pytest.raises(embfmt.InputError):
        g.finalize()


def test_proofs_verify_and_tampering_fails() -> None:
    x = random_matrix("float32", 9, 65536, seed=6)  # chunk_rows 4 -> 3 chunks
    fp = embfmt.fingerprint(x)
    assert fp.n_chunks == 3
    for i in range(3):
        p = fp.proof(i)
        assert embfmt.verify_proof(fp.root, i, fp.chunk_digests[i], p)
        assert embfmt.verify_proof(fp, i, fp.chunk_digests[i], p.to_bytes())
        # wrong digest, wrong index, flipped sibling, other root: all answer False
        bad = bytearray(fp.chunk_digests[i])
        bad[0] ^= 1
        assert not embfmt.verify_proof(fp.root, i, bytes(bad), p)
        assert not embfmt.verify_proof(fp.root, (i + 1) % 3, fp.chunk_digests[i], p)
        if p.siblings:
            sib = bytearray(p.siblings[0])
            sib[5] ^= 0x80
            forged = type(p)(p.index, p.dtype, p.n_rows, p.dim, p.chunk_rows, (bytes(sib), *p.siblings[1:]))
            assert not embfmt.verify_proof(fp.root, i, fp.chunk_digests[i], forged)
        other = embfmt.fingerprint(x[::-1])
        assert not embfmt.verify_proof(other.root, i, fp.chunk_digests[i], p)
    # A proof claiming another shape does not verify against this root.
    p0 = fp.proof(0)
    lie = type(p0)(0, p0.dtype, p0.n_rows + 1, p0.dim, p0.chunk_rows, p0.siblings)
    assert not embfmt.verify_proof(fp.root, 0, fp.chunk_digests[0], lie)
    with pytest.raises(embfmt.InputError):
        fp.proof(3)


@pytest.mark.parametrize("bad, kind", [
    (np.zeros(5, np.float32), "not-a-matrix"),
    (np.zeros((2, 3, 4), np.float32), "not-a-matrix"),
    (np.zeros((3, 0), np.float32), "zero-dim"),
    (np.zeros((3, 2), np.complex64), "unsupported-dtype"),
    (np.zeros((3, 2), object), "unsupported-dtype"),
    (np.array([["a", "b"]]), "unsupported-dtype"),
    (np.zeros((3, 2), np.int32), "unsupported-dtype"),
    (np.zeros((3, 2), bool), "unsupported-dtype"),
    (object(), "not-a-matrix"),
    ("not an array", "not-a-matrix"),
])
def test_bad_inputs_get_typed_errors(bad: object, kind: str) -> None:
    with pytest.raises(embfmt.InputError) as ei:
        embfmt.fingerprint(bad)
    assert ei.value.kind.value == kind
    assert isinstance(ei.value, embfmt.EmbfmtError) and isinstance(ei.value, ValueError)
    msg = str(ei.value)
    assert len(msg) > 20 and "\n" not in msg
    if kind == "unsupported-dtype":
        assert "float32" in msg and "bfloat16" in msg  # says what is accepted


def test_fingerprint_equality_semantics() -> None:
    x = random_matrix("int8", 7, 5, seed=7)
    a, b = embfmt.fingerprint(x), embfmt.fingerprint(x.copy())
    assert a == b and hash(a) == hash(b) and a == a.root and a == a.root + "\n"
    assert len({a, b}) == 1
    assert str(a) == a.root and a.root in repr(a)
    assert a.shape == (7, 5) and a.dtype == "int8" and a.chunk_rows == chunk_rows_for("int8", 5)
    assert a.rowprints.dtype == np.uint64 and not a.rowprints.flags.writeable
    assert all(len(d) == 32 for d in a.chunk_digests)
    assert a.to_dict()["fingerprint"] == a.root


def test_unknown_backend_and_unavailable_gpu() -> None:
    x = np.zeros((2, 2), np.float32)
    with pytest.raises(embfmt.InputError):
        embfmt.fingerprint(x, backend="tpu")
    if "gpu" not in embfmt.available_backends():
        with pytest.raises(embfmt.BackendUnavailableError) as ei:
            embfmt.fingerprint(x, backend="gpu")
        assert ei.value.kind == embfmt.ErrorKind.BACKEND_UNAVAILABLE
        assert "gpu" in str(ei.value)


def test_env_var_selects_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    x = np.ones((3, 3), np.float32)
    monkeypatch.setenv("EMBFMT_BACKEND", "reference")
    assert embfmt.fingerprint(x).backend == "reference"
    monkeypatch.setenv("EMBFMT_BACKEND", "cpu")
    assert embfmt.fingerprint(x).backend == "cpu"
    monkeypatch.setenv("EMBFMT_BACKEND", "bogus")
    with pytest.raises(embfmt.InputError):
        embfmt.fingerprint(x)


def test_import_does_not_load_numba_or_cupy() -> None:
    import subprocess
    import sys

    code = ("import sys, embfmt; assert 'numba' not in sys.modules, 'numba'; "
            "assert 'cupy' not in sys.modules, 'cupy'; assert 'h5py' not in sys.modules, 'h5py'")
    subprocess.run([sys.executable, "-c", code], check=True)
