"""The built-in end-to-end example behind ``embfmt demo``.

It plays one embedding table's life in a new repository: a first export, a sparse update (1% of
rows replaced), a fine-tuning-like dense update of every row, an append of 1% new rows, then the
diffs, integrity check and rollback (restore) a user would run, each step shown as its CLI
command and told in about one screen. Data come from fixed seeds, so the tables, fingerprints and row counts
are the same on every run; commit ids differ (they include the time and the machine).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from typing import Any, TextIO

import numpy as np
from ..repo import Repo

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
    return f"{n / 1024 ** 2:.1f} MiB"


# How a chunk codec stores its rows, in words (codec names: spec §6, embfmt/_layout.py).
_STORED_AS = {
    "raw": "in full",
    "shuffle-planes": "in full, compressed",
    "xor-delta": "as a delta against {parent}",
    "sub-zigzag-delta": "as a delta against {parent}",
    "sparse-patch": "as a row patch against {parent}",
}


def _stored(w: dict[str, Any], parent: str | None, raw: int) -> str:
    """One line on how a commit stored a table: which chunks were reused, how the others were
    written, and the bytes written as a share of the table's size."""
    ways = sorted({_STORED_AS.get(c, c).format(parent=parent) for c in w["codecs"]})
    parts = []
    if w["chunks_reused"]:
        parts.append(f"{w['chunks_reused']} of {w['chunks']} chunks reused")
    if ways:
        parts.append(("the rest " if parts else "stored ") + " and ".join(ways))
    return (", ".join(parts) + f": {_fmt_bytes(w['bytes_written'])}, "
            f"{w['bytes_written'] / raw:.1%} of the table's size")


def _diff_lines(d: Any, n_top: int = 3) -> list[str]:
    """The changed-row count, the drift percentiles and the top movers of a diff."""
    n = d.n_b
    lines = [f"{d.n_changed} of {n} rows changed ({d.n_changed / max(n, 1):.1%}), "
             f"matched by {d.matched_by}"]
    if d.stats is not None and d.n_changed:
        # Distances, so that the high percentiles are the rows that moved most for both;
        # L2's are the figures `embfmt diff` prints, 1 - cosine those of its cosine row mirrored.
        cols = ("min", "p50", "p90", "p99", "max")
        lines.append(f"  {'drift of the changed rows':<26}" + "".join(f"{c:>10}" for c in cols))
        for label, v in (("L2 distance", d.stats["l2"]), ("1 - cosine similarity", 1.0 - d.stats["cosine"])):
            v = v[np.isfinite(v)]
            if len(v):
                q = [v.min(), *np.percentile(v, [50, 90, 99]), v.max()]
                lines.append(f"    {label:<24}" + "".join(f"{x:>10.4g}" for x in q))
    top = d.top(n_top)
    if top:
        who = [f"key {r['key']}" if "key" in r else f"row {r['b']}" for r in top]
        lines.append("  moved most: " + ", ".join(f"{w} (L2 {r['l2']:.4g})" for w, r in zip(who, top)))
    return lines


def run_demo(directory: str | None = None, *, quiet: bool = False, n_rows: int = 20_000,
             dim: int = 64, out: TextIO | None = None) -> int:
    """Run the end-to-end example and tell it, one CLI command per step, in about one screen.

    In a new repository at ``directory``, which is kept; without one, in a temporary directory
    that is removed at the end. ``quiet`` prints only the kept repository's path. Returns 0,
    or 1 if a check along the way failed.

    Examples
    --------
    >>> import io, os, tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     run_demo(os.path.join(d, "demo"), n_rows=2000, dim=8, out=io.StringIO())
    0
    """
    stream = out if out is not None else sys.stdout
    keep = directory is not None
    path = os.path.abspath(directory) if directory is not None else tempfile.mkdtemp(prefix="embfmt-demo-")
    try:
        return _story(path, keep, quiet, n_rows, dim, stream)
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


def _story(path: str, keep: bool, quiet: bool, n_rows: int, dim: int, stream: TextIO) -> int:

    def say(*parts: Any) -> None:
        if not quiet:
            print(*parts, file=stream)

    def cmd(text: str) -> None:
        say(f"$ {text}")

    def res(text: str) -> None:
        say(f"  {text}")

    if quiet and keep:
        print(path, file=stream)
    say(f"embfmt demo: the life of {DEMO_TABLE} ({n_rows} x {dim} float32 embeddings, keyed by item id),")
    say("step by step as CLI commands, " + (f"in {path}." if keep else
                                            "in a temporary repository (`embfmt demo DIR` keeps one)."))
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
        ("v1", x1, keys1, "v1: initial export", "initial"),
        ("v2", x2, None, f"v2: {n_sparse} items re-embedded", "sparse"),
        ("v3", x3, None, "v3: one fine-tuning epoch", "fine-tune"),
        ("v4", x4, keys4, f"v4: {n_new} new items appended", "append"),
    ]
    ok = True
    cmd(f"embfmt init {path}")
    with Repo.init(path) as repo:
        ids: dict[str, str] = {}
        total_raw = 0
        parent: str | None = None
        for step, (label, x, keys, message, kind) in enumerate(steps):
            cmd(f"embfmt commit {DEMO_TABLE}={label}.npy"
                + (f" --keys {DEMO_TABLE}={label}-ids.npy" if keys is not None else "")
                + f' -m "{message}"')
            ids[label] = repo.commit(
                {DEMO_TABLE: x}, message=message, author=_AUTHOR,
                metadata={"run": "demo-1", "step": step, "update": kind},
                keys={DEMO_TABLE: keys if keys is not None else "carry"},  # same rows: keep keys
                identity={DEMO_TABLE: dict(DEMO_IDENTITY)})
            w = repo.show(ids[label])["tables"][DEMO_TABLE]["write"]
            total_raw += x.nbytes
            if parent is None:
                what = f"new table, {_fmt_bytes(x.nbytes)}"
            elif w["rows"] > w["parent_rows"]:
                what = f"{w['rows'] - w['parent_rows']} rows added"
            else:
                what = ("every row changed" if w["rows_changed"] == w["rows"]
                        else f"{w['rows_changed']} rows changed")
            res(f"{what}; {_stored(w, parent, x.nbytes)}")
            parent = label
        res(f"4 versions take {_fmt_bytes(repo.disk_usage())} on disk; as 4 .npy files, "
            f"{_fmt_bytes(total_raw)}")
        say()

        for a, b, rev_a, rev_b in (("v1", "v2", "HEAD~3", "HEAD~2"), ("v2", "v3", "HEAD~2", "HEAD~1")):
            cmd(f"embfmt diff {rev_a} {rev_b}    # {a} -> {b}")
            d = repo.diff(ids[a], ids[b], DEMO_TABLE)
            for line in _diff_lines(d):
                res(line)
            if a == "v1" and not np.array_equal(d.changed_b, replaced):
                ok = False
                res("FAILED: the diff does not match the update")
        say()

        cmd("embfmt tag v1 HEAD~3")
        repo.tag("v1", ids["v1"])
        cmd("embfmt verify")
        rep = repo.verify()
        res(f"{'ok' if rep.ok else 'FAILED'}: {rep.commits} commits, {rep.tables} table versions, "
            f"{rep.chunks} chunks, {rep.keys} key objects checked")
        for err in rep.errors:
            res(f"{err['object']} [{err['kind']}]: {err['error']}")
        branch = repo.head_branch
        cmd('embfmt restore v1 -m "roll back to v1"')
        rid = repo.restore("v1", message="roll back to v1")
        same = repo.open(DEMO_TABLE).fingerprint == repo.open(DEMO_TABLE, "v1").fingerprint
        res(f"new commit {rid[:12]} on {branch}, no chunk written: {DEMO_TABLE} "
            + ("equals v1 again (same fingerprint)" if same else "DIFFERS from v1"))
        cmd("embfmt log")
        for c in repo.log():
            res(f"{c.id[:12]}  {c.message}")
        final = repo.verify()
        ok = ok and rep.ok and final.ok and same
    say()
    if keep:
        say(f"Explore it: embfmt -C {path} log   (or show, diff, checkout, blame)")
    else:
        say(f"Removed {path}. Keep one to explore: embfmt demo DIR")
    return 0 if ok else 1
