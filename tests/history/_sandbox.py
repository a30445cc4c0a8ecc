"""Real file-system refusals for tests: a read-only bind mount and a tiny tmpfs, each in a
private mount namespace of a child process (``unshare -m``), so that nothing outside the
child ever sees the mount and nothing is left mounted when it exits, however it ends.

The tests run as root here, where ``chmod`` denies nothing; a mount that refuses writes is a
real refusal (EROFS, ENOSPC) from the kernel, not a mock. Where mounts are not allowed (no
root, no ``unshare``), :func:`skip_reason` says why and the tests skip.
"""

from __future__ import annotations

import functools
import os
import shlex
import shutil
import subprocess
import sys
import tempfile

UNSHARE = shutil.which("unshare")


@functools.lru_cache(maxsize=None)
def skip_reason() -> str | None:
    """None when private read-only bind mounts and tmpfs mounts work here; else why not."""
    if UNSHARE is None:
        return "no unshare(1) here"
    d = tempfile.mkdtemp(prefix="embfmt-mnt-")
    try:
        p = subprocess.run([UNSHARE, "-m", "--propagation", "private", "sh", "-c",
                            f"mount --bind -o ro {d} {d} && mount -t tmpfs -o size=1m tmpfs {d}"],
                           capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unshare -m failed: {e}"
    finally:
        os.rmdir(d)
    return None if p.returncode == 0 else f"private mounts are not allowed here: {p.stderr.strip()[:200]}"


def run_in_namespace(setup: str, argv: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` after the shell commands ``setup`` (mounts) in a private mount namespace."""
    script = f"{setup} && exec {' '.join(shlex.quote(a) for a in argv)}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run([UNSHARE or "unshare", "-m", "--propagation", "private", "sh", "-c", script],
                          capture_output=True, text=True, timeout=timeout, env=env)


def read_only(path: str, argv: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` with ``path`` mounted read-only over itself."""
    p = shlex.quote(path)
    return run_in_namespace(f"mount --bind -o ro {p} {p}", argv, timeout)


def small_fs(path: str, size: str, argv: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` with a tmpfs of ``size`` (e.g. ``8m``) mounted at ``path``."""
    p = shlex.quote(path)
    return run_in_namespace(f"mount -t tmpfs -o size={size} tmpfs {p}", argv, timeout)
