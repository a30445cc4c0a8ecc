"""A second reader written from spec/embfmt-v1.md alone, checked against the golden repository.

It imports nothing from embfmt: only struct, json, the official blake3 and xxhash packages and
zstandard. If the spec text and the implementation drift apart, this test fails.
"""

from __future__ import annotations

import json
import struct

import blake3
import pytest
import zstandard

from ..conftest import SPEC_DIR

xxhash = pytest.importorskip("xxhash")

GOLDEN = SPEC_DIR / "vectors" / "v1" / "golden" / "repo-1"
ITEMSIZE = {1: 8, 2: 4, 3: 2, 4: 2, 5: 1, 6: 1}  # §3


def obj(oid: str) -> bytes:  # §11
    return (GOLDEN / "objects" / oid[:2] / oid[2:]).read_bytes()


def unshuffle(b: bytes, w: int) -> bytes:  # §13.3
    n = len(b) // w
    out = bytearray(len(b))
    for p in range(w):
        out[p::w] = b[p * n:(p + 1) * n]
    return bytes(out)


def words(b: bytes, w: int) -> list[int]:
    return [int.from_bytes(b[i:i + w], "little") for i in range(0, len(b), w)]


def unwords(v: list[int], w: int) -> bytes:
    return b"".join(x.to_bytes(w, "little") for x in v)


def read_chunk(oid: str) -> tuple[bytes, int]:
    """Decoded bytes and depth of a chunk object (§13)."""
    buf = obj(oid)
    (magic, major, codec, w, depth, n, rb, base, base_rows, n_patch, rp_len, pl_len,
     checksum) = struct.unpack_from("<4sBBBBII32sIIQQQ", buf)
    assert magic == b"EMBC" and major == 1
    assert len(buf) == 80 + rp_len + pl_len
    assert int.from_bytes(blake3.blake3(buf[:72] + buf[80:80 + rp_len]).digest()[:8], "little") == checksum
    payload = buf[80 + rp_len:]
    size = n * rb

    def planes(m: bytes, k: int) -> bytes:  # §13.3 byte-plane container; k = total bytes
        n = k // w
        table = [struct.unpack_from("<B3xI", m, 8 * p) for p in range(w)]
        pos, out = 8 * w, b""
        for method, length in table:
            data = m[pos:pos + length]
            pos += length
            if method == 1:
                data = zstandard.ZstdDecompressor().decompress(data, max_output_size=n)
            assert method in (0, 1) and len(data) == n
            out += data
        assert pos == len(m)
        return out

    if codec == 0:
        data = payload
    elif codec == 1:
        data = unshuffle(planes(payload, size), w)
    elif codec in (2, 3):
        basedata, bdepth = read_chunk(base.hex())
        assert bdepth == depth - 1 and base_rows == n
        d = words(unshuffle(planes(payload, size), w), w)
        b = words(basedata, w)
        bits = 8 * w
        mask = (1 << bits) - 1
        if codec == 2:
            data = unwords([x ^ y for x, y in zip(d, b)], w)
        else:
            s = [(x >> 1) ^ (-(x & 1) & mask) for x in d]
            data = unwords([(y + x) & mask for x, y in zip(s, b)], w)
    else:
        assert codec == 4
        basedata, bdepth = read_chunk(base.hex())
        assert bdepth == depth - 1
        idx = list(struct.unpack_from(f"<{n_patch}I", buf, 80))
        rows = [basedata[i * rb:(i + 1) * rb] for i in range(min(n, base_rows))]
        rows += [b""] * (n - len(rows))
        patch = unshuffle(planes(payload, n_patch * rb), w) if n_patch else b""
        for k, i in enumerate(idx):
            rows[i] = patch[k * rb:(k + 1) * rb]
        data = b"".join(rows)
    assert blake3.blake3(data).hexdigest() == oid, "§13.4 rule 9"
    if codec != 4:  # rowprints of full and dense chunks are stored for every row (§13.2)
        rps = struct.unpack_from(f"<{n}Q", buf, 80)
        assert list(rps) == [xxhash.xxh3_64_intdigest(data[i * rb:(i + 1) * rb]) for i in range(n)]
    return data, depth


def root_of(code: int, n: int, d: int, cr: int, digests: list[bytes]) -> bytes:  # §6-§7
    def h(m: bytes) -> bytes:
        return blake3.blake3(m).digest()

    if not digests:
        th = h(b"\x02")
    else:
        level = [h(b"\x00" + x) for x in digests]
        while len(level) > 1:
            nxt = [h(b"\x01" + level[j] + level[j + 1]) for j in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                nxt.append(level[-1])
            level = nxt
        th = level[0]
    desc = struct.pack("<6sBBBBHIQQQQ32s", b"EMBFMT", 1, 0, code, 1, 0, 0, n, d, cr,
                       len(digests), th)
    return h(b"\x03" + desc)


def test_independent_reader_matches_golden_manifest() -> None:
    manifest = json.loads((GOLDEN.parent / "repo-1.json").read_text())
    head = (GOLDEN / "HEAD").read_text()
    assert head.startswith("ref: refs/heads/")
    cid = (GOLDEN / "refs" / "heads" / head[len("ref: refs/heads/"):].strip()).read_text().strip()
    seen = []
    while cid:
        buf = obj(cid)
        assert blake3.blake3(buf).hexdigest() == cid and buf.startswith(b"EMBCOMMIT1\n")
        commit = json.loads(buf[11:].decode())
        rec = next(r for r in manifest["commits"] if r["commit"] == cid)
        for table, tid in commit["tables"].items():
            tvb = obj(tid)
            assert blake3.blake3(tvb).hexdigest() == tid
            magic, major, code, _, n, d, cr, nch, root, mlen, _ = struct.unpack_from("<4sBBHQQQQ32sII", tvb)
            assert magic == b"EMBT" and major == 1
            digests = [tvb[80 + 32 * i: 112 + 32 * i] for i in range(nch)]
            assert root_of(code, n, d, cr, digests) == root
            data = b"".join(read_chunk(x.hex())[0] for x in digests)
            assert len(data) == n * d * ITEMSIZE[code]
            if table in rec["tables"]:
                assert "emb1:b3:" + root.hex() == rec["tables"][table]["fingerprint"]
        seen.append(cid)
        cid = commit["parents"][0] if commit["parents"] else ""
    assert len(seen) == len(manifest["commits"])
