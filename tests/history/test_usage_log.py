"""The usage log: append and list, hash chain, and verify catching every kind of tampering on
real files; concurrent appends from real processes keep one valid chain."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import blake3
import numpy as np
import pytest

from embfmt.errors import (
    ErrorKind,
    FormatError,
    InputError,
    IntegrityError,
    NotFoundError,
)
from embfmt.history.lineage import GENESIS, UsageLog
from embfmt.objects.table_version import canonical_json
from embfmt.repo import Repo

from . import _use_worker

LOG = Path("lineage") / "uses.log"
HEAD = Path("lineage") / "uses.head"
WORKER = Path(_use_worker.__file__).resolve()


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    r = Repo.init(tmp_path / "repo")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 16)).astype(np.float32)
    r.commit({"emb": x, "user": x[:10]}, message="v1")
    x[3] += 1
    r.commit({"emb": x}, message="v2")
    yield r
    r.close()


def _lines(repo: Repo) -> list[bytes]:
    return (Path(repo.path) / LOG).read_bytes().split(b"\n")[:-1]


def _write_lines(repo: Repo, lines: list[bytes]) -> None:
    (Path(repo.path) / LOG).write_bytes(b"".join(x + b"\n" for x in lines))


def _fill(repo: Repo, n: int = 6) -> list[str]:
    s1, s2 = repo.stamp("emb", "HEAD~1"), repo.stamp("emb")
    return [repo.record_use(s1 if i % 2 else s2, consumer=f"model-{i}", context={"i": i, "u": "\u2028x\ny"})
            for i in range(n)]


def _verify_errors(repo: Repo) -> list[dict[str, str]]:
    rep = Repo(repo.path).verify()
    assert not rep.ok
    return rep.errors


def test_record_and_list(repo: Repo) -> None:
    s1, s2 = repo.stamp("emb", "HEAD~1"), repo.stamp("emb")
    su = repo.stamp("user")
    assert repo.uses() == []
    r0 = repo.record_use(s1, consumer="ranker-v1", context={"run": 7, "note": "unicode \u2028 ok"})
    r1 = repo.record_use(s2, consumer="ranker-v2")
    r2 = repo.record_use(su, consumer="ranker-v2", context={})
    uses = repo.uses()
    assert [u.id for u in uses] == [r0, r1, r2]
    assert [u.seq for u in uses] == [0, 1, 2]
    assert [u.consumer for u in uses] == ["ranker-v1", "ranker-v2", "ranker-v2"]
    assert uses[0].context == {"run": 7, "note": "unicode \u2028 ok"} and uses[1].context is None
    assert uses[0].prev == GENESIS and uses[1].prev == r0 and uses[2].prev == r1
    assert uses[0].commit == repo.resolve("HEAD~1") and uses[0].table == "emb"
    # the record id is BLAKE3 of the line; the head names the last one
    lines = _lines(repo)
    assert len(lines) == 3 and [blake3.blake3(x).hexdigest() for x in lines] == [r0, r1, r2]
    head = json.loads((Path(repo.path) / HEAD).read_bytes())
    assert head == {"format": 1, "head": r2, "length": sum(len(x) + 1 for x in lines), "records": 3}
    rec = json.loads(lines[0])
    assert set(rec) == {"author", "consumer", "context", "format", "prev", "seq", "stamp", "time"}
    # filters: by revision (a stamp is one too) and by table
    assert [u.id for u in repo.uses("HEAD~1")] == [r0]
    assert [u.id for u in repo.uses(s2)] == [r1, r2]
    assert [u.id for u in repo.uses(table="user")] == [r2]
    assert [u.id for u in repo.uses("HEAD", table="emb")] == [r1]
    assert repo.verify().ok
    d = uses[0].to_dict()
    assert d["stamp"] == s1 and d["id"] == r0


def test_refused_uses_leave_the_log_alone(repo: Repo) -> None:
    s = repo.stamp("emb")
    repo.record_use(s, consumer="a")
    before = (Path(repo.path) / LOG).read_bytes(), (Path(repo.path) / HEAD).read_bytes()
    with pytest.raises(FormatError):
        repo.record_use(s[:-1] + ("0" if s[-1] != "0" else "1"), consumer="a")
    with pytest.raises(NotFoundError):
        from embfmt.objects.stamp import make_stamp

        repo.record_use(make_stamp("emb", "ab" * 32, "cd" * 32), consumer="a")
    for bad in ("", "   ", None, 5, "x" * 2000):
        with pytest.raises(InputError):
            repo.record_use(s, consumer=bad)  # type: ignore[arg-type]
    for ctx in ([1, 2], "s", {"x": float("nan")}, {"x": object()}, {"x": "y" * 70000}):
        with pytest.raises(InputError):
            repo.record_use(s, consumer="a", context=ctx)  # type: ignore[arg-type]
    assert ((Path(repo.path) / LOG).read_bytes(), (Path(repo.path) / HEAD).read_bytes()) == before


@pytest.fixture
def filled(repo: Repo, tmp_path: Path) -> Path:
    ids = _fill(repo, 6)
    assert repo.verify().ok and len(repo.uses()) == 6 and repo.uses()[-1].id == ids[-1]
    return Path(repo.path)


def _copy(src: Path, tmp_path: Path, name: str) -> Repo:
    dst = tmp_path / name
    shutil.copytree(src, dst)
    return Repo(dst)


def _assert_fails(r: Repo, line_hint: str, kind: ErrorKind | None = None) -> list[dict[str, str]]:
    errs = _verify_errors(r)
    assert any(line_hint in (e["object"] + " " + e["error"]) for e in errs), errs
    if kind is not None:
        assert any(e["kind"] == kind.value for e in errs), errs
    with pytest.raises((IntegrityError, FormatError)):
        r.uses()
    return errs


def test_tampered_line_fails_verify(filled: Path, tmp_path: Path) -> None:
    r = _copy(filled, tmp_path, "t")
    lines = _lines(r)
    d = json.loads(lines[2])
    d["consumer"] = "someone-else"  # still canonical JSON: only the chain can tell
    lines[2] = json.dumps(d, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    _write_lines(r, lines)
    errs = _assert_fails(r, "line 3", ErrorKind.DIGEST_MISMATCH)
    assert errs[0]["object"] == "lineage/uses.log:4"


def test_tampered_last_line_fails_verify(filled: Path, tmp_path: Path) -> None:
    r = _copy(filled, tmp_path, "t")
    lines = _lines(r)
    lines[-1] = lines[-1].replace(b"model-5", b"model-X")
    _write_lines(r, lines)
    _assert_fails(r, "line 6", ErrorKind.DIGEST_MISMATCH)
    with pytest.raises(IntegrityError, match="does not hash to the head"):
        r.record_use(r.stamp("emb"), consumer="z")  # no append onto an altered log


def test_deleted_line_fails_verify(filled: Path, tmp_path: Path) -> None:
    r = _copy(filled, tmp_path, "t")
    lines = _lines(r)
    del lines[1]
    _write_lines(r, lines)
    errs = _assert_fails(r, "lineage/uses.log:2", ErrorKind.DIGEST_MISMATCH)
    assert "removed" in errs[0]["error"]


def test_reordered_lines_fail_verify(filled: Path, tmp_path: Path) -> None:
    r = _copy(filled, tmp_path, "t")
    lines = _lines(r)
    lines[2], lines[3] = lines[3], lines[2]
    _write_lines(r, lines)
    _assert_fails(r, "lineage/uses.log:3", ErrorKind.DIGEST_MISMATCH)


def test_truncated_tail_fails_verify(filled: Path, tmp_path: Path) -> None:
    r = _copy(filled, tmp_path, "a")
    _write_lines(r, _lines(r)[:-2])  # whole records removed
    _assert_fails(r, "last records were removed", ErrorKind.TRUNCATED)
    with pytest.raises(IntegrityError, match="records were removed"):
        r.record_use(r.stamp("emb"), consumer="z")
    r = _copy(filled, tmp_path, "b")
    p = Path(r.path) / LOG
    data = p.read_bytes()
    p.write_bytes(data[:-10])  # cut inside the last record
    _assert_fails(r, "line 6", ErrorKind.TRUNCATED)
    r = _copy(filled, tmp_path, "c")
    (Path(r.path) / LOG).unlink()
    _assert_fails(r, "missing", ErrorKind.TRUNCATED)


def test_head_damage_fails_verify(filled: Path, tmp_path: Path) -> None:
    r = _copy(filled, tmp_path, "a")
    (Path(r.path) / HEAD).unlink()
    _assert_fails(r, "head was deleted")
    with pytest.raises(IntegrityError, match="head"):
        r.record_use(r.stamp("emb"), consumer="z")
    r = _copy(filled, tmp_path, "b")
    (Path(r.path) / HEAD).write_bytes(b"garbage\n")
    _assert_fails(r, "uses.head", ErrorKind.BAD_FILE)


def test_non_canonical_or_invalid_lines_fail_verify(filled: Path, tmp_path: Path) -> None:
    r = _copy(filled, tmp_path, "a")
    lines = _lines(r)
    lines[0] = lines[0].replace(b'"consumer":', b'"consumer": ')
    _write_lines(r, lines)
    _assert_fails(r, "line 1", ErrorKind.BAD_FILE)
    r = _copy(filled, tmp_path, "b")
    lines = _lines(r)
    lines[4] = b"\xff\xfe not json"
    _write_lines(r, lines)
    errs = _assert_fails(r, "lineage/uses.log:5", ErrorKind.BAD_FILE)
    assert len(errs) <= 3  # the damage is reported where it is, not on every line after it


def test_interrupted_append_is_not_a_record(filled: Path, tmp_path: Path) -> None:
    """Bytes after the length the head names come from an append that died before updating
    the head: not part of the log, and dropped by the next append."""
    r = _copy(filled, tmp_path, "a")
    p = Path(r.path) / LOG
    with open(p, "ab") as f:
        f.write(b'{"author":"x","consumer":"half-writ')
    assert r.verify().ok and len(r.uses()) == 6
    rid = r.record_use(r.stamp("emb"), consumer="after")
    assert r.verify().ok
    uses = r.uses()
    assert len(uses) == 7 and uses[-1].id == rid and uses[-1].prev == uses[-2].id
    assert b"half-writ" not in p.read_bytes()


def test_rolled_back_head_hides_no_record(filled: Path, tmp_path: Path) -> None:
    """Restoring an old head (without touching the log) must neither hide the later records
    from uses/verify nor let the next append overwrite them."""
    r = _copy(filled, tmp_path, "a")
    head = Path(r.path) / HEAD
    old_head = head.read_bytes()
    later = [r.record_use(r.stamp("emb"), consumer=f"later-{i}") for i in range(3)]
    head.write_bytes(old_head)  # roll the head back three records
    assert r.verify().ok
    assert [u.id for u in r.uses()][-3:] == later
    rid = r.record_use(r.stamp("emb"), consumer="after rollback")
    uses = r.uses()
    assert len(uses) == 10 and [u.id for u in uses][-4:] == [*later, rid]
    assert r.verify().ok and json.loads(head.read_bytes())["records"] == 10


def test_complete_line_past_the_head_is_adopted(filled: Path, tmp_path: Path) -> None:
    """An append killed after writing its whole line but before its head update: the use
    happened, so it is a record, and the next append chains onto it."""
    r = _copy(filled, tmp_path, "a")
    head = Path(r.path) / HEAD
    old_head = head.read_bytes()
    rid = r.record_use(r.stamp("emb"), consumer="killed before head")
    head.write_bytes(old_head)
    assert r.verify().ok and r.uses()[-1].id == rid
    nxt = r.record_use(r.stamp("emb"), consumer="next")
    assert [u.id for u in r.uses()][-2:] == [rid, nxt] and r.verify().ok


def test_forged_line_past_the_head_is_refused(filled: Path, tmp_path: Path) -> None:
    r = _copy(filled, tmp_path, "a")
    p = Path(r.path) / LOG
    forged = json.loads(_lines(r)[-1])
    forged["consumer"] = "forged"  # right form, but seq/prev do not continue the chain
    with open(p, "ab") as f:
        f.write(canonical_json(forged) + b"\n")
    size = p.stat().st_size
    _assert_fails(r, "lineage/uses.log:7", ErrorKind.DIGEST_MISMATCH)
    with pytest.raises(IntegrityError, match="does not chain"):
        r.record_use(r.stamp("emb"), consumer="x")
    assert p.stat().st_size == size  # refused: nothing truncated, nothing appended


def test_verify_of_one_revision_skips_the_log(filled: Path, tmp_path: Path) -> None:
    r = _copy(filled, tmp_path, "a")
    _write_lines(r, _lines(r)[1:])
    assert r.verify("HEAD").ok  # a revision's objects are intact
    assert not r.verify().ok


def test_usage_log_class_on_an_empty_repo(tmp_path: Path) -> None:
    r = Repo.init(tmp_path / "r")
    log = UsageLog(r.path)
    assert log.scan() == [] and log.problems() == [] and r.uses() == [] and r.verify().ok


def _spawn(*args: object) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, str(WORKER), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def test_concurrent_appenders_keep_one_chain(repo: Repo, tmp_path: Path) -> None:
    n_procs, n_each = 4, 25
    stamp = repo.stamp("emb")
    go = tmp_path / "go"
    ready = [tmp_path / f"ready{i}" for i in range(n_procs)]
    procs = [_spawn(repo.path, stamp, i, n_each, ready[i], go) for i in range(n_procs)]
    try:
        deadline = time.monotonic() + 60
        while not all(x.exists() for x in ready):
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
            assert time.monotonic() < deadline, "workers did not start"
            time.sleep(0.01)
        go.touch()
        ids: list[list[str]] = []
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
            ids.append(out.split())
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert repo.verify().ok, repo.verify().errors
    uses = repo.uses()
    assert len(uses) == n_procs * n_each
    assert [u.seq for u in uses] == list(range(n_procs * n_each))
    assert {(u.context["proc"], u.context["i"]) for u in uses} == {(p, i) for p in range(n_procs) for i in range(n_each)}
    by_id = {u.id: u for u in uses}
    for p in range(n_procs):
        assert len(ids[p]) == n_each
        # every id a worker was given is in the log, in the order it got them
        assert [by_id[i].context["i"] for i in ids[p]] == list(range(n_each))
        seqs = [by_id[i].seq for i in ids[p]]
        assert seqs == sorted(seqs)
    # Whether the appends interleaved is up to the scheduler (the workers start together on
    # `go`, so they usually do); the checks above hold either way, and are what this test is for.


def test_over_limit_records_fail_verify(filled: Path, tmp_path: Path) -> None:
    """A record written by another tool past the §21.3 limits is a defect, as the spec says."""
    r = _copy(filled, tmp_path, "a")
    lines = _lines(r)
    rec = json.loads(lines[-1])
    chained = {**rec, "seq": rec["seq"] + 1, "prev": blake3.blake3(lines[-1]).hexdigest()}
    assert r.verify().ok  # a well-formed chained record past the head is fine (adopted)...
    for bad in ({"consumer": "x" * 1025}, {"consumer": "   "}, {"context": {"k": "v" * 70_000}}):
        _write_lines(r, [*lines, canonical_json({**chained, **bad})])
        errs = r.verify().errors  # ...one over the limits is not
        assert any(e["object"] == "lineage/uses.log:7" and e["kind"] == "bad-file" for e in errs), bad
    _write_lines(r, [*lines, canonical_json(chained)])
    assert r.verify().ok
