"""Durable by default, and the documented opt-out (spec §18.6): which mode a repository opens
in, and the order of the file-system changes a durable commit makes (observed through
embfmt._fs.tracer, the hook the power-loss test replays)."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

import embfmt
from embfmt import _fs


@pytest.fixture()
def path(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.delenv("EMBFMT_DURABLE", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))  # no user settings
    p = str(tmp_path / "repo")
    embfmt.Repo.init(p).close()
    return p


def test_durable_unless_told_otherwise(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    r = embfmt.Repo(path)
    assert r.durable and r.store.durable and r.refs.durable
    assert not embfmt.Repo(path, durable=False).store.durable
    assert not embfmt.Repo(path, durable_objects=False).durable  # the older name
    monkeypatch.setenv("EMBFMT_DURABLE", "0")
    assert not embfmt.Repo(path).durable
    assert embfmt.Repo(path, durable=True).durable  # the caller wins


def test_core_durable_setting(path: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    subprocess.run([sys.executable, "-m", "embfmt", "-C", path, "config", "core.durable", "off"],
                   check=True, env=env, capture_output=True)
    assert not embfmt.Repo(path).durable
    monkeypatch.setenv("EMBFMT_DURABLE", "1")
    assert embfmt.Repo(path).durable  # the environment wins over the setting
    monkeypatch.delenv("EMBFMT_DURABLE")
    p = subprocess.run([sys.executable, "-m", "embfmt", "-C", path, "config", "core.durable", "maybe"],
                       env=env, capture_output=True, text=True)
    assert p.returncode == 2 and "core.durable" in p.stderr


def _record(repo: embfmt.Repo, f: Any) -> list[tuple[Any, ...]]:
    ops: list[tuple[Any, ...]] = []
    _fs.tracer = lambda *a: ops.append(a)
    try:
        f()
    finally:
        _fs.tracer = None
    return [(o[0], *(os.path.relpath(x, repo.path) if isinstance(x, str) and os.path.isabs(x) else x
                     for x in o[1:3])) for o in ops]


def test_a_durable_commit_syncs_objects_before_the_ref(path: str) -> None:
    repo = embfmt.Repo(path)
    x = np.arange(40_000 * 8, dtype=np.float32).reshape(40_000, 8)  # two chunks
    ops = _record(repo, lambda: repo.commit({"t": x}))
    links = [i for i, o in enumerate(ops) if o[0] == "link"]
    ref = next(i for i, o in enumerate(ops) if o[0] == "rename" and o[2] == "refs/heads/main")
    assert len(links) >= 4  # two chunks, the table version, the commit
    for i in links:  # rule 1: each object file's data is synced before its name exists
        tmp = ops[i][1]
        assert any(o == ("fsync", tmp) for o in ops[:i]), ops[i]
    # Rule 2: every fan-out directory that got an object, and objects/, synced before the ref.
    dirs = {os.path.dirname(ops[i][2]) for i in links}
    synced = {o[1] for o in ops[:ref] if o[0] == "fsync_dir"}
    assert dirs | {"objects"} <= synced, dirs - synced
    # Rule 3: the ref's temp file synced before the rename, its directory after.
    assert ("fsync", ops[ref][1]) in ops[:ref]
    assert ("fsync_dir", "refs/heads") in ops[ref:]


def test_a_non_durable_commit_syncs_nothing(path: str) -> None:
    repo = embfmt.Repo(path, durable=False)
    ops = _record(repo, lambda: repo.commit({"t": np.ones((10, 4), np.float32)}))
    assert [o for o in ops if o[0] in ("fsync", "fsync_dir")] == []
    assert any(o[0] == "link" for o in ops) and repo.verify().ok
