"""Create a golden repository for spec/vectors/v1/golden/ (run once per format version).

    python spec/tools/make_golden.py spec/vectors/v1/golden/repo-1

Golden repositories are *frozen*: they are committed once and never regenerated, because later
embfmt versions (and other implementations) must keep reading exactly these bytes. zstd output
may differ between library versions, which is fine for readers but would make a "regenerate and
compare" check meaningless; `tests/spec/test_can_read_old.py` reads them instead.

Everything is deterministic: fixed author, time and environment; matrices from
``generate_vectors.make_matrix``. The manifest ``<repo>.json`` beside the repository lists, for
every revision and table, how to rebuild the expected matrix and its fingerprint.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import generate_vectors as G  # noqa: E402

import embfmt  # noqa: E402
from embfmt import _layout as L  # noqa: E402
from embfmt.objects.chunk import encode_dense  # noqa: E402
from embfmt.canonical.dtype import dtype_from_name  # noqa: E402

ENV = {"embfmt": "golden", "python": "-", "os": "-", "backend": "cpu"}


def matrix(spec: dict[str, Any]) -> np.ndarray:
    """Rebuild a golden matrix from its recipe (also used by the tests)."""
    dt = dtype_from_name(spec["dtype"])
    x = G.make_matrix(spec["dtype"], spec["rows"], spec["dim"], spec["seed"]).view(dt.numpy)
    x = x.reshape(spec["rows"], spec["dim"]).copy()
    bits = x.view(dt.bits)
    for r in spec.get("replace_rows", []):
        bits[r] = G.pattern(spec["dim"] * dt.itemsize, 1000 + r).view(dt.bits)
    if spec.get("add_one_ulp"):
        bits += np.asarray(1, dtype=dt.bits)  # wraps: integer arithmetic on the bit patterns
    if spec.get("append"):
        extra = G.make_matrix(spec["dtype"], spec["append"], spec["dim"], 77).view(dt.numpy)
        x = np.concatenate([x, extra.reshape(spec["append"], spec["dim"])])
    return x


def main(out: str) -> None:
    if os.path.exists(out):
        raise SystemExit(f"{out} exists: golden repositories are frozen, never regenerated")
    repo = embfmt.Repo.init(out)
    recipes: list[dict[str, Any]] = []

    def commit(msg: str, tables: dict[str, dict[str, Any]], **kw: Any) -> str:
        arrays = {k: matrix(v) for k, v in tables.items()}
        cid = repo.commit(arrays, message=msg, author="golden <golden@embfmt>",
                          time_utc=f"2026-11-26T12:00:{len(recipes):02d}Z", environment=ENV, **kw)
        recipes.append({"commit": cid, "message": msg, "tables": {
            k: {**v, "fingerprint": embfmt.fingerprint(arrays[k]).root} for k, v in tables.items()}})
        return cid

    base = {"dtype": "float32", "rows": 300, "dim": 2048, "seed": 1}  # 8 KiB rows: 128-row chunks
    commit("v1: three chunks, shuffle-planes", {"item_emb": base})
    commit("v2: sparse patch", {"item_emb": {**base, "replace_rows": [5, 130, 299]}})
    v3 = {**base, "replace_rows": [5, 130, 299], "add_one_ulp": True}
    commit("v3: dense delta", {"item_emb": v3},
           identity={"item_emb": {"model": "golden-encoder", "revision": "3"}})
    keys = np.arange(310, dtype=np.int64) * 7
    v4 = {**v3, "append": 10}
    commit("v4: append, int64 keys, bfloat16 table with str keys",
           {"item_emb": v4, "user_emb": {"dtype": "bfloat16", "rows": 3, "dim": 5, "seed": 9}},
           keys={"item_emb": keys, "user_emb": ["alice", "bob", "carol"]})
    repo.tag("v1", "HEAD~3")
    repo.branch("experiment", "HEAD~1")
    # Store one dense chunk of v3 as an XOR delta instead (same id: the decoded bytes are the
    # same), so the golden repository holds every codec.
    tv3 = repo.table_version("item_emb", "HEAD~1")
    tv2 = repo.table_version("item_emb", "HEAD~2")
    d3, d2 = tv3.digests[0], tv2.digests[0]
    rows3, rows2 = repo.reader.rows(d3), repo.reader.rows(d2)
    rp = repo.reader.rowprints(d3)
    depth = repo.reader.header(d2).depth
    obj = encode_dense(rows3, rows2, 4, rp, d2, depth, L.CODEC_XOR, repo.kernels)
    path = repo.store.path(d3)
    os.chmod(path, 0o644)
    with open(path, "wb") as f:
        f.write(bytes(obj))
    repo.reader.clear()  # it cached the header of the object just replaced
    codecs = sorted({L.CODEC_NAMES[repo.reader.header(d).codec] for t in ("HEAD", "HEAD~1", "HEAD~2", "HEAD~3")
                     for d in repo.table_version("item_emb", t).digests}
                    | {L.CODEC_NAMES[repo.reader.header(d).codec] for d in repo.table_version("user_emb").digests})
    rep = repo.verify()
    assert rep.ok, rep.errors
    manifest = {"_comment": "golden repository; every revision's tables rebuild with "
                            "spec/tools/make_golden.py::matrix(recipe)",
                "commits": recipes, "tags": repo.tags(), "branches": repo.branches(),
                "keys": {"item_emb": keys.tolist(), "user_emb": ["alice", "bob", "carol"]},
                "identity": {"item_emb": {"model": "golden-encoder", "revision": "3"}},
                "codecs": codecs}
    Path(out + ".json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    repo.close()
    print(f"wrote {out} ({sum(f.stat().st_size for f in Path(out).rglob('*') if f.is_file())} bytes), codecs {codecs}")


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", help="new repository directory, e.g. spec/vectors/v2/golden/repo-1")
    a = ap.parse_args()
    if os.path.exists(a.out):
        # Golden repositories are frozen: never write over one.
        sys.exit(f"make_golden: {a.out} exists; golden repositories are never regenerated")
    main(a.out)
