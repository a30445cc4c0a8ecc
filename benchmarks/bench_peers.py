"""Workload W on embfmt and on its peers from the registry, in one run, in rotation (issue 15).

Every system runs the same scenario on the same arrays, in a fresh directory per round; the
systems take turns (the order rotates each round) so that a noisy neighbour hits all of them
alike, and each figure is the median over the rounds. The table prints each system's time,
the best peer (a system that keeps history: every peer here does; the numpy baselines don't)
and the ratio embfmt / best peer (below 1: embfmt ahead).

Workload W (seeded, the one of bench_store.py): v1 = N x 128 float32 N(0,1), N = 1,000,000
by default; v2 = v1 with 1% of rows (scattered) replaced; v3 = v2 * (1 + 1e-3 N(0,1)) (every
row changes: a fine-tuning step); v4 = v3 plus N/100 appended rows; v5 = v4 again (identical).

Steps, per system: v1 commit; v2 (peers are told which rows changed, embfmt gets the whole
table); v3; v4 (peers get the appended rows, embfmt the whole table); v5, the identical
rewrite (everyone gets the whole table: nobody is told that nothing changed); read 1,000
random rows of v3; full read of v1; gc after a rollback to v1; and the bytes each version adds
on disk (allocated blocks, as `du` counts them, hard links once). Every read is checked bit for
bit against the arrays, untimed. Baselines of the same rounds: np.save + BLAKE3 (of v1) and
np.load (of v1), and np.load with mmap_mode='r' + fancy indexing for the random rows.

    python benchmarks/bench_peers.py --full              # 1M rows, 5 rounds: the markdown table
    python benchmarks/bench_peers.py --rows 250000 --rounds 5
    python benchmarks/bench_peers.py --rows 100000 --rounds 3 --only embfmt,lance
    python benchmarks/bench_peers.py --rows 250000 --profile   # where embfmt's v2 commit and
                                                              # random read spend their time
                                                              # (py-spy, every thread)

The peers install with `pip install -e ".[peers]"` (pylance, icechunk + zarr, tiledb, dvc); a
peer that is not installed is left out of the table (and skipped, with its reason, in the
smoke tests). CI runs the pytest entry points below with --benchmark-disable (small sizes,
nothing timed).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import io
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from typing import Any

import blake3
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import embfmt  # noqa: E402
from _timing import print_table  # noqa: E402
from embfmt.environment import cpu_model  # noqa: E402
from bench_store import workload  # noqa: E402

DIM = 128
RANDOM_ROWS = 1000
CHUNK_ROWS = 2048  # 2048 rows x 512 B = 1 MiB: embfmt's chunk; the chunk/tile size given to the peers


def du_bytes(path: str) -> int:
    """Allocated bytes under ``path`` (files and directories), as ``du -s -B1`` counts them:
    st_blocks x 512, each inode once."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for dp, dns, fns in os.walk(path):
        for name in [*dns, *fns, ""]:
            p = os.path.join(dp, name) if name else dp
            try:
                st = os.lstat(p)
            except FileNotFoundError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
    return total


# ---- the systems ------------------------------------------------------------------------------
# Each adapter drives one system through the scenario with its documented API. ``path`` is a
# fresh directory per round; the adapter keeps what it needs to find version k again (a commit
# id, a Lance version number, an Icechunk snapshot id, a TileDB timestamp, a DVC file's md5).


class System:
    name = ""
    module = ""  # what must import for the system to run
    package = ""  # the registry package that provides it
    keeps_history = True

    def available(self) -> str | None:
        """None when the system can run here, else why not."""
        if not self.module:
            return None
        try:
            __import__(self.module)
        except Exception as e:  # noqa: BLE001 - any import failure means: not available
            return f"{self.package} not installed ({type(e).__name__}: {e}); pip install -e '.[peers]'"
        return None

    def settings(self) -> str:
        return ""

    def open(self, path: str) -> None:
        self.path = path

    def close(self) -> None:
        pass

    # Steps. ``whole(k, x)`` stores the whole table ``x`` as version k; a system that can be told
    # what changed overrides v2 (rows replaced: their indices and values) and v4 (rows appended).
    def whole(self, k: int, x: np.ndarray) -> None:
        raise NotImplementedError

    def v1(self, x: np.ndarray) -> None:
        self.whole(1, x)

    def v2(self, x: np.ndarray, rows: np.ndarray, values: np.ndarray) -> None:
        self.whole(2, x)

    def v3(self, x: np.ndarray) -> None:
        self.whole(3, x)

    def v4(self, x: np.ndarray, appended: np.ndarray) -> None:
        self.whole(4, x)

    def v5(self, x: np.ndarray) -> None:
        self.whole(5, x)

    def read_rows(self, version: int, idx: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def read_full(self, version: int) -> np.ndarray:
        raise NotImplementedError

    def gc_rollback(self, version: int) -> None:
        raise NotImplementedError

    def read_rolled_back(self, version: int) -> np.ndarray:
        """The table after gc_rollback(version): what the store now holds as current."""
        return self.read_full(version)

    def read_in_row_order(self, version: int) -> np.ndarray:
        """Version k whole, in row order (for the checks; read_full may assume row order)."""
        return self.read_full(version)

    def disk_path(self) -> str:
        return self.path


class Embfmt(System):
    """Repo.commit of the whole table at every step (the API has no named-row update yet)."""

    def __init__(self, durable: bool = True) -> None:
        self.durable = durable
        self.name = "embfmt" if durable else "embfmt (durable off)"

    def settings(self) -> str:
        return (f"embfmt {embfmt.__version__}: defaults (1 MiB chunks, zstd byte planes, deltas), "
                f"durable={'on (fsyncs, the default)' if self.durable else 'off'}; whole table "
                f"handed to Repo.commit at every step; rows via Repo.open(...).rows(idx); gc = "
                f"reset('main', v1) + gc(grace_seconds=0, reflog_expire_seconds=0)")

    def open(self, path: str) -> None:
        self.path = path
        self.repo = embfmt.Repo.init(path, durable=self.durable)
        self.ids: dict[int, str] = {}

    def close(self) -> None:
        self.repo.close()

    def whole(self, k: int, x: np.ndarray) -> None:
        self.ids[k] = self.repo.commit({"emb": x}, message=f"v{k}")

    def read_rows(self, version: int, idx: np.ndarray) -> np.ndarray:
        self.repo.reader.clear()  # decoded chunks are not kept between steps
        return self.repo.open("emb", self.ids[version]).rows(idx)

    def read_full(self, version: int) -> np.ndarray:
        self.repo.reader.clear()
        return self.repo.read("emb", self.ids[version])

    def gc_rollback(self, version: int) -> None:
        self.repo.reset("main", self.ids[version])
        self.repo.gc(grace_seconds=0, reflog_expire_seconds=0)


class Lance(System):
    """A Lance dataset (id int64, vec fixed_size_list<float32, 128>), one version per step."""

    name = "Lance"
    module = "lance"
    package = "pylance"

    def settings(self) -> str:
        import lance

        fmt = getattr(self, "fmt", "?")
        return (f"Lance (pylance {lance.__version__}): write_dataset defaults (data storage "
                f"version {fmt}, 1,048,576 rows per file, 1,024 per group); v2 = merge_insert('id')"
                f".when_matched_update_all() of the changed rows; v3 and v5 = mode='overwrite'; "
                f"v4 = mode='append' of the new rows; rows = dataset(version=3).take(idx); gc = "
                f"checkout_version(1).restore() + cleanup_old_versions(older_than=0, "
                f"delete_unverified=True)")

    def open(self, path: str) -> None:
        self.path = path
        self.uri = os.path.join(path, "emb.lance")
        self.ver: dict[int, int] = {}

    @staticmethod
    def _table(ids: np.ndarray, x: np.ndarray) -> Any:
        import pyarrow as pa

        vec = pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(x).reshape(-1)), DIM)
        return pa.table({"id": pa.array(ids, type=pa.int64()), "vec": vec})

    def _write(self, k: int, ids: np.ndarray, x: np.ndarray, mode: str) -> None:
        import lance

        ds = lance.write_dataset(self._table(ids, x), self.uri, mode=mode)
        self.ver[k] = ds.version
        self.fmt = ds.data_storage_version

    def whole(self, k: int, x: np.ndarray) -> None:
        self._write(k, np.arange(len(x)), x, "create" if k == 1 else "overwrite")

    def v2(self, x: np.ndarray, rows: np.ndarray, values: np.ndarray) -> None:
        import lance

        ds = lance.dataset(self.uri)
        ds.merge_insert("id").when_matched_update_all().execute(self._table(rows, values))
        self.ver[2] = lance.dataset(self.uri).version

    def v4(self, x: np.ndarray, appended: np.ndarray) -> None:
        self._write(4, np.arange(len(x) - len(appended), len(x)), appended, "append")

    @staticmethod
    def _matrix(t: Any) -> np.ndarray:
        col = t.column("vec").combine_chunks()
        return col.flatten().to_numpy(zero_copy_only=False).reshape(-1, DIM)

    def read_rows(self, version: int, idx: np.ndarray) -> np.ndarray:
        import lance

        # v3 was one overwrite in row order, so row i of the table is offset i of the dataset.
        return self._matrix(lance.dataset(self.uri, version=self.ver[version]).take(idx, columns=["vec"]))

    def read_full(self, version: int) -> np.ndarray:
        import lance

        return self._matrix(lance.dataset(self.uri, version=self.ver[version]).to_table(columns=["vec"]))

    def read_in_row_order(self, version: int) -> np.ndarray:
        import lance

        # merge_insert moves the rows it updates to a new fragment: order by id.
        t = lance.dataset(self.uri, version=self.ver[version]).to_table(columns=["id", "vec"])
        return self._matrix(t)[np.argsort(t.column("id").to_numpy(), kind="stable")]

    def read_rolled_back(self, version: int) -> np.ndarray:
        import lance

        return self._matrix(lance.dataset(self.uri).to_table(columns=["vec"]))  # old versions are gone

    def gc_rollback(self, version: int) -> None:
        import lance

        ds = lance.dataset(self.uri)
        ds.checkout_version(self.ver[version]).restore()
        lance.dataset(self.uri).cleanup_old_versions(older_than=_dt.timedelta(0), delete_unverified=True)


class Icechunk(System):
    """An Icechunk repository on the local file system holding one Zarr v3 array, chunks of
    2048 x 128 (1 MiB), a commit per step."""

    name = "Icechunk"
    module = "icechunk"
    package = "icechunk"

    def settings(self) -> str:
        import icechunk
        import zarr

        return (f"Icechunk {icechunk.__version__} + zarr {zarr.__version__}: "
                f"local_filesystem_storage, default repository config; array chunks "
                f"({CHUNK_ROWS}, {DIM}) float32, zarr's default codecs (bytes + zstd level 0); "
                f"v2 = orthogonal write of the changed rows (every chunk they touch is rewritten); "
                f"v4 = resize + write of the new rows; rows = get_orthogonal_selection on a "
                f"readonly_session(snapshot_id); gc = reset_branch('main', v1) + "
                f"expire_snapshots(now) + garbage_collect(now)")

    def open(self, path: str) -> None:
        import icechunk

        icechunk.set_logs_filter("error")  # not its warning that local storage is single-writer
        self.path = path
        self.repo = icechunk.Repository.create(icechunk.local_filesystem_storage(path))
        self.snap: dict[int, str] = {}

    def _session(self) -> tuple[Any, Any]:
        import zarr

        s = self.repo.writable_session("main")
        return s, zarr.open_array(s.store, path="emb", mode="r+")

    def whole(self, k: int, x: np.ndarray) -> None:
        import zarr

        if k == 1:
            s = self.repo.writable_session("main")
            a = zarr.create_array(s.store, name="emb", shape=x.shape, chunks=(CHUNK_ROWS, DIM), dtype=x.dtype)
        else:
            s, a = self._session()
        a[:] = x
        self.snap[k] = s.commit(f"v{k}")

    def v2(self, x: np.ndarray, rows: np.ndarray, values: np.ndarray) -> None:
        s, a = self._session()
        a.set_orthogonal_selection((rows, slice(None)), values)
        self.snap[2] = s.commit("v2")

    def v4(self, x: np.ndarray, appended: np.ndarray) -> None:
        s, a = self._session()
        n = a.shape[0]
        a.resize((n + len(appended), DIM))
        a[n:] = appended
        self.snap[4] = s.commit("v4")

    def _array(self, version: int) -> Any:
        import zarr

        s = self.repo.readonly_session(snapshot_id=self.snap[version])
        return zarr.open_array(s.store, path="emb", mode="r")

    def read_rows(self, version: int, idx: np.ndarray) -> np.ndarray:
        return self._array(version).get_orthogonal_selection((idx, slice(None)))

    def read_full(self, version: int) -> np.ndarray:
        return self._array(version)[:]

    def gc_rollback(self, version: int) -> None:
        self.repo.reset_branch("main", self.snap[version])
        now = _dt.datetime.now(_dt.timezone.utc)
        self.repo.expire_snapshots(older_than=now)
        self.repo.garbage_collect(now)


class TileDB(System):
    """A 1-D sparse TileDB array (dimension row int64, one attribute of 128 float32 cells),
    one fragment per step at timestamps 1..5; reads open the array at a timestamp."""

    name = "TileDB"
    module = "tiledb"
    package = "tiledb"

    def settings(self) -> str:
        import tiledb

        return (f"TileDB-Py {tiledb.__version__} (libtiledb {'.'.join(map(str, tiledb.libtiledb.version()))}): "
                f"sparse, allows_duplicates=False, capacity {CHUNK_ROWS} cells (1 MiB tiles), "
                f"attribute filters ByteShuffle + Zstd (level default), dimension filters default; "
                f"each step one fragment at timestamp k (v2: the changed rows, v4: the new rows, "
                f"v3/v5: all rows); reads open at timestamp k (multi_index of the rows, or [:]); "
                f"gc = Array.delete_fragments(uri, 2, 5) + vacuum")

    def open(self, path: str) -> None:
        import tiledb

        self.path = path
        self.uri = os.path.join(path, "emb")
        dom = tiledb.Domain(tiledb.Dim(name="row", domain=(0, 2**40), tile=CHUNK_ROWS, dtype=np.int64))
        self.rec = np.dtype([(f"f{i}", np.float32) for i in range(DIM)])
        attr = tiledb.Attr(name="v", dtype=self.rec,
                           filters=tiledb.FilterList([tiledb.ByteShuffleFilter(), tiledb.ZstdFilter()]))
        schema = tiledb.ArraySchema(domain=dom, sparse=True, attrs=[attr], capacity=CHUNK_ROWS,
                                    allows_duplicates=False)
        tiledb.Array.create(self.uri, schema)

    def _write(self, k: int, rows: np.ndarray, x: np.ndarray) -> None:
        import tiledb

        with tiledb.open(self.uri, "w", timestamp=k) as a:
            a[rows.astype(np.int64)] = {"v": np.ascontiguousarray(x).view(self.rec).reshape(-1)}

    def whole(self, k: int, x: np.ndarray) -> None:
        self._write(k, np.arange(len(x)), x)

    def v2(self, x: np.ndarray, rows: np.ndarray, values: np.ndarray) -> None:
        self._write(2, rows, values)

    def v4(self, x: np.ndarray, appended: np.ndarray) -> None:
        self._write(4, np.arange(len(x) - len(appended), len(x)), appended)

    def _matrix(self, r: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        return r["row"], r["v"].view(np.float32).reshape(-1, DIM)

    def read_rows(self, version: int, idx: np.ndarray) -> np.ndarray:
        import tiledb

        with tiledb.open(self.uri, timestamp=version) as a:
            rows, m = self._matrix(a.multi_index[[int(i) for i in idx]])
        # TileDB returns the cells in row order; put them in the order asked for.
        return m[np.searchsorted(rows, idx)]

    def read_full(self, version: int) -> np.ndarray:
        import tiledb

        with tiledb.open(self.uri, timestamp=version) as a:
            _, m = self._matrix(a.query(order="G")[:])  # global order: by row
        return m

    def gc_rollback(self, version: int) -> None:
        import tiledb

        tiledb.Array.delete_fragments(self.uri, version + 1, 5)
        tiledb.vacuum(self.uri)


class DVC(System):
    """A DVC project without git (`dvc init --no-scm`): each version is np.save of the table
    and `dvc add` of the file; the .dvc pointer of every version is kept outside the project
    (in place of the git commits that would hold it, which are not timed)."""

    name = "DVC"
    module = "dvc.repo"
    package = "dvc"

    def settings(self) -> str:
        import dvc

        return (f"DVC {dvc.__version__}: init --no-scm, cache type default (reflink,copy: a copy "
                f"on this file system); every version = np.save of the whole .npy + Repo.add "
                f"(file granularity: no row-level update); history = the .dvc pointers; rows = "
                f"np.load(mmap_mode='r') of the cached .npy, fancy-indexed; full read = np.load "
                f"of it; gc = pointer of v1 restored + Repo.gc(workspace=True, force=True); "
                f"bytes counted under .dvc/ (cache, state), not the workspace copy")

    def open(self, path: str) -> None:
        from dvc.repo import Repo

        self.path = path
        Repo.init(path, no_scm=True)
        self.repo = Repo(path)
        self.file = os.path.join(path, "emb.npy")
        self.pointer = self.file + ".dvc"
        self.hist: dict[int, bytes] = {}

    def close(self) -> None:
        self.repo.close()

    def whole(self, k: int, x: np.ndarray) -> None:
        np.save(self.file, x)
        self.repo.add(self.file)
        with open(self.pointer, "rb") as f:
            self.hist[k] = f.read()

    def _cached(self, version: int) -> str:
        text = self.hist[version].decode()
        md5 = text.split("md5:", 1)[1].split()[0]
        return os.path.join(self.path, ".dvc", "cache", "files", "md5", md5[:2], md5[2:])

    def read_rows(self, version: int, idx: np.ndarray) -> np.ndarray:
        return np.load(self._cached(version), mmap_mode="r")[idx]

    def read_full(self, version: int) -> np.ndarray:
        return np.load(self._cached(version))

    def gc_rollback(self, version: int) -> None:
        with open(self.pointer, "wb") as f:
            f.write(self.hist[version])
        self.repo.gc(workspace=True, force=True)

    def disk_path(self) -> str:
        return os.path.join(self.path, ".dvc")


class Numpy(System):
    """The baselines: np.save + BLAKE3 (AUTO threads) of v1, np.load of it, and np.load with
    mmap_mode='r' + fancy indexing for the random rows. Keeps no history."""

    name = "numpy"
    keeps_history = False

    def settings(self) -> str:
        return (f"baselines: numpy {np.__version__} np.save + blake3 {blake3.__version__ if hasattr(blake3, '__version__') else ''} "
                f"(max_threads=AUTO) of v1; np.load of that .npy; np.load(mmap_mode='r')[idx] for rows")

    def open(self, path: str) -> None:
        self.path = path
        self.file = os.path.join(path, "v1.npy")

    def whole(self, k: int, x: np.ndarray) -> None:
        np.save(self.file, x)
        blake3.blake3(x.view(np.uint8).reshape(-1), max_threads=blake3.blake3.AUTO).digest()

    def read_rows(self, version: int, idx: np.ndarray) -> np.ndarray:
        return np.load(self.file, mmap_mode="r")[idx]

    def read_full(self, version: int) -> np.ndarray:
        return np.load(self.file)


SYSTEMS: dict[str, Callable[[], System]] = {
    "embfmt": Embfmt,
    "embfmt-nodurable": lambda: Embfmt(durable=False),
    "lance": Lance,
    "icechunk": Icechunk,
    "tiledb": TileDB,
    "dvc": DVC,
    "numpy": Numpy,
}

STEPS = ["v1 commit", "v2: 1% of rows replaced", "v3: every row changed", "v4: 1% rows appended",
         "v5: identical rewrite", f"read {RANDOM_ROWS:,} random rows of v3", "full read of v1",
         "gc after rollback to v1"]
BYTES = ["bytes v1", "bytes added by v2", "bytes added by v3", "bytes added by v4",
         "bytes added by v5", "bytes after gc"]


class Workload:
    def __init__(self, n: int, seed: int = 0) -> None:
        v = workload(n, DIM, seed)
        self.versions = v
        self.n = n
        u1, u2 = v[0].view(np.uint32), v[1].view(np.uint32)
        self.changed = np.flatnonzero((u1 != u2).any(axis=1))
        self.values = np.ascontiguousarray(v[1][self.changed])
        self.appended = np.ascontiguousarray(v[3][n:])
        rng = np.random.default_rng(seed + 1)
        self.idx = rng.choice(n, min(RANDOM_ROWS, n), replace=False)  # unsorted, as a user asks


def _quiet(f: Callable[[], Any]) -> Any:
    """Run a system's call with its warnings (pytest turns them into errors) and its messages
    on stdout (DVC's) silenced: stdout is the table's."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            return f()
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def scenario(sysobj: System, w: Workload, path: str, *, check_all: bool = False) -> dict[str, float]:
    """One system through every step in a fresh directory: seconds per step, bytes per
    version. Reads are checked bit for bit (untimed); with ``check_all``, every version is
    also read back whole and compared before the timed reads (untimed)."""
    v = w.versions
    out: dict[str, float] = {}
    os.makedirs(path)
    _quiet(lambda: sysobj.open(path))

    def timed(step: str, f: Callable[[], Any]) -> Any:
        # Untimed: write back what earlier steps (or systems) left dirty, so that no step pays
        # for another's writeback; the page cache stays warm for the reads.
        os.sync()
        t0 = time.perf_counter()
        r = _quiet(f)
        out[step] = time.perf_counter() - t0
        return r

    try:
        if isinstance(sysobj, Numpy):
            timed(STEPS[0], lambda: sysobj.v1(v[0]))
            rows = timed(STEPS[5], lambda: sysobj.read_rows(1, w.idx))
            assert np.array_equal(rows.view(np.uint32), v[0][w.idx].view(np.uint32))
            full = timed(STEPS[6], lambda: sysobj.read_full(1))
            assert full.tobytes() == v[0].tobytes()
            out[BYTES[0]] = du_bytes(sysobj.path)
            return out
        calls = [lambda: sysobj.v1(v[0]), lambda: sysobj.v2(v[1], w.changed, w.values),
                 lambda: sysobj.v3(v[2]), lambda: sysobj.v4(v[3], w.appended), lambda: sysobj.v5(v[4])]
        before = du_bytes(sysobj.disk_path())
        for step, b, call in zip(STEPS[:5], BYTES[:5], calls):
            timed(step, call)
            after = du_bytes(sysobj.disk_path())
            out[b] = after - before
            before = after
        if check_all:
            for k, want in enumerate(v, start=1):
                got = _quiet(lambda: sysobj.read_in_row_order(k))
                assert got.shape == want.shape and got.tobytes() == want.tobytes(), (sysobj.name, k)
        rows = timed(STEPS[5], lambda: sysobj.read_rows(3, w.idx))
        assert rows.shape == (len(w.idx), DIM) and rows.dtype == np.float32, (sysobj.name, rows.shape)
        assert np.array_equal(rows.view(np.uint32), v[2][w.idx].view(np.uint32)), sysobj.name
        full = timed(STEPS[6], lambda: sysobj.read_full(1))
        assert full.shape == v[0].shape and full.tobytes() == v[0].tobytes(), sysobj.name
        del full
        timed(STEPS[7], lambda: sysobj.gc_rollback(1))
        out[BYTES[5]] = du_bytes(sysobj.disk_path())
        # What the rollback kept must still read back.
        again = _quiet(lambda: sysobj.read_rolled_back(1))
        assert again.tobytes() == v[0].tobytes(), sysobj.name
        return out
    finally:
        _quiet(sysobj.close)


def available_systems(names: list[str]) -> tuple[list[System], dict[str, str]]:
    systems, skipped = [], {}
    for n in names:
        s = SYSTEMS[n]()
        why = s.available()
        if why is None:
            systems.append(s)
        else:
            skipped[s.name] = why
    return systems, skipped


def run(names: list[str], n: int, rounds: int, workdir: str, *, warmup_rows: int = 4096,
        progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Every available system through the scenario ``rounds`` times, in rotation; medians."""
    systems, skipped = available_systems(names)
    # Untimed warm-up on a small table: imports, Numba's kernel load, each library's first use.
    wu = Workload(min(warmup_rows, n))
    for s in systems:
        scenario(s, wu, os.path.join(workdir, f"warmup-{s.name}".replace(" ", "_")), check_all=True)
    w = Workload(n)
    samples: dict[str, dict[str, list[float]]] = {s.name: {} for s in systems}
    for r in range(rounds):
        order = systems[r % len(systems):] + systems[:r % len(systems)]
        for s in order:
            d = os.path.join(workdir, f"r{r}-{s.name}".replace(" ", "_").replace("(", "").replace(")", ""))
            t0 = time.perf_counter()
            res = scenario(s, w, d)
            shutil.rmtree(d, ignore_errors=True)
            for k, val in res.items():
                samples[s.name].setdefault(k, []).append(val)
            if progress:
                progress(f"round {r + 1}/{rounds} {s.name}: {time.perf_counter() - t0:.1f} s")
    med = {s: {k: statistics.median(v) for k, v in d.items()} for s, d in samples.items()}
    return {"median": med, "samples": samples, "skipped": skipped, "rows": n, "rounds": rounds,
            "settings": {s.name: s.settings() for s in systems},
            "history": {s.name: s.keeps_history for s in systems},
            "changed_rows": len(w.changed), "appended_rows": len(w.appended)}


def _t(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.2f} s" if x >= 1 else f"{x * 1e3:.3g} ms"


def _b(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x / 2**20:.3g} MiB" if abs(x) >= 2**20 else f"{x / 1024:.3g} KiB"


def table(res: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Markdown rows: one per step, a column per system, then the best peer that keeps
    history and the ratio of each embfmt variant to it."""
    med = res["median"]
    names = list(med)
    ours = [s for s in names if s.startswith("embfmt")]
    peers = [s for s in names if res["history"][s] and s not in ours]
    header = ["step", *names, "best peer", *[f"{o} / best peer" for o in ours]]
    rows = []
    for step in [*STEPS, *BYTES]:
        fmt = _b if step.startswith("bytes") else _t
        cells = [fmt(med[s].get(step)) for s in names]
        have = [(med[p][step], p) for p in peers if step in med[p]]
        best = min(have) if have else None
        ratios = []
        for o in ours:
            mine = med[o].get(step)
            ok = best is not None and mine is not None and best[0] > 0
            ratios.append(f"{mine / best[0]:.2f}" if ok else "-")
        rows.append([step, *cells, f"{best[1]} {fmt(best[0])}" if best else "-", *ratios])
    return header, rows


def _pyspy_collect(run: Callable[[], None], raw: str) -> None:
    """Sample this process with py-spy (all threads, on-CPU samples only) while ``run()`` runs."""
    exe = shutil.which("py-spy") or os.path.join(os.path.dirname(sys.executable), "py-spy")
    proc = subprocess.Popen([exe, "record", "--pid", str(os.getpid()), "--rate", "250", "--format", "raw",
                             "--output", raw, "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.5)  # attached
    try:
        run()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)


def _pyspy_summary(raws: list[str], top: int) -> str:
    """Self and inclusive sample shares per function from py-spy's collapsed stacks."""
    own: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    for raw in raws:
        if not os.path.exists(raw):
            continue
        with open(raw) as f:
            for line in f:
                stack, _, count = line.rstrip("\n").rpartition(" ")
                if not stack:
                    continue
                n = int(count)
                frames = [fr.split(" (")[0] + " (" + fr.split(" (")[1].split(":")[0].split("/")[-1] + ")"
                          if " (" in fr else fr for fr in stack.split(";")]
                total += n
                own[frames[-1]] = own.get(frames[-1], 0) + n
                for fr in set(frames):
                    incl[fr] = incl.get(fr, 0) + n
    if not total:
        return "(no samples: is py-spy installed, and may it attach to this process?)\n"
    lines = [f"{total} samples", "", "| self | function |", "|---|---|"]
    lines += [f"| {100 * c / total:.1f}% | `{k}` |" for k, c in sorted(own.items(), key=lambda kv: -kv[1])[:top]]
    lines += ["", "| inclusive | function |", "|---|---|"]
    boiler = ("(threading.py)", "(thread.py)", "(bench_peers.py)")  # thread start-up, this script
    incl = {k: c for k, c in incl.items() if not k.endswith(boiler)}
    lines += [f"| {100 * c / total:.1f}% | `{k}` |" for k, c in sorted(incl.items(), key=lambda kv: -kv[1])[:top]]
    return "\n".join(lines) + "\n"


def profile_embfmt(n: int, workdir: str, repeat: int = 3, top: int = 20) -> str:
    """Where embfmt's time goes in the v2 commit (1% of rows replaced, whole table handed over;
    durable as shipped and with durability off) and in the read of 1,000 random rows of v3:
    py-spy samples of every thread, ``repeat`` times each on a fresh repository (v1 and v3
    committed untimed, unsampled)."""
    w = Workload(n)
    v = w.versions
    scenario(Embfmt(), Workload(4096), os.path.join(workdir, "pwarm"))  # kernels loaded
    keys = {"v2": "v2 commit (whole table, 1% of rows replaced)",
            "v2-nodurable": "v2 commit, durability off",
            "rows": f"read {RANDOM_ROWS:,} random rows of v3 (5 reads per sample)"}
    raws: dict[str, list[str]] = {k: [] for k in keys}
    times: dict[str, list[float]] = {k: [] for k in keys}

    def sample(key: str, f: Callable[[], Any], reps: int = 1) -> None:
        def run() -> None:
            for _ in range(reps):
                t0 = time.perf_counter()
                f()
                times[key].append(time.perf_counter() - t0)
        raws[key].append(os.path.join(workdir, f"{key}-{len(raws[key])}.txt"))
        _pyspy_collect(run, raws[key][-1])

    for r in range(repeat):
        for durable in (True, False):
            d = os.path.join(workdir, f"prof{r}-{int(durable)}")
            with embfmt.Repo.init(d, durable=durable) as repo:
                repo.commit({"emb": v[0]})
                os.sync()
                sample("v2" if durable else "v2-nodurable", lambda: repo.commit({"emb": v[1]}))
                if durable:
                    c3 = repo.commit({"emb": v[2]})
                    os.sync()
                    sample("rows", lambda: (repo.reader.clear(), repo.open("emb", c3).rows(w.idx)), 5)
            shutil.rmtree(d)
    out = io.StringIO()
    for key, title in keys.items():
        out.write(f"\n#### embfmt, {title}, {n:,} rows: median {statistics.median(times[key]):.3f} s "
                  f"over {len(times[key])}\n\n")
        out.write(_pyspy_summary(raws[key], top))
    return out.getvalue()


KEEP_MEMORY_ENV = {"MALLOC_TRIM_THRESHOLD_": str(2**40), "MALLOC_MMAP_THRESHOLD_": str(2**32),
                   "ARROW_DEFAULT_MEMORY_POOL": "system"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--full", action="store_true", help="1,000,000 rows, 5 rounds (the issue's table)")
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", default=",".join(SYSTEMS), help=f"comma-separated, of {', '.join(SYSTEMS)}")
    ap.add_argument("--json", help="also write the raw samples here")
    ap.add_argument("--keep-memory", action="store_true",
                    help="re-run with glibc told to keep freed memory (and pyarrow on glibc): on a VM "
                         "whose host reclaims freed pages, touching fresh memory costs ~ms per MiB")
    ap.add_argument("--profile", action="store_true",
                    help="only profile embfmt's v2 commit and random read (py-spy, all threads)")
    a = ap.parse_args()
    if a.full:
        a.rows, a.rounds = 1_000_000, max(a.rounds, 5)
    if a.keep_memory and os.environ.get("MALLOC_TRIM_THRESHOLD_") is None:
        # Every library here allocates through glibc's malloc (the Rust and C++ ones too), pyarrow
        # once told to: huge trim and mmap thresholds keep freed memory in the process.
        env = {**os.environ, **KEEP_MEMORY_ENV}
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    work = tempfile.mkdtemp(prefix="embfmt-peers-")
    try:
        if a.profile:
            print(profile_embfmt(a.rows, work))
            return
        names = [s.strip() for s in a.only.split(",") if s.strip()]
        for s in names:
            if s not in SYSTEMS:
                ap.error(f"unknown system {s!r} (have {', '.join(SYSTEMS)})")
        if os.environ.get("MALLOC_TRIM_THRESHOLD_") is not None:
            print("memory: " + " ".join(f"{k}={os.environ.get(k)}" for k in KEEP_MEMORY_ENV))
        print(f"machine: {platform.machine()}, {os.cpu_count()} cpus ({cpu_model()}), "
              f"{os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f} GiB, "
              f"python {platform.python_version()}, numpy {np.__version__}; load average "
              f"{os.getloadavg()[0]:.1f}; {_dt.datetime.now().isoformat(timespec='minutes')}", flush=True)
        t0 = time.perf_counter()
        res = run(names, a.rows, a.rounds, work, progress=lambda m: print("  " + m, file=sys.stderr, flush=True))
        header, rows = table(res)
        print()
        print_table(f"workload W, {a.rows:,} x {DIM} float32 ({a.rows * DIM * 4 / 2**20:.0f} MiB), "
                    f"{res['changed_rows']:,} rows replaced in v2, {res['appended_rows']:,} appended in v4; "
                    f"systems in rotation, median of {a.rounds} rounds", header, rows)
        print("\nSettings:")
        for name, s in res["settings"].items():
            print(f"- {s}")
        for name, why in res["skipped"].items():
            print(f"- {name}: not run: {why}")
        print(f"\nwall time {time.perf_counter() - t0:.0f} s; load average now {os.getloadavg()[0]:.1f}")
        if a.json:
            with open(a.json, "w") as f:
                json.dump(res, f, indent=1)
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ---- pytest entry points (smoke in CI: small sizes, nothing timed) ----------------------------
def pytest_generate_tests(metafunc: Any) -> None:
    if "system" in metafunc.fixturenames:
        metafunc.parametrize("system", list(SYSTEMS))


def test_bench_peers_smoke(system: str, tmp_path: Any) -> None:
    """Each system runs the whole scenario on a small table (reads checked bit for bit inside);
    a peer that is not installed is skipped with the reason."""
    import pytest

    name = system
    s = SYSTEMS[name]()
    why = s.available()
    if why is not None:
        pytest.skip(why)
    res = scenario(s, Workload(3000), str(tmp_path / "s"), check_all=True)
    want = {STEPS[0], STEPS[5], STEPS[6]} if name == "numpy" else set(STEPS) | set(BYTES)
    assert want <= set(res), sorted(want - set(res))
    assert all(v >= 0 for k, v in res.items() if not k.startswith("bytes added"))


def test_bench_peers_table_smoke(tmp_path: Any) -> None:
    res = run(["embfmt", "numpy", "lance"], 2500, 2, str(tmp_path), warmup_rows=500)
    header, rows = table(res)
    assert len(rows) == len(STEPS) + len(BYTES) and all(len(r) == len(header) for r in rows)
    if "Lance" in res["median"]:  # every step has a peer figure, bytes of v5 aside (may be 0)
        assert all(r[-1] != "-" for r in rows if r[0] != BYTES[4])


def test_pyspy_summary(tmp_path: Any) -> None:
    raw = tmp_path / "raw.txt"
    raw.write_text("Thread._bootstrap (threading.py:1002);commit (embfmt/repo.py:712);fsync_fd (embfmt/_fs.py:40) 3\n"
                   "Thread._bootstrap (threading.py:1002);commit (embfmt/repo.py:712) 1\n")
    text = _pyspy_summary([str(raw)], 5)
    assert "4 samples" in text and "| 75.0% | `fsync_fd (_fs.py)` |" in text
    assert "| 100.0% | `commit (repo.py)` |" in text and "threading.py" not in text.split("inclusive")[1]


if __name__ == "__main__":
    main()
