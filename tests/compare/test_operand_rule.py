"""A file never shadows a revision (issue 13, defect 7: with a file named ``base`` in the
working directory, ``diff base prod`` compared the file and said identical)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

import embfmt

from .test_cli_diff import code, error, run_all


def test_file_and_revision_readings(tmp_path: Path) -> None:
    d = tmp_path / "r"
    repo = embfmt.Repo.init(d)
    x = np.arange(32, dtype=np.float32).reshape(8, 4)
    y = x.copy()
    y[3] += 1
    repo.commit({"t": x}, message="base")
    repo.branch("base")
    repo.commit({"t": y}, message="prod")
    repo.branch("prod")
    # a file named like the branch, holding prod's table: read as a file, "identical"
    with open(d / "base", "wb") as f:
        np.save(f, y)
    np.save(d / "weights.npy", y)
    shutil.copy(d / "weights.npy", d / "weights")  # a bare name that is no revision
    r = run_all({
        "ambiguous": (("diff", "base", "prod"), d),
        "ambiguous_b": (("diff", "prod", "base", "--json"), d),
        "dot_file": (("diff", "./base", "prod", "--json"), d),
        "rev_by_id": (("diff", repo.resolve("base")[:12], "prod", "--json"), d),
        "bare_file": (("diff", "weights", "prod", "--json"), d),
        "ext_file": (("diff", "weights.npy", "prod", "--json"), d),
        "missing_file": (("diff", "./nope", "prod"), d),
        "missing_ext": (("diff", "nope.npy", "prod"), d),
        "with_C": ("-C", str(d), "diff", "base", "prod"),
    })
    line = error(r["ambiguous"], "ambiguous-revision", "'base'", "./base", repo.resolve("base")[:12])
    assert "file" in line and "revision" in line
    error(r["ambiguous_b"], "ambiguous-revision", "'base'")
    error(r["with_C"], "ambiguous-revision", "'base'")
    assert json.loads(code(r["dot_file"], 0).stdout)["a"]["file"] == "./base"  # the file: same as prod
    rev = json.loads(code(r["rev_by_id"], 1).stdout)
    assert rev["a"]["commit"] == repo.resolve("base") and rev["counts"]["changed"] == 1
    assert json.loads(code(r["bare_file"], 0).stdout)["a"]["file"] == "weights"
    assert json.loads(code(r["ext_file"], 0).stdout)["a"]["file"] == "weights.npy"
    error(r["missing_file"], "not-found", "nope")
    error(r["missing_ext"], "not-found", "nope.npy")
