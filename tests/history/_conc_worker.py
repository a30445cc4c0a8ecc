"""Worker processes for test_concurrency.py (run as a script: ``python _conc_worker.py MODE ...``).

Every version a worker commits is derived from its arguments alone, so the test can recompute
it; the worker prints one JSON line per attempt and nothing else.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time

import numpy as np

KILL_DIM = 65536  # 256 KiB float32 rows: chunk_rows 4


def table_data(proc: int, k: int) -> np.ndarray:
    """Version ``k`` of the table of worker ``proc`` (modes tables and same)."""
    rng = np.random.default_rng([proc, k])
    return rng.standard_normal((300 + 7 * k, 24)).astype(np.float32)


@functools.lru_cache(maxsize=1)
def _kill_base() -> np.ndarray:
    return np.random.default_rng(7).standard_normal((12, KILL_DIM)).astype(np.float32)


def kill_data(k: int) -> np.ndarray:
    """Version ``k`` of the kill test's table: row count 5..9, one row set from k (sparse
    against the previous version), every third version fine-tuned (dense)."""
    n = 5 + k % 5
    x = _kill_base()[:n].copy()
    x[k % n] += np.float32(k + 1)
    if k % 3 == 2:
        x *= np.float32(1.0 + 1e-3 * k)
    return x


def kill_keys(k: int) -> np.ndarray:
    return np.arange(5 + k % 5, dtype=np.int64) * 10 + k


def _wait_go(ready: str, go: str) -> None:
    with open(ready, "w"):
        pass
    deadline = time.monotonic() + 60
    while not os.path.exists(go):
        if time.monotonic() > deadline:
            raise SystemExit("no go signal")
        time.sleep(0.002)


def _warm_up() -> None:
    """Load (or compile) every kernel a commit uses, in a scratch repository, so that the
    timed part of a test measures commits, not JIT compilation."""
    import tempfile

    from embfmt.repo import Repo

    with tempfile.TemporaryDirectory() as d, Repo.init(os.path.join(d, "r")) as r:
        x = np.random.default_rng(0).standard_normal((64, 8)).astype(np.float32)
        r.commit({"w": x})
        x[3] += 1  # sparse patch
        r.commit({"w": x})
        r.commit({"w": x * np.float32(1.001)})  # dense delta
        r.read("w")


def _emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main() -> None:
    mode, path = sys.argv[1], sys.argv[2]
    if mode == "put":
        import blake3

        from embfmt.store import LocalStore

        proc, n, ready, go = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
        store = LocalStore(path)
        payload = f"writer {proc} ".encode() * 200
        _wait_go(ready, go)
        won = [j for j in range(n)
               if store.put(blake3.blake3(f"race {j}".encode()).digest(), payload)]
        _emit({"won": won})
        return

    from embfmt.errors import ConflictError, NotFoundError
    from embfmt.repo import Repo

    _warm_up()
    repo = Repo(path)
    if mode in ("tables", "same"):
        proc, n, ready, go = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
        table = f"t{proc}" if mode == "tables" else "shared"
        data = [table_data(proc, k) for k in range(n)]
        _wait_go(ready, go)
        for k in range(n):
            try:
                cid = repo.commit({table: data[k]}, message=f"{proc}:{k}")
                _emit({"k": k, "id": cid})
            except ConflictError as e:
                _emit({"k": k, "conflict": e.kind.value})
    elif mode == "kill":
        # The version index is the commit's depth in the log: derived, never recorded.
        try:
            k = len(repo.log())
        except NotFoundError:  # no commit yet
            k = 0
        _kill_base()
        _emit({"ready": k})
        while True:
            repo.commit({"emb": kill_data(k), "small": kill_data(k)[:, :16].copy()},
                        keys={"small": kill_keys(k)})
            k += 1
    elif mode == "killat":
        # Commit versions in a loop, like "kill", but SIGKILL this process itself at a chosen
        # point: right before the n-th object is published (its temp file written, os.link
        # not called), right after the n-th object landed, right before the n-th ref
        # compare-and-swap (every object and the commit written), or right before the n-th
        # ref file replaces the old one (the new ref's temp file written).
        import signal

        from embfmt.history.ref import RefStore
        from embfmt.store import LocalStore

        stage, n = sys.argv[3], int(sys.argv[4])
        seen = {"count": 0}

        def hit() -> None:
            seen["count"] += 1
            if seen["count"] == n:
                os.kill(os.getpid(), signal.SIGKILL)

        if stage == "link":
            real_link = os.link

            def link(src: str, dst: str, *a: object, **k: object) -> None:
                if os.sep + "objects" + os.sep in dst:
                    hit()
                real_link(src, dst, *a, **k)

            os.link = link  # type: ignore[assignment]
        elif stage == "object":
            # An object has landed when its file is linked into objects/ (objects of a commit
            # are published on the store's I/O threads; the kill takes the whole process).
            real_publish = LocalStore._publish

            def publish(self: LocalStore, *a: object, **k: object) -> bool:
                wrote = real_publish(self, *a, **k)
                if wrote:
                    hit()
                return wrote

            LocalStore._publish = publish  # type: ignore[method-assign]
        elif stage == "cas":
            real_cas = RefStore.cas

            def cas(self: RefStore, *a: object, **k: object) -> None:
                hit()
                real_cas(self, *a, **k)

            RefStore.cas = cas  # type: ignore[method-assign]
        elif stage == "ref":
            real_replace = os.replace

            def replace(src: str, dst: str, *a: object, **k: object) -> None:
                if os.sep + "refs" + os.sep in str(dst):
                    hit()
                real_replace(src, dst, *a, **k)

            os.replace = replace  # type: ignore[assignment]
        else:
            raise SystemExit(f"unknown stage {stage}")
        try:
            k = len(repo.log())
        except NotFoundError:
            k = 0
        _emit({"ready": k})
        while True:
            repo.commit({"emb": kill_data(k), "small": kill_data(k)[:, :16].copy()},
                        keys={"small": kill_keys(k)})
            k += 1
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
