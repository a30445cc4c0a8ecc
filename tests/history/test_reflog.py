"""The reflog (spec §17.1): every ref move is logged, gc keeps what the log names until the
entries expire, and a damaged log never breaks a read or a commit."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from embfmt.history import reflog as RL
from embfmt.errors import FormatError, NotFoundError
from embfmt.repo import Repo

from ..cli.test_cli_repo import ok, run
from .conftest import assert_bits_equal, fresh

ZERO = "0" * 64


def _x(i: int) -> np.ndarray:
    return np.full((5, 3), i, np.float32)


def _log(repo: Repo, ref: str) -> Path:
    kind, _, name = ref.partition("/")
    return Path(repo.path) / "logs" / kind / name.replace("/", "%2F")


def test_every_ref_move_is_logged(repo: Repo) -> None:
    c1 = repo.commit({"t": _x(1)}, message="one\nmore text", author="alice")
    c2 = repo.commit({"t": _x(2)}, message="two")
    repo.reset("main", c1)
    r3 = repo.restore(c2)
    repo.tag("v1", c1)
    repo.branch("exp/a", c2)
    repo.switch("exp/a")
    c4 = repo.commit({"t": _x(4)}, message="on exp")
    repo.switch("main")
    main = [(e.old, e.new, e.reason) for e in reversed(repo.reflog("main"))]
    assert main == [(ZERO, c1, "commit: one"), (c1, c2, "commit: two"),
                    (c2, c1, f"reset: moving to {c1}"), (c1, r3, f"restore: {c2}")]
    assert repo.reflog("main")[-1].author == "alice"
    assert [(e.old, e.new, e.reason) for e in repo.reflog("v1")] == [(ZERO, c1, f"tag: {c1}")]
    assert [(e.old, e.new) for e in reversed(repo.reflog("exp/a"))] == [(ZERO, c2), (c2, c4)]
    assert [(e.old, e.new, e.reason) for e in reversed(repo.reflog("HEAD"))] == [
        (r3, c2, "switch: from main to exp/a"), (c4, r3, "switch: from exp/a to main")]
    assert _log(repo, "heads/exp/a").is_file()  # one flat file per ref: 'exp%2Fa'
    everything = repo.reflog()
    assert len(everything) == 4 + 1 + 2 + 2
    assert [e.time for e in everything] == sorted((e.time for e in everything), reverse=True)
    with pytest.raises(NotFoundError):
        repo.reflog("nosuch")
    assert Repo.init(Path(repo.path).parent / "new").reflog("HEAD") == []  # no switch yet


def test_reset_then_gc_keeps_the_old_tip_until_the_entry_expires(repo: Repo) -> None:
    repo.commit({"t": _x(1)})
    c2 = repo.commit({"t": _x(2)})
    repo.reset("main", "HEAD~1")
    rep = repo.gc(grace_seconds=0)  # default expiry: 30 days
    assert rep.objects_removed == 0 and rep.reflog_expired == 0
    assert_bits_equal(fresh(repo).read("t", c2), _x(2))
    assert fresh(repo).verify().ok
    # the entries are made to look 31 days old: the default expiry now drops them
    log = _log(repo, "heads/main")
    old = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(time.time() - 31 * 86400))
    lines = [json.loads(x) for x in log.read_bytes().splitlines()]
    log.write_bytes(b"".join(json.dumps({**d, "time": old}, sort_keys=True,
                                        separators=(",", ":")).encode() + b"\n" for d in lines))
    rep = repo.gc(grace_seconds=0)
    assert rep.reflog_expired == 3 and rep.objects_removed > 0
    assert repo.reflog("main") == []
    with pytest.raises(NotFoundError):
        fresh(repo).resolve(c2)


def test_gc_expire_now_drops_every_entry(repo: Repo) -> None:
    repo.commit({"t": _x(1)})
    c2 = repo.commit({"t": _x(2)})
    repo.reset("main", "HEAD~1")
    rep = repo.gc(grace_seconds=0, reflog_expire_seconds=0)
    assert rep.reflog_expired == 3 and rep.objects_removed > 0
    assert not repo.store.has(bytes.fromhex(c2))
    assert fresh(repo).verify().ok
    with pytest.raises(Exception):
        repo.gc(reflog_expire_seconds=-1)


def test_a_failed_gc_expires_nothing(repo: Repo) -> None:
    repo.commit({"t": _x(1)})
    Path(repo.path, "refs", "heads", "ghost").write_bytes(b"ab" * 32 + b"\n")
    before = _log(repo, "heads/main").read_bytes()
    with pytest.raises(NotFoundError):
        repo.gc(grace_seconds=0, reflog_expire_seconds=0)
    assert _log(repo, "heads/main").read_bytes() == before


@pytest.mark.parametrize("damage", [b"not json\n", b'{"ref":"heads/main"}\n', b"x" * 9000 + b"\n",
                                    b'{"author":"a","new":"' + b"1" * 64])  # the last: torn, no newline
def test_damaged_lines_never_break_a_read_or_a_commit(repo: Repo, damage: bytes) -> None:
    c1 = repo.commit({"t": _x(1)})
    log = _log(repo, "heads/main")
    with open(log, "ab") as f:
        f.write(damage)
    assert [e.new for e in repo.reflog("main")] == [c1]  # the damaged line is skipped
    c2 = repo.commit({"t": _x(2)})  # and commits still work, and log on a line of their own
    assert [e.new for e in repo.reflog("main")] == [c2, c1]
    rep = fresh(repo).verify()
    v = run("-C", repo.path, "reflog")
    assert c2[:12] in v.stdout
    if damage.endswith(b"\n"):
        assert [(e["object"], e["kind"]) for e in rep.errors] == [("logs/heads/main:2", "bad-file")]
        assert v.returncode == 1 and "logs/heads/main:2" in v.stderr
    else:  # an append cut short (a crash): no entry, no damage; the next append cut it off
        assert rep.ok and ok(v) and len(log.read_bytes().splitlines()) == 2
    assert all(len(x) <= RL.MAX_LINE for x in log.read_bytes().splitlines()[2:])


def test_gc_keeps_what_a_damaged_line_names(repo: Repo) -> None:
    repo.commit({"t": _x(1)})
    c2 = repo.commit({"t": _x(2)})
    repo.reset("main", "HEAD~1")
    log = _log(repo, "heads/main")
    log.write_bytes(log.read_bytes().replace(b'"reason":"commit', b'"reason" :"commit'))
    repo.gc(grace_seconds=0)
    assert repo.store.has(bytes.fromhex(c2))


def test_long_messages_are_bounded_in_the_log(repo: Repo) -> None:
    repo.commit({"t": _x(1)}, message="x" * 10_000 + "\n" + "y" * 100, author="a" * 1000)
    (e,) = repo.reflog("main")
    assert e.reason == "commit: " + "x" * (RL.MAX_REASON_CHARS - len("commit: "))
    assert len(e.author.encode()) == RL.MAX_AUTHOR_BYTES
    assert all(len(x) <= RL.MAX_LINE for x in _log(repo, "heads/main").read_bytes().splitlines())


def test_verify_reports_an_entry_whose_commit_is_missing(repo: Repo) -> None:
    repo.commit({"t": _x(1)})
    c2 = repo.commit({"t": _x(2)})
    repo.reset("main", "HEAD~1")
    os.unlink(repo.store.path(bytes.fromhex(c2)))
    rep = fresh(repo).verify()
    hits = [e for e in rep.errors if e["object"].startswith("logs/heads/main:")]
    assert len(hits) == 1 and hits[0]["kind"] == "missing-object" and c2 in hits[0]["error"]


def test_a_symlinked_log_directory_is_refused(repo: Repo, tmp_path: Path) -> None:
    c1 = repo.commit({"t": _x(1)})
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    logs = Path(repo.path) / "logs"
    (logs / "tags").symlink_to(outside)
    with pytest.raises(FormatError, match="symlink"):
        repo.tag("v1")
    assert repo.tags() == {} and list(outside.iterdir()) == []
    assert repo.resolve("HEAD") == c1


def test_cli_reflog_and_gc_expire(tmp_path: Path) -> None:
    repo = Repo.init(tmp_path / "r")
    c1 = repo.commit({"t": _x(1)}, message="one")
    c2 = repo.commit({"t": _x(2)}, message="two")
    repo.close()
    C = ("-C", str(tmp_path / "r"))
    ok(run(*C, "reset", "main", "HEAD~1"))
    text = ok(run(*C, "reflog")).stdout.splitlines()
    assert text[0].startswith(f"{c1[:12]} heads/main@{{0}}") and text[0].endswith("reset: moving to HEAD~1")
    assert text[1].startswith(f"{c2[:12]} heads/main@{{1}}") and len(text) == 3
    j = json.loads(ok(run(*C, "reflog", "main", "-n", "1", "--json")).stdout)
    assert [(e["index"], e["old"], e["new"]) for e in j["entries"]] == [(0, c2, c1)]
    assert j["problems"] == [] and j["ref"] == "main"
    assert "--expire-reflog" in ok(run(*C, "gc", "--help")).stdout
    assert "REF" in ok(run(*C, "reflog", "--help")).stdout
    g = json.loads(ok(run(*C, "gc", "--grace", "0", "--json")).stdout)
    assert g["objects_removed"] == 0 and g["reflog_expired"] == 0
    g = json.loads(ok(run(*C, "gc", "--grace", "0", "--expire-reflog", "now", "--json")).stdout)
    assert g["objects_removed"] > 0 and g["reflog_expired"] == 3
    for bad in ("-1", "soon", "inf"):
        r = run(*C, "gc", "--expire-reflog", bad)
        assert r.returncode == 2 and "--expire-reflog" in r.stderr and "Traceback" not in r.stderr
    r = run(*C, "reflog", "nosuch")
    assert r.returncode == 2 and "nosuch" in r.stderr


def test_spec_worked_example_parses(repo: Repo) -> None:
    """The example line of spec §17.1 is a valid entry, byte for byte as the spec prints it."""
    spec = (Path(__file__).parents[2] / "spec" / "embfmt-v1.md").read_text()
    section = spec[spec.index("### 17.1 Reflog"):spec.index("## 18. Algorithms")]
    line = section.split("```\n")[1].strip("\n").encode()
    assert len(line) == 250  # as the spec says
    log = _log(repo, "heads/main")
    log.parent.mkdir(parents=True)
    log.write_bytes(line + b"\n")
    problems: list = []
    (e,) = RL.Reflog(repo.path).read("heads/main", problems)
    assert problems == [] and (e.ref, e.reason, e.old) == ("heads/main", "commit: first", ZERO)
    assert e.new == "d49d8551becade34fc0c2bc8016e880827bd759db14235da77076cba706510a7"
