"""Generate the embfmt v1 test vectors from the readable numpy reference.

Usage::

    python spec/tools/generate_vectors.py            # rewrite spec/vectors/v1/
    python spec/tools/generate_vectors.py --check    # exit 1 if the committed files are stale

Everything here is computed with ``kernels/reference.py`` (XXH3-64 and BLAKE3 in numpy) and
``struct``, straight from the spec text; nothing imports the embfmt implementation, so the
vectors are an independent check of it. Inputs are *generated from a stated rule*, never stored
random bytes:

* ``pattern(n, seed)[k] = (7*k + seed) mod 251`` as bytes (251 is prime, so the pattern does
  not repeat on any power-of-two period that could hide an indexing bug; BLAKE3's own vectors
  use the same trick).
* ``make_matrix(dtype, n, d, seed)``: canonical bytes = ``pattern(n*d*itemsize, seed)``; for float
  dtypes with at least 4 elements, elements 0-3 are then set to -0.0, a NaN with a payload, +inf
  and a negative NaN with another payload (SPECIALS below), because the format must keep bits.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
VECTOR_DIR = ROOT / "spec" / "vectors" / "v1"

try:
    from embfmt._kernels import reference as R
except ImportError:  # running from a plain checkout without installing embfmt
    sys.path.insert(0, str(ROOT))
    from kernels import reference as R  # type: ignore[no-redef]

# (name, code, itemsize, is_float) - spec §3
DTYPES = {
    "float64": (1, 8, True),
    "float32": (2, 4, True),
    "float16": (3, 2, True),
    "bfloat16": (4, 2, True),
    "int8": (5, 1, False),
    "uint8": (6, 1, False),
}
# -0.0, NaN with payload (signalling where the format has one), +inf, negative NaN with payload
SPECIALS = {
    8: [0x8000000000000000, 0x7FF0000000000001, 0x7FF0000000000000, 0xFFF8000000000123],
    4: [0x80000000, 0x7F800001, 0x7F800000, 0xFFC00123],
    2: [0x8000, 0x7C01, 0x7C00, 0xFE23],
}
SPECIALS_BF16 = [0x8000, 0x7F81, 0x7F80, 0xFFC3]


def pattern(n: int, seed: int) -> np.ndarray:
    """``(7*k + seed) mod 251`` for k in 0..n-1, as uint8."""
    return ((np.arange(n, dtype=np.uint64) * 7 + seed) % 251).astype(np.uint8)


def make_matrix(dtype: str, n: int, d: int, seed: int) -> np.ndarray:
    """The canonical bytes of the generated matrix, shape (n, d*itemsize) uint8."""
    _, isz, is_float = DTYPES[dtype]
    raw = pattern(n * d * isz, seed)
    if is_float and n * d >= 4:
        specials = SPECIALS_BF16 if dtype == "bfloat16" else SPECIALS[isz]
        words = raw.view(np.dtype(f"<u{isz}"))
        words[:4] = specials
    return raw.reshape(n, d * isz)


def chunk_rows_for(row_bytes: int) -> int:
    """spec §4."""
    q = max(1, (1 << 20) // row_bytes)
    return 1 << (q.bit_length() - 1)


def b3(data: bytes) -> bytes:
    return R.blake3(data)


def leaf(d: bytes) -> bytes:
    return b3(b"\x00" + d)


def node(left: bytes, right: bytes) -> bytes:
    return b3(b"\x01" + left + right)


def levels_of(digests: list[bytes]) -> list[list[bytes]]:
    """spec §6.1, level by level; odd last entry promoted."""
    if not digests:
        return []
    lv = [leaf(d) for d in digests]
    out = [lv]
    while len(lv) > 1:
        nxt = [node(lv[j], lv[j + 1]) for j in range(0, len(lv) - 1, 2)]
        if len(lv) % 2:
            nxt.append(lv[-1])
        lv = nxt
        out.append(lv)
    return out


def tree_hash(digests: list[bytes]) -> bytes:
    return levels_of(digests)[-1][0] if digests else b3(b"\x02")


def audit_path(levels: list[list[bytes]], i: int) -> list[bytes]:
    """spec §6.2."""
    path = []
    for lv in levels[:-1]:
        if (i ^ 1) < len(lv):
            path.append(lv[i ^ 1])
        i //= 2
    return path


def descriptor(code: int, n: int, d: int, cr: int, nch: int, th: bytes) -> bytes:
    """spec §7: 80 bytes."""
    return struct.pack("<6sBBBBHIQQQQ32s", b"EMBFMT", 1, 0, code, 1, 0, 0, n, d, cr, nch, th)


def proof_bytes(code: int, n: int, d: int, cr: int, i: int, path: list[bytes]) -> bytes:
    """spec §6.3."""
    return struct.pack("<4sBBBBQQQQII", b"EMBP", 1, 1, code, 0, n, d, cr, i, len(path), 0) + b"".join(path)


# ------------------------------------------------------------------------------------------
ROW_LENGTHS = list(range(0, 261)) + [
    320, 511, 512, 513, 1023, 1024, 1025, 1088, 2047, 2048, 2049, 4096 + 17, 10_000]


def gen_rowprint() -> dict[str, Any]:
    cases = []
    for length in ROW_LENGTHS:
        rows = pattern(3 * length, length).reshape(3, length)
        rp = R.rowprints(rows)
        cases.append({"id": f"len{length}", "input": {"row_bytes": length, "rows": 3, "seed": length},
                      "expected": {"rowprints": [f"{int(v):016x}" for v in rp]}})
    return {"_comment": "rows = pattern(3*row_bytes, seed=row_bytes).reshape(3, row_bytes); "
                        "rowprint = XXH3-64 seed 0, hex of the u64",
            "spec": "v1 §5", "cases": cases}


FINGERPRINT_CASES = [
    # (dtype, n, d, seed, why)
    *[(dt, 0, 3, 0, "N = 0") for dt in DTYPES],
    *[(dt, 1, 1, 1, "one element") for dt in DTYPES],
    *[(dt, 2, 3, 2, "tiny, specials included") for dt in DTYPES],
    *[(dt, 5, 7, 3, "odd row length") for dt in DTYPES],
    ("float32", 3, 65536, 4, "chunk_rows = 4: N = chunk_rows - 1"),
    ("float32", 4, 65536, 5, "N = chunk_rows"),
    ("float32", 5, 65536, 6, "N = chunk_rows + 1"),
    ("float32", 12, 65536, 7, "3 chunks: odd Merkle level"),
    ("float32", 2047, 128, 8, "D=128 float32: N = chunk_rows - 1"),
    ("float32", 2048, 128, 9, "N = chunk_rows"),
    ("float32", 2049, 128, 10, "N = chunk_rows + 1"),
    ("float64", 2, 131073, 11, "row over 1 MiB: chunk_rows = 1"),
    ("uint8", 5, 1, 12, "1-byte rows: chunk_rows = 2**20"),
    ("bfloat16", 1025, 300, 13, "600-byte rows: chunk_rows 1024, two chunks"),
    ("int8", 1049, 1000, 14, "1000-byte rows, two chunks"),
    ("float16", 17, 8, 15, "16-byte rows (XXH3 9-16 path)"),
    ("float32", 9, 60, 16, "240-byte rows (XXH3 129-240 path)"),
]


def fingerprint_case(dtype: str, n: int, d: int, seed: int) -> dict[str, Any]:
    code, isz, _ = DTYPES[dtype]
    rows = make_matrix(dtype, n, d, seed)
    cr = chunk_rows_for(d * isz)
    nch = -(-n // cr)
    rp = R.rowprints(rows)
    dg = [bytes(x) for x in R.chunk_digests(rows, cr)]
    levels = levels_of(dg)
    th = tree_hash(dg)
    desc = descriptor(code, n, d, cr, nch, th)
    root = b3(b"\x03" + desc)
    exp: dict[str, Any] = {"chunk_rows": cr, "n_chunks": nch,
                           "rowprints_blake3": b3(rp.astype("<u8").tobytes()).hex(),
                           "chunk_digests": [x.hex() for x in dg] if nch <= 16 else None,
                           "chunk_digests_blake3": b3(b"".join(dg)).hex(),
                           "tree_hash": th.hex(), "descriptor": desc.hex(),
                           "fingerprint": "emb1:b3:" + root.hex()}
    if n <= 16:
        exp["rowprints"] = [f"{int(v):016x}" for v in rp]
    if 1 < nch <= 16:
        exp["proofs"] = [proof_bytes(code, n, d, cr, i, audit_path(levels, i)).hex() for i in range(nch)]
    return exp


def gen_fingerprint() -> dict[str, Any]:
    cases = []
    for dtype, n, d, seed, why in FINGERPRINT_CASES:
        cases.append({"id": f"{dtype}-{n}x{d}-s{seed}", "why": why,
                      "input": {"dtype": dtype, "rows": n, "dim": d, "seed": seed},
                      "expected": fingerprint_case(dtype, n, d, seed)})
    return {"_comment": "matrix = make_matrix(dtype, rows, dim, seed) (see generate_vectors.py "
                        "docstring); rowprints_blake3 = BLAKE3 of the u64le rowprints; "
                        "chunk_digests_blake3 = BLAKE3 of the concatenated digests; proofs[i] = "
                        "inclusion proof bytes (§6.3) of chunk i",
            "spec": "v1 §2-§8", "cases": cases}


MERKLE_SIZES = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 33]


def gen_merkle() -> dict[str, Any]:
    cases = []
    for n in MERKLE_SIZES:
        dg = [b3(struct.pack("<Q", i)) for i in range(n)]
        levels = levels_of(dg)
        idx = list(range(n)) if n <= 9 else [0, n // 2, n - 1]
        cases.append({"id": f"n{n}", "input": {"n_leaves": n},
                      "expected": {"tree_hash": tree_hash(dg).hex(),
                                   "paths": {str(i): [s.hex() for s in audit_path(levels, i)] for i in idx}}})
    return {"_comment": "digest_i = BLAKE3(u64le(i)); tree per §6.1; paths[i] = audit path of leaf i (§6.2)",
            "spec": "v1 §6", "cases": cases}


def gen_invalid_fingerprint() -> dict[str, Any]:
    good = "a2d2b80a88efa0f056b8d0bed3104e2f5b352a0499f0f98d0a2e8973ae625736"
    cases = [
        ("empty", "", "bad-fingerprint"),
        ("no-prefix", good, "bad-fingerprint"),
        ("short", "emb1:b3:" + good[:-1], "bad-fingerprint"),
        ("long", "emb1:b3:" + good + "0", "bad-fingerprint"),
        ("uppercase-hex", "emb1:b3:" + good.upper(), "bad-fingerprint"),
        ("unknown-hash", "emb1:sha256:" + good, "bad-fingerprint"),
        ("future-major", "emb2:b3:" + good, "unsupported-version"),
        ("non-hex", "emb1:b3:" + "g" * 64, "bad-fingerprint"),
    ]
    return {"_comment": "each text must be rejected with the given error kind", "spec": "v1 §8",
            "cases": [{"id": i, "input": {"text": t}, "expected": {"error": k}} for i, t, k in cases]}


def gen_invalid_proof() -> dict[str, Any]:
    # A valid 3-chunk proof (float32, N=12, D=65536, chunk 0) to mutate, and its pieces.
    dg = [bytes(x) for x in R.chunk_digests(make_matrix("float32", 12, 65536, 7), 4)]
    good = proof_bytes(2, 12, 65536, 4, 0, audit_path(levels_of(dg), 0))

    def patch(off: int, val: bytes) -> bytes:
        return good[:off] + val + good[off + len(val):]

    cases = [
        ("truncated-header", good[:47], "truncated"),
        ("bad-magic", patch(0, b"EMBX"), "bad-magic"),
        ("future-major", patch(4, b"\x02"), "unsupported-version"),
        ("unknown-algo", patch(5, b"\x07"), "bad-proof"),
        ("reserved-nonzero", patch(7, b"\x01"), "bad-proof"),
        ("too-many-siblings", patch(40, struct.pack("<I", 49)), "bad-proof"),
        ("length-mismatch", good[:-1], "truncated"),
        ("unknown-dtype", patch(6, b"\x09"), "bad-proof"),
        ("zero-dim", patch(16, struct.pack("<Q", 0)), "bad-proof"),
        ("non-canonical-chunk-rows", patch(24, struct.pack("<Q", 8)), "bad-proof"),
        ("index-out-of-range", patch(32, struct.pack("<Q", 3)), "bad-proof"),
        ("path-too-short", patch(40, struct.pack("<I", 1))[:48 + 32], "bad-proof"),
        ("path-too-long", patch(40, struct.pack("<I", 3)) + b"\x00" * 32, "bad-proof"),
    ]
    return {"_comment": "proof bytes that verify_proof must reject with the given error kind; "
                        "all derive from the valid proof of chunk 0 of fingerprint case "
                        "float32-12x65536-s7",
            "spec": "v1 §6.3", "valid": good.hex(),
            "cases": [{"id": i, "input": {"hex": b.hex()}, "expected": {"error": k}} for i, b, k in cases]}


DELTA_LENGTHS_WORDS = [0, 1, 7, 64]


def gen_delta() -> dict[str, Any]:
    cases = []
    for isz in (1, 2, 4, 8):
        for words in DELTA_LENGTHS_WORDS:
            n = words * isz
            new, base = pattern(n, 3 * isz + words), pattern(n, 5 * isz + words + 1)
            exp = {"shuffle": R.shuffle(new, isz).tobytes().hex(),
                   "xor": R.delta_encode(new, base, isz, 2).tobytes().hex(),
                   "sub_zigzag": R.delta_encode(new, base, isz, 3).tobytes().hex()}
            cases.append({"id": f"w{isz}-n{words}",
                          "input": {"itemsize": isz, "bytes": n, "new_seed": 3 * isz + words,
                                    "base_seed": 5 * isz + words + 1},
                          "expected": exp})
    return {"_comment": "new = pattern(bytes, new_seed), base = pattern(bytes, base_seed); "
                        "shuffle = byte-plane shuffle of new; xor / sub_zigzag = "
                        "shuffle(delta(new, base)) (spec §13.3)",
            "spec": "v1 §13.3", "cases": cases}


def raw_chunk_object(rows: np.ndarray, itemsize: int) -> bytes:
    """A codec-0 (raw) chunk object, built from the spec text (§13.1-§13.2)."""
    n, rb = rows.shape
    rp = R.rowprints(rows).astype("<u8").tobytes()
    head = struct.pack("<4sBBBBII32sIIQQ", b"EMBC", 1, 0, itemsize, 0, n, rb, bytes(32), 0, 0,
                       len(rp), n * rb)
    checksum = b3(head + rp)[:8]
    return head + checksum + rp + rows.tobytes()


def planes_chunk_object(rows: np.ndarray, itemsize: int) -> bytes:
    """A codec-1 chunk object whose planes are all stored raw (deterministic: no zstd)."""
    n, rb = rows.shape
    rp = R.rowprints(rows).astype("<u8").tobytes()
    sh = R.shuffle(rows.reshape(-1), itemsize).tobytes()
    k = len(sh) // itemsize
    payload = b"".join(struct.pack("<B3xI", 0, k) for _ in range(itemsize)) + sh
    head = struct.pack("<4sBBBBII32sIIQQ", b"EMBC", 1, 1, itemsize, 0, n, rb, bytes(32), 0, 0,
                       len(rp), len(payload))
    return head + b3(head + rp)[:8] + rp + payload


def gen_invalid_chunk() -> dict[str, Any]:
    rows = make_matrix("float32", 2, 3, 2)
    good = raw_chunk_object(rows, 4)
    oid = R.blake3(rows.tobytes())

    def patch(off: int, val: bytes) -> bytes:
        return good[:off] + val + good[off + len(val):]

    def reseal(obj: bytes) -> bytes:
        """Recompute the checksum so a header change is judged by the header rules."""
        rp_len = struct.unpack_from("<Q", obj, 56)[0]
        return obj[:72] + b3(obj[:72] + obj[80:80 + rp_len])[:8] + obj[80:]

    flip_payload = bytearray(good)
    flip_payload[-1] ^= 0x01
    flip_rp = bytearray(good)
    flip_rp[80] ^= 0x01
    cases = [
        ("truncated-header", good[:79], "truncated"),
        ("bad-magic", patch(0, b"EMBX"), "bad-magic"),
        ("future-major", patch(4, b"\x02"), "unsupported-version"),
        ("unknown-codec", reseal(patch(5, b"\x09")), "bad-header"),
        ("itemsize-3", reseal(patch(6, b"\x03")), "bad-header"),
        ("zero-rows", reseal(patch(8, struct.pack("<I", 0))), "bad-header"),
        ("row-bytes-not-multiple", reseal(patch(12, struct.pack("<I", 13))), "bad-header"),
        ("full-with-base", reseal(patch(16, b"\x01")), "bad-header"),
        ("delta-without-base", reseal(patch(5, b"\x02")), "bad-header"),
        ("rowprint-length", reseal(patch(56, struct.pack("<Q", 8))), "bad-header"),
        ("object-too-short", good[:-1], "truncated"),
        ("object-too-long", good + b"\x00", "truncated"),
        ("checksum", bytes(flip_rp), "digest-mismatch"),
        ("payload-bit-flip", bytes(flip_payload), "digest-mismatch"),
        # One row of 2^24 + 1 float32 items: longer than any row can be (D <= 2^24).
        ("row-bytes-over-limit", reseal(patch(8, struct.pack("<II", 1, 4 * (2**24 + 1)))), "bad-header"),
    ]
    # A sparse patch of no rows whose base claims 2^32 - 1 rows of 12 bytes (48 GiB): refused
    # from the header, before a decoder allocates anything for the base.
    head = struct.pack("<4sBBBBII32sIIQQ", b"EMBC", 1, 4, 4, 1, 2, 12, b"\x01" * 32, 2**32 - 1, 0, 0, 0)
    cases.append(("sparse-base-over-limit", head + b3(head)[:8], "bad-header"))
    pl = planes_chunk_object(rows, 4)

    def ppatch(off: int, val: bytes) -> bytes:
        return pl[:off] + val + pl[off + len(val):]

    payload_at = 80 + 16
    cases += [
        ("plane-unknown-method", ppatch(payload_at + 8, b"\x07"), "bad-header"),
        ("plane-reserved", ppatch(payload_at + 1, b"\x01"), "bad-header"),
        ("plane-raw-length", ppatch(payload_at + 4, struct.pack("<I", 5)), "bad-header"),
        ("plane-bad-zstd", ppatch(payload_at, b"\x01"), "digest-mismatch"),
    ]
    cases.insert(0, ("valid-planes-control", pl, None))
    return {"_comment": "chunk objects to be rejected with the given error kind when read as the "
                        "object whose id is `id`; all derive from `valid`, the raw chunk object of "
                        "make_matrix('float32', 2, 3, 2), or (plane-*) from the codec-1 object of "
                        "the same rows with every plane stored raw (the first case, which is valid)",
            "spec": "v1 §13.4", "valid": good.hex(), "id": oid.hex(),
            "cases": [{"id": i, "input": {"hex": b.hex()}, "expected": {"error": k}} for i, b, k in cases]}


def generate() -> dict[str, Any]:
    """All vector files: relative path -> JSON object."""
    return {
        "rowprint.json": gen_rowprint(),
        "fingerprint.json": gen_fingerprint(),
        "merkle.json": gen_merkle(),
        "delta.json": gen_delta(),
        "invalid/chunk.json": gen_invalid_chunk(),
        "invalid/fingerprint.json": gen_invalid_fingerprint(),
        "invalid/proof.json": gen_invalid_proof(),
    }


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=1, sort_keys=True) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="compare instead of writing")
    args = ap.parse_args()
    stale = []
    for rel, obj in generate().items():
        path = VECTOR_DIR / rel
        text = dumps(obj)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(rel)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print("stale vectors: " + ", ".join(stale) + "; regenerate with "
              "`python spec/tools/generate_vectors.py`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
