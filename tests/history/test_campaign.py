"""The fault campaign of tests/history/campaign.py at reduced size: damaged repositories of every
file kind and damage kind, every question asked in child processes (a crash or a hang cannot
take pytest down). Every answer must be bit-exactly right or a typed error (verify: a report)."""

from __future__ import annotations

from pathlib import Path

from tests.history import campaign


def test_campaign_reduced(tmp_path: Path) -> None:
    rep = campaign.run(60, seed=20, work=str(tmp_path))
    assert rep["cases"] >= 45  # most planned mutations apply (the rest do not fit their file)
    assert rep["bad"] == [], rep["bad"][:10]
    assert set(rep["tally"]) <= {"ok", "typed"} and rep["tally"]["typed"] > 0
