"""`embfmt checkout ... -o -` streams to standard output; an output whose format cannot be
told from its extension is refused instead of silently written as .npy."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from embfmt import formats

from ..cli.test_cli_repo import fails, ok, run, run_all
from ._util import make, read_all, same_bits


def _run_bytes(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    exe = shutil.which("embfmt")
    cmd = [exe, *args] if exe else [sys.executable, "-m", "embfmt", *args]
    return subprocess.run(cmd, capture_output=True, cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("so")
    x = make("float32", 300, 7, seed=2, payload_nans=False)
    keys = [f"w{i}" for i in range(300)]
    formats.write(d / "x.parquet", x, keys=keys)
    formats.write(d / "b.safetensors", make("bfloat16", 20, 3, seed=4))
    r = d / "repo"
    ok(run("init", str(r)))
    ok(run("-C", str(r), "commit", f"emb={d / 'x.parquet'}", f"bf={d / 'b.safetensors'}", "-m", "v1"))
    return {"repo": r, "emb": x, "keys": keys}


STREAMED = {"npy": ".npy", "word2vec": ".vec", "glove": ".txt", "word2vec-bin": ".bin",
            "safetensors": ".safetensors"}


def test_dash_streams_to_stdout_same_bytes_as_a_file(repo: dict[str, Any], tmp_path: Path) -> None:
    C = ("-C", str(repo["repo"]))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    streamed = {f: _run_bytes(*C, "checkout", "HEAD", "emb", "-o", "-", "--format", f, cwd=cwd)
                for f in STREAMED}
    default = _run_bytes(*C, "checkout", "HEAD", "emb", "-o", "-", cwd=cwd)
    files = run_all({f: (*C, "checkout", "HEAD", "emb", "-o", str(tmp_path / f"o{e}"), "--format", f)
                     for f, e in STREAMED.items()})
    assert os.listdir(cwd) == []  # no file named "-"
    for f, e in STREAMED.items():
        r = streamed[f]
        assert r.returncode == 0 and r.stderr == b"", (f, r.stderr)
        ok(files[f])
        assert r.stdout == (tmp_path / f"o{e}").read_bytes(), f
    # With no --format, "-" is .npy: readable by np.load from the pipe.
    assert default.returncode == 0 and default.stdout == streamed["npy"].stdout
    assert same_bits(np.load(io.BytesIO(default.stdout)), repo["emb"])
    with formats.read(tmp_path / "o.vec") as src:
        assert same_bits(read_all(src.matrix), repo["emb"]) and src.keys == repo["keys"]


def test_dash_refuses_unstreamable_formats_and_json(repo: dict[str, Any], tmp_path: Path) -> None:
    C = ("-C", str(repo["repo"]))
    cmds: dict[str, Any] = {f: ((*C, "checkout", "HEAD", "emb", "-o", "-", "--format", f), tmp_path)
                            for f in ("hdf5", "parquet", "arrow")}
    cmds["json"] = ((*C, "checkout", "HEAD", "emb", "-o", "-", "--json"), tmp_path)
    cmds["bf16_npy"] = ((*C, "checkout", "HEAD", "bf", "-o", "-"), tmp_path)
    res = run_all(cmds)
    for f in ("hdf5", "parquet", "arrow"):
        fails(res[f], "bad-argument", f, "standard output", "npy")
    fails(res["json"], "bad-argument", "--json", "standard output")
    fails(res["bf16_npy"], "unsupported-dtype", "bfloat16")
    assert os.listdir(tmp_path) == []


def test_unknown_or_missing_extension_is_refused(repo: dict[str, Any], tmp_path: Path) -> None:
    C = ("-C", str(repo["repo"]))
    res = run_all({
        "unknown": (*C, "checkout", "HEAD", "emb", "-o", str(tmp_path / "emb.foo")),
        "none": (*C, "checkout", "HEAD", "emb", "-o", str(tmp_path / "emb")),
        "given": (*C, "checkout", "HEAD", "emb", "-o", str(tmp_path / "emb.foo"), "--format", "npy"),
    })
    fails(res["unknown"], "bad-argument", "emb.foo", "'.foo'", ".npy", ".safetensors", ".vec", "--format")
    fails(res["none"], "bad-argument", str(tmp_path / "emb"), "--format")
    ok(res["given"])
    assert sorted(os.listdir(tmp_path)) == ["emb.foo"]
    assert same_bits(np.load(tmp_path / "emb.foo"), repo["emb"])


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_binary_is_not_written_to_a_terminal(repo: dict[str, Any], tmp_path: Path) -> None:
    master, slave = os.openpty()
    try:
        exe = shutil.which("embfmt") or "embfmt"
        r = subprocess.run([exe, "-C", str(repo["repo"]), "checkout", "HEAD", "emb", "-o", "-"],
                           stdout=slave, stderr=subprocess.PIPE, text=True, timeout=300)
    finally:
        os.close(slave)
        os.close(master)
    assert r.returncode == 2
    assert r.stderr.startswith("embfmt: error [bad-argument]: ") and "terminal" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
