"""Same-run A/B of commit and checkout between two git revisions of embfmt.

    python benchmarks/ab_revisions.py REV_A REV_B                # e.g. 1b6ddf9 main
    python benchmarks/ab_revisions.py 1b6ddf9 main --rows 200000 --rounds 9 --json out.json

Each revision is exported (``git archive``, no worktree or ref is touched) into a temporary
folder and served by its own long-lived worker process that imports embfmt from that folder
(kernels/ mapped to embfmt._kernels as the wheel installs it). Both workers build the same
seeded tables: v1 = ROWS x 128 float32 N(0,1), v2 = v1 with 1% of rows (scattered) replaced.
After one untimed warm-up round each (Numba's kernels load or compile), the rounds alternate
between the revisions, A B, B A, A B, ... so that this shared VM's drift hits both alike;
one round, in a fresh repository: commit v1, commit v2, then checkout (a full read into memory
from a newly opened Repo) of v1 and of v2. It prints the medians, the B/A ratio and each
side's spread, with the CPU time (all threads of the worker) beside the wall time: on a
shared machine the CPU time moves less with the neighbours' load. It checks that both
revisions read back the exact tables and store the same objects (ids and bytes; commits
aside, which hold their time).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from typing import Any

OPS = ("commit v1", "commit v2", "checkout v1", "checkout v2")

# The worker: runs inside one revision's exported tree, reads commands on stdin.
WORKER = r"""
import importlib.util, json, os, shutil, sys, tempfile, time
tree, rows, dim = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sys.path.insert(0, tree)
import embfmt
assert os.path.dirname(os.path.abspath(embfmt.__file__)) == os.path.join(tree, "embfmt"), embfmt.__file__
spec = importlib.util.spec_from_file_location("embfmt._kernels", os.path.join(tree, "kernels", "__init__.py"),
                                              submodule_search_locations=[os.path.join(tree, "kernels")])
kern = importlib.util.module_from_spec(spec)
sys.modules["embfmt._kernels"] = kern
spec.loader.exec_module(kern)
embfmt._kernels = kern
import numpy as np
rng = np.random.default_rng(0)
v1 = rng.standard_normal((rows, dim), dtype=np.float32)
v2 = v1.copy()
idx = rng.choice(rows, rows // 100, replace=False)
v2[idx] = rng.standard_normal((len(idx), dim), dtype=np.float32)
work = tempfile.mkdtemp(prefix="embfmt-ab-")

def stored(path):
    # (sorted ids, total bytes) of the objects other than commits: content-addressed, so the
    # same for two revisions that write the same format (a commit holds its time).
    ids, total = [], 0
    for dp, _, fs in os.walk(os.path.join(path, "objects")):
        for name in fs:
            p = os.path.join(dp, name)
            with open(p, "rb") as fh:
                if fh.read(10) == b"EMBCOMMIT1":
                    continue
            ids.append(os.path.basename(dp) + name)
            total += os.path.getsize(p)
    return sorted(ids), total

def one_round():
    path = os.path.join(work, "repo")
    shutil.rmtree(path, ignore_errors=True)
    out = {}
    repo = embfmt.Repo.init(path)
    def timed(name, f):
        t0, c0 = time.perf_counter(), time.process_time()
        r = f()
        out[name], out[name + " cpu"] = time.perf_counter() - t0, time.process_time() - c0
        return r
    c1 = timed("commit v1", lambda: repo.commit({"emb": v1}, message="v1"))
    c2 = timed("commit v2", lambda: repo.commit({"emb": v2}, message="v2"))
    repo.close()
    ids, total = stored(path)
    for name, cid, want in (("checkout v1", c1, v1), ("checkout v2", c2, v2)):
        def checkout():
            r = embfmt.Repo(path)
            try:
                return r.read("emb", cid)
            finally:
                r.close()
        got = timed(name, checkout)
        assert got.tobytes() == want.tobytes(), name
    out["object_bytes"] = total
    out["objects"] = len(ids)
    out["ids_digest"] = __import__("hashlib").sha256("".join(ids).encode()).hexdigest()[:16]
    return out

for line in sys.stdin:
    cmd = line.strip()
    if cmd == "round":
        print(json.dumps(one_round()), flush=True)
    elif cmd == "quit":
        break
shutil.rmtree(work, ignore_errors=True)
"""


def _git(repo: str, *args: str) -> str:
    return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True, text=True).stdout.strip()


def export(repo: str, rev: str, dest: str) -> str:
    """``git archive`` of ``rev`` unpacked into ``dest``; returns the full commit id."""
    sha = _git(repo, "rev-parse", "--verify", f"{rev}^{{commit}}")
    os.makedirs(dest)
    archive = subprocess.Popen(["git", "-C", repo, "archive", sha], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", dest], stdin=archive.stdout, check=True)
    assert archive.wait() == 0
    return sha


class Worker:
    def __init__(self, tree: str, rows: int, dim: int) -> None:
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="0")
        self.proc = subprocess.Popen([sys.executable, "-c", WORKER, tree, str(rows), str(dim)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)

    def round(self) -> dict[str, float]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("round\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker exited with {self.proc.wait()}")
        return dict(json.loads(line))

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
        self.proc.wait(timeout=120)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("rev_a")
    ap.add_argument("rev_b")
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--repo", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--json", help="also write the samples and medians to this file")
    args = ap.parse_args(argv)
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")

    tmp = tempfile.mkdtemp(prefix="embfmt-ab-trees-")
    workers: dict[str, Worker] = {}
    try:
        shas = {"A": export(args.repo, args.rev_a, os.path.join(tmp, "A")),
                "B": export(args.repo, args.rev_b, os.path.join(tmp, "B"))}
        for side in "AB":
            workers[side] = Worker(os.path.join(tmp, side), args.rows, args.dim)
        for side in "AB":  # warm-up, untimed: Numba loads (or compiles) its kernels
            workers[side].round()
        samples: dict[str, list[dict[str, float]]] = {"A": [], "B": []}
        for r in range(args.rounds):
            for side in ("AB" if r % 2 == 0 else "BA"):
                samples[side].append(workers[side].round())
                print(f"round {r + 1}/{args.rounds} {side}: "
                      + ", ".join(f"{k} {samples[side][-1][k]:.3f}s" for k in OPS), file=sys.stderr, flush=True)
    finally:
        for w in workers.values():
            try:
                w.close()
            except Exception:  # noqa: BLE001 - cleanup only
                w.proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)

    keys = [*OPS, *(f"{k} cpu" for k in OPS)]
    med = {side: {k: statistics.median(s[k] for s in samples[side]) for k in keys} for side in "AB"}
    bytes_ = {side: {(s["object_bytes"], s["objects"], s["ids_digest"]) for s in samples[side]} for side in "AB"}
    mb = args.rows * args.dim * 4 / 2**20
    print(f"\nA = {args.rev_a} ({shas['A'][:9]}), B = {args.rev_b} ({shas['B'][:9]}); "
          f"{args.rows:,} x {args.dim} float32 ({mb:.1f} MiB), v2 = 1% of rows changed; "
          f"{args.rounds} rounds interleaved (AB, BA, ...), medians\n")
    print("| operation | A wall (s) | B wall (s) | B/A wall | A min-max | B min-max | A CPU (s) | B CPU (s) | B/A CPU |")
    print("|---|---|---|---|---|---|---|---|---|")
    for k in OPS:
        a, b = ([s[k] for s in samples[side]] for side in "AB")
        ca, cb = med["A"][f"{k} cpu"], med["B"][f"{k} cpu"]
        print(f"| {k} | {med['A'][k]:.3f} | {med['B'][k]:.3f} | {med['B'][k] / med['A'][k]:.3f} | "
              f"{min(a):.3f}-{max(a):.3f} | {min(b):.3f}-{max(b):.3f} | {ca:.3f} | {cb:.3f} | {cb / ca:.3f} |")
    same = bytes_["A"] == bytes_["B"] and len(bytes_["A"]) == 1
    print(f"\nobjects other than commits (bytes, count, digest of their ids) per round: A {sorted(bytes_['A'])}, "
          f"B {sorted(bytes_['B'])} ({'identical' if same else 'DIFFERENT'})")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"rev_a": args.rev_a, "rev_b": args.rev_b, "sha_a": shas["A"], "sha_b": shas["B"],
                       "rows": args.rows, "dim": args.dim, "rounds": args.rounds,
                       "samples": samples, "medians": med}, f, indent=1)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
