"""Timing helpers shared by the benchmark scripts (best-of / median wall time, table output)."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any


def median_seconds(fn: Callable[[], Any], repeat: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` over ``repeat`` runs after ``warmup`` untimed runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def interleaved_medians(fns: dict[str, Callable[[], Any]], repeat: int = 7,
                        warmup: int = 1) -> dict[str, float]:
    """Median wall time of each function, running them in alternation (a, b, c, a, b, c, ...)
    so that a noisy neighbour or a CPU frequency change hits every one of them alike."""
    for f in fns.values():
        for _ in range(warmup):
            f()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeat):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Print (and return) a GitHub-markdown table."""
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(str(c) for c in r) + " |")
    text = "\n".join(lines)
    print(text, flush=True)
    return text


def verdict(ratio: float, target: float, higher_is_better: bool = True) -> str:
    ok = ratio >= target if higher_is_better else ratio <= target
    return "ok" if ok else "MISSED"


# Runs ARGV as a grandchild and prints its peak RSS (KiB) from wait4. The intermediate process
# matters: Linux counts the RSS a process had *before* exec into its ru_maxrss, so a command
# started straight from a big process (a benchmark holding a table, pytest) would report that
# process's size, not its own.
_RSS_WRAPPER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
_, status, ru = os.wait4(pid, 0)
print(ru.ru_maxrss)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_peak_rss(argv: Sequence[str], cwd: str | None = None,
                 timeout: float | None = None) -> tuple[subprocess.CompletedProcess[str], int]:
    """Run ``argv``; returns the finished process (stdout holds only the RSS line) and its peak
    resident set in bytes (Linux reports KiB)."""
    proc = subprocess.run([sys.executable, "-c", _RSS_WRAPPER, *argv], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)
    lines = proc.stdout.split()
    return proc, int(lines[-1]) * 1024 if proc.returncode == 0 and lines else 0

