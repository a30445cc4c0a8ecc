"""Every backend against the committed spec vectors (spec/vectors/v1)."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import numpy as np
import pytest

import embfmt
from embfmt.canonical import merkle
from embfmt.canonical.dtype import dtype_from_name
from embfmt.canonical.fingerprint import InclusionProof, chunk_rows_for, parse_root

from ..conftest import GEN, VECTOR_DIR


def load(rel: str) -> dict[str, Any]:
    return json.loads((VECTOR_DIR / rel).read_text())


FP = load("fingerprint.json")["cases"]
ROWPRINT = load("rowprint.json")["cases"]
MERKLE = load("merkle.json")["cases"]


def matrix(case: dict[str, Any]) -> np.ndarray:
    i = case["input"]
    dt = dtype_from_name(i["dtype"])
    raw = GEN.make_matrix(i["dtype"], i["rows"], i["dim"], i["seed"])
    return raw.view(dt.numpy).reshape(i["rows"], i["dim"])


@pytest.mark.parametrize("case", FP, ids=[c["id"] for c in FP])
def test_fingerprint_vectors(case: dict[str, Any], backend: str) -> None:
    x = matrix(case)
    exp = case["expected"]
    fp = embfmt.fingerprint(x, backend=backend)
    assert fp.backend == backend
    assert fp.chunk_rows == exp["chunk_rows"]
    assert fp.n_chunks == exp["n_chunks"]
    assert fp.tree_hash.hex() == exp["tree_hash"]
    if exp["chunk_digests"] is not None:
        assert [d.hex() for d in fp.chunk_digests] == exp["chunk_digests"]
    assert GEN.b3(b"".join(fp.chunk_digests)).hex() == exp["chunk_digests_blake3"]
    assert GEN.b3(fp.rowprints.astype("<u8").tobytes()).hex() == exp["rowprints_blake3"]
    if "rowprints" in exp:
        assert [f"{int(v):016x}" for v in fp.rowprints] == exp["rowprints"]
    assert fp.root == exp["fingerprint"]
    for i, hexproof in enumerate(exp.get("proofs", [])):
        p = fp.proof(i)
        assert p.to_bytes().hex() == hexproof
        assert InclusionProof.from_bytes(bytes.fromhex(hexproof)) == p
        assert embfmt.verify_proof(fp.root, i, fp.chunk_digests[i], bytes.fromhex(hexproof))


@pytest.mark.parametrize("case", FP, ids=[c["id"] for c in FP])
def test_fingerprint_vectors_match_official_libraries(case: dict[str, Any]) -> None:
    """Rowprints equal the official xxhash, chunk digests the official blake3."""
    xxhash = pytest.importorskip("xxhash")
    import blake3

    x = matrix(case)
    raw = np.ascontiguousarray(x).view(np.uint8).reshape(x.shape[0], x.shape[1] * x.dtype.itemsize)
    exp = case["expected"]
    if "rowprints" in exp:
        assert [f"{xxhash.xxh3_64_intdigest(r.tobytes()):016x}" for r in raw] == exp["rowprints"]
    cr = exp["chunk_rows"]
    digests = [blake3.blake3(raw[c * cr:(c + 1) * cr].tobytes()).digest()
               for c in range(exp["n_chunks"])]
    assert blake3.blake3(b"".join(digests)).hexdigest() == exp["chunk_digests_blake3"]


def test_rowprint_vectors(backend: str) -> None:
    """Row lengths 0-260 and beyond: every XXH3-64 length path and the 1 KiB block boundary."""
    be = embfmt.get_backend(backend)
    wrong = []
    for case in ROWPRINT:
        n, length, seed = case["input"]["rows"], case["input"]["row_bytes"], case["input"]["seed"]
        rows = GEN.pattern(n * length, seed).reshape(n, length)
        if [f"{int(v):016x}" for v in be.rowprints(rows)] != case["expected"]["rowprints"]:
            wrong.append(case["id"])
    assert len(ROWPRINT) > 270
    assert wrong == []


@pytest.mark.parametrize("case", MERKLE, ids=[c["id"] for c in MERKLE])
def test_merkle_vectors(case: dict[str, Any]) -> None:
    import struct

    import blake3

    n = case["input"]["n_leaves"]
    digests = [blake3.blake3(struct.pack("<Q", i)).digest() for i in range(n)]
    assert merkle.tree_hash(digests).hex() == case["expected"]["tree_hash"]
    levels = merkle.tree_levels(digests)
    for i, path in case["expected"]["paths"].items():
        got = merkle.audit_path(levels, int(i))
        assert [s.hex() for s in got] == path
        assert merkle.root_from_path(digests[int(i)], int(i), n, got) == merkle.tree_hash(digests)


INV_FP = load("invalid/fingerprint.json")["cases"]
INV_PROOF = load("invalid/proof.json")


@pytest.mark.parametrize("case", INV_FP, ids=[c["id"] for c in INV_FP])
def test_invalid_fingerprints(case: dict[str, Any]) -> None:
    with pytest.raises(embfmt.FormatError) as ei:
        parse_root(case["input"]["text"])
    assert ei.value.kind.value == case["expected"]["error"]


@pytest.mark.parametrize("case", INV_PROOF["cases"], ids=[c["id"] for c in INV_PROOF["cases"]])
def test_invalid_proofs(case: dict[str, Any]) -> None:
    x = matrix(next(c for c in FP if c["id"] == "float32-12x65536-s7"))
    fp = embfmt.fingerprint(x, backend="cpu")
    assert fp.proof(0).to_bytes().hex() == INV_PROOF["valid"]
    assert embfmt.verify_proof(fp.root, 0, fp.chunk_digests[0], bytes.fromhex(INV_PROOF["valid"]))
    with pytest.raises(embfmt.FormatError) as ei:
        embfmt.verify_proof(fp.root, 0, fp.chunk_digests[0], bytes.fromhex(case["input"]["hex"]))
    assert ei.value.kind.value == case["expected"]["error"]


def test_chunk_rows_formula_matches_generator() -> None:
    for dt in ("float64", "float32", "float16", "bfloat16", "int8", "uint8"):
        isz = dtype_from_name(dt).itemsize
        for d in (1, 2, 3, 100, 128, 300, 1000, 4096, 65536, 131073, 1 << 24):
            assert chunk_rows_for(dt, d) == GEN.chunk_rows_for(d * isz)


def test_generator_is_importable_as_module(gen: ModuleType) -> None:
    assert set(gen.generate()) >= {"fingerprint.json", "rowprint.json", "merkle.json"}


DELTA = load("delta.json")["cases"]


@pytest.mark.parametrize("kernel_backend", ["reference", "cpu"])
def test_delta_vectors(kernel_backend: str) -> None:
    """Byte-plane shuffle and both dense delta transforms, and their inverses (spec §13.3)."""
    import importlib

    k = importlib.import_module(f"embfmt._kernels.{kernel_backend}")
    for case in DELTA:
        i = case["input"]
        new, base = GEN.pattern(i["bytes"], i["new_seed"]), GEN.pattern(i["bytes"], i["base_seed"])
        exp = case["expected"]
        isz = i["itemsize"]
        assert k.shuffle(new, isz).tobytes().hex() == exp["shuffle"], case["id"]
        assert k.unshuffle(bytes_arr(exp["shuffle"]), isz).tobytes() == new.tobytes()
        for mode, key in ((2, "xor"), (3, "sub_zigzag")):
            assert k.delta_encode(new, base, isz, mode).tobytes().hex() == exp[key], (case["id"], key)
            assert k.delta_decode(bytes_arr(exp[key]), base, isz, mode).tobytes() == new.tobytes()


def bytes_arr(h: str) -> np.ndarray:
    return np.frombuffer(bytes.fromhex(h), dtype=np.uint8)


INV_CHUNK = load("invalid/chunk.json")


@pytest.mark.parametrize("case", INV_CHUNK["cases"], ids=[c["id"] for c in INV_CHUNK["cases"]])
def test_invalid_chunk_objects(case: dict[str, Any]) -> None:
    from embfmt._kernels import cpu
    from embfmt.objects.chunk import decode_chunk

    oid = bytes.fromhex(INV_CHUNK["id"])

    def no_base(d: bytes) -> np.ndarray:
        raise AssertionError("a raw chunk has no base")

    ok = decode_chunk(bytes.fromhex(INV_CHUNK["valid"]), oid, "valid", no_base, cpu)
    assert ok.tobytes() == GEN.make_matrix("float32", 2, 3, 2).tobytes()
    if case["expected"]["error"] is None:  # the valid control object of the plane cases
        got = decode_chunk(bytes.fromhex(case["input"]["hex"]), oid, "control", no_base, cpu)
        assert got.tobytes() == ok.tobytes()
        return
    with pytest.raises(embfmt.EmbfmtError) as ei:
        decode_chunk(bytes.fromhex(case["input"]["hex"]), oid, "chunk under test", no_base, cpu)
    assert ei.value.kind.value == case["expected"]["error"]
    assert "chunk under test" in str(ei.value)
