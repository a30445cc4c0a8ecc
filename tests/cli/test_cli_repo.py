"""The repository subcommands of the `embfmt` CLI, in real processes.

Each process that opens a repository pays the kernel import (~2 s), so independent commands
run concurrently (`run_all`) and read-only checks share one module-scoped repository.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import embfmt

HEX64 = r"^[0-9a-f]{64}$"


def run(*args: str, cwd: Path | str | None = None) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("embfmt")
    cmd = [exe, *args] if exe else [sys.executable, "-m", "embfmt", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=300)


def run_all(cmds: dict[str, Any]) -> dict[str, subprocess.CompletedProcess[str]]:
    """Run independent commands concurrently. A value is an argument tuple, or
    ``(args, cwd)`` where ``args`` is itself a tuple."""
    def one(spec: Any) -> subprocess.CompletedProcess[str]:
        if len(spec) == 2 and isinstance(spec[0], tuple):
            return run(*spec[0], cwd=spec[1])
        return run(*spec)

    with ThreadPoolExecutor(max_workers=max(2, min(4, os.cpu_count() or 2))) as ex:
        futs = {k: ex.submit(one, v) for k, v in cmds.items()}
        return {k: f.result() for k, f in futs.items()}


def ok(r: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert r.returncode == 0, (r.args, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    return r


def fails(r: subprocess.CompletedProcess[str], kind: str, *names: str) -> str:
    """Exit 2 with one line ``embfmt: error [kind]: ...`` naming every one of ``names``."""
    assert r.returncode == 2, (r.args, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"embfmt: error [{kind}]: "), lines[0]
    for n in names:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def bits_equal(a: np.ndarray, b: np.ndarray) -> bool:
    u = np.dtype(f"u{a.dtype.itemsize}")
    return a.shape == b.shape and a.dtype == b.dtype and bool((a.view(u) == b.view(u)).all())


# --- one repository with three commits, made through the CLI -------------------------------
@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    import h5py
    import ml_dtypes

    st = pytest.importorskip("safetensors.numpy")
    d = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(7)
    a = rng.standard_normal((5000, 48)).astype(np.float32)
    a.view(np.uint32)[0, :4] = [0x80000000, 0x7FC00042, 0x7F800001, 0xFFC12345]  # -0.0, NaNs
    a.view(np.uint32)[4321, 7] = 0x80000000
    b = a.copy()
    b[[3, 77, 4999]] += 1  # a sparse update, read from HDF5
    c = np.concatenate([b, rng.standard_normal((100, 48)).astype(np.float32)])  # an append
    bf = rng.standard_normal((300, 16)).astype(ml_dtypes.bfloat16)
    np.save(d / "a.npy", a)
    np.save(d / "keys.npy", np.arange(5000, dtype=np.int64) * 7 + 1)
    np.save(d / "f64.npy", np.zeros((5000, 48), np.float64))
    with h5py.File(d / "m.h5", "w") as f:
        f.create_dataset("grp/ds", data=b, chunks=(512, 48))
        f.create_dataset("other", data=b[:10])
    st.save_file({"emb.weight": c, "bias": np.zeros(48, np.float32)}, str(d / "m.safetensors"))
    st.save_file({"w": bf}, str(d / "bf.safetensors"))
    return {"dir": d, "a": a, "b": b, "c": c, "bf": bf}


@pytest.fixture(scope="module")
def built(files: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d: Path = files["dir"]
    repo = tmp_path_factory.mktemp("r") / "repo"
    r = ok(run("init", str(repo), "--json"))
    assert json.loads(r.stdout) == {"path": str(repo), "branch": "main"}
    assert (repo / "embfmt.json").is_file()

    r1 = ok(run("-C", str(repo), "commit", f"emb={d / 'a.npy'}", f"bf={d / 'bf.safetensors'}",
                "-m", "first", "--meta", "run=demo-1", "--meta-json", "lr=0.001", "--meta-json", "tags=[1,2]",
                "--meta", "note=not json", "--keys", f"emb={d / 'keys.npy'}",
                "--identity", 'emb={"model": "enc", "revision": "1"}', "--author", "alice",
                "--json"))
    c1 = json.loads(r1.stdout)
    # In the repository directory itself, no -C; FILE:DATASET picks the HDF5 dataset.
    r2 = ok(run("commit", f"emb={d / 'm.h5'}:/grp/ds", "-m", "second", "--carry-keys", "emb",
                cwd=repo))
    c2 = r2.stdout.strip()
    r3 = ok(run("-C", str(repo), "commit", f"emb={d / 'm.safetensors'}", "--dataset", "emb.weight",
                "-m", "third", "--drop-keys", "emb", "--json"))  # 5100 rows: the old keys do not fit
    c3 = json.loads(r3.stdout)
    return {"repo": repo, "c1": c1, "c2": c2, "c3": c3, "ids": [c3["id"], c2, c1["id"]]}


def test_commit_json_schema(built: dict[str, Any], files: dict[str, Any]) -> None:
    c1 = built["c1"]
    assert set(c1) == {"id", "branch", "tables"}
    assert c1["branch"] == "main"
    assert re.match(HEX64, c1["id"])
    assert set(c1["tables"]) == {"emb", "bf"}
    t = c1["tables"]["emb"]
    assert {"version", "rows", "dim", "dtype", "fingerprint", "chunks", "keys", "identity",
            "write"} <= set(t)
    assert (t["rows"], t["dim"], t["dtype"]) == (5000, 48, "float32")
    assert t["keys"] is True and t["identity"] == {"model": "enc", "revision": "1"}
    assert t["fingerprint"] == embfmt.fingerprint(files["a"]).root
    w = t["write"]
    assert isinstance(w["bytes_written"], int) and w["bytes_written"] > 0
    assert isinstance(w["codecs"], dict) and w["chunks"] == t["chunks"]
    assert c1["tables"]["bf"]["dtype"] == "bfloat16"
    assert c1["tables"]["bf"]["fingerprint"] == embfmt.fingerprint(files["bf"]).root
    assert re.match(HEX64, built["c2"])
    c3 = built["c3"]
    assert set(c3["tables"]) == {"emb"}  # only the committed tables; bf carries over
    assert c3["tables"]["emb"]["rows"] == 5100
    assert c3["tables"]["emb"]["write"]["parent_rows"] == 5000


@pytest.fixture(scope="module")
def reads(built: dict[str, Any], files: dict[str, Any],
          tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every read-only command on the built repository, run concurrently once."""
    repo = str(built["repo"])
    out = tmp_path_factory.mktemp("out")
    C = ("-C", repo)
    res = run_all({
        "log_json": (*C, "log", "--json"),
        "log_text": (*C, "log"),
        "log_n": (("log", "-n", "1", "--json", "HEAD~1"), repo),
        "show_json": (*C, "show", "HEAD~2", "--json"),
        "show_text": (*C, "show", built["ids"][2][:10]),
        "co_a": (*C, "checkout", "HEAD~2", "emb", "-o", str(out / "a.npy"), "--json"),
        "co_c_rel": (*C, "checkout", "main", "emb", "-o", "c_rel.npy"),  # relative to -C
        "co_bf": (*C, "checkout", "HEAD", "bf", "-o", str(out / "bf.safetensors"), "--json"),
        "verify": (*C, "verify", "--json"),
        "gc": (*C, "gc", "--json"),  # default grace 3600: safe next to the readers
    })
    return {"res": res, "out": out}


def test_log(built: dict[str, Any], reads: dict[str, Any]) -> None:
    res = reads["res"]
    log = json.loads(ok(res["log_json"]).stdout)
    assert isinstance(log, list) and [c["id"] for c in log] == built["ids"]
    for c in log:
        assert {"id", "parents", "author", "time", "message", "metadata", "tables",
                "environment", "format"} <= set(c)
        assert isinstance(c["parents"], list) and isinstance(c["time"], str)
    assert [c["message"] for c in log] == ["third", "second", "first"]
    assert log[2]["author"] == "alice" and log[2]["parents"] == []
    assert log[0]["parents"] == [built["ids"][1]]
    meta = log[2]["metadata"]
    assert meta["run"] == "demo-1" and meta["lr"] == 0.001 and meta["tags"] == [1, 2]
    assert meta["note"] == "not json"
    assert log[1]["tables"]["emb"]["write"]["rows_changed"] == 3
    assert log[1]["tables"]["bf"]["write"] is None  # carried over, not written
    # --json output is stable: sorted keys
    assert res["log_json"].stdout == json.dumps(log, indent=2, sort_keys=True) + "\n"
    text = ok(res["log_text"]).stdout
    for cid in built["ids"]:
        assert f"commit {cid}" in text
    assert "(HEAD -> main)" in text and "alice" in text and "first" in text
    assert "5000 x 48 float32" in text and "5100 x 48 float32" in text
    assert "written" in text and "unchanged" in text
    one = json.loads(ok(res["log_n"]).stdout)  # run inside the repository directory
    assert [c["id"] for c in one] == [built["ids"][1]]


def test_show(built: dict[str, Any], reads: dict[str, Any], files: dict[str, Any]) -> None:
    res = reads["res"]
    s = json.loads(ok(res["show_json"]).stdout)
    assert s["id"] == built["ids"][2] and s["message"] == "first"
    t = s["tables"]["emb"]
    assert t["fingerprint"] == embfmt.fingerprint(files["a"]).root
    assert isinstance(t["chunks"], int) and isinstance(t["keys"], bool)
    assert isinstance(t["write"]["bytes_written"], int)
    text = ok(res["show_text"]).stdout  # unique id prefix
    assert f"commit {built['ids'][2]}" in text
    assert t["fingerprint"] in text and t["version"] in text and '"model": "enc"' in text


def test_checkout_bit_exact(built: dict[str, Any], reads: dict[str, Any],
                            files: dict[str, Any]) -> None:
    res, out = reads["res"], reads["out"]
    d = json.loads(ok(res["co_a"]).stdout)
    assert {"id", "table", "file", "format", "rows", "dim", "dtype", "fingerprint", "bytes"} <= set(d)
    assert d["id"] == built["ids"][2] and d["format"] == "npy"
    assert d["fingerprint"] == embfmt.fingerprint(files["a"]).root
    a = np.load(out / "a.npy")
    assert bits_equal(a, files["a"])  # NaN payloads and -0.0 survive
    assert a.view(np.uint32)[0, 0] == 0x80000000 and a.view(np.uint32)[0, 3] == 0xFFC12345
    ok(res["co_c_rel"])
    assert bits_equal(np.load(built["repo"] / "c_rel.npy"), files["c"])
    bf = json.loads(ok(res["co_bf"]).stdout)
    assert bf["dtype"] == "bfloat16" and bf["format"] == "safetensors"
    from safetensors.numpy import load_file

    assert bits_equal(load_file(str(out / "bf.safetensors"))["bf"], files["bf"])
    assert not [p for p in os.listdir(out) if p.endswith(".tmp")]


def test_verify_ok(reads: dict[str, Any]) -> None:
    res = reads["res"]
    v = json.loads(ok(res["verify"]).stdout)
    assert v["ok"] is True and v["errors"] == []
    assert (v["commits"], v["tables"]) == (3, 4) and v["chunks"] >= 4 and v["keys"] == 1
    assert res["verify"].stderr == ""


def test_gc_default_grace_keeps_everything(reads: dict[str, Any]) -> None:
    g = json.loads(ok(reads["res"]["gc"]).stdout)
    assert set(g) == {"objects_kept", "objects_removed", "bytes_freed", "grace_seconds",
                      "bytes_on_disk", "reflog_expired", "reflog_expire_seconds"}
    assert g["reflog_expired"] == 0 and g["reflog_expire_seconds"] == 30 * 86400
    assert g["objects_removed"] == 0 and g["bytes_freed"] == 0 and g["grace_seconds"] == 3600
    assert g["objects_kept"] > 0 and g["bytes_on_disk"] > 0


def test_tags_and_branches(built: dict[str, Any], tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(built["repo"], repo)
    C = ("-C", str(repo))
    first = built["ids"][2]
    r = run_all({"tag": (*C, "tag", "v1", "HEAD~2"), "branch": (*C, "branch", "exp", first[:12])})
    assert ok(r["tag"]).stdout.strip() == first
    assert ok(r["branch"]).stdout.strip() == first
    r = run_all({
        "again": (*C, "tag", "v1"),
        "tags": (*C, "tag", "--list", "--json"),
        "branches": (*C, "branch", "--list"),
        "bad_tag": (*C, "tag", "../x"),
        "bad_branch": (*C, "branch", "a..b"),
        "exp_log": (*C, "log", "v1", "--json"),  # a tag as revision
    })
    fails(r["again"], "ref-exists", "'v1'")
    assert json.loads(ok(r["tags"]).stdout) == {"tags": {"v1": first}}
    lines = ok(r["branches"]).stdout.splitlines()
    assert lines == [f"  exp\t{first}", f"* main\t{built['ids'][0]}"]
    fails(r["bad_tag"], "bad-ref-name", "'../x'")
    fails(r["bad_branch"], "bad-ref-name", "'a..b'")
    assert [c["id"] for c in json.loads(ok(r["exp_log"]).stdout)] == [first]


def test_reset_restore_gc(built: dict[str, Any], files: dict[str, Any], tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(built["repo"], repo)
    C = ("-C", str(repo))
    c3, c2, c1 = built["ids"]
    r = json.loads(ok(run(*C, "reset", "main", "HEAD~2", "--json")).stdout)
    assert r == {"branch": "main", "id": c1, "previous": c3}
    rv = json.loads(ok(run(*C, "restore", c3[:16], "-m", "undo the reset", "--json")).stdout)
    assert rv["restored_from"] == c3 and rv["branch"] == "main"
    g = json.loads(ok(run(*C, "gc", "--prune-now", "--expire-reflog", "now", "--json")).stdout)
    # (the reflog would keep the reset-away commits for 30 days) at least commits c2 and c3 and c2's version of `emb` (c3's is the restore's)
    assert g["objects_removed"] >= 3 and g["bytes_freed"] > 0
    res = run_all({
        "log": (*C, "log", "--json"),
        "co": (*C, "checkout", "HEAD", "emb", "-o", str(tmp_path / "x.npy")),
        "verify": (*C, "verify"),
        "gone": (*C, "show", c2),
        "branches": (*C, "branch", "--json"),
    })
    log = json.loads(ok(res["log"]).stdout)
    assert [c["id"] for c in log] == [rv["id"], c1]
    assert log[0]["message"] == "undo the reset"
    assert log[0]["metadata"]["embfmt"]["restored_from"] == c3
    ok(res["co"])
    assert bits_equal(np.load(tmp_path / "x.npy"), files["c"])
    assert ok(res["verify"]).stdout.startswith("ok")
    fails(res["gone"], "not-found", c2)
    assert json.loads(ok(res["branches"]).stdout) == {"head": "main", "branches": {"main": rv["id"]}}


def test_corrupt_object_verify_exits_1(built: dict[str, Any], tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(built["repo"], repo)
    # The largest object is the first version's full chunk of `emb`.
    objs = sorted((p for p in (repo / "objects").rglob("*") if p.is_file()),
                  key=lambda p: p.stat().st_size)
    victim = objs[-1]
    oid = victim.parent.name + victim.name
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x40
    victim.write_bytes(bytes(data))
    C = ("-C", str(repo))
    res = run_all({"text": (*C, "verify"), "json": (*C, "verify", "--all", "--json"),
                   "co": (*C, "checkout", "HEAD~2", "emb", "-o", str(tmp_path / "o.npy"))})
    r = res["text"]
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stdout.startswith("FAILED")
    assert oid in r.stderr and "[digest-mismatch]" in r.stderr
    r = res["json"]
    assert r.returncode == 1
    d = json.loads(r.stdout)
    assert d["ok"] is False and any(e["object"] == oid for e in d["errors"])
    assert all(set(e) == {"object", "kind", "error"} for e in d["errors"])
    # corruption found: exit 1 as the README says (it was 2, the usage-error code), one line
    r = res["co"]
    assert r.returncode == 1 and "Traceback" not in r.stderr and r.stdout == "", r
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("embfmt: error [digest-mismatch]: ") and oid in lines[0]
    assert not (tmp_path / "o.npy").exists()
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_errors_exit_2_one_line(built: dict[str, Any], files: dict[str, Any], tmp_path: Path) -> None:
    d: Path = files["dir"]
    repo = str(built["repo"])
    C = ("-C", repo)
    existing = tmp_path / "exists.npy"
    existing.write_bytes(b"x")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("x")
    res = run_all({
        "no_dir": ("-C", str(tmp_path / "nope"), "log"),
        "not_repo": (("log",), tmp_path),
        "unknown_rev": (*C, "show", "nope"),
        "range_rev": (*C, "show", "a..b"),
        "range_unknown": (*C, "log", "a..b"),
        "no_table": (*C, "checkout", "HEAD", "nosuch", "-o", str(tmp_path / "n.npy")),
        "exists": (*C, "checkout", "HEAD", "emb", "-o", str(existing)),
        "bf_npy": (*C, "checkout", "HEAD", "bf", "-o", str(tmp_path / "bf.npy")),
        "dtype": (*C, "commit", f"emb={d / 'f64.npy'}", "-m", "x"),
        "missing_file": (*C, "commit", f"emb={tmp_path / 'missing.npy'}", "-m", "x"),
        "no_dataset": (*C, "commit", f"emb={d / 'm.h5'}:/grp/nope", "-m", "x"),
        "ambiguous": (*C, "commit", f"emb={d / 'm.h5'}", "-m", "x"),
        "identity": (*C, "commit", f"emb={d / 'a.npy'}", "-m", "x", "--identity", 'emb={"model": "other"}'),
        "bad_spec": (*C, "commit", "emb", "-m", "x"),
        "bad_table": (*C, "commit", f"../t={d / 'a.npy'}", "-m", "x"),
        "init_full": ("init", str(tmp_path / "full")),
        "init_again": ("init", repo),
        "reset_no_branch": (*C, "reset", "nosuch", "HEAD"),
        "bad_grace": (*C, "gc", "--grace", "-1"),
    })
    fails(res["no_dir"], "not-a-repository", str(tmp_path / "nope"))
    fails(res["not_repo"], "not-a-repository", str(tmp_path))
    fails(res["unknown_rev"], "not-found", "'nope'")
    fails(res["range_rev"], "bad-revision", "'a..b'")
    fails(res["range_unknown"], "not-found", "'a'")
    fails(res["no_table"], "not-found", "'nosuch'")
    fails(res["exists"], "bad-argument", str(existing), "--force")
    assert existing.read_bytes() == b"x"
    fails(res["bf_npy"], "unsupported-dtype", "bfloat16", ".safetensors")
    assert not (tmp_path / "bf.npy").exists()
    fails(res["dtype"], "dtype-mismatch", "f64.npy", "'emb'", "float64", "--allow-schema-change")
    fails(res["missing_file"], "not-found", "missing.npy")
    fails(res["no_dataset"], "not-found", "m.h5", "/grp/nope")
    fails(res["ambiguous"], "bad-argument", "m.h5", "--dataset")
    fails(res["identity"], "identity-mismatch", "a.npy", "'emb'", "--allow-identity-change")
    fails(res["bad_spec"], "bad-argument", "TABLE=FILE", "'emb'")
    fails(res["bad_table"], "bad-ref-name", "'../t'")
    fails(res["init_full"], "bad-argument", str(tmp_path / "full"))
    fails(res["init_again"], "ref-exists", repo)
    fails(res["reset_no_branch"], "not-found", "'nosuch'")
    fails(res["bad_grace"], "bad-argument", "--grace")


def test_usage_errors_exit_2() -> None:
    res = run_all({
        "no_msg": ("commit", "emb=x.npy"),
        "no_out": ("checkout", "HEAD", "emb"),
        "both_gc": ("gc", "--grace", "5", "--prune-now"),
        "bad_n": ("log", "-n", "x"),
    })
    for r in res.values():
        assert r.returncode == 2 and "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("embfmt: error")
