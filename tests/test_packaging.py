"""pyproject.toml ships every subpackage and every kernel source a wheel needs."""

from __future__ import annotations

import fnmatch
import os

import pytest

tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python >= 3.11")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_every_subpackage_is_listed():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        cfg = tomllib.load(f)["tool"]["setuptools"]
    found = {"embfmt._kernels"}
    for dirpath, _, files in os.walk(os.path.join(ROOT, "embfmt")):
        if "__init__.py" in files and "__pycache__" not in dirpath:
            found.add(os.path.relpath(dirpath, ROOT).replace(os.sep, "."))
    assert set(cfg["packages"]) == found
    globs = cfg["package-data"]["embfmt._kernels"]
    cuda = os.path.join(ROOT, "kernels", "cuda")
    for name in os.listdir(cuda):
        assert any(fnmatch.fnmatch(f"cuda/{name}", g) for g in globs), f"kernels/cuda/{name} not packaged"
