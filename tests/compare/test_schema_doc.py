"""Every key that ``Diff.to_dict()`` and ``VerifyResult.to_dict()`` produce is documented in
spec/diff-json.md (parsed from its markdown tables), and the documented schema version is the
code's."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

import embfmt
from embfmt.compare.diff import DIFF_SCHEMA_VERSION, METRICS

DOC = Path(__file__).resolve().parents[2] / "spec" / "diff-json.md"
FREE_FORM = {"environment.current", "environment.recorded"}


def documented() -> set[str]:
    """First-column backticked names of every markdown table row whose header is ``field``."""
    out: set[str] = set()
    in_table = False
    for line in DOC.read_text().splitlines():
        if line.startswith("| field |"):
            in_table = True
            continue
        if not line.startswith("|"):
            in_table = False
            continue
        if in_table:
            m = re.match(r"\|\s*`([^`]+)`\s*\|", line)
            if m:
                out.add(m.group(1))
    return out


def paths(obj: Any, prefix: str = "") -> set[str]:
    """Dotted key paths; ``x[]`` for list elements; ``<metric>`` for summary keys."""
    out: set[str] = set()
    if isinstance(obj, dict):
        for k, v in obj.items():
            if prefix == "summary" and k in METRICS:
                k = "<metric>"
            p = f"{prefix}.{k}" if prefix else k
            out.add(p)
            if p not in FREE_FORM:
                out |= paths(v, p)
    elif isinstance(obj, list):
        for v in obj:
            if isinstance(v, dict):
                out |= paths(v, prefix + "[]")
    return out


def _diff_dicts(tmp_path: Path) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 8)).astype(np.float32)
    y = x.copy()
    y[[1, 2, 3]] += 1
    y[4, 0] = np.nan
    out = [embfmt.diff(x, y, procrustes=True, knn=3).to_dict(rows=True),
           embfmt.diff(x, y, stats=False).to_dict(),
           embfmt.diff(x[:2], y[:2], procrustes=True, knn=5).to_dict()]  # knn with too few rows
    keyed = embfmt.diff(x, y[::-1].copy(), keys_a=np.arange(400), keys_b=np.arange(400)[::-1])
    out.append(keyed.to_dict(rows=True))
    nanp = embfmt.diff(np.full((3, 2), np.nan, np.float32), np.zeros((3, 2), np.float32), procrustes=True)
    out.append(nanp.to_dict())  # procrustes with no finite row
    repo = embfmt.Repo.init(tmp_path / "r")
    repo.commit({"t": x}, message="1")
    repo.commit({"t": y}, message="2")
    out.append(repo.diff("HEAD~1", "HEAD", "t").to_dict(rows=True))
    d = embfmt.diff(repo.open("t", "HEAD~1"), y)
    d.info["b"] = {"file": "y.npy", "dataset": None, "fingerprint": embfmt.fingerprint(y).root}
    out.append(d.to_dict())
    return out


def _verify_dicts(tmp_path: Path) -> list[dict[str, Any]]:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((300, 8)).astype(np.float32)
    y = x.copy()
    y[5] += 1
    repo = embfmt.Repo.init(tmp_path / "v")
    repo.commit({"t": x}, message="1")
    view = repo.open("t")
    return [embfmt.verify(y, view, atol=0.1).to_dict(), embfmt.verify(y, view, rtol=0.1).to_dict(),
            embfmt.verify(y, view, ulp=3).to_dict(), embfmt.verify(y, view, min_cosine=0.9).to_dict(),
            embfmt.verify(y, view).to_dict(), embfmt.verify(y[:5], view).to_dict(),
            embfmt.verify(y, embfmt.fingerprint(x)).to_dict(), embfmt.verify(y, view.fingerprint).to_dict()]


def test_every_diff_key_is_documented(tmp_path: Path) -> None:
    doc = documented()
    seen: set[str] = set()
    for d in _diff_dicts(tmp_path):
        seen |= paths(d)
    missing = sorted(seen - doc)
    assert not missing, f"undocumented in {DOC.name}: {missing}"
    # the documentation is about these documents, not others: it names what we saw
    assert {"summary.<metric>.p99", "top[].ulp", "rows.removed_keys", "knn.p10",
            "procrustes.rotation_explains", "a.commit", "b.file"} <= doc


def test_every_verify_key_is_documented(tmp_path: Path) -> None:
    doc = documented()
    seen: set[str] = set()
    for d in _verify_dicts(tmp_path):
        seen |= paths(d)
    missing = sorted(seen - doc)
    assert not missing, f"undocumented in {DOC.name}: {missing}"
    assert {"tolerance.atol", "tolerance.rtol", "tolerance.ulp", "tolerance.min_cosine",
            "rows_failed[].cosine", "environment.recorded"} <= seen


def test_schema_version_documented() -> None:
    text = DOC.read_text()
    assert f'"schema": {DIFF_SCHEMA_VERSION}' in text and "DIFF_SCHEMA_VERSION" in text
    assert "only ever **added**" in text
