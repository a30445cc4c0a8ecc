"""Hostile or damaged files give typed errors naming the file, never tracebacks or huge allocations."""

from __future__ import annotations

import json
import struct
import subprocess
import sys

import h5py
import numpy as np
import pytest

from embfmt.errors import EmbfmtError, ErrorKind, FormatError
from embfmt.formats import read


def _read_all(path: str) -> None:
    with read(path) as src:
        for _ in src.matrix.blocks():
            pass


@pytest.mark.parametrize("name, data", [
    ("huge.bin", b"0 100000000000000000000\n"),
    ("huge.vec", b"0 100000000000000000000\n"),
    ("rows.vec", b"99999999999999999999 3\n"),
])
def test_word2vec_header_beyond_limits(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data)
    with pytest.raises(FormatError) as ei:
        _read_all(str(p))
    assert ei.value.kind is ErrorKind.BAD_HEADER and str(p) in ei.value.message


def _safetensors(header: bytes, payload: bytes = b"") -> bytes:
    return struct.pack("<Q", len(header)) + header + payload


def test_safetensors_deeply_nested_header(tmp_path):
    p = tmp_path / "deep.safetensors"
    p.write_bytes(_safetensors(b"[" * 100_000))
    with pytest.raises(FormatError) as ei:
        _read_all(str(p))
    assert ei.value.kind is ErrorKind.BAD_HEADER


def test_safetensors_empty_tensor_with_huge_dim(tmp_path):
    p = tmp_path / "zero.safetensors"
    hdr = {"t": {"dtype": "F32", "shape": [0, 10**20], "data_offsets": [0, 0]}}
    p.write_bytes(_safetensors(json.dumps(hdr).encode()))
    with pytest.raises(FormatError) as ei:
        _read_all(str(p))
    assert ei.value.kind is ErrorKind.BAD_HEADER


@pytest.mark.parametrize("ext", [".parquet", ".arrow"])
def test_null_vector_in_first_row(tmp_path, ext):
    pa = pytest.importorskip("pyarrow")
    tbl = pa.table({"vec": pa.array([None, [1.0, 2.0]], type=pa.list_(pa.float32()))})
    p = tmp_path / f"nulls{ext}"
    if ext == ".parquet":
        import pyarrow.parquet as pq

        pq.write_table(tbl, p)
    else:
        with pa.OSFile(str(p), "wb") as sink, pa.ipc.new_file(sink, tbl.schema) as w:
            w.write_table(tbl)
    with pytest.raises(EmbfmtError) as ei:
        _read_all(str(p))
    assert "null" in ei.value.message and str(p) in ei.value.message


def test_hdf5_corrupt_chunk_is_a_typed_error(tmp_path):
    p = tmp_path / "x.h5"
    x = np.random.default_rng(0).standard_normal((4096, 64)).astype(np.float32)
    with h5py.File(p, "w") as f:
        f.create_dataset("emb", data=x, chunks=(1024, 64), compression="gzip")
    raw = bytearray(p.read_bytes())
    mid = len(raw) // 2
    raw[mid:mid + 4096] = bytes(4096)  # zero a stretch of compressed chunk data
    p.write_bytes(bytes(raw))
    proc = subprocess.run([sys.executable, "-m", "embfmt", "fingerprint", f"{p}:emb"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and str(p) in proc.stderr


def test_spec_section_22_worked_example(tmp_path):
    """The word2vec text in spec §22.2 is exactly what embfmt writes, and reads back bit-exactly."""
    import os
    import re

    from embfmt.formats import write

    with open(os.path.join(os.path.dirname(__file__), "..", "..", "spec", "embfmt-v1.md")) as f:
        spec = f.read()
    part = spec[spec.index("## 22. Interchange"):]
    block = re.search(r"Worked example: the table.*?```\n(.*?)```", part, re.S)
    assert block is not None
    x = np.array([[1.5, -0.0], [np.inf, 0.1]], np.float32)
    p = tmp_path / "x.vec"
    write(str(p), x, keys=["a", "b"])
    assert p.read_text() == block.group(1)
    with read(str(p)) as src:
        assert src.matrix.rows(0, 2).tobytes() == x.tobytes() and list(src.keys) == ["a", "b"]
