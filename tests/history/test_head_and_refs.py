"""HEAD and refs as files that can be damaged: a missing HEAD is an error naming the file, not
a silent "main" (spec §17); a damaged one is reported by verify, never raised from it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import embfmt
from embfmt.errors import FormatError


def _two_branches(tmp_path: Path) -> tuple[embfmt.Repo, np.ndarray]:
    repo = embfmt.Repo.init(tmp_path / "r")
    repo.commit({"t": np.zeros((3, 4), np.float32)})
    repo.branch("dev")
    repo.checkout_branch("dev")
    ours = np.ones((3, 4), np.float32)
    repo.commit({"t": ours})
    return repo, ours


def test_missing_head_is_an_error_not_main(tmp_path: Path) -> None:
    repo, ours = _two_branches(tmp_path)
    os.unlink(os.path.join(repo.path, "HEAD"))
    r = embfmt.Repo(repo.path)
    for call in (lambda: r.read("t"), lambda: r.log(), lambda: r.head_branch,
                 lambda: r.commit({"t": ours + 1})):
        with pytest.raises(FormatError, match="HEAD is missing") as e:
            call()
        assert e.value.kind.value == "bad-ref"
    assert r.read("t", "dev").tobytes() == ours.tobytes()  # named revisions need no HEAD
    rep = r.verify()
    assert not rep.ok and [e["object"] for e in rep.errors] == ["HEAD"]
    assert not os.path.exists(os.path.join(repo.path, "HEAD"))  # nothing guessed it back
    r.checkout_branch("dev")  # the way back
    assert r.read("t").tobytes() == ours.tobytes() and r.verify().ok


@pytest.mark.parametrize("content", [b"ref: refs/heads/../x\n", b"ref: refs/heads/a..b\n",
                                     b"ref: refs/heads/\n", b"ref: refs/heads/" + b"x" * 400 + b"\n",
                                     b"\xff\xfe", b""])
def test_damaged_head_is_reported_by_verify(tmp_path: Path, content: bytes) -> None:
    repo, _ = _two_branches(tmp_path)
    Path(repo.path, "HEAD").write_bytes(content)
    r = embfmt.Repo(repo.path)
    rep = r.verify()  # never raises for damage (spec §18.3)
    assert [(e["object"], e["kind"]) for e in rep.errors] == [("HEAD", "bad-ref")]
    with pytest.raises(FormatError) as e:
        r.read("t")
    assert e.value.kind.value == "bad-ref"


_FIFO_CHILD = r"""
import os, sys, embfmt
r = embfmt.Repo(sys.argv[1])
out = []
for what, call in (("read", lambda: r.read("t")), ("read-dev", lambda: r.read("t", "dev")),
                   ("verify", lambda: r.verify().ok), ("branches", lambda: r.branches())):
    try:
        out.append(f"{what}:ok:{call()!r:.40}")
    except embfmt.EmbfmtError as e:
        out.append(f"{what}:{e.kind}")
print("|".join(out))
"""


@pytest.mark.parametrize("target", ["HEAD", "refs/heads/dev"])
def test_fifo_in_place_of_head_or_ref_does_not_hang(tmp_path: Path, target: str) -> None:
    repo, _ = _two_branches(tmp_path)
    p = os.path.join(repo.path, target)
    os.unlink(p)
    os.mkfifo(p)
    res = subprocess.run([sys.executable, "-c", _FIFO_CHILD, repo.path], capture_output=True,
                         text=True, timeout=120, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    got = dict(x.split(":", 1) for x in res.stdout.strip().split("|"))
    assert got["verify"] == "ok:False"
    assert got["read"] == "not-a-file"
    if target == "HEAD":
        assert got["read-dev"].startswith("ok:")
    else:
        assert got["read-dev"] == "not-a-file" and got["branches"] == "not-a-file"


def test_symlinked_ref_is_not_followed(tmp_path: Path) -> None:
    repo, _ = _two_branches(tmp_path)
    outside = tmp_path / "outside"
    outside.write_text(repo.resolve("dev") + "\n")
    p = os.path.join(repo.path, "refs", "heads", "dev")
    os.unlink(p)
    os.symlink(outside, p)
    r = embfmt.Repo(repo.path)
    with pytest.raises(FormatError) as e:
        r.read("t", "dev")
    assert e.value.kind.value == "not-a-file"
    assert [x["object"] for x in r.verify().errors] == ["refs/heads/dev"]
