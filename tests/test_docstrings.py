"""Every example in a public docstring runs and prints what it shows."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import embfmt

MODULES = sorted(m.name for m in pkgutil.walk_packages(embfmt.__path__, "embfmt.")
                 if m.name not in {"embfmt.__main__"})


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # examples may write files
    try:
        mod = importlib.import_module(name)
    except ImportError as e:  # an optional dependency (plot: matplotlib) is missing
        pytest.skip(f"{name}: {e}")
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples failed in {name}"
