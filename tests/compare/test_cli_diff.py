"""``embfmt diff`` and ``embfmt verify-array`` in real processes: exit codes 0/1/2, JSON keys,
one-line errors, ``--plot`` PNGs.

Each process pays the kernel import (~2 s), so the commands run concurrently and share one
module-scoped repository and set of files.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import struct
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import embfmt

HAVE_MPL = importlib.util.find_spec("matplotlib") is not None


def run(*args: str, cwd: Path | str | None = None) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("embfmt")
    cmd = [exe, *args] if exe else [sys.executable, "-m", "embfmt", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=300)


def run_all(cmds: dict[str, Any]) -> dict[str, subprocess.CompletedProcess[str]]:
    def one(spec: Any) -> subprocess.CompletedProcess[str]:
        if len(spec) == 2 and isinstance(spec[0], tuple):
            return run(*spec[0], cwd=spec[1])
        return run(*spec)

    with ThreadPoolExecutor(max_workers=max(2, min(4, os.cpu_count() or 2))) as ex:
        futs = {k: ex.submit(one, v) for k, v in cmds.items()}
        return {k: f.result() for k, f in futs.items()}


def code(r: subprocess.CompletedProcess[str], want: int) -> subprocess.CompletedProcess[str]:
    assert r.returncode == want, (r.args, r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    return r


def error(r: subprocess.CompletedProcess[str], kind: str | None = None, *names: str) -> str:
    code(r, 2)
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("embfmt: error"), lines[0]
    if kind:
        assert lines[0].startswith(f"embfmt: error [{kind}]: "), lines[0]
    for n in names:
        assert n in lines[0], (n, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("cli_diff")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3000, 16)).astype(np.float32)
    y = x.copy()
    y[[5, 9, 2000]] *= np.float32(1.5)
    y[7, 3] = np.nan
    np.save(root / "a.npy", x)
    np.save(root / "a_copy.npy", x.copy())
    np.save(root / "b.npy", y)
    np.save(root / "wide.npy", np.zeros((10, 32), np.float32))
    (root / "junk.npy").write_bytes(b"not a matrix")
    import h5py

    with h5py.File(root / "m.h5", "w") as f:
        f["g/emb"] = y
        f["other"] = x
    repo = embfmt.Repo.init(root / "repo")
    c1 = repo.commit({"emb": x}, message="one")
    c2 = repo.commit({"emb": np.concatenate([y, y[:5]])}, message="two")
    repo.tag("v1", c1)
    multi = embfmt.Repo.init(root / "multi")
    multi.commit({"emb": x, "other": x[:, :8].copy()}, message="one")
    multi.commit({"emb": y, "other": x[:, :8].copy()}, message="two")
    return {"root": root, "x": x, "y": y, "c1": c1, "c2": c2,
            "fp_x": embfmt.fingerprint(x).root, "fp_y": embfmt.fingerprint(y).root}


@pytest.fixture(scope="module")
def results(env: dict[str, Any]) -> dict[str, subprocess.CompletedProcess[str]]:
    root = env["root"]
    r, m = str(root / "repo"), str(root / "multi")
    f = lambda n: str(root / n)  # noqa: E731
    return run_all({
        # diff: files
        "same": ("diff", f("a.npy"), f("a_copy.npy")),
        "files": ("diff", f("a.npy"), f("b.npy"), "--top", "3"),
        "files_json": ("diff", f("a.npy"), f("b.npy"), "--json", "--rows", "--procrustes", "--knn", "4",
                       "--sample", "500"),
        "h5": ("diff", f("a.npy"), f("m.h5"), "--dataset-b", "g/emb", "--top", "0"),
        "shape": ("diff", f("a.npy"), f("wide.npy")),
        "missing": ("diff", f("a.npy"), f("nope.npy")),
        "junk": ("diff", f("junk.npy"), f("a.npy")),
        "bad_top": ("diff", f("a.npy"), f("b.npy"), "--top", "-1"),
        # diff: revisions (inside the repository with -C, HEAD is the revision, not the file)
        "revs": ("-C", r, "diff", "HEAD~1", "HEAD", "--json", "--top", "2"),
        "revs_text": (("diff", "v1", "HEAD", "--no-stats"), r),  # run inside the repository
        "rev_file": ("-C", r, "diff", "HEAD~1", "../b.npy", "--json"),
        "file_rev": ("-C", r, "diff", "../m.h5:other", "HEAD~1", "--json"),  # FILE:DATASET
        "bad_rev": ("-C", r, "diff", "nosuch", "HEAD"),
        "no_repo": (("diff", "HEAD", "a.npy"), str(root)),
        "multi_all_tables": ("-C", m, "diff", "HEAD~1", "HEAD", "--json"),
        "multi_bad_table": ("-C", m, "diff", "HEAD~1", "HEAD", "--table", "nope"),
        "plot": ("-C", r, "diff", "HEAD~1", "HEAD", "--plot", "report.png", "--top", "0"),
        # verify-array
        "va_fp_ok": ("verify-array", f("a.npy"), "--against", env["fp_x"]),
        "va_fp_bad": ("verify-array", f("b.npy"), "--against", env["fp_x"], "--json"),
        "va_fp_tol": ("verify-array", f("a.npy"), "--against", env["fp_x"], "--atol", "1"),
        "va_fp_malformed": ("verify-array", f("a.npy"), "--against", "emb1:b3:zz"),
        "va_rev_ok": ("-C", r, "verify-array", "../a.npy", "--against", "v1", "--json"),
        "va_rev_fail": ("-C", r, "verify-array", "../b.npy", "--against", "HEAD~1", "--atol", "1", "--json"),
        "va_rev_fail_text": ("-C", r, "verify-array", "../b.npy", "--against", "HEAD~1", "--min-cosine", "0.5",
                             "--table", "emb"),
        "va_bad_rev": ("-C", r, "verify-array", "../a.npy", "--against", "nosuch"),
        "va_two_tol": ("verify-array", f("a.npy"), "--against", env["fp_x"], "--atol", "1", "--ulp", "2"),
        "va_missing": ("verify-array", f("nope.npy"), "--against", env["fp_x"]),
        "va_multi": ("-C", m, "verify-array", "../a.npy", "--against", "HEAD~1"),
    })


def test_diff_exit_codes(results: dict[str, subprocess.CompletedProcess[str]]) -> None:
    out = code(results["same"], 0).stdout
    assert "identical" in out and "0 changed, 0 added, 0 removed, 3000 unchanged" in out
    out = code(results["files"], 1).stdout
    assert "4 changed, 0 added, 0 removed, 2996 unchanged" in out
    assert "matched by position" in out
    for metric in ("l2", "cosine", "max_abs", "ulp"):
        assert any(line.startswith(metric) for line in out.splitlines()), metric
    assert "top 3 by l2" in out
    header = next(line for line in out.splitlines() if line.startswith("metric"))
    assert header.split() == ["metric", "count", "mean", "p50", "p90", "p99", "max"]
    assert "4 changed" in code(results["h5"], 1).stdout
    error(results["shape"], "shape-mismatch", "32")
    error(results["missing"], "not-found", "nope.npy")
    error(results["junk"], None, "junk.npy")
    error(results["bad_top"], "bad-argument", "--top")


def test_diff_json(results: dict[str, subprocess.CompletedProcess[str]], env: dict[str, Any]) -> None:
    d = json.loads(code(results["files_json"], 1).stdout)
    from embfmt.compare.diff import DIFF_SCHEMA_VERSION

    assert d["schema"] == DIFF_SCHEMA_VERSION
    assert set(d) >= {"schema", "identical", "a", "b", "dim", "dtype", "matched_by", "counts", "summary",
                      "top", "procrustes", "knn", "timing", "rows"}
    assert d["identical"] is False and d["dtype"] == "float32" and d["dim"] == 16
    assert d["counts"] == {"changed": 4, "added": 0, "removed": 0, "unchanged": 2996}
    assert d["rows"]["changed_b"] == [5, 7, 9, 2000]
    assert d["a"]["file"].endswith("a.npy") and d["a"]["fingerprint"] == env["fp_x"]
    assert d["a"]["dataset"] is None
    assert d["b"]["fingerprint"] == env["fp_y"] and d["a"]["rows"] == 3000
    assert d["top"][0]["b"] == 7 and d["top"][0]["l2"] == "nan"
    assert d["summary"]["l2"]["nonfinite"] == 1
    assert d["procrustes"]["rows"] in (499, 500) and d["knn"]["k"] == 4  # a NaN row is left out


def test_diff_revisions(results: dict[str, subprocess.CompletedProcess[str]], env: dict[str, Any]) -> None:
    d = json.loads(code(results["revs"], 1).stdout)
    assert d["a"]["commit"] == env["c1"] and d["b"]["commit"] == env["c2"]
    assert d["a"]["rev"] == "HEAD~1" and d["b"]["rev"] == "HEAD" and d["a"]["table"] == "emb"
    assert d["a"]["fingerprint"] == env["fp_x"]
    assert d["counts"] == {"changed": 4, "added": 5, "removed": 0, "unchanged": 2996}
    assert len(d["top"]) == 2
    out = code(results["revs_text"], 1).stdout
    assert "4 changed, 5 added" in out and "metric" not in out  # --no-stats
    rf = json.loads(code(results["rev_file"], 1).stdout)
    assert rf["a"]["commit"] == env["c1"] and rf["b"]["file"] == "../b.npy"
    assert rf["b"]["fingerprint"] == env["fp_y"] and rf["counts"]["changed"] == 4
    fr = json.loads(code(results["file_rev"], 0).stdout)
    assert fr["identical"] and fr["b"]["rev"] == "HEAD~1" and fr["a"]["dataset"] == "other"
    error(results["bad_rev"], "not-found", "nosuch")
    error(results["no_repo"], "not-found", "HEAD")
    # without --table, every table is compared (issue 13: it used to ask for --table)
    mt = json.loads(code(results["multi_all_tables"], 1).stdout)
    assert {n: t["status"] for n, t in mt["tables"].items()} == {"emb": "changed", "other": "unchanged"}
    error(results["multi_bad_table"], "not-found", "nope")


@pytest.mark.skipif(not HAVE_MPL, reason="matplotlib is not installed (pip install 'embfmt[plot]')")
def test_diff_plot_png(results: dict[str, subprocess.CompletedProcess[str]], env: dict[str, Any]) -> None:
    code(results["plot"], 1)
    png = env["root"] / "repo" / "report.png"  # relative to -C, like every path
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    w, h = struct.unpack(">II", data[16:24])
    assert 400 <= w <= 4000 and 300 <= h <= 4000, (w, h)
    assert len(data) > 5 * 1024


def test_verify_array(results: dict[str, subprocess.CompletedProcess[str]], env: dict[str, Any]) -> None:
    assert code(results["va_fp_ok"], 0).stdout.startswith("PASS")
    d = json.loads(code(results["va_fp_bad"], 1).stdout)
    assert d["passed"] is False and d["fingerprint"]["expected"] == env["fp_x"]
    assert d["fingerprint"]["actual"] == env["fp_y"] and d["reference"]["type"] == "fingerprint"
    error(results["va_fp_tol"], "bad-argument", "tolerance")
    error(results["va_fp_malformed"], "bad-fingerprint")
    ok = json.loads(code(results["va_rev_ok"], 0).stdout)
    assert ok["passed"] and ok["mode"] == "exact" and ok["reference"]["commit"] == env["c1"]
    assert set(ok["environment"]) == {"current", "recorded"} and ok["environment"]["recorded"]["embfmt"]
    fail = json.loads(code(results["va_rev_fail"], 1).stdout)
    assert fail["mode"] == "atol" and fail["tolerance"] == {"atol": 1.0}
    assert [r["row"] for r in fail["rows_failed"]] == [7, 9]  # NaN and a 1.2 move; 5 and 2000 are < 1
    assert fail["rows_failed"][0]["l2"] == "nan" and fail["rows_failed_count"] == 2
    assert fail["rows_differ"] == [5, 7, 9, 2000]
    out = code(results["va_rev_fail_text"], 1).stdout
    assert out.startswith("FAIL") and "row 7" in out  # NaN cosine fails; scaled rows pass
    error(results["va_bad_rev"], "not-found", "nosuch")
    error(results["va_two_tol"])
    error(results["va_missing"], "not-found", "nope.npy")
    error(results["va_multi"], "bad-argument", "--table")
