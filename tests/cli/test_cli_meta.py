"""``--meta KEY=VALUE`` stores the string as typed; ``--meta-json KEY=JSON`` a typed value
(issue 13, defect 6: ``version=1.10`` was stored as 1.1, ``sha=0e12`` as 0.0)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import embfmt
from tests.cli.test_cli_repo import fails, ok, run, run_all


@pytest.fixture
def repo_dir(tmp_path: Path) -> Path:
    embfmt.Repo.init(tmp_path / "r").close()
    np.save(tmp_path / "x.npy", np.zeros((3, 2), np.float32))
    return tmp_path


def test_meta_values_are_strings_and_meta_json_is_typed(repo_dir: Path) -> None:
    ok(run("-C", str(repo_dir / "r"), "commit", f"t={repo_dir / 'x.npy'}", "-m", "m",
           "--meta", "version=1.10", "--meta", "sha=0e12", "--meta", "n=NaN", "--meta", "flag=true",
           "--meta", "empty=", "--meta", "eq=a=b", "--meta-json", "lr=0.001",
           "--meta-json", 'tags=[1, "x"]', "--meta-json", "on=true", "--meta-json", "none=null"))
    meta = {k: v for k, v in embfmt.Repo(repo_dir / "r").log()[0].metadata.items() if k != "embfmt"}
    assert meta == {"version": "1.10", "sha": "0e12", "n": "NaN", "flag": "true", "empty": "",
                    "eq": "a=b", "lr": 0.001, "tags": [1, "x"], "on": True, "none": None}


def test_meta_errors_name_the_key(repo_dir: Path) -> None:
    c = ("-C", str(repo_dir / "r"), "commit", f"t={repo_dir / 'x.npy'}", "-m", "m")
    r = run_all({
        "nan": (*c, "--meta-json", "n=NaN"),
        "bad": (*c, "--meta-json", "cfg={oops"),
        "twice": (*c, "--meta", "k=1", "--meta-json", "k=2"),
        "nokey": (*c, "--meta", "=v"),
        "noeq": (*c, "--meta-json", "lr"),
    })
    fails(r["nan"], "bad-argument", "--meta-json n", "'NaN'")
    fails(r["bad"], "bad-argument", "--meta-json cfg")
    fails(r["twice"], "bad-argument", "'k'", "twice")
    fails(r["nokey"], "bad-argument", "'=v'")
    fails(r["noeq"], "bad-argument", "'lr'")
    assert embfmt.Repo(repo_dir / "r").branches() == {}  # nothing was committed
