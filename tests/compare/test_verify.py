"""``embfmt.verify``: tolerance modes at their boundaries; against a fingerprint text, a
Fingerprint object and a stored version."""

from __future__ import annotations

import numpy as np
import pytest

import embfmt


@pytest.fixture
def stored(tmp_path):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3000, 8)).astype(np.float32)
    x[0] = [3, 4, 0, 0, 0, 0, 0, 0]
    x[1] = [1, 1, 1, 1, 1, 1, 1, 1]
    repo = embfmt.Repo.init(tmp_path)
    repo.commit({"t": x}, message="recorded")
    return repo, x


def test_atol_boundary(stored) -> None:  # type: ignore[no-untyped-def]
    repo, x = stored
    view = repo.open("t")
    y = x.copy()
    y[0, 1] = np.float32(4.25)  # |diff| = 0.25 exactly
    assert embfmt.verify(y, view, atol=0.25).passed
    r = embfmt.verify(y, view, atol=float(np.nextafter(0.25, 0)))
    assert not r.passed and [f["row"] for f in r.rows_failed] == [0]
    # data one float above the tolerance fails
    y2 = x.copy()
    y2[0, 1] = np.nextafter(np.float32(4.25), np.float32(5))
    assert not embfmt.verify(y2, view, atol=0.25).passed
    # NaN never passes a tolerance
    y3 = x.copy()
    y3[5, 0] = np.nan
    r3 = embfmt.verify(y3, view, atol=1e30)
    assert not r3.passed and r3.rows_failed[0]["max_abs"] == "nan"


def test_ulp_boundary(stored) -> None:  # type: ignore[no-untyped-def]
    repo, x = stored
    view = repo.open("t")
    y = x.copy()
    y.view(np.uint32)[1, 3] += 5  # 5 ULPs above 1.0
    assert embfmt.verify(y, view, ulp=5).passed
    r = embfmt.verify(y, view, ulp=4)
    assert not r.passed and r.rows_failed[0]["ulp"] == 5 and r.n_failed == 1
    y.view(np.uint32)[1, 3] += 1  # 6 ULPs: N+1 fails N
    assert not embfmt.verify(y, view, ulp=5).passed
    assert embfmt.verify(y, view, ulp=6).passed
    assert embfmt.verify(y, view, ulp=6).to_dict()["tolerance"] == {"ulp": 6}


def test_min_cosine_boundary(stored) -> None:  # type: ignore[no-untyped-def]
    repo, x = stored
    view = repo.open("t")
    y = x.copy()
    y[0] = [4, 3, 0, 0, 0, 0, 0, 0]  # cosine(3,4 ; 4,3) = 24/25 = 0.96
    d = embfmt.diff(view, y)
    c = float(d.stats["cosine"][0])
    assert c == pytest.approx(0.96, abs=1e-15)
    assert embfmt.verify(y, view, min_cosine=c).passed
    r = embfmt.verify(y, view, min_cosine=float(np.nextafter(c, 2)))
    assert not r.passed and r.rows_failed[0]["cosine"] == c


def test_rtol_boundary(stored) -> None:  # type: ignore[no-untyped-def]
    repo, x = stored
    view = repo.open("t")
    y = x.copy()
    y[0, 1] = np.float32(4.625)  # ||b - a|| = 0.625 = 0.125 * ||(3, 4)||
    assert embfmt.verify(y, view, rtol=0.125).passed
    assert not embfmt.verify(y, view, rtol=float(np.nextafter(0.125, 0))).passed


def test_exact_and_bad_tolerances(stored) -> None:  # type: ignore[no-untyped-def]
    repo, x = stored
    view = repo.open("t")
    assert embfmt.verify(x, view).passed
    y = x.copy()
    y[7, 7] = -y[7, 7]
    r = embfmt.verify(y, view)
    assert not r.passed and r.mode == "exact" and [f["row"] for f in r.rows_failed] == [7]
    for bad in (dict(atol=-1), dict(ulp=-1), dict(ulp=1.5), dict(min_cosine=2), dict(rtol=float("nan")),
                dict(atol=1, ulp=2)):
        with pytest.raises(embfmt.InputError):
            embfmt.verify(x, view, **bad)


def test_against_fingerprint_text() -> None:
    x = np.random.default_rng(1).standard_normal((100, 4)).astype(np.float32)
    fp = embfmt.fingerprint(x).root
    r = embfmt.verify(x, fp)
    assert r.passed and r.equal and r.expected == fp == r.actual and r.rows_differ is None
    y = x.copy()
    y[3, 0] += 1
    r2 = embfmt.verify(y, fp)
    assert not r2.passed and not r2.equal and r2.actual != fp
    assert r2.to_dict()["reference"] == {"type": "fingerprint"}
    assert r2.to_dict()["environment"]["recorded"] is None
    with pytest.raises(embfmt.InputError):
        embfmt.verify(x, fp, atol=1.0)  # a tolerance needs the values
    with pytest.raises(embfmt.FormatError):
        embfmt.verify(x, "emb1:b3:1234")


def test_against_fingerprint_object_chunks_and_rows() -> None:
    from embfmt.canonical.fingerprint import chunk_rows_for

    cr = chunk_rows_for("float32", 64)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3 * cr + 10, 64)).astype(np.float32)
    fp = embfmt.fingerprint(x)
    y = x.copy()
    rows = [1, cr - 1, 2 * cr + 5, 3 * cr + 9]
    y[rows, 0] += 1
    r = embfmt.verify(y, fp)
    assert not r.passed
    assert r.chunks_differ == [0, 2, 3]
    assert r.rows_differ == rows
    # fewer rows: the missing ones are listed, their chunk too
    r2 = embfmt.verify(x[:2 * cr + 3], fp)
    assert r2.chunks_differ == [2, 3] and r2.rows_differ == list(range(2 * cr + 3, 3 * cr + 10))
    assert embfmt.verify(x, fp).passed and embfmt.verify(x, fp).chunks_differ is None


def test_against_stored_lists_failures_and_environment(stored) -> None:  # type: ignore[no-untyped-def]
    repo, x = stored
    view = repo.open("t", "HEAD")
    y = x.copy()
    y[[10, 20, 30], 0] += np.float32([0.001, 0.5, 2.0])
    r = embfmt.verify(y, view, atol=0.01)
    assert not r.passed and r.n_failed == 2
    failed = {f["row"]: f for f in r.rows_failed}
    assert sorted(failed) == [20, 30] and r.rows_differ == [10, 20, 30]
    assert failed[30]["max_abs"] == pytest.approx(2.0, rel=1e-6)
    assert set(failed[20]) == {"row", "l2", "cosine", "max_abs", "ulp"}
    d = r.to_dict()
    assert set(d["environment"]) == {"current", "recorded"}
    assert d["environment"]["recorded"] == repo.get_commit(repo.resolve("HEAD")).environment
    assert d["environment"]["current"]["embfmt"] == embfmt.__version__
    assert d["reference"] == {"type": "stored", "rev": "HEAD", "commit": repo.resolve("HEAD"), "table": "t"}
    assert d["fingerprint"]["expected"] == view.fingerprint
    assert d["fingerprint"]["actual"] == embfmt.fingerprint(y).root
    # rows on one side only always fail, whatever the tolerance
    r2 = embfmt.verify(x[:-2], view, atol=1e9)
    assert not r2.passed and r2.n_failed == 2 and r2.reason == "expected 3000 rows, got 2998"
    # rows out of tolerance AND rows on one side only: both counted, the reason names the row
    # counts (the metrics loop once rebound the matrix's name: AttributeError on 'str')
    r4 = embfmt.verify(np.concatenate([y, x[:5]]), view, atol=0.01)
    assert not r4.passed and r4.n_failed == 2 + 5 and r4.reason == "expected 3000 rows, got 3005"
    assert sorted(f["row"] for f in r4.rows_failed) == [20, 30]
    # another dtype / D: a difference, not an error
    r3 = embfmt.verify(x.astype(np.float64), view)
    assert not r3.passed and "float32" in (r3.reason or "") and not r3.equal
