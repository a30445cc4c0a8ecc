"""Committing a memory-mapped .npy from the CLI keeps the resident set far below the table size."""

from __future__ import annotations

import os
import sys

import numpy as np

import embfmt

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))
from _timing import run_peak_rss  # noqa: E402


def _peak_rss(args: list[str], cwd: str) -> int:
    """Peak resident set (bytes) of one CLI process (started through an intermediate process:
    see benchmarks/_timing.run_peak_rss)."""
    proc, rss = run_peak_rss([sys.executable, "-m", "embfmt", *args], cwd=cwd, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return rss


def test_cli_commit_of_mapped_npy_has_bounded_rss(tmp_path):
    n, d = 786_432, 128  # 384 MiB of float32
    big = tmp_path / "big.npy"
    mm = np.lib.format.open_memmap(big, mode="w+", dtype=np.float32, shape=(n, d))
    for lo in range(0, n, 65536):
        mm[lo:lo + 65536] = np.random.default_rng(lo).standard_normal((65536, d), dtype=np.float32)
    mm.flush()
    del mm
    np.save(tmp_path / "small.npy", np.ones((2048, d), np.float32))
    embfmt.Repo.init(tmp_path / "r")
    # The same process doing the same work on a small table: interpreter, numpy, Numba/LLVM,
    # thread pools. What the big table adds on top of it must stay far below its size.
    base = _peak_rss(["commit", f"s={tmp_path / 'small.npy'}", "-m", "small"], str(tmp_path / "r"))
    peak = _peak_rss(["commit", f"t={big}", "-m", "big"], str(tmp_path / "r"))
    table = n * d * 4
    assert peak - base < table / 2, (f"CLI commit of a {table / 2**20:.0f} MiB .npy grew the resident "
                                     f"set by {(peak - base) / 2**20:.0f} MiB")
    repo = embfmt.Repo(tmp_path / "r")
    assert repo.open("t").fingerprint == embfmt.fingerprint(np.load(big, mmap_mode="r")).root
