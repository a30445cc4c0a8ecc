"""`embfmt demo`: the end-to-end example, in real processes, and run_demo in-process."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from embfmt.cli.demo import DEMO_IDENTITY, DEMO_TABLE, example_table, run_demo
from embfmt.repo import Repo


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("embfmt")
    cmd = [exe, *args] if exe else [sys.executable, "-m", "embfmt", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


def test_demo_cli_runs_and_its_repository_verifies(tmp_path: Path) -> None:
    repo = tmp_path / "demo"
    tmp = tmp_path / "tmp"  # the default location: a new temp dir, removed at the end
    tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp))
    with ThreadPoolExecutor(3) as ex:
        full_f = ex.submit(run, "demo", str(repo))
        temp_f = ex.submit(run, "demo", env=env)
        quiet_f = ex.submit(run, "demo", "--quiet", str(tmp_path / "q"))
        full, temp, quiet = full_f.result(), temp_f.result(), quiet_f.result()
    assert full.returncode == 0, full.stderr
    assert "Traceback" not in full.stderr
    out = full.stdout
    # one screen, each step as the command behind it
    assert len(out.splitlines()) <= 40
    for command in (f"$ embfmt init {repo}",
                    '$ embfmt commit item_emb=v1.npy --keys item_emb=v1-ids.npy -m "v1: initial export"',
                    '$ embfmt commit item_emb=v2.npy -m "v2: 200 items re-embedded"',
                    "$ embfmt diff HEAD~3 HEAD~2", "$ embfmt tag v1 HEAD~3", "$ embfmt verify",
                    '$ embfmt restore v1 -m "roll back to v1"', "$ embfmt log"):
        assert command in out, command
    # storage in plain words, no codec names
    assert "200 rows changed; stored as a row patch against v1" in out
    assert "every row changed; stored as a delta against v2" in out
    assert "of the table's size" in out
    for codec in ("shuffle-planes", "sparse-patch", "xor-delta", "sub-zigzag", "codecs"):
        assert codec not in out
    # the diff's drift statistics and top movers
    assert "200 of 20000 rows changed (1.0%), matched by key" in out
    assert re.search(r"L2 distance( +[0-9.e-]+){5}\n", out)
    assert re.search(r"1 - cosine similarity( +[0-9.e-]+){5}\n", out)
    assert re.search(r"moved most: key 10\d{5} \(L2 [0-9.]+\)", out)
    assert "ok: 4 commits" in out and "equals v1 again (same fingerprint)" in out
    assert f"Explore it: embfmt -C {repo} log" in out

    # Without DIR: the same story in a temporary repository, removed at the end.
    assert temp.returncode == 0, temp.stderr
    tmp_repo = re.search(r"\$ embfmt init (\S+)", temp.stdout)
    assert tmp_repo and Path(tmp_repo[1]).parent == tmp
    assert f"Removed {tmp_repo[1]}." in temp.stdout
    assert os.listdir(tmp) == []

    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout == f"{tmp_path / 'q'}\n" and quiet.stderr == ""

    with ThreadPoolExecutor(2) as ex:
        v1 = ex.submit(run, "-C", str(repo), "verify", "--json")
        v2 = ex.submit(run, "-C", str(tmp_path / "q"), "verify")
        r1, r2 = v1.result(), v2.result()
    assert r1.returncode == 0, r1.stderr
    d = json.loads(r1.stdout)
    assert d["ok"] is True and d["commits"] == 5 and d["keys"] == 2
    assert r2.returncode == 0, r2.stderr


def test_quiet_demo_without_dir_leaves_nothing(tmp_path: Path) -> None:
    buf = io.StringIO()
    before = set(os.listdir(tempfile.gettempdir()))
    assert run_demo(quiet=True, n_rows=500, dim=8, out=buf) == 0
    assert buf.getvalue() == ""
    assert not {n for n in set(os.listdir(tempfile.gettempdir())) - before if n.startswith("embfmt-demo-")}


def test_run_demo_repository_contents_and_determinism(tmp_path: Path) -> None:
    outs = []
    for name in ("a", "b"):
        buf = io.StringIO()
        assert run_demo(str(tmp_path / name), n_rows=3000, dim=16, out=buf) == 0
        outs.append(buf.getvalue())
    # Same data every run: everything but commit ids, times and paths is identical.
    def scrub(s: str) -> str:
        s = re.sub(r"\b[0-9a-f]{12,64}\b", "ID", s)
        s = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "TIME", s)
        return s.replace(str(tmp_path / "a"), "DIR").replace(str(tmp_path / "b"), "DIR")
    assert scrub(outs[0]) == scrub(outs[1])

    with Repo(tmp_path / "a") as repo:
        log = repo.log()
        assert len(log) == 5 and log[0].metadata["embfmt"]["restored_from"] == repo.resolve("v1")
        v1, v2, v3, v4 = (c.id for c in reversed(log[1:]))
        assert [c.metadata.get("run") for c in log[1:]] == ["demo-1"] * 4
        x1 = example_table(3000, 16)
        assert np.array_equal(repo.read(DEMO_TABLE, v1).view(np.uint32), x1.view(np.uint32))
        changed = (repo.read(DEMO_TABLE, v1) != repo.read(DEMO_TABLE, v2)).any(axis=1)
        assert changed.sum() == 30  # 1% of rows
        assert (repo.read(DEMO_TABLE, v2) != repo.read(DEMO_TABLE, v3)).any(axis=1).all()
        assert repo.open(DEMO_TABLE, v4).shape == (3030, 16)
        keys = repo.keys(DEMO_TABLE, v4)
        assert keys is not None and keys.dtype == np.int64 and len(np.unique(keys)) == 3030
        assert repo.open(DEMO_TABLE, v4).version.identity == DEMO_IDENTITY
        assert repo.tags() == {"v1": v1}
        assert repo.open(DEMO_TABLE).fingerprint == repo.open(DEMO_TABLE, v1).fingerprint
        w2 = repo.show(v2)["tables"][DEMO_TABLE]["write"]
        w1 = repo.show(v1)["tables"][DEMO_TABLE]["write"]
        assert w2["rows_changed"] == 30 and w2["bytes_written"] < w1["bytes_written"] / 10
        assert repo.verify().ok


def test_run_demo_quiet_prints_only_the_path(tmp_path: Path) -> None:
    buf = io.StringIO()
    assert run_demo(str(tmp_path / "q"), quiet=True, n_rows=500, dim=8, out=buf) == 0
    assert buf.getvalue() == f"{tmp_path / 'q'}\n"
