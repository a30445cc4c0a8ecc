"""Golden repositories of every released format version stay readable, bit for bit."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

import embfmt

from ..conftest import SPEC_DIR

GOLDEN = sorted((SPEC_DIR / "vectors").glob("v*/golden/repo-*.json"))


def _make_golden() -> Any:
    spec = importlib.util.spec_from_file_location("embfmt_make_golden", SPEC_DIR / "tools" / "make_golden.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(params=GOLDEN, ids=[p.stem for p in GOLDEN])
def golden(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[embfmt.Repo, dict[str, Any]]:
    manifest = json.loads(request.param.read_text())
    # Read a copy: the committed files must never be touched, not even by gc or caches.
    dst = tmp_path / "repo"
    shutil.copytree(request.param.with_suffix(""), dst)
    return embfmt.Repo(dst), manifest


def test_golden_repositories_exist() -> None:
    assert GOLDEN, "spec/vectors/v1/golden/repo-1 must be committed"


def test_every_revision_reads_back(golden: tuple[embfmt.Repo, dict[str, Any]]) -> None:
    repo, manifest = golden
    mg = _make_golden()
    log = [c.id for c in repo.log()]
    assert log == [c["commit"] for c in reversed(manifest["commits"])]
    for rec in manifest["commits"]:
        for table, recipe in rec["tables"].items():
            want = mg.matrix(recipe)
            got = repo.read(table, rec["commit"])
            assert got.dtype == want.dtype and got.tobytes() == want.tobytes(), (rec["message"], table)
            assert embfmt.fingerprint(got).root == recipe["fingerprint"]
            assert repo.open(table, rec["commit"]).fingerprint == recipe["fingerprint"]


def test_refs_keys_identity_and_codecs(golden: tuple[embfmt.Repo, dict[str, Any]]) -> None:
    repo, manifest = golden
    assert repo.tags() == manifest["tags"] and repo.branches() == manifest["branches"]
    assert repo.keys("item_emb").tolist() == manifest["keys"]["item_emb"]
    assert repo.keys("user_emb").tolist() == manifest["keys"]["user_emb"]
    assert repo.open("user_emb").get("bob").tobytes() == repo.read("user_emb")[1].tobytes()
    assert repo.table_version("item_emb").identity == manifest["identity"]["item_emb"]
    assert set(manifest["codecs"]) == {"raw", "shuffle-planes", "sparse-patch", "sub-zigzag-delta", "xor-delta"}
    rep = repo.verify()
    assert rep.ok and rep.commits == len(manifest["commits"])


def test_golden_files_are_unchanged() -> None:
    """Guard against a test or tool that writes into the committed golden repositories (readers
    work on copies): every file under them is exactly as committed, and nothing was added
    (a cache entry, a temp file, an object)."""
    top = SPEC_DIR.parent
    if not (top / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout: the committed state of the golden files is unknown")
    for p in GOLDEN:
        root = p.with_suffix("")
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "--ignored",
                              "--", str(root)], cwd=top, capture_output=True, text=True, check=True).stdout
        assert out == "", f"{root} differs from what is committed:\n{out}"
        tracked = subprocess.run(["git", "ls-files", "--", str(root)], cwd=top, capture_output=True,
                                 text=True, check=True).stdout.split()
        assert len(tracked) == sum(1 for f in root.rglob("*") if f.is_file()) > 0
