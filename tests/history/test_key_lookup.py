"""A str key is one key (issue 13, defect 5): ``index_of("hello")`` is the row of "hello",
never the rows of "h", "e", "l", "l", "o"; sequences and arrays of keys still work."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import embfmt
from embfmt import ErrorKind, InputError, NotFoundError


@pytest.fixture
def tables(tmp_path: Path) -> tuple[embfmt.TableView, embfmt.TableView, np.ndarray]:
    repo = embfmt.Repo.init(tmp_path / "r")
    x = np.arange(24, dtype=np.float32).reshape(6, 4)
    # one-character keys: splitting "hello" into characters would find rows
    repo.commit({"s": x, "i": x}, keys={"s": ["h", "e", "l", "o", "hello", "world"],
                                        "i": np.array([10, 20, 30, 40, 50, 60])})
    return repo.open("s"), repo.open("i"), x


def test_str_key_is_one_key(tables) -> None:  # type: ignore[no-untyped-def]
    s, _, x = tables
    assert s.index_of("hello") == 4
    assert np.ndim(s.index_of("hello")) == 0
    assert np.array_equal(s.lookup("hello"), x[4])
    assert np.array_equal(s.get("hello"), x[4])
    with pytest.raises(NotFoundError):
        s.index_of("hel")


def test_sequences_of_keys_still_work(tables) -> None:  # type: ignore[no-untyped-def]
    s, i, x = tables
    assert s.index_of(["hello", "h"]).tolist() == [4, 0]
    assert s.index_of(("world",)).tolist() == [5]
    assert s.index_of(np.array(["o", "e"])).tolist() == [3, 1]
    assert np.array_equal(s.lookup(["world", "hello"]), x[[5, 4]])
    assert s.index_of([]).tolist() == []
    assert i.index_of([60, 10]).tolist() == [5, 0]
    assert i.index_of(np.array([30])).tolist() == [2]


def test_scalar_int_key(tables) -> None:  # type: ignore[no-untyped-def]
    _, i, x = tables
    assert i.index_of(20) == 1 and i.index_of(np.int64(60)) == 5
    assert np.array_equal(i.lookup(30), x[2])


def test_key_of_the_wrong_type_is_not_found(tables) -> None:  # type: ignore[no-untyped-def]
    s, i, _ = tables
    with pytest.raises(NotFoundError):
        i.index_of("hello")
    with pytest.raises(NotFoundError):
        i.index_of(["10"])
    with pytest.raises(NotFoundError):
        s.index_of(10)
    with pytest.raises(NotFoundError):
        s.index_of(b"hello")


def test_diff_keys_refuse_a_bare_string() -> None:
    x = np.zeros((5, 2), np.float32)
    with pytest.raises(InputError) as e:
        embfmt.diff(x, x, keys_a="hello", keys_b="hello")
    assert e.value.kind == ErrorKind.BAD_KEYS


def test_blame_follows_the_one_key(tmp_path: Path) -> None:
    repo = embfmt.Repo.init(tmp_path / "b")
    x = np.zeros((5, 2), np.float32)
    repo.commit({"t": x}, keys={"t": ["h", "e", "l", "o", "hello"]}, message="one")
    y = x.copy()
    y[0] = 1  # the row of "h" changes, not the row of "hello"
    repo.commit({"t": y}, keys={"t": "carry"}, message="two")
    assert [(e.kind, e.row, e.message) for e in repo.blame("t", key="hello")] == [("added", 4, "one")]
    assert [e.kind for e in repo.blame("t", key="h")] == ["changed", "added"]
