"""Blame benchmark: the history of one row across many versions of a large table.

Workload: an N x 128 float32 table (default 1,000,000 rows, 488 MiB) committed in V versions
(default 50), each changing a random ~1% of the rows; the blamed row is also changed in four
of them. Measured: ``repo.blame`` by row and by key, on a fresh ``Repo`` (nothing cached by the
process; the OS page cache is warm) and warm. Baseline, run now: reading that one row from
every version through ``repo.open(...)[row]`` (one chunk decoded per version) and comparing,
i.e. the cheapest way to answer without rowprints.

    python benchmarks/bench_blame.py [--rows 1000000] [--versions 50]

CI runs the pytest entry points below with --benchmark-disable (small sizes).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _timing import median_seconds, print_table  # noqa: E402

import embfmt  # noqa: E402
from embfmt.compare.blame import blame  # noqa: E402

DIM = 128


def build(path: str, n: int, versions: int, seed: int = 0) -> tuple[embfmt.Repo, int, list[str]]:
    """A repository with ``versions`` commits of an n x 128 table; returns it, the blamed row,
    and the commits in which that row changed (oldest first)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, DIM)).astype(np.float32)
    keys = np.arange(n, dtype=np.int64) * 7 + 1
    repo = embfmt.Repo.init(path)
    row = n // 2 + 3
    hits = {versions // 10, versions // 3, (2 * versions) // 3, versions - 1} - {0}
    changed_at = [repo.commit({"emb": x}, keys={"emb": keys}, message="v0")]
    for v in range(1, versions):
        idx = rng.choice(n, max(1, n // 100), replace=False)
        x[idx] += (0.01 * rng.standard_normal((len(idx), DIM))).astype(np.float32)
        if v in hits:
            x[row] += np.float32(0.05)
        cid = repo.commit({"emb": x}, keys={"emb": "carry"}, message=f"v{v}: {len(idx)} rows tuned")
        if v in hits or row in set(idx.tolist()):
            changed_at.append(cid)
    return repo, row, changed_at


def naive_blame(repo: embfmt.Repo, row: int) -> list[str]:
    """Read the row from every version and compare bytes (one chunk decoded per version)."""
    out = []
    prev = None
    for c in reversed(repo.log()):
        cur = repo.open("emb", c.id)[row].tobytes()
        if cur != prev:
            out.append(c.id)
        prev = cur
    return out


def run(n: int, versions: int, repeat: int) -> tuple[list[list[Any]], dict[str, Any]]:
    work = tempfile.mkdtemp(prefix="embfmt-bench-blame-")
    try:
        t0 = time.perf_counter()
        repo, row, changed_at = build(os.path.join(work, "repo"), n, versions)
        t_build = time.perf_counter() - t0
        key = int(row * 7 + 1)
        want = naive_blame(repo, row)
        assert want == changed_at, "workload bookkeeping"
        got = [e.commit for e in reversed(repo.blame("emb", row))]
        assert got == want, (got, want)
        assert [e.commit for e in reversed(repo.blame("emb", key=key))] == want
        info = blame(embfmt.Repo(repo.path).revisions, "emb", row).to_dict()["stats"]

        def cold(**kw: Any) -> Any:
            with embfmt.Repo(repo.path) as r:
                return r.blame("emb", **kw)

        t_naive = median_seconds(lambda: naive_blame(embfmt.Repo(repo.path), row), max(1, repeat // 2))
        t_row_cold = median_seconds(lambda: cold(row=row), repeat)
        t_key_cold = median_seconds(lambda: cold(key=key), repeat)
        warm = embfmt.Repo(repo.path)
        t_row_warm = median_seconds(lambda: warm.blame("emb", row), repeat)
        rows = [
            [f"blame row, fresh Repo ({len(want)} entries)", f"{t_row_cold * 1e3:.1f}", f"{t_naive * 1e3:.1f}",
             f"{t_row_cold / t_naive:.3f}", "< 1 s", "ok" if t_row_cold < 1 else "MISSED"],
            ["blame --key, fresh Repo", f"{t_key_cold * 1e3:.1f}", f"{t_naive * 1e3:.1f}",
             f"{t_key_cold / t_naive:.3f}", "< 1 s", "ok" if t_key_cold < 1 else "MISSED"],
            ["blame row, warm Repo", f"{t_row_warm * 1e3:.1f}", f"{t_naive * 1e3:.1f}",
             f"{t_row_warm / t_naive:.3f}", "-", ""],
        ]
        meta = {"build_s": t_build, "stats": info, "entries": len(want),
                "bytes_on_disk": repo.disk_usage()}
        repo.close()
        warm.close()
        return rows, meta
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--versions", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    rows, meta = run(a.rows, a.versions, a.repeat)
    print_table(f"blame of one row, {a.versions} versions of {a.rows} x {DIM} float32 (~1% rows "
                f"changed per version), median of {a.repeat}",
                ["what", "ms", "baseline: read the row from every version (ms)", "ratio", "target", ""],
                rows)
    print(f"\nbuilt in {meta['build_s']:.1f} s, {meta['bytes_on_disk'] / 2**20:.0f} MiB on disk; "
          f"walk stats: {meta['stats']}")


def test_bench_blame_smoke() -> None:
    rows, meta = run(20_000, 6, 1)
    assert len(rows) == 3 and meta["stats"]["chunks_decoded"] == 0


def test_bench_blame(benchmark, tmp_path) -> None:  # type: ignore[no-untyped-def]
    repo, row, changed_at = build(str(tmp_path / "r"), 5000, 5)
    entries = benchmark(repo.blame, "emb", row)
    assert [e.commit for e in reversed(entries)] == changed_at


if __name__ == "__main__":
    main()
