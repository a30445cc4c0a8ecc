"""Hostile or damaged files give typed errors naming the file, never tracebacks or huge allocations."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from embfmt.errors import EmbfmtError, ErrorKind, FormatError
from embfmt.formats import read


def _read_all(path: str, **opts) -> None:
    with read(path, **opts) as src:
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


def _write_table(tbl, path) -> None:
    """Write a pyarrow table as Parquet or as an Arrow IPC file, by ``path``'s suffix."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if str(path).endswith(".parquet"):
        pq.write_table(tbl, path)
    else:
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, tbl.schema) as w:
            w.write_table(tbl)


@pytest.mark.parametrize("ext", [".parquet", ".arrow"])
def test_null_vector_in_first_row(tmp_path, ext):
    pa = pytest.importorskip("pyarrow")
    tbl = pa.table({"vec": pa.array([None, [1.0, 2.0]], type=pa.list_(pa.float32()))})
    p = tmp_path / f"nulls{ext}"
    _write_table(tbl, p)
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


# --- review findings: damaged files of every format give typed errors ---------------------------
def _npy(path, header: str, data: bytes = b"\0" * 16) -> None:
    h = header.encode()
    h += b" " * ((-(10 + len(h) + 1)) % 64) + b"\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h + data)


@pytest.mark.parametrize("header", [
    "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2",            # tokenize.TokenError
    "{'descr': ('<f4',), 'fortran_order': False, 'shape': (2, 2), }",     # IndexError
    "{'descr': '<f4', 'fortran_order': False, 'shape': (True, 2), }",     # TypeError
], ids=["unclosed", "descr-tuple", "shape-bool"])
def test_npy_header_that_numpy_cannot_parse(tmp_path, header):
    p = tmp_path / "x.npy"
    _npy(p, header)
    with pytest.raises(FormatError) as ei:
        _read_all(str(p))
    assert ei.value.kind is ErrorKind.BAD_FILE and str(p) in ei.value.message


@pytest.mark.parametrize("shape", ["[Infinity, 2]", "[1e400, 2]", "[1.9, 2]", '["12"]', "[true, 2]"])
def test_safetensors_shape_must_be_json_integers(tmp_path, shape):
    header = ('{"e": {"dtype": "F32", "shape": %s, "data_offsets": [0, 16]}}' % shape).encode()
    p = tmp_path / "x.safetensors"
    p.write_bytes(_safetensors(header, bytes(16)))
    with pytest.raises(FormatError) as ei:
        _read_all(str(p))
    assert ei.value.kind is ErrorKind.BAD_HEADER


def _h5_soft_loop(f):
    f["a"] = h5py.SoftLink("/b")
    f["b"] = h5py.SoftLink("/a")
    return "a"


def _h5_marker_array(f):
    f.create_dataset("e", data=np.zeros((2, 2), np.uint16)).attrs["embfmt.dtype"] = np.array([b"bfloat16", b"x"])
    return "e"


def _h5_null_dataspace(f):
    f.create_dataset("e", shape=None, dtype="f4")
    return "e"


@pytest.mark.parametrize("make", [_h5_soft_loop, _h5_marker_array, _h5_null_dataspace],
                         ids=["soft-link-loop", "marker-array", "null-dataspace"])
def test_hdf5_damage_beyond_oserror(tmp_path, make):
    p = tmp_path / "x.h5"
    with h5py.File(p, "w") as f:
        name = make(f)
    for dataset in (name, None):
        try:
            with read(str(p), dataset) as src:
                for _ in src.matrix.blocks():
                    pass
        except EmbfmtError as e:
            assert str(p) in e.message
        else:
            pytest.fail(f"{make.__name__} read without an error (dataset={dataset!r})")
    proc = subprocess.run([sys.executable, "-m", "embfmt", "fingerprint", f"{p}:{name}"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and str(p) in proc.stderr


@pytest.mark.parametrize("ext", ["parquet", "arrow"])
def test_columns_named_twice(tmp_path, ext):
    pa = pytest.importorskip("pyarrow")
    vec = pa.FixedSizeListArray.from_arrays(pa.array(np.arange(8, dtype=np.float32)), 2)
    t = pa.table([vec, pa.FixedSizeListArray.from_arrays(pa.array(np.arange(8, dtype=np.float32) + 100), 2)],
                 names=["embedding", "embedding"])
    p = tmp_path / f"dup.{ext}"
    _write_table(t, p)
    for opts in ({}, {"vector_column": "embedding"}):
        with pytest.raises(FormatError, match="named more than once: 'embedding'"):
            _read_all(str(p), **opts)


def test_parquet_footer_that_undercounts_its_rows(tmp_path):
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    from embfmt import formats

    x = np.arange(48, dtype=np.float32).reshape(12, 4)
    p = tmp_path / "rows.parquet"
    formats.write(str(p), x)
    b = p.read_bytes()
    flen = struct.unpack("<I", b[-8:-4])[0]
    # The file metadata's num_rows (field 3, i64: thrift compact header 0x16, then the zigzag
    # varint 24 = 12 rows) comes before the row groups' own counts: set it to 8 rows (16).
    i = b.index(b"\x16\x18", len(b) - 8 - flen)
    q = tmp_path / "under.parquet"
    q.write_bytes(b[:i + 1] + b"\x10" + b[i + 2:])
    assert pq.ParquetFile(q).metadata.num_rows == 8
    with pytest.raises(FormatError, match="footer says 8 rows, its row groups hold 12"):
        _read_all(str(q))


def test_word2vec_text_value_beyond_float64(tmp_path):
    p = tmp_path / "x.vec"
    p.write_bytes(b"2 2\na 1 1e400\nb inf -Infinity\n")
    with pytest.raises(EmbfmtError, match="value 1e400 does not fit"):
        _read_all(str(p))
    q = tmp_path / "y.vec"
    q.write_bytes(b"1 2\nb inf -Infinity\n")  # spelled infinities are values
    with read(str(q)) as src:
        assert np.isinf(np.concatenate(list(src.matrix.blocks())).view(np.float32)).all()


def test_fuzzed_files_never_escape_or_crash(tmp_path):
    """Seeded byte flips, truncations and insertions of a valid file of every format, read in a
    child process (a crash inside a C library would otherwise take pytest down): every read
    ends in success or a typed error. The Arrow cases include damaged offsets that crashed the
    process before record batches were validated."""
    worker = Path(__file__).with_name("_fuzz_worker.py")
    proc = subprocess.run([sys.executable, str(worker), str(tmp_path), "60"], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    escaped = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
    assert escaped == []
    assert "cases 480" in proc.stdout  # 8 formats x 60 cases ran
