"""Writing one dataset / tensor into an existing multi-table file keeps everything else.

`embfmt checkout REV TABLE -o FILE:DATASET` into an HDF5 or safetensors file replaces (with
--force) or adds only DATASET; every other dataset, tensor, group and attribute is copied bit
for bit, and a refused or failed write leaves the file byte-identical.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from embfmt import formats
from embfmt.errors import ErrorKind, FormatError, InputError

from ..cli.test_cli_repo import fails, ok, run, run_all
from ._util import make, read_all, same_bits

h5py = pytest.importorskip("h5py")
st_numpy = pytest.importorskip("safetensors.numpy")
safetensors = pytest.importorskip("safetensors")

META = {"format": "pt", "model": "enc-v3", "note": "kept verbatim"}


def _model(path: Path) -> dict[str, np.ndarray]:
    """A safetensors "model" of 104 tensors of several dtypes, ranks and sizes (odd byte counts
    included, so a misplaced offset shows), written by the reference library."""
    rng = np.random.default_rng(3)
    tensors: dict[str, np.ndarray] = {}
    for i in range(100):
        dt = (np.float32, np.float16, np.int8, np.uint8, np.float64)[i % 5]
        shape = [(7,), (3, 5), (2, 3, 4), (11, 13)][i % 4]
        tensors[f"layer.{i}.weight"] = (rng.standard_normal(shape) * 50).astype(dt)
    tensors["emb"] = rng.standard_normal((40, 6)).astype(np.float32)
    tensors["ids"] = np.arange(9, dtype=np.int32)  # a dtype embfmt does not read: copied as is
    tensors["scalar"] = np.array(3.5, dtype=np.float32)
    tensors["empty"] = np.zeros((0, 4), dtype=np.float16)
    st_numpy.save_file(tensors, str(path), metadata=META)
    return tensors


def _multi_h5(path: Path) -> None:
    with h5py.File(path, "w") as f:
        f.attrs["producer"] = "test"
        w = f.create_group("weights")
        w.attrs["epoch"] = np.int64(12)
        e = w.create_dataset("emb", data=np.ones((10, 4), np.float32))
        e.attrs["units"] = "cos"
        o = w.create_dataset("other", data=np.arange(60, dtype=np.float64).reshape(6, 10),
                             chunks=(2, 10), compression="gzip")
        o.attrs["role"] = "decoder"
        f.create_dataset("notes", data=np.array([b"first", b"second"]))
        f.create_group("empty_group").attrs["x"] = 1.5
        f["link_to_other"] = h5py.SoftLink("/weights/other")


def _h5_contents(path: Path) -> dict[str, Any]:
    """Every object's data bytes (or group marker) and attributes, except /weights/emb."""
    out: dict[str, Any] = {}
    with h5py.File(path, "r") as f:
        out["/"] = {k: np.asarray(v).tobytes() for k, v in f.attrs.items()}

        def visit(name: str, obj: Any) -> None:
            attrs = {k: np.asarray(v).tobytes() for k, v in obj.attrs.items()}
            if isinstance(obj, h5py.Dataset):
                if name == "weights/emb":
                    return
                out[name] = (obj.dtype.str, obj.shape, obj[()].tobytes(), attrs,
                             obj.compression, obj.chunks)
            else:
                out[name] = ("group", attrs)

        f.visititems(visit)
        out["softlink"] = f.get("link_to_other", getlink=True).path
    return out


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("wi")
    x = make("float32", 257, 6, seed=5)
    b = make("bfloat16", 33, 4, seed=6)
    np.save(d / "x.npy", x)
    formats.write(d / "b.safetensors", b)
    r = d / "repo"
    ok(run("init", str(r)))
    ok(run("-C", str(r), "commit", f"emb={d / 'x.npy'}", f"bf={d / 'b.safetensors'}", "-m", "v1"))
    return {"repo": r, "emb": x, "bf": b}


def test_checkout_into_safetensors_keeps_every_other_tensor(repo: dict[str, Any], tmp_path: Path) -> None:
    C = ("-C", str(repo["repo"]))
    model, added, kept = tmp_path / "model.safetensors", tmp_path / "add.safetensors", tmp_path / "k.safetensors"
    before = _model(model)
    _model(added)
    _model(kept)
    kept_bytes = kept.read_bytes()
    res = run_all({
        "replace": (*C, "checkout", "HEAD", "emb", "-o", f"{model}:emb", "--force"),
        "add": (*C, "checkout", "HEAD", "bf", "-o", f"{added}:new.bf16"),
        "refused": (*C, "checkout", "HEAD", "emb", "-o", f"{kept}:emb"),
        "metadata": (*C, "checkout", "HEAD", "emb", "-o", f"{kept}:__metadata__", "--force"),
    })
    for path, name, table in ((model, "emb", "emb"), (added, "new.bf16", "bf")):
        ok(res["replace" if path == model else "add"])
        after = st_numpy.load_file(str(path))  # the reference parser validates the layout
        assert set(after) == set(before) | {name}
        for k, v in before.items():
            if k != name:
                assert after[k].dtype == v.dtype and after[k].shape == v.shape, k
                assert after[k].tobytes() == v.tobytes(), k
        with safetensors.safe_open(str(path), "np") as f:
            assert f.metadata() == META
        with formats.read(path, name) as src:
            assert same_bits(read_all(src.matrix), repo[table])
    fails(res["refused"], "bad-argument", str(kept), "'emb'", "--force")
    fails(res["metadata"], "bad-argument", str(kept), "__metadata__")
    assert kept.read_bytes() == kept_bytes
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_checkout_into_hdf5_keeps_groups_datasets_attributes(repo: dict[str, Any], tmp_path: Path) -> None:
    C = ("-C", str(repo["repo"]))
    multi, added, kept = tmp_path / "multi.h5", tmp_path / "add.h5", tmp_path / "kept.h5"
    for p in (multi, added, kept):
        _multi_h5(p)
    before = _h5_contents(multi)
    kept_bytes = kept.read_bytes()
    res = run_all({
        "replace": (*C, "checkout", "HEAD", "emb", "-o", f"{multi}:/weights/emb", "--force"),
        "add": (*C, "checkout", "HEAD", "bf", "-o", f"{added}:/new/grp/bf"),
        "refused": (*C, "checkout", "HEAD", "emb", "-o", f"{kept}:/weights/emb"),
        "group": (*C, "checkout", "HEAD", "emb", "-o", f"{kept}:/weights", "--force"),
        "under_ds": (*C, "checkout", "HEAD", "emb", "-o", f"{kept}:/notes/x", "--force"),
    })
    ok(res["replace"])
    assert _h5_contents(multi) == before
    with h5py.File(multi, "r") as f:
        assert f["weights/emb"].attrs["units"] == "cos"  # the replaced dataset's own attributes stay
    with formats.read(f"{multi}:/weights/emb") as src:
        assert same_bits(read_all(src.matrix), repo["emb"])
    ok(res["add"])
    after_add = _h5_contents(added)
    assert after_add.pop("new/grp/bf")[0] == "<u2"
    assert after_add.pop("new") == ("group", {}) and after_add.pop("new/grp") == ("group", {})
    assert after_add == before
    with formats.read(f"{added}:/new/grp/bf") as src:
        assert src.matrix.dtype.name == "bfloat16" and same_bits(read_all(src.matrix), repo["bf"])
    fails(res["refused"], "bad-argument", str(kept), "weights/emb", "--force")
    fails(res["group"], "bad-argument", str(kept), "weights", "group")
    fails(res["under_ds"], "bad-argument", str(kept), "notes")
    assert kept.read_bytes() == kept_bytes
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_single_table_formats_keep_whole_file_semantics(repo: dict[str, Any], tmp_path: Path) -> None:
    C = ("-C", str(repo["repo"]))
    for name in ("a.npy", "a.parquet", "a.vec"):
        (tmp_path / name).write_bytes(b"old")
    res = run_all({
        **{f"no_force_{n}": (*C, "checkout", "HEAD", "emb", "-o", str(tmp_path / n))
           for n in ("a.npy", "a.parquet", "a.vec")},
        "force": (*C, "checkout", "HEAD", "emb", "-o", str(tmp_path / "a.npy"), "--force"),
    })
    for n in ("a.parquet", "a.vec"):
        fails(res[f"no_force_{n}"], "bad-argument", str(tmp_path / n), "--force")
        assert (tmp_path / n).read_bytes() == b"old"
    fails(res["no_force_a.npy"], "bad-argument", "--force")
    ok(res["force"])
    assert same_bits(np.load(tmp_path / "a.npy"), repo["emb"])


def test_api_write_into_existing_files(tmp_path: Path) -> None:
    model, multi = tmp_path / "m.safetensors", tmp_path / "m.h5"
    before = _model(model)
    _multi_h5(multi)
    h5_before = _h5_contents(multi)
    x = make("float16", 20, 3, seed=9)
    assert formats.write(model, x, dataset="layer.3.weight") == "safetensors"
    assert formats.write(multi, x, dataset="/weights/emb") == "hdf5"
    after = st_numpy.load_file(str(model))
    assert after["layer.3.weight"].tobytes() == x.tobytes()
    assert all(after[k].tobytes() == v.tobytes() for k, v in before.items() if k != "layer.3.weight")
    assert _h5_contents(multi) == h5_before
    st_bytes, h5_bytes = model.read_bytes(), multi.read_bytes()
    for p, ds in ((model, "emb"), (multi, "weights/other")):
        with pytest.raises(InputError) as ei:
            formats.write(p, x, dataset=ds, overwrite=False)
        assert ei.value.kind == ErrorKind.BAD_ARGUMENT and str(p) in ei.value.message
    assert model.read_bytes() == st_bytes and multi.read_bytes() == h5_bytes
    # A file of that extension that is not a readable file of the format is never replaced.
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00not json")
    with pytest.raises(FormatError):
        formats.write(junk, x, dataset="emb")
    assert junk.read_bytes() == b"\x08\x00\x00\x00\x00\x00\x00\x00not json"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_safetensors_replace_same_size_keeps_layout(tmp_path: Path) -> None:
    """Replacing a tensor by one of the same byte size leaves every other tensor's offsets as
    they were (only the replaced bytes change)."""
    model = tmp_path / "m.safetensors"
    before = _model(model)
    old = model.read_bytes()
    (hlen,) = struct.unpack("<Q", old[:8])
    header = json.loads(old[8:8 + hlen])
    x = np.full(before["emb"].shape, 7.0, np.float32)
    formats.write(model, x, dataset="emb")
    new = model.read_bytes()
    (hlen2,) = struct.unpack("<Q", new[:8])
    assert json.loads(new[8:8 + hlen2]) == header
    b, e = header["emb"]["data_offsets"]
    assert new[8 + hlen2:8 + hlen2 + b] == old[8 + hlen:8 + hlen + b]
    assert new[8 + hlen2 + e:] == old[8 + hlen + e:]


def test_failed_write_leaves_the_file_byte_identical(repo: dict[str, Any], tmp_path: Path) -> None:
    """A table that fails to decode half way (a damaged chunk) leaves the file as it was."""
    import shutil

    r = tmp_path / "repo"
    shutil.copytree(repo["repo"], r)
    objs = sorted((p for p in (r / "objects").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    data = bytearray(objs[-1].read_bytes())  # the largest object: the chunk of `emb`
    data[len(data) // 2] ^= 0x40
    objs[-1].write_bytes(bytes(data))
    out = tmp_path / "out"
    out.mkdir()
    model, multi = out / "model.safetensors", out / "multi.h5"
    _model(model)
    _multi_h5(multi)
    before = {p: p.read_bytes() for p in (model, multi)}
    C = ("-C", str(r))
    res = run_all({
        "st": (*C, "checkout", "HEAD", "emb", "-o", f"{model}:emb", "--force"),
        "h5": (*C, "checkout", "HEAD", "emb", "-o", f"{multi}:/weights/emb", "--force"),
    })
    for k, p in (("st", model), ("h5", multi)):
        assert res[k].returncode != 0 and "Traceback" not in res[k].stderr, res[k].stderr
        assert "digest-mismatch" in res[k].stderr
        assert p.read_bytes() == before[p]
    assert sorted(q.name for q in out.iterdir()) == ["model.safetensors", "multi.h5"]
