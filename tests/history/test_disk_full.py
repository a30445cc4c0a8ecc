"""A full disk (issue 13): the error names the file and says "no space left on device", the
failed commit takes back what it wrote, and ``gc --status`` shows what an interrupted write
left behind, whatever the grace period. The disk is really full: an 8 MiB tmpfs mounted in a
private mount namespace of a child process (tests/history/_sandbox.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from typing import Any

import numpy as np
import pytest

import embfmt

from . import _sandbox

needs_mounts = pytest.mark.skipif(_sandbox.skip_reason() is not None,
                                  reason=_sandbox.skip_reason() or "")

# Inside the namespace: a repository on the small file system, one small commit, then what
# the test asks for; prints one JSON line with what it saw.
INSIDE = textwrap.dedent("""
    import errno, json, os, subprocess, sys
    import numpy as np
    import embfmt
    mnt, big, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    path = os.path.join(mnt, "repo")
    repo = embfmt.Repo.init(path)
    small = np.arange(800, dtype=np.float32).reshape(100, 8)
    first = repo.commit({"small": small}, message="fits")

    def usage():
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)

    before = usage()
    out = {"before": before}
    if mode == "cli":
        p = subprocess.run([sys.executable, "-m", "embfmt", "-C", path, "commit", f"big={big}",
                            "-m", "too big"], capture_output=True, text=True)
        out.update(rc=p.returncode, stderr=p.stderr)
    else:
        x = np.load(big)
        try:
            if mode == "api":
                repo.commit({"big": x}, message="too big")
            elif mode == "stream":  # a streaming writer: blocks until the disk is full
                with repo.writer("big", shape=x.shape, dtype="float32") as w:
                    for i in range(0, len(x), 4096):
                        w.append(x[i:i + 4096])
            else:  # blocks last to first: they wait in the scratch file, which fills the disk
                with repo.writer("big", shape=x.shape, dtype="float32") as w:
                    for i in reversed(range(0, len(x), 4096)):
                        w.write(i, x[i:i + 4096])
            out["error"] = None
        except embfmt.EmbfmtError as e:
            out["error"] = [type(e).__name__, e.kind.value, isinstance(e, OSError),
                            e.errno == errno.ENOSPC, str(e)]
    out["after"] = usage()
    out["tmp"] = sorted(os.listdir(os.path.join(path, "tmp")))
    out["status"] = embfmt.Repo(path).gc_status(grace_seconds=3600)
    again = embfmt.Repo(path)
    out["verify"] = again.verify().ok
    out["log"] = [c.id for c in again.log()] == [first]
    # The space is free again: the next commit that fits succeeds.
    cid = again.commit({"small": small + 1})
    out["next"] = bool((again.read("small", cid) == small + 1).all())
    print(json.dumps(out))
""")


@pytest.fixture(scope="module")
def big(tmp_path_factory: Any) -> str:
    # 40,000 x 256 float32: 39 MiB that do not compress, against an 8 MiB file system.
    p = str(tmp_path_factory.mktemp("big") / "big.npy")
    np.save(p, np.random.default_rng(0).standard_normal((40_000, 256)).astype(np.float32))
    return p


def full_disk(tmp_path: Any, big: str, mode: str) -> dict[str, Any]:
    mnt = str(tmp_path / "mnt")
    os.makedirs(mnt)
    p = _sandbox.small_fs(mnt, "8m", [sys.executable, "-c", INSIDE, mnt, big, mode])
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout.strip().splitlines()[-1])
    # Nothing left behind: the failed write's objects and temp files are gone, and the
    # repository is what it was.
    assert out["after"] == out["before"], out
    assert out["tmp"] == []
    st = out["status"]
    assert (st["unreferenced_objects"], st["temp_files"], st["writes_running"]) == (0, 0, 0), st
    assert out["verify"] and out["log"] and out["next"]
    return out


@needs_mounts
def test_cli_commit_on_a_full_disk_names_the_file(tmp_path: Any, big: str) -> None:
    out = full_disk(tmp_path, big, "cli")
    assert out["rc"] == 2
    lines = out["stderr"].strip().splitlines()
    assert len(lines) == 1, out["stderr"]
    line = lines[0]
    assert line.startswith("embfmt: error [no-space]: cannot ")
    assert "no space left on device" in line
    named = line.split("cannot ", 1)[1].split(" ", 2)[1].rstrip(":")
    assert named.startswith(str(tmp_path / "mnt" / "repo") + os.sep), line  # a file, never ''


@needs_mounts
@pytest.mark.parametrize("mode", ["api", "stream", "scatter"])
def test_api_write_on_a_full_disk_is_a_typed_error(tmp_path: Any, big: str, mode: str) -> None:
    out = full_disk(tmp_path, big, mode)
    name, kind, is_oserror, enospc, text = out["error"]
    assert (name, kind, is_oserror, enospc) == ("StorageError", "no-space", True, True)
    assert "no space left on device" in text and str(tmp_path / "mnt" / "repo") in text


KILLED = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    import embfmt
    repo = embfmt.Repo(sys.argv[1])
    x = np.random.default_rng(1).standard_normal((50_000, 32)).astype(np.float32)
    w = repo.writer("t", shape=x.shape, dtype="float32")
    w.write(0, x[:40_000])        # chunk objects stored, no commit references them
    w.write(45_000, x[45_000:])   # rows waiting in a scratch file under tmp/
    os.kill(os.getpid(), signal.SIGKILL)
""")


def test_gc_status_shows_what_a_killed_writer_left_behind(tmp_path: Any) -> None:
    path = str(tmp_path / "repo")
    embfmt.Repo.init(path).commit({"t": np.zeros((50_000, 32), np.float32)})
    p = subprocess.run([sys.executable, "-c", KILLED, path], capture_output=True, text=True, timeout=300)
    assert p.returncode == -signal.SIGKILL, p.stderr
    cli = [sys.executable, "-m", "embfmt", "-C", path, "gc"]
    st = json.loads(subprocess.run([*cli, "--status", "--json"], capture_output=True, text=True,
                                   check=True).stdout)
    # Young (inside the default hour of grace), yet listed with their sizes.
    assert st["unreferenced_objects"] >= 4 and st["unreferenced_bytes"] > 2 << 20, st
    assert st["unreferenced_kept_by_grace"] == st["unreferenced_objects"]
    assert st["temp_files"] >= 1 and st["temp_bytes"] > 0, st
    assert (st["writes_running"], st["dead_writer_leases"]) == (0, 1), st
    text = subprocess.run([*cli, "--status"], capture_output=True, text=True, check=True).stdout
    assert "unreferenced: " in text and "--prune-now" in text
    assert json.loads(subprocess.run([*cli, "--status", "--json"], capture_output=True, text=True,
                                     check=True).stdout) == st  # --status changed nothing
    subprocess.run([*cli, "--prune-now"], capture_output=True, text=True, check=True)
    st = json.loads(subprocess.run([*cli, "--status", "--json"], capture_output=True, text=True,
                                   check=True).stdout)
    assert (st["unreferenced_objects"], st["temp_files"], st["dead_writer_leases"]) == (0, 0, 0), st
    assert embfmt.Repo(path).verify().ok
