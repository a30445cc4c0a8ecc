"""The built-in end-to-end example behind ``embfmt demo``.

It plays one embedding table's life in a new repository: a first export, a sparse update (1% of
rows replaced), a fine-tuning-like dense update of every row, an append of 1% new rows, and then
the reads, integrity check and rollbacks a user would run. Data come from fixed seeds, so the
tables, fingerprints and row counts are the same on every run; commit ids differ (they include
the time and the machine).
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Any, TextIO

import numpy as np

__all__ = ["example_table", "run_demo", "DEMO_IDENTITY", "DEMO_TABLE"]

DEMO_TABLE = "item_emb"
DEMO_IDENTITY = {"model": "demo-encoder", "revision": "1"}
_AUTHOR = "embfmt-demo"
_KEY_BASE = 1_000_000


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


def _changed_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Indices of rows that differ bit for bit (NaN payloads and -0.0 count as values)."""
    bits = np.dtype(f"u{a.dtype.itemsize}")
    return np.flatnonzero((a.view(bits) != b.view(bits)).any(axis=1))


def _fmt_bytes(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 ** 2:
        return f"{n / 1024:.1f} KiB"
    return f"{n / 1024 ** 2:.2f} MiB"


def run_demo(directory: str | None = None, *, quiet: bool = False, n_rows: int = 20_000,
             dim: int = 64, out: TextIO | None = None) -> int:
    """Run the end-to-end example in a new repository at ``directory`` (default: a new temp
    dir). Prints what it does (only the repository path with ``quiet``); returns 0.

    Examples
    --------
    >>> import io, os, tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     run_demo(os.path.join(d, "demo"), n_rows=2000, dim=8, out=io.StringIO())
    0
    """
    from .repo import Repo

    stream = out if out is not None else sys.stdout

    def say(*parts: Any) -> None:
        if not quiet:
            print(*parts, file=stream)

    if directory is None:
        directory = tempfile.mkdtemp(prefix="embfmt-demo-")
    path = os.path.abspath(directory)
    if quiet:
        print(path, file=stream)
    say(f"embfmt demo: repository {path}")
    say()

    rng = np.random.default_rng(1234)
    n_sparse = max(1, n_rows // 100)
    n_new = max(1, n_rows // 100)
    x1 = example_table(n_rows, dim)
    keys1 = np.arange(_KEY_BASE, _KEY_BASE + n_rows, dtype=np.int64)

    # v2: 1% of rows replaced by new unit vectors (a sparse update).
    x2 = x1.copy()
    replaced = np.sort(rng.choice(n_rows, size=n_sparse, replace=False))
    fresh = rng.standard_normal((n_sparse, dim), dtype=np.float32)
    x2[replaced] = fresh / np.linalg.norm(fresh, axis=1, keepdims=True)
    # v3: every row nudged multiplicatively, like a fine-tuning step (a dense update).
    noise = rng.standard_normal((n_rows, dim), dtype=np.float32)
    x3 = (x2 * (np.float32(1) + np.float32(1e-3) * noise)).astype(np.float32)
    # v4: 1% new rows appended, with new keys.
    extra = rng.standard_normal((n_new, dim), dtype=np.float32)
    x4 = np.concatenate([x3, extra / np.linalg.norm(extra, axis=1, keepdims=True)])
    keys4 = np.arange(_KEY_BASE, _KEY_BASE + n_rows + n_new, dtype=np.int64)

    steps = [
        ("v1", x1, keys1, "v1: initial export of item embeddings", "initial"),
        ("v2", x2, None, f"v2: {n_sparse} items re-embedded (sparse update)", "sparse"),
        ("v3", x3, None, "v3: one fine-tuning epoch (dense update of every row)", "fine-tune"),
        ("v4", x4, keys4, f"v4: {n_new} new items appended", "append"),
    ]
    with Repo.init(path) as repo:
        ids: dict[str, str] = {}
        for step, (label, x, keys, message, kind) in enumerate(steps):
            ids[label] = repo.commit(
                {DEMO_TABLE: x}, message=message, author=_AUTHOR,
                metadata={"run": "demo-1", "step": step, "update": kind},
                keys={DEMO_TABLE: keys} if keys is not None else None,
                identity={DEMO_TABLE: dict(DEMO_IDENTITY)})

        say("== log ==")
        for c in repo.log():
            t = repo.open(DEMO_TABLE, c.id)
            say(f"{c.id[:12]}  {c.time}  {c.author}  {t.shape[0]} x {t.shape[1]}  {c.message}")
        say()

        say("== bytes on disk added per version ==")
        say(f"{'version':<8} {'update':<10} {'rows':>7} {'changed':>8} {'raw table':>11} "
            f"{'written':>11} {'of raw':>7}  codecs")
        total_raw = total_written = 0
        for label, x, _k, _m, kind in steps:
            w = repo.show(ids[label])["tables"][DEMO_TABLE]["write"]
            raw = x.nbytes
            total_raw += raw
            total_written += w["bytes_written"]
            codecs = ", ".join(f"{k} {v}" for k, v in sorted(w["codecs"].items())) or "-"
            changed = w["rows_changed"] if label != "v1" else w["rows"]
            say(f"{label:<8} {kind:<10} {w['rows']:>7} {changed:>8} {_fmt_bytes(raw):>11} "
                f"{_fmt_bytes(w['bytes_written']):>11} {w['bytes_written'] / raw:>7.1%}  {codecs}")
        say(f"{'total':<8} {'':<10} {'':>7} {'':>8} {_fmt_bytes(total_raw):>11} "
            f"{_fmt_bytes(total_written):>11} {total_written / total_raw:>7.1%}")
        say(f"repository objects: {_fmt_bytes(repo.disk_usage())} for 4 versions "
            f"({_fmt_bytes(total_raw)} as raw arrays)")
        say()

        say("== rows changed between v1 and v2 ==")
        a, b = repo.read(DEMO_TABLE, ids["v1"]), repo.read(DEMO_TABLE, ids["v2"])
        rows = _changed_rows(a, b)
        keys = repo.keys(DEMO_TABLE, ids["v2"])
        assert keys is not None
        assert np.array_equal(rows, replaced), "demo: v1 -> v2 diff does not match the update"
        shown = ", ".join(str(int(k)) for k in keys[rows[:8]])
        say(f"{len(rows)} of {len(a)} rows differ ({len(rows) / len(a):.1%}); "
            f"keys {shown}{', ...' if len(rows) > 8 else ''}")
        v3 = repo.open(DEMO_TABLE, ids["v3"])
        say(f"v2 -> v3: {len(_changed_rows(b, v3[:]))} rows differ; "
            f"v3 -> v4: {repo.open(DEMO_TABLE, ids['v4']).shape[0] - v3.shape[0]} rows appended")
        say(f"row with key {int(keys[rows[0]])} in v4 equals v3's: "
            f"{bool(np.array_equal(repo.open(DEMO_TABLE, ids['v4']).get(int(keys[rows[0]])), v3[int(rows[0])]))}")
        say()

        say("== verify ==")
        rep = repo.verify()
        say(f"{'ok' if rep.ok else 'FAILED'}: {rep.commits} commits, {rep.tables} table versions, "
            f"{rep.chunks} chunks, {rep.keys} key objects checked")
        for err in rep.errors:
            say(f"  {err['object']} [{err['kind']}]: {err['error']}")
        say()

        say("== tag and rollback ==")
        branch = repo.head_branch
        repo.tag("v1", ids["v1"])
        say(f"tag v1 -> {ids['v1'][:12]}")
        repo.reset(branch, "v1")
        say(f"reset {branch} to v1: HEAD is {repo.resolve('HEAD')[:12]}, "
            f"{len(repo.log())} commit on {branch}, table {repo.open(DEMO_TABLE).shape[0]} rows")
        repo.reset(branch, ids["v4"])
        say(f"reset {branch} back to v4: HEAD is {repo.resolve('HEAD')[:12]}, "
            f"{len(repo.log())} commits")
        rid = repo.restore("v1", message="roll back to v1 (keeping history)")
        same = repo.open(DEMO_TABLE).fingerprint == repo.open(DEMO_TABLE, "v1").fingerprint
        say(f"restore v1: new commit {rid[:12]} on {branch}, {len(repo.log())} commits, "
            f"table equals v1: {same}")
        say()
        say("== final log ==")
        for c in repo.log():
            say(f"{c.id[:12]}  {c.message}")
        final = repo.verify()
        say()
        say(f"verify after rollback: {'ok' if final.ok else 'FAILED'}")
        say(f"try: embfmt -C {path} log")
        return 0 if rep.ok and final.ok and same else 1
