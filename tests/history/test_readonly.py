"""A read-only repository (issue 20 defect 6, issue 13): every write is refused with one typed
error naming the repository (``read-only-repository``, exit 2, one line, no traceback), reads
work, and nothing changes. The repository is really read-only: a read-only bind mount in a
private mount namespace (tests/history/_sandbox.py), since root ignores file modes.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from typing import Any

import numpy as np
import pytest

import embfmt

from . import _sandbox

pytestmark = pytest.mark.skipif(_sandbox.skip_reason() is not None,
                                reason=_sandbox.skip_reason() or "")


def tree(root: str) -> dict[str, bytes]:
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for d in dirs:
            out[os.path.relpath(os.path.join(dirpath, d), root) + "/"] = b""
        for f in files:
            p = os.path.join(dirpath, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = fh.read()
    return out


@pytest.fixture()
def repo_dir(tmp_path: Any) -> tuple[str, str, str]:
    path = str(tmp_path / "repo")
    with embfmt.Repo.init(path) as r:
        r.commit({"t": np.ones((100, 8), np.float32)}, message="one")
        r.commit({"t": np.full((100, 8), 2, np.float32)}, message="two")
        stamp = r.stamp("t")
        r.record_use(stamp, consumer="prod")  # the usage log exists: appends are refused too
    npy = str(tmp_path / "x.npy")
    np.save(npy, np.zeros((100, 8), np.float32))
    return path, stamp, npy


WRITES = [
    ["commit", "t={npy}", "-m", "refused"],
    ["tag", "v1"],
    ["branch", "b1"],
    ["reset", "main", "HEAD~1"],
    ["record-use", "{stamp}", "--consumer", "ranker"],
    ["gc", "--grace", "0"],
]


@pytest.mark.parametrize("argv", WRITES, ids=[a[0] for a in WRITES])
def test_cli_write_to_a_read_only_repository_is_one_typed_line(repo_dir: tuple[str, str, str],
                                                              argv: list[str]) -> None:
    path, stamp, npy = repo_dir
    before = tree(path)
    args = [a.format(npy=npy, stamp=stamp) for a in argv]
    p = _sandbox.read_only(path, [sys.executable, "-m", "embfmt", "-C", path, *args])
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr  # no traceback, no "Exception ignored in WriteLease.__del__"
    assert lines[0].startswith("embfmt: error [read-only-repository]: "), lines[0]
    assert path in lines[0] and "read-only" in lines[0]
    assert tree(path) == before  # nothing left behind, nothing changed


def test_reads_of_a_read_only_repository_work(repo_dir: tuple[str, str, str]) -> None:
    path, _, _ = repo_dir
    for argv in (["log"], ["verify"], ["show", "HEAD"]):
        p = _sandbox.read_only(path, [sys.executable, "-m", "embfmt", "-C", path, *argv])
        assert p.returncode == 0, (argv, p.stderr)
        assert p.stderr == ""


API = textwrap.dedent("""
    import json, sys
    import numpy as np
    import embfmt
    path, stamp = sys.argv[1], sys.argv[2]
    repo = embfmt.Repo(path)
    calls = {
        "commit": lambda: repo.commit({"t": np.zeros((100, 8), np.float32)}),
        "writer": lambda: repo.writer("t", shape=(100, 8), dtype="float32"),
        "tag": lambda: repo.tag("v1"),
        "branch": lambda: repo.branch("b1"),
        "reset": lambda: repo.reset("main", "HEAD~1"),
        "record_use": lambda: repo.record_use(stamp, consumer="ranker"),
        "gc": lambda: repo.gc(grace_seconds=0),
        "checkout_branch": lambda: repo.checkout_branch("main"),
    }
    out = {}
    for name, f in calls.items():
        try:
            f()
            out[name] = "no error"
        except embfmt.EmbfmtError as e:
            out[name] = [type(e).__name__, e.kind.value, isinstance(e, OSError), path in str(e)]
        except Exception as e:
            out[name] = [type(e).__name__, str(e)[:200]]
    out["read"] = float(repo.read("t").sum())
    print(json.dumps(out))
""")


def test_api_writes_to_a_read_only_repository_raise_storage_error(repo_dir: tuple[str, str, str]) -> None:
    path, stamp, _ = repo_dir
    before = tree(path)
    p = _sandbox.read_only(path, [sys.executable, "-c", API, path, stamp])
    assert p.returncode == 0 and p.stderr == "", p.stderr
    out = json.loads(p.stdout)
    assert out.pop("read") == 1600.0
    want = ["StorageError", "read-only-repository", True, True]
    assert out == {k: want for k in out}, out
    assert tree(path) == before
