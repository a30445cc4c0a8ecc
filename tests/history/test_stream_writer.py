"""repo.writer(): blocks in any order and size, bounded memory, all-or-nothing commits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import embfmt
from embfmt.errors import ConflictError, ErrorKind, InputError, IntegrityError
from embfmt.canonical.dtype import dtype_of

DTYPES = ["float64", "float32", "float16", "bfloat16", "int8", "uint8"]


def _table(n: int, d: int, dtype: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 256, size=(n, d * dtype_of(dtype).itemsize), dtype=np.uint8)
    return bits.view(dtype_of(dtype).numpy).reshape(n, d)  # every bit pattern: NaNs, -0.0, ...


def _tid(repo: embfmt.Repo, table: str, rev: str = "HEAD") -> str:
    return repo.get_commit(repo.resolve(rev)).tables[table]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(dtype=st.sampled_from(DTYPES), n=st.integers(0, 2500), d=st.integers(1, 40),
       cuts=st.lists(st.integers(0, 2500), max_size=12), seed=st.integers(0, 2**32 - 1),
       with_parent=st.booleans())
def test_shuffled_blocks_equal_one_shot_commit(tmp_path_factory, dtype, n, d, cuts, seed, with_parent):
    x = _table(n, d, dtype, seed)
    a = embfmt.Repo.init(tmp_path_factory.mktemp("a"))
    b = embfmt.Repo.init(tmp_path_factory.mktemp("b"))
    if with_parent:  # deltas against a parent take another path through the chunk writer
        base = _table(n, d, dtype, seed + 1)
        base[::3] = x[::3]
        a.commit({"t": base}, message="base")
        b.commit({"t": base}, message="base")
    a.commit({"t": x}, message="one shot")
    bounds = sorted({0, n, *[c for c in cuts if c <= n]})
    blocks = list(zip(bounds[:-1], bounds[1:]))
    order = np.random.default_rng(seed).permutation(len(blocks))
    with b.writer("t", shape=(n, d), dtype=dtype, message="streamed") as w:
        for k in order:
            lo, hi = blocks[k]
            w.write(lo, x[lo:hi])
    assert w.commit_id == b.resolve("HEAD")
    assert _tid(a, "t") == _tid(b, "t")  # same table-version object: same bits, same chunks
    assert b.read("t").view(np.uint8).tobytes() == x.view(np.uint8).tobytes()
    assert b.verify().ok
    assert os.listdir(os.path.join(b.path, "tmp")) == []  # scratch file removed


def test_append_and_rewrites_last_write_wins(tmp_path):
    repo = embfmt.Repo.init(tmp_path)
    x = _table(5000, 16, "float32")
    with repo.writer("t", shape=x.shape, dtype=np.float32) as w:
        w.write(3000, np.zeros((2000, 16), np.float32))  # written ahead, then superseded
        w.write(3000, x[3000:])
        w.write(0, x[:700])
        for lo in range(700, 3000, 700):
            w.append(x[lo:min(lo + 700, 3000)])
    assert np.array_equal(repo.read("t").view(np.uint32), x.view(np.uint32))


def test_rows_already_hashed_cannot_be_rewritten(tmp_path):
    repo = embfmt.Repo.init(tmp_path)
    x = _table(100, 4, "float32")
    w = repo.writer("t", shape=x.shape, dtype="float32")
    w.write(0, x[:60])
    with pytest.raises(ConflictError, match=r"rows \[50, 60\) were already written"):
        w.write(50, x[50:70])
    w.write(60, x[60:])
    assert w.commit() == repo.resolve("HEAD")
    assert np.array_equal(repo.read("t").view(np.uint32), x.view(np.uint32))  # bits: x has NaNs


def test_missing_rows_commit_nothing(tmp_path):
    repo = embfmt.Repo.init(tmp_path)
    repo.commit({"other": np.ones((3, 2), np.float32)}, message="first")
    head = repo.resolve("HEAD")
    x = _table(10_000, 8, "float32")
    with pytest.raises(InputError, match=r"rows \[4000, 6000\) were never written") as ei:
        with repo.writer("t", shape=x.shape, dtype="float32") as w:
            w.write(0, x[:4000])
            w.write(6000, x[6000:])
    assert ei.value.kind is ErrorKind.SHAPE_MISMATCH
    assert repo.resolve("HEAD") == head
    assert os.listdir(os.path.join(repo.path, "tmp")) == []


def test_scratch_file_truncated_under_the_writer_is_a_typed_error(tmp_path):
    """Rows written ahead wait in a scratch file; one truncated by another process is an
    IntegrityError (kind truncated) naming the file, never a bare OSError, and commits nothing."""
    repo = embfmt.Repo.init(tmp_path)
    repo.commit({"other": np.ones((3, 2), np.float32)}, message="first")
    head = repo.resolve("HEAD")
    x = _table(20_000, 16, "float32")
    tmp = os.path.join(repo.path, "tmp")
    short = (r"scratch file .*stream-\w+\.rows holding rows written ahead is short: "
             r"reading bytes \[640000, \d+\) of it stopped at byte 640000")
    with pytest.raises(IntegrityError, match=short) as ei:
        with repo.writer("t", shape=x.shape, dtype="float32") as w:
            w.write(10_000, x[10_000:])  # ahead of the next unwritten row: spilled
            (scratch,) = [os.path.join(tmp, f) for f in os.listdir(tmp) if f.startswith("stream-")]
            os.truncate(scratch, 0)
            w.write(0, x[:10_000])  # the rows ahead are read back from the scratch file
    assert ei.value.kind is ErrorKind.TRUNCATED and scratch in str(ei.value)
    assert repo.resolve("HEAD") == head and len(repo.log()) == 1
    assert os.listdir(tmp) == []


def test_exception_in_block_commits_nothing(tmp_path):
    repo = embfmt.Repo.init(tmp_path)
    repo.commit({"t": np.zeros((10, 4), np.float32)}, message="first")
    head = repo.resolve("HEAD")
    with pytest.raises(RuntimeError, match="training crashed"):
        with repo.writer("t", shape=(10, 4), dtype="float32") as w:
            w.write(5, np.ones((5, 4), np.float32))
            raise RuntimeError("training crashed")
    assert repo.resolve("HEAD") == head and len(repo.log()) == 1
    assert repo.verify().ok
    assert os.listdir(os.path.join(repo.path, "tmp")) == []
    with pytest.raises(InputError, match="aborted"):
        w.write(0, np.ones((5, 4), np.float32))


def test_block_checks(tmp_path):
    repo = embfmt.Repo.init(tmp_path)
    w = repo.writer("t", shape=(10, 4), dtype="float32")
    with pytest.raises(InputError) as ei:
        w.write(0, np.zeros((2, 4), np.float64))
    assert ei.value.kind is ErrorKind.DTYPE_MISMATCH and "never casts" in ei.value.message
    with pytest.raises(InputError) as ei:
        w.write(0, np.zeros((2, 5), np.float32))
    assert ei.value.kind is ErrorKind.SHAPE_MISMATCH
    with pytest.raises(InputError, match=r"rows \[9, 11\) are outside"):
        w.write(9, np.zeros((2, 4), np.float32))
    w.abort()
    with pytest.raises(InputError) as ei:
        repo.writer("t", shape=(10, 0), dtype="float32")
    assert ei.value.kind is ErrorKind.ZERO_DIM
    with pytest.raises(InputError) as ei:
        repo.writer("t", shape=(10, 4), dtype="complex64")
    assert ei.value.kind is ErrorKind.UNSUPPORTED_DTYPE


def test_schema_identity_and_keys_checked_before_any_row(tmp_path):
    repo = embfmt.Repo.init(tmp_path)
    repo.commit({"t": np.zeros((10, 4), np.float32)}, message="first",
                identity={"t": {"model": "a"}}, keys={"t": [f"k{i}" for i in range(10)]})
    with pytest.raises(InputError) as ei:
        repo.writer("t", shape=(10, 4), dtype="float16")
    assert ei.value.kind is ErrorKind.DTYPE_MISMATCH
    with pytest.raises(ConflictError) as ei:
        repo.writer("t", shape=(10, 4), dtype="float32", identity={"model": "b"})
    assert ei.value.kind is ErrorKind.IDENTITY_MISMATCH
    with pytest.raises(InputError) as ei:
        repo.writer("t", shape=(10, 4), dtype="float32", keys=["a"] * 10)
    assert ei.value.kind is ErrorKind.DUPLICATE_KEY
    keys = [f"k{i}" for i in range(12)]
    with repo.writer("t", shape=(12, 4), dtype="float32", keys=keys, message="grown",
                     metadata={"step": 7}) as w:
        w.append(np.ones((12, 4), np.float32))
    assert list(repo.keys("t")) == keys
    assert repo.log()[0].metadata["step"] == 7 and repo.log()[0].message == "grown"
    assert repo.table_version("t").identity == {"model": "a"}  # carried over


def test_other_tables_carry_over_and_concurrent_commit_is_kept(tmp_path):
    repo = embfmt.Repo.init(tmp_path)
    repo.commit({"a": np.zeros((4, 2), np.float32), "b": np.zeros((4, 2), np.float32)}, message="1")
    w = repo.writer("a", shape=(4, 2), dtype="float32", message="stream a")
    w.write(2, np.ones((2, 2), np.float32))
    other = repo.commit({"b": np.full((4, 2), 5, np.float32)}, message="b meanwhile")
    w.write(0, np.ones((2, 2), np.float32))
    cid = w.commit()
    assert repo.get_commit(cid).parents == (other,)  # re-parented onto the concurrent commit
    assert repo.read("b")[0, 0] == 5 and repo.read("a").sum() == 8


def test_reverse_order_memory_stays_bounded(tmp_path):
    # 96 MiB written back to front in 1 MiB blocks: every row but the last block waits in the
    # scratch file; Python-visible allocations (numpy registers with tracemalloc) stay at a
    # few drain runs, far below the table.
    n, d = 98_304, 256
    rows_per_block = 1024
    table_bytes = n * d * 4
    repo = embfmt.Repo.init(tmp_path)

    def block(k: int) -> np.ndarray:
        return np.random.default_rng(k).standard_normal((rows_per_block, d)).astype(np.float32)

    fpr = embfmt.Fingerprinter("float32", d)
    for k in range(n // rows_per_block):
        fpr.update(block(k))
    want = fpr.finalize().root
    tracemalloc.start()
    try:
        with repo.writer("t", shape=(n, d), dtype="float32") as w:
            for k in reversed(range(n // rows_per_block)):
                w.write(k * rows_per_block, block(k))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert repo.open("t").fingerprint == want
    assert peak < table_bytes / 3, f"peak {peak / 2**20:.1f} MiB for a {table_bytes / 2**20:.0f} MiB table"


KILLED_WRITER = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    import embfmt
    repo = embfmt.Repo(sys.argv[1])
    x = np.random.default_rng(1).standard_normal((50_000, 32)).astype(np.float32)
    with repo.writer("t", shape=x.shape, dtype="float32", message="never lands") as w:
        w.write(25_000, x[25_000:])   # waits in the scratch file
        w.write(0, x[:20_000])        # hashed and stored as chunk objects
        print("written", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
""")


def test_killed_writer_leaves_repository_verified_and_unchanged(tmp_path):
    repo = embfmt.Repo.init(tmp_path / "r")
    repo.commit({"t": np.zeros((50_000, 32), np.float32)}, message="base")
    head, log = repo.resolve("HEAD"), [c.id for c in repo.log()]
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL and "written" in proc.stdout
    again = embfmt.Repo(tmp_path / "r")
    assert again.resolve("HEAD") == head and [c.id for c in again.log()] == log
    assert again.verify().ok
    left = sorted(n.split("-")[0] for n in os.listdir(tmp_path / "r" / "tmp"))
    assert left == ["lease", "stream"]  # the dead writer's (stale) lease and its scratch file
    again.gc(grace_seconds=0)
    assert os.listdir(tmp_path / "r" / "tmp") == []
    assert again.verify().ok and np.array_equal(again.read("t"), np.zeros((50_000, 32), np.float32))



GC_NOW = textwrap.dedent("""
    import sys, embfmt
    rep = embfmt.Repo(sys.argv[1]).gc()          # default grace: one hour
    print(rep.objects_removed)
""")


def _age_everything(root, seconds: float) -> None:
    """Make every object and temp file look ``seconds`` old (as after a long training run)."""
    for sub in ("objects", "tmp"):
        for dirpath, _, files in os.walk(os.path.join(root, sub)):
            for f in files:
                p = os.path.join(dirpath, f)
                st = os.stat(p)
                os.utime(p, (st.st_atime - seconds, st.st_mtime - seconds))


def test_gc_during_a_long_running_writer_keeps_its_objects(tmp_path):
    repo = embfmt.Repo.init(tmp_path / "r")
    x = _table(40_000, 64, "float32")
    w = repo.writer("t", shape=x.shape, dtype="float32", message="hours of training")
    w.write(0, x[:20_000])          # chunk objects, not referenced by any commit yet
    w.write(30_000, x[30_000:])     # rows waiting in the scratch file
    _age_everything(tmp_path / "r", 2 * 3600)  # the writer has been open for two hours
    proc = subprocess.run([sys.executable, "-c", GC_NOW, str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "0"  # the live writer's lease protected its objects
    w.write(20_000, x[20_000:30_000])
    w.commit()
    assert repo.verify().ok
    assert repo.read("t").view(np.uint32).tobytes() == x.view(np.uint32).tobytes()


def test_a_dead_writers_lease_does_not_block_gc(tmp_path):
    repo = embfmt.Repo.init(tmp_path / "r")
    repo.commit({"t": np.zeros((50_000, 32), np.float32)}, message="base")
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL
    assert any(n.startswith("lease-") for n in os.listdir(tmp_path / "r" / "tmp"))
    _age_everything(tmp_path / "r", 2 * 3600)
    before = embfmt.Repo(tmp_path / "r").disk_usage()
    rep = embfmt.Repo(tmp_path / "r").gc()
    assert rep.objects_removed > 0  # the dead writer's orphaned chunks
    assert os.listdir(tmp_path / "r" / "tmp") == []
    assert embfmt.Repo(tmp_path / "r").disk_usage() < before
    assert embfmt.Repo(tmp_path / "r").verify().ok
