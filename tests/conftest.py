"""Shared fixtures: spec paths, the vector generator, and a backend fixture over every backend."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]
SPEC_DIR = REPO / "spec"
VECTOR_DIR = SPEC_DIR / "vectors" / "v1"


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("embfmt_generate_vectors",
                                                  SPEC_DIR / "tools" / "generate_vectors.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


GEN = _load_generator()


def _gpu_ok() -> tuple[bool, str]:
    from embfmt.backend import gpu_status

    return gpu_status()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    ok, why = _gpu_ok()
    if ok:
        return
    skip = pytest.mark.skip(reason=f"gpu test: {why}")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(params=["reference", "cpu", pytest.param("gpu", marks=pytest.mark.gpu)])
def backend(request: pytest.FixtureRequest) -> str:
    """Every backend by name; the gpu one skips visibly where CuPy or a device is missing."""
    return str(request.param)


@pytest.fixture
def gen() -> ModuleType:
    """spec/tools/generate_vectors.py, imported as a module."""
    return GEN


@pytest.fixture(autouse=True)
def _no_backend_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's EMBFMT_BACKEND must not change what the tests exercise.
    if "EMBFMT_BACKEND" in os.environ:
        monkeypatch.delenv("EMBFMT_BACKEND")
