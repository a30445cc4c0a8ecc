"""A failing storage device (issue 20: no untyped errors): an I/O error while a commit writes
is one typed StorageError (``storage-unavailable``) naming the file, nothing stored changes, and
a device that accepts no bytes ends the write instead of spinning on it. The device is made to
fail by replacing the write calls embfmt's file layer makes (EIO cannot be produced on a
healthy disk without root)."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest

import embfmt
from embfmt import _fs
from embfmt.errors import ErrorKind, StorageError


def _repo(tmp_path):
    repo = embfmt.Repo.init(str(tmp_path / "r"))
    first = repo.commit({"t": np.arange(64, dtype=np.float32).reshape(8, 8)}, message="v1")
    return repo, first


def _assert_unchanged(path, first):
    again = embfmt.Repo(path)
    assert again.resolve("HEAD") == first
    assert again.verify().ok
    np.testing.assert_array_equal(again.read("t"), np.arange(64, dtype=np.float32).reshape(8, 8))


def test_eio_on_write_is_a_typed_storage_error(tmp_path, monkeypatch):
    repo, first = _repo(tmp_path)

    def failing(fd, views):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(_fs.os, "writev", failing)
    with pytest.raises(StorageError) as ei:
        repo.commit({"t": np.ones((8, 8), np.float32)}, message="v2")
    assert ei.value.kind == ErrorKind.STORAGE_UNAVAILABLE
    assert "Input/output error" in str(ei.value) and str(tmp_path) in str(ei.value)
    assert "\n" not in str(ei.value)
    monkeypatch.undo()
    _assert_unchanged(repo.path, first)


def test_a_device_that_accepts_nothing_ends_the_write(tmp_path, monkeypatch):
    repo, first = _repo(tmp_path)
    calls = {"write": 0}

    def short_writev(fd, views):
        return 0  # accepted nothing

    def no_write(fd, data):
        calls["write"] += 1
        if calls["write"] > 1000:  # the old loop retried a zero-byte write forever
            raise AssertionError("the writer spins on a device that accepts nothing")
        return 0

    monkeypatch.setattr(_fs.os, "writev", short_writev)
    monkeypatch.setattr(_fs.os, "write", no_write)
    with pytest.raises(StorageError) as ei:
        repo.commit({"t": np.ones((8, 8), np.float32)}, message="v2")
    assert ei.value.kind == ErrorKind.STORAGE_UNAVAILABLE
    monkeypatch.undo()
    _assert_unchanged(repo.path, first)


def test_pwrite_error_is_typed(tmp_path, monkeypatch):
    path = str(tmp_path / "f")
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        monkeypatch.setattr(_fs.os, "pwrite", lambda fd, data, off: 0)
        with pytest.raises(StorageError) as ei:
            _fs.pwrite(fd, b"abc", 0, path)
        assert ei.value.kind == ErrorKind.STORAGE_UNAVAILABLE and path in str(ei.value)
    finally:
        os.close(fd)


def test_expected_errors_still_reach_their_callers(tmp_path):
    # An exclusive create of an existing file is how a writer learns an object exists: it
    # must stay a FileExistsError, not become a storage failure.
    path = str(tmp_path / "x")
    os.close(_fs.create(path))
    with pytest.raises(FileExistsError):
        _fs.create(path)
