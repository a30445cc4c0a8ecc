"""A fault campaign over whole repositories (issue 20): damage every kind of file of a small
repository in every way the campaign knows, then ask every question of it in a child process
(address space limited, every call under an alarm), and sort each answer into

* ``ok``: bit-exactly the answer of the intact repository (or verify not raising),
* ``typed``: an :class:`embfmt.EmbfmtError` (verify: a report listing the damage),
* ``wrong``: a different answer without an error (a silently wrong result),
* ``untyped``: any other exception, ``hang`` (the alarm fired), ``crash`` (the child died).

Only the first two are allowed. Seeded and deterministic: ``python tests/history/campaign.py``
runs the full size by hand (``--full``; ``--seed``, ``--cases``); tests/history/test_campaign.py
runs a reduced size. Damage kinds: bit flips, truncation, deletion, zero-fill, swaps of two
files of the same kind, a forged rowprint section with its checksum recomputed (the object
keeps its id), symlinks (to /dev/zero and out of the repository), FIFOs, directories and
device files in place of a file, and zstd bombs (a frame of 256 MiB of zeros) in keys and
change objects.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
CHILD_AS = 2 << 30  # the child's address space: a read past the spec's limits fails here
CALL_TIMEOUT_S = 20

# The questions: name -> code run in the child against Repo `r` (revisions v1..v3 by id).
QUESTIONS = {
    "log": "[c.id for c in r.log()]",
    "read_v1": "r.read('t', V[0]).tobytes()",
    "read_head": "r.read('t').tobytes()",
    "keys": "r.keys('t', V[1]).tolist()",
    "diff_exact": "_d(embfmt.diff(r.open('t', V[0]), r.open('t', V[2])))",
    "diff_fast": "_d(embfmt.diff(r.open('t', V[0]), r.open('t', V[2]), exact=False))",
    "diff_record": "_d(r.diff(V[1], V[2], 't'))",
    "changed_rows": "r.changed_rows('t', V[0], V[2], exact=False).changed.tolist()",
    "rows_subset": "r.open('t', V[2]).rows(np.array([1, 70, 200])).tobytes()",
    "blame": "[(e.kind, e.commit) for e in r.blame('t', 70)]",
    "uses": "[u.id for u in r.uses()]",
    "verify": "_v(r.verify())",
}

_CHILD = r"""
import hashlib, json, resource, signal, sys
resource.setrlimit(resource.RLIMIT_AS, (%(as)d, %(as)d))
import numpy as np, embfmt

def _d(d):
    return (d.changed_b.tolist(), d.added.tolist(), d.removed.tolist(),
            {k: np.asarray(v).tobytes().hex() for k, v in sorted((d.stats or {}).items())})

def _v(rep):
    return "verify-ok" if rep.ok else "verify-found"

class Hang(BaseException):
    pass

def _alarm(*a):
    raise Hang()

signal.signal(signal.SIGALRM, _alarm)
Q = json.loads(sys.argv[1])
for line in sys.stdin:
    path, V = json.loads(line)
    out = {}
    for name, code in Q.items():
        signal.alarm(%(timeout)d)
        r = None
        try:
            r = embfmt.Repo(path)
            got = eval(code)
            out[name] = ["ok", hashlib.sha256(repr(got).encode()).hexdigest()]
        except embfmt.EmbfmtError as e:
            out[name] = ["typed", str(e.kind)]
        except Hang:
            out[name] = ["hang", ""]
        except BaseException as e:
            out[name] = ["untyped", type(e).__name__ + ": " + str(e)[:300]]
        finally:
            signal.alarm(0)
            if r is not None:  # its reader threads: thousands of open repos exhaust the limit
                r.close()
    print(json.dumps(out), flush=True)
"""


def build_template(root: str) -> list[str]:
    """A repository with every kind of file: chunks of every codec, keys, change objects, a tag,
    a second branch, a usage record, rowprint and seal cache entries."""
    import numpy as np

    import embfmt

    rng = np.random.default_rng(1)
    r = embfmt.Repo.init(root)
    x = rng.standard_normal((64 * 5, 4096)).astype(np.float32)  # 5 chunks of 64 rows
    v1 = r.commit({"t": x}, keys={"t": np.arange(len(x))}, message="v1")
    x2 = x.copy()
    x2[[1, 2, 70]] += 1.0  # sparse patches
    x2[128:192] *= 1.5  # a dense delta
    v2 = r.commit({"t": x2}, keys={"t": "carry"}, message="v2")
    x3 = x2.copy()
    x3[200:204] = 0.0
    x3 = np.concatenate([x3, rng.standard_normal((10, 4096)).astype(np.float32)])  # appended rows
    v3 = r.commit({"t": x3}, keys={"t": np.arange(len(x3))}, message="v3")
    r.tag("release", v2)
    r.branch("dev", v1)
    r.record_use(r.stamp("t"), consumer="campaign")
    embfmt.diff(r.open("t", v1), r.open("t", v3), exact=False)  # fills cache/ entries
    r.close()
    return [v1, v2, v3]


def _files(root: str) -> dict[str, list[str]]:
    """Relative paths of the repository's files by kind."""
    from embfmt import _layout as L

    kinds: dict[str, list[str]] = {}
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            rel = os.path.relpath(os.path.join(dirpath, f), root)
            if rel.startswith("objects"):
                with open(os.path.join(root, rel), "rb") as fh:
                    head = fh.read(16)
                k = next((n for m, n in ((L.COMMIT_MAGIC, "commit"), (L.CHUNK_MAGIC, "chunk"),
                                         (L.TABLE_MAGIC, "table"), (L.KEYS_MAGIC, "keys"),
                                         (L.CHANGE_MAGIC, "change")) if head.startswith(m)), "object")
            elif rel.startswith("refs/") and not os.path.basename(rel).startswith("."):
                k = "ref"
            elif rel.startswith("cache"):
                k = "cache"
            elif rel.startswith("lineage"):
                k = "lineage"
            elif rel in ("HEAD", "embfmt.json"):
                k = rel
            else:
                continue  # locks, reflogs, config: not read for answers
            kinds.setdefault(k, []).append(rel)
    return {k: sorted(v) for k, v in sorted(kinds.items())}


def _forge_rowprints(p: str, rng: random.Random) -> None:
    """Change one stored rowprint of a chunk and recompute the checksum: the object still
    decodes to its id, only rowprint readers could be fooled."""
    from embfmt import _layout as L
    from embfmt.objects.chunk import header_checksum, parse_header

    b = bytearray(Path(p).read_bytes())
    h = parse_header(bytes(b[:L.CHUNK_HEADER_BYTES]), "x", total_size=len(b))
    n = h.rowprint_bytes // 8
    off = h.rowprint_offset + 8 * rng.randrange(n) if h.codec != L.CODEC_SPARSE else \
        h.rowprint_offset + 4 * h.n_patch + 8 * rng.randrange(max(1, h.n_patch))
    if off + 8 > h.payload_offset:
        return
    b[off] ^= 0x5A
    cs = header_checksum(bytes(b[:L.CHUNK_CHECKSUM_OFFSET]), bytes(b[h.rowprint_offset:h.payload_offset]))
    b[L.CHUNK_CHECKSUM_OFFSET:L.CHUNK_HEADER_BYTES] = cs.to_bytes(8, "little")
    Path(p).write_bytes(bytes(b))


def _zstd_bomb(p: str, kind: str) -> None:
    """Replace the compressed payload of a key or change object with a frame that expands to
    256 MiB of zeros, header fields kept (so the reader's own bounds are what stops it)."""
    import zstandard

    hs = 32 if kind == "keys" else 104
    b = bytearray(Path(p).read_bytes())
    bomb = zstandard.ZstdCompressor(level=3).compress(bytes(1 << 28)) if not hasattr(_zstd_bomb, "b") else _zstd_bomb.b  # type: ignore[attr-defined]
    _zstd_bomb.b = bomb  # type: ignore[attr-defined]
    Path(p).write_bytes(bytes(b[:hs]) + bomb)


MUTATIONS = ["flip", "truncate", "delete", "zero", "swap", "symlink_zero", "symlink_out", "fifo",
             "directory", "device", "forge_rowprints", "zstd_bomb"]


def mutate(root: str, rel: str, kind: str, how: str, files: dict[str, list[str]], rng: random.Random,
           outside: str) -> bool:
    """Apply ``how`` to file ``rel``; False when it does not apply to this file."""
    p = os.path.join(root, rel)
    size = os.path.getsize(p)
    if how in ("forge_rowprints",) and kind != "chunk":
        return False
    if how == "zstd_bomb" and kind not in ("keys", "change"):
        return False
    if how == "swap" and (len(files.get(kind, [])) < 2 or kind == "ref"):
        # Two refs swapped are two valid refs: a state a user can make with reset and tag,
        # which no reader can tell from damage (the reflog records the legitimate moves).
        return False
    os.chmod(p, 0o644)
    if how == "flip":
        b = bytearray(Path(p).read_bytes())
        if not b:
            return False
        i = rng.randrange(len(b))
        b[i] ^= 1 << rng.randrange(8)
        Path(p).write_bytes(bytes(b))
    elif how == "truncate":
        os.truncate(p, rng.randrange(size) if size else 0)
    elif how == "delete":
        os.unlink(p)
    elif how == "zero":
        Path(p).write_bytes(bytes(size))
    elif how == "swap":
        other = os.path.join(root, rng.choice([f for f in files[kind] if f != rel]))
        os.chmod(other, 0o644)
        tmp = p + ".swap"
        os.rename(p, tmp)
        os.rename(other, p)
        os.rename(tmp, other)
    elif how in ("symlink_zero", "symlink_out", "fifo", "directory", "device"):
        os.unlink(p)
        if how == "symlink_zero":
            os.symlink("/dev/zero", p)
        elif how == "symlink_out":
            os.symlink(outside, p)
        elif how == "fifo":
            os.mkfifo(p)
        elif how == "directory":
            os.mkdir(p)
        else:
            os.symlink("/dev/null", p)  # a device (creating device nodes needs privileges)
    elif how == "forge_rowprints":
        _forge_rowprints(p, rng)
    elif how == "zstd_bomb":
        _zstd_bomb(p, kind)
    return True


def plan(files: dict[str, list[str]], n_cases: int, seed: int) -> list[tuple[str, str, str, int]]:
    """(kind, file, mutation, case seed): every (kind, mutation) pair first, then random ones."""
    rng = random.Random(seed)
    cases = []
    pairs = [(k, m) for k in files for m in MUTATIONS]
    rng.shuffle(pairs)
    while len(cases) < n_cases:
        k, m = pairs[len(cases) % len(pairs)] if len(cases) < len(pairs) else \
            (rng.choice(list(files)), rng.choice(MUTATIONS))
        cases.append((k, rng.choice(files[k]), m, rng.randrange(1 << 30)))
    return cases


def run(n_cases: int, seed: int, work: str) -> dict[str, Any]:
    template = os.path.join(work, "template")
    revs = build_template(template)
    files = _files(template)
    outside = os.path.join(work, "outside-file")
    Path(outside).write_bytes(b"precious\n")
    cases = plan(files, n_cases, seed)
    prepared = []
    for i, (kind, rel, how, cs) in enumerate(cases):
        d = os.path.join(work, f"case{i}")
        shutil.copytree(template, d, symlinks=True)
        if mutate(d, rel, kind, how, files, random.Random(cs), outside):
            prepared.append((d, kind, rel, how))
        else:
            shutil.rmtree(d)
    child = _CHILD % {"as": CHILD_AS, "timeout": CALL_TIMEOUT_S}
    truth = _answers(child, [template], revs)[0]
    assert all(v[0] == "ok" for v in truth.values()), truth
    results = _answers(child, [d for d, *_ in prepared], revs)
    tally: dict[str, int] = {}
    bad = []
    for (d, kind, rel, how), res in zip(prepared, results):
        for q, (outcome, detail) in res.items():
            if q == "verify" and outcome == "ok":
                outcome = "ok" if detail == truth[q][1] else "typed"  # the damage is reported
            elif outcome == "ok" and detail != truth[q][1]:
                outcome = "wrong"
            tally[outcome] = tally.get(outcome, 0) + 1
            if outcome not in ("ok", "typed"):
                bad.append({"kind": kind, "file": rel, "mutation": how, "question": q,
                            "outcome": outcome, "detail": detail})
        shutil.rmtree(d, ignore_errors=True)
    if Path(outside).read_bytes() != b"precious\n":
        bad.append({"outcome": "outside file changed"})
    return {"cases": len(prepared), "questions": len(prepared) * len(QUESTIONS), "tally": tally,
            "bad": bad, "kinds": sorted(files), "mutations": MUTATIONS}


def _answers(child: str, paths: list[str], revs: list[str]) -> list[dict[str, list[str]]]:
    """Run the questions on each repository, in as few child processes as possible: a child
    that dies (a crash) is replaced and its current repository counted as crashed."""
    out: list[dict[str, list[str]]] = []
    while len(out) < len(paths):
        todo = paths[len(out):]
        feed = "".join(json.dumps([p, revs]) + "\n" for p in todo)
        res = subprocess.run([sys.executable, "-c", child, json.dumps(QUESTIONS)], input=feed,
                             capture_output=True, text=True, cwd=os.path.dirname(paths[0]),
                             timeout=60 + 2 * CALL_TIMEOUT_S * len(QUESTIONS) * len(todo))
        lines = [json.loads(x) for x in res.stdout.splitlines() if x.startswith("{")]
        out.extend(lines)
        if res.returncode != 0 and len(out) < len(paths):
            out.append({q: ["crash", res.stderr[-300:]] for q in QUESTIONS})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--full", action="store_true", help="the full size (600 damaged repositories)")
    ap.add_argument("--cases", type=int, default=None)
    ap.add_argument("--seed", type=int, default=20)
    a = ap.parse_args()
    n = a.cases or (600 if a.full else 60)
    with tempfile.TemporaryDirectory() as work:
        rep = run(n, a.seed, work)
    print(json.dumps(rep, indent=1))
    return 0 if not rep["bad"] else 1


if __name__ == "__main__":
    sys.exit(main())
