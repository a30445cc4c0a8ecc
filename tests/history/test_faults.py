"""Corruption, truncation, deletion and garbage refs: every case is reported by verify (naming
the object) and raised by reads with a stable kind, and a failed commit changes nothing."""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import embfmt
from embfmt import _layout as L
from embfmt.objects.chunk import header_checksum
from embfmt.errors import (ConflictError, EmbfmtError, ErrorKind, FormatError, InputError,
                           IntegrityError, NotFoundError)
from embfmt.repo import Repo

from .conftest import (DTYPES, WIDE_DIM, assert_bits_equal, hash_tree, object_kind, random_bits)

EMBFMT_SRC = Path(embfmt.__file__).resolve().parent
KERNELS_SRC = EMBFMT_SRC.parent / "kernels"

# Typed error classes and the kinds each may carry when stored bytes are damaged.
DAMAGE_KINDS = {
    IntegrityError: {ErrorKind.DIGEST_MISMATCH},
    FormatError: {ErrorKind.BAD_MAGIC, ErrorKind.UNSUPPORTED_VERSION, ErrorKind.BAD_HEADER,
                  ErrorKind.TRUNCATED, ErrorKind.BAD_OBJECT},
    NotFoundError: {ErrorKind.MISSING_OBJECT},
}
ALL_DAMAGE_KINDS = {k.value for ks in DAMAGE_KINDS.values() for k in ks}


def _assert_damage_error(exc: BaseException) -> None:
    assert type(exc) in DAMAGE_KINDS, f"untyped error {type(exc).__name__}: {exc}"
    assert exc.kind in DAMAGE_KINDS[type(exc)], (type(exc).__name__, exc.kind)


# --- the template repository -----------------------------------------------------------------
D = WIDE_DIM["float32"]  # 256 KiB rows: chunk_rows 4


@functools.lru_cache(maxsize=None)
def _emb_cached(version: int) -> np.ndarray:
    # 5 rows: chunk 0 (4 rows), chunk 1 (1 row)
    x = np.random.default_rng(100).standard_normal((5, D)).astype(np.float32)  # compressible
    if version >= 2:
        x[1] = np.random.default_rng(101).standard_normal(D).astype(np.float32)
    if version >= 3:  # every row changes: a commit of it reads every parent chunk as a base
        x = x + np.float32(0.5)
    x.flags.writeable = False
    return x


def _emb(version: int) -> np.ndarray:
    return _emb_cached(version)


NAMES = random_bits(np.random.default_rng(102), 20, 8, DTYPES["float16"])
NAME_KEYS = [f"k{i}" for i in range(20)]
EMB_KEYS = np.arange(5, dtype=np.int64) * 1000 - 3


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> dict:
    path = tmp_path_factory.mktemp("faults") / "tmpl"
    with Repo.init(path) as r:
        c1 = r.commit({"emb": _emb(1), "names": NAMES}, keys={"emb": EMB_KEYS, "names": NAME_KEYS},
                      identity={"emb": {"model": "m"}}, message="v1")
        r.tag("v1")
        c2 = r.commit({"emb": _emb(2)}, keys={"emb": "carry"}, message="v2")
        tv1, tv2 = r.table_version("emb", c1), r.table_version("emb", c2)
        names_tv = r.table_version("names", c1)
        heads = {i: r.reader.header(d) for i, d in enumerate(tv2.digests)}
        assert heads[0].codec == L.CODEC_SPARSE and len(heads) == 2
        assert heads[1].codec == L.CODEC_SHUFFLE_PLANES and tv1.digests[1] == tv2.digests[1]
        assert r.reader.header(names_tv.digests[0]).codec == L.CODEC_RAW
        roles = {
            "chunk_delta": tv2.digests[0].hex(),
            "chunk_full": tv2.digests[1].hex(),
            "chunk_base": tv1.digests[0].hex(),
            "chunk_raw": names_tv.digests[0].hex(),
            "table_v2": r.log()[0].tables["emb"],
            "table_names": r.log()[0].tables["names"],
            "keys_int": tv2.keys_id.hex(),
            "keys_str": names_tv.keys_id.hex(),
            "commit_head": c2,
            "commit_root": c1,
        }
        assert r.verify().ok
    return {"path": path, "roles": roles, "c1": c1, "c2": c2}


def _copy(template: dict, tmp_path: Path) -> Path:
    dst = tmp_path / "repo"
    shutil.copytree(template["path"], dst)
    return dst


def _obj_path(repo_path: Path, oid: str) -> Path:
    return repo_path / "objects" / oid[:2] / oid[2:]


def _reads_that_must_fail(role: str):
    """Calls (on a fresh Repo) that touch the damaged object."""
    if role.startswith("chunk") and role != "chunk_raw":
        return [lambda r: r.read("emb"), lambda r: r.open("emb")[0:5]]
    if role in ("chunk_raw",):
        return [lambda r: r.read("names"), lambda r: r.open("names").get("k3")]
    if role == "table_v2":
        return [lambda r: r.read("emb"), lambda r: r.open("emb"), lambda r: r.show()]
    if role == "table_names":
        return [lambda r: r.read("names"), lambda r: r.show("v1")]
    if role == "keys_int":
        return [lambda r: r.keys("emb"), lambda r: r.open("emb").get(1997)]
    if role == "keys_str":
        return [lambda r: r.keys("names"), lambda r: r.open("names").lookup(["k1"])]
    if role == "commit_head":
        return [lambda r: r.read("emb"), lambda r: r.log(), lambda r: r.resolve("HEAD")]
    if role == "commit_root":
        return [lambda r: r.read("emb", "v1"), lambda r: r.log(), lambda r: r.resolve("HEAD~1")]
    raise AssertionError(role)


# Roles whose damage a commit of a new "emb" version must run into (it reads them).
COMMIT_READS = {"chunk_delta", "chunk_full", "chunk_base", "table_v2", "commit_head",
                "keys_int"}  # keys="carry": the new version references the parent's key object
# ... and of those, the ones found before any object is written.
FOUND_BEFORE_WRITING = {"table_v2", "commit_head", "keys_int"}


def _check_damaged(path: Path, role: str, oid: str, template: dict) -> None:
    before = hash_tree(path)
    with Repo(path) as r:
        rep = r.verify()
    assert not rep.ok
    named = {e["object"] for e in rep.errors}
    assert oid in named, (oid, rep.errors)
    assert {e["kind"] for e in rep.errors} <= ALL_DAMAGE_KINDS, rep.errors
    for call in _reads_that_must_fail(role):
        with Repo(path) as r, pytest.raises(EmbfmtError) as e:
            call(r)
        _assert_damage_error(e.value)
    # reads of untouched data still work
    if role in ("chunk_raw", "table_names", "keys_str", "keys_int"):
        with Repo(path) as r:
            assert_bits_equal(r.read("emb"), _emb(2))
    if role.startswith("chunk") and role != "chunk_raw" or role in ("table_v2", "keys_int"):
        with Repo(path) as r:
            assert_bits_equal(r.read("names"), NAMES)
    assert hash_tree(path) == before  # verify and reads never write

    # A commit that must read the damaged object fails with a typed error and changes no
    # existing file and no ref; only objects that no ref reaches may have been added.
    with Repo(path) as r:
        try:
            r.commit({"emb": _emb(3)}, keys={"emb": "carry"}, message="after damage")
            committed = True
        except EmbfmtError as e:
            committed = False
            _assert_damage_error(e)
    after = hash_tree(path)
    if role in COMMIT_READS:
        assert not committed, role
        if role in FOUND_BEFORE_WRITING:
            assert after == before
        else:
            assert {k: v for k, v in after.items() if k in before} == before
            for k in set(after) - set(before):
                assert k.startswith("objects" + os.sep) and object_kind(str(path / k)) == "chunk"
    else:
        assert committed
        with Repo(path) as r:
            assert_bits_equal(r.read("emb"), _emb(3))
            assert not r.verify().ok  # the damage is still reported, not masked


ROLES = ["chunk_delta", "chunk_full", "chunk_base", "chunk_raw", "table_v2", "table_names",
         "keys_int", "keys_str", "commit_head", "commit_root"]

CHUNK_OFFSETS = {  # header fields, the rowprint section, the payload
    "magic": 0, "major": 4, "codec": 5, "itemsize": 6, "depth": 7, "n_rows": 8, "row_bytes": 12,
    "base": 16, "base_end": 47, "base_rows": 48, "n_patch": 52, "rp_bytes": 56, "payload_bytes": 64,
    "checksum": 72, "checksum_end": 79, "rp_first": "rp0", "rp_last": "rp-1", "payload_first": "p0",
    "payload_mid": "pmid", "payload_last": -1,
}


def _chunk_offset(buf: bytes, where) -> int:
    rp_bytes = int.from_bytes(buf[56:64], "little")
    if where == "rp0":
        return 80
    if where == "rp-1":
        return 80 + rp_bytes - 1
    if where == "p0":
        return 80 + rp_bytes
    if where == "pmid":
        return 80 + rp_bytes + (len(buf) - 80 - rp_bytes) // 2
    return where % len(buf)


FLIPS = [(f, 0x01) for f in CHUNK_OFFSETS] + [(f, 0x80) for f in ("major", "codec", "n_rows",
                                                                   "rp_first", "payload_mid")]


@pytest.mark.parametrize("field, mask", FLIPS)
@pytest.mark.parametrize("role", ["chunk_delta", "chunk_full", "chunk_base", "chunk_raw"])
def test_chunk_byte_flip(template: dict, tmp_path: Path, role: str, field: str, mask: int) -> None:
    path = _copy(template, tmp_path)
    oid = template["roles"][role]
    p = _obj_path(path, oid)
    buf = bytearray(p.read_bytes())
    off = _chunk_offset(bytes(buf), CHUNK_OFFSETS[field])
    assert 0 <= off < len(buf)
    buf[off] ^= mask
    p.write_bytes(bytes(buf))
    _check_damaged(path, role, oid, template)


@pytest.mark.parametrize("where", [0, 4, 5, 8, 16, 24, 32, 40, 72, 76, 80, 111, -1])
@pytest.mark.parametrize("role", ["table_v2", "table_names"])
def test_table_version_byte_flip(template: dict, tmp_path: Path, role: str, where: int) -> None:
    path = _copy(template, tmp_path)
    oid = template["roles"][role]
    p = _obj_path(path, oid)
    buf = bytearray(p.read_bytes())
    buf[where] ^= 0x01
    p.write_bytes(bytes(buf))
    _check_damaged(path, role, oid, template)


@pytest.mark.parametrize("where", [0, 4, 5, 8, 16, 24, 32, -1])
@pytest.mark.parametrize("role", ["keys_int", "keys_str"])
def test_key_object_byte_flip(template: dict, tmp_path: Path, role: str, where: int) -> None:
    path = _copy(template, tmp_path)
    oid = template["roles"][role]
    p = _obj_path(path, oid)
    buf = bytearray(p.read_bytes())
    buf[where] ^= 0x01
    p.write_bytes(bytes(buf))
    _check_damaged(path, role, oid, template)


@pytest.mark.parametrize("where", [0, 10, 11, "tables", "parents", "mid", -1])
@pytest.mark.parametrize("role", ["commit_head", "commit_root"])
def test_commit_byte_flip(template: dict, tmp_path: Path, role: str, where) -> None:
    path = _copy(template, tmp_path)
    oid = template["roles"][role]
    p = _obj_path(path, oid)
    buf = bytearray(p.read_bytes())
    if isinstance(where, str):
        off = len(buf) // 2 if where == "mid" else buf.index(f'"{where}"'.encode()) + len(where) + 6
    else:
        off = where % len(buf)
    buf[off] ^= 0x01
    p.write_bytes(bytes(buf))
    _check_damaged(path, role, oid, template)


@pytest.mark.parametrize("cut", ["empty", "half", "minus1", "header_only", "plus1"])
@pytest.mark.parametrize("role", ROLES)
def test_truncated_or_extended_object(template: dict, tmp_path: Path, role: str, cut: str) -> None:
    path = _copy(template, tmp_path)
    oid = template["roles"][role]
    p = _obj_path(path, oid)
    buf = p.read_bytes()
    new = {"empty": b"", "half": buf[: len(buf) // 2], "minus1": buf[:-1],
           "header_only": buf[:min(len(buf) - 1, 40)], "plus1": buf + b"\x00"}[cut]
    p.write_bytes(new)
    _check_damaged(path, role, oid, template)


@pytest.mark.parametrize("role", ROLES)
def test_deleted_object(template: dict, tmp_path: Path, role: str) -> None:
    path = _copy(template, tmp_path)
    oid = template["roles"][role]
    os.unlink(_obj_path(path, oid))
    _check_damaged(path, role, oid, template)
    with Repo(path) as r:
        kinds = {e["kind"] for e in r.verify().errors if e["object"] == oid}
    assert kinds == {"missing-object"}


def test_swapped_objects(template: dict, tmp_path: Path) -> None:
    """A well-formed object stored under another object's id is caught by its id check."""
    path = _copy(template, tmp_path)
    roles = template["roles"]
    a, b = _obj_path(path, roles["chunk_full"]), _obj_path(path, roles["chunk_raw"])
    a.write_bytes(b.read_bytes())
    _check_damaged(path, "chunk_full", roles["chunk_full"], template)


# --- versions the reader does not know ----------------------------------------------------------
def test_unknown_repository_format_version(template: dict, tmp_path: Path) -> None:
    path = _copy(template, tmp_path)
    marker = path / L.REPO_MARKER
    for version in (2, 0, "1", None):
        marker.write_text(json.dumps({"format": L.REPO_FORMAT_NAME, "version": version}))
        with pytest.raises(FormatError) as e:
            Repo(path)
        assert e.value.kind == ErrorKind.UNSUPPORTED_VERSION
    marker.write_text("{not json")
    with pytest.raises(FormatError) as e:
        Repo(path)
    assert e.value.kind == ErrorKind.BAD_FILE
    marker.unlink()
    with pytest.raises(NotFoundError) as e:
        Repo(path)
    assert e.value.kind == ErrorKind.NOT_A_REPOSITORY


@pytest.mark.parametrize("role", ["chunk_full", "chunk_delta", "chunk_base"])
def test_chunk_major_version_2(template: dict, tmp_path: Path, role: str) -> None:
    path = _copy(template, tmp_path)
    oid = template["roles"][role]
    p = _obj_path(path, oid)
    buf = bytearray(p.read_bytes())
    assert buf[4] == L.FORMAT_MAJOR
    buf[4] = 2
    rp_bytes = int.from_bytes(buf[56:64], "little")
    cs = header_checksum(bytes(buf[:72]), bytes(buf[80:80 + rp_bytes]))  # a consistent v2 header
    buf[72:80] = cs.to_bytes(8, "little")
    p.write_bytes(bytes(buf))
    with Repo(path) as r:
        with pytest.raises(FormatError) as e:
            r.read("emb")
        assert e.value.kind == ErrorKind.UNSUPPORTED_VERSION
        rep = r.verify()
    assert {(e["object"], e["kind"]) for e in rep.errors} >= {(oid, "unsupported-version")}


# --- refs ----------------------------------------------------------------------------------
BAD_NAMES = ["", "..", "a..b", "/main", "main/", "a//b", "x.lock", "a/b.lock", "a/b.lock/c",
             "x" * 201, "a b", "-x", ".x", "a\x00b", "ü", "a~1", "a^", "a:b", "a\\b", "@{x}"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_ref_names(template: dict, tmp_path: Path, name: str) -> None:
    path = _copy(template, tmp_path)
    before = hash_tree(path)
    x = np.ones((2, 2), np.float32)
    with Repo(path) as r:
        calls = [lambda: r.branch(name), lambda: r.tag(name), lambda: r.reset(name, "HEAD"),
                 lambda: r.checkout_branch(name), lambda: r.commit({"t": x}, branch=name),
                 lambda: r.commit({name: x}), lambda: r.commit({"t": x}, keys={name: [1, 2]}),
                 lambda: Repo.init(tmp_path / "other", default_branch=name)]
        for call in calls:
            with pytest.raises(InputError) as e:
                call()
            assert e.value.kind == ErrorKind.BAD_REF_NAME
    assert hash_tree(path) == before
    assert not (tmp_path / "other").exists() or not os.listdir(tmp_path / "other")


def test_good_ref_names(template: dict, tmp_path: Path) -> None:
    path = _copy(template, tmp_path)
    with Repo(path) as r:
        for name in ["x" * 200, "feature/x-1.2_b", "_a/B/c9", "v1.0"]:
            r.branch(name)
            assert r.resolve(name) == template["c2"]
        r.tag("release/2024-01")
        assert r.tags()["release/2024-01"] == template["c2"]


@pytest.mark.parametrize("first, second", [("a", "a/b"), ("x/y", "x"), ("p/q/r", "p/q")])
def test_ref_name_prefix_clash_is_a_typed_conflict(template: dict, tmp_path: Path, first: str,
                                                   second: str) -> None:
    path = _copy(template, tmp_path)
    with Repo(path) as r:
        r.branch(first)
        r.tag(first)
        before = hash_tree(path)
        for call in (lambda: r.branch(second), lambda: r.tag(second),
                     lambda: r.commit({"t": np.ones((1, 1), np.int8)}, branch=second)):
            with pytest.raises(ConflictError) as e:
                call()
            assert e.value.kind == ErrorKind.REF_EXISTS
        assert {k: v for k, v in hash_tree(path).items() if not k.startswith("objects")} == \
            {k: v for k, v in before.items() if not k.startswith("objects")}
        assert r.branches()[first] == template["c2"] and second not in r.branches()
        assert r.tags()[first] == template["c2"] and second not in r.tags()
        assert r.verify().ok


@pytest.mark.parametrize("content", [b"0123456789", b"", b"0123456789" * 7, b"G" * 64 + b"\n",
                                     b"A" * 64 + b"\n", b"ref: refs/heads/x\n"])
def test_half_written_branch_ref(template: dict, tmp_path: Path, content: bytes) -> None:
    path = _copy(template, tmp_path)
    good = (path / "refs/heads/main").read_bytes()
    assert good == template["c2"].encode() + b"\n"
    (path / "refs/heads/main").write_bytes(good[:10] if content == b"0123456789" else content)
    before = hash_tree(path)
    with Repo(path) as r:
        rep = r.verify()
        assert not rep.ok
        errs = [e for e in rep.errors if e["object"] == "refs/heads/main"]
        assert errs and errs[0]["kind"] == "bad-ref", rep.errors
        assert rep.commits >= 1  # the other refs (tag v1) were still walked
        for call in [lambda: r.read("emb"), lambda: r.log(), lambda: r.resolve("main"),
                     lambda: r.commit({"emb": _emb(3)}, keys={"emb": "carry"}), lambda: r.branch("b2"),
                     lambda: r.gc(grace_seconds=0)]:
            with pytest.raises(FormatError) as e:
                call()
            assert e.value.kind == ErrorKind.BAD_REF
        assert_bits_equal(r.read("emb", "v1"), _emb(1))  # other refs still work
    assert hash_tree(path) == before  # nothing was written, nothing was collected


def test_garbage_tag_ref(template: dict, tmp_path: Path) -> None:
    path = _copy(template, tmp_path)
    (path / "refs/tags/v1").write_bytes(b"deadbeef\n")
    with Repo(path) as r:
        rep = r.verify()
        assert [e["kind"] for e in rep.errors if e["object"] == "refs/tags/v1"] == ["bad-ref"]
        with pytest.raises(FormatError) as e:
            r.read("emb", "v1")
        assert e.value.kind == ErrorKind.BAD_REF
        assert_bits_equal(r.read("emb"), _emb(2))


def test_ref_to_missing_commit(template: dict, tmp_path: Path) -> None:
    path = _copy(template, tmp_path)
    ghost = "ab" * 32
    (path / "refs/heads/ghost").write_bytes(ghost.encode() + b"\n")
    with Repo(path) as r:
        rep = r.verify()
        assert {(e["object"], e["kind"]) for e in rep.errors} == {(ghost, "missing-object")}
        with pytest.raises(NotFoundError) as e:
            r.read("emb", "ghost")
        assert e.value.kind == ErrorKind.MISSING_OBJECT
        before = hash_tree(path)
        with pytest.raises(NotFoundError):
            r.gc(grace_seconds=0)  # cannot know what is live: removes nothing
        assert hash_tree(path) == before


def test_corrupt_head_file(template: dict, tmp_path: Path) -> None:
    path = _copy(template, tmp_path)
    (path / "HEAD").write_bytes(b"ref: refs/heads/ma")
    with Repo(path) as r:
        with pytest.raises(FormatError) as e:
            r.read("emb")
        assert e.value.kind == ErrorKind.BAD_REF
        assert_bits_equal(r.read("emb", "main"), _emb(2))
        rep = r.verify()  # the whole-repository check reports it too; the history is fine
        assert not rep.ok and rep.errors == [{"object": "HEAD", "kind": "bad-ref", "error": rep.errors[0]["error"]}]
        assert "HEAD is corrupt" in rep.errors[0]["error"]


# --- no pickle anywhere ----------------------------------------------------------------------
def test_no_pickle_in_repository_files(template: dict) -> None:
    n = 0
    for dirpath, _dirs, files in os.walk(template["path"]):
        for f in files:
            with open(os.path.join(dirpath, f), "rb") as fh:
                head = fh.read(2)
            assert not head.startswith(b"\x80"), os.path.join(dirpath, f)
            n += 1
    assert n >= 10


def test_code_base_never_imports_pickle() -> None:
    pat = re.compile(r"\b(c?pickle|marshal|shelve|dill|cloudpickle|joblib)\b|allow_pickle\s*=\s*True")
    files = list(EMBFMT_SRC.rglob("*.py")) + list(KERNELS_SRC.rglob("*.py"))
    assert len(files) > 10
    hits = [f"{f}:{i}" for f in files for i, line in enumerate(f.read_text().splitlines(), 1)
            if pat.search(line)]
    assert hits == []
