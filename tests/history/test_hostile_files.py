"""Files of a repository replaced by something else: huge files, symlinks (to /dev/zero, out
of the repository), FIFOs, directories. Every read ends quickly in a typed error (or verify's
report), within the spec's size limits (§19, §19.1); no write or delete goes through a symlink
out of the repository (§18.4)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import embfmt
from embfmt.errors import ConflictError

# The child's address space: enough for embfmt, numpy and numba (~650 MiB measured), far
# less than the 1.5 GiB file it must not read.
CHILD_AS = 1200 << 20

_CHILD = r"""
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[2]), int(sys.argv[2])))
import numpy as np, embfmt
r = embfmt.Repo(sys.argv[1]) if sys.argv[3] != "open" else None
calls = {
    "open": lambda: embfmt.Repo(sys.argv[1]),
    "log": lambda: len(r.log()),
    "read": lambda: r.read("t").shape,
    "read_main": lambda: r.read("t", "main").shape,
    "verify": lambda: (r.verify().ok, sorted({e["kind"] for e in r.verify().errors})),
    "uses": lambda: len(r.uses()),
    "record": lambda: r.record_use(r.stamp("t"), consumer="x"),
    "diff": lambda: r.diff("main~1", "main", "t", exact=False).n_changed,
}
out = {}
for name in sys.argv[3].split(","):
    try:
        out[name] = ["ok", repr(calls[name]())]
    except embfmt.EmbfmtError as e:
        out[name] = ["error", str(e.kind)]
    except BaseException as e:
        out[name] = ["untyped", type(e).__name__ + ": " + str(e)[:200]]
print(json.dumps(out))
"""


def run_child(path: str, calls: str, timeout: float = 120) -> dict[str, list[str]]:
    res = subprocess.run([sys.executable, "-c", _CHILD, path, str(CHILD_AS), calls],
                         capture_output=True, text=True, timeout=timeout, cwd=os.path.dirname(path))
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.fixture
def repo_path(tmp_path: Path) -> str:
    r = embfmt.Repo.init(tmp_path / "r")
    x = np.arange(64 * 8, dtype=np.float32).reshape(64, 8)
    r.commit({"t": x})
    x[3] += 1
    r.commit({"t": x})
    r.record_use(r.stamp("t"), consumer="test")
    r.close()
    return r.path


def _head_commit(path: str) -> str:
    return Path(path, "refs/heads/main").read_text().strip()


def _object(path: str, oid: str) -> Path:
    return Path(path, "objects", oid[:2], oid[2:])


def _chunk(path: str) -> str:
    r = embfmt.Repo(path)
    return r.table_version("t").digests[0].hex()


def test_huge_file_in_place_of_the_head_commit_is_not_read(repo_path: str) -> None:
    p = _object(repo_path, _head_commit(repo_path))
    os.chmod(p, 0o644)
    with open(p, "r+b") as f:
        f.truncate(1536 << 20)  # 1.5 GiB, sparse: costs no disk
    got = run_child(repo_path, "log,read,verify,read_main")
    assert got["log"] == ["error", "bad-object"]
    assert got["read"] == ["error", "bad-object"]
    assert got["verify"][0] == "ok" and "bad-object" in got["verify"][1]


@pytest.mark.parametrize("what", ["commit", "table", "chunk"])
def test_symlink_to_dev_zero_in_place_of_an_object(repo_path: str, what: str) -> None:
    r = embfmt.Repo(repo_path)
    oid = {"commit": _head_commit(repo_path), "table": r.get_commit(_head_commit(repo_path)).tables["t"],
           "chunk": _chunk(repo_path)}[what]
    p = _object(repo_path, oid)
    os.unlink(p)
    os.symlink("/dev/zero", p)
    got = run_child(repo_path, "read,verify")
    assert got["read"] == ["error", "not-a-file"]
    assert got["verify"][0] == "ok" and "not-a-file" in got["verify"][1]


@pytest.mark.parametrize("what", ["commit", "chunk", "embfmt.json", "uses.log", "uses.head"])
def test_fifo_in_place_of_a_file_does_not_hang(repo_path: str, what: str) -> None:
    p = {"commit": _object(repo_path, _head_commit(repo_path)), "chunk": _object(repo_path, _chunk(repo_path)),
         "embfmt.json": Path(repo_path, "embfmt.json"), "uses.log": Path(repo_path, "lineage/uses.log"),
         "uses.head": Path(repo_path, "lineage/uses.head")}[what]
    os.unlink(p)
    os.mkfifo(p)
    if what == "embfmt.json":
        assert run_child(repo_path, "open", timeout=60)["open"] == ["error", "not-a-file"]
        return
    got = run_child(repo_path, "read,verify,uses,record", timeout=60)
    for name, (outcome, detail) in got.items():
        assert outcome in ("ok", "error"), (name, detail)
    assert got["verify"][0] == "ok" and "not-a-file" in got["verify"][1]
    if what.startswith("uses"):
        assert got["uses"] == ["error", "not-a-file"] and got["record"] == ["error", "not-a-file"]
    else:
        assert got["read"] == ["error", "not-a-file"]


@pytest.mark.parametrize("sub", ["tmp", "cache/rowprints", "cache/seals", "objects/xx"])
def test_gc_never_deletes_through_a_symlink(repo_path: str, tmp_path: Path, sub: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    victims = []
    for name in ("lease-" + "0" * 32, "ab" * 32, "c" * 62, "rowprints-1.x"):
        f = outside / name
        f.write_bytes(b"precious")
        old = time.time() - 10 * 86400
        os.utime(f, (old, old))
        victims.append(f)
    r = embfmt.Repo(repo_path)
    if sub == "objects/xx":
        link = Path(repo_path, "objects", "zz")  # no fan-out directory has that name
    else:
        link = Path(repo_path, sub)
        if link.exists():
            os.rename(link, str(link) + ".moved")
        link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(outside, link)
    before = {f: f.read_bytes() for f in victims}
    with pytest.raises(ConflictError) as e:
        r.gc(grace_seconds=0)
    assert e.value.kind.value == "unsafe-path" and str(link) in str(e.value)
    assert {f: f.read_bytes() for f in victims} == before


def test_gc_leaves_directories_in_tmp_alone(repo_path: str) -> None:
    d = Path(repo_path, "tmp", "somedir")
    d.mkdir(parents=True)
    (d / "f").write_bytes(b"x")
    old = time.time() - 10 * 86400
    os.utime(d, (old, old))
    embfmt.Repo(repo_path).gc(grace_seconds=0)
    assert (d / "f").read_bytes() == b"x"


def test_gc_removes_a_link_in_tmp_not_its_target(repo_path: str, tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_bytes(b"precious")
    link = Path(repo_path, "tmp", "stream-x.rows")
    os.symlink(target, link)
    old = time.time() - 10 * 86400
    os.utime(link, (old, old), follow_symlinks=False)
    embfmt.Repo(repo_path).gc(grace_seconds=0)
    assert not os.path.lexists(link) and target.read_bytes() == b"precious"


@pytest.mark.parametrize("what", ["file", "dir"])
def test_usage_log_is_never_written_through_a_symlink(repo_path: str, tmp_path: Path, what: str) -> None:
    outside = tmp_path / "outside"
    r = embfmt.Repo(repo_path)
    log = Path(repo_path, "lineage", "uses.log")
    if what == "file":
        outside.write_bytes(log.read_bytes())
        log.unlink()
        os.symlink(outside, log)
        before = outside.read_bytes()
    else:
        os.rename(Path(repo_path, "lineage"), outside)
        os.symlink(outside, Path(repo_path, "lineage"))
        before = (outside / "uses.log").read_bytes()
    with pytest.raises(ConflictError) as e:
        r.record_use(r.stamp("t"), consumer="y")
    assert e.value.kind.value == "unsafe-path"
    assert (outside.read_bytes() if what == "file" else (outside / "uses.log").read_bytes()) == before


def test_writes_refuse_a_symlinked_tmp(repo_path: str, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    os.rmdir(Path(repo_path, "tmp")) if not os.listdir(Path(repo_path, "tmp")) else None
    if os.path.exists(Path(repo_path, "tmp")):
        os.rename(Path(repo_path, "tmp"), tmp_path / "oldtmp")
    os.symlink(outside, Path(repo_path, "tmp"))
    r = embfmt.Repo(repo_path)
    with pytest.raises(ConflictError) as e:
        r.commit({"t": np.ones((64, 8), np.float32)})
    assert e.value.kind.value == "unsafe-path"
    assert os.listdir(outside) == []


@pytest.mark.parametrize("cmd", ["checkout", "diff"])
def test_cli_checkout_and_diff_exit_1_on_corruption(repo_path: str, tmp_path: Path, cmd: str) -> None:
    """README: exit 1 when corruption was found (issue 13), one line on stderr."""
    p = _object(repo_path, _chunk(repo_path))
    os.chmod(p, 0o644)
    b = bytearray(p.read_bytes())
    b[-1] ^= 0xFF  # the payload: the digest no longer matches
    p.write_bytes(bytes(b))
    other = tmp_path / "other.npy"
    np.save(other, np.zeros((64, 8), np.float32))  # every row differs: the stored rows are read
    args = (["checkout", "main", "t", "-o", str(tmp_path / "out.npy")] if cmd == "checkout"
            else ["diff", "main", str(other), "--table", "t"])
    res = subprocess.run(["embfmt", "-C", repo_path, *args], capture_output=True, text=True, timeout=300)
    assert res.returncode == 1, (res.returncode, res.stderr)
    assert len(res.stderr.strip().splitlines()) == 1 and "digest-mismatch" in res.stderr
