"""spec §21's worked examples are what the implementation produces, and its limits are the
implementation's constants."""

from __future__ import annotations

import re

import blake3

from embfmt.history import lineage
from embfmt.objects import stamp
from embfmt.objects.table_version import canonical_json

from ..conftest import SPEC_DIR

SPEC = (SPEC_DIR / "embfmt-v1.md").read_text(encoding="utf-8")
S21 = SPEC[SPEC.index("## 21. Stamps and the usage log"):]


def test_stamp_example() -> None:
    commit = blake3.blake3(b"example commit").hexdigest()
    tv = blake3.blake3(b"example table version").hexdigest()
    s = stamp.make_stamp("item_emb", commit, tv)
    assert f"\n{s}\n" in S21 and f"`{commit}`" in S21 and f"`{tv}`" in S21
    assert f"({len(s)} characters)" in S21
    assert stamp.parse_stamp(s) == ("item_emb", commit, tv[:32])


def test_usage_record_example() -> None:
    commit = blake3.blake3(b"example commit").hexdigest()
    tv = blake3.blake3(b"example table version").hexdigest()
    rec = {"author": "alice@host", "consumer": "ranker-v7", "context": {"request": "r-1"},
           "format": 1, "prev": lineage.GENESIS, "seq": 0,
           "stamp": stamp.make_stamp("item_emb", commit, tv), "time": "2026-11-26T12:00:00.000000Z"}
    line = canonical_json(rec)
    assert f"\n{line.decode()}\n" in S21 and f"({len(line)} bytes)" in S21
    rid = blake3.blake3(line).hexdigest()
    assert f"Its id is `{rid}`" in S21
    head = canonical_json({"format": 1, "head": rid, "length": len(line) + 1, "records": 1})
    assert f"\n{head.decode()}\n" in S21


def test_limits_match_the_constants() -> None:
    assert stamp.MAX_STAMP_CHARS == 314 and "≤ 314 characters" in S21
    assert stamp.STAMP_TV_HEX * 4 == 128 and stamp.STAMP_CHECK_HEX * 4 == 32
    assert lineage.MAX_RECORD_BYTES == 2 ** 20 and "≤ 2^20 bytes" in S21
    assert lineage.MAX_CONSUMER_BYTES == 1024 and "1 to 1,024 bytes" in S21
    assert lineage.MAX_CONTEXT_BYTES == 65536 and "≤ 65,536 bytes" in S21
    assert lineage.MAX_PROBLEMS == 100 and re.search(r"verify \| 100,", S21)
