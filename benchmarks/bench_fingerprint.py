"""Fingerprint throughput against baselines measured in the same run (issue: format v1 foundation).

By hand, full size (1 GiB = 2M x 128 float32)::

    python benchmarks/bench_fingerprint.py            # prints the table
    python benchmarks/bench_fingerprint.py --rows 200000

In CI (smoke mode, tiny inputs, nothing timed)::

    python -m pytest benchmarks --benchmark-disable

Targets (ratios, so they hold on any machine):
  full fingerprint  >= 0.65x blake3(AUTO threads) over the same bytes, >= 1.5x hashlib.sha256
  rowprints alone   >= 0.70x numpy single-pass read bandwidth (np.bitwise_xor.reduce on u64)
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import sys

import blake3
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import embfmt  # noqa: E402
from _timing import interleaved_medians, median_seconds, print_table, verdict  # noqa: E402


def make_table(rows: int, dim: int = 128) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((rows, dim), dtype=np.float32)


def measure(rows: int, repeat: int) -> list[list[object]]:
    x = make_table(rows)
    buf = x.view(np.uint8).reshape(-1)
    u64 = x.view(np.uint64).reshape(-1)
    gb = x.nbytes / 1e9
    cpu = embfmt.get_backend("cpu")
    raw_rows = x.view(np.uint8).reshape(rows, -1)

    t = interleaved_medians({
        "fp": lambda: embfmt.fingerprint(x, backend="cpu"),
        "b3": lambda: blake3.blake3(buf, max_threads=blake3.blake3.AUTO).digest(),
        "rp": lambda: cpu.rowprints(raw_rows),
        "read": lambda: np.bitwise_xor.reduce(u64),
    }, repeat)
    t_fp, t_b3, t_rp, t_read = t["fp"], t["b3"], t["rp"], t["read"]
    t_sha = median_seconds(lambda: hashlib.sha256(buf).digest(), max(1, repeat // 3))

    def r(x: float) -> str:
        return f"{x:.2f}"

    return [
        ["full fingerprint", r(gb / t_fp), "blake3 AUTO", r(gb / t_b3), r(t_b3 / t_fp), ">= 0.65",
         verdict(t_b3 / t_fp, 0.65)],
        ["full fingerprint", r(gb / t_fp), "hashlib.sha256", r(gb / t_sha), r(t_sha / t_fp), ">= 1.5",
         verdict(t_sha / t_fp, 1.5)],
        ["rowprints only", r(gb / t_rp), "numpy xor-reduce read", r(gb / t_read), r(t_read / t_rp),
         ">= 0.70", verdict(t_read / t_rp, 0.70)],
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=9)
    a = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
          f"python {platform.python_version()}, numpy {np.__version__}, embfmt {embfmt.__version__}")
    print_table(f"fingerprint, {a.rows} x 128 float32 ({a.rows * 512 / 2**30:.2f} GiB), median of {a.repeat}",
                ["what", "GB/s", "baseline", "baseline GB/s", "ratio", "target", ""],
                measure(a.rows, a.repeat))


# ---- pytest-benchmark entry points (CI runs them with --benchmark-disable as smoke tests) ----
def test_bench_fingerprint(benchmark) -> None:  # type: ignore[no-untyped-def]
    x = make_table(5000)
    fp = benchmark(embfmt.fingerprint, x)
    assert fp.shape == (5000, 128) and fp == embfmt.fingerprint(x, backend="reference")


def test_bench_table_smoke() -> None:
    rows = measure(3000, 1)
    assert [r[0] for r in rows] == ["full fingerprint", "full fingerprint", "rowprints only"]


if __name__ == "__main__":
    main()
