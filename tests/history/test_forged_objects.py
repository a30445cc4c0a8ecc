"""Forged but consistent objects (issue 20 item 7): objects re-hashed so that their ids are
right and wired into re-hashed commits, which lie about each other. Every answer is the truth
of the chunks or a typed error, and verify reports each lie (spec §14-§16.1, §18.3). The
forgeries are those of the fault campaign (tests/history/campaign.py)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

import embfmt
from tests.history.campaign import forge


def _repo(path: Path) -> list[str]:
    rng = np.random.default_rng(3)
    r = embfmt.Repo.init(path)
    x = rng.standard_normal((100, 8)).astype(np.float32)
    v1 = r.commit({"t": x}, keys={"t": np.arange(100)})
    y = x.copy()
    y[[3, 40, 41]] += 1
    v2 = r.commit({"t": y}, keys={"t": "carry"})
    z = np.concatenate([y, np.ones((5, 8), np.float32)])
    z[7] = 0
    v3 = r.commit({"t": z}, keys={"t": np.arange(105)})
    r.close()
    return [v1, v2, v3]


def _forged(path: Path, how: str, at: int) -> tuple[embfmt.Repo, list[str]]:
    revs = _repo(path)
    got = forge(str(path), revs, how, random.Random(1), at=at)
    assert got is not None
    return embfmt.Repo(path), got[0]


def _reported(r: embfmt.Repo, kind: str = "bad-object") -> list[dict]:
    rep = r.verify()
    assert not rep.ok
    found = [e for e in rep.errors if e["kind"] == kind]
    assert found, rep.errors
    return found


@pytest.mark.parametrize("how", ["change_drop_row", "change_add_row", "change_header"])
def test_a_change_object_that_lies_about_its_rows_answers_nothing(tmp_path: Path, how: str) -> None:
    """Before: diff and changed_rows between a commit and its parent returned the record's
    rows (one missing, one too many) or its row counts, without error; verify said ok."""
    r, V = _forged(tmp_path, how, 2)
    for ask in (lambda: r.diff(V[1], V[2], "t"), lambda: r.changed_rows("t", V[1], V[2]),
                lambda: r.diff(V[2], V[1], "t")):
        with pytest.raises(embfmt.EmbfmtError) as e:
            ask()
        assert e.value.kind.value == "bad-object" and "change object" in str(e.value)
    assert any("change object" in e["error"] for e in _reported(r))


def test_a_change_object_of_other_versions_is_not_used_and_is_reported(tmp_path: Path) -> None:
    r, V = _forged(tmp_path, "change_tables", 2)
    truth = embfmt.diff(r.open("t", V[1]), r.open("t", V[2]))
    d = r.diff(V[1], V[2], "t")
    assert d.info.get("source") != "change-record"
    assert d.changed_b.tolist() == truth.changed_b.tolist() == [7]
    assert any("other table versions" in e["error"] for e in _reported(r))


def test_verify_recomputes_the_drift_a_change_object_records(tmp_path: Path) -> None:
    r, V = _forged(tmp_path, "change_stats", 1)
    assert any("drift" in e["error"] for e in _reported(r))


def test_verify_of_an_honest_repository_finds_nothing(tmp_path: Path) -> None:
    _repo(tmp_path)
    assert embfmt.Repo(tmp_path).verify().ok


@pytest.mark.parametrize("how, at", [("keys_duplicate", 0), ("keys_count", 2), ("tv_keys_other", 1)])
def test_a_key_object_that_does_not_fit_its_version_is_refused(tmp_path: Path, how: str, at: int) -> None:
    """Before: keys() returned two rows under one key, or 99 / 105 keys for 100 rows."""
    r, V = _forged(tmp_path, how, at)
    with pytest.raises(embfmt.EmbfmtError) as e:
        r.keys("t", V[at])
    assert e.value.kind.value == "bad-object"
    _reported(r)


def test_blame_through_a_version_whose_dim_lies(tmp_path: Path) -> None:
    """Before: blame reported a schema change (D 7 -> 8) that no chunk holds."""
    r, V = _forged(tmp_path, "tv_dim", 1)
    with pytest.raises(embfmt.EmbfmtError) as e:
        r.blame("t", 40, rev=V[2])
    assert e.value.kind.value == "bad-header"
    _reported(r, "bad-header")
