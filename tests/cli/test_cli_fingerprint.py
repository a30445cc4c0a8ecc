"""`embfmt fingerprint` on real .npy, HDF5 and .safetensors files, in real processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import embfmt


def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("embfmt")
    cmd = [exe, *args] if exe else [sys.executable, "-m", "embfmt", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


@pytest.fixture(scope="module")
def table() -> np.ndarray:
    x = np.random.default_rng(11).standard_normal((3000, 48)).astype(np.float32)
    x.view(np.uint32)[0, :3] = [0x80000000, 0x7FC00042, 0x7F800001]  # -0.0, NaN payloads
    return x


def test_npy_matches_api_and_json_fields(tmp_path: Path, table: np.ndarray) -> None:
    np.save(tmp_path / "t.npy", table)
    r = run("fingerprint", str(tmp_path / "t.npy"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == embfmt.fingerprint(table).root
    r = run("fingerprint", str(tmp_path / "t.npy"), "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["fingerprint"] == embfmt.fingerprint(table).root
    assert (d["rows"], d["dim"], d["dtype"]) == (3000, 48, "float32")
    assert d["chunk_rows"] == 4096 and d["chunks"] == 1 and d["backend"] == "cpu"
    assert d["seconds"] >= 0 and d["gb_per_s"] is None or d["gb_per_s"] >= 0


def test_fortran_and_big_endian_npy(tmp_path: Path, table: np.ndarray) -> None:
    np.save(tmp_path / "f.npy", np.asfortranarray(table.astype(">f4")))
    r = run("fingerprint", str(tmp_path / "f.npy"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == embfmt.fingerprint(table).root


def test_hdf5_dataset_path(tmp_path: Path, table: np.ndarray) -> None:
    import h5py

    p = tmp_path / "t.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("model/item_emb", data=table, chunks=(256, 48), compression="gzip")
        f.create_dataset("model/user_emb", data=table[:10])
    r = run("fingerprint", str(p), "--dataset", "model/item_emb")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == embfmt.fingerprint(table).root
    r = run("fingerprint", str(p))  # two 2-D datasets: must name one
    assert r.returncode == 2 and "model/item_emb" in r.stderr
    r = run("fingerprint", str(p), "--dataset", "model/nope")
    assert r.returncode == 2 and "not-found" in r.stderr


def test_safetensors_tensor_name(tmp_path: Path, table: np.ndarray) -> None:
    st = pytest.importorskip("safetensors.numpy")
    p = tmp_path / "m.safetensors"
    st.save_file({"emb.weight": table, "bias": np.zeros(48, np.float32)}, str(p))
    r = run("fingerprint", str(p), "--dataset", "emb.weight", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["fingerprint"] == embfmt.fingerprint(table).root
    r = run("fingerprint", str(p))  # exactly one 2-D tensor: chosen automatically
    assert r.returncode == 0 and r.stdout.strip() == embfmt.fingerprint(table).root
    r = run("fingerprint", str(p), "--dataset", "bias")
    assert r.returncode == 2 and "not-a-matrix" in r.stderr


def test_safetensors_bfloat16(tmp_path: Path) -> None:
    st = pytest.importorskip("safetensors.numpy")
    import ml_dtypes

    x = np.random.default_rng(3).standard_normal((100, 8)).astype(ml_dtypes.bfloat16)
    p = tmp_path / "b.safetensors"
    st.save_file({"w": x}, str(p))
    r = run("fingerprint", str(p))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == embfmt.fingerprint(x).root


@pytest.mark.parametrize("name, content, kind", [
    ("missing.npy", None, "not-found"),
    ("vec.npy", "1d", "not-a-matrix"),
    ("corrupt.npy", b"\x93NUMPY\x01\x00\xff\xffgarbage", "bad-file"),
    ("junk.bin", b"hello world, not a matrix", "bad-file"),
    ("bad.safetensors", b"\xff" * 8 + b"{}", "bad-header"),
    ("notjson.safetensors", b"\x04\x00\x00\x00\x00\x00\x00\x00{{{{", "bad-header"),
    ("complex.npy", "complex", "unsupported-dtype"),
    ("bad.h5", b"\x89HDF\r\n\x1a\nbroken", "bad-file"),
])
def test_errors_exit_2_with_one_line(tmp_path: Path, name: str, content: object, kind: str) -> None:
    p = tmp_path / name
    if content == "1d":
        np.save(p, np.zeros(5, np.float32))
    elif content == "complex":
        np.save(p, np.zeros((2, 2), np.complex64))
    elif isinstance(content, bytes):
        p.write_bytes(content)
    r = run("fingerprint", str(p))
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr
    assert f"[{kind}]" in lines[0] and name in lines[0]


def test_usage_error_exit_2() -> None:
    r = run("fingerprint")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    r = run("no-such-command")
    assert r.returncode == 2


def test_second_run_does_not_recompile(tmp_path: Path, table: np.ndarray) -> None:
    """The Numba kernels come from the on-disk cache after the first run: a second process
    writes no new cache entries (checked on the cache files, not by timing)."""
    np.save(tmp_path / "s.npy", table[:10])
    env = dict(os.environ)
    env["NUMBA_DEBUG_CACHE"] = "1"
    first = run("fingerprint", str(tmp_path / "s.npy"), env=env)
    assert first.returncode == 0, first.stderr
    second = run("fingerprint", str(tmp_path / "s.npy"), env=env)
    assert second.returncode == 0, second.stderr
    assert "[cache] data loaded" in second.stdout + second.stderr
    assert "[cache] data saved" not in second.stdout + second.stderr
    assert second.stdout.strip().splitlines()[-1] == embfmt.fingerprint(table[:10]).root
