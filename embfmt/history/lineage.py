"""Lineage: stamps naming one table version, and an append-only, hash-chained usage log
(spec §21).

A **stamp** is a short text token that names one table of one commit, for model metadata and
inference logs::

    emb1:s:<table>@<commit id, 64 hex>:<table-version id, first 32 hex>:<check, 8 hex>

It resolves back to the commit, the table version, its fingerprint and shape. Everything in
it is checked: the check digits catch a mistyped or bit-flipped stamp (``bad-stamp``), the
table-version id prefix (128 bits) must be the one the (immutable, content-addressed) commit
names for that table (``digest-mismatch`` otherwise), and a commit that is not in the
repository (removed by ``reset`` + ``gc``, or a stamp of another repository) is
:class:`~embfmt.errors.NotFoundError`.

The **usage log** ``lineage/uses.log`` holds one canonical-JSON record per line, each naming a
stamp, a consumer and free context, chained by ``prev`` = BLAKE3 of the previous line;
``lineage/uses.head`` holds the record count, the committed byte length and the hash of the
last line, so a removed tail is detected too. The head is a lower bound: complete lines past it
that chain on are records (an append killed after writing its line, or a head rolled back), so
rolling the head back hides nothing. Appends run under the repository's ref lock.

Examples
--------
>>> import numpy as np, tempfile, embfmt
>>> repo = embfmt.Repo.init(tempfile.mkdtemp())
>>> _ = repo.commit({"emb": np.eye(4, dtype=np.float32)}, message="v1")
>>> s = repo.stamp("emb")
>>> s.startswith("emb1:s:emb@") and len(s) == len("emb1:s:emb@") + 64 + 1 + 32 + 1 + 8
True
>>> repo.resolve_stamp(s).rows, repo.resolve(s) == repo.resolve("HEAD")
(4, True)
>>> rid = repo.record_use(s, consumer="ranker-v7", context={"run": 12})
>>> [u.consumer for u in repo.uses()], repo.verify().ok
(['ranker-v7'], True)
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypedDict

import blake3

from .. import _fs
from ..errors import (
    ConflictError,
    EmbfmtError,
    ErrorKind,
    FormatError,
    InputError,
    IntegrityError,
    NotFoundError,
)
from ..objects.stamp import parse_stamp
from ..objects.table_version import canonical_json
from .config import default_author
from ..store import open_regular, read_bounded, real_dir

if TYPE_CHECKING:
    from .revisions import Revisions

__all__ = [
    "UsageLog",
    "UseRecord",
]

# --- usage log (spec §21.2) --------------------------------------------------------------------
LOG_DIR = "lineage"
LOG_NAME = "uses.log"
HEAD_NAME = "uses.head"
LOG_FORMAT = 1
GENESIS = "0" * 64
#: One record line, without its newline, at most this many bytes.
MAX_RECORD_BYTES = 1 << 20
#: The consumer name, in UTF-8 bytes.
MAX_CONSUMER_BYTES = 1024
#: The context object as canonical JSON.
MAX_CONTEXT_BYTES = 1 << 16
#: verify lists at most this many problems of the log, then one line counting the rest.
MAX_PROBLEMS = 100
_RECORD_KEYS = frozenset({"author", "consumer", "context", "format", "prev", "seq", "stamp", "time"})
_HEAD_KEYS = frozenset({"format", "head", "length", "records"})
_TIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z\Z")
_HEX64_RE = re.compile(r"[0-9a-f]{64}\Z")
# The commit id inside anything that looks like a stamp, for gc's conservative read of the log
# (spec §18.4): table names (§17) never hold '@' or '"', so this cannot overrun a stamp.
_STAMP_COMMIT_RE = re.compile(rb"emb1:s:[A-Za-z0-9_./-]{1,200}@([0-9a-f]{64}):")
# gc reads the log in blocks this large; consecutive blocks overlap by more than the longest
# stamp (314 characters, §21.3), so a stamp split across two blocks is still seen whole.
_SCAN_BLOCK = 1 << 20
_SCAN_OVERLAP = 512


class _LogLine(TypedDict):
    """The members of one line of ``lineage/uses.log`` as written (spec §21.2)."""

    author: str
    consumer: str
    context: dict[str, Any] | None
    format: int
    prev: str
    seq: int
    stamp: str
    time: str


@dataclass(frozen=True)
class UseRecord:
    """One record of the usage log."""

    id: str
    """BLAKE3 of the record's line (hex): what :meth:`Repo.record_use` returns."""
    seq: int
    """0-based position in the log (line ``seq + 1`` of ``lineage/uses.log``)."""
    stamp: str
    table: str
    commit: str
    consumer: str
    context: dict[str, Any] | None
    time: str
    author: str
    prev: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "seq": self.seq, "stamp": self.stamp, "table": self.table,
                "commit": self.commit, "consumer": self.consumer, "context": self.context,
                "time": self.time, "author": self.author, "prev": self.prev}


def _line_hash(line: bytes) -> str:
    return blake3.blake3(line).hexdigest()


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _check_consumer(consumer: Any) -> str:
    if not isinstance(consumer, str) or not consumer.strip():
        raise InputError(f"consumer must be a non-empty string, got {consumer!r}", ErrorKind.BAD_ARGUMENT)
    if len(consumer.encode("utf-8", "surrogatepass")) > MAX_CONSUMER_BYTES:
        raise InputError(f"consumer is longer than {MAX_CONSUMER_BYTES} bytes", ErrorKind.TOO_LARGE)
    return consumer


def _check_context(context: Any) -> dict[str, Any] | None:
    if context is None:
        return None
    if not isinstance(context, Mapping):
        raise InputError(f"context must be a JSON object (dict) or None, got {type(context).__name__}",
                         ErrorKind.BAD_ARGUMENT)
    as_dict: dict[str, Any] = dict(context)
    n = len(canonical_json(as_dict, "usage context"))
    if n > MAX_CONTEXT_BYTES:
        raise InputError(f"context is {n} bytes of JSON (max {MAX_CONTEXT_BYTES})", ErrorKind.TOO_LARGE)
    return as_dict


class _Problem(Exception):
    """One defect of the log found while scanning (becomes a verify entry or an error)."""

    def __init__(self, where: str, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.where, self.kind, self.message = where, kind, message

    def to_dict(self) -> dict[str, str]:
        return {"object": self.where, "kind": self.kind.value, "error": self.message}

    def to_error(self) -> EmbfmtError:
        cls = IntegrityError if self.kind in (ErrorKind.DIGEST_MISMATCH, ErrorKind.TRUNCATED) else FormatError
        return cls(f"{self.where}: {self.message}", self.kind)


class UsageLog:
    """The usage log of one repository directory (``lineage/uses.log`` + ``lineage/uses.head``).

    Parameters
    ----------
    root
        The repository directory.
    durable
        fsync the log and the head on every append (the repository's ``durable`` setting).
    """

    def __init__(self, root: str, *, durable: bool = True) -> None:
        self.root = root
        self.dir = os.path.join(root, LOG_DIR)
        self.log_path = os.path.join(self.dir, LOG_NAME)
        self.head_path = os.path.join(self.dir, HEAD_NAME)
        self.durable = durable
        self.log_name = f"{LOG_DIR}/{LOG_NAME}"
        self.head_name = f"{LOG_DIR}/{HEAD_NAME}"

    # --- head ------------------------------------------------------------------------------
    def read_head(self) -> tuple[int, int, str] | None:
        """``(records, length, last hash)`` from the head file; None when it does not exist."""
        try:  # bounded; a FIFO or link in its place is refused, never waited on or followed
            data = read_bounded(self.head_path, 4096, self.head_name)
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            d = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):  # ValueError: JSON, huge ints
            d = None
        ok = (isinstance(d, dict) and set(d) == _HEAD_KEYS and d["format"] == LOG_FORMAT
              and all(isinstance(d[k], int) and not isinstance(d[k], bool) and d[k] >= 0
                      for k in ("records", "length"))
              and isinstance(d["head"], str) and bool(_HEX64_RE.match(d["head"]))
              and data == canonical_json(d) + b"\n"
              and (d["records"] == 0) == (d["length"] == 0) == (d["head"] == GENESIS))
        if not ok:
            raise FormatError(f"{self.head_name} is corrupt: expected "
                              '{"format":1,"head":"<64 hex>","length":N,"records":N} and a newline, '
                              f"found {data[:120]!r}", ErrorKind.BAD_FILE)
        return d["records"], d["length"], d["head"]

    def _write_head(self, records: int, length: int, head: str) -> None:
        data = canonical_json({"format": LOG_FORMAT, "head": head, "length": length,
                               "records": records}) + b"\n"
        # Atomic (a reader sees the old head or the new one) and, when durable, fsynced with
        # its directory, which also makes the log file's own name durable (spec §18.6).
        _fs.write_atomic(self.head_path, data, durable=self.durable)

    # --- append ----------------------------------------------------------------------------
    def append(self, stamp_text: str, table: str, commit: str, consumer: str,
               context: dict[str, Any] | None, author: str, time: str | None = None) -> UseRecord:
        """Append one record. The caller holds the repository's ref lock and has resolved the
        stamp; returns the record."""
        # Never appended through a symlink out of the repository (directory or file).
        real_dir(self.dir, "usage log directory")
        _fs.makedirs(self.dir, durable=self.durable)
        real_dir(self.dir, "usage log directory")
        head = self.read_head()
        if head is None:
            if os.path.exists(self.log_path) and os.path.getsize(self.log_path) > 0:
                raise IntegrityError(f"{self.head_name} is missing but {self.log_name} holds records: "
                                     "the head was deleted; run `embfmt verify`")
            # The head exists before the first line does, so a missing head with a non-empty log
            # always means tampering, never an interrupted first append.
            self._write_head(0, 0, GENESIS)
            head = (0, 0, GENESIS)
        n, length, last = head
        try:  # never through a link; a FIFO in its place must not block the open
            fd = os.open(self.log_path, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            fd = _fs.create(self.log_path, 0o644, flags=os.O_RDWR | os.O_NOFOLLOW)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise ConflictError(f"{self.log_path} is a symbolic link: the usage log is never "
                                    "written through one", ErrorKind.UNSAFE_PATH) from None
            raise _fs.storage_error(e, self.log_path) from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise FormatError(f"{self.log_path} is not a regular file", ErrorKind.NOT_A_FILE)
            os.set_blocking(fd, True)
            size = st.st_size
            if size < length:
                raise IntegrityError(f"{self.log_name} has {size} bytes, its head says {length}: "
                                     "records were removed; run `embfmt verify`", ErrorKind.TRUNCATED)
            if n:
                self._check_last(fd, length, n, last)
            if size > length:
                # Bytes past the committed length: appends that died before their head update.
                # Whole records that chain on are kept (the use happened; the log only grows);
                # a cut-short last line is dropped. A line that does not chain is refused.
                n, length, last = self._roll_forward(fd, n, length, last, size)
                _fs.ftruncate(fd, length, self.log_path)
            rec: _LogLine = {"author": author, "consumer": consumer, "context": context, "format": LOG_FORMAT,
                             "prev": last, "seq": n, "stamp": stamp_text, "time": time or _now()}
            line = canonical_json(rec, "usage record")
            if len(line) > MAX_RECORD_BYTES:
                raise InputError(f"usage record is {len(line)} bytes (max {MAX_RECORD_BYTES})",
                                 ErrorKind.TOO_LARGE)
            data = line + b"\n"
            _fs.pwrite(fd, data, length, self.log_path)
            if self.durable:  # the record is on stable storage before the head names it
                _fs.fsync_fd(fd, self.log_path)
        finally:
            os.close(fd)
        rid = _line_hash(line)
        # The head names the record last: only then is it part of the log.
        self._write_head(n + 1, length + len(data), rid)
        return UseRecord(rid, n, stamp_text, table, commit, consumer, context, rec["time"], author, last)

    def _roll_forward(self, fd: int, n: int, length: int, last: str, size: int) -> tuple[int, int, str]:
        """Adopt the complete, chaining records past the committed length; returns the new
        (count, length, last hash)."""
        if size - length > (256 << 20):  # bounded before reading it
            raise IntegrityError(f"{self.log_name}: {size - length} bytes past the committed length "
                                 f"{length}: not left by interrupted appends; run `embfmt verify`")
        tail = os.pread(fd, size - length, length)
        pos = 0
        while True:
            nl = tail.find(b"\n", pos)
            if nl < 0:
                return n, length + pos, last
            line = tail[pos:nl]
            problems: list[_Problem] = []
            rec = self._parse(line, n + 1, _line_hash(line), self.log_name, problems.append)
            if rec is None or rec.seq != n or rec.prev != last:
                raise IntegrityError(f"{self.log_name}: line {n + 1}, past the committed length, does "
                                     "not chain onto the log: the log was altered; run `embfmt verify`")
            n, last, pos = n + 1, _line_hash(line), nl + 1

    def _check_last(self, fd: int, length: int, n: int, last: str) -> None:
        """The committed log's last line must hash to the head (cheap: one line is read)."""
        want = min(length, MAX_RECORD_BYTES + 2)
        tail = os.pread(fd, want, length - want)
        if not tail.endswith(b"\n"):
            raise IntegrityError(f"{self.log_name}: byte {length} named by the head is not the end "
                                 "of a record; run `embfmt verify`")
        start = tail.rfind(b"\n", 0, len(tail) - 1) + 1
        if start == 0 and want < length:
            raise IntegrityError(f"{self.log_name}: last record is longer than {MAX_RECORD_BYTES} bytes")
        if _line_hash(tail[start:-1]) != last:
            raise IntegrityError(f"{self.log_name}: record {n} (line {n}) does not hash to the head "
                                 f"{last[:12]}...: the log was altered; run `embfmt verify`")

    # --- reading and checking ---------------------------------------------------------------
    def scan(self, problems: list[_Problem] | None = None) -> list[UseRecord]:
        """Every committed record, checking the whole chain.

        With ``problems`` given, defects are appended to it and the scan goes on (for verify);
        without, the first defect raises :class:`IntegrityError` or :class:`FormatError` naming
        its line.
        """
        def report(p: _Problem) -> None:
            if problems is None:
                raise p.to_error()
            problems.append(p)

        try:
            head = self.read_head()
        except FormatError as e:
            report(_Problem(self.head_name, e.kind, e.message))
            return []
        exists = os.path.exists(self.log_path)
        if head is None:
            if exists and os.path.getsize(self.log_path) > 0:
                report(_Problem(self.head_name, ErrorKind.NOT_FOUND,
                                f"missing, but {self.log_name} holds records: the head was deleted"))
            return []
        n_head, length, last_head = head
        if not exists:
            if n_head:
                report(_Problem(self.log_name, ErrorKind.TRUNCATED,
                                f"missing, but {self.head_name} says it holds {n_head} records"))
            return []
        out: list[UseRecord] = []
        prev_hash, prev_seq, pos, lineno = GENESIS, -1, 0, 0
        at_head: tuple[int, str] | None = (0, GENESIS) if length == 0 else None
        try:
            fd, _ = open_regular(self.log_path, self.log_name)
        except FormatError as e:  # a FIFO, device or link in its place
            report(_Problem(self.log_name, e.kind, e.message))
            return []
        with os.fdopen(fd, "rb") as f:
            while True:
                # Lines end at b"\n" only (U+2028 and friends inside JSON strings are not breaks).
                raw = f.readline(MAX_RECORD_BYTES + 2)
                if not raw:
                    break
                past = pos >= length  # beyond the head: records whose head update did not land
                lineno += 1
                where = f"{self.log_name}:{lineno}"
                end = pos + len(raw)
                if not raw.endswith(b"\n"):
                    if past and len(raw) <= MAX_RECORD_BYTES:
                        break  # an append cut short before its newline: never a record
                    if len(raw) > MAX_RECORD_BYTES:
                        report(_Problem(where, ErrorKind.BAD_FILE,
                                        f"line {lineno} is longer than {MAX_RECORD_BYTES} bytes"))
                        return out
                    report(_Problem(where, ErrorKind.TRUNCATED,
                                    f"line {lineno} has no newline: the record was cut short"))
                    prev_hash, pos = _line_hash(raw), end
                    break
                if not past and end > length:
                    report(_Problem(where, ErrorKind.DIGEST_MISMATCH,
                                    f"line {lineno} runs past the committed length {length} that "
                                    f"{self.head_name} names: records were altered"))
                    break
                line = raw[:-1]
                h = _line_hash(line)
                rec = self._parse(line, lineno, h, where, report)
                if rec is not None:
                    gap = []
                    if rec.seq != prev_seq + 1:
                        gap.append(f"seq is {rec.seq}, the line before has {prev_seq}")
                    if rec.prev != prev_hash:
                        gap.append(f"prev {rec.prev[:12]}... is not the hash of line {lineno - 1} "
                                   f"({prev_hash[:12]}...)" if lineno > 1 else
                                   f"prev {rec.prev[:12]}... is not {GENESIS[:12]}... (first record)")
                    if gap:
                        report(_Problem(where, ErrorKind.DIGEST_MISMATCH,
                                        f"line {lineno}: {'; '.join(gap)}: line {lineno - 1} or "
                                        f"line {lineno} was altered, or lines were removed, inserted "
                                        "or reordered here"))
                    out.append(rec)
                    prev_seq = rec.seq
                else:
                    prev_seq += 1
                prev_hash, pos = h, end
                if pos == length:
                    at_head = (lineno, prev_hash)
        if pos < length:
            report(_Problem(self.log_name, ErrorKind.TRUNCATED,
                            f"ends at byte {pos} after {lineno} records, but {self.head_name} says "
                            f"{length} bytes and {n_head} records: the last records were removed"))
        elif at_head is None or at_head != (n_head, last_head):
            n_at, h_at = at_head if at_head is not None else (lineno, prev_hash)
            report(_Problem(f"{self.log_name}:{n_at}", ErrorKind.DIGEST_MISMATCH,
                            f"the log holds {n_at} records ending in {h_at[:12]}... at byte {length}, "
                            f"but {self.head_name} says {n_head} records ending in "
                            f"{last_head[:12]}...: line {n_at} or the head was altered"))
        return out

    @staticmethod
    def _parse(line: bytes, lineno: int, h: str, where: str, report: Any) -> UseRecord | None:
        def bad(why: str) -> None:
            report(_Problem(where, ErrorKind.BAD_FILE, f"line {lineno}: {why}"))

        try:
            d = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as e:  # ValueError: JSON, huge ints
            bad(f"not UTF-8 JSON ({type(e).__name__}: {str(e)[:200]})")
            return None
        if not isinstance(d, dict) or set(d) != _RECORD_KEYS:
            bad(f"not a usage record (members must be {', '.join(sorted(_RECORD_KEYS))})")
            return None
        try:
            canon = canonical_json(d)
        except InputError:
            canon = b""
        if canon != line:
            bad("not canonical JSON (sorted members, no spaces): the line was edited")
            return None
        if (d["format"] != LOG_FORMAT or not isinstance(d["seq"], int) or isinstance(d["seq"], bool)
                or d["seq"] < 0 or not isinstance(d["prev"], str) or not _HEX64_RE.match(d["prev"])
                or not isinstance(d["time"], str) or not _TIME_RE.match(d["time"])
                or not isinstance(d["author"], str) or not isinstance(d["consumer"], str)
                or not d["consumer"] or not (d["context"] is None or isinstance(d["context"], dict))):
            bad("a member has the wrong type or form")
            return None
        if (not d["consumer"].strip()
                or len(d["consumer"].encode("utf-8", "surrogatepass")) > MAX_CONSUMER_BYTES
                or (d["context"] is not None and len(canonical_json(d["context"])) > MAX_CONTEXT_BYTES)):
            bad(f"consumer blank or over {MAX_CONSUMER_BYTES} bytes, or context over "
                f"{MAX_CONTEXT_BYTES} bytes (spec §21.3)")
            return None
        try:
            table, commit, _ = parse_stamp(d["stamp"])
        except FormatError as e:
            bad(str(e))
            return None
        return UseRecord(h, d["seq"], d["stamp"], table, commit, d["consumer"], d["context"],
                         d["time"], d["author"], d["prev"])

    def commits_named(self) -> set[bytes]:
        """Every commit id that a stamp anywhere in the log names: garbage collection's roots
        (spec §18.4). Conservative by design: the raw bytes are searched, so lines that fail
        verification (altered by hand, cut short, past the head) still protect what they name;
        keeping too much is recoverable, deleting a used version is not."""
        try:
            fd, _ = open_regular(self.log_path, self.log_name)
        except FileNotFoundError:
            return set()
        except (OSError, FormatError) as e:  # a symlink, a FIFO, unreadable: never guess, refuse
            why = e.strerror or e if isinstance(e, OSError) else e
            raise FormatError(f"{self.log_name} cannot be read ({why}); gc keeps nothing it "
                              "cannot account for: repair or remove it", ErrorKind.BAD_FILE) from None
        out: set[bytes] = set()
        try:
            pos, carry = 0, b""
            while True:
                block = os.pread(fd, _SCAN_BLOCK, pos)
                if not block:
                    break
                pos += len(block)
                buf = carry + block
                out.update(bytes.fromhex(m.group(1).decode()) for m in _STAMP_COMMIT_RE.finditer(buf))
                carry = buf[-_SCAN_OVERLAP:]
        finally:
            os.close(fd)
        return out

    def problems(self, records: list[UseRecord] | None = None) -> list[dict[str, str]]:
        """Every defect of the log and its head, as verify report entries (empty: intact);
        ``records`` collects the records that parsed."""
        found: list[_Problem] = []
        try:
            got = self.scan(found)
            if records is not None:
                records.extend(got)
        except OSError as e:
            found.append(_Problem(self.log_name, ErrorKind.BAD_FILE, f"cannot be read ({e})"))
        out = [p.to_dict() for p in found[:MAX_PROBLEMS]]
        if len(found) > MAX_PROBLEMS:
            out.append({"object": self.log_name, "kind": ErrorKind.DIGEST_MISMATCH.value,
                        "error": f"... and {len(found) - MAX_PROBLEMS} more problems"})
        return out

    def __iter__(self) -> Iterator[UseRecord]:
        return iter(self.scan())


def record_use(repo: Revisions, stamp_text: str, *, consumer: str, context: Mapping[str, Any] | None = None,
               author: str | None = None) -> UseRecord:
    """Validate ``stamp_text`` against ``repo`` and append a record (see :meth:`Repo.record_use`)."""
    consumer = _check_consumer(consumer)
    context = _check_context(context)
    info = repo.resolve_stamp(stamp_text)
    if author is None:
        author = default_author()
    log = UsageLog(repo.path, durable=repo.refs.durable)
    # The ref lock serialises appenders across processes (flock; released if one dies).
    with repo.refs.locked():
        return log.append(stamp_text, info.table, info.commit, consumer, context, author)


def gone_uses(repo: Revisions, records: list[UseRecord]) -> list[dict[str, str]]:
    """verify's findings for recorded uses whose version cannot be read any more (spec §21.2):
    one entry per distinct stamp, at the first line that records it, naming the consumers."""
    by_stamp: dict[str, list[UseRecord]] = {}
    for r in records:
        by_stamp.setdefault(r.stamp, []).append(r)
    out: list[dict[str, str]] = []
    for text, recs in by_stamp.items():
        try:
            repo.resolve_stamp(text)
            continue
        except NotFoundError as e:
            kind, why = ErrorKind.MISSING_OBJECT, f"commit {recs[0].commit} is gone ({e.message})"
        except EmbfmtError as e:
            kind, why = e.kind, e.message
        consumers = sorted({r.consumer for r in recs})
        shown = ", ".join(consumers[:5]) + (f" and {len(consumers) - 5} more" if len(consumers) > 5 else "")
        out.append({"object": f"{LOG_DIR}/{LOG_NAME}:{recs[0].seq + 1}", "kind": kind.value,
                    "error": f"{len(recs)} recorded use(s) of {recs[0].table} at "
                             f"{recs[0].commit[:12]} (by {shown}) name a version that cannot be "
                             f"read: {why}"})
        if len(out) >= MAX_PROBLEMS:
            break
    return out


def uses(repo: Revisions, rev: str | None = None, *, table: str | None = None) -> list[UseRecord]:
    """Records of the usage log, oldest first; with ``rev``, only those whose stamp names
    ``rev``'s commit; with ``table``, only that table's."""
    cid = repo.resolve(rev) if rev is not None else None
    out = []
    for r in UsageLog(repo.path, durable=repo.refs.durable).scan():
        if (cid is None or r.commit == cid) and (table is None or r.table == table):
            out.append(r)
    return out
