"""Blame equals a brute-force scan of every version, by row and by key, over seeded random
histories (row edits, appends, truncations, key reorderings, deletions, dtype changes, table
removal, restores, unrelated commits), and decodes no chunk where the row did not change."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from embfmt._kernels import reference

from embfmt.compare.blame import blame
from embfmt.errors import InputError, NotFoundError
from embfmt.repo import Repo

D = 2048  # float32 rows of 8 KiB: chunk_rows 128, so a few hundred rows make several chunks


def _bits(v: Any) -> Any:
    return v if isinstance(v, int) else struct.pack("<d", v)


def _drift_key(d: dict[str, Any] | None) -> Any:
    return None if d is None else tuple(_bits(d[m]) for m in ("l2", "cosine", "max_abs", "ulp"))


class History:
    """A seeded random history of table ``t`` (keys always given) and an unrelated table."""

    def __init__(self, repo: Repo, seed: int, n_commits: int, str_keys: bool = False) -> None:
        self.repo = repo
        rng = np.random.default_rng(seed)
        self.rng = rng
        n = int(rng.integers(150, 420))
        self.next_key = 0
        self.str_keys = str_keys
        x = rng.standard_normal((n, D)).astype(np.float32)
        keys = self._new_keys(n)
        self.all_keys = list(keys)
        self.max_rows = n
        self.ops: list[str] = []
        repo.commit({"t": x, "u": x[:3, :8]}, keys={"t": self._k(keys)}, message="c0")
        present = True
        for i in range(1, n_commits):
            op = str(rng.choice(["edit", "edit", "edit", "append", "truncate", "reorder", "delete",
                                 "other", "finetune", "rekey", "same", "dtype", "drop", "restore"]))
            if not present:
                op = "readd"
            self.ops.append(op)
            msg = f"c{i} {op}"
            if op == "other":
                repo.commit({"u": rng.standard_normal((3, 8)).astype(np.float32)}, message=msg)
                continue
            if op == "drop":
                repo.commit({}, remove=("t",), message=msg)
                present = False
                continue
            if op == "restore" and i >= 2:
                target = repo.resolve(f"HEAD~{int(rng.integers(1, i))}")
                if "t" not in repo.get_commit(target).tables:
                    target = repo.resolve("HEAD")
                repo.restore(target, message=msg)
                x = repo.read("t")
                keys = list(repo.keys("t"))
                continue
            allow = False
            if op == "edit":
                rows = rng.choice(len(x), size=min(len(x), int(rng.integers(1, 12))), replace=False)
                x = x.copy()
                x[rows] += rng.standard_normal((len(rows), D)).astype(x.dtype) * x.dtype.type(0.01)
                # some edits write the same bytes back: not a change
                x[rows[:1]] = repo.read("t")[rows[:1]] if rng.random() < 0.3 else x[rows[:1]]
            elif op == "append":
                k = int(rng.integers(1, 150))
                x = np.concatenate([x, rng.standard_normal((k, D)).astype(x.dtype)])
                keys = keys + self._new_keys(k)
            elif op == "truncate" and len(x) > 20:
                k = int(rng.integers(1, min(100, len(x) - 10)))
                x, keys = x[:-k], keys[:-k]
            elif op == "reorder":
                perm = rng.permutation(len(x))
                x, keys = x[perm], [keys[j] for j in perm]
            elif op == "delete" and len(x) > 20:
                j = int(rng.integers(0, len(x)))
                x, keys = np.delete(x, j, axis=0), keys[:j] + keys[j + 1:]
            elif op == "finetune":
                x = (x * x.dtype.type(1.001)).astype(x.dtype)
            elif op == "rekey":
                j = rng.choice(len(keys), size=min(5, len(keys)), replace=False)
                keys = list(keys)
                for jj in j:
                    keys[jj] = self._new_keys(1)[0]
            elif op == "dtype":
                x = x.astype(np.float64 if x.dtype == np.float32 else np.float32)
                allow = True
            elif op == "readd":
                n2 = int(rng.integers(50, 300))
                x = rng.standard_normal((n2, D)).astype(np.float32)
                keys = self._new_keys(n2)
                keys[: min(10, n2)] = self.all_keys[:min(10, n2)]  # some old keys come back
                present = True
                allow = True
            self.max_rows = max(self.max_rows, len(x))
            self.all_keys.extend(k for k in keys if k not in set(self.all_keys))
            repo.commit({"t": x}, keys={"t": self._k(keys)}, message=msg, allow_schema_change=allow)

    def _new_keys(self, k: int) -> list[Any]:
        out = list(range(self.next_key * 7 + 3, (self.next_key + k) * 7 + 3, 7))
        self.next_key += k
        return [f"key-{v}" for v in out] if self.str_keys else out

    def _k(self, keys: list[Any]) -> Any:
        return keys if self.str_keys else np.array(keys, dtype=np.int64)


def brute_force(repo: Repo, table: str, row: int | None = None, key: Any = None,
                rev: str = "HEAD", cache: dict | None = None) -> list[tuple]:
    """Read every version whole and compare the row's bytes: the oracle."""
    cache = {} if cache is None else cache
    chain = [c.id for c in repo.log(rev)][::-1]
    events = []
    prev = None
    for cid in chain:
        c = repo.get_commit(cid)
        cur = None
        if table in c.tables:
            if cid not in cache:
                ks = repo.keys(table, cid)
                cache[cid] = (repo.read(table, cid), None if ks is None else list(ks))
            arr, keys = cache[cid]
            if key is None:
                idx = row if row < len(arr) else None
            else:
                idx = keys.index(key) if keys is not None and key in keys else None
            if idx is not None:
                cur = (arr, idx)
        if prev is None and cur is not None:
            events.append(("added", cid, cur[1], None, None))
        elif prev is not None and cur is None:
            events.append(("removed", cid, None, prev[1], None))
        elif prev is not None and cur is not None:
            a, b = prev[0][prev[1]], cur[0][cur[1]]
            if a.dtype != b.dtype or a.shape != b.shape:
                events.append(("changed", cid, cur[1], prev[1], None))
            elif a.tobytes() != b.tobytes():
                ra = np.frombuffer(a.astype(a.dtype.newbyteorder("<")).tobytes(), np.uint8)[None, :]
                rb = np.frombuffer(b.astype(b.dtype.newbyteorder("<")).tobytes(), np.uint8)[None, :]
                code = {np.dtype("float32"): 2, np.dtype("float64"): 1}[a.dtype]
                l2, cos, mx, ulp = reference.row_stats(ra, rb, code)
                d = {"l2": float(l2[0]), "cosine": float(cos[0]), "max_abs": float(mx[0]), "ulp": int(ulp[0])}
                events.append(("changed", cid, cur[1], prev[1], _drift_key(d)))
        prev = cur
    return events[::-1]


def as_tuples(entries: list) -> list[tuple]:
    return [(e.kind, e.commit, e.row, e.parent_row, _drift_key(e.drift)) for e in entries]


@pytest.mark.parametrize("seed", range(6))
def test_blame_matches_brute_force(tmp_path: Path, seed: int) -> None:
    repo = Repo.init(tmp_path / "r")
    h = History(repo, seed, 14, str_keys=seed % 3 == 2)
    fresh = Repo(repo.path)  # nothing cached by the commits
    cache: dict = {}
    rng = np.random.default_rng(100 + seed)
    rows = sorted({0, h.max_rows - 1, *rng.integers(0, h.max_rows, 8).tolist()})
    kinds = set()
    for r in rows:
        want = brute_force(fresh, "t", row=r, cache=cache)
        got = fresh.blame("t", r)
        assert as_tuples(got) == want, (seed, r, h.ops)
        kinds.update(e.kind for e in got)
    keys = [h.all_keys[0], h.all_keys[-1], *[h.all_keys[int(i)] for i in rng.integers(0, len(h.all_keys), 8)]]
    for k in keys:
        want = brute_force(fresh, "t", key=k, cache=cache)
        got = fresh.blame("t", key=k)
        assert as_tuples(got) == want, (seed, k, h.ops)
        assert all(e.key == k for e in got)
    # from an older revision too
    mid = f"HEAD~{len(repo.log()) // 2}"
    for r in rows[:3]:
        want = brute_force(fresh, "t", row=r, rev=mid, cache=cache)
        if want:
            assert as_tuples(fresh.blame("t", r, rev=mid)) == want
        else:
            with pytest.raises(NotFoundError):
                fresh.blame("t", r, rev=mid)
    assert "changed" in kinds and "added" in kinds


def test_blame_entries_carry_commit_facts(tmp_path: Path) -> None:
    repo = Repo.init(tmp_path / "r")
    x = np.zeros((300, D), np.float32)
    repo.commit({"t": x}, message="init", author="alice", time_utc="2026-01-01T00:00:00Z")
    x = x.copy()
    x[5, :3] = [3, 4, 0]
    c2 = repo.commit({"t": x}, message="edit row 5\nlong text", author="bob", time_utc="2026-01-02T00:00:00Z")
    repo.commit({"t": x[:4]}, message="truncate", author="carol")
    e = repo.blame("t", 5)
    assert [x.kind for x in e] == ["removed", "changed", "added"]
    ch = e[1]
    assert (ch.commit, ch.author, ch.time, ch.message) == (c2, "bob", "2026-01-02T00:00:00Z", "edit row 5\nlong text")
    assert ch.drift == {"l2": 5.0, "cosine": 0.0, "max_abs": 4.0, "ulp": ch.drift["ulp"]}
    assert ch.drift_source == "change-record" and ch.parent == repo.resolve("HEAD~2")
    assert e[0].row is None and e[0].parent_row == 5 and e[0].drift is None
    d = ch.to_dict()
    assert set(d) == {"kind", "commit", "parent", "time", "author", "message", "table_version", "row",
                      "parent_row", "key", "drift", "drift_source", "schema_change"}


def _count_decodes(repo: Repo) -> list[bytes]:
    calls: list[bytes] = []
    orig = repo.reader.rows

    def rows(digest: bytes, **kw: Any) -> np.ndarray:
        calls.append(digest)
        return orig(digest, **kw)

    repo.reader.rows = rows  # type: ignore[method-assign]
    return calls


def test_no_decode_where_the_row_did_not_change(tmp_path: Path) -> None:
    repo = Repo.init(tmp_path / "r")
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1000, D)).astype(np.float32)  # 8 chunks of 128 rows
    keys = np.arange(1000, dtype=np.int64) * 3
    repo.commit({"t": x}, keys={"t": keys}, message="v0")
    for i in range(8):
        x = x.copy()
        x[rng.choice(1000, 10, replace=False)] += 1
        if i == 3:
            x[7] -= 2
        repo.commit({"t": x}, keys={"t": keys}, message=f"v{i + 1}")
    r = Repo(repo.path)
    calls = _count_decodes(r)
    for row in (7, 500, 999):
        rep = blame(r.revisions, "t", row)
        # positional changes have change records: nothing is decoded at all
        assert rep.chunks_decoded == 0 and calls == []
        assert all(e.drift_source == "change-record" for e in rep.entries if e.kind == "changed")
    # a row in a chunk that never changed: not even rowprints are read
    y = x.copy()
    r2 = Repo.init(tmp_path / "r2")
    r2.commit({"t": y}, message="a")
    y[0] += 1
    r2.commit({"t": y}, message="b")
    rep = blame(Repo(r2.path).revisions, "t", 999)
    assert rep.rowprint_reads == 0 and [e.kind for e in rep.entries] == ["added"]
    # reordered keys: the row moves, so its drift is computed from exactly two decoded chunks
    perm = rng.permutation(1000)
    x2 = x[perm].copy()
    k2 = keys[perm]
    j = int(np.flatnonzero(k2 == 21)[0])
    x2[j] += 0.5
    repo.commit({"t": x2}, keys={"t": k2}, message="reorder + edit key 21")
    r3 = Repo(repo.path)
    calls = _count_decodes(r3)
    rep = blame(r3.revisions, "t", key=21)
    assert rep.entries[0].message == "reorder + edit key 21" and rep.entries[0].drift_source == "computed"
    assert rep.chunks_decoded == 2 and len(calls) == 2
    assert rep.entries[0].drift["max_abs"] == 0.5
    # an unchanged key after a reorder: rowprints only
    calls.clear()
    rep = blame(r3.revisions, "t", key=300)
    assert calls == [] and all(e.message != "reorder + edit key 21" for e in rep.entries)
    assert as_tuples(rep.entries) == brute_force(r3, "t", key=300)


def test_blame_schema_change_and_string_key_from_cli(tmp_path: Path) -> None:
    repo = Repo.init(tmp_path / "r")
    x = np.ones((10, 4), np.float32)
    repo.commit({"t": x}, keys={"t": np.arange(10) + 100}, message="a")
    repo.commit({"t": x.astype(np.float64)}, keys={"t": np.arange(10) + 100}, message="b",
                allow_schema_change=True)
    e = repo.blame("t", key="103")  # as the CLI passes it
    assert [(x.kind, x.schema_change, x.drift, x.key) for x in e] == [("changed", True, None, 103),
                                                                   ("added", False, None, 103)]


def test_blame_errors(tmp_path: Path) -> None:
    repo = Repo.init(tmp_path / "r")
    repo.commit({"t": np.ones((10, 4), np.float32)}, message="a")
    with pytest.raises(NotFoundError, match="no row 10"):
        repo.blame("t", 10)
    with pytest.raises(NotFoundError, match="no key 5"):
        repo.blame("t", key=5)  # no keys at all
    with pytest.raises(NotFoundError):
        repo.blame("nope", 0)
    for bad in ({"row": -1}, {"row": True}, {"row": 1.5}, {}, {"row": 1, "key": 2}):
        with pytest.raises(InputError):
            repo.blame("t", **bad)  # type: ignore[arg-type]
    with pytest.raises(InputError):
        repo.blame("bad..name", 0)
