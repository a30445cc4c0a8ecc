"""Worker process for the concurrent usage-log test (run as a script).

``python _use_worker.py REPO STAMP PROC N READY GO``: waits until GO exists, then appends N
records for consumer ``proc-PROC`` with context ``{"proc": PROC, "i": i}`` and prints each
record id on its own line.
"""

from __future__ import annotations

import os
import sys
import time


def main() -> None:
    repo_path, stamp, proc, n, ready, go = sys.argv[1:7]
    from embfmt.repo import Repo

    repo = Repo(repo_path)
    with open(ready, "w"):
        pass
    deadline = time.monotonic() + 60
    while not os.path.exists(go):
        if time.monotonic() > deadline:
            raise SystemExit("never released")
        time.sleep(0.002)
    for i in range(int(n)):
        rid = repo.record_use(stamp, consumer=f"proc-{proc}", context={"proc": int(proc), "i": i})
        print(rid, flush=True)
    repo.close()


if __name__ == "__main__":
    main()
