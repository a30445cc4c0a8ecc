"""The reflog: where every ref has pointed, and when (spec §17.1).

Each ref move (commit, reset, revert, restore, branch and tag creation or deletion, a switch of
HEAD) appends one line to the log of that ref, ``logs/heads/<name>``, ``logs/tags/<name>`` or
``logs/HEAD`` (a ``/`` in a ref name is written ``%2F``, so that ``a`` and ``a/b`` never need a
file and a directory of one name). A line is canonical JSON::

    {"author":"alice@host","new":"<64 hex>","old":"<64 hex>","reason":"reset: moving to HEAD~1",
     "ref":"heads/main","time":"2026-12-02T07:00:00.123456Z"}

``old`` / ``new`` are 64 zeros where the ref did not exist (creation / deletion). The reflog is
not content-addressed and never hashed into an object: it is local history, like git's. It is
what makes ``reset`` + ``gc`` safe: gc keeps every commit a reflog entry names until the entry
expires (30 days by default, as git's ``gc.reflogExpireUnreachable``).

Reading is defensive: a damaged line (not JSON, too long, wrong members, cut short by a crash)
is skipped and reported to ``verify``; it never breaks a read or a commit. Appends run under
the ref lock, before the ref itself moves, and are durable (:func:`append_line_durably`).

Examples
--------
>>> import numpy as np, tempfile, embfmt
>>> repo = embfmt.Repo.init(tempfile.mkdtemp())
>>> c1 = repo.commit({"t": np.zeros((2, 2), np.float32)}, message="one")
>>> c2 = repo.commit({"t": np.ones((2, 2), np.float32)}, message="two")
>>> _ = repo.reset("main", c1)
>>> [(e.reason.split(":")[0], e.new == c1) for e in repo.reflog("main")]
[('reset', True), ('commit', False), ('commit', True)]
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .. import _fs
from ..errors import ErrorKind, FormatError
from ..store import open_regular
from ..objects.table_version import canonical_json

__all__ = ["ReflogEntry", "Reflog", "ZERO", "DEFAULT_EXPIRE_SECONDS", "append_line_durably"]

LOG_DIR = "logs"
ZERO = "0" * 64
#: gc keeps what reflog entries name for this long (git's gc.reflogExpireUnreachable: 30 days).
DEFAULT_EXPIRE_SECONDS = 30 * 86400
#: One line, without its newline. 6 members: two 64-hex ids, a ref name (<= 200 chars, §17),
#: a 27-char time, an author (<= 256 bytes) and a reason (<= 200 chars, <= 4 bytes each in
#: UTF-8, up to 6 as JSON escapes): under 2,400 bytes; 4,096 leaves room and stays one page.
MAX_LINE = 4096
MAX_REASON_CHARS = 200
MAX_AUTHOR_BYTES = 256
#: verify lists at most this many reflog problems, then one line counting the rest.
MAX_PROBLEMS = 100
_KEYS = frozenset({"author", "new", "old", "reason", "ref", "time"})
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z\Z")
_ANY_ID = re.compile(rb"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


@dataclass(frozen=True)
class ReflogEntry:
    """One move of one ref."""

    ref: str
    """``heads/<branch>``, ``tags/<tag>`` or ``HEAD``."""
    old: str
    """The commit the ref held before (64 zeros: it did not exist)."""
    new: str
    """The commit it held after (64 zeros: it was deleted)."""
    time: str
    """UTC, ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    author: str
    reason: str
    line: int
    """1-based line in the ref's log file."""

    @property
    def epoch(self) -> float:
        return _epoch(self.time)

    def to_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, "old": self.old, "new": self.new, "time": self.time,
                "author": self.author, "reason": self.reason, "line": self.line}


def _epoch(t: str) -> float:
    return datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


def now_utc() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def append_line_durably(path: str, line: bytes, *, durable: bool = True) -> None:
    """Append ``line`` (no newline in it) plus ``\\n`` to ``path`` and, when ``durable``, fsync the
    file, and its directory when this append created the file (a new directory entry is not on
    stable storage until its directory is synced). Refuses a symlink (``O_NOFOLLOW``) and
    anything but a regular file. When the file does not end in a newline, its last line is an
    append cut short by a crash (never acknowledged: an append returns after its fsync): it is
    cut off, or, when no newline is found within :data:`MAX_LINE` bytes (not a torn append but
    damage), the new line starts on a line of its own. The caller serialises appenders (the
    ref lock); every change goes through :mod:`embfmt._fs`, which the power-loss test observes."""
    created = not os.path.lexists(path)
    if created:
        fd = _fs.create(path)
    else:
        try:
            fd = os.open(path, os.O_RDWR | _NOFOLLOW | os.O_NONBLOCK)
        except OSError as e:
            raise _fs.storage_error(e, path, "open") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise FormatError(f"{path} is not a regular file; refusing to append to it", ErrorKind.BAD_FILE)
        data, end = line + b"\n", st.st_size
        if end and os.pread(fd, 1, end - 1) != b"\n":
            window = min(end, MAX_LINE + 1)
            nl = os.pread(fd, window, end - window).rfind(b"\n")
            if nl >= 0 or window == end:  # a torn last line: drop it
                end = end - window + nl + 1
                _fs.ftruncate(fd, end, path)
            else:
                data = b"\n" + data
        _fs.pwrite(fd, data, end, path)
        if durable:
            _fs.fsync_fd(fd, path)
    finally:
        os.close(fd)
    if durable and created:
        _fs.fsync_dir(os.path.dirname(path))


class Reflog:
    """The reflogs of one repository directory."""

    def __init__(self, root: str, *, durable: bool = True) -> None:
        self.root = root
        self.dir = os.path.join(root, LOG_DIR)
        self.durable = durable

    # --- names -----------------------------------------------------------------------------
    def path(self, ref: str) -> str:
        """The log file of ``ref`` (``heads/<name>``, ``tags/<name>`` or ``HEAD``)."""
        if ref == "HEAD":
            return os.path.join(self.dir, "HEAD")
        kind, _, name = ref.partition("/")
        if kind not in ("heads", "tags") or not name:
            raise FormatError(f"not a ref: {ref!r}", ErrorKind.BAD_REF_NAME)
        return os.path.join(self.dir, kind, name.replace("/", "%2F"))

    def refs(self) -> list[str]:
        """Every ref that has a log (deleted refs included: their log stays)."""
        out = []
        if os.path.isfile(os.path.join(self.dir, "HEAD")):
            out.append("HEAD")
        for kind in ("heads", "tags"):
            d = os.path.join(self.dir, kind)
            if os.path.isdir(d) and not os.path.islink(d):
                out += [f"{kind}/{n.replace('%2F', '/')}" for n in sorted(os.listdir(d))
                        if not n.startswith(".")]
        return out

    # --- writing ---------------------------------------------------------------------------
    def append(self, ref: str, old: bytes | None, new: bytes | None, author: str, reason: str) -> None:
        """Record one move of ``ref``; the caller holds the ref lock."""
        reason = " ".join(reason.split())[:MAX_REASON_CHARS]  # one line, bounded
        author = author.encode("utf-8", "replace")[:MAX_AUTHOR_BYTES].decode("utf-8", "ignore")
        line = canonical_json({"author": author, "new": new.hex() if new else ZERO,
                               "old": old.hex() if old else ZERO, "reason": reason, "ref": ref,
                               "time": now_utc()}, "reflog entry")
        p = self.path(ref)
        for d in (self.dir, os.path.dirname(p)):
            if os.path.islink(d):
                raise FormatError(f"{d} is a symlink; embfmt never writes through one",
                                  ErrorKind.BAD_FILE)
            _fs.makedirs(d, durable=self.durable)
        append_line_durably(p, line, durable=self.durable)

    # --- reading ---------------------------------------------------------------------------
    def _raw_lines(self, ref: str, problems: list[dict[str, str]],
                   torn: bool = False) -> list[tuple[int, bytes | None]]:
        """``(line number, bytes without newline)`` of each line of ``ref``'s log; ``None`` for
        a line over :data:`MAX_LINE` (reported). A last line without its newline is an append
        cut short (a crash, a power loss): no entry and no damage, left out unless ``torn``. A
        file that cannot be read is reported and reads as empty."""
        where = f"{LOG_DIR}/{os.path.relpath(self.path(ref), self.dir)}"
        try:
            fd, _ = open_regular(self.path(ref), "reflog")
        except FileNotFoundError:
            return []
        except (OSError, FormatError) as e:  # unreadable, or a symlink, FIFO or directory
            why = f"cannot be read ({e.strerror or e})" if isinstance(e, OSError) else "not a regular file"
            problems.append({"object": where, "kind": ErrorKind.BAD_FILE.value, "error": why})
            return []
        out: list[tuple[int, bytes | None]] = []
        with os.fdopen(fd, "rb") as f:
            n = 0
            while True:
                raw = f.readline(MAX_LINE + 2)
                if not raw:
                    break
                n += 1
                if not raw.endswith(b"\n") and len(raw) > MAX_LINE:
                    while raw and not raw.endswith(b"\n"):  # skip the rest of it, bounded reads
                        raw = f.readline(1 << 16)
                    out.append((n, None))
                    continue
                if not raw.endswith(b"\n") and not torn:
                    break  # the last line, cut short (readline stops only at EOF here)
                out.append((n, raw.rstrip(b"\n")))
        return out

    def read(self, ref: str, problems: list[dict[str, str]] | None = None) -> list[ReflogEntry]:
        """The entries of ``ref``'s log, oldest first. Damaged lines are skipped and, when
        ``problems`` is given, reported into it (verify entries)."""
        found: list[dict[str, str]] = [] if problems is None else problems
        where = f"{LOG_DIR}/{os.path.relpath(self.path(ref), self.dir)}"
        out = []
        for n, raw in self._raw_lines(ref, found):
            e = None if raw is None else _parse(raw, ref, n)
            if e is None:
                why = f"longer than {MAX_LINE} bytes" if raw is None else \
                    "not a reflog entry (canonical JSON with author, new, old, reason, ref, time)"
                found.append({"object": f"{where}:{n}", "kind": ErrorKind.BAD_FILE.value,
                              "error": f"line {n}: {why}; skipped"})
                continue
            out.append(e)
        return out

    def problems(self) -> list[dict[str, str]]:
        """Every damaged line of every reflog, as verify entries."""
        found: list[dict[str, str]] = []
        for ref in self.refs():
            self.read(ref, found)
        if len(found) > MAX_PROBLEMS:
            n = len(found) - MAX_PROBLEMS
            found = found[:MAX_PROBLEMS] + [{"object": LOG_DIR, "kind": ErrorKind.BAD_FILE.value,
                                             "error": f"... and {n} more damaged reflog lines"}]
        return found

    def missing(self, has: Callable[[bytes], bool]) -> list[dict[str, str]]:
        """verify entries for commits that reflog entries name but that are not stored (``has``
        says which are): gc keeps those until their entries expire, so one missing is lost
        history. One entry per commit, at the first line naming it."""
        out: list[dict[str, str]] = []
        seen = {ZERO}
        for ref in self.refs():
            for e in self.read(ref):
                for x in (e.old, e.new):
                    if x in seen:
                        continue
                    seen.add(x)
                    if not has(bytes.fromhex(x)):
                        where = f"{LOG_DIR}/{os.path.relpath(self.path(ref), self.dir)}:{e.line}"
                        out.append({"object": where, "kind": ErrorKind.MISSING_OBJECT.value,
                                    "error": f"commit {x}, which {ref} held on {e.time} "
                                             f"({e.reason}), is missing"})
                        if len(out) >= MAX_PROBLEMS:
                            return out
        return out

    def commits_named(self, cutoff: float | None = None) -> set[bytes]:
        """Every 64-hex id in the reflog lines gc keeps: entries at or after ``cutoff`` (epoch
        seconds; None: all) and damaged lines, unless ``cutoff`` is infinite (spec §18.4).
        Conservative, as for the usage log: a damaged line still protects what it names."""
        out: set[bytes] = set()
        for ref in self.refs():
            for n, raw in self._raw_lines(ref, [], torn=True):
                if not raw:
                    continue
                e = _parse(raw, ref, n)
                if e is None and cutoff == float("inf"):
                    continue
                if e is not None and cutoff is not None and e.epoch < cutoff:
                    continue
                out.update(bytes.fromhex(m.group(0).decode()) for m in _ANY_ID.finditer(raw))
        out.discard(bytes(32))
        return out

    # --- expiry ----------------------------------------------------------------------------
    def expire(self, cutoff: float) -> int:
        """Drop entries older than ``cutoff`` (epoch seconds) from every log; returns how many.
        Damaged lines are kept (their time is unknown), unless ``cutoff`` is infinite (expire
        everything). The caller holds the ref lock. Each log is rewritten to a temporary file,
        fsynced and renamed over the old one: a crash leaves the old log or the new one."""
        dropped = 0
        everything = cutoff == float("inf")
        for ref in self.refs():
            lines = self._raw_lines(ref, [])
            keep: list[bytes] = []
            for n, raw in lines:
                e = None if raw is None else _parse(raw, ref, n)
                if e is None:  # damaged: its time is unknown, so it goes only with everything
                    if raw is not None and not everything:
                        keep.append(raw)
                    else:
                        dropped += 1
                elif e.epoch >= cutoff:
                    keep.append(raw)  # type: ignore[arg-type]
                else:
                    dropped += 1
            if len(keep) == len(lines):
                continue
            _fs.write_atomic(self.path(ref), b"".join(x + b"\n" for x in keep), durable=self.durable)
        return dropped


def _parse(raw: bytes, ref: str, n: int) -> ReflogEntry | None:
    """One line as an entry, or None when it is not a valid entry of ``ref``'s log."""
    try:
        d = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(d, dict) or set(d) != _KEYS or not all(isinstance(v, str) for v in d.values()):
        return None
    if (d["ref"] != ref or not _HEX64.match(d["old"]) or not _HEX64.match(d["new"])
            or not _TIME.match(d["time"]) or len(d["reason"]) > MAX_REASON_CHARS
            or len(d["author"].encode("utf-8", "replace")) > MAX_AUTHOR_BYTES):
        return None
    try:
        _epoch(d["time"])
    except ValueError:  # 2026-13-45...
        return None
    return ReflogEntry(d["ref"], d["old"], d["new"], d["time"], d["author"], d["reason"], n)
