"""Progress bars and the first-run compile notice: drawn on a terminal, never in pipes, never
with --quiet or --json."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys

import numpy as np
import pytest

import embfmt
from embfmt.progress import COMPILE_NOTICE


def _run_on_tty(args: list[str], cwd: str, env_extra: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run the CLI with stderr on a pseudo-terminal (as in an interactive shell); returns the
    exit code, stdout (a pipe) and everything written to the terminal."""
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "EMBFMT_PROGRESS"}
    env.update(env_extra or {})
    proc = subprocess.Popen([sys.executable, "-m", "embfmt", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=slave, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    assert proc.stdout is not None
    out = proc.stdout.read().decode()
    proc.stdout.close()
    rc = proc.wait(timeout=300)
    os.close(master)
    return rc, out, b"".join(chunks).decode(errors="replace")


@pytest.fixture()
def repo_and_file(tmp_path):
    embfmt.Repo.init(tmp_path / "r")
    np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal((20_000, 64)).astype(np.float32))
    return str(tmp_path / "r"), str(tmp_path / "x.npy")


def test_bar_on_a_terminal(repo_and_file):
    repo, npy = repo_and_file
    rc, out, tty = _run_on_tty(["commit", f"t={npy}", "-m", "m"], repo)
    assert rc == 0, tty
    assert "write t" in tty and "%|" in tty  # tqdm's bar
    assert len(out.strip()) == 64  # stdout is only the commit id


@pytest.mark.parametrize("flag", ["--quiet", "--json"])
def test_no_bar_with_quiet_or_json(repo_and_file, flag):
    repo, npy = repo_and_file
    rc, out, tty = _run_on_tty(["commit", f"t={npy}", "-m", "m", flag], repo)
    assert rc == 0, tty
    assert "%|" not in tty and tty.strip() == ""


def test_no_bar_when_stderr_is_a_pipe(repo_and_file):
    repo, npy = repo_and_file
    proc = subprocess.run([sys.executable, "-m", "embfmt", "commit", f"t={npy}", "-m", "m"], cwd=repo,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stderr == ""


def test_library_is_silent_by_default(tmp_path, capsys):
    repo = embfmt.Repo.init(tmp_path)
    repo.commit({"t": np.zeros((5000, 64), np.float32)}, message="m")
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("cmd, desc, want_rc", [
    (["verify"], "verify chunks", 0), (["gc", "--prune-now"], "gc objects", 0),
    (["checkout", "HEAD", "t", "-o", "out.npy", "--force"], "write file", 0),
    # A parent/child diff is answered from the change record written at commit time: nothing
    # long enough to deserve a bar.
    (["diff", "HEAD~1", "HEAD", "--table", "t"], None, 1),
    (["diff", "HEAD", "{npy}", "--table", "t"], "diff chunks", 1)])
def test_long_repository_commands_show_bars(repo_and_file, cmd, desc, want_rc):
    repo, npy = repo_and_file
    r = embfmt.Repo(repo)
    x = np.load(npy)
    r.commit({"t": x}, message="1")
    x[::7] += 1
    r.commit({"t": x}, message="2")
    cmd = [c.format(npy=npy) for c in cmd]
    rc, out, tty = _run_on_tty(cmd, repo)
    assert rc == want_rc and "Traceback" not in tty, tty  # diff exits 1: the versions differ
    if desc is not None:
        assert desc in tty and "%|" in tty
    else:
        assert "%|" not in tty
    rc, out, tty = _run_on_tty([*cmd, "--quiet"], repo)
    assert rc == want_rc and "%|" not in tty and "Traceback" not in tty, tty


def test_byte_bars_count_in_mib_and_mib_per_second(repo_and_file):
    """One unit system, binary, as the CLI prints sizes: 'x.x/y.y MiB' at 'z.zzMiB/s' (tqdm's own
    byte scaling wrote kB/MB over 1024-based values, and s/MB below 1 MB/s)."""
    repo, npy = repo_and_file
    rc, _, commit = _run_on_tty(["commit", f"t={npy}", "-m", "m"], repo)
    assert rc == 0, commit
    rc, _, checkout = _run_on_tty(["checkout", "HEAD", "t", "-o", "out.npy"], repo)
    assert rc == 0, checkout
    for tty in (commit, checkout):
        frames = [f for f in re.split(r"[\r\n]", tty) if "%|" in f]
        assert frames, tty
        assert all(re.search(r"\d+\.\d/4\.9 MiB \[.*, +(\?|\d+\.\d+)MiB/s\]", f) for f in frames), frames
        assert not re.search(r"\d ?(k|K|M|G)i?B\b", tty.replace(" MiB", "").replace("MiB/s", "")), tty
        assert "s/MiB" not in tty


def test_compile_notice_once_on_a_terminal_with_a_cold_cache(repo_and_file, tmp_path):
    """A first run compiles kernels: said once on a terminal, never once they are cached."""
    repo, npy = repo_and_file
    cold = {"NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}  # empty: as on a new machine
    rc, out, tty = _run_on_tty(["commit", f"t={npy}", "-m", "m"], repo, cold)
    assert rc == 0, tty
    assert tty.count(COMPILE_NOTICE) == 1, tty
    assert os.listdir(tmp_path / "numba-cache")  # it did compile, into that cache
    rc, out, tty = _run_on_tty(["commit", f"t={npy}", "-m", "m again"], repo, cold)
    assert rc == 0, tty
    assert COMPILE_NOTICE not in tty and "write t" in tty


def test_no_compile_notice_on_a_pipe_or_with_quiet(repo_and_file, tmp_path):
    repo, npy = repo_and_file
    env = {k: v for k, v in os.environ.items() if k != "EMBFMT_PROGRESS"}
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "cold1")
    proc = subprocess.run([sys.executable, "-m", "embfmt", "commit", f"t={npy}", "-m", "m"], cwd=repo,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stderr == ""
    assert os.listdir(tmp_path / "cold1")  # compiled, silently
    rc, out, tty = _run_on_tty(["verify", "--quiet"], repo, {"NUMBA_CACHE_DIR": str(tmp_path / "cold2")})
    assert rc == 0 and tty.strip() == "", tty
    assert os.listdir(tmp_path / "cold2")
