"""The package's shape: the layer contracts hold, and only backend.py reaches the kernels.

The layers, the no-cycle rule and the kernels' independence are import-linter contracts in
pyproject.toml ([tool.importlinter]; .ci/run also runs ``lint-imports``). One rule is checked here
instead: embfmt._kernels is kernels/ mapped into the package at install time (pyproject's
package-dir), so it is no folder under embfmt/ and import-linter's graph does not contain it.
docs/architecture.md describes the layers.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "embfmt"
KERNELS = "embfmt._kernels"
# The one module that chooses and imports kernels (issue 14).
KERNEL_GATE = "embfmt/backend.py"
# Modules that still import kernels directly, to be routed through backend.py (issue 14 stage 2).
# A listed module that no longer does fails the test: delete its line.
PENDING: set[str] = set()


def _module_name(path: Path) -> tuple[str, bool]:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    is_pkg = parts[-1] == "__init__"
    if is_pkg:
        parts = parts[:-1]
    return ".".join(parts), is_pkg


def kernel_imports(path: Path) -> list[int]:
    """Line numbers in ``path`` that import embfmt._kernels (absolute, relative or by name string)."""
    name, is_pkg = _module_name(path)
    package = name if is_pkg else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    hits = []

    def is_kernels(mod: str) -> bool:
        return mod == KERNELS or mod.startswith(KERNELS + ".")

    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            # importlib.import_module("embfmt._kernels.cpu") and the like
            targets = [node.value.strip()] if node.value.strip().startswith(KERNELS) else []
        if any(is_kernels(t) for t in targets):
            hits.append(node.lineno)
    return sorted(set(hits))


def test_only_backend_imports_kernels() -> None:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = kernel_imports(path)
        if lines:
            found[path.relative_to(REPO).as_posix()] = lines
    assert KERNEL_GATE in found, "backend.py no longer imports the kernels: update this test"
    outside = {p: ln for p, ln in found.items() if p != KERNEL_GATE and p not in PENDING}
    assert not outside, (f"only {KERNEL_GATE} may import {KERNELS} (ask it for a kernel set instead): "
                         f"{outside}")
    stale = sorted(PENDING - set(found))
    assert not stale, f"{stale} no longer import {KERNELS}: remove them from PENDING in this test"


@pytest.mark.parametrize("source, expected", [
    ("from .._kernels import cpu\n", [1]),
    ("from .. import _kernels\n", [1]),
    ("import embfmt._kernels.reference as r\n", [1]),
    ("def f():\n    from embfmt._kernels import gpu\n", [2]),
    ("import importlib\nk = importlib.import_module('embfmt._kernels.cpu')\n", [2]),
    ("from ..backend import cpu_kernels\nfrom . import kernels_doc\n", []),
])
def test_the_scan_sees_every_spelling(tmp_path: Path, source: str, expected: list[int],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # A stand-in module at embfmt/compare/x.py: relative imports resolve from embfmt.compare.
    fake = tmp_path / "embfmt" / "compare" / "x.py"
    fake.parent.mkdir(parents=True)
    fake.write_text(source, encoding="utf-8")
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    assert kernel_imports(fake) == expected


def test_import_contracts_kept() -> None:
    # In a subprocess: import-linter puts the working directory on sys.path (kernels/ is a root
    # package of the contracts) and builds its graph from the files, importing nothing.
    proc = subprocess.run(
        [sys.executable, "-c",
         "import sys; from importlinter.cli import lint_imports; "
         "sys.exit(lint_imports(no_cache=True, no_logo=True))"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout, proc.stdout[-3000:]
