"""Stamps: they resolve back to exactly the table version they name, work wherever a revision
does, and forged, damaged or stale stamps are refused with typed errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embfmt.errors import ErrorKind, FormatError, IntegrityError, NotFoundError
from embfmt.objects.stamp import STAMP_PREFIX, make_stamp, parse_stamp
from embfmt.repo import Repo


@pytest.fixture
def hist(tmp_path: Path) -> dict:
    repo = Repo.init(tmp_path / "repo")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((500, 32)).astype(np.float32)
    y = rng.standard_normal((40, 8)).astype(np.float64)
    c1 = repo.commit({"emb": x, "other": y}, message="v1", identity={"emb": {"model": "m", "revision": "1"}})
    x2 = x.copy()
    x2[::50] += 1
    c2 = repo.commit({"emb": x2}, message="v2")
    yield {"repo": repo, "c1": c1, "c2": c2, "x": x, "x2": x2, "y": y}
    repo.close()


def test_stamp_resolves(hist: dict) -> None:
    repo: Repo = hist["repo"]
    s1, s2 = repo.stamp("emb", "HEAD~1"), repo.stamp("emb")
    assert s1.startswith(STAMP_PREFIX + "emb@" + hist["c1"] + ":")
    assert s1 != s2 and len(s1) == len(s2) == len(STAMP_PREFIX) + 3 + 1 + 64 + 1 + 32 + 1 + 8
    info = repo.resolve_stamp(s1)
    tv = repo.table_version("emb", hist["c1"])
    assert (info.table, info.commit, info.table_version) == ("emb", hist["c1"], repo.get_commit(hist["c1"]).tables["emb"])
    assert (info.rows, info.dim, info.dtype, info.fingerprint) == (500, 32, "float32", tv.fingerprint)
    assert info.identity == {"model": "m", "revision": "1"}
    assert info.to_dict()["stamp"] == s1
    assert parse_stamp(s1) == ("emb", hist["c1"], info.table_version[:32])
    # The same table version at the same commit always gives the same stamp.
    assert repo.stamp("emb", hist["c1"]) == s1 == repo.stamp("emb", s1)
    # "other" did not change in v2, but its stamp names the commit it was taken from.
    assert repo.resolve_stamp(repo.stamp("other")).commit == hist["c2"]


def test_stamp_is_a_revision(hist: dict) -> None:
    repo: Repo = hist["repo"]
    s1 = repo.stamp("emb", "HEAD~1")
    assert repo.resolve(s1) == hist["c1"]
    assert repo.read("emb", s1).tobytes() == hist["x"].tobytes()
    assert repo.open("other", s1).read().tobytes() == hist["y"].tobytes()
    assert repo.diff(s1, repo.stamp("emb"), table="emb").n_changed == 10
    assert [c.id for c in repo.log(s1)] == [hist["c1"]]
    assert repo.verify(s1).ok


def test_stamp_of_missing_table(hist: dict) -> None:
    with pytest.raises(NotFoundError, match="no table 'nope'"):
        hist["repo"].stamp("nope")


@pytest.mark.parametrize("bad", ["", "emb1:s:", "emb1:b3:" + "0" * 64, "emb1:s:emb@" + "A" * 64 + ":" + "0" * 32 + ":00000000",
                                 "emb1:s:emb@" + "0" * 63 + ":" + "0" * 32 + ":00000000",
                                 "emb1:s:emb@" + "0" * 64 + ":" + "0" * 31 + ":00000000",
                                 "emb1:s:emb@" + "0" * 64 + ":" + "0" * 32 + ":0000000",
                                 "emb1:s:@" + "0" * 64 + ":" + "0" * 32 + ":00000000",
                                 "emb1:s:a b@" + "0" * 64 + ":" + "0" * 32 + ":00000000",
                                 "emb1:s:x" + "y" * 5000])
def test_malformed_stamps(hist: dict, bad: str) -> None:
    repo: Repo = hist["repo"]
    if bad.startswith(STAMP_PREFIX):
        with pytest.raises(FormatError) as e:
            repo.resolve_stamp(bad)
        assert e.value.kind is ErrorKind.BAD_STAMP
        with pytest.raises(FormatError) as e:  # also through resolve: never "unknown revision"
            repo.resolve(bad)
        assert e.value.kind is ErrorKind.BAD_STAMP
    else:
        with pytest.raises(FormatError) as e:
            parse_stamp(bad)
        assert e.value.kind is ErrorKind.BAD_STAMP


def test_bad_table_name_in_stamp(hist: dict) -> None:
    body = f"{STAMP_PREFIX}bad..name@{'0' * 64}:{'0' * 32}"
    import blake3

    s = f"{body}:{blake3.blake3(body.encode()).hexdigest()[:8]}"
    with pytest.raises(FormatError, match="invalid table name") as e:
        hist["repo"].resolve_stamp(s)
    assert e.value.kind is ErrorKind.BAD_STAMP


def test_every_single_character_change_is_caught(hist: dict) -> None:
    """Any one character changed (a typo, a flipped bit in a log) is a bad stamp, not a
    different or stale one: the check digits cover everything."""
    repo: Repo = hist["repo"]
    s = repo.stamp("emb")
    for pos in range(len(s)):
        ch = s[pos]
        for new in {"0", "f", "e", "@", ":", chr(ord(ch) ^ 1)} - {ch}:
            t = s[:pos] + new + s[pos + 1:]
            with pytest.raises(FormatError) as e:
                repo.resolve_stamp(t)
            assert e.value.kind is ErrorKind.BAD_STAMP, (pos, new)


def test_forged_stamps_with_valid_check_digits(hist: dict) -> None:
    """A stamp rebuilt with correct check digits but a false claim is an integrity error."""
    repo: Repo = hist["repo"]
    c1, c2 = hist["c1"], hist["c2"]
    tv_emb1 = repo.get_commit(c1).tables["emb"]
    tv_emb2 = repo.get_commit(c2).tables["emb"]
    tv_other = repo.get_commit(c2).tables["other"]
    forged = {
        "other version of the table": make_stamp("emb", c2, tv_emb1),
        "other commit": make_stamp("emb", c1, tv_emb2),
        "other table": make_stamp("other", c2, tv_emb2),
        "absent table": make_stamp("absent", c2, tv_emb2),
        "flipped id bits": make_stamp("emb", c2, tv_emb2[:5] + ("0" if tv_emb2[5] != "0" else "1") + tv_emb2[6:]),
    }
    for why, s in forged.items():
        with pytest.raises(IntegrityError, match="forged or corrupted") as e:
            repo.resolve_stamp(s)
        assert e.value.kind is ErrorKind.DIGEST_MISMATCH, why
        with pytest.raises(IntegrityError):
            repo.resolve(s)
    # the id of an object that exists but is not a commit
    with pytest.raises(IntegrityError, match="not a valid commit"):
        repo.resolve_stamp(make_stamp("emb", tv_emb2, tv_emb2))
    # a real stamp still works, and flipping the last id bit it keeps is also caught
    assert repo.resolve_stamp(make_stamp("other", c2, tv_other)).table == "other"
    flipped = tv_emb2[:31] + format(int(tv_emb2[31], 16) ^ 1, "x") + tv_emb2[32:]
    with pytest.raises(IntegrityError):
        repo.resolve_stamp(make_stamp("emb", c2, flipped))
    # only the first 128 bits are kept: bits past them are not part of the claim
    assert repo.resolve_stamp(make_stamp("emb", c2, tv_emb2[:32] + "0" * 32)).table_version == tv_emb2


def test_unknown_and_stale_stamps(hist: dict) -> None:
    repo: Repo = hist["repo"]
    # a commit this repository never had (e.g. a stamp from another repository)
    with pytest.raises(NotFoundError, match="not in") as e:
        repo.resolve_stamp(make_stamp("emb", "ab" * 32, "cd" * 32))
    assert e.value.kind is ErrorKind.NOT_FOUND
    s2 = repo.stamp("emb")
    repo.reset("main", "HEAD~1")
    # reset alone deletes nothing: the stamp still names intact data
    assert repo.resolve_stamp(s2).commit == hist["c2"]
    repo.gc(grace_seconds=0, reflog_expire_seconds=0)
    with pytest.raises(NotFoundError, match="removed") as e:
        repo.resolve_stamp(s2)
    assert e.value.kind is ErrorKind.NOT_FOUND
    with pytest.raises(NotFoundError):
        repo.resolve(s2)
    assert repo.resolve_stamp(repo.stamp("emb")).commit == hist["c1"]


def test_stamp_after_object_loss_is_typed(hist: dict) -> None:
    """A commit that is present but whose table version was lost: a typed error, no crash."""
    repo: Repo = hist["repo"]
    s = repo.stamp("emb")
    tid = repo.get_commit(hist["c2"]).tables["emb"]
    p = Path(repo.path) / "objects" / tid[:2] / tid[2:]
    p.unlink()
    with pytest.raises(NotFoundError) as e:
        Repo(repo.path).resolve_stamp(s)
    assert e.value.kind is ErrorKind.MISSING_OBJECT
