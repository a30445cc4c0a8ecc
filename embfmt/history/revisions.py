"""The read side of a repository: objects by id, refs and revisions, history walks (spec §11-§17).

:class:`Revisions` answers every question about what is stored without changing anything:
commit and table-version objects (hash-checked, parsed versions kept), key and change
objects, what a revision names (``HEAD~2``, a tag, an id prefix, a stamp), the log, and lazy
views of stored tables. The commit transaction, ref moves and maintenance are built on it.
"""

from __future__ import annotations

import heapq
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import blake3
import numpy as np

from .. import _layout as L
from ..errors import EmbfmtError, ErrorKind, FormatError, InputError, IntegrityError, NotFoundError
from ..objects.change import ChangeHeader, ChangeRecord
from ..objects.commit import Commit
from ..objects.keys import decode_keys
from ..objects.names import check_ref_name
from ..objects.stamp import StampInfo, is_stamp, make_stamp, parse_stamp
from ..objects.table_version import TableVersion
from ..store import Leases, Store, WriteBatch
from ..suggest import did_you_mean
from .reader import ChunkReader
from .ref import Refs
from .reflog import ReflogEntry
from .table import TableView

__all__ = ["Revisions", "CommitInfo", "TABLE_VERSIONS_KEPT"]

# Parsed table versions kept per repository (a 1M-row version is ~16 KiB of digests).
TABLE_VERSIONS_KEPT = 256

_REV = re.compile(r"^(?P<base>[^~^]+)(?P<tail>(?:~\d*|\^)*)$")


@dataclass(frozen=True)
class CommitInfo:
    """A commit as the API and ``--json`` show it."""

    id: str
    commit: Commit

    @property
    def message(self) -> str:
        return self.commit.message

    @property
    def parents(self) -> tuple[str, ...]:
        return self.commit.parents

    @property
    def tables(self) -> dict[str, str]:
        return self.commit.tables

    @property
    def metadata(self) -> dict[str, Any]:
        return self.commit.metadata

    @property
    def time(self) -> str:
        return self.commit.time

    @property
    def author(self) -> str:
        return self.commit.author

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, **self.commit.to_dict()}


def _epoch(when: str) -> float:
    """Seconds since 1970 of a commit time (0 for a time that does not parse)."""
    try:
        return datetime.strptime(when, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return 0.0


class Revisions:
    """Reading a repository: ``store`` holds the objects, ``refs`` the branches, tags, HEAD and
    reflog, ``leases`` the write leases; ``reader`` decodes chunks; ``pool`` serves parallel
    reads of table views. Nothing here needs a filesystem: any Store and Refs will do."""

    def __init__(self, path: str, store: Store, refs: Refs, leases: Leases, reader: ChunkReader,
                 pool: ThreadPoolExecutor) -> None:
        self.path = path
        self.store = store
        self.refs = refs
        #: the write leases every table write holds while it runs (spec §18.4)
        self.leases = leases
        self.reader = reader
        self.pool = pool
        self._tv_cache: OrderedDict[bytes, TableVersion] = OrderedDict()
        self._tv_lock = threading.Lock()

    # --- objects ----------------------------------------------------------------------------
    def get(self, oid: bytes, what: str, max_size: int | None = None) -> bytes:
        """The bytes of object ``oid``; a missing one is :class:`NotFoundError` naming ``what``."""
        try:
            return self.store.get(oid, max_size)
        except NotFoundError:
            raise NotFoundError(f"{what} {oid.hex()} is missing from {self.path}",
                                ErrorKind.MISSING_OBJECT) from None

    def put_hashed(self, data: bytes, batch: WriteBatch | Store | None = None) -> bytes:
        """Store ``data`` under its BLAKE3 id (through ``batch`` when given); returns the id."""
        oid = blake3.blake3(data).digest()
        (batch or self.store).put(oid, data)
        return oid

    def get_commit(self, cid: bytes | str) -> Commit:
        oid = bytes.fromhex(cid) if isinstance(cid, str) else cid
        # Refused before reading when larger than a commit may be (spec §16, §19).
        return Commit.from_bytes(self.get(oid, "commit", L.MAX_COMMIT_BYTES), oid, f"commit {oid.hex()}")

    def get_table_version(self, tid: bytes | str, *, cached: bool = True) -> TableVersion:
        """The table-version object ``tid``, hash- and root-checked.

        Parsed versions are kept (objects are immutable and content-addressed; parsing
        recomputes a Merkle root over every chunk digest, ~2 ms for a 1M-row table), except
        with ``cached=False``, which re-reads the object from the store (``verify`` does).
        """
        oid = bytes.fromhex(tid) if isinstance(tid, str) else tid
        if cached:
            with self._tv_lock:
                tv = self._tv_cache.get(oid)
                if tv is not None:
                    self._tv_cache.move_to_end(oid)
                    return tv
        # Its header says how long it is: a larger file is refused before it is read.
        try:
            head, _ = self.store.get_prefix(oid, L.TABLE_HEADER_STRUCT.size)
        except NotFoundError:
            raise NotFoundError(f"table version {oid.hex()} is missing from {self.path}",
                                ErrorKind.MISSING_OBJECT) from None
        limit = TableVersion.size_from_header(head)
        if limit is None:  # not a table version's header: say what is wrong with it
            TableVersion.from_bytes(head, f"table version {oid.hex()}")
        buf = self.get(oid, "table version", limit)
        if blake3.blake3(buf).digest() != oid:
            raise IntegrityError(f"table version {oid.hex()}: bytes do not hash to its id")
        tv = TableVersion.from_bytes(buf, f"table version {oid.hex()}")
        self.remember(oid, tv)
        return tv

    def remember(self, oid: bytes, tv: TableVersion) -> None:
        """Keep the parsed table version ``tv`` (stored as ``oid``) for later reads."""
        with self._tv_lock:
            self._tv_cache[oid] = tv
            while len(self._tv_cache) > TABLE_VERSIONS_KEPT:
                self._tv_cache.popitem(last=False)

    def keys_of(self, kid: bytes, rows: int | None = None) -> np.ndarray:
        """The row keys of key object ``kid``, checked to hold one key per row of the
        ``rows``-row table version that names it (spec §14): a key object of another version
        is refused."""
        keys = decode_keys(self.get(kid, "key object"), kid, f"key object {kid.hex()}")
        if rows is not None and len(keys) != rows:
            raise FormatError(f"key object {kid.hex()} holds {len(keys)} keys for a table version "
                              f"of {rows} rows", ErrorKind.BAD_OBJECT)
        return keys

    def change_object(self, oid: bytes) -> ChangeRecord:
        """Change object ``oid``, checked."""
        return ChangeRecord.from_bytes(self.get(oid, "change object"), oid, f"change object {oid.hex()}")

    # --- refs and revisions -----------------------------------------------------------------
    @property
    def head_branch(self) -> str:
        """The branch ``HEAD`` names (``main`` in a new repository)."""
        return self.refs.head_branch()

    def branches(self) -> dict[str, str]:
        """Branch name -> commit id."""
        return {k: v.hex() for k, v in self.refs.list("heads").items()}

    def tags(self) -> dict[str, str]:
        """Tag name -> commit id."""
        return {k: v.hex() for k, v in self.refs.list("tags").items()}

    def all_heads(self) -> list[bytes]:
        """The commits every branch and tag names."""
        return list(self.refs.list("heads").values()) + list(self.refs.list("tags").values())

    def _find_prefix(self, prefix: str) -> bytes | None:
        hits = []
        for oid in self.store.iter_prefix(prefix):
            try:
                head = self.store.get_range(oid, 0, len(L.COMMIT_MAGIC))
            except NotFoundError:
                continue
            if head == L.COMMIT_MAGIC:
                hits.append(oid)
        if len(hits) > 1:
            raise InputError(f"revision {prefix!r} is ambiguous: {', '.join(h.hex()[:12] for h in hits)}",
                             ErrorKind.AMBIGUOUS_REVISION)
        return hits[0] if hits else None

    def resolve(self, rev: str = "HEAD") -> str:
        """A full commit id for ``rev``: ``HEAD``, a branch, a tag, a full or unique-prefix id,
        each optionally followed by ``~N`` or ``^`` (first parent, N times), or a stamp."""
        if not isinstance(rev, str) or not rev:
            raise InputError(f"invalid revision {rev!r}", ErrorKind.BAD_REVISION)
        if is_stamp(rev):  # a stamp is a revision too: its (validated) commit
            return self.resolve_stamp(rev).commit
        m = _REV.match(rev.strip())
        if not m:
            raise InputError(f"invalid revision {rev!r}", ErrorKind.BAD_REVISION)
        base, tail = m.group("base"), m.group("tail")
        cid: bytes | None = None
        if base == "HEAD":
            cid = self.refs.read("heads", self.head_branch)
            if cid is None:
                raise NotFoundError(f"branch {self.head_branch!r} has no commits yet in {self.path}")
        else:
            if ".." in base or base.startswith("/") or base.endswith("/"):
                raise InputError(f"invalid revision {rev!r}", ErrorKind.BAD_REVISION)
            try:
                check_ref_name(base)
                cid = self.refs.read("heads", base) or self.refs.read("tags", base)
            except InputError:
                cid = None
            if cid is None and re.fullmatch(r"[0-9a-f]{4,64}", base):
                if len(base) == 64:
                    cid = bytes.fromhex(base) if self.store.has(bytes.fromhex(base)) else None
                else:
                    cid = self._find_prefix(base)
        if cid is None:
            skipped: list[Any] = []  # a damaged ref is verify's to report, not a suggestion's
            hint = did_you_mean(base, ["HEAD", *self.refs.list("heads", skipped),
                                       *self.refs.list("tags", skipped)])
            raise NotFoundError(f"unknown revision {base!r} in {self.path}{hint}")
        for step in re.findall(r"~\d*|\^", tail):
            n = 1 if step in ("~", "^") else int(step[1:])
            for _ in range(n):
                c = self.get_commit(cid)
                if not c.parents:
                    raise NotFoundError(f"revision {rev!r} goes past the first commit")
                cid = bytes.fromhex(c.parents[0])
        self.get_commit(cid)  # must be a commit, and intact
        return cid.hex()

    def stamp(self, table: str, rev: str = "HEAD") -> str:
        """The stamp of ``table`` at ``rev`` (spec §21.1)."""
        check_ref_name(table, "table")
        cid = self.resolve(rev)
        c = self.get_commit(cid)
        if table not in c.tables:
            raise NotFoundError(f"no table {table!r} in revision {rev!r} (tables: "
                                f"{', '.join(sorted(c.tables)) or 'none'})")
        return make_stamp(table, cid, c.tables[table])

    def resolve_stamp(self, text: str) -> StampInfo:
        """What stamp ``text`` names, checked against this repository: a malformed or mistyped
        stamp is :class:`FormatError` (``bad-stamp``); one whose table or version id disagrees
        with its commit is :class:`IntegrityError`; one whose commit is not here (gone after
        reset + gc, or from another repository) is :class:`NotFoundError`."""
        table, cid, tv_prefix = parse_stamp(text)
        oid = bytes.fromhex(cid)
        if not self.store.has(oid):
            raise NotFoundError(f"stamp {text!r} names commit {cid}, which is not in {self.path}: it "
                                "was removed (reset and gc) or the stamp comes from another repository")
        try:
            c = self.get_commit(oid)
        except FormatError as e:  # an object with that id that is not a commit
            raise IntegrityError(f"stamp {text!r}: object {cid} is not a valid commit ({e})") from None
        tid = c.tables.get(table)
        # Commits are immutable and content-addressed: the table and its version id a stamp names
        # either are what the commit holds, or the stamp was forged or corrupted.
        if tid is None:
            raise IntegrityError(f"stamp {text!r} names table {table!r}, which commit {cid[:12]} does "
                                 f"not hold (tables: {', '.join(sorted(c.tables)) or 'none'}): the "
                                 "stamp is forged or corrupted")
        if not tid.startswith(tv_prefix):
            raise IntegrityError(f"stamp {text!r} names table version {tv_prefix}..., but commit "
                                 f"{cid[:12]} holds {tid} for table {table!r}: the stamp is forged or "
                                 "corrupted")
        tv = self.get_table_version(tid)
        return StampInfo(text, table, cid, tid, tv.fingerprint, tv.n_rows, tv.dim, tv.dtype.name,
                         tv.identity)

    def reflog(self, ref: str | None = None, *,
               problems: list[dict[str, str]] | None = None) -> list[ReflogEntry]:
        """Where ``ref`` has pointed, newest first: :class:`embfmt.history.reflog.ReflogEntry` items
        (ref, old, new, time, author, reason). ``ref`` is a branch or tag name (a branch wins,
        as in revisions; ``heads/X`` / ``tags/X`` say which), ``HEAD`` (switches of HEAD), or
        None for every ref's log merged. A deleted ref's log stays. Damaged lines are skipped
        (``verify`` reports them; so does ``problems``, a list to collect them in).

        >>> import numpy as np, tempfile, embfmt
        >>> repo = embfmt.Repo.init(tempfile.mkdtemp())
        >>> c = repo.commit({"t": np.zeros((2, 2), np.float32)}, message="first")
        >>> [(e.ref, e.reason, e.new == c) for e in repo.reflog("main")]
        [('heads/main', 'commit: first', True)]
        """
        log = self.refs.reflog
        if ref is None:
            out = [e for r in log.refs() for e in log.read(r, problems)]
        else:
            if ref == "HEAD" or ref.startswith(("heads/", "tags/")):
                full = ref
            else:
                check_ref_name(ref)
                logs = set(log.refs())
                full = next((f"{k}/{ref}" for k in ("heads", "tags")
                             if self.refs.read(k, ref) is not None or f"{k}/{ref}" in logs),
                            f"heads/{ref}")
            if full != "HEAD":
                check_ref_name(full.partition("/")[2])
            out = log.read(full, problems)
            if not out and full != "HEAD" and full not in log.refs() and self.refs.read(
                    *full.split("/", 1)) is None:  # HEAD always exists: no switch yet, no entry
                raise NotFoundError(f"no reflog for {ref!r} in {self.path} (no such ref was ever "
                                    "moved here)")
        # newest first; entries of one log are in file order, which is time order
        return sorted(out, key=lambda e: (e.time, e.line), reverse=True)

    # --- history walks ----------------------------------------------------------------------
    def reaches(self, starts: list[bytes], cid: bytes) -> set[bytes] | None:
        """None when one of the commits ``starts`` is ``cid`` or has it as an ancestor; else
        every commit they reach."""
        seen: set[bytes] = set()
        stack = list(starts)
        while stack:
            c = stack.pop()
            if c == cid:
                return None
            if c in seen:
                continue
            seen.add(c)
            stack.extend(bytes.fromhex(p) for p in self.get_commit(c).parents)
        return seen

    def reachable_commits(self, starts: list[bytes],
                          errors: list[dict[str, str]] | None = None) -> list[bytes]:
        """Every commit ``starts`` reach; a damaged commit raises, or with ``errors`` is listed
        there and the walk goes on."""
        seen: set[bytes] = set()
        order = []
        stack = list(starts)
        while stack:
            cid = stack.pop()
            if cid in seen:
                continue
            seen.add(cid)
            try:
                c = self.get_commit(cid)
            except EmbfmtError as e:
                if errors is None:
                    raise
                errors.append({"object": cid.hex(), "kind": e.kind.value, "error": str(e)})
                continue
            order.append(cid)
            stack.extend(bytes.fromhex(p) for p in c.parents)
        return order

    def iter_commits(self) -> Iterator[CommitInfo]:
        """Every commit reachable from any ref."""
        for cid in self.reachable_commits(self.all_heads()):
            yield CommitInfo(cid.hex(), self.get_commit(cid))

    def log(self, rev: str = "HEAD", max_count: int | None = None, *,
            table: str | None = None) -> list[CommitInfo]:
        """Commits reachable from ``rev``, newest first (by commit time; a commit always comes
        before its parents), at most ``max_count`` of them.

        ``rev`` may be a range ``A..B``: the commits reachable from ``B`` and not from ``A``,
        as in git (an empty side means ``HEAD``). With ``table``, only the commits that
        changed that table (added it, removed it, or stored another version of it) against
        their first parent.

        >>> import numpy as np, tempfile, embfmt
        >>> repo = embfmt.Repo.init(tempfile.mkdtemp())
        >>> a = repo.commit({"t": np.zeros((2, 2), np.float32)}, message="t")
        >>> b = repo.commit({"u": np.ones((2, 2), np.float32)}, message="u")
        >>> [c.message for c in repo.log(f"{a}..")], [c.message for c in repo.log(table="t")]
        (['u'], ['t'])
        """
        if max_count is not None and max_count < 0:
            raise InputError(f"max_count must be >= 0, got {max_count}", ErrorKind.BAD_ARGUMENT)
        if table is not None:
            check_ref_name(table, "table")
        exclude: set[str] = set()
        if isinstance(rev, str) and ".." in rev and not is_stamp(rev):
            lo, _, hi = rev.partition("..")
            if hi.startswith("."):
                raise InputError(f"invalid revision range {rev!r}: A...B is not supported, use A..B",
                                 ErrorKind.BAD_REVISION)
            exclude = {c.hex() for c in self.reachable_commits([bytes.fromhex(self.resolve(lo or "HEAD"))])}
            start = self.resolve(hi or "HEAD")
        else:
            start = self.resolve(rev)
        out: list[CommitInfo] = []
        if start in exclude:
            return out
        seq = 0
        first = self.get_commit(start)
        heap = [(-_epoch(first.time), seq, start, first)]
        seen = {start}
        while heap and (max_count is None or len(out) < max_count):
            key, _, cid, c = heapq.heappop(heap)
            if table is None or self._changed_table(c, table):
                out.append(CommitInfo(cid, c))
            for p in c.parents:
                if p not in seen and p not in exclude:
                    seen.add(p)
                    seq += 1
                    pc = self.get_commit(p)
                    # A parent never before its child, whatever the clocks said.
                    heapq.heappush(heap, (max(-_epoch(pc.time), key), seq, p, pc))
        return out

    def _changed_table(self, c: Commit, table: str) -> bool:
        """Whether commit ``c`` changed ``table`` against its first parent."""
        before = self.get_commit(c.parents[0]).tables.get(table) if c.parents else None
        return c.tables.get(table) != before

    # --- tables -----------------------------------------------------------------------------
    def show(self, rev: str = "HEAD") -> dict[str, Any]:
        """A commit with each table's shape, dtype, fingerprint, identity and write stats."""
        cid = self.resolve(rev)
        c = self.get_commit(cid)
        tables = {}
        written = c.embfmt_tables()
        for name, tid in c.tables.items():
            tv = self.get_table_version(tid)
            tables[name] = {"version": tid, "rows": tv.n_rows, "dim": tv.dim, "dtype": tv.dtype.name,
                            "fingerprint": tv.fingerprint, "chunks": tv.n_chunks,
                            "keys": tv.keys_id is not None, "identity": tv.identity,
                            "write": written.get(name)}
        return {"id": cid, **c.to_dict(), "tables": tables}

    def table_version(self, table: str, rev: str = "HEAD") -> TableVersion:
        c = self.get_commit(self.resolve(rev))
        if table not in c.tables:
            raise NotFoundError(f"no table {table!r} in revision {rev!r} (tables: "
                                f"{', '.join(sorted(c.tables)) or 'none'})")
        return self.get_table_version(c.tables[table])

    def open(self, table: str, rev: str = "HEAD") -> TableView:
        """A lazy, read-only view of ``table`` at ``rev``."""
        cid = self.resolve(rev)
        c = self.get_commit(cid)
        if table not in c.tables:
            raise NotFoundError(f"no table {table!r} in revision {rev!r} (tables: "
                                f"{', '.join(sorted(c.tables)) or 'none'})")
        tv = self.get_table_version(c.tables[table])
        view = TableView(tv, self.reader, name=table, keys_loader=lambda kid: self.keys_of(kid, tv.n_rows),
                         pool=self.pool)
        view.commit, view.rev, view.environment = cid, rev, c.environment
        return view

    def view(self, tv: TableVersion, table: str) -> TableView:
        """A lazy view of the stored table version ``tv`` (no keys loaded)."""
        return TableView(tv, self.reader, name=table, pool=self.pool)

    # --- change records (spec §16.1) --------------------------------------------------------
    def change_id(self, cid: bytes | str, table: str) -> str | None:
        """Hex id of the change object recorded for ``table`` in commit ``cid`` (or None)."""
        info = self.get_commit(cid).embfmt_tables().get(table, {})
        ch = info.get("changes") if isinstance(info, dict) else None
        return ch if isinstance(ch, str) else None

    def change_count(self, cid: bytes | str, table: str) -> int | None:
        """How many rows the change object of ``table`` at commit ``cid`` lists, from its
        header alone (None without one)."""
        ch = self.change_id(cid, table)
        if ch is None:
            return None
        try:
            head, _ = self.store.get_prefix(bytes.fromhex(ch), L.CHANGE_HEADER_STRUCT.size)
        except (NotFoundError, ValueError):
            return None
        if len(head) < L.CHANGE_HEADER_STRUCT.size:
            return None
        return ChangeHeader.unpack(head).n_changed

    def change_record(self, rev: str, table: str) -> ChangeRecord | None:
        """The drift of ``table`` at ``rev`` against the first parent, recorded at commit time."""
        ch = self.change_id(self.resolve(rev), table)
        return None if ch is None else self.change_object(bytes.fromhex(ch))
