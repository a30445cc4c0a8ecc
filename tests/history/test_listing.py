"""``Repo.ls`` and ``Repo.show_table``: what a revision holds, from headers and metadata only."""

from __future__ import annotations

import os

import numpy as np
import pytest

from embfmt.errors import NotFoundError
from embfmt.repo import Repo

from .conftest import object_files, objects_by_kind


def test_ls_counts_every_object_a_read_touches(repo: Repo) -> None:
    x = np.random.default_rng(0).standard_normal((70_000, 4)).astype(np.float32)  # 2 chunks
    repo.commit({"emb": x, "small": x[:3, :2].astype(np.float16)},
                keys={"emb": np.arange(70_000) * 2}, identity={"emb": {"model": "m", "revision": "1"}})
    ls = repo.ls()
    assert ls["commit"] == repo.resolve("HEAD")
    emb, small = ls["tables"]
    assert (emb["table"], emb["dtype"], emb["rows"], emb["dim"]) == ("emb", "float32", 70_000, 4)
    assert emb["bytes_raw"] == x.nbytes and small["bytes_raw"] == 3 * 2 * 2
    assert emb["keys"] is True and emb["keys_count"] == 70_000 and small["keys"] is False
    assert emb["identity"] == {"model": "m", "revision": "1"} and emb["chunks"] == 2
    # one commit: every object but the commit belongs to exactly one of the two tables
    files = object_files(repo.path)
    commit = objects_by_kind(repo.path)["commit"]
    total = sum(os.path.getsize(p) for oid, p in files.items() if oid not in commit)
    assert emb["bytes_stored"] + small["bytes_stored"] == total


def test_show_table_change_against_the_parent(repo: Repo) -> None:
    x = np.random.default_rng(1).standard_normal((100, 8)).astype(np.float32)
    c0 = repo.commit({"t": x, "u": x})
    d0 = repo.show_table(c0, "t")
    assert d0["change"] == {"parent": None, "status": "new"}
    y = np.concatenate([x, x[:5]])
    y[[3, 50]] += 2
    c1 = repo.commit({"t": y})
    d = repo.show_table("HEAD", "t")
    assert d["commit"] == c1 and d["rows"] == 105 and d["stored"]["keys"] == 0
    ch = d["change"]
    assert (ch["status"], ch["parent"], ch["parent_rows"], ch["rows_changed"], ch["rows_added"],
            ch["rows_removed"]) == ("changed", c0, 100, 2, 5, 0)
    assert ch["drift"]["l2"]["max"] == pytest.approx(float(np.linalg.norm(np.full(8, 2.0))), rel=1e-6)
    assert sum(d["codecs"].values()) == d["chunks"]
    assert repo.show_table("HEAD", "u")["change"]["status"] == "unchanged"
    with pytest.raises(NotFoundError, match="'nope'"):
        repo.show_table("HEAD", "nope")
