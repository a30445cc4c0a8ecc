"""The git-like verbs of the CLI in real processes: log --oneline / A..B / --table, revert
(undo one commit) and restore (commit REV's content again)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from embfmt.repo import Repo

from .test_cli_repo import fails, ok, run, run_all


def _x(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 8)).astype(np.float32)


@pytest.fixture()
def hist(tmp_path: Path) -> dict[str, Any]:
    """c0 adds t, c1 adds u, c2 changes rows 1 and 2 of t, c3 changes row 5 of t; tag v1 = c1."""
    path = tmp_path / "repo"
    x = _x(50, 0)
    with Repo.init(path) as repo:
        c0 = repo.commit({"t": x}, message="add t")
        c1 = repo.commit({"u": _x(4, 1)}, message="add u\n\nmore words")
        x2 = x.copy()
        x2[[1, 2]] += 1
        c2 = repo.commit({"t": x2}, message="edit t rows 1 2")
        x3 = x2.copy()
        x3[5] += 1
        c3 = repo.commit({"t": x3}, message="edit t row 5")
        repo.tag("v1", c1)
    return {"path": path, "ids": [c0, c1, c2, c3], "x": x, "x3": x3}


def test_log_oneline_ranges_and_table(hist: dict[str, Any]) -> None:
    C = ("-C", str(hist["path"]))
    c0, c1, c2, c3 = hist["ids"]
    res = run_all({
        "oneline": (*C, "log", "--oneline"),
        "range": (*C, "log", "v1..HEAD", "--json"),
        "open_range": (*C, "log", f"{c2[:10]}..", "--oneline"),
        "empty": (*C, "log", "HEAD..v1", "--json"),
        "table": (*C, "log", "--table", "t", "--oneline"),
        "table_n": (*C, "log", "--table", "u", "-n", "1", "--json"),
        "combined": (*C, "log", f"{c0}..HEAD", "--table", "t", "-n", "1", "--oneline"),
        "sym": (*C, "log", "v1...HEAD"),
        "bad_table": (*C, "log", "--table", "../x"),
        "help": ("log", "--help"),
    })
    lines = ok(res["oneline"]).stdout.splitlines()
    assert lines == [f"{c3[:12]} (HEAD -> main) edit t row 5", f"{c2[:12]} edit t rows 1 2",
                     f"{c1[:12]} (tag: v1) add u", f"{c0[:12]} add t"]
    assert [c["id"] for c in json.loads(ok(res["range"]).stdout)] == [c3, c2]  # like git: not v1's
    assert ok(res["open_range"]).stdout.splitlines() == [lines[0]]  # A.. is A..HEAD
    assert json.loads(ok(res["empty"]).stdout) == []
    assert ok(res["table"]).stdout.splitlines() == [lines[0], lines[1], lines[3]]  # not c1 (u only)
    assert [c["id"] for c in json.loads(ok(res["table_n"]).stdout)] == [c1]
    assert ok(res["combined"]).stdout.splitlines() == [lines[0]]
    fails(res["sym"], "bad-revision", "A..B")
    fails(res["bad_table"], "bad-ref-name", "'../x'")
    h = ok(res["help"]).stdout
    assert "--oneline" in h and "A..B" in h and "--table" in h


def test_revert_and_restore(hist: dict[str, Any]) -> None:
    path = hist["path"]
    C = ("-C", str(path))
    c0, c1, c2, c3 = hist["ids"]
    rv = json.loads(ok(run(*C, "revert", c2[:12], "--json")).stdout)
    assert rv["reverts"] == c2 and rv["branch"] == "main" and rv["tables"] == {"t": "changed"}
    with Repo(path) as repo:
        want = hist["x3"].copy()
        want[[1, 2]] = hist["x"][[1, 2]]  # c2's rows back, c3's row 5 kept
        assert repo.read("t").tobytes() == want.tobytes()
        assert repo.log()[0].message.startswith('Revert "edit t rows 1 2"')
        objects = sorted(p.name for p in (path / "objects").rglob("*"))
        branches = repo.branches()
    res = run_all({
        "again": (*C, "revert", c2),  # its rows now hold c1's values: a conflict
        "text": (*C, "show", "HEAD"),
        "help": ("revert", "--help"),
    })
    line = fails(res["again"], "revert-conflict", "'t'", "rows 1, 2", "nothing was committed")
    assert c2[:12] in line
    with Repo(path) as repo:  # nothing written, no ref moved
        assert sorted(p.name for p in (path / "objects").rglob("*")) == objects
        assert repo.branches() == branches
    assert f"Reverts: {c2}" in ok(res["text"]).stdout
    assert "restore" in ok(res["help"]).stdout
    rs = json.loads(ok(run(*C, "restore", "v1", "-m", "back to v1", "--json")).stdout)
    assert rs["restored_from"] == c1
    res = run_all({"show": (*C, "show", "HEAD", "--json"), "text": (*C, "show", "HEAD")})
    s = json.loads(ok(res["show"]).stdout)
    assert s["metadata"]["embfmt"]["restored_from"] == c1 and s["message"] == "back to v1"
    assert f"Restore: tables of {c1}" in ok(res["text"]).stdout
    with Repo(path) as repo:
        assert repo.get_commit(rs["id"]).tables == repo.get_commit(c1).tables


def test_ls_and_show_rev_table(hist: dict[str, Any]) -> None:
    C = ("-C", str(hist["path"]))
    c0, c1, c2, c3 = hist["ids"]
    res = run_all({
        "ls": (*C, "ls"),
        "ls_json": (*C, "ls", "v1", "--json"),
        "show": (*C, "show", "HEAD:t"),
        "show_json": (*C, "show", f"{c2[:10]}:t", "--json"),
        "show_new": (*C, "show", "v1:u", "--json"),
        "no_table": (*C, "show", "HEAD:nope"),
        "bad_rev": (*C, "ls", "nope"),
        "help": ("ls", "--help"),
    })
    lines = ok(res["ls"]).stdout.splitlines()
    assert lines[0] == f"commit {c3} (HEAD -> main)"
    assert lines[1].split() == ["TABLE", "DTYPE", "SHAPE", "RAW", "STORED", "KEYS", "IDENTITY"]
    assert lines[2].split()[:6] == ["t", "float32", "50", "x", "8", "1.6"]  # 1600 B raw
    assert lines[3].split()[:5] == ["u", "float32", "4", "x", "8"]
    ls = json.loads(ok(res["ls_json"]).stdout)
    assert ls["commit"] == c1 and [t["table"] for t in ls["tables"]] == ["t", "u"]
    t = ls["tables"][0]
    assert (t["rows"], t["dim"], t["bytes_raw"], t["keys"], t["keys_count"]) == (50, 8, 1600, False, 0)
    assert t["bytes_stored"] > 0 and t["fingerprint"].startswith("emb1:b3:")
    text = ok(res["show"]).stdout
    assert f"table t at HEAD (commit {c3[:12]})" in text
    assert "1 rows changed" in text and f"vs parent {c2[:12]}" in text and "l2" in text
    d = json.loads(ok(res["show_json"]).stdout)
    assert d["commit"] == c2 and d["change"]["rows_changed"] == 2 and d["change"]["parent"] == c1
    assert json.loads(ok(res["show_new"]).stdout)["change"]["status"] == "new"
    fails(res["no_table"], "not-found", "'nope'")
    fails(res["bad_rev"], "not-found", "'nope'")
    assert "stored bytes" in ok(res["help"]).stdout


def test_init_in_a_project_directory(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    (project / "data" / "sub").mkdir(parents=True)
    np.save(project / "data" / "a.npy", _x(10, 3))
    (project / "README").write_text("mine")
    r = json.loads(ok(run("init", "--json", cwd=project)).stdout)
    assert r == {"path": str(project / ".embfmt"), "branch": "main"}
    assert (project / ".embfmt" / "embfmt.json").is_file() and (project / "README").read_text() == "mine"
    # from a subdirectory, without -C: relative paths stay relative to where we are
    cid = ok(run("commit", "t=../a.npy", "-m", "from a subdir", cwd=project / "data" / "sub")).stdout.strip()
    res = run_all({
        "log": (("log", "--oneline"), project / "data"),
        "C_sub": ("-C", str(project / "data" / "sub"), "log", "--json"),
        "again": (("init",), project),
        "again_sub": (("init",), project / "data"),  # a nested project of its own is allowed
        "outside": (("log",), tmp_path),
        "bare": ("init", str(tmp_path / "bare"), "--json"),
    })
    assert ok(res["log"]).stdout.startswith(f"{cid[:12]} (HEAD -> main) from a subdir")
    assert [c["id"] for c in json.loads(ok(res["C_sub"]).stdout)] == [cid]
    fails(res["again"], "ref-exists", str(project / ".embfmt"))
    ok(res["again_sub"])
    assert (project / "data" / ".embfmt" / "embfmt.json").is_file()
    fails(res["outside"], "not-a-repository", str(tmp_path), ".embfmt")
    assert json.loads(ok(res["bare"]).stdout)["path"] == str(tmp_path / "bare")
    assert (tmp_path / "bare" / "embfmt.json").is_file()  # init PATH: PATH is the repository
    assert not (tmp_path / "bare" / ".embfmt").exists()


def test_commit_dry_run(hist: dict[str, Any], tmp_path: Path) -> None:
    path = hist["path"]
    C = ("-C", str(path))
    y = np.concatenate([hist["x3"], _x(6, 9)])
    y[7] += 1
    np.save(tmp_path / "y.npy", y)
    np.save(tmp_path / "n.npy", _x(3, 10))

    def state() -> tuple[list[tuple[str, int]], list[tuple[str, bytes]]]:
        objs = sorted((str(p.relative_to(path)), p.stat().st_size) for p in (path / "objects").rglob("*"))
        refs = sorted((str(p.relative_to(path)), p.read_bytes()) for p in [*(path / "refs").rglob("*"),
                                                                            path / "HEAD"] if p.is_file())
        return objs, refs

    before = state()
    args = (*C, "commit", f"t={tmp_path / 'y.npy'}", f"n={tmp_path / 'n.npy'}", "-m", "m", "--dry-run")
    res = run_all({"text": args, "json": (*args, "--json")})
    text = ok(res["text"]).stdout
    assert text.startswith("dry run: nothing was written")
    assert "t  changed" in text and "1 rows changed, 6 added" in text and "n  new" in text
    plan = json.loads(ok(res["json"]).stdout)
    assert plan["dry_run"] is True and plan["parent"] == hist["ids"][3]
    assert plan["tables"]["t"]["rows_changed"] == 1 and plan["tables"]["t"]["rows_added"] == 6
    assert plan["bytes_written"] == sum(t["bytes_written"] for t in plan["tables"].values()) > 0
    assert state() == before  # no object written, no ref moved
    assert "--dry-run" in ok(run("commit", "--help")).stdout


def test_did_you_mean(hist: dict[str, Any]) -> None:
    C = ("-C", str(hist["path"]))
    res = run_all({
        "command": ("lgo",),
        "option": (*C, "log", "--onelnie"),
        "choice": ("fingerprint", "x.npy", "--format", "npz"),
        "branch": (*C, "show", "mian"),
        "tag": (*C, "log", "v11"),
        "head": (*C, "ls", "head~1"),
        "none": (*C, "show", "zzzzzz"),
        "range": (*C, "log", "mian..HEAD"),
    })

    def one_line(r: Any, *words: str) -> str:
        assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr
        assert len(r.stderr.splitlines()) == 1, r.stderr
        for w in words:
            assert w in r.stderr, (w, r.stderr)
        return str(r.stderr)

    one_line(res["command"], "unknown command 'lgo'", "did you mean 'log'?")
    one_line(res["option"], "--onelnie", "did you mean '--oneline'")
    one_line(res["choice"], "'npz'", "did you mean 'npy'")
    fails(res["branch"], "not-found", "unknown revision 'mian'", "did you mean 'main'?")
    fails(res["tag"], "not-found", "'v11'", "did you mean 'v1'?")
    fails(res["head"], "not-found", "'head'", "did you mean 'HEAD'?")
    assert "did you mean" not in fails(res["none"], "not-found", "'zzzzzz'")
    fails(res["range"], "not-found", "'mian'", "did you mean 'main'?")


def test_show_and_log_read_metadata_embfmt_through_the_commit(tmp_path: Path) -> None:
    """``metadata.embfmt`` is parsed in one place (Commit.embfmt_meta): a commit from another
    writer whose ``embfmt`` member is no object is shown like one without it, where show and log
    once read the dict themselves and failed on it."""
    from embfmt.objects.commit import Commit

    path = tmp_path / "repo"
    with Repo.init(path) as repo:
        c0 = repo.commit({"t": _x(5, 0)}, message="add t")
        p = repo.get_commit(c0)
        c = Commit(dict(p.tables), (c0,), p.author, p.time, "by another writer",
                   {"embfmt": "not an object", "who": "x"}, dict(p.environment))
        repo.store.put(c.object_id(), c.to_bytes())
        with repo.refs.locked():
            repo.refs.cas("heads", "main", bytes.fromhex(c0), c.object_id())
    cid = c.object_id().hex()
    res = run_all({"show": ("-C", str(path), "show"), "log": ("-C", str(path), "log")})
    shown = ok(res["show"]).stdout
    assert shown.startswith(f"commit {cid}") and 'Meta:    {"who": "x"}' in shown
    assert "Restore:" not in shown and "Reverts:" not in shown and "by another writer" in shown
    assert ok(res["log"]).stdout.count("commit ") == 2
