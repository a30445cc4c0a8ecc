"""BLAKE3-256: numpy reference vs the official ``blake3`` package, and the
per-chunk digest kernels (reference vs cpu)."""

from __future__ import annotations

import blake3 as official
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from embfmt._kernels import cpu, reference

KIB = 1024
MIB = 1024 * KIB

# Block (64 B) and chunk (1024 B) boundaries, and tree shapes: 1, 2, 3, 4, 5
# and 7/8/9 chunks exercise single-chunk root, perfect trees and the
# odd-node-moves-up rule.
BOUNDARY_LENGTHS = [
    0, 1, 2, 63, 64, 65, 127, 128, 129, 1023, 1024, 1025,
    2047, 2048, 2049, 3072, 3 * KIB + 1, 4 * KIB, 4 * KIB + 1, 5 * KIB,
    7 * KIB, 8 * KIB, 8 * KIB + 1, 9 * KIB - 1, 31 * KIB + 17, 64 * KIB, 64 * KIB + 1,
]


def random_bytes(n: int, seed: int) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, size=n, dtype=np.uint8).tobytes()


@pytest.mark.parametrize("length", BOUNDARY_LENGTHS)
def test_reference_boundary_lengths(length: int) -> None:
    data = random_bytes(length, seed=length)
    assert reference.blake3(data) == official.blake3(data).digest()


@pytest.mark.slow
@pytest.mark.parametrize("length", [MIB - 1, MIB, MIB + 1, 3 * MIB + 5])
def test_reference_large(length: int) -> None:
    data = random_bytes(length, seed=length)
    assert reference.blake3(data) == official.blake3(data).digest()


def test_reference_known_answer_empty() -> None:
    # Published BLAKE3 test vector for the empty input.
    assert reference.blake3(b"").hex() == (
        "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
    )


def test_reference_accepts_arrays() -> None:
    emb = np.random.default_rng(1).standard_normal((37, 19), dtype=np.float32)
    assert reference.blake3(emb) == official.blake3(emb.tobytes()).digest()
    assert reference.blake3(emb[:, 2:7]) == official.blake3(emb[:, 2:7].tobytes()).digest()
    assert reference.blake3(memoryview(b"abc")) == official.blake3(b"abc").digest()


@settings(max_examples=150, deadline=None)
@given(data=st.binary(min_size=0, max_size=5000))
def test_hypothesis_reference_small(data: bytes) -> None:
    assert reference.blake3(data) == official.blake3(data).digest()


@settings(max_examples=60, deadline=None)
@given(length=st.integers(0, 40 * KIB), seed=st.integers(0, 2**32 - 1))
def test_hypothesis_reference_lengths(length: int, seed: int) -> None:
    data = random_bytes(length, seed)
    assert reference.blake3(data) == official.blake3(data).digest()


def manual_chunk_digests(rows: np.ndarray, chunk_rows: int) -> list[bytes]:
    return [
        official.blake3(rows[i : i + chunk_rows].tobytes()).digest()
        for i in range(0, rows.shape[0], chunk_rows)
    ]


@pytest.mark.parametrize(
    ("n", "row_bytes", "chunk_rows"),
    [
        (0, 16, 4),
        (1, 16, 4),
        (10, 13, 3),  # odd row length, partial last chunk
        (12, 13, 3),  # exact multiple
        (7, 512, 1),
        (7, 512, 100),  # one chunk bigger than the matrix
        (5, 0, 2),  # empty rows: every chunk hashes b""
        (300, 100, 64),  # chunks of 6400 B: multi-chunk BLAKE3 trees
        (33, 1024, 8),
    ],
)
def test_chunk_digests(n: int, row_bytes: int, chunk_rows: int) -> None:
    rows = np.random.default_rng(n * 7 + row_bytes).integers(0, 256, size=(n, row_bytes), dtype=np.uint8)
    n_chunks = -(-n // chunk_rows)
    want = manual_chunk_digests(rows, chunk_rows)
    for impl in (reference, cpu):
        got = impl.chunk_digests(rows, chunk_rows)
        assert got.dtype == np.uint8 and got.shape == (n_chunks, 32), impl.__name__
        assert [bytes(r) for r in got] == want, impl.__name__


def test_chunk_digests_readonly_and_strided() -> None:
    data = random_bytes(40 * 21, seed=2)
    rows = np.frombuffer(data, dtype=np.uint8).reshape(40, 21)
    want = manual_chunk_digests(rows, 6)
    assert [bytes(r) for r in cpu.chunk_digests(rows, 6)] == want
    strided = np.frombuffer(data, dtype=np.uint8).reshape(40, 21)[::2, 1:]
    want_s = manual_chunk_digests(np.ascontiguousarray(strided), 4)
    assert [bytes(r) for r in cpu.chunk_digests(strided, 4)] == want_s
    assert [bytes(r) for r in reference.chunk_digests(strided, 4)] == want_s


@pytest.mark.parametrize("impl", [reference, cpu])
def test_chunk_digests_rejects_bad_chunk_rows(impl: object) -> None:
    with pytest.raises(ValueError):
        impl.chunk_digests(np.zeros((3, 4), dtype=np.uint8), 0)  # type: ignore[attr-defined]


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 40),
    row_bytes=st.integers(0, 700),
    chunk_rows=st.integers(1, 50),
    seed=st.integers(0, 2**32 - 1),
)
def test_hypothesis_chunk_digests_reference_equals_cpu(n: int, row_bytes: int, chunk_rows: int, seed: int) -> None:
    rows = np.random.default_rng(seed).integers(0, 256, size=(n, row_bytes), dtype=np.uint8)
    np.testing.assert_array_equal(reference.chunk_digests(rows, chunk_rows), cpu.chunk_digests(rows, chunk_rows))
