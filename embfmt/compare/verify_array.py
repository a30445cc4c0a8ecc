"""Reproducibility checks: is this matrix the one we expect, exactly or within a tolerance?

``against`` may be a fingerprint text (answers equal / not equal), a :class:`Fingerprint`
(also says which chunks and rows differ, from its chunk digests and rowprints), or a stored
version (``repo.open(table, rev)``: also lists the rows outside tolerance with their errors and
puts the environment recorded with that version beside the current one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..environment import capture_environment
from ..errors import ErrorKind, InputError
from ..canonical.fingerprint import Fingerprint, fingerprint, parse_root
from ..history.table import TableView
from .diff import diff
from ..canonical.matrix import as_matrix

__all__ = ["VerifyResult", "verify"]


@dataclass
class VerifyResult:
    """Outcome of :func:`verify`. ``passed`` is the answer; the rest says why."""

    passed: bool
    mode: str
    tolerance: dict[str, float]
    expected: str
    actual: str
    equal: bool
    chunks_differ: list[int] | None = None
    rows_differ: list[int] | None = None
    rows_checked: int = 0
    rows_failed: list[dict[str, Any]] = field(default_factory=list)
    n_failed: int = 0
    environment: dict[str, Any] = field(default_factory=dict)
    reference: dict[str, Any] = field(default_factory=dict)
    """What ``x`` was checked against: ``{"type": "fingerprint"}`` or ``{"type": "stored",
    "rev", "commit", "table"}``."""
    reason: str | None = None
    """Why the check failed without row statistics (e.g. a different dtype or D), else None."""

    def to_dict(self, max_rows: int = 100) -> dict[str, Any]:
        """The stable JSON form (documented in spec/diff-json.md)."""
        return {"passed": self.passed, "mode": self.mode, "tolerance": self.tolerance,
                "reference": self.reference, "reason": self.reason,
                "fingerprint": {"expected": self.expected, "actual": self.actual, "equal": self.equal},
                "chunks_differ": self.chunks_differ,
                "rows_differ": None if self.rows_differ is None else self.rows_differ[:max_rows],
                "rows_differ_count": None if self.rows_differ is None else len(self.rows_differ),
                "rows_checked": self.rows_checked, "rows_failed_count": self.n_failed,
                "rows_failed": self.rows_failed[:max_rows], "environment": self.environment}


def _mode(atol: float | None, rtol: float | None, ulp: int | None, min_cosine: float | None) -> tuple[str, dict[str, float]]:
    given = {k: v for k, v in (("atol", atol), ("rtol", rtol), ("ulp", ulp), ("min_cosine", min_cosine)) if v is not None}
    if len(given) > 1:
        raise InputError(f"give at most one tolerance, got {sorted(given)}", ErrorKind.BAD_ARGUMENT)
    if not given:
        return "exact", {}
    (k, v), = given.items()
    if k == "ulp":
        try:
            ok = not isinstance(v, bool) and int(v) == v and 0 <= int(v) < 2 ** 64
        except (ValueError, OverflowError, TypeError):
            ok = False
        if not ok:
            raise InputError(f"invalid tolerance ulp={v}: an integer from 0 to 2**64-1",
                             ErrorKind.BAD_ARGUMENT)
        return k, {k: int(v)}
    if not np.isfinite(v) or (k != "min_cosine" and v < 0) or (k == "min_cosine" and not -1 <= v <= 1):
        raise InputError(f"invalid tolerance {k}={v}", ErrorKind.BAD_ARGUMENT)
    return k, {k: float(v)}


def verify(x: Any, against: Any, *, atol: float | None = None, rtol: float | None = None,
           ulp: int | None = None, min_cosine: float | None = None) -> VerifyResult:
    """Check ``x`` against an expected fingerprint or stored version.

    Tolerances (at most one; none means bit-exact), per row: ``atol``: max |b - a| <= atol;
    ``rtol``: ||b - a|| <= rtol * ||a||; ``ulp``: max ULP distance <= ulp; ``min_cosine``:
    cosine(a, b) >= min_cosine. Rows present on one side only always fail.

    Examples
    --------
    >>> import numpy as np, embfmt
    >>> x = np.ones((4, 3), np.float32)
    >>> embfmt.verify(x, embfmt.fingerprint(x).root).passed
    True
    >>> y = x.copy(); y[1, 1] = np.nextafter(np.float32(1), np.float32(2))
    >>> r = embfmt.verify(y, embfmt.fingerprint(x)); (r.passed, r.rows_differ)
    (False, [1])
    """
    mode, tol = _mode(atol, rtol, ulp, min_cosine)
    env: dict[str, Any] = {"current": capture_environment("cpu"), "recorded": None}
    if isinstance(against, TableView):
        return _against_stored(x, against, mode, tol, env)
    if isinstance(against, (Fingerprint, str)) and mode != "exact":
        raise InputError("a tolerance needs the expected values: verify against a stored version",
                         ErrorKind.BAD_ARGUMENT)
    ref = {"type": "fingerprint"}
    if isinstance(against, Fingerprint):
        fp = fingerprint(x)
        equal = fp == against
        chunks, rows = None, None
        if not equal and fp.shape[1] == against.shape[1] and fp.dtype == against.dtype:
            n = min(fp.n_chunks, against.n_chunks)
            chunks = [c for c in range(max(fp.n_chunks, against.n_chunks))
                      if c >= n or fp.chunk_digests[c] != against.chunk_digests[c]]
            m = min(len(fp.rowprints), len(against.rowprints))
            rows = (np.flatnonzero(fp.rowprints[:m] != against.rowprints[:m]).tolist()
                    + list(range(m, max(len(fp.rowprints), len(against.rowprints)))))
        return VerifyResult(equal, mode, tol, against.root, fp.root, equal, chunks, rows,
                            fp.shape[0], environment=env, reference=ref)
    if isinstance(against, str):
        want = parse_root(against)
        fp = fingerprint(x)
        equal = bytes.fromhex(fp.root.split(":")[-1]) == want
        return VerifyResult(equal, mode, tol, against.strip(), fp.root, equal, rows_checked=fp.shape[0],
                            environment=env, reference=ref)
    raise InputError(f"cannot verify against {type(against).__name__}: give a fingerprint text, a "
                     "Fingerprint or a stored version (repo.open(table, rev))", ErrorKind.BAD_ARGUMENT)


def _against_stored(x: Any, view: Any, mode: str, tol: dict[str, float], env: dict[str, Any]) -> VerifyResult:
    env["recorded"] = getattr(view, "environment", None)
    ref = {"type": "stored", "rev": getattr(view, "rev", None), "commit": getattr(view, "commit", None),
           "table": getattr(view, "name", None)}
    expected = view.fingerprint
    m = as_matrix(x)
    tv = view.version
    if m.dtype != tv.dtype or m.dim != tv.dim:
        # Not comparable row by row: a difference (as against a fingerprint), not an error.
        return VerifyResult(False, mode, tol, expected, fingerprint(m).root, False,
                            n_failed=max(m.n_rows, tv.n_rows), environment=env, reference=ref,
                            reason=f"expected {tv.dtype.name} x {tv.dim}, got {m.dtype.name} x {m.dim}")
    d = diff(view, m, stats=True)
    equal = d.identical
    actual = d.info.get("fingerprint_b") or fingerprint(m).root
    s = d.stats or {}
    if mode == "exact":
        bad = np.ones(d.n_changed, bool)
    elif mode == "atol":
        bad = ~(s["max_abs"] <= tol["atol"])
    elif mode == "ulp":
        bad = ~(s["ulp"] <= np.uint64(tol["ulp"]))
    elif mode == "min_cosine":
        bad = ~(s["cosine"] >= tol["min_cosine"])
    else:  # rtol: ||b - a|| <= rtol * ||a||
        a_rows = view.rows(d.changed_a).astype(np.float64) if d.n_changed else np.empty((0, d.dim))
        norms = np.linalg.norm(a_rows, axis=1)
        bad = ~(s["l2"] <= tol["rtol"] * norms)
    failed = []
    for i in np.flatnonzero(bad):
        row: dict[str, int | float | str] = {"row": int(d.changed_b[i])}
        for metric in ("l2", "cosine", "max_abs", "ulp"):
            v = s[metric][i]
            row[metric] = int(v) if metric == "ulp" else (float(v) if np.isfinite(v) else str(float(v)))
        failed.append(row)
    n_failed = len(failed) + len(d.added) + len(d.removed)
    reason = None
    if len(d.added) or len(d.removed):
        reason = f"expected {tv.n_rows} rows, got {m.n_rows}"
    return VerifyResult(n_failed == 0, mode, tol, expected, actual, equal,
                        rows_differ=d.changed_b.tolist(), rows_checked=d.n_matched,
                        rows_failed=failed, n_failed=n_failed, environment=env, reference=ref,
                        reason=reason)
