"""ObjectStore beyond the Store contract: the conditional writes refs need (create-if-absent,
compare-and-swap) and their races, against a real S3 server process on loopback; credentials
never in a URL or a message; typed errors for a missing bucket and an unreachable endpoint."""

from __future__ import annotations

import json
import threading
import uuid
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("obstore", reason="object storage needs obstore: pip install -e '.[test]'")

from embfmt.errors import ConflictError, ErrorKind, FormatError, InputError, NotFoundError, StorageError
from embfmt.store._objstore import ObjectStore, redact


@pytest.fixture
def s3(s3_url: str, s3_options: dict[str, Any]) -> ObjectStore:
    return ObjectStore(s3_url, s3_options)


# ---- conditional primitives ------------------------------------------------------------------
def test_create_key_only_once(cas_store: ObjectStore) -> None:
    etag = cas_store.create_key("refs/heads/main", b"one")
    assert etag
    with pytest.raises(ConflictError) as e:
        cas_store.create_key("refs/heads/main", b"two")
    assert e.value.kind == ErrorKind.REF_EXISTS
    got = cas_store.read_key("refs/heads/main", 100)
    assert got is not None and got.data == b"one" and got.etag == etag


def test_swap_key_moves_only_from_the_version_read(cas_store: ObjectStore) -> None:
    e1 = cas_store.create_key("HEAD", b"v1")
    e2 = cas_store.swap_key("HEAD", b"v2", e1)
    assert e2 != e1
    with pytest.raises(ConflictError) as e:  # a writer that read v1 lost the race
        cas_store.swap_key("HEAD", b"v2'", e1)
    assert e.value.kind == ErrorKind.CONFLICT
    got = cas_store.read_key("HEAD", 100)
    assert got is not None and got.data == b"v2" and got.etag == e2
    cas_store.delete_key("HEAD")
    assert cas_store.read_key("HEAD", 100) is None
    with pytest.raises(ConflictError):  # removed since it was read: also a lost race
        cas_store.swap_key("HEAD", b"v3", e2)
    assert cas_store.read_key("HEAD", 100) is None


def test_read_key_is_bounded(cas_store: ObjectStore) -> None:
    cas_store.create_key("refs/heads/big", b"x" * 5000)
    with pytest.raises(FormatError) as e:
        cas_store.read_key("refs/heads/big", 4096)
    assert e.value.kind == ErrorKind.BAD_OBJECT


def test_list_keys(cas_store: ObjectStore) -> None:
    for name in ("refs/heads/a", "refs/heads/b/c", "refs/tags/v1", "HEAD"):
        cas_store.create_key(name, b"x")
    assert sorted(cas_store.list_keys("refs/heads/")) == ["refs/heads/a", "refs/heads/b/c"]
    assert sorted(cas_store.list_keys("refs/")) == ["refs/heads/a", "refs/heads/b/c", "refs/tags/v1"]
    assert list(cas_store.list_keys("nothing/")) == []
    # a string prefix, not only a folder (object_store itself lists by whole segments)
    assert sorted(cas_store.list_keys("refs/heads/b")) == ["refs/heads/b/c"]
    assert sorted(cas_store.list_keys("HE")) == ["HEAD"]


def test_file_store_has_no_compare_and_swap(tmp_path: Path) -> None:
    st = ObjectStore(tmp_path.as_uri())
    assert not st.supports_cas
    etag = st.create_key("refs/heads/main", b"one")
    with pytest.raises(ConflictError):
        st.create_key("refs/heads/main", b"two")
    with pytest.raises(StorageError) as e:
        st.swap_key("refs/heads/main", b"two", etag)
    assert e.value.kind == ErrorKind.UNSUPPORTED_BY_STORE


def test_memory_urls_share_a_store_by_name() -> None:
    name = f"memory://shared-{uuid.uuid4().hex}"
    ObjectStore(name).create_key("k", b"v")
    got = ObjectStore(name).read_key("k", 10)
    assert got is not None and got.data == b"v"
    assert ObjectStore(f"memory://other-{uuid.uuid4().hex}").read_key("k", 10) is None


# ---- races -----------------------------------------------------------------------------------
def _race_rounds(st: ObjectStore, key: str, rounds: int, writers: int) -> None:
    """Each round, ``writers`` threads swap ``key`` from the same version at once: exactly one
    lands and the others get ConflictError; the stored value is the winner's."""
    st.create_key(key, b"start")
    for rnd in range(rounds):
        got = st.read_key(key, 100)
        assert got is not None
        bar = threading.Barrier(writers)

        def swap(i: int, etag: str = got.etag) -> bytes | None:
            bar.wait()
            try:
                st.swap_key(key, b"%d-%d" % (rnd, i), etag)
                return b"%d-%d" % (rnd, i)
            except ConflictError:
                return None

        with ThreadPoolExecutor(writers) as ex:
            won = [w for w in ex.map(swap, range(writers)) if w is not None]
        assert len(won) == 1, f"round {rnd}: {len(won)} writers won"
        after = st.read_key(key, 100)
        assert after is not None and after.data == won[0]


def test_cas_race_one_winner_per_round(cas_store: ObjectStore) -> None:
    _race_rounds(cas_store, "refs/heads/main", rounds=25, writers=8)


def test_create_race_one_winner(s3: ObjectStore) -> None:
    for rnd in range(10):
        bar = threading.Barrier(8)

        def create(i: int) -> bool:
            bar.wait()
            try:
                s3.create_key(f"refs/heads/b{rnd}", b"%d" % i)
                return True
            except ConflictError:
                return False

        with ThreadPoolExecutor(8) as ex:
            assert sum(ex.map(create, range(8))) == 1


def test_server_enforces_conditional_writes_under_stress(s3_server: Any) -> None:
    """The test server itself, with its thread switch interval at 1 us (moto's own server,
    unserialized, then lets two racing conditional PUTs both land: tests/s3server.py)."""
    from tests.s3server import S3Server

    srv = S3Server(switch_interval=1e-6)
    try:
        srv.create_bucket("stress")
        st = ObjectStore("s3://stress/r", srv.client_options())
        _race_rounds(st, "refs/heads/main", rounds=100, writers=8)
    finally:
        srv.close()


def _increment(url: str, options: dict[str, Any], writer: int, n: int) -> tuple[int, int]:
    """``n`` appends of ``(writer, i)`` to the JSON list at key ``counter``, each by
    read + compare-and-swap, retrying a lost race; returns (landed, conflicts)."""
    st = ObjectStore(url, options)
    conflicts = 0
    for i in range(n):
        while True:
            got = st.read_key("counter", 1 << 20)
            assert got is not None
            entries = json.loads(got.data)
            try:
                st.swap_key("counter", json.dumps(entries + [[writer, i]]).encode(), got.etag)
                break
            except ConflictError:
                conflicts += 1
    return n, conflicts


def test_processes_racing_cas_lose_nothing(s3_url: str, s3_options: dict[str, Any]) -> None:
    """4 processes x 15 read-modify-CAS appends on one key: all 60 land exactly once."""
    ObjectStore(s3_url, s3_options).create_key("counter", b"[]")
    procs, per = 4, 15
    with ProcessPoolExecutor(procs, mp_context=get_context("spawn")) as ex:
        results = list(ex.map(_increment, [s3_url] * procs, [s3_options] * procs, range(procs), [per] * procs))
    got = ObjectStore(s3_url, s3_options).read_key("counter", 1 << 20)
    assert got is not None
    entries = sorted(map(tuple, json.loads(got.data)))
    assert entries == sorted((w, i) for w in range(procs) for i in range(per))
    assert sum(r[0] for r in results) == procs * per


# ---- credentials and errors ------------------------------------------------------------------
@pytest.mark.parametrize("url", ["s3://AKIAEXAMPLE:wJalrXUtnFEMI@bucket/repo", "s3://tok3n@bucket/repo",
                                 "s3://bucket/repo?secret_access_key=wJalrXUtnFEMI"])
def test_url_with_a_secret_is_refused(url: str) -> None:
    with pytest.raises(InputError) as e:
        ObjectStore(url)
    assert e.value.kind == ErrorKind.CREDENTIALS_IN_URL
    for secret in ("wJalrXUtnFEMI", "AKIAEXAMPLE", "tok3n"):
        assert secret not in str(e.value)


def test_secrets_never_in_messages(s3_server: Any) -> None:
    secret = "s3cr3t-" + uuid.uuid4().hex
    key_id = "AKID" + uuid.uuid4().hex[:12].upper()
    opts = dict(s3_server.client_options(), secret_access_key=secret, access_key_id=key_id)
    st = ObjectStore("s3://no-such-bucket-here/repo", opts)
    with pytest.raises(NotFoundError) as e:
        st.get(b"\0" * 32)
    assert "bucket" in str(e.value)
    assert secret not in repr(st) and secret not in str(e.value) and key_id not in str(e.value)
    # unreachable: nothing listens on port 9 of loopback
    bad = dict(opts, endpoint="http://127.0.0.1:9")
    st = ObjectStore("s3://bucket/repo", bad, retries=0)
    with pytest.raises(StorageError) as se:
        st.put(b"\1" * 32, b"x")
    assert se.value.kind == ErrorKind.STORAGE_UNAVAILABLE
    assert "\n" not in str(se.value)
    assert secret not in str(se.value) and key_id not in str(se.value)


def test_wrong_credentials_are_access_denied() -> None:
    """A server that checks access keys (moto with IAM auth on, no users): a typed, one-line,
    redacted refusal."""
    from tests.s3server import S3Server

    srv = S3Server(check_credentials=True)
    try:
        secret = "wrong-" + uuid.uuid4().hex
        st = ObjectStore("s3://any-bucket/repo", dict(srv.client_options(), secret_access_key=secret), retries=0)
        with pytest.raises(StorageError) as e:
            st.put(b"\7" * 32, b"x")
        assert e.value.kind == ErrorKind.ACCESS_DENIED
        assert secret not in str(e.value) and "\n" not in str(e.value)
    finally:
        srv.close()


def test_environment_secrets_are_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "envsecret-" + uuid.uuid4().hex
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    st = ObjectStore(f"memory://redact-{uuid.uuid4().hex}")
    with pytest.raises(StorageError) as e:  # what a library error quoting it would become
        st._fail(RuntimeError(f"request signed with {secret} failed\ndebug: {secret}"), "get x")
    assert secret not in str(e.value) and "***" in str(e.value) and "\n" not in str(e.value)


def test_redact() -> None:
    text = ("GET https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIA123%2F2026&X-Amz-Signature=abcdef0123 "
            "Authorization: AWS4-HMAC-SHA256 Credential=AKIA123/x, Signature=ff00 "
            "http://user:pa55word@host/x mysecretvalue")
    out = redact(text, ("mysecretvalue",))
    for s in ("AKIA123", "abcdef0123", "ff00", "pa55word", "mysecretvalue"):
        assert s not in out, s
    assert "https://b.s3.amazonaws.com/k" in out


def test_unknown_scheme_is_not_a_repository() -> None:
    with pytest.raises(InputError) as e:
        ObjectStore("ftp://host/x")
    assert e.value.kind == ErrorKind.NOT_A_REPOSITORY


def test_get_refuses_an_oversized_object(s3: ObjectStore) -> None:
    big = b"z" * (3 << 20)
    s3.put(b"\2" * 32, big)
    with pytest.raises(FormatError) as e:
        s3.get(b"\2" * 32, max_size=1 << 20)
    assert e.value.kind == ErrorKind.BAD_OBJECT and str(3 << 20) in str(e.value)
    assert s3.get(b"\2" * 32) == big


def test_put_never_rewrites_an_existing_object(s3: ObjectStore) -> None:
    """Idempotent by If-None-Match: the first bytes stay, and its ETag does not change."""
    s3.put(b"\3" * 32, b"first")
    etag = s3.read_key(s3.key(b"\3" * 32), 100)
    assert s3.put(b"\3" * 32, b"other") is False
    again = s3.read_key(s3.key(b"\3" * 32), 100)
    assert etag is not None and again is not None and again.etag == etag.etag and again.data == b"first"
