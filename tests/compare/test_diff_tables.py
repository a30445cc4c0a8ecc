"""``embfmt diff A B`` and ``repo.diff(a, b)`` compare every table (issue 13, defect 4: with
tables a and b, changing only b, ``diff HEAD~1 HEAD`` said identical and exited 0)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import embfmt
from embfmt.compare.diff import TablesDiff

from .test_cli_diff import HAVE_MPL, code, error, run_all
from .test_schema_doc import documented, paths


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("diff_tables")
    x = np.arange(64, dtype=np.float32).reshape(16, 4)
    y = x.copy()
    y[[2, 9]] += 1
    repo = embfmt.Repo.init(root / "r")
    c1 = repo.commit({"a": x, "b": x, "s": x}, message="one")
    c2 = repo.commit({"b": y}, message="only b changes")
    c3 = repo.commit({"c": x[:3], "s": x.astype(np.float16)}, remove=("a",), message="three",
                     allow_schema_change=True)
    return {"root": root, "repo": repo, "c1": c1, "c2": c2, "c3": c3}


@pytest.fixture(scope="module")
def res(env: dict[str, Any]) -> dict[str, Any]:
    C = ("-C", str(env["root"] / "r"))
    c1, c2, c3 = env["c1"], env["c2"], env["c3"]
    return run_all({
        "text": (*C, "diff", c1, c2),
        "json": (*C, "diff", c1, c2, "--json", "--rows"),
        "same": (*C, "diff", c1, c1),
        "same_json": (*C, "diff", c1, c1, "--json"),
        "one_table": (*C, "diff", c1, c2, "--table", "a", "--json"),
        "stat": (*C, "diff", c2, c3, "--stat"),
        "stat12": (*C, "diff", c1, c2, "--stat"),
        "names": (*C, "diff", c2, c3, "--name-only"),
        "status": (*C, "diff", c2, c3, "--name-status"),
        "json23": (*C, "diff", c2, c3, "--json"),
        "text23": (*C, "diff", c2, c3),
        "stat_json": (*C, "diff", c1, c2, "--stat", "--json"),
        "names_same": (*C, "diff", c1, c1, "--name-only"),
        "plot": (*C, "diff", c1, c3, "--plot", "tables.png", "--stat"),
    })


def test_changing_one_of_two_tables_is_a_difference(res: dict[str, Any]) -> None:
    out = code(res["text"], 1).stdout
    assert "== table b: changed ==" in out and "== table a: unchanged" in out
    assert "2 changed, 0 added, 0 removed" in out  # b's rows
    d = json.loads(code(res["json"], 1).stdout)
    assert d["identical"] is False and set(d["tables"]) == {"a", "b", "s"}
    assert d["tables"]["b"]["status"] == "changed" and d["tables"]["a"]["status"] == "unchanged"
    assert d["tables"]["b"]["diff"]["counts"]["changed"] == 2
    assert d["tables"]["b"]["diff"]["rows"]["changed_b"] == [2, 9]
    assert d["table_counts"] == {"changed": 1, "added": 0, "removed": 0, "unchanged": 2}


def test_identical_revisions_exit_0(res: dict[str, Any]) -> None:
    assert "3 tables: 0 changed, 0 added, 0 removed, 3 unchanged" in code(res["same"], 0).stdout
    assert json.loads(code(res["same_json"], 0).stdout)["identical"] is True
    assert code(res["names_same"], 0).stdout == ""


def test_table_option_keeps_the_single_table_document(res: dict[str, Any]) -> None:
    d = json.loads(code(res["one_table"], 0).stdout)
    assert "tables" not in d and d["identical"] and d["a"]["table"] == "a"


def test_added_removed_and_schema_changed_tables(res: dict[str, Any]) -> None:
    assert code(res["names"], 1).stdout.splitlines() == ["a", "c", "s"]
    assert code(res["status"], 1).stdout.splitlines() == ["D\ta", "A\tc", "M\ts"]
    lines = code(res["stat"], 1).stdout.splitlines()
    assert lines[0].split("|")[0].strip() == "a" and "removed (16 x 4 float32)" in lines[0]
    assert "added (3 x 4 float32)" in lines[1]
    assert "dtype or D changed (float32 x 4 -> float16 x 4)" in lines[2]
    assert lines[3].strip() == "3 tables differ: 1 changed, 1 added, 1 removed; 1 unchanged"
    stat12 = code(res["stat12"], 1).stdout.splitlines()
    assert stat12[0].split("|")[0].strip() == "b" and "2 changed, 0 added, 0 removed (16 -> 16 rows)" in stat12[0]
    d = json.loads(code(res["json23"], 1).stdout)
    t = d["tables"]
    assert (t["a"]["status"], t["c"]["status"], t["s"]["status"], t["b"]["status"]) == \
        ("removed", "added", "changed", "unchanged")
    assert t["c"]["b"]["rows"] == 3 and "diff" not in t["c"] and t["a"]["a"]["dtype"] == "float32"
    assert t["s"]["diff"] is None and t["s"]["b"]["dtype"] == "float16" and t["s"]["reason"]
    out = code(res["text23"], 1).stdout
    assert "== table c: added (3 x 4 float32) ==" in out and "== table a: removed" in out
    assert "float32 -> 16 x 4 float16" in out


def test_summary_and_json_do_not_combine(res: dict[str, Any]) -> None:
    error(res["stat_json"], "bad-argument", "--stat", "--json")


def test_api_compares_every_table(env: dict[str, Any]) -> None:
    repo = env["repo"]
    d = repo.diff(env["c1"], env["c2"])
    assert isinstance(d, TablesDiff) and not d.identical
    assert d.status() == {"a": "unchanged", "b": "changed", "s": "unchanged"}
    assert d["b"].changed_b.tolist() == [2, 9] and sorted(d) == ["a", "b", "s"]
    d23 = repo.diff(env["c2"], env["c3"])
    assert list(d23.added) == ["c"] and list(d23.removed) == ["a"] and list(d23.schema_changed) == ["s"]
    assert d23.changed == ["s"] and sorted(d23) == ["b"]
    assert repo.diff(env["c1"], env["c1"]).identical


def test_multi_table_document_is_documented(env: dict[str, Any]) -> None:
    doc = documented()
    repo = env["repo"]
    single = set()
    for a, b in ((env["c1"], env["c2"]), (env["c2"], env["c3"])):
        d = repo.diff(a, b).to_dict(rows=True)
        for name, t in d["tables"].items():
            if t.get("diff"):
                single |= paths(t["diff"])
        d["tables"] = {"<table>": t for t in d["tables"].values()}
        seen = {p for p in paths(d) if not p.startswith("tables.<table>.diff.")}
        missing = sorted(seen - doc)
        assert not missing, missing
    assert not sorted(single - doc)


@pytest.mark.skipif(not HAVE_MPL, reason="matplotlib is not installed (pip install 'embfmt[plot]')")
def test_plot_of_every_table(res: dict[str, Any], env: dict[str, Any]) -> None:
    code(res["plot"], 1)
    data = (env["root"] / "r" / "tables.png").read_bytes()  # relative to -C
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5 * 1024
