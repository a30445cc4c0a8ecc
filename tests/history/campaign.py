"""A fault campaign over whole repositories (issue 20): damage every kind of file of a small
repository in every way the campaign knows, forge objects, plant zstd bombs, then ask every
question of it in a child process (address space limited, every call under an alarm), and sort
each answer into

* ``ok``: bit-exactly the answer of the intact repository (or verify not raising),
* ``typed``: an :class:`embfmt.EmbfmtError` (verify: a report listing the damage),
* ``wrong``: a different answer without an error (a silently wrong result),
* ``untyped``: any other exception, ``hang`` (the alarm fired), ``crash`` (the child died),
* ``missed``: verify called a forged or bombed repository clean.

Only the first two are allowed. Categories:

* damage: bit flips, truncation, deletion, zero-fill, swaps of two files of the same kind, a
  forged rowprint section with its checksum recomputed (the object keeps its id), symlinks (to
  /dev/zero and out of the repository), FIFOs, directories and device files in place of a file,
  and a zstd frame of 256 MiB in place of a key or change payload;
* forge: objects re-hashed so their ids are right and wired into re-hashed commits, lying about
  each other (:data:`FORGERIES`): change objects listing too few or too many rows, other row
  counts, other versions or other drift; table versions whose root, N, D or key object do not
  fit their chunks; key objects with a duplicate key or another count;
* bomb: zstd frames in every compressed field (chunk planes, key and change payloads) that state
  a content size far above the field's (up to 2^64) or state none and expand to 256 MiB;
* race (:func:`race`): writer processes committing, orphaning, re-committing and moving refs
  onto old orphans while gc(grace 0) loops: no acknowledged commit or ref move may be lost.

Seeded and deterministic (apart from the race's timing): ``python tests/history/campaign.py``
runs the reduced size, ``--full`` the full one (``--seed``, ``--cases``, ``--forge``,
``--bomb``, ``--writers``, ``--rounds``, ``--gc-loops``); tests/history/test_campaign.py runs a
reduced size.
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
    "diff_record1": "_d(r.diff(V[0], V[1], 't'))",
    "changed_record": "r.changed_rows('t', V[1], V[2]).changed.tolist()",
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
    path, V, idmap, skip = json.loads(line)
    out = {}
    for name, code in Q.items():
        if name in skip:
            continue
        signal.alarm(%(timeout)d)
        r = None
        try:
            r = embfmt.Repo(path)
            got = repr(eval(code))
            for new_id, old_id in idmap.items():  # forged commits answer for the originals
                got = got.replace(new_id, old_id)
            out[name] = ["ok", hashlib.sha256(got.encode()).hexdigest()]
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


# --- forged but consistent objects (re-hashed and wired into re-hashed commits) --------------
# Each forgery writes new objects whose ids are right (BLAKE3 of their bytes), wires them into
# a re-hashed commit and its re-hashed descendants, and moves `main` onto the new head: a
# repository nobody damaged by accident, whose objects lie about each other. What is true is
# what the chunks hold; every answer must be that (through the forged ids) or a typed error,
# and verify must report the lie.
FORGERIES = ["change_drop_row", "change_add_row", "change_stats", "change_header", "change_tables",
             "tv_root", "tv_rows", "tv_dim", "tv_keys_other", "tv_keys_not_keys", "keys_duplicate",
             "keys_count", "commit_changes_not_change"]
# Recorded drift values (l2, cosine, max-abs, max-ULP of a change object, §16.1) are the
# writer's statement, trusted by the record path like a commit's own metadata (recomputing
# them is the full diff the record exists to avoid): for a forgery of them only verify, which
# recomputes them, is asked to find it. Every other answer is checked in full.
NOT_ASKED = {"change_stats": {"diff_record", "diff_record1"}}


class _Forger:
    """Objects and commits of a repository copy, rewritten with their ids recomputed."""

    def __init__(self, root: str, revs: list[str]) -> None:
        from embfmt.objects.commit import Commit

        self.root = root
        self.revs = list(revs)
        self.commits = [Commit.from_bytes(self.get(c)) for c in revs]

    def path(self, h: str) -> str:
        return os.path.join(self.root, "objects", h[:2], h[2:])

    def get(self, h: str) -> bytes:
        return Path(self.path(h)).read_bytes()

    def put(self, data: bytes) -> str:
        import blake3

        h = blake3.blake3(data).hexdigest()
        os.makedirs(os.path.dirname(self.path(h)), exist_ok=True)
        if not os.path.exists(self.path(h)):
            Path(self.path(h)).write_bytes(data)
        return h

    def tv(self, i: int) -> Any:
        from embfmt.objects.table_version import TableVersion

        return TableVersion.from_bytes(self.get(self.commits[i].tables["t"]))

    def change_id(self, i: int) -> str | None:
        return self.commits[i].metadata.get("embfmt", {}).get("tables", {}).get("t", {}).get("changes")

    def change(self, i: int) -> Any:
        from embfmt.objects.change import ChangeRecord

        ch = self.change_id(i)
        return None if ch is None else ChangeRecord.from_bytes(self.get(ch))

    def set_change(self, i: int, rec_or_id: Any) -> None:
        import copy
        import dataclasses

        meta = copy.deepcopy(self.commits[i].metadata)
        meta["embfmt"]["tables"]["t"]["changes"] = rec_or_id if isinstance(rec_or_id, str) \
            else self.put(rec_or_id.to_bytes())
        self.commits[i] = dataclasses.replace(self.commits[i], metadata=meta)

    def set_tv(self, i: int, tv_bytes: bytes) -> None:
        """Commit ``i`` names a new table version; the change objects that named the old one
        (its own, and the next commit's as parent) are rewritten to name the new one, so the
        only lie is the one the forgery tells."""
        import dataclasses

        old, new = self.commits[i].tables["t"], self.put(tv_bytes)
        self.commits[i] = dataclasses.replace(self.commits[i], tables={"t": new})
        for j in (i, i + 1):
            rec = self.change(j) if j < len(self.commits) else None
            if rec is None:
                continue
            f = {}
            if rec.table.hex() == old:
                f["table"] = bytes.fromhex(new)
            if rec.parent_table.hex() == old:
                f["parent_table"] = bytes.fromhex(new)
            if f:
                self.set_change(j, dataclasses.replace(rec, **f))

    def finish(self) -> tuple[list[str], dict[str, str]]:
        """Write the commits with their parents re-linked, move `main` onto the new head;
        returns the new revision ids and the map new id -> old id."""
        import dataclasses

        new_ids: list[str] = []
        for i, c in enumerate(self.commits):
            if i:
                c = dataclasses.replace(c, parents=(new_ids[-1],))
            new_ids.append(self.put(c.to_bytes()))
        Path(self.root, "refs", "heads", "main").write_text(new_ids[-1] + "\n")
        return new_ids, {n: o for n, o in zip(new_ids, self.revs) if n != o}


def forge(root: str, revs: list[str], how: str, rng: random.Random,
          at: int | None = None) -> tuple[list[str], dict[str, str]] | None:
    """Apply forgery ``how`` to the repository copy at ``root`` (to revision ``at``, else one
    the forgery fits chosen by ``rng``); None when it does not fit."""
    import dataclasses

    import numpy as np

    from embfmt.objects.keys import decode_keys, encode_keys

    f = _Forger(root, revs)
    with_change = [i for i in range(len(revs)) if f.change_id(i)]
    if how.startswith("change_") or how == "commit_changes_not_change":
        if not with_change:
            return None
        i = rng.choice(with_change) if at is None else at
        rec = f.change(i)
        if rec is None:
            return None
        if how == "commit_changes_not_change":
            kid = f.tv(i).meta.get("keys") or f.tv(i).digests[0].hex()
            f.set_change(i, kid)
            return f.finish()
        n = len(rec.index)
        arrs = [rec.index, rec.l2, rec.cosine, rec.max_abs, rec.ulp]
        if how == "change_drop_row":
            if not n:
                return None
            k = rng.randrange(n)
            arrs = [np.delete(a, k) for a in arrs]
        elif how == "change_add_row":
            m = min(rec.parent_rows, rec.rows)
            free = sorted(set(range(m)) - set(rec.index.tolist()))
            if not free:
                return None
            r = rng.choice(free)
            k = int(np.searchsorted(rec.index, r))
            arrs = [np.insert(a, k, v) for a, v in zip(arrs, (r, 0.0, 1.0, 0.0, 0))]
            arrs[0], arrs[4] = arrs[0].astype(np.int64), arrs[4].astype(np.uint64)
        elif how == "change_stats":
            if not n:
                return None
            k, s = rng.randrange(n), rng.randrange(1, 5)
            arrs[s] = arrs[s].copy()
            arrs[s][k] = arrs[s][k] + 1 if s == 4 else arrs[s][k] * 0.5 + 0.25
        if how in ("change_drop_row", "change_add_row", "change_stats"):
            rec = dataclasses.replace(rec, index=arrs[0], l2=arrs[1], cosine=arrs[2], max_abs=arrs[3], ulp=arrs[4])
        elif how == "change_header":
            if rng.random() < 0.5 and rec.rows > n:
                rec = dataclasses.replace(rec, rows=rec.rows - 1)
            else:
                rec = dataclasses.replace(rec, parent_rows=rec.parent_rows + 1)
        elif how == "change_tables":
            other = [bytes.fromhex(c.tables["t"]) for c in f.commits]
            rec = dataclasses.replace(rec, parent_table=rec.table, table=rng.choice(other)) \
                if rng.random() < 0.5 else dataclasses.replace(rec, parent_table=rec.table, table=rec.parent_table)
        f.set_change(i, rec)
        return f.finish()
    i = rng.randrange(len(revs)) if at is None else at
    tv = f.tv(i)
    if how == "tv_root":
        b = bytearray(tv.to_bytes())
        b[40 + rng.randrange(32)] ^= 1 << rng.randrange(8)
        f.set_tv(i, bytes(b))
    elif how == "tv_rows":
        if tv.n_rows - 1 <= (tv.n_chunks - 1) * tv.chunk_rows:
            return None  # one row fewer would drop a chunk: not consistent
        f.set_tv(i, dataclasses.replace(tv, n_rows=tv.n_rows - 1).to_bytes())
    elif how == "tv_dim":
        f.set_tv(i, dataclasses.replace(tv, dim=tv.dim - 1).to_bytes())
        if f.tv(i).chunk_rows != tv.chunk_rows:
            return None
    elif how in ("tv_keys_other", "tv_keys_not_keys"):
        if how == "tv_keys_other":
            others = {f.tv(j).meta.get("keys") for j in range(len(revs))} - {tv.meta.get("keys"), None}
            if not others:
                return None
            target = rng.choice(sorted(others))
        else:
            target = rng.choice([f.change_id(j) for j in with_change] + [tv.digests[0].hex()])
        f.set_tv(i, dataclasses.replace(tv, meta={**tv.meta, "keys": target}).to_bytes())
    elif how in ("keys_duplicate", "keys_count"):
        if not tv.meta.get("keys"):
            return None
        keys = decode_keys(f.get(tv.meta["keys"]))
        if how == "keys_duplicate":
            a, b = rng.sample(range(len(keys)), 2)
            keys = keys.copy()
            keys[a] = keys[b]
        else:
            keys = keys[:-1] if rng.random() < 0.5 else np.concatenate([keys, [keys.max() + 1]])
        kid = f.put(encode_keys(keys))
        # every version of the forged commit's key object takes the forged one
        for j in range(len(revs)):
            if f.tv(j).meta.get("keys") == tv.meta["keys"]:
                f.set_tv(j, dataclasses.replace(f.tv(j), meta={**f.tv(j).meta, "keys": kid}).to_bytes())
    else:
        raise ValueError(how)
    return f.finish()


# --- zstd bombs in every compressed field -----------------------------------------------------
BOMBS = ["bomb_chunk_states", "bomb_chunk_unstated", "bomb_keys_states", "bomb_keys_unstated",
         "bomb_change_states", "bomb_change_unstated"]


def _frame_stating(claim: int) -> bytes:
    """A small zstd frame whose header states ``claim`` content bytes (8-byte size field,
    single segment), its blocks those of 30 real bytes."""
    import struct

    import zstandard

    fr = zstandard.ZstdCompressor(level=3).compress(b"abc" * 10)
    fhd = fr[4]
    single, did = (fhd >> 5) & 1, fhd & 3
    assert single
    pos = 5 + (0, 1, 2, 4)[did]
    fcs_len = (1, 2, 4, 8)[fhd >> 6]
    return fr[:4] + bytes([0xE0 | (fhd & 0x1F)]) + fr[5:pos] + struct.pack("<Q", claim) + fr[pos + fcs_len:]


_UNSTATED: dict[int, bytes] = {}


def _frame_unstated(size: int = 1 << 28) -> bytes:
    """A zstd frame that states no content size and expands to ``size`` zero bytes."""
    import zstandard

    if size not in _UNSTATED:
        _UNSTATED[size] = zstandard.ZstdCompressor(level=3, write_content_size=False).compress(bytes(size))
    return _UNSTATED[size]


def _bomb_frame(rng: random.Random, stated: bool) -> bytes:
    return _frame_stating(rng.choice([1 << 32, 1 << 40, (1 << 64) - 2])) if stated else _frame_unstated()


def bomb(root: str, revs: list[str], files: dict[str, list[str]], how: str,
         rng: random.Random) -> tuple[list[str], dict[str, str]] | None:
    """Put a zstd bomb in one compressed field. Chunk planes: in place (a chunk's id is its
    decoded rows, so the object keeps its name; header checksum recomputed). Key and change
    payloads: a re-hashed object wired in like a forgery (their ids cover their bytes, so a
    bomb in place is refused by the id check before anything is decompressed)."""
    import dataclasses

    from embfmt import _layout as L
    from embfmt.objects.chunk import header_checksum, parse_header

    stated = how.endswith("_states")
    frame = _bomb_frame(rng, stated)
    if how.startswith("bomb_chunk"):
        cands = []
        for rel in files["chunk"]:
            b = Path(root, rel).read_bytes()
            h = parse_header(b[:L.CHUNK_HEADER_BYTES], rel, total_size=len(b))
            if h.codec != L.CODEC_RAW and h.payload_bytes:
                cands.append((rel, b, h))
        if not cands:
            return None
        rel, b, h = rng.choice(cands)
        po = h.payload_offset
        table = [list(L.PLANE_ENTRY_STRUCT.unpack_from(b, po + 8 * p)) for p in range(h.itemsize)]
        planes, pos = [], po + 8 * h.itemsize
        for e in table:
            planes.append(b[pos:pos + e[2]])
            pos += e[2]
        p = rng.randrange(h.itemsize)
        table[p][0], table[p][2], planes[p] = L.PLANE_ZSTD, len(frame), frame
        payload = b"".join(L.PLANE_ENTRY_STRUCT.pack(*e) for e in table) + b"".join(planes)
        head = bytearray(b[:L.CHUNK_HEADER_BYTES])
        head[64:72] = len(payload).to_bytes(8, "little")
        rp = b[L.CHUNK_HEADER_BYTES:po]
        head[L.CHUNK_CHECKSUM_OFFSET:] = header_checksum(bytes(head[:L.CHUNK_CHECKSUM_OFFSET]), rp).to_bytes(8, "little")
        Path(root, rel).write_bytes(bytes(head) + rp + payload)
        return list(revs), {}
    f = _Forger(root, revs)
    if how.startswith("bomb_keys"):
        i = rng.randrange(len(revs))
        tv = f.tv(i)
        if not tv.meta.get("keys"):
            return None
        kb = f.get(tv.meta["keys"])
        fields = list(L.KEYS_HEADER_STRUCT.unpack_from(kb))
        fields[6] = len(frame)
        kid = f.put(L.KEYS_HEADER_STRUCT.pack(*fields) + frame)
        f.set_tv(i, dataclasses.replace(tv, meta={**tv.meta, "keys": kid}).to_bytes())
        return f.finish()
    with_change = [i for i in range(len(revs)) if f.change_id(i)]
    if not with_change:
        return None
    i = rng.choice(with_change)
    cb = f.get(f.change_id(i))
    fields = list(L.CHANGE_HEADER_STRUCT.unpack_from(cb))
    fields[9] = len(frame)
    f.set_change(i, f.put(L.CHANGE_HEADER_STRUCT.pack(*fields) + frame))
    return f.finish()


def plan(files: dict[str, list[str]], n_cases: int, seed: int, n_forge: int = 0,
         n_bomb: int = 0) -> list[tuple[str, str, str, str, int]]:
    """(category, kind, file, mutation, case seed). Damage: every (kind, mutation) pair first,
    then random ones; forgeries and bombs: each in turn."""
    rng = random.Random(seed)
    cases = []
    pairs = [(k, m) for k in files for m in MUTATIONS]
    rng.shuffle(pairs)
    while len(cases) < n_cases:
        k, m = pairs[len(cases) % len(pairs)] if len(cases) < len(pairs) else \
            (rng.choice(list(files)), rng.choice(MUTATIONS))
        cases.append(("damage", k, rng.choice(files[k]), m, rng.randrange(1 << 30)))
    for cat, names, n in (("forge", FORGERIES, n_forge), ("bomb", BOMBS, n_bomb)):
        cases += [(cat, cat, "", names[i % len(names)], rng.randrange(1 << 30)) for i in range(n)]
    return cases


OUTCOMES = ("ok", "typed", "wrong", "untyped", "hang", "crash", "missed")


def run(n_cases: int, seed: int, work: str, n_forge: int = 0, n_bomb: int = 0) -> dict[str, Any]:
    """``n_cases`` damaged repositories, ``n_forge`` forged ones, ``n_bomb`` with zstd bombs.
    Per category: cases, detected (verify reported it), and the outcome of every question; a
    forged or bombed repository that verify calls clean counts as ``missed``."""
    template = os.path.join(work, "template")
    revs = build_template(template)
    files = _files(template)
    outside = os.path.join(work, "outside-file")
    Path(outside).write_bytes(b"precious\n")
    cases = plan(files, n_cases, seed, n_forge, n_bomb)
    prepared = []
    for i, (cat, kind, rel, how, cs) in enumerate(cases):
        d = os.path.join(work, f"case{i}")
        shutil.copytree(template, d, symlinks=True)
        rng = random.Random(cs)
        if cat == "damage":
            got = (list(revs), {}) if mutate(d, rel, kind, how, files, rng, outside) else None
        elif cat == "forge":
            got = forge(d, revs, how, rng)
        else:
            got = bomb(d, revs, files, how, rng)
        if got is None:
            shutil.rmtree(d)
            continue
        prepared.append((d, cat, kind, rel, how, got[0], got[1]))
    child = _CHILD % {"as": CHILD_AS, "timeout": CALL_TIMEOUT_S}
    truth = _answers(child, [(template, revs, {}, [])])[0]
    assert all(v[0] == "ok" for v in truth.values()), truth
    results = _answers(child, [(d, v, m, sorted(NOT_ASKED.get(how, ()))) for d, _c, _k, _r, how, v, m in prepared])
    cats: dict[str, dict[str, int]] = {}
    bad = []
    for (d, cat, kind, rel, how, _v, _m), res in zip(prepared, results):
        t = cats.setdefault(cat, {"cases": 0, "detected": 0, "questions": 0, **{o: 0 for o in OUTCOMES}})
        t["cases"] += 1
        found = False
        for q, (outcome, detail) in res.items():
            if q == "verify" and outcome == "ok":
                found = detail != truth[q][1]
                outcome = "typed" if found else ("missed" if cat != "damage" else "ok")
            elif outcome == "ok" and detail != truth[q][1]:
                outcome = "wrong"
            elif q == "verify" and outcome == "typed":
                found = True
            t["questions"] += 1
            t[outcome] += 1
            if outcome not in ("ok", "typed"):
                bad.append({"category": cat, "kind": kind, "file": rel, "mutation": how, "question": q,
                            "outcome": outcome, "detail": detail})
        t["detected"] += found
        shutil.rmtree(d, ignore_errors=True)
    if Path(outside).read_bytes() != b"precious\n":
        bad.append({"outcome": "outside file changed"})
    tally: dict[str, int] = {}
    for t in cats.values():
        for o in OUTCOMES:
            if t[o]:
                tally[o] = tally.get(o, 0) + t[o]
    return {"cases": sum(t["cases"] for t in cats.values()), "categories": cats, "tally": tally,
            "questions": sum(t["questions"] for t in cats.values()), "bad": bad, "kinds": sorted(files),
            "mutations": MUTATIONS, "forgeries": FORGERIES, "bombs": BOMBS}


# --- concurrent writers and gc(0) loops -------------------------------------------------------
_RACER = r"""
import json, random, sys
import numpy as np, embfmt
from embfmt.errors import ConflictError, EmbfmtError, NotFoundError

path, p, rounds, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(seed)
r = embfmt.Repo(path)
b = "b%d" % p
mine = []  # this writer's acknowledged commits on its branch

def emit(**o):
    print(json.dumps(o), flush=True)

def data(k):
    return np.random.default_rng([p, k]).standard_normal((40 + k % 7, 16)).astype(np.float32)

for i in range(rounds):
    op = rng.choice(["main", "branch", "recommit", "recommit", "reset", "tag", "new-branch"])
    try:
        if op == "main":  # every writer commits its own table to main: none may be lost
            k = rng.randrange(1 << 20)
            emit(op="commit", id=r.commit({"w%d" % p: data(k)}, message="%d:%d" % (p, k)), table="w%d" % p, k=k)
        elif op in ("branch", "recommit"):
            # recommit: content this writer committed before (few distinct versions), whose
            # objects a gc may have removed since the commit was orphaned
            k = rng.randrange(3) if op == "recommit" else rng.randrange(1 << 20)
            cid = r.commit({"t": data(k)}, branch=b, message="%d:%d" % (p, k))
            emit(op="commit", id=cid, table="t", k=k)
            mine.append(cid)
            if len(mine) > 1 and rng.random() < 0.6:  # orphan it at once: gc(0) may take it
                r.reset(b, mine[-2])
                emit(op="move", ref="heads/" + b, id=mine[-2])
        elif mine:  # a ref move onto an old, probably orphaned, commit of this writer
            c = rng.choice(mine)
            if op == "reset":
                r.reset(b, c)
                emit(op="move", ref="heads/" + b, id=c)
            elif op == "tag":
                r.tag("g%d-%d" % (p, i), c)
                emit(op="move", ref="tags/g%d-%d" % (p, i), id=c)
            else:
                r.branch("n%d-%d" % (p, i), c)
                emit(op="move", ref="heads/n%d-%d" % (p, i), id=c)
    except (ConflictError, NotFoundError) as e:  # refused (an orphan gc took), nothing moved: allowed
        emit(op="refused", what=op, kind=e.kind.value)
    except EmbfmtError as e:
        emit(op="typed", what=op, kind=e.kind.value, error=str(e)[:300])
    except Exception as e:
        emit(op="untyped", what=op, error=type(e).__name__ + ": " + str(e)[:300])
r.close()
"""

_GC_LOOP = r"""
import json, os, sys, embfmt
path, stop = sys.argv[1], sys.argv[2]
r = embfmt.Repo(path)
runs = removed = 0
while not os.path.exists(stop):
    try:
        removed += r.gc(grace_seconds=0, reflog_expire_seconds=0).objects_removed
        runs += 1
    except embfmt.EmbfmtError as e:
        print(json.dumps({"op": "typed", "what": "gc", "kind": e.kind.value, "error": str(e)[:300]}), flush=True)
    except Exception as e:
        print(json.dumps({"op": "untyped", "what": "gc", "error": type(e).__name__ + ": " + str(e)[:300]}), flush=True)
print(json.dumps({"op": "gc", "runs": runs, "removed": removed}), flush=True)
"""


def race(work: str, n_writers: int, rounds: int, seed: int, n_gc: int = 1,
         timeout_s: float = 600.0) -> dict[str, Any]:
    """``n_writers`` processes commit (each its own table to main, and on a branch of its own
    that it keeps moving back, orphaning commits, then re-commits old content and resets,
    tags and branches onto old orphans) while ``n_gc`` processes loop gc with grace 0 and
    every reflog entry expired. Afterwards: every acknowledged commit to main is in main's
    history and reads back bit-exactly, every ref an acknowledged move left in place names a
    commit that reads back bit-exactly and verifies, and the repository verifies."""
    import numpy as np

    import embfmt

    path = os.path.join(work, "race")
    r = embfmt.Repo.init(path)
    r.commit({"seed": np.zeros((2, 2), np.float32)})
    r.close()
    stop = os.path.join(work, "race-stop")
    gcs = [subprocess.Popen([sys.executable, "-c", _GC_LOOP, path, stop], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True) for _ in range(n_gc)]
    writers = [subprocess.Popen([sys.executable, "-c", _RACER, path, str(p), str(rounds), str(seed * 1000 + p)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for p in range(n_writers)]
    lines: list[dict[str, Any]] = []
    hangs = 0
    per_writer: list[list[dict[str, Any]]] = []
    for p, w in enumerate(writers):
        try:
            out, err = w.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            w.kill()
            out, err = w.communicate()
            hangs += 1
        mine = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
        for x in mine:
            x["p"] = p
        per_writer.append(mine)
        lines += mine
        if w.returncode != 0:
            lines.append({"op": "crash", "p": p, "error": err[-300:]})
    Path(stop).touch()
    gc_runs = gc_removed = 0
    for g in gcs:
        out, err = g.communicate(timeout=120)
        for x in (json.loads(y) for y in out.splitlines() if y.startswith("{")):
            if x["op"] == "gc":
                gc_runs += x["runs"]
                gc_removed += x["removed"]
            else:
                lines.append(x)
        if g.returncode != 0:
            lines.append({"op": "crash", "what": "gc", "error": err[-300:]})

    def data(p: int, k: int) -> Any:
        return np.random.default_rng([p, k]).standard_normal((40 + k % 7, 16)).astype(np.float32)

    r = embfmt.Repo(path)
    content = {x["id"]: (x["p"], x["table"], x["k"]) for x in lines if x["op"] == "commit"}
    bad: list[dict[str, Any]] = []

    def reads_back(cid: str) -> str | None:
        p, table, k = content[cid]
        try:
            got = r.read(table, cid)
        except embfmt.EmbfmtError as e:
            return f"{e.kind.value}: {e}"
        return None if got.tobytes() == data(p, k).tobytes() else "wrong rows"

    main_history = {c.id for c in r.log("main")}
    lost = 0
    for x in lines:
        if x["op"] == "commit" and x["table"].startswith("w"):
            why = "not in main's history" if x["id"] not in main_history else reads_back(x["id"])
            if why:
                lost += 1
                bad.append({"what": "acknowledged commit to main", **x, "why": why})
    last_move: dict[str, str] = {}
    for mine in per_writer:  # a writer's own moves are ordered; refs are per writer
        for x in mine:
            if x["op"] == "move":
                last_move[x["ref"]] = x["id"]
    broken = 0
    for ref, cid in sorted(last_move.items()):
        kind, name = ref.split("/", 1)
        now = r.refs.read(kind, name)
        if now is None or now.hex() != cid:
            if kind == "tags":
                broken += 1
                bad.append({"what": "acknowledged tag moved or gone", "ref": ref, "id": cid})
            continue  # a branch moved by its writer since (its later move is checked)
        why = reads_back(cid)
        if why is None and not r.verify(cid).ok:
            why = "verify: " + json.dumps(r.verify(cid).errors)[:300]
        if why:
            broken += 1
            bad.append({"what": "acknowledged ref move", "ref": ref, "id": cid, "why": why})
    rep = r.verify()
    if not rep.ok:
        bad.append({"what": "verify", "errors": rep.errors[:5]})
    untyped = [x for x in lines if x["op"] in ("untyped", "crash")]
    typed = [x for x in lines if x["op"] == "typed"]
    bad += untyped + typed  # a writer's refusal other than a conflict is looked at too
    r.close()
    return {"writers": n_writers, "rounds": rounds, "gc_loops": n_gc, "gc_runs": gc_runs,
            "gc_objects_removed": gc_removed,
            "commits_acknowledged": sum(x["op"] == "commit" for x in lines),
            "commits_to_main": sum(x["op"] == "commit" and x["table"].startswith("w") for x in lines),
            "moves_acknowledged": sum(x["op"] == "move" for x in lines), "moves_checked": len(last_move),
            "refused": sum(x["op"] == "refused" for x in lines), "typed_other": len(typed),
            "lost": lost, "broken_moves": broken, "untyped": len(untyped), "hangs": hangs,
            "verify_ok": rep.ok, "bad": bad}


def _answers(child: str, todo_all: list[tuple[str, list[str], dict[str, str], list[str]]]) -> list[dict[str, list[str]]]:
    """Run the questions on each repository (path, revisions, id map, questions not asked), in
    as few child processes as possible: a child that dies (a crash) is replaced and its
    current repository counted as crashed."""
    out: list[dict[str, list[str]]] = []
    while len(out) < len(todo_all):
        todo = todo_all[len(out):]
        feed = "".join(json.dumps(list(t)) + "\n" for t in todo)
        res = subprocess.run([sys.executable, "-c", child, json.dumps(QUESTIONS)], input=feed,
                             capture_output=True, text=True, cwd=os.path.dirname(todo[0][0]),
                             timeout=60 + 2 * CALL_TIMEOUT_S * len(QUESTIONS) * len(todo))
        lines = [json.loads(x) for x in res.stdout.splitlines() if x.startswith("{")]
        out.extend(lines)
        if res.returncode != 0 and len(out) < len(todo_all):
            out.append({q: ["crash", res.stderr[-300:]] for q in QUESTIONS})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--full", action="store_true", help="the full size (600 damaged repositories, "
                    "260 forged, 120 with zstd bombs)")
    ap.add_argument("--cases", type=int, default=None, help="damaged repositories")
    ap.add_argument("--forge", type=int, default=None, help="forged repositories")
    ap.add_argument("--bomb", type=int, default=None, help="repositories with a zstd bomb")
    ap.add_argument("--writers", type=int, default=None, help="concurrent writer processes (0: no race)")
    ap.add_argument("--rounds", type=int, default=None, help="operations per writer")
    ap.add_argument("--gc-loops", type=int, default=1, help="processes looping gc(grace 0)")
    ap.add_argument("--seed", type=int, default=20)
    a = ap.parse_args()
    if a.writers is None:
        a.writers = 8 if a.full else 3
    if a.rounds is None:
        a.rounds = 60 if a.full else 12
    n = a.cases if a.cases is not None else (600 if a.full else 60)
    nf = a.forge if a.forge is not None else (260 if a.full else 26)
    nb = a.bomb if a.bomb is not None else (120 if a.full else 12)
    with tempfile.TemporaryDirectory() as work:
        rep = run(n, a.seed, work, nf, nb) if n + nf + nb else {"bad": []}
        if a.writers:
            rep["race"] = race(work, a.writers, a.rounds, a.seed, a.gc_loops)
            rep["bad"] += rep["race"]["bad"]
    print(json.dumps(rep, indent=1))
    return 0 if not rep["bad"] else 1


if __name__ == "__main__":
    sys.exit(main())
