"""embfmt.formats from the API: bit-exact round trips, keys, typed errors, bounded reading."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import embfmt
from embfmt import formats
from embfmt.errors import ErrorKind, FormatError, InputError

from ._util import DTYPES, FORMATS, make, npdtype, read_all, same_bits

COMBOS = [(f, dt) for f in FORMATS for dt in DTYPES]


def _leftovers(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("fmt,dtype", COMBOS, ids=[f"{f}-{d}" for f, d in COMBOS])
def test_round_trip_bit_exact_or_clear_error(tmp_path: Path, fmt: str, dtype: str) -> None:
    ext, held, _, text = FORMATS[fmt]
    x = make(dtype, payload_nans=not text)
    p = tmp_path / f"x{ext}"
    if dtype not in held:
        with pytest.raises(InputError) as ei:
            formats.write(p, x, fmt=fmt)
        assert ei.value.kind == ErrorKind.UNSUPPORTED_DTYPE
        assert str(p) in ei.value.message and dtype in ei.value.message and "instead" in ei.value.message
        assert not p.exists() and _leftovers(tmp_path) == []
        return
    assert formats.write(p, x, fmt=fmt) == fmt
    assert _leftovers(tmp_path) == []
    with formats.read(p, fmt=fmt, dtype=dtype) as src:
        assert src.matrix.dtype.name == dtype
        assert same_bits(read_all(src.matrix), x)
        assert embfmt.fingerprint(src.matrix).root == embfmt.fingerprint(x).root


@pytest.mark.parametrize("fmt", ["npy", "hdf5", "safetensors", "parquet", "arrow", "word2vec"])
def test_empty_table_round_trips(tmp_path: Path, fmt: str) -> None:
    ext = FORMATS[fmt][0]
    x = np.empty((0, 5), np.float32)
    formats.write(tmp_path / f"e{ext}", x)
    with formats.read(tmp_path / f"e{ext}") as src:
        assert src.matrix.shape == (0, 5)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_text_every_16_bit_pattern(tmp_path: Path, dtype: str) -> None:
    """All 65536 patterns but the non-canonical NaNs survive text bit-exactly."""
    dt = npdtype(dtype)
    allbits = np.arange(1 << 16, dtype=np.uint16)
    x = allbits.view(dt)
    canon = np.array([np.nan], dtype=np.float64).astype(dt).view(np.uint16)[0]
    with np.errstate(invalid="ignore"):
        keep = ~np.isnan(x.astype(np.float64)) | (allbits == canon)
    x = x[keep].reshape(-1, 1)
    p = tmp_path / "all.vec"
    formats.write(p, x)
    with formats.read(p, dtype=dtype) as src:
        assert same_bits(read_all(src.matrix), x)
    # shortest: no value needs more digits than the format's round-trip precision
    longest = max(len(t) for line in p.read_text().splitlines()[1:] for t in line.split()[1:])
    assert longest <= 12


def test_text_float32_and_float64_random_bits(tmp_path: Path) -> None:
    hyp = pytest.importorskip("hypothesis")
    st = pytest.importorskip("hypothesis.strategies")

    @hyp.settings(max_examples=40, deadline=None)
    @hyp.given(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=64),
               st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=64))
    def check(b32: list[int], b64: list[int]) -> None:
        for raw, dt, name in ((b32, np.uint32, "float32"), (b64, np.uint64, "float64")):
            x = np.array(raw, dtype=dt).view(name)
            x = np.where(np.isnan(x), np.array(np.nan, name), x).reshape(-1, 1)
            p = tmp_path / f"{name}.vec"
            formats.write(p, x)
            with formats.read(p, dtype=name) as src:
                assert same_bits(read_all(src.matrix), x)
            p.unlink()

    check()


def test_text_shortest_repr(tmp_path: Path) -> None:
    x = np.array([[0.1, -0.0, np.inf, -np.inf, 1e-30, 3.0]], dtype=np.float32)
    formats.write(tmp_path / "s.vec", x, keys=["w"])
    assert (tmp_path / "s.vec").read_text().splitlines() == ["1 6", "w 0.1 -0 inf -inf 1e-30 3"]


@pytest.mark.parametrize("ext", [".vec", ".txt"])
def test_text_nan_payload_refused_before_output_appears(tmp_path: Path, ext: str) -> None:
    x = np.zeros((10, 3), np.float32)
    x.view(np.uint32)[7, 2] = 0x7FC00001
    p = tmp_path / f"n{ext}"
    with pytest.raises(InputError) as ei:
        formats.write(p, x)
    assert "row 7" in ei.value.message and str(p) in ei.value.message
    assert not p.exists() and _leftovers(tmp_path) == []


@pytest.mark.parametrize("fmt", ["parquet", "arrow", "word2vec", "glove", "word2vec-bin"])
def test_string_keys_round_trip(tmp_path: Path, fmt: str) -> None:
    ext = FORMATS[fmt][0]
    x = make("float32", 50, 4, payload_nans=False)
    keys = [f"wörd{i}" for i in range(50)]
    p = tmp_path / f"k{ext}"
    formats.write(p, x, keys=keys, fmt=fmt)
    with formats.read(p, fmt=fmt) as src:
        assert list(src.keys) == keys and same_bits(read_all(src.matrix), x)


@pytest.mark.parametrize("fmt", ["parquet", "arrow"])
def test_int_keys_round_trip_as_int(tmp_path: Path, fmt: str) -> None:
    keys = np.arange(20, dtype=np.int64) * 1_000_003 - 7
    formats.write(tmp_path / f"k{FORMATS[fmt][0]}", np.ones((20, 2), np.float16), keys=keys)
    with formats.read(tmp_path / f"k{FORMATS[fmt][0]}") as src:
        assert np.array_equal(np.asarray(src.keys), keys)


def test_word2vec_without_keys_writes_row_index(tmp_path: Path) -> None:
    formats.write(tmp_path / "i.vec", np.eye(3, dtype=np.float32))
    with formats.read(tmp_path / "i.vec") as src:
        assert src.keys == ["0", "1", "2"]


def test_word2vec_refuses_key_with_space(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="row 1"):
        formats.write(tmp_path / "bad.vec", np.eye(2, dtype=np.float32), keys=["a", "b c"])
    assert not (tmp_path / "bad.vec").exists()


def test_repo_commit_checkout_keys_through_files(tmp_path: Path) -> None:
    x = make("bfloat16", 200, 8)
    keys = [f"item-{i}" for i in range(200)]
    formats.write(tmp_path / "in.parquet", x, keys=keys)
    repo = embfmt.Repo.init(tmp_path / "repo")
    with formats.read(tmp_path / "in.parquet") as src:
        repo.commit({"t": src.matrix}, message="m", keys={"t": src.keys})
    view = repo.open("t")
    for name in ("out.parquet", "out.arrow", "out.h5", "out.safetensors"):
        formats.write(tmp_path / name, view)  # keys come with the view
        with formats.read(tmp_path / name) as back:
            assert same_bits(read_all(back.matrix), x)
            if name.endswith((".parquet", ".arrow")):
                assert list(back.keys) == keys


# --- reading details ------------------------------------------------------------------------
def test_hdf5_dataset_syntax_and_marker(tmp_path: Path) -> None:
    import h5py

    x = make("bfloat16", 40, 3)
    formats.write(tmp_path / "m.h5", x, dataset="grp/emb")
    with h5py.File(tmp_path / "m.h5", "a") as f:
        assert f["grp/emb"].dtype == np.uint16 and f["grp/emb"].attrs["embfmt.dtype"] == "bfloat16"
        f.create_dataset("other", data=np.zeros((2, 2), np.float32))
        f.create_dataset("plain_u16", data=np.zeros((2, 2), np.uint16))
    with formats.read(f"{tmp_path / 'm.h5'}:/grp/emb") as src:
        assert src.matrix.dtype.name == "bfloat16" and same_bits(read_all(src.matrix), x)
    with pytest.raises(InputError) as ei, formats.read(tmp_path / "m.h5", "plain_u16"):
        pass
    assert ei.value.kind == ErrorKind.UNSUPPORTED_DTYPE


def test_parquet_reads_batch_by_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    from embfmt.formats import parquet as P

    n, d = 5000, 16
    x = make("float32", n, d)
    vec = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), d)
    pq.write_table(pa.table({"id": np.arange(n) * 3, "v": vec}), tmp_path / "g.parquet",
                   row_group_size=250, use_dictionary=False)
    assert pq.ParquetFile(tmp_path / "g.parquet").num_row_groups == 20
    monkeypatch.setattr(P, "BATCH_BYTES", 100 * d * 4)  # 100 rows per batch
    from embfmt.canonical import matrix

    monkeypatch.setattr(matrix, "BLOCK_BYTES", 64 * d * 4)
    seen: list[int] = []
    real = P.BatchRows.__getitem__

    def spy(self: Any, s: slice) -> np.ndarray:
        out = real(self, s)
        seen.append(len(self._buf) + len(out))  # what is held after serving one request
        return out

    monkeypatch.setattr(P.BatchRows, "__getitem__", spy)
    with formats.read(tmp_path / "g.parquet") as src:
        m = src.matrix
        assert np.array_equal(src.keys, np.arange(n) * 3)
        got = np.concatenate([b.copy() for b in m.blocks(rows_per_block=64)]).view(np.float32)
        assert same_bits(got.reshape(n, d), x)
        assert m.obj.batches_read >= n // 100
        assert max(seen) <= 64 + 100  # one request plus at most one batch, never the file


def test_parquet_plain_list_column_and_column_choice(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    x = make("float64", 30, 4, payload_nans=False)
    t = pa.table({"key": [f"k{i}" for i in range(30)], "a": pa.array(x.tolist(), pa.list_(pa.float64())),
                  "b": pa.array(x.tolist(), pa.list_(pa.float64()))})
    pq.write_table(t, tmp_path / "p.parquet")
    with pytest.raises(InputError, match="--vector-column"), formats.read(tmp_path / "p.parquet"):
        pass
    with formats.read(tmp_path / "p.parquet", vector_column="b", key_column="key") as src:
        assert same_bits(read_all(src.matrix), x) and src.keys[3] == "k3"
    ragged = pa.table({"v": pa.array([[1.0, 2.0], [3.0]], pa.list_(pa.float32()))})
    pq.write_table(ragged, tmp_path / "r.parquet")
    with pytest.raises(InputError) as ei, formats.read(tmp_path / "r.parquet") as src:
        read_all(src.matrix)
    assert "row 1" in ei.value.message and ei.value.kind == ErrorKind.SHAPE_MISMATCH


def test_glove_without_header_and_words_with_spaces(tmp_path: Path) -> None:
    p = tmp_path / "g.txt"
    p.write_text("the 0.5 -1\nnew york 2 3e-2\n, 0 0\n", encoding="utf-8")
    with formats.read(p, dtype="float64") as src:
        assert src.format == "glove" and src.keys == ["the", "new york", ","]
        assert read_all(src.matrix).tolist() == [[0.5, -1.0], [2.0, 0.03], [0.0, 0.0]]


def test_text_value_out_of_range_for_dtype(tmp_path: Path) -> None:
    (tmp_path / "o.vec").write_text("1 2\nw 1e39 1\n")
    with pytest.raises(InputError, match="line 2.*float32"), formats.read(tmp_path / "o.vec"):
        pass
    with formats.read(tmp_path / "o.vec", dtype="float64") as src:
        assert read_all(src.matrix)[0, 0] == 1e39


# --- hostile inputs -------------------------------------------------------------------------
HOSTILE: dict[str, bytes] = {
    "short.vec": b"3 2\na 1 2\nb 3 4\n",
    "ragged.vec": b"2 3\na 1 2 3\nb 1 2\n",
    "notnum.vec": b"1 2\na 1 x\n",
    "binary.vec": b"1 2\n\xff\xfe 1 2\n",
    "empty.txt": b"",
    "zero_d.vec": b"5 0\n",
    "trunc.bin": b"2 4\nw " + b"\x00" * 10,
    "huge.bin": b"99999999999 99999999\nw ",
    "tail.bin": b"1 1\nw \x00\x00\x80?\ngarbage",
    "junk.parquet": b"PAR1 this is not a parquet file PAR1",
    "junk.arrow": b"ARROW1\x00\x00 not really",
    "st_dtype_list.safetensors": b"\x2a\x00\x00\x00\x00\x00\x00\x00"
                                 b'{"a":{"dtype":[],"shape":[1,1],"data_offsets":[0,0]}}',
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_files_give_typed_errors(tmp_path: Path, name: str) -> None:
    p = tmp_path / name
    p.write_bytes(HOSTILE[name])
    with pytest.raises((FormatError, InputError)) as ei, formats.read(p) as src:
        read_all(src.matrix)
    assert name in str(ei.value)


def test_truncated_parquet(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    formats.write(tmp_path / "ok.parquet", make("float32", 1000, 8), keys=list(range(1000)))
    raw = (tmp_path / "ok.parquet").read_bytes()
    for cut in (len(raw) // 2, len(raw) - 5, 12):
        (tmp_path / "t.parquet").write_bytes(raw[:cut])
        with pytest.raises(FormatError) as ei, formats.read(tmp_path / "t.parquet") as src:
            read_all(src.matrix)
        assert "t.parquet" in ei.value.message
    (tmp_path / "c.parquet").write_bytes(raw[:200] + bytes(b ^ 0x5A for b in raw[200:-300]) + raw[-300:])
    with pytest.raises((FormatError, InputError)), formats.read(tmp_path / "c.parquet") as src:
        read_all(src.matrix)


def test_unknown_output_extension(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--format"):
        formats.write(tmp_path / "x.dat", np.eye(2, dtype=np.float32))
    assert formats.write(tmp_path / "x.dat", np.eye(2, dtype=np.float32), fmt="parquet") == "parquet"


# --- optional dependency --------------------------------------------------------------------
@pytest.mark.parametrize("ext", [".parquet", ".arrow"])
def test_missing_pyarrow_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ext: str) -> None:
    p = tmp_path / f"x{ext}"
    formats.write(p, np.eye(2, dtype=np.float32))
    for mod in [m for m in sys.modules if m == "pyarrow" or m.startswith("pyarrow.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    for call in (lambda: formats.write(tmp_path / f"y{ext}", np.eye(2, dtype=np.float32)),
                 lambda: formats.read(p).__enter__()):
        with pytest.raises(InputError) as ei:
            call()
        assert ei.value.kind == ErrorKind.MISSING_EXTRA
        assert "pip install 'embfmt[parquet]'" in ei.value.message
    assert not (tmp_path / f"y{ext}").exists()


def test_import_is_lazy() -> None:
    code = ("import sys, embfmt, embfmt.formats, embfmt.cli.commands, embfmt.source\n"
            "bad = [m for m in ('pyarrow', 'h5py', 'torch', 'cupy') if m in sys.modules]\n"
            "assert not bad, bad\n")
    r = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert r.returncode == 0, r.stderr
