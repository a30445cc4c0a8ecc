"""``checkout`` and ``diff`` on a damaged repository exit 1 (corruption found), as the README
says, with one line naming the object; usage errors on the same repository still exit 2."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

import embfmt

from .test_cli_diff import code, error, run_all


def _damaged(tmp_path: Path) -> tuple[embfmt.Repo, str, str]:
    repo = embfmt.Repo.init(tmp_path / "r")
    x = np.arange(4000, dtype=np.float32).reshape(1000, 4)
    repo.commit({"t": x, "u": x + 100}, message="one")  # no chunk shared
    y = x.copy()
    y[::3] += 1
    repo.commit({"t": y}, message="two")
    flipped = repo.table_version("t").digests[0]
    p = repo.store.path(flipped)
    os.chmod(p, 0o644)
    with open(p, "rb") as f:
        data = bytearray(f.read())
    data[-10] ^= 0x40  # in the payload
    with open(p, "wb") as f:
        f.write(bytes(data))
    gone = repo.table_version("u").digests[0]
    os.unlink(repo.store.path(gone))
    return repo, flipped.hex(), gone.hex()


def test_corruption_found_exits_1(tmp_path: Path) -> None:
    repo, flipped, gone = _damaged(tmp_path)
    np.save(tmp_path / "x.npy", np.zeros((1000, 4), np.float32))  # the table's shape
    C = ("-C", repo.path)
    r = run_all({
        "checkout": (*C, "checkout", "HEAD", "t", "-o", str(tmp_path / "t.npy")),
        "checkout_missing": (*C, "checkout", "HEAD", "u", "-o", str(tmp_path / "u.npy")),
        # --procrustes: not answered from the change object recorded at commit time
        "diff": (*C, "diff", "HEAD~1", "HEAD", "--table", "t", "--procrustes"),
        "diff_all": (*C, "diff", "HEAD~1", "HEAD", "--json", "--procrustes"),
        "verify_array": (*C, "verify-array", str(tmp_path / "x.npy"), "--against", "HEAD",
                         "--table", "t", "--atol", "0.5"),
        "bad_rev": (*C, "checkout", "nosuch", "t", "-o", str(tmp_path / "n.npy")),
        "bad_table": (*C, "diff", "HEAD~1", "HEAD", "--table", "nope"),
    })
    for name, obj in (("checkout", flipped), ("checkout_missing", gone), ("diff", flipped),
                      ("diff_all", flipped), ("verify_array", flipped)):
        res = r[name]
        assert res.returncode == 1, (name, res.returncode, res.stdout, res.stderr)
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("embfmt: error [") and obj[:12] in lines[0], \
            (name, res.stderr)
        assert "embfmt verify" in lines[0]
    assert not (tmp_path / "t.npy").exists() and not (tmp_path / "u.npy").exists()
    error(r["bad_rev"], "not-found", "nosuch")
    error(r["bad_table"], "not-found", "nope")
