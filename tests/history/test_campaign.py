"""The fault campaign of tests/history/campaign.py at reduced size: damaged repositories of every
file kind and damage kind, forged objects and zstd bombs, every question asked in child
processes (a crash or a hang cannot take pytest down), and a race of writers with gc(0) loops.
Every answer must be bit-exactly right or a typed error (verify: a report)."""

from __future__ import annotations

from pathlib import Path

from tests.history import campaign


def test_campaign_reduced(tmp_path: Path) -> None:
    rep = campaign.run(60, seed=20, work=str(tmp_path), n_forge=26, n_bomb=12)
    cats = rep["categories"]
    assert cats["damage"]["cases"] >= 45  # most planned mutations apply (the rest do not fit their file)
    assert cats["forge"]["cases"] >= 20 and cats["bomb"]["cases"] >= 10
    assert rep["bad"] == [], rep["bad"][:10]
    assert set(rep["tally"]) <= {"ok", "typed"} and rep["tally"]["typed"] > 0
    for c in ("forge", "bomb"):  # verify reports every forgery and every bomb
        assert cats[c]["detected"] == cats[c]["cases"], cats[c]


def test_race_reduced(tmp_path: Path) -> None:
    """Writers committing, orphaning and moving refs onto old orphans, gc(0) looping."""
    rep = campaign.race(str(tmp_path), n_writers=3, rounds=12, seed=20)
    assert rep["bad"] == [], rep["bad"][:10]
    assert rep["lost"] == rep["broken_moves"] == rep["untyped"] == rep["hangs"] == 0 and rep["verify_ok"]
    assert rep["commits_acknowledged"] > 10 and rep["moves_acknowledged"] > 5 and rep["gc_runs"] > 0
