"""Start-up time of the read-only CLI commands, as a ratio against ``python -c "import numpy"``.

Each command (``embfmt --help``, ``--version``, ``log``, ``show``, ``branch``, ``tag``) runs as
a fresh process on a small repository (two commits, a tag, a branch), alternating with the
baseline process in the same run; the figures are medians. Target (issue 13): <= 3x.

Bytecode: a wheel's modules are compiled to ``.pyc`` when installed, so the processes run with
bytecode caching on (``PYTHONPYCACHEPREFIX`` in a temporary directory, warmed before timing),
whatever ``PYTHONDONTWRITEBYTECODE`` says; without it every run would recompile embfmt's
sources and time the compiler (~2x slower here), not the start-up.

    python benchmarks/bench_startup.py              # prints the table
    python benchmarks/bench_startup.py --repeat 21

CI runs the pytest entry points below with --benchmark-disable (one run each, nothing timed).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _timing import interleaved_medians, print_table, verdict  # noqa: E402

TARGET = 3.0
COMMANDS: list[list[str]] = [["--help"], ["--version"], ["log"], ["show"], ["branch"], ["tag"]]
BASELINE = [sys.executable, "-c", "import numpy"]


def _embfmt() -> list[str]:
    """The console script a user runs, or ``python -m embfmt`` where it is not installed."""
    script = os.path.join(os.path.dirname(sys.executable), "embfmt")
    return [script] if os.path.exists(script) else [sys.executable, "-m", "embfmt"]


def _env(pycache: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONDONTWRITEBYTECODE", "EMBFMT_PROGRESS")}
    env["PYTHONPYCACHEPREFIX"] = pycache
    return env


def build(path: str) -> None:
    """A repository with two commits of a 1000 x 64 float32 table, a tag and a branch."""
    import embfmt

    x = np.random.default_rng(0).standard_normal((1000, 64)).astype(np.float32)
    with embfmt.Repo.init(path) as repo:
        repo.commit({"item_emb": x}, message="first")
        x[:10] += 1
        repo.commit({"item_emb": x}, message="second")
        repo.tag("v1", "HEAD~1")
        repo.branch("exp")


def run(repeat: int = 11) -> tuple[list[list[Any]], dict[str, float]]:
    work = tempfile.mkdtemp(prefix="embfmt-bench-startup-")
    try:
        repo = os.path.join(work, "repo")
        build(repo)
        env = _env(os.path.join(work, "pycache"))
        cli = _embfmt()

        def proc(argv: list[str]) -> Any:
            def go() -> None:
                subprocess.run(argv, cwd=repo, env=env, check=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
            return go

        fns = {"baseline": proc(BASELINE)}
        for c in COMMANDS:
            fns[" ".join(c)] = proc([*cli, *c])
        # interleaved_medians warms each once (that run writes the .pyc files)
        med = interleaved_medians(fns, repeat=repeat, warmup=1)
        base = med["baseline"]
        rows = [[f"`embfmt {name}`", f"{t * 1000:.0f}", f"{base * 1000:.0f}", f"{t / base:.2f}",
                 f"<= {TARGET:g}", verdict(t / base, TARGET, higher_is_better=False)]
                for name, t in med.items() if name != "baseline"]
        return rows, med
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=11)
    a = ap.parse_args()
    rows, _ = run(a.repeat)
    print_table(f"CLI start-up, median of {a.repeat} interleaved runs",
                ["command", "ms", 'baseline `python -c "import numpy"` (ms)', "ratio", "target", ""],
                rows)


def test_bench_startup_smoke() -> None:
    rows, med = run(repeat=1)
    assert [r[0] for r in rows] == [f"`embfmt {' '.join(c)}`" for c in COMMANDS]
    assert all(t > 0 for t in med.values())


def test_bench_startup_log(benchmark, tmp_path) -> None:  # type: ignore[no-untyped-def]
    repo = str(tmp_path / "r")
    build(repo)
    env = _env(str(tmp_path / "pycache"))
    proc = benchmark(subprocess.run, [*_embfmt(), "log", "--json"], cwd=repo, env=env,
                     capture_output=True, text=True, check=True)
    assert '"message": "second"' in proc.stdout


if __name__ == "__main__":
    main()
