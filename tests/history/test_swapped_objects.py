"""Two chunk objects of the same shape whose files were swapped (damage from outside): every
answer is the right one or a typed error naming the object, never the other chunk's rows.

A chunk's id is the BLAKE3 of its decoded rows, which its header and rowprint section do not
contain: a fast path that reads only those (diff, changed_rows, rows_subset, blame, the
rowprint cache) must establish that the header it reads belongs to the id it asked for
(spec §13.7) before trusting it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import embfmt
from embfmt.errors import EmbfmtError

DIM = 4096  # float32: 16 KiB rows, 64 rows a chunk


def _swap(repo: embfmt.Repo, a: bytes, b: bytes) -> None:
    pa, pb = repo.store.path(a), repo.store.path(b)
    tmp = pa + ".swap"
    os.rename(pa, tmp)
    os.rename(pb, pa)
    os.rename(tmp, pb)


def _same_answer(fn, truth) -> str:
    """'error' for a typed error, 'ok' for the right answer; anything else fails."""
    try:
        got = fn()
    except EmbfmtError:
        return "error"
    assert got == truth, "silently wrong answer"
    return "ok"


def _diff_answer(d: embfmt.Diff) -> tuple:
    return (d.changed_b.tolist(), d.added.tolist(), d.removed.tolist(),
            {k: np.asarray(v).tobytes() for k, v in (d.stats or {}).items()})


def _setup(tmp_path: Path, n_chunks: int, whole_chunks: bool) -> tuple[embfmt.Repo, np.ndarray, np.ndarray, str, str]:
    rng = np.random.default_rng(7)
    cr = 64 if DIM == 4096 else 0
    x1 = rng.standard_normal((cr * n_chunks, DIM)).astype(np.float32)
    x2 = x1.copy()
    if whole_chunks:  # every row of chunks 0 and 1 changes: rowprints alone decide
        x2[:2 * cr] = rng.standard_normal((2 * cr, DIM)).astype(np.float32)
    else:  # a few rows of each: sparse patches of the same base positions
        x2[[1, 2, cr + 5, cr + 9]] += 1.0
    repo = embfmt.Repo.init(tmp_path / "r")
    v1 = repo.commit({"t": x1})
    v2 = repo.commit({"t": x2})
    return repo, x1, x2, v1, v2


@pytest.mark.parametrize("whole_chunks", [True, False], ids=["full-chunks", "sparse-patches"])
def test_swapped_chunks_never_give_the_other_chunks_rows(tmp_path: Path, whole_chunks: bool) -> None:
    repo, x1, x2, v1, v2 = _setup(tmp_path, 4, whole_chunks)
    d0, d1 = repo.table_version("t", v2).digests[:2]
    repo.close()
    _swap(repo, d0, d1)
    truth = {exact: _diff_answer(embfmt.diff(x1, x2, exact=exact)) for exact in (True, False)}
    changed = np.flatnonzero((x1.view(np.uint32) != x2.view(np.uint32)).any(axis=1)).tolist()
    rows = [0, 1, 2, 64 + 5, 64 + 9, 70]
    outcomes = []
    for exact in (True, False):
        outcomes.append(_same_answer(lambda: _diff_answer(embfmt.diff(
            embfmt.Repo(repo.path).open("t", v1), embfmt.Repo(repo.path).open("t", v2), exact=exact)),
            truth[exact]))
        outcomes.append(_same_answer(
            lambda: embfmt.Repo(repo.path).changed_rows("t", v1, v2, exact=exact).changed.tolist(), changed))
    outcomes.append(_same_answer(
        lambda: embfmt.Repo(repo.path).open("t", v2).rows(np.array(rows)).tobytes(), x2[rows].tobytes()))
    # The diff against the stored side and a matrix: rowprints of the stored side only.
    outcomes.append(_same_answer(lambda: _diff_answer(embfmt.diff(
        embfmt.Repo(repo.path).open("t", v2), x1)), _diff_answer(embfmt.diff(x2, x1))))
    # Each answer is right or an error (_same_answer); the stats of a diff need the rows of
    # the swapped chunks, so that one cannot be right.
    assert outcomes[0] == "error", outcomes
    assert not embfmt.Repo(repo.path).verify().ok


def test_swap_after_rowprint_cache_filled_and_before(tmp_path: Path) -> None:
    """The rowprint cache (cache/rowprints/, 32 chunks or more) is filled only from rowprints
    that belong to their chunk ids: a diff after a swap neither fills it with the other chunk's
    rowprints nor answers from them."""
    repo, x1, x2, v1, v2 = _setup(tmp_path, 33, whole_chunks=False)
    x3 = x2.copy()
    x3[::3] += 2.0  # most chunks differ: the cache is used
    v3 = repo.commit({"t": x3})
    d0, d1 = repo.table_version("t", v3).digests[:2]
    _swap(repo, d0, d1)
    truth = _diff_answer(embfmt.diff(x1, x3, exact=False))
    for _ in range(2):  # the first call may fill the cache; the second reads it
        assert _same_answer(lambda: _diff_answer(embfmt.diff(
            embfmt.Repo(repo.path).open("t", v1), embfmt.Repo(repo.path).open("t", v3), exact=False)),
            truth) == "error"
    _swap(repo, d0, d1)  # repaired: the right answer again, from whatever the cache holds
    for _ in range(2):
        assert _diff_answer(embfmt.diff(embfmt.Repo(repo.path).open("t", v1),
                                        embfmt.Repo(repo.path).open("t", v3), exact=False)) == truth


def test_seals_survive_a_new_process_and_cache_loss(tmp_path: Path) -> None:
    """The right answer with the binding records (cache/) present, deleted or damaged."""
    repo, x1, x2, v1, v2 = _setup(tmp_path, 4, whole_chunks=False)
    truth = _diff_answer(embfmt.diff(x1, x2, exact=False))
    for damage in (None, "delete", "flip"):
        cache = Path(repo.path) / "cache"
        if damage == "delete":
            shutil.rmtree(cache, ignore_errors=True)
        elif damage == "flip":
            for f in cache.rglob("*"):
                if f.is_file():
                    b = bytearray(f.read_bytes())
                    b[-1] ^= 1
                    f.write_bytes(bytes(b))
        r = embfmt.Repo(repo.path)
        assert _diff_answer(embfmt.diff(r.open("t", v1), r.open("t", v2), exact=False)) == truth
