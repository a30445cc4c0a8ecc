"""The worked examples printed in spec/embfmt-v1.md are recomputed here, so the text cannot rot."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

import embfmt
from embfmt.canonical.fingerprint import chunk_rows_for

from ..conftest import SPEC_DIR

SPEC = (SPEC_DIR / "embfmt-v1.md").read_text()


def example_matrix() -> np.ndarray:
    x = np.array([[1.0, -0.0, 0.5], [2.0, 0.0, -1.0]], dtype=np.float32)
    x.view(np.uint32)[1, 1] = 0x7FC00001
    return x


def spec_value(label: str) -> str:
    m = re.search(rf"^{re.escape(label)}\s+([0-9a-f]{{64}})", SPEC, re.M)
    assert m, f"spec has no line starting with {label!r}"
    return m.group(1)


def test_section7_worked_example() -> None:
    fp = embfmt.fingerprint(example_matrix())
    assert fp.chunk_rows == 65536 and fp.n_chunks == 1
    assert fp.chunk_digests[0].hex() == spec_value("chunk digest 0")
    assert fp.root == "emb1:b3:" + spec_value("root")
    assert fp.root in SPEC  # §8 quotes the same fingerprint
    assert f"{int(fp.rowprints[0]):#018x}" in SPEC and f"{int(fp.rowprints[1]):#018x}" in SPEC
    desc_block = SPEC[SPEC.index("descriptor       (80 bytes)"):SPEC.index("root             ")]
    desc_hex = "".join(re.findall(r"[0-9a-f]+", desc_block.split("\n", 1)[1]))
    from embfmt.canonical.fingerprint import descriptor_bytes
    from embfmt.canonical.dtype import dtype_from_name

    assert descriptor_bytes(dtype_from_name("float32"), 2, 3, 65536, fp.tree_hash).hex() == desc_hex


def test_section7_empty_example() -> None:
    fp = embfmt.fingerprint(np.zeros((0, 3), np.float32))
    m = re.search(r"empty = ([0-9a-f]{64})`\s+and root\s+`([0-9a-f]{64})`", SPEC)
    assert m
    assert fp.tree_hash.hex() == m.group(1)
    assert fp.root == "emb1:b3:" + m.group(2)


def test_section4_examples() -> None:
    assert chunk_rows_for("float32", 128) == 2048
    assert chunk_rows_for("float16", 300) == 1024
    assert "`chunk_rows = 2048`" in SPEC and "`chunk_rows = 1024`" in SPEC
    fp_rows = 1_000_000
    assert -(-fp_rows // 2048) == 489 and fp_rows - 488 * 2048 == 576


def test_section6_proof_example() -> None:
    fp = embfmt.fingerprint(example_matrix())
    m = re.search(r"48 bytes `([0-9a-f ]+)`", SPEC.replace("\n", " "))
    assert m
    assert fp.proof(0).to_bytes().hex() == m.group(1).replace(" ", "")


def test_section13_chunk_object_example() -> None:
    """§13.5's hex dump is exactly what the writer's full-chunk encoder produces."""
    from embfmt._kernels import cpu
    from embfmt.objects.chunk import decode_chunk, encode_full

    x = example_matrix()
    fp = embfmt.fingerprint(x)
    obj = bytes(encode_full(x.view(np.uint8).reshape(2, 12), 4, fp.rowprints, cpu))
    block = SPEC[SPEC.index("### 13.5 Worked example"):SPEC.index("### 13.6")]
    dump = block.split("```")[1]
    hexes = []
    for line in dump.strip().splitlines():
        data = re.split(r"\s{3,}", line.strip())[0]  # hex groups, then a comment
        hexes.append(data.replace(" ", ""))
    assert "".join(hexes) == obj.hex()
    assert fp.chunk_digests[0].hex() in block
    rows = decode_chunk(obj, fp.chunk_digests[0], "example", lambda d: None, cpu)
    assert rows.tobytes() == x.tobytes()


def test_rowprint_cache_example(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """§11.1's worked example is what embfmt's rowprint cache writes for the §7 matrix."""
    from embfmt.history.cache import RowprintCache

    x = example_matrix()
    fp = embfmt.fingerprint(x)
    c = RowprintCache(str(tmp_path))
    k = c.key("float32", 2, 3, fp.chunk_digests)
    assert k.hex() == spec_value("cache key")
    c.put(k, fp.rowprints)
    block = SPEC[SPEC.index("### 11.1 Derived data"):SPEC.index("## 12.")]
    dump = block.split("```")[1]
    lines = [line.strip().removeprefix("entry").strip() for line in dump.strip().splitlines()[1:]]
    hexes = [re.split(r"\s{3,}", line)[0].replace(" ", "") for line in lines]
    assert "".join(hexes) == Path(c.path(k)).read_bytes().hex()
