"""Shared helpers for the versioned-store tests: repositories in tmp dirs, bit-exact checks,
random bit patterns, and object classification by magic."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

from embfmt import _layout as L
from embfmt.repo import Repo

DTYPES = {
    "float64": np.dtype("<f8"),
    "float32": np.dtype("<f4"),
    "float16": np.dtype("<f2"),
    "bfloat16": np.dtype(ml_dtypes.bfloat16),
    "int8": np.dtype("i1"),
    "uint8": np.dtype("u1"),
}

# Widths with 256 KiB rows, so chunk_rows = 4 and a few rows make several chunks.
WIDE_DIM = {name: (256 << 10) // dt.itemsize for name, dt in DTYPES.items()}


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repo]:
    r = Repo.init(tmp_path / "repo")
    try:
        yield r
    finally:
        r.close()


def fresh(r: Repo) -> Repo:
    """A new Repo object on the same directory: nothing cached from earlier reads."""
    return Repo(r.path)


def assert_bits_equal(got: np.ndarray, want: np.ndarray) -> None:
    """Same dtype, same shape, same bytes (NaN payloads and -0.0 included)."""
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert np.ascontiguousarray(got).tobytes() == np.ascontiguousarray(want).tobytes()


def random_bits(rng: np.random.Generator, n: int, d: int, dtype: np.dtype) -> np.ndarray:
    """Uniformly random bit patterns, plus explicit NaN payloads, -0.0, subnormals and inf."""
    dtype = np.dtype(dtype)
    it = dtype.itemsize
    raw = rng.integers(0, 256, size=(n, d * it), dtype=np.uint8)
    x = raw.view(dtype).reshape(n, d)
    if (dtype.kind == "f" or dtype == DTYPES["bfloat16"]) and x.size:
        u = x.view(f"<u{it}")
        bits = 8 * it
        mant = {8: 52, 4: 23, 2: 10 if dtype != DTYPES["bfloat16"] else 7}[it]
        sign = 1 << (bits - 1)
        exp_all = ((1 << (bits - 1 - mant)) - 1) << mant
        specials = [
            exp_all | 1,                        # signalling NaN, payload 1
            sign | exp_all | ((1 << mant) - 1),  # negative NaN, full payload
            exp_all | (1 << (mant - 1)) | 5,     # quiet NaN with payload
            sign,                               # -0.0
            0,                                  # +0.0
            1,                                  # smallest subnormal
            sign | ((1 << mant) - 1),           # largest negative subnormal
            exp_all,                            # +inf
            sign | exp_all,                     # -inf
        ]
        flat = u.reshape(-1)
        for j, s in enumerate(specials):
            flat[(j * 7919) % flat.size] = s
    return x


def object_files(root: str | os.PathLike[str]) -> dict[str, str]:
    """Object id (hex) -> path for every stored object."""
    out = {}
    objs = Path(root) / "objects"
    for sub in objs.iterdir() if objs.is_dir() else []:
        for f in sub.iterdir():
            out[sub.name + f.name] = str(f)
    return out


def object_kind(path: str) -> str:
    with open(path, "rb") as f:
        head = f.read(16)
    if head.startswith(L.COMMIT_MAGIC):
        return "commit"
    if head.startswith(L.CHUNK_MAGIC):
        return "chunk"
    if head.startswith(L.TABLE_MAGIC):
        return "table"
    if head.startswith(L.KEYS_MAGIC):
        return "keys"
    if head.startswith(getattr(L, "CHANGE_MAGIC", b"\xff" * 8)):
        return "change"
    return "unknown"


def objects_by_kind(root: str | os.PathLike[str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {"commit": set(), "chunk": set(), "table": set(), "keys": set(),
                                "change": set(), "unknown": set()}
    for oid, p in object_files(root).items():
        out[object_kind(p)].add(oid)
    return out


def hash_tree(root: str | os.PathLike[str]) -> dict[str, str]:
    """Relative path -> sha256 of every regular file under ``root``."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def expected_live(r: Repo) -> set[str]:
    """Reachable objects, computed from the public API: refs -> commits (all parents) ->
    table versions -> keys and chunk delta chains."""
    live: set[str] = set()
    stack = list(r.branches().values()) + list(r.tags().values())
    while stack:
        cid = stack.pop()
        if cid in live:
            continue
        live.add(cid)
        c = r.get_commit(cid)
        stack.extend(c.parents)
        # change objects (per-row drift vs the parent) named in the writer's metadata
        for info in c.metadata.get("embfmt", {}).get("tables", {}).values():
            if isinstance(info, dict) and isinstance(info.get("changes"), str):
                live.add(info["changes"])
        for tid in c.tables.values():
            live.add(tid)
            tv = r.get_table_version(tid)
            if tv.keys_id is not None:
                live.add(tv.keys_id.hex())
            for d in tv.digests:
                live.update(x.hex() for x in r.reader.chain(d))
    return live
