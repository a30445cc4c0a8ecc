"""Hostile repository metadata (commit, table-version, key and change objects, the usage log):
every parse ends in a typed error, never a RecursionError, ValueError, OverflowError or an
allocation sized by a header the object cannot back."""

from __future__ import annotations

import json
import resource
import struct

import numpy as np
import pytest
import zstandard

import embfmt
from embfmt import _layout as L
from embfmt.objects.change import ChangeRecord
from embfmt.objects.commit import Commit
from embfmt.canonical.dtype import dtype_from_name
from embfmt.errors import FormatError
from embfmt.objects.keys import decode_keys
from embfmt.objects.table_version import TableVersion

DEEP = b"[" * 100_000 + b"]" * 100_000      # past the JSON parser's recursion limit
HUGE_INT = b'{"a":' + b"1" * 5000 + b"}"     # past Python's 4300-digit int conversion limit


def _table_version_bytes(meta: bytes) -> bytes:
    tv = TableVersion(dtype_from_name("float32"), 2, 2, (b"\0" * 32,), {})
    b = tv.to_bytes()
    hs = L.TABLE_HEADER_STRUCT.size
    fields = list(L.TABLE_HEADER_STRUCT.unpack_from(b))
    fields[9] = len(meta)  # meta_bytes
    return L.TABLE_HEADER_STRUCT.pack(*fields) + b[hs:hs + 32] + meta


@pytest.mark.parametrize("meta", [DEEP, HUGE_INT, b'{"keys":"zz"}', b'{"keys":5}', b'{"identity":[1]}'],
                         ids=["deep", "huge-int", "keys-not-hex", "keys-int", "identity-list"])
def test_table_version_metadata(meta: bytes) -> None:
    with pytest.raises(FormatError) as e:
        TableVersion.from_bytes(_table_version_bytes(meta))
    assert e.value.kind.value == "bad-object"


@pytest.mark.parametrize("body", [DEEP, b'{"format":' + b"1" * 5000 + b"}"], ids=["deep", "huge-int"])
def test_commit_json(body: bytes) -> None:
    with pytest.raises(FormatError) as e:
        Commit.from_bytes(L.COMMIT_MAGIC + body)
    assert e.value.kind.value == "bad-object"


def _frame_claiming(size: int) -> bytes:
    """A zstd frame header stating ``size`` content bytes, then one 4-byte raw block."""
    header = b"\x28\xb5\x2f\xfd" + bytes([0b11100000]) + struct.pack("<Q", size)  # FCS 8 B, single segment
    return header + (1 | (4 << 3)).to_bytes(3, "little") + b"abcd"  # last block, raw, 4 bytes


def _no_size_frame() -> bytes:
    return zstandard.ZstdCompressor(write_content_size=False).compress(b"\0" * 16)


@pytest.mark.parametrize("kind, n, raw_len, frame", [
    (L.KEYS_UTF8, 1 << 20, 8 * ((1 << 20) + 1) + (40 << 30), _no_size_frame()),
    (L.KEYS_INT64, 1 << 30, 8 << 30, _frame_claiming(8 << 30)),
])
def test_key_object_claiming_more_than_its_frame_can_hold(kind: int, n: int, raw_len: int, frame: bytes) -> None:
    obj = L.KEYS_HEADER_STRUCT.pack(L.KEYS_MAGIC, 1, kind, 0, n, raw_len, len(frame)) + frame
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(FormatError, match="cannot come from a"):
        decode_keys(obj)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 64 << 10  # KiB


@pytest.mark.parametrize("n", [1 << 30, 1 << 60])
def test_change_record_claiming_more_than_its_frame_can_hold(n: int) -> None:
    z = _no_size_frame()
    obj = L.CHANGE_HEADER_STRUCT.pack(L.CHANGE_MAGIC, 1, 1, 0, n, 1 << 63, 1 << 63, b"\0" * 32,
                                      b"\0" * 32, len(z)) + z
    with pytest.raises(FormatError) as e:
        ChangeRecord.from_bytes(obj)
    assert e.value.kind.value == "bad-object"


@pytest.mark.parametrize("head", [b"[" * 4000, b'{"records":' + b"9" * 5000 + b"}"], ids=["deep", "huge-int"])
def test_usage_log_head_that_is_not_json(tmp_path, head: bytes) -> None:
    repo = embfmt.Repo.init(tmp_path)
    repo.commit({"t": np.zeros((2, 2), np.float32)})
    repo.record_use(repo.stamp("t"), consumer="m")
    (tmp_path / "lineage" / "uses.head").write_bytes(head)
    r = embfmt.Repo(tmp_path)
    with pytest.raises(embfmt.EmbfmtError):
        r.uses()
    rep = r.verify()
    assert not rep.ok and any("uses" in e["object"] for e in rep.errors), rep.errors


def test_usage_log_line_with_a_huge_number(tmp_path) -> None:
    repo = embfmt.Repo.init(tmp_path)
    repo.commit({"t": np.zeros((2, 2), np.float32)})
    repo.record_use(repo.stamp("t"), consumer="m")
    with open(tmp_path / "lineage" / "uses.log", "ab") as f:
        f.write(b'{"a":' + b"1" * 5000 + b"}\n")
    rep = embfmt.Repo(tmp_path).verify()
    assert not rep.ok and json.dumps(rep.errors)  # reported, not raised


def _keys_object(frame: bytes, n: int = 4) -> bytes:
    return L.KEYS_HEADER_STRUCT.pack(L.KEYS_MAGIC, 1, L.KEYS_INT64, 0, n, 8 * n, len(frame)) + frame


def _change_object(frame: bytes, n: int = 1) -> bytes:
    return L.CHANGE_HEADER_STRUCT.pack(L.CHANGE_MAGIC, 1, 1, 0, n, 8, 8, b"\0" * 32, b"\0" * 32,
                                       len(frame)) + frame


@pytest.mark.parametrize("build, claim", [(_keys_object, 1 << 30), (_keys_object, 1 << 40),
                                          (_change_object, 1 << 30), (_change_object, 1 << 40)],
                         ids=["keys-1GiB", "keys-1TiB", "change-1GiB", "change-1TiB"])
def test_frame_stating_more_than_its_field_is_refused_before_allocating(build, claim: int) -> None:
    """A header within every bound (32 or 40 raw bytes), a frame that states a content size far
    above it: python-zstandard sized its output by the frame's statement (1 GiB allocated,
    MemoryError for 1 TiB) before it was refused; now refused before decompressing."""
    import tracemalloc

    obj = build(_frame_claiming(claim))
    tracemalloc.start()
    try:
        with pytest.raises(embfmt.EmbfmtError, match="states"):
            (decode_keys if build is _keys_object else ChangeRecord.from_bytes)(obj)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, peak
