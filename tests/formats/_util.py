"""Shared data builders for the interop tests."""

from __future__ import annotations

import ml_dtypes
import numpy as np

DTYPES = ("float64", "float32", "float16", "bfloat16", "int8", "uint8")
# format -> (extension, dtypes it holds, keeps keys, text)
FORMATS: dict[str, tuple[str, tuple[str, ...], bool, bool]] = {
    "npy": (".npy", ("float64", "float32", "float16", "int8", "uint8"), False, False),
    "hdf5": (".h5", DTYPES, False, False),
    "safetensors": (".safetensors", DTYPES, False, False),
    "parquet": (".parquet", DTYPES, True, False),
    "arrow": (".arrow", DTYPES, True, False),
    "word2vec": (".vec", DTYPES, True, True),
    "glove": (".txt", DTYPES, True, True),
    "word2vec-bin": (".bin", ("float32",), True, False),
}


def npdtype(name: str) -> np.dtype:
    return np.dtype(ml_dtypes.bfloat16) if name == "bfloat16" else np.dtype(name)


# Special bit patterns per float width: -0.0, +-inf, the canonical quiet NaN, and (for binary
# formats only) NaNs with payloads, a signalling NaN and a negative NaN.
SPECIAL = {
    8: ([0x8000000000000000, 0x7FF0000000000000, 0xFFF0000000000000, 0x7FF8000000000000],
        [0x7FF8000000000042, 0x7FF0000000000001, 0xFFF8000000000000]),
    4: ([0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000], [0x7FC00042, 0x7F800001, 0xFFC12345]),
    2: ([0x8000, 0x7C00, 0xFC00, 0x7E00], [0x7E42, 0x7C01, 0xFE00]),
}
BF16_SPECIAL = ([0x8000, 0x7F80, 0xFF80, 0x7FC0], [0x7FC2, 0x7F81, 0xFFC0])


def make(dtype: str, n: int = 300, d: int = 17, seed: int = 0, payload_nans: bool = True) -> np.ndarray:
    """Seeded random data of ``dtype`` with -0.0, inf and NaNs (payload NaNs when asked)."""
    rng = np.random.default_rng(seed)
    dt = npdtype(dtype)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        return rng.integers(info.min, int(info.max) + 1, (n, d)).astype(dt)
    x = (rng.standard_normal((n, d)) * 10.0 ** rng.integers(-3, 4, (n, d))).astype(dt)
    canon, payload = BF16_SPECIAL if dtype == "bfloat16" else SPECIAL[dt.itemsize]
    bits = x.view(f"u{dt.itemsize}")
    vals = canon + (payload if payload_nans else [])
    flat = bits.reshape(-1)
    flat[:min(len(vals), flat.size)] = vals[:flat.size]
    if n > 5:
        bits[n // 2, d - 1] = vals[0]
    return x


def bits(a: np.ndarray) -> np.ndarray:
    return a.view(f"u{a.dtype.itemsize}")


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype.itemsize == b.dtype.itemsize and bool((bits(a) == bits(b)).all())


def read_all(m) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Every row of a Matrix, as an array of its dtype."""
    if m.n_rows == 0:
        return np.empty(m.shape, m.dtype.numpy)
    return np.concatenate(list(m.blocks())).view(m.dtype.numpy).reshape(m.shape)
