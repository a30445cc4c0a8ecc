"""Refs, logs and the repository marker on object storage by conditional writes
(spec/objstore-v1.md §4): on the real S3 server process and on memory://, including processes
committing to one branch at once: each commit lands or gets ConflictError, none is lost."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import blake3
import pytest

pytest.importorskip("obstore", reason="object storage needs obstore: pip install -e '.[test]'")

from embfmt.errors import ConflictError, ErrorKind, FormatError, StorageError  # noqa: E402
from embfmt.store._objrefs import TOMBSTONE, ObjectRefs  # noqa: E402
from embfmt.store._objstore import ObjectStore  # noqa: E402

ZERO = "0" * 64


def test_create_swap_delete_and_recreate(cas_store: ObjectStore) -> None:
    refs = ObjectRefs(cas_store)
    assert refs.read("refs/heads/main", 65).data is None
    v1 = refs.create("refs/heads/main", b"a" * 64 + b"\n")
    with pytest.raises(ConflictError) as e:
        refs.create("refs/heads/main", b"b" * 64 + b"\n")
    assert e.value.kind == ErrorKind.REF_EXISTS
    v2 = refs.swap("refs/heads/main", b"b" * 64 + b"\n", v1)
    with pytest.raises(ConflictError):
        refs.swap("refs/heads/main", b"c" * 64 + b"\n", v1)  # stale
    with pytest.raises(ConflictError):
        refs.delete("refs/heads/main", v1)  # a stale delete deletes nothing
    assert refs.read("refs/heads/main", 65).data == b"b" * 64 + b"\n"
    refs.delete("refs/heads/main", v2)
    gone = refs.read("refs/heads/main", 65)
    assert gone.data is None and gone.version is not None  # a tombstone
    assert cas_store.read_key("refs/heads/main", 65).data == TOMBSTONE  # type: ignore[union-attr]
    refs.create("refs/heads/main", b"d" * 64 + b"\n")  # over the tombstone
    assert refs.read("refs/heads/main", 65).data == b"d" * 64 + b"\n"
    assert sorted(refs.list("refs/heads/")) == ["refs/heads/main"]


def test_appends_from_racing_threads_all_land(cas_store: ObjectStore) -> None:
    refs = ObjectRefs(cas_store)

    def work(w: int) -> None:
        for i in range(10):
            refs.append("logs/heads/main", b'{"w":%d,"i":%d}\n' % (w, i), 1 << 20)

    with ThreadPoolExecutor(6) as ex:
        list(ex.map(work, range(6)))
    got = cas_store.read_key("logs/heads/main", 1 << 20)
    assert got is not None
    lines = sorted(got.data.splitlines())
    assert lines == sorted(b'{"w":%d,"i":%d}' % (w, i) for w in range(6) for i in range(10))


def test_append_drops_a_line_cut_short(cas_store: ObjectStore) -> None:
    cas_store.create_key("logs/HEAD", b'{"a":1}\n{"b":')
    ObjectRefs(cas_store).append("logs/HEAD", b'{"c":3}\n', 4096)
    assert cas_store.read_key("logs/HEAD", 4096).data == b'{"a":1}\n{"c":3}\n'  # type: ignore[union-attr]


def test_probe_and_init(cas_store: ObjectStore) -> None:
    refs = ObjectRefs(cas_store)
    refs.probe_conditional_writes()
    assert list(cas_store.list_keys("tmp/")) == []  # the probe cleans up
    assert not refs.is_repository()
    refs.init(b"ref: refs/heads/main\n")
    assert refs.is_repository()
    with pytest.raises(ConflictError):
        refs.init(b"ref: refs/heads/main\n")


def test_racing_inits_make_one_repository(cas_store: ObjectStore) -> None:
    bar = threading.Barrier(6)

    def init(i: int) -> bool:
        bar.wait()
        try:
            ObjectRefs(cas_store).init(b"ref: refs/heads/b%d\n" % i)
            return True
        except ConflictError:
            return False

    with ThreadPoolExecutor(6) as ex:
        assert sum(ex.map(init, range(6))) == 1
    assert ObjectRefs(cas_store).is_repository()


def test_a_newer_format_is_refused(cas_store: ObjectStore) -> None:
    cas_store.create_key("embfmt.json", b'{"format": "embfmt-repository", "version": 2}\n')
    with pytest.raises(FormatError) as e:
        ObjectRefs(cas_store).is_repository()
    assert e.value.kind == ErrorKind.UNSUPPORTED_VERSION


def test_a_store_without_compare_and_swap_moves_no_ref(tmp_path: Path) -> None:
    refs = ObjectRefs(ObjectStore(tmp_path.as_uri()))
    for call in (lambda: refs.create("refs/heads/main", b"x"), lambda: refs.init(b"ref: refs/heads/main\n"),
                 lambda: refs.append("logs/HEAD", b"x\n", 10)):
        with pytest.raises(StorageError) as e:
            call()
        assert e.value.kind == ErrorKind.UNSUPPORTED_BY_STORE
    assert list(ObjectStore(tmp_path.as_uri()).list_keys("")) == []


def _committer(url: str, options: dict[str, Any], writer: int, n: int) -> tuple[list[str], int]:
    """``n`` commits to refs/heads/main as spec/objstore-v1.md §4 orders them: read the branch,
    store a commit object naming it as parent, append the reflog entry, compare-and-swap the
    branch. A lost race is a conflict (not retried: the commit would need rebuilding)."""
    st = ObjectStore(url, options)
    refs = ObjectRefs(st)
    landed, conflicts = [], 0
    for i in range(n):
        cur = refs.read("refs/heads/main", 65)
        parent = cur.data.decode().strip() if cur.data else ZERO
        body = json.dumps({"parent": parent, "writer": writer, "i": i}, sort_keys=True).encode()
        cid = blake3.blake3(body).hexdigest()
        st.put(bytes.fromhex(cid), body)
        refs.append("logs/heads/main", json.dumps({"old": parent, "new": cid}).encode() + b"\n", 1 << 20)
        try:
            if cur.version is None:
                refs.create("refs/heads/main", cid.encode() + b"\n")
            else:
                refs.swap("refs/heads/main", cid.encode() + b"\n", cur.version)
            landed.append(cid)
        except ConflictError:
            conflicts += 1
    return landed, conflicts


def test_processes_committing_to_one_branch_lose_nothing(s3_url: str, s3_options: dict[str, Any]) -> None:
    procs, per = 4, 10
    with ProcessPoolExecutor(procs, mp_context=get_context("spawn")) as ex:
        results = list(ex.map(_committer, [s3_url] * procs, [s3_options] * procs, range(procs), [per] * procs))
    landed = {c for r in results for c in r[0]}
    assert sum(len(r[0]) for r in results) + sum(r[1] for r in results) == procs * per
    st = ObjectStore(s3_url, s3_options)
    # every commit that landed is on the branch's first-parent chain: none was overwritten
    tip = ObjectRefs(st).read("refs/heads/main", 65).data
    assert tip is not None
    chain, cid = [], tip.decode().strip()
    while cid != ZERO:
        chain.append(cid)
        cid = json.loads(st.get(bytes.fromhex(cid)))["parent"]
    assert set(chain) == landed and len(chain) == len(landed)
    log = st.read_key("logs/heads/main", 1 << 20)
    assert log is not None and len(log.data.splitlines()) == procs * per  # one entry per attempt
