"""`embfmt commit` / `checkout` / `fingerprint` through every format, in real processes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import embfmt
from embfmt import formats

from ..cli.test_cli_repo import fails, ok, run, run_all
from ._util import FORMATS, make, read_all, same_bits

pytest.importorskip("pyarrow")

# table -> (input file, dtype, keys or None, extra commit args for its own commit)
INPUTS: dict[str, tuple[str, str, Any]] = {
    "npy_f64": ("a.npy", "float64", None),
    "h5_bf16": ("m.h5", "bfloat16", None),
    "st_f16": ("s.safetensors", "float16", None),
    "pq_bf16": ("p.parquet", "bfloat16", [f"item/{i}" for i in range(257)]),
    "ar_i8": ("a.arrow", "int8", np.arange(257, dtype=np.int64) * 11),
    "vec_f32": ("w.vec", "float32", [f"w{i}" for i in range(257)]),
    "bin_f32": ("w.bin", "float32", [f"b{i}" for i in range(257)]),
    "pq_u8": ("u.parquet", "uint8", None),
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("in")
    data = {}
    for i, (table, (name, dtype, keys)) in enumerate(INPUTS.items()):
        x = make(dtype, 257, 12, seed=i, payload_nans=not name.endswith(".vec"))
        data[table] = x
        formats.write(d / name, x, keys=keys, dataset="grp/emb" if name.endswith(".h5") else None)
    r = d / "repo"
    ok(run("init", str(r)))
    args = [f"{t}={d / n}" + (":/grp/emb" if n.endswith(".h5") else "") for t, (n, _, _) in INPUTS.items()]
    c = json.loads(ok(run("-C", str(r), "commit", *args, "-m", "all formats", "--json")).stdout)
    return {"dir": d, "repo": r, "data": data, "commit": c}


def test_commit_reads_every_format_and_file_keys(repo: dict[str, Any]) -> None:
    tables = repo["commit"]["tables"]
    r = embfmt.Repo(repo["repo"])
    for table, (_, dtype, keys) in INPUTS.items():
        assert tables[table]["dtype"] == dtype
        assert tables[table]["fingerprint"] == embfmt.fingerprint(repo["data"][table]).root
        assert tables[table]["keys"] is (keys is not None)
        if keys is not None:
            assert list(r.keys(table)) == list(keys)


OUTS = [(t, f) for t in ("pq_bf16", "ar_i8", "vec_f32", "npy_f64") for f in FORMATS]


def test_checkout_every_format_bit_exact(repo: dict[str, Any], tmp_path: Path) -> None:
    C = ("-C", str(repo["repo"]))
    cmds = {}
    for table, fmt in OUTS:
        out = tmp_path / f"{table}{FORMATS[fmt][0]}"
        if fmt == "glove":
            out = tmp_path / f"{table}.glove.txt"
        cmds[(table, fmt)] = (*C, "checkout", "HEAD", table, "-o", str(out), "--format", fmt, "--json")
    res = run_all(cmds)
    for (table, fmt), r in res.items():
        x = repo["data"][table]
        dtype = INPUTS[table][1]
        keys = INPUTS[table][2]
        _, held, has_keys, text = FORMATS[fmt]
        out = Path(cmds[(table, fmt)][6])
        nan_payload = text and dtype.startswith(("float", "bfloat")) and table != "vec_f32"
        if dtype not in held:
            fails(r, "unsupported-dtype", str(out), dtype)
            assert not out.exists()
            continue
        if nan_payload:
            fails(r, "unsupported-dtype", str(out), "row 0")
            assert not out.exists()
            continue
        info = json.loads(ok(r).stdout)
        assert info["format"] == fmt and info["dtype"] == dtype
        with formats.read(out, fmt=fmt, dtype=dtype) as src:
            assert same_bits(read_all(src.matrix), x), (table, fmt)
            if has_keys and keys is not None:
                assert [str(k) for k in src.keys] == [str(k) for k in keys]
                if fmt in ("parquet", "arrow"):
                    assert list(src.keys) == list(keys)  # int keys stay int
            elif fmt in ("word2vec", "glove", "word2vec-bin"):  # row index as the word
                assert list(src.keys) == [str(i) for i in range(len(x))]
            else:
                assert src.keys is None
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_checkout_dataset_syntax_keys_override_and_fingerprint(repo: dict[str, Any], tmp_path: Path) -> None:
    d, C = repo["dir"], ("-C", str(repo["repo"]))
    np.save(d / "k.npy", np.arange(257, dtype=np.int64))
    res = run_all({
        "h5": (*C, "checkout", "HEAD", "h5_bf16", "-o", f"{tmp_path / 'o.h5'}:/x/y"),
        "st": (*C, "checkout", "HEAD", "st_f16", "-o", str(tmp_path / "o.safetensors"), "--dataset", "t"),
        "pq": (*C, "checkout", "HEAD", "pq_bf16", "-o", str(tmp_path / "o.parquet"),
               "--vector-column", "vec", "--key-column", "item"),
        "fp": ("fingerprint", str(d / "p.parquet"), "--json"),
        "fp_vec": ("fingerprint", str(d / "w.vec")),
        "override": (*C, "commit", f"vec_f32={d / 'w.vec'}", "--keys", f"vec_f32={d / 'k.npy'}",
                     "-m", "int keys", "--branch", "other", "--json"),
        "text_dtype": (*C, "commit", f"t64={d / 'w.vec'}", "--dtype", "float64", "-m", "f64",
                       "--branch", "other2", "--json"),
    })
    ok(res["h5"])
    with formats.read(f"{tmp_path / 'o.h5'}:/x/y") as src:
        assert same_bits(read_all(src.matrix), repo["data"]["h5_bf16"])
    ok(res["st"])
    with formats.read(tmp_path / "o.safetensors", "t") as src:
        assert same_bits(read_all(src.matrix), repo["data"]["st_f16"])
    ok(res["pq"])
    with formats.read(tmp_path / "o.parquet", vector_column="vec", key_column="item") as src:
        assert src.keys[5] == "item/5"
    fp = json.loads(ok(res["fp"]).stdout)
    assert fp["fingerprint"] == embfmt.fingerprint(repo["data"]["pq_bf16"]).root
    assert ok(res["fp_vec"]).stdout.strip() == embfmt.fingerprint(repo["data"]["vec_f32"]).root
    assert json.loads(ok(res["override"]).stdout)["tables"]["vec_f32"]["keys"] is True
    assert list(embfmt.Repo(repo["repo"]).keys("vec_f32", "other")) == list(range(257))
    assert json.loads(ok(res["text_dtype"]).stdout)["tables"]["t64"]["dtype"] == "float64"


def test_cli_errors(repo: dict[str, Any], tmp_path: Path) -> None:
    d, C = repo["dir"], ("-C", str(repo["repo"]))
    (tmp_path / "bad.vec").write_text("3 2\na 1 2\n")
    res = run_all({
        "bf_npy": (*C, "checkout", "HEAD", "pq_bf16", "-o", str(tmp_path / "bf.npy")),
        "bf_bin": (*C, "checkout", "HEAD", "h5_bf16", "-o", str(tmp_path / "bf.bin")),
        "bad_vec": (*C, "commit", f"t={tmp_path / 'bad.vec'}", "-m", "x"),
        "no_col": (*C, "commit", f"t={d / 'p.parquet'}", "--vector-column", "nope", "-m", "x"),
    })
    fails(res["bf_npy"], "unsupported-dtype", "bf.npy", "bfloat16", ".safetensors")
    fails(res["bf_bin"], "unsupported-dtype", "bf.bin", "bfloat16")
    fails(res["bad_vec"], "truncated", "bad.vec")
    fails(res["no_col"], "not-found", "p.parquet", "nope")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.vec"]
