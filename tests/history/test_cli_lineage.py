"""`embfmt stamp`, `record-use`, `uses` and `blame` in real processes: output, JSON shape and
exit codes (0 ok, 1 a damaged usage log, 2 usage or input error)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from embfmt.repo import Repo

from ..cli.test_cli_repo import fails, ok, run, run_all

HEX64 = r"^[0-9a-f]{64}$"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("lin") / "repo"
    repo = Repo.init(path)
    rng = np.random.default_rng(11)
    x = rng.standard_normal((600, 64)).astype(np.float32)
    keys = np.arange(600, dtype=np.int64) * 10
    c1 = repo.commit({"emb": x}, keys={"emb": keys}, message="first", author="alice")
    x = x.copy()
    x[42] += 0.25
    c2 = repo.commit({"emb": x}, keys={"emb": keys}, message="tune row 42", author="bob")
    perm = rng.permutation(600)
    c3 = repo.commit({"emb": x[perm]}, keys={"emb": keys[perm]}, message="reorder", author="carol")
    s1 = repo.stamp("emb", c1)
    r1 = repo.record_use(s1, consumer="ranker-v1", context={"job": 1})
    repo.close()
    return {"path": path, "c": [c1, c2, c3], "s1": s1, "r1": r1}


def test_cli_lineage(built: dict[str, Any], tmp_path: Path) -> None:
    P = str(built["path"])
    C = ("-C", P)
    c1, c2, c3 = built["c"]
    s1 = built["s1"]
    res = run_all({
        "stamp": (*C, "stamp", "emb", "HEAD~2"),
        "stamp_json": (*C, "stamp", "emb", "--json"),
        "resolve": (*C, "stamp", "--resolve", s1, "--json"),
        "blame_row": (*C, "blame", "emb", "42", "--rev", c2, "--json"),
        "blame_key": (*C, "blame", "emb", "--key", "420", "--json"),
        "blame_text": (*C, "blame", "emb", "42"),
        "uses_json": (*C, "uses", "--json"),
        "uses_rev": (*C, "uses", s1),
        "uses_other": (*C, "uses", "HEAD", "--json"),
        "show_stamp": (*C, "show", s1, "--json"),
        "e_no_row": (*C, "blame", "emb"),
        "e_both": (*C, "blame", "emb", "1", "--key", "3"),
        "e_bad_row": (*C, "blame", "emb", "-3"),
        "e_missing": (*C, "blame", "emb", "999999"),
        "e_bad_stamp": (*C, "stamp", "--resolve", s1[:-1] + ("0" if s1[-1] != "0" else "1")),
        "e_no_table": (*C, "stamp", "nope"),
        "e_consumer": (*C, "record-use", s1, "--consumer", ""),
        "e_context": (*C, "record-use", s1, "--consumer", "x", "--context", "[1"),
    })
    assert ok(res["stamp"]).stdout.strip() == s1
    sj = json.loads(ok(res["stamp_json"]).stdout)
    assert set(sj) == {"stamp", "table", "commit", "table_version", "fingerprint", "rows", "dim",
                       "dtype", "identity"}
    assert sj["commit"] == c3 and sj["rows"] == 600 and sj["dtype"] == "float32"
    rj = json.loads(ok(res["resolve"]).stdout)
    assert rj["commit"] == c1 and rj["stamp"] == s1 and re.match(HEX64, rj["table_version"])

    br = json.loads(ok(res["blame_row"]).stdout)
    assert set(br) == {"table", "rev", "commit", "row", "key", "entries", "stats"}
    assert br["commit"] == c2 and br["row"] == 42 and br["key"] is None
    assert [(e["kind"], e["commit"], e["message"], e["author"]) for e in br["entries"]] == [
        ("changed", c2, "tune row 42", "bob"), ("added", c1, "first", "alice")]
    ch = br["entries"][0]
    assert set(ch["drift"]) == {"l2", "cosine", "max_abs", "ulp"} and ch["drift"]["max_abs"] > 0
    assert ch["drift_source"] == "change-record" and ch["row"] == ch["parent_row"] == 42
    assert set(br["stats"]) == {"commits_walked", "versions_compared", "rowprint_reads", "chunks_decoded"}
    assert br["stats"]["chunks_decoded"] == 0

    bk = json.loads(ok(res["blame_key"]).stdout)
    assert bk["key"] == 420  # the integer key, not the string typed
    assert [e["kind"] for e in bk["entries"]] == ["changed", "added"]  # the reorder is not a change
    assert bk["entries"][0]["commit"] == c2

    txt = ok(res["blame_text"]).stdout
    assert "row 42" in txt and "tune row 42" in txt and "first" in txt

    uj = json.loads(ok(res["uses_json"]).stdout)
    assert set(uj) == {"rev", "commit", "table", "count", "consumers", "uses"}
    assert uj["count"] == 1 and uj["consumers"] == ["ranker-v1"]
    u = uj["uses"][0]
    assert u["id"] == built["r1"] and u["stamp"] == s1 and u["commit"] == c1 and u["context"] == {"job": 1}
    assert "ranker-v1" in ok(res["uses_rev"]).stdout and "1 uses" in res["uses_rev"].stdout
    uo = json.loads(ok(res["uses_other"]).stdout)
    assert uo["commit"] == c3 and uo["count"] == 0
    assert json.loads(ok(res["show_stamp"]).stdout)["id"] == c1

    fails(res["e_no_row"], "bad-argument")
    fails(res["e_both"], "bad-argument")
    assert res["e_bad_row"].returncode == 2
    fails(res["e_missing"], "not-found", "999999")
    fails(res["e_bad_stamp"], "bad-stamp", "check value")
    fails(res["e_no_table"], "not-found", "nope")
    fails(res["e_consumer"], "bad-argument")
    fails(res["e_context"], "bad-argument", "--context")


def test_cli_record_use_and_tampered_log(built: dict[str, Any], tmp_path: Path) -> None:
    import shutil

    P = tmp_path / "copy"
    shutil.copytree(built["path"], P)
    s1 = built["s1"]
    r = ok(run("-C", str(P), "record-use", s1, "--consumer", "svc", "--context", '{"q": "x"}', "--json"))
    d = json.loads(r.stdout)
    assert re.match(HEX64, d["id"]) and d["context"] == {"q": "x"}
    assert [u.consumer for u in Repo(P).uses()] == ["ranker-v1", "svc"]
    log = P / "lineage" / "uses.log"
    lines = log.read_bytes().split(b"\n")
    lines[0] = lines[0].replace(b"ranker-v1", b"ranker-v9")
    log.write_bytes(b"\n".join(lines))
    res = run_all({"uses": ("-C", str(P), "uses"), "verify": ("-C", str(P), "verify")})
    assert res["uses"].returncode == 1 and "lineage/uses.log:2" in res["uses"].stderr
    assert "Traceback" not in res["uses"].stderr
    assert res["verify"].returncode == 1 and "lineage/uses.log:2" in res["verify"].stderr
    assert "line 1" in res["verify"].stderr
