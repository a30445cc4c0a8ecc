"""Round trips through a real on-disk repository: every dtype bit-exact, delta chains, dedup,
lazy indexing, keys, identity and schema rules, revisions, refs, reset, restore, revert, log/show."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import embfmt
from embfmt import _layout as L
from embfmt.objects.commit import Commit
from embfmt.errors import ConflictError, EmbfmtError, ErrorKind, InputError, NotFoundError
from embfmt.canonical.fingerprint import chunk_rows_for
from embfmt.repo import Repo

from .conftest import (DTYPES, WIDE_DIM, assert_bits_equal, fresh, hash_tree, object_files,
                       objects_by_kind, random_bits)

DTYPE_NAMES = list(DTYPES)


def _perturb(x: np.ndarray, rng: np.random.Generator, rows: np.ndarray | None = None) -> np.ndarray:
    """A fine-tuning step: small integer changes to the bit patterns of every element of
    ``rows`` (default: all rows), wrapping at the word width."""
    y = x.copy()
    it = y.dtype.itemsize
    u = y.view(f"<u{it}")
    sel = slice(None) if rows is None else rows
    step = rng.integers(-3, 4, size=u[sel].shape).astype(np.int64)
    u[sel] = ((u[sel].astype(np.int64) + step) % (1 << (8 * it))).astype(u.dtype) if it < 8 else \
        (u[sel] + step.astype(np.uint64))
    return y


def _chunk_headers(r: Repo, table: str, rev: str = "HEAD"):
    tv = r.table_version(table, rev)
    return [r.reader.header(d) for d in tv.digests]


# --- chunking rule ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", DTYPE_NAMES)
@pytest.mark.parametrize("dim", [1, 3, 100, 1000, 65536, 300000, 1 << 21])
def test_chunk_rows_rule(name: str, dim: int) -> None:
    row_bytes = dim * DTYPES[name].itemsize
    want = 1
    while (want * 2) * row_bytes <= 1 << 20:
        want *= 2
    assert chunk_rows_for(name, dim) == want
    assert chunk_rows_for(name, WIDE_DIM[name]) == 4


# --- bit-exact round trips -------------------------------------------------------------------
@pytest.mark.parametrize("name", DTYPE_NAMES)
@pytest.mark.parametrize("n", [0, 1, 3, 4, 5, 11])
def test_roundtrip_wide_every_dtype(repo: Repo, name: str, n: int) -> None:
    dt, d = DTYPES[name], WIDE_DIM[name]
    x = random_bits(np.random.default_rng(n), n, d, dt)
    cid = repo.commit({"t": x}, message=f"{name} n={n}")
    tv = repo.table_version("t")
    assert tv.chunk_rows == 4 and tv.n_chunks == -(-n // 4) and tv.shape == (n, d)
    assert tv.fingerprint == embfmt.fingerprint(x).root
    assert_bits_equal(repo.read("t"), x)
    r2 = fresh(repo)
    assert_bits_equal(r2.read("t", cid), x)
    assert_bits_equal(np.asarray(r2.open("t")), x)
    assert r2.verify().ok


@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_roundtrip_narrow_every_dtype(repo: Repo, name: str) -> None:
    dt = DTYPES[name]
    rng = np.random.default_rng(1)
    x = random_bits(rng, 1000, 7, dt)
    y = random_bits(rng, 1, 3, dt)
    repo.commit({"a": x, "b": y, "empty": random_bits(rng, 0, 5, dt)})
    r2 = fresh(repo)
    assert_bits_equal(r2.read("a"), x)
    assert_bits_equal(r2.read("b"), y)
    assert r2.read("empty").shape == (0, 5) and r2.read("empty").dtype == dt


def test_special_values_survive(repo: Repo) -> None:
    x = np.array([[np.nan, -0.0, 0.0, np.inf, -np.inf, 5e-324, -5e-324]], dtype=np.float64)
    u = x.view(np.uint64)
    u[0, 0] = 0x7FF0_0000_0000_0001  # signalling NaN with payload 1
    repo.commit({"s": x})
    got = fresh(repo).read("s")
    assert got.view(np.uint64)[0, 0] == 0x7FF0_0000_0000_0001
    assert np.signbit(got[0, 1]) and not np.signbit(got[0, 2])
    assert_bits_equal(got, x)


def test_big_endian_and_fortran_inputs(repo: Repo) -> None:
    x = np.random.default_rng(2).standard_normal((50, 9))
    repo.commit({"be": x.astype(">f8"), "f": np.asfortranarray(x), "strided": x[::2, ::3]})
    r2 = fresh(repo)
    assert_bits_equal(r2.read("be"), x)
    assert_bits_equal(r2.read("f"), x)
    assert_bits_equal(r2.read("strided"), np.ascontiguousarray(x[::2, ::3]))


# --- update kinds and delta chains ------------------------------------------------------------
@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_update_sequence_every_dtype(repo: Repo, name: str) -> None:
    """sparse, dense (fine-tune), append, truncate; every version reads back exactly."""
    dt, d = DTYPES[name], WIDE_DIM[name]
    rng = np.random.default_rng(42)
    versions = []
    x = random_bits(rng, 10, d, dt)
    versions.append(("initial", x))
    x = x.copy(); x[[1, 6]] = random_bits(rng, 2, d, dt)  # sparse: 1 row in chunks 0 and 1
    versions.append(("sparse", x))
    x = _perturb(x, rng)  # dense fine-tune of every element
    versions.append(("dense", x))
    x = np.concatenate([x, random_bits(rng, 5, d, dt)])  # append: 15 rows
    versions.append(("append", x))
    x = x[:6].copy()  # truncate
    versions.append(("truncate", x))
    ids = [repo.commit({"t": v}, message=m) for m, v in versions]

    codecs = {m: repo.show(cid)["tables"]["t"]["write"]["codecs"] for (m, _), cid in zip(versions, ids)}
    assert set(codecs["initial"]) <= {"raw", "shuffle-planes"}
    assert codecs["sparse"].get("sparse-patch") == 2  # chunks 0 and 1; chunk 2 reused
    assert repo.show(ids[1])["tables"]["t"]["write"]["rows_changed"] == 2
    assert set(codecs["dense"]) & {"xor-delta", "sub-zigzag-delta"}, codecs["dense"]
    assert codecs["append"].get("sparse-patch", 0) >= 1  # chunk 2 grows from 2 to 4 rows
    r2 = fresh(repo)
    for (m, v), cid in zip(versions, ids):
        assert_bits_equal(r2.read("t", cid), v)
    for k, (m, v) in enumerate(reversed(versions)):
        assert_bits_equal(r2.read("t", f"HEAD~{k}"), v)
    assert r2.verify().ok


def test_truncate_within_chunk_and_to_zero(repo: Repo) -> None:
    d = WIDE_DIM["float32"]
    x = random_bits(np.random.default_rng(3), 7, d, DTYPES["float32"])
    ids = [repo.commit({"t": x[:n]}) for n in (7, 5, 4, 1, 0, 3)]
    r2 = fresh(repo)
    for n, cid in zip((7, 5, 4, 1, 0, 3), ids):
        assert_bits_equal(r2.read("t", cid), x[:n])


def test_delta_chain_is_bounded(repo: Repo) -> None:
    d = WIDE_DIM["float32"]
    rng = np.random.default_rng(5)
    x = random_bits(rng, 8, d, DTYPES["float32"])  # 2 chunks of 4 rows
    history = []
    max_seen = 0
    for k in range(L.MAX_CHAIN_DEPTH * 2 + 4):
        x = x.copy()
        x[k % 4] = random_bits(rng, 1, d, DTYPES["float32"])[0]  # one row in chunk 0
        x[4 + (k % 4)] = random_bits(rng, 1, d, DTYPES["float32"])[0]  # one row in chunk 1
        history.append((repo.commit({"t": x}), x))
        for dg in repo.table_version("t").digests:
            chain = repo.reader.chain(dg)
            assert len(chain) <= L.MAX_CHAIN_DEPTH + 1
            heads = [repo.reader.header(c) for c in chain]
            assert [h.depth for h in heads] == list(range(len(chain) - 1, -1, -1))
            max_seen = max(max_seen, len(chain))
    assert max_seen == L.MAX_CHAIN_DEPTH + 1  # chains did form, up to the limit
    r2 = fresh(repo)
    for cid, v in history:
        assert_bits_equal(r2.read("t", cid), v)
    assert r2.verify().ok


# --- dedup ----------------------------------------------------------------------------------
def test_dedup_identical_commit_adds_no_chunks(repo: Repo) -> None:
    d = WIDE_DIM["uint8"]
    x = random_bits(np.random.default_rng(6), 9, d, DTYPES["uint8"])
    repo.commit({"t": x})
    before = objects_by_kind(repo.path)
    assert len(before["chunk"]) == 3
    c2 = repo.commit({"t": x.copy()}, message="same again")
    after = objects_by_kind(repo.path)
    assert after["chunk"] == before["chunk"]
    assert after["table"] == before["table"]  # same content -> same table-version id
    assert len(after["commit"]) == len(before["commit"]) + 1
    w = repo.show(c2)["tables"]["t"]["write"]
    assert w["chunks_written"] == 0 and w["rows_changed"] == 0


def test_dedup_across_tables(repo: Repo) -> None:
    d = WIDE_DIM["int8"]
    rng = np.random.default_rng(7)
    x = random_bits(rng, 8, d, DTYPES["int8"])
    repo.commit({"a": x})
    n0 = len(objects_by_kind(repo.path)["chunk"])
    y = x.copy()
    y[4:] = random_bits(rng, 4, d, DTYPES["int8"])  # chunk 0 shared with "a", chunk 1 new
    repo.commit({"b": x, "c": y})
    chunks = objects_by_kind(repo.path)["chunk"]
    assert len(chunks) == n0 + 1
    assert repo.table_version("a").digests[0] == repo.table_version("c").digests[0]
    r2 = fresh(repo)
    assert_bits_equal(r2.read("b"), x)
    assert_bits_equal(r2.read("c"), y)


# --- property: random edit sequences ------------------------------------------------------
_EDIT = st.one_of(
    st.tuples(st.just("rows"), st.lists(st.integers(0, 30), min_size=1, max_size=4)),
    st.tuples(st.just("finetune"), st.integers(0, 2**32 - 1)),
    st.tuples(st.just("append"), st.integers(1, 6)),
    st.tuples(st.just("truncate"), st.integers(0, 30)),
    st.tuples(st.just("same"), st.just(0)),
    st.tuples(st.just("other"), st.integers(0, 3)),
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(DTYPE_NAMES), n0=st.integers(0, 13),
       edits=st.lists(_EDIT, min_size=1, max_size=6), seed=st.integers(0, 2**32 - 1))
def test_property_random_edits(tmp_path_factory: pytest.TempPathFactory, name: str, n0: int,
                               edits: list, seed: int) -> None:
    dt = DTYPES[name]
    d = WIDE_DIM[name] // 16  # 16 KiB rows: chunk_rows 64
    rng = np.random.default_rng(seed)
    path = tmp_path_factory.mktemp("prop") / "r"
    with Repo.init(path) as r:
        x = random_bits(rng, n0 * 8, d, dt)
        other = random_bits(rng, 3, 5, dt)
        committed = [(r.commit({"t": x, "o": other}), x, other)]
        for kind, arg in edits:
            x = x.copy()
            if kind == "rows" and len(x):
                idx = np.array(arg) % len(x)
                x[idx] = random_bits(rng, len(idx), d, dt)
            elif kind == "finetune":
                x = _perturb(x, np.random.default_rng(arg))
            elif kind == "append":
                x = np.concatenate([x, random_bits(rng, arg * 20, d, dt)])
            elif kind == "truncate":
                x = x[: min(len(x), arg * 7)].copy()
            elif kind == "other":
                other = random_bits(rng, 3 + arg, 5, dt)
            committed.append((r.commit({"t": x, "o": other}), x, other))
    with Repo(path) as r2:
        log = r2.log()
        assert [c.id for c in log] == [c for c, _, _ in reversed(committed)]
        for cid, xv, ov in committed:
            assert_bits_equal(r2.read("t", cid), xv)
            assert_bits_equal(r2.read("o", cid), ov)
            assert r2.open("t", cid).fingerprint == embfmt.fingerprint(xv).root
        for dg in r2.table_version("t").digests:
            assert len(r2.reader.chain(dg)) <= L.MAX_CHAIN_DEPTH + 1
        assert r2.verify().ok


# --- lazy view ------------------------------------------------------------------------------
@pytest.fixture
def lazy_table(repo: Repo):
    d = WIDE_DIM["float64"] // 64  # 4 KiB rows: chunk_rows 256
    x = random_bits(np.random.default_rng(8), 1000, d, DTYPES["float64"])
    repo.commit({"t": x})
    return fresh(repo), x


@pytest.mark.parametrize("key", [
    0, 5, 999, -1, -1000, np.int64(300), np.uint8(7),
    slice(None), slice(3, 9), slice(250, 260), slice(-20, None), slice(None, None, 3),
    slice(None, None, -1), slice(900, 100, -7), slice(5, 5), slice(2000, 3000), slice(-5000, 3),
    Ellipsis,
    [3, 0, 999, 3, -1], np.array([[1, 2], [511, 512]]), np.array([], dtype=np.int64), [],
    np.array([-1, -256, 0], dtype=np.int32),
    (slice(10, 20), 3), (5, slice(1, 4)), ([3, 700], 1), (slice(None, None, 100), [0, -1]),
    (-3,), (slice(0, 2), np.array([True, False] * 256)),
])
def test_lazy_indexing_matches_eager(lazy_table, key) -> None:
    r, x = lazy_table
    t = r.open("t")
    want = x[key]
    got = t[key]
    assert_bits_equal(np.asarray(got), np.asarray(want))


def test_lazy_boolean_mask_and_rows(lazy_table) -> None:
    r, x = lazy_table
    t = r.open("t")
    mask = np.random.default_rng(9).random(len(x)) < 0.1
    assert_bits_equal(t[mask], x[mask])
    assert_bits_equal(t.rows(mask), x[mask])
    assert_bits_equal(t.rows([-1, 0]), x[[-1, 0]])
    assert t.shape == x.shape and len(t) == len(x) and t.dtype == x.dtype and t.ndim == 2
    assert t.nbytes == x.nbytes
    with pytest.raises(IndexError):
        t[1000]
    with pytest.raises(IndexError):
        t[-1001]
    with pytest.raises(IndexError):
        t.rows([0, 1000])
    with pytest.raises(InputError) as e:
        t[np.ones(5, dtype=bool)]
    assert e.value.kind == ErrorKind.SHAPE_MISMATCH


def test_lazy_reads_decode_only_needed_chunks(repo: Repo) -> None:
    d = WIDE_DIM["float32"]
    x = random_bits(np.random.default_rng(10), 10, d, DTYPES["float32"])
    repo.commit({"t": x})
    r = fresh(repo)
    t = r.open("t")
    os.unlink(object_files(r.path)[t.version.digests[0].hex()])  # chunk 0 gone
    assert_bits_equal(t[5], x[5])
    assert_bits_equal(t[4:10], x[4:10])
    assert_bits_equal(t[[9, 4, -1]], x[[9, 4, -1]])
    with pytest.raises(NotFoundError) as e:
        t[0]
    assert e.value.kind == ErrorKind.MISSING_OBJECT


# --- keys -----------------------------------------------------------------------------------
def test_int_keys_roundtrip_and_lookup(repo: Repo) -> None:
    rng = np.random.default_rng(11)
    x = rng.standard_normal((500, 8)).astype(np.float32)
    keys = np.unique(rng.integers(-10**15, 10**15, size=600))[:500]  # negatives too
    keys = rng.permutation(keys)
    repo.commit({"t": x}, keys={"t": keys})
    t = fresh(repo).open("t")
    assert t.keys.dtype == np.int64 and np.array_equal(t.keys, keys)
    assert_bits_equal(t.get(keys[17]), x[17])
    assert_bits_equal(t.lookup(keys[[5, 499, 0]]), x[[5, 499, 0]])
    assert np.array_equal(t.index_of([keys[3], keys[2]]), [3, 2])
    with pytest.raises(NotFoundError):
        t.get(int(keys.max()) + 1)
    assert np.array_equal(fresh(repo).keys("t"), keys)


def test_str_keys_roundtrip_and_lookup(repo: Repo) -> None:
    x = np.arange(40, dtype=np.float16).reshape(10, 4)
    keys = [f"item-{i}" for i in range(9)] + ["ünïcødé ✓"]
    repo.commit({"t": x}, keys={"t": keys})
    t = fresh(repo).open("t")
    assert list(t.keys) == keys
    assert_bits_equal(t.get("ünïcødé ✓"), x[9])
    assert_bits_equal(t.lookup(["item-3", "item-0"]), x[[3, 0]])
    with pytest.raises(NotFoundError):
        t.get("nope")
    # keys follow the rows only when the caller says these are the same rows (issue 13)
    repo.commit({"t": x + 1}, keys={"t": "carry"})
    assert list(fresh(repo).keys("t")) == keys


@pytest.mark.parametrize("keys", [[1, 2, 3, 2], ["a", "b", "a", "c"], np.array([7, 7, 1, 2])])
def test_duplicate_keys_refused(repo: Repo, keys) -> None:
    x = np.zeros((4, 2), np.float32)
    before = hash_tree(repo.path)
    with pytest.raises(InputError) as e:
        repo.commit({"t": x}, keys={"t": keys})
    assert e.value.kind == ErrorKind.DUPLICATE_KEY
    assert hash_tree(repo.path) == before


@pytest.mark.parametrize("keys", [[1, 2, 3], ["a", 1, "b", "c"], [1.5, 2.5, 3.5, 4.5]])
def test_bad_keys_refused(repo: Repo, keys) -> None:
    with pytest.raises(InputError) as e:
        repo.commit({"t": np.zeros((4, 2), np.float32)}, keys={"t": keys})
    assert e.value.kind == ErrorKind.BAD_KEYS


# --- identity and schema ---------------------------------------------------------------------
def test_identity_stamp_rules(repo: Repo) -> None:
    x = np.ones((5, 3), np.float32)
    c1 = repo.commit({"t": x}, identity={"t": {"model": "m1", "rev": "a"}})
    before = hash_tree(repo.path)
    with pytest.raises(ConflictError) as e:
        repo.commit({"t": x * 2}, identity={"t": {"model": "m2", "rev": "a"}})
    assert e.value.kind == ErrorKind.IDENTITY_MISMATCH
    assert hash_tree(repo.path) == before
    assert repo.resolve("HEAD") == c1
    c2 = repo.commit({"t": x * 3})  # no stamp: the parent's carries over
    assert repo.table_version("t", c2).identity == {"model": "m1", "rev": "a"}
    c3 = repo.commit({"t": x * 4}, identity={"t": {"model": "m2", "rev": "a"}},
                     allow_identity_change=True)
    assert repo.table_version("t", c3).identity == {"model": "m2", "rev": "a"}
    assert repo.show(c3)["tables"]["t"]["identity"] == {"model": "m2", "rev": "a"}


@pytest.mark.parametrize("new, kind", [
    (np.ones((5, 3), np.float64), ErrorKind.DTYPE_MISMATCH),
    (np.ones((5, 4), np.float32), ErrorKind.SHAPE_MISMATCH),
])
def test_schema_change_refused_and_nothing_written(repo: Repo, new, kind) -> None:
    c1 = repo.commit({"t": np.ones((5, 3), np.float32)})
    before = hash_tree(repo.path)
    with pytest.raises(InputError) as e:
        repo.commit({"t": new})
    assert e.value.kind == kind
    assert repo.resolve("main") == c1 and len(repo.log()) == 1
    assert hash_tree(repo.path) == before
    repo.commit({"t": new}, allow_schema_change=True)
    assert_bits_equal(fresh(repo).read("t"), new)


def test_multi_table_commit_refused_before_writing_anything(repo: Repo) -> None:
    """A commit of several tables where a later one breaks a rule writes no object at all."""
    repo.commit({"a": np.ones((5, 3), np.float32), "z": np.ones((2, 2), np.int8)})
    before = hash_tree(repo.path)
    big = random_bits(np.random.default_rng(12), 9, WIDE_DIM["float32"], DTYPES["float32"])
    with pytest.raises(InputError) as e:
        repo.commit({"a": big[:, :3].copy(), "new": big, "z": np.ones((2, 2), np.uint8)})
    assert e.value.kind == ErrorKind.DTYPE_MISMATCH
    assert hash_tree(repo.path) == before


def test_remove_table(repo: Repo) -> None:
    repo.commit({"a": np.ones((2, 2), np.float32), "b": np.zeros((3, 1), np.int8)})
    repo.commit({}, remove=("b",))
    assert set(repo.log()[0].tables) == {"a"}
    assert set(repo.log()[1].tables) == {"a", "b"}
    before = hash_tree(repo.path)
    with pytest.raises(NotFoundError):
        repo.commit({"a": np.full((2, 2), 5, np.float32)}, remove=("nope",))
    assert hash_tree(repo.path) == before
    with pytest.raises(NotFoundError):
        repo.read("b")


# --- revisions -------------------------------------------------------------------------------
def test_revisions(repo: Repo) -> None:
    xs = [np.full((3, 2), i, np.float32) for i in range(5)]
    ids = [repo.commit({"t": x}, message=f"v{i}") for i, x in enumerate(xs)]
    repo.tag("v1", ids[1])
    repo.branch("side", ids[2])
    assert repo.resolve() == repo.resolve("HEAD") == repo.resolve("main") == ids[4]
    assert repo.resolve(ids[3]) == ids[3]
    assert repo.resolve(ids[3][:12]) == ids[3]
    assert repo.resolve("HEAD~1") == repo.resolve("HEAD^") == repo.resolve("main~") == ids[3]
    assert repo.resolve("HEAD~3") == repo.resolve("HEAD^^^") == repo.resolve("HEAD~2^") == ids[1]
    assert repo.resolve("v1") == ids[1] and repo.resolve("v1~1") == ids[0]
    assert repo.resolve("side") == ids[2] and repo.resolve(f"{ids[2][:10]}~2") == ids[0]
    assert repo.resolve("HEAD~0") == ids[4]
    assert_bits_equal(repo.read("t", "v1"), xs[1])
    with pytest.raises(NotFoundError):
        repo.resolve("HEAD~5")  # past the root
    with pytest.raises(NotFoundError):
        repo.resolve("nosuchbranch")
    with pytest.raises(NotFoundError):
        repo.resolve("f" * 64 if not ids[0].startswith("f" * 4) else "e" * 64)
    for bad in ["", "~1", "HEAD~x", "HEAD~-1", 12]:
        with pytest.raises(InputError) as e:
            repo.resolve(bad)  # type: ignore[arg-type]
        assert e.value.kind == ErrorKind.BAD_REVISION


def test_ambiguous_prefix(repo: Repo) -> None:
    cid = repo.commit({"t": np.ones((1, 1), np.float32)})
    base = repo.get_commit(cid)
    seen: dict[str, bytes] = {}
    i = 0
    while True:  # birthday search over 4-hex prefixes: ~300 tries
        c = Commit(base.tables, (cid,), "a", base.time, f"m{i}", {}, {})
        b = c.to_bytes()
        oid = c.object_id().hex()
        if oid[:4] in seen and seen[oid[:4]] != b:
            other = seen[oid[:4]]
            break
        seen[oid[:4]] = b
        i += 1
        assert i < 100000
    repo.revisions.put_hashed(b)
    repo.revisions.put_hashed(other)
    with pytest.raises(EmbfmtError) as e:
        repo.resolve(oid[:4])
    assert e.value.kind == ErrorKind.AMBIGUOUS_REVISION
    assert repo.resolve(oid) == oid  # the full id is not ambiguous


def test_non_commit_id_is_not_a_revision(repo: Repo) -> None:
    repo.commit({"t": np.ones((2, 2), np.float32)})
    tid = repo.log()[0].tables["t"]
    with pytest.raises(EmbfmtError):
        repo.resolve(tid)
    with pytest.raises(NotFoundError):
        repo.resolve(tid[:8])  # prefixes only match commits


# --- tags, branches, reset, restore ---------------------------------------------------------
def test_tags_are_immutable(repo: Repo) -> None:
    c1 = repo.commit({"t": np.ones((2, 2), np.float32)})
    c2 = repo.commit({"t": np.zeros((2, 2), np.float32)})
    assert repo.tag("release", c1) == c1
    with pytest.raises(ConflictError) as e:
        repo.tag("release", c2)
    assert e.value.kind == ErrorKind.REF_EXISTS
    assert repo.tags() == {"release": c1}
    assert repo.resolve("release") == c1


def test_branches(repo: Repo) -> None:
    c1 = repo.commit({"t": np.ones((2, 2), np.float32)})
    repo.branch("exp/one")
    with pytest.raises(ConflictError) as e:
        repo.branch("exp/one")
    assert e.value.kind == ErrorKind.REF_EXISTS
    c2 = repo.commit({"t": np.zeros((2, 2), np.float32)}, branch="exp/one")
    assert repo.branches() == {"exp/one": c2, "main": c1}
    assert repo.log("exp/one")[1].id == c1
    repo.checkout_branch("exp/one")
    assert repo.head_branch == "exp/one" and repo.resolve("HEAD") == c2
    assert fresh(repo).head_branch == "exp/one"
    with pytest.raises(NotFoundError):
        repo.checkout_branch("nope")
    c3 = repo.commit({"u": np.ones((1, 1), np.int8)}, branch="fresh")  # new branch, no parent
    assert repo.get_commit(c3).parents == ()


def test_reset_reads_no_chunk_objects(repo: Repo) -> None:
    # Rolling back to a commit a ref reaches is O(1): no chunk object is read (there is none).
    rng = np.random.default_rng(13)
    xs = [random_bits(rng, 6, WIDE_DIM["float32"], DTYPES["float32"]) for _ in range(3)]
    ids = [repo.commit({"t": x}) for x in xs]
    for oid in objects_by_kind(repo.path)["chunk"]:
        os.unlink(object_files(repo.path)[oid])  # no chunk object left at all
    r = fresh(repo)
    assert r.reset("main", ids[0]) == ids[0]
    assert r.resolve("HEAD") == ids[0]
    assert [c.id for c in r.log()] == [ids[0]]
    with pytest.raises(NotFoundError):
        r.reset("nobranch", ids[0])


def test_reset_forward_onto_an_orphan_needs_its_objects(repo: Repo) -> None:
    # Moving a ref onto a commit no ref reaches makes its objects live first (spec §18.4): with
    # them present the move lands and history is kept in objects; with a chunk gone it is
    # refused and the branch stays where it was.
    rng = np.random.default_rng(14)
    xs = [random_bits(rng, 6, WIDE_DIM["float32"], DTYPES["float32"]) for _ in range(3)]
    ids = [repo.commit({"t": x}) for x in xs]
    r = fresh(repo)
    assert r.reset("main", ids[0]) == ids[0]
    assert r.reset("main", ids[2]) == ids[2]  # forward again: history was kept in objects
    assert [c.id for c in r.log()] == ids[::-1]
    assert np.array_equal(r.read("t").view(np.uint32), xs[2].view(np.uint32))
    assert r.reset("main", ids[0]) == ids[0]
    tip_chunks = r.get_table_version(r.get_commit(ids[2]).tables["t"]).digests
    os.unlink(object_files(repo.path)[tip_chunks[0].hex()])
    with pytest.raises(ConflictError):
        r.reset("main", ids[2])
    assert r.resolve("main") == ids[0]


def test_reset_then_read(repo: Repo) -> None:
    xs = [np.full((4, 3), i, np.int8) for i in range(3)]
    ids = [repo.commit({"t": x}) for x in xs]
    repo.reset("main", "HEAD~2")
    assert_bits_equal(fresh(repo).read("t"), xs[0])
    assert repo.resolve("HEAD") == ids[0]


def test_restore_keeps_history(repo: Repo) -> None:
    rng = np.random.default_rng(14)
    xs = [random_bits(rng, 5, WIDE_DIM["bfloat16"], DTYPES["bfloat16"]) for _ in range(3)]
    ids = [repo.commit({"t": x}, message=f"v{i}") for i, x in enumerate(xs)]
    chunks_before = objects_by_kind(repo.path)["chunk"]
    rv = repo.restore("HEAD~2")
    assert rv not in ids
    log = repo.log()
    assert [c.id for c in log] == [rv] + ids[::-1]
    assert log[0].tables == repo.get_commit(ids[0]).tables
    assert log[0].parents == (ids[2],)
    assert log[0].metadata["embfmt"]["restored_from"] == ids[0]
    assert_bits_equal(fresh(repo).read("t"), xs[0])
    assert_bits_equal(fresh(repo).read("t", "HEAD~1"), xs[2])
    assert objects_by_kind(repo.path)["chunk"] == chunks_before  # O(1): no chunk written


# --- log / show --------------------------------------------------------------------------------
def test_log_and_show(repo: Repo) -> None:
    x = np.random.default_rng(15).standard_normal((3000, 512)).astype(np.float32)  # 6 chunks
    c1 = repo.commit({"emb": x}, message="first", metadata={"run": 1, "lr": 0.1},
                     author="alice@example", keys={"emb": np.arange(3000)})
    y = x.copy()
    y[[4, 2000]] += 1
    c2 = repo.commit({"emb": y}, message="second", metadata={"run": 2}, keys={"emb": "carry"})
    log = repo.log()
    assert [c.id for c in log] == [c2, c1]
    assert [c.message for c in log] == ["second", "first"]
    assert log[1].author == "alice@example" and log[0].author  # default author non-empty
    assert log[1].metadata["run"] == 1 and log[1].metadata["lr"] == 0.1
    assert log[0].parents == (c1,) and log[1].parents == ()
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", c.time) for c in log)
    assert [c.id for c in repo.log(max_count=1)] == [c2]
    assert log[0].to_dict()["id"] == c2
    s = repo.show()
    assert s["id"] == c2 and s["message"] == "second" and s["parents"] == [c1]
    t = s["tables"]["emb"]
    assert (t["rows"], t["dim"], t["dtype"], t["chunks"]) == (3000, 512, "float32", 6)
    assert t["fingerprint"] == embfmt.fingerprint(y).root
    assert t["keys"] is True  # carried over: keys="carry"
    assert t["write"]["rows_changed"] == 2
    assert repo.show("HEAD~1")["tables"]["emb"]["fingerprint"] == embfmt.fingerprint(x).root
    with pytest.raises(InputError):
        repo.commit({"emb": y}, metadata={"embfmt": 1})
    with pytest.raises(InputError):
        repo.commit({})


# --- other inputs ------------------------------------------------------------------------------
def test_torch_tensor_input(repo: Repo) -> None:
    torch = pytest.importorskip("torch", reason="torch is not installed")
    x = torch.randn(50, 7, dtype=torch.float32)
    b = torch.randn(9, 5).to(torch.bfloat16)
    repo.commit({"f": x, "b": b})
    r = fresh(repo)
    assert_bits_equal(r.read("f"), x.numpy())
    assert r.read("b").tobytes() == b.view(torch.int16).numpy().tobytes()


def test_h5py_dataset_input(repo: Repo, tmp_path: Path) -> None:
    h5py = pytest.importorskip("h5py")
    rng = np.random.default_rng(16)
    x = random_bits(rng, 11, WIDE_DIM["float32"], DTYPES["float32"])
    y = rng.standard_normal((300, 6)).astype(">f8")
    p = tmp_path / "emb.h5"
    with h5py.File(p, "w") as f:
        f["wide"] = x
        f["be"] = y
    with h5py.File(p, "r") as f:
        repo.commit({"wide": f["wide"], "be": f["be"]})
    r = fresh(repo)
    assert_bits_equal(r.read("wide"), x)
    assert_bits_equal(r.read("be"), y.astype("<f8"))
    assert r.open("wide").fingerprint == embfmt.fingerprint(x).root
