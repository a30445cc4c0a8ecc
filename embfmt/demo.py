"""The built-in end-to-end example behind ``embfmt demo``."""

from __future__ import annotations

import numpy as np

__all__ = ["example_table", "run_demo"]


def example_table(n_rows: int = 20_000, dim: int = 64, seed: int = 0) -> np.ndarray:
    """A deterministic float32 example table: unit-norm rows drawn from N(0, 1) with ``seed``.

    Examples
    --------
    >>> example_table(4, 3).shape
    (4, 3)
    """
    x = np.random.default_rng(seed).standard_normal((n_rows, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def run_demo(directory: str | None = None, *, quiet: bool = False) -> int:
    """Fingerprint the built-in example table and print the result."""
    from .fingerprint import fingerprint

    x = example_table()
    fp = fingerprint(x)
    if not quiet:
        print(f"example table: {x.shape[0]} x {x.shape[1]} float32")
        print(f"fingerprint:   {fp.root}")
        print(f"chunks:        {fp.n_chunks} of {fp.chunk_rows} rows")
    return 0
