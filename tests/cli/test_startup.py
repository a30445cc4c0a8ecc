"""Which modules a command imports before it does its work (issue 13: start-up time).

Commands that only read refs and commit objects (``--help``, ``--version``, ``log``, ``show``,
``branch``, ``tag``) must not pay for the heavy modules: ml_dtypes alone took ~1 s to import,
Numba a few hundred ms plus loading its kernels. The timings themselves are a benchmark
(benchmarks/bench_startup.py); this test guards the cause, the import set, in a real process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

# Run the CLI's own entry point in a fresh interpreter and report every module it imported,
# whatever the command's exit status.
_PROBE = """
import json, sys
from embfmt.cli import main
try:
    rc = main(sys.argv[2:])
finally:
    with open(sys.argv[1], "w") as f:
        json.dump(sorted(sys.modules), f)
sys.exit(rc)
"""

# Never needed by a command that does not read or write table contents.
HEAVY = ("numba", "llvmlite", "ml_dtypes", "h5py", "matplotlib", "pyarrow", "torch", "cupy", "tqdm",
         "xxhash", "safetensors", "embfmt._kernels.cpu", "embfmt._kernels.gpu", "embfmt.formats",
         "embfmt.compare.plot", "embfmt.environment", "importlib.metadata")
# Not needed even to open a repository: --help and --version are argparse and nothing more.
NOT_FOR_HELP = HEAVY + ("numpy", "blake3", "zstandard", "concurrent.futures", "embfmt.repo",
                        "embfmt.canonical.fingerprint", "embfmt.compare.diff")


def _imported(cwd: str, *argv: str) -> tuple[int, set[str]]:
    out = os.path.join(cwd, ".modules.json")
    env = {k: v for k, v in os.environ.items() if k != "EMBFMT_PROGRESS"}
    proc = subprocess.run([sys.executable, "-c", _PROBE, out, *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)
    with open(out) as f:
        mods = set(json.load(f))
    os.remove(out)
    return proc.returncode, mods


def _loaded(mods: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(n for n in names if n in mods or any(m.startswith(n + ".") for m in mods))


@pytest.fixture(scope="module")
def repo_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A repository with two commits of a float32 table and a bfloat16 one, a tag and a branch."""
    import ml_dtypes

    import embfmt

    d = str(tmp_path_factory.mktemp("startup"))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 8)).astype(np.float32)
    with embfmt.Repo.init(d) as repo:
        repo.commit({"emb": x, "half": x.astype(ml_dtypes.bfloat16)}, message="first")
        x[3] += 1
        repo.commit({"emb": x}, message="second")
    for argv in (["tag", "v1", "HEAD~1"], ["branch", "exp"]):
        subprocess.run(["embfmt", "-C", d, *argv], check=True, capture_output=True)
    return d


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["commit", "--help"], ["diff", "--help"]])
def test_help_imports_no_numpy(tmp_path: object, argv: list[str]) -> None:
    rc, mods = _imported(str(tmp_path), *argv)
    assert rc == 0
    assert "embfmt.cli" in mods  # the probe did run the CLI
    assert _loaded(mods, NOT_FOR_HELP) == []


@pytest.mark.parametrize("argv", [["log"], ["show"], ["show", "HEAD~1"], ["branch"], ["tag"],
                                  ["log", "--json"]])
def test_read_only_commands_import_no_heavy_module(repo_dir: str, argv: list[str]) -> None:
    rc, mods = _imported(repo_dir, *argv)
    assert rc == 0
    assert "embfmt.repo" in mods  # it did open the repository
    assert _loaded(mods, HEAVY) == []


def test_public_api_unchanged_by_lazy_loading() -> None:
    """Every name in ``__all__`` resolves; ``embfmt.diff``, ``embfmt.verify`` and
    ``embfmt.fingerprint`` are functions, whatever was imported, and no top-level submodule bears
    their names (the modules live in their layers: ``embfmt.compare.diff`` and so on)."""
    code = """
import embfmt, sys
assert "numpy" not in sys.modules, "import embfmt imported numpy"
import embfmt.compare.diff, embfmt.compare.verify_array, embfmt.canonical.fingerprint
from embfmt.repo import Repo
import embfmt.compare.diff as d
assert d is embfmt.compare.diff and isinstance(d, type(sys))
import importlib.util
for name in ("diff", "verify", "fingerprint"):
    assert callable(getattr(embfmt, name)) and not isinstance(getattr(embfmt, name), type(sys)), name
    assert importlib.util.find_spec(f"embfmt.{name}") is None, name
assert embfmt.Repo is Repo
for name in embfmt.__all__:
    getattr(embfmt, name)
assert set(embfmt.__all__) <= set(dir(embfmt))
assert embfmt.repo.Repo is Repo and embfmt.store.LocalStore
try:
    embfmt.no_such_name
except AttributeError:
    pass
else:
    raise AssertionError("no AttributeError")
from embfmt import *
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_bfloat16_dtype_resolves_on_first_use() -> None:
    """The bfloat16 dtype is ml_dtypes' bfloat16, loaded only when a table's values are used."""
    code = """
import sys
from embfmt.canonical.dtype import dtype_from_name, dtype_of
bf = dtype_from_name("bfloat16")
assert bf.itemsize == 2 and bf.bits.str == "<u2" and "ml_dtypes" not in sys.modules
import ml_dtypes, numpy as np
assert bf.numpy == np.dtype(ml_dtypes.bfloat16)
assert dtype_of(np.zeros(2, ml_dtypes.bfloat16).dtype) is bf
assert dtype_of(np.dtype(">f4")).numpy.str == "<f4"
assert [d.numpy.str for d in __import__("embfmt.canonical.dtype").canonical.dtype.DTYPES] == ["<f8", "<f4", "<f2", "<V2", "|i1", "|u1"]
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
