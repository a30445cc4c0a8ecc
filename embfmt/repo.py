"""Repositories: versioned embedding tables on the local filesystem (spec §11-§18).

A directory is a repository: ``embfmt.json`` (format marker), ``objects/`` (content-addressed
chunk, table-version, key and commit objects), ``refs/heads`` and ``refs/tags``, ``HEAD``.

Examples
--------
>>> import numpy as np, tempfile, embfmt
>>> repo = embfmt.Repo.init(tempfile.mkdtemp())
>>> x = np.random.default_rng(0).standard_normal((1000, 16)).astype(np.float32)
>>> c1 = repo.commit({"item_emb": x}, message="first run")
>>> x[7] += 1
>>> c2 = repo.commit({"item_emb": x}, message="second run")
>>> [c.message for c in repo.log()]
['second run', 'first run']
>>> bool((repo.read("item_emb", "HEAD~1") != repo.read("item_emb")).any(axis=1).sum() == 1)
True
"""

from __future__ import annotations

import getpass
import json
import os
import re
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal, overload

import blake3
import numpy as np

from . import _layout as L
from . import _fs, progress
from .backend import _threads, cpu_kernels, resolve_name
from .history.cache import RowprintCache, SealCache
from .store import read_bounded, real_dir
from .objects.change import ChangeRecord
from .objects.commit import Commit
from .compare.diff import RowChanges, changed_rows
from .compare.records import check_recomputed, check_rows
from .history.discovery import find_repository
from .errors import (ConflictError, EmbfmtError, ErrorKind, FormatError, InputError,
                     IntegrityError, NotFoundError)
from .objects.keys import KEYS_CARRY, KEYS_DROP, CarryKeys, decode_keys, encode_keys, normalize_keys
from .history.lease import WriteLease, scan_leases
from .objects.table_version import TableVersion
from .canonical.matrix import as_matrix
from .history.reader import ChunkReader
from .history.ref import RefStore, check_ref_name
from .history.reflog import DEFAULT_EXPIRE_SECONDS as DEFAULT_REFLOG_EXPIRE_SECONDS
from .store import DryRunBatch, LocalStore, WriteBatch
from .history.table import TableView
from .history.stream import RowStream, StreamWriter

__all__ = ["Repo", "CommitInfo", "CommitPlan", "VerifyReport", "GcReport", "find_repository"]

# Parsed table versions kept per Repo (a 1M-row version is ~16 KiB of digests).
TABLE_VERSIONS_KEPT = 256
# embfmt.json is one short JSON object; a larger file (or a FIFO, a device) is not read.
MARKER_BYTES = 4096


def default_durable(repo_path: str | None = None) -> bool:
    """The durability of a :class:`Repo` opened without ``durable=``: the environment variable
    ``EMBFMT_DURABLE`` (``0``, ``false``, ``no``, ``off`` turn it off), else the setting
    ``core.durable`` of the repository or the user (``embfmt config``), else on. A settings
    file that does not parse leaves it on: damage never makes writes less safe."""
    env = os.environ.get("EMBFMT_DURABLE")
    if env is not None:
        return env.strip().lower() not in ("0", "false", "no", "off")
    from .history import config

    try:
        found = config.lookup("core.durable", repo_path)
    except EmbfmtError:
        return True
    return found is None or found[0] != "false"


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


@dataclass(frozen=True)
class CommitPlan:
    """What :meth:`Repo.commit` with ``dry_run=True`` found it would store (nothing was)."""

    branch: str
    parent: str | None
    tables: dict[str, dict[str, Any]]
    """Table name -> status (new, changed, unchanged, removed), version id and fingerprint the
    commit would give it, rows, rows changed / added / removed, bytes that would be written,
    chunks written and reused, and chunk encodings (spec §13.3 codec name -> count)."""
    bytes_written: int
    """Bytes of the chunk, key, table-version and change objects a commit would store (those
    not stored already), not counting the commit object itself (about 1 KiB)."""

    def to_dict(self) -> dict[str, Any]:
        return {"dry_run": True, "branch": self.branch, "parent": self.parent, "tables": self.tables,
                "bytes_written": self.bytes_written}


@dataclass
class VerifyReport:
    """What :meth:`Repo.verify` checked and what it found."""

    commits: int = 0
    tables: int = 0
    chunks: int = 0
    keys: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "commits": self.commits, "tables": self.tables,
                "chunks": self.chunks, "keys": self.keys, "errors": self.errors}


# Repo.changed_rows reads a parent <-> child answer from the change object when it lists at
# most this fraction of the rows: a change object costs 40 bytes a row to read and check,
# rowprints 8 (measured on 200k x 128 float32, every row changed: record 33 ms, rowprints
# from the rowprint cache 7 ms; 1% changed: record 1.6 ms).
RECORD_MAX_FRACTION = 0.125


@dataclass
class GcReport:
    """What :meth:`Repo.gc` removed."""

    objects_kept: int = 0
    objects_removed: int = 0
    bytes_freed: int = 0
    reflog_expired: int = 0
    """Reflog entries dropped because they were older than the expiry period."""

    def to_dict(self) -> dict[str, Any]:
        return {"objects_kept": self.objects_kept, "objects_removed": self.objects_removed,
                "bytes_freed": self.bytes_freed, "reflog_expired": self.reflog_expired}


def _change_ids(c: Commit) -> list[str]:
    """Ids of the change objects a commit references (metadata.embfmt.tables.*.changes)."""
    tables = c.metadata.get("embfmt", {}).get("tables", {}) if isinstance(c.metadata.get("embfmt"), dict) else {}
    out = []
    for info in tables.values() if isinstance(tables, dict) else []:
        x = info.get("changes") if isinstance(info, dict) else None
        if isinstance(x, str) and len(x) == 64:
            out.append(x)
    return out


class _LazyKernels:
    """The CPU kernel module, imported (and its Numba code loaded) on first attribute access."""

    def __getattr__(self, name: str) -> Any:
        return getattr(cpu_kernels(), name)


def capture_environment(backend: str | None) -> dict[str, Any]:
    """:func:`.environment.capture_environment`, imported on first use: it needs
    importlib.metadata (~20 ms), which log, show, branch and tag never do."""
    from .environment import capture_environment as capture

    return capture(backend)


def _epoch(when: str) -> float:
    """Seconds since 1970 of a commit time (0 for a time that does not parse)."""
    try:
        return datetime.strptime(when, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return 0.0


def _now_utc() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _default_author() -> str:
    env = os.environ.get("EMBFMT_AUTHOR")
    if env:
        return env
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def _bits(rows: np.ndarray, u: Any) -> np.ndarray:
    """Rows as unsigned words of their itemsize: equality of bits (NaN payloads, -0.0)."""
    return np.ascontiguousarray(rows).view(u).reshape(rows.shape[0], -1)


def _conflict_text(what: Any) -> str:
    if isinstance(what, str):
        return what
    rows = ", ".join(map(str, what[:10])) + (f" ... ({len(what)} rows in all)" if len(what) > 10 else "")
    return f"rows {rows} changed since"


def _commit_meta(message: Any, metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate a commit message and user metadata (JSON object; ``embfmt`` is reserved)."""
    if not isinstance(message, str):
        raise InputError("message must be a string", ErrorKind.BAD_ARGUMENT)
    meta = dict(metadata or {})
    if "embfmt" in meta:
        raise InputError("metadata key 'embfmt' is reserved", ErrorKind.BAD_ARGUMENT)
    from .objects.table_version import canonical_json

    canonical_json(meta, "commit metadata")
    return meta


class Repo:
    """An embfmt repository in a local directory.

    Parameters
    ----------
    path
        The repository directory (made by :meth:`init`).
    durable
        Whether an acknowledged change survives a power loss (spec §18.6): a commit's objects,
        then its ref, are fsynced before the call returns (as are tags, branches, resets, the
        usage log and gc's deletions). Default True, or what the environment variable
        ``EMBFMT_DURABLE`` (``0`` turns it off) or the setting ``core.durable`` says
        (:func:`default_durable`). ``durable=False`` is for scratch
        repositories that can be rebuilt: writes are still atomic (a killed process never
        leaves a partial object or ref), but a power loss may undo acknowledged commits.
    durable_objects
        Older name of ``durable`` (it used to cover objects only); used when ``durable`` is
        not given.
    """

    def __init__(self, path: str | os.PathLike[str], *, durable: bool | None = None,
                 durable_objects: bool | None = None) -> None:
        self.path = os.fspath(path)
        if durable is None:
            durable = durable_objects if durable_objects is not None else default_durable(self.path)
        marker = os.path.join(self.path, L.REPO_MARKER)
        try:
            info = json.loads(read_bounded(marker, MARKER_BYTES, L.REPO_MARKER))
        except FormatError:  # a FIFO, link or oversized file in its place: said as such
            raise
        except (FileNotFoundError, NotADirectoryError):
            raise NotFoundError(f"{self.path} is not an embfmt repository (no {L.REPO_MARKER}); "
                                "create one with `embfmt init`", ErrorKind.NOT_A_REPOSITORY) from None
        except (ValueError, UnicodeDecodeError, IsADirectoryError, RecursionError) as e:  # ValueError: JSON
            raise FormatError(f"{marker} is corrupt ({type(e).__name__}: {str(e)[:200]})", ErrorKind.BAD_FILE) from None
        if not isinstance(info, dict) or info.get("format") != L.REPO_FORMAT_NAME:
            raise FormatError(f"{marker} does not describe an embfmt repository", ErrorKind.BAD_FILE)
        if info.get("version") != L.REPO_FORMAT_VERSION:
            raise FormatError(f"{self.path}: repository format version {info.get('version')!r}; this "
                              f"embfmt reads version {L.REPO_FORMAT_VERSION}", ErrorKind.UNSUPPORTED_VERSION)
        self.durable = durable
        self.store = LocalStore(self.path, durable=durable)
        self.refs = RefStore(self.path, durable=durable)
        self.refs.author = self.author  # who reflog entries name: as a commit now would
        # Numba kernels load on first use: log, show, tag, branch and reset never need them.
        self.kernels = _LazyKernels()
        self.reader = ChunkReader(self.store, self.kernels, rowprint_cache=RowprintCache(self.path),
                                  seal_cache=SealCache(self.path))
        self._pool = ThreadPoolExecutor(_threads(), thread_name_prefix="embfmt-read")
        self._tv_cache: OrderedDict[bytes, TableVersion] = OrderedDict()
        self._tv_lock = threading.Lock()

    # --- creation ---------------------------------------------------------------------------
    @classmethod
    def init(cls, path: str | os.PathLike[str], *, exist_ok: bool = False,
             default_branch: str = "main", durable: bool | None = None) -> Repo:
        """Create a repository at ``path`` (an empty or missing directory); ``durable`` as for
        :class:`Repo` (a new repository is on stable storage when this returns)."""
        p = os.fspath(path)
        check_ref_name(default_branch, "branch")
        marker = os.path.join(p, L.REPO_MARKER)
        if os.path.exists(marker):
            if exist_ok:
                return cls(p, durable=durable)
            raise ConflictError(f"{p} is already an embfmt repository", ErrorKind.REF_EXISTS)
        if os.path.isdir(p) and os.listdir(p):
            raise InputError(f"{p} exists and is not empty; init needs an empty directory",
                             ErrorKind.BAD_ARGUMENT)
        durable = default_durable(p) if durable is None else durable
        for sub in ("objects", "refs/heads", "refs/tags", "tmp"):
            _fs.makedirs(os.path.join(p, sub), durable=durable)
        RefStore(p, durable=durable).set_head_branch(default_branch)
        # The marker last: a directory without it is not a repository yet, whatever a crash left.
        _fs.write_atomic(marker, json.dumps({"format": L.REPO_FORMAT_NAME,
                                              "version": L.REPO_FORMAT_VERSION}).encode() + b"\n",
                         durable=durable)
        return cls(p, durable=durable)

    @classmethod
    def discover(cls, start: str | os.PathLike[str] = ".", **kw: Any) -> Repo:
        """The repository that holds ``start`` (spec §11.2): ``start`` or its closest parent
        directory that is a repository (holds ``embfmt.json``) or holds one in ``.embfmt/``,
        as git finds ``.git``. :class:`NotFoundError` (``not-a-repository``) when none does.
        Keyword arguments go to :class:`Repo`."""
        return cls(find_repository(start), **kw)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def __enter__(self) -> Repo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Repo({self.path!r})"

    # --- objects ----------------------------------------------------------------------------
    def _get(self, oid: bytes, what: str, max_size: int | None = None) -> bytes:
        try:
            return self.store.get(oid, max_size)
        except NotFoundError:
            raise NotFoundError(f"{what} {oid.hex()} is missing from {self.path}",
                                ErrorKind.MISSING_OBJECT) from None

    def _put_hashed(self, data: bytes, batch: WriteBatch | None = None) -> bytes:
        oid = blake3.blake3(data).digest()
        (batch or self.store).put(oid, data)
        return oid

    def get_commit(self, cid: bytes | str) -> Commit:
        oid = bytes.fromhex(cid) if isinstance(cid, str) else cid
        # Refused before reading when larger than a commit may be (spec §16, §19).
        return Commit.from_bytes(self._get(oid, "commit", L.MAX_COMMIT_BYTES), oid, f"commit {oid.hex()}")

    def get_table_version(self, tid: bytes | str, *, cached: bool = True) -> TableVersion:
        """The table-version object ``tid``, hash- and root-checked.

        Parsed versions are kept (objects are immutable and content-addressed; parsing
        recomputes a Merkle root over every chunk digest, ~2 ms for a 1M-row table), except
        with ``cached=False``, which re-reads the object from disk (``verify`` does).
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
        buf = self._get(oid, "table version", limit)
        if blake3.blake3(buf).digest() != oid:
            raise IntegrityError(f"table version {oid.hex()}: bytes do not hash to its id")
        tv = TableVersion.from_bytes(buf, f"table version {oid.hex()}")
        with self._tv_lock:
            self._tv_cache[oid] = tv
            while len(self._tv_cache) > TABLE_VERSIONS_KEPT:
                self._tv_cache.popitem(last=False)
        return tv

    def _keys(self, kid: bytes, rows: int | None = None) -> np.ndarray:
        """Key object ``kid``, checked to hold one key per row of the ``rows``-row table
        version that names it (spec §14): a key object of another version is refused."""
        keys = decode_keys(self._get(kid, "key object"), kid, f"key object {kid.hex()}")
        if rows is not None and len(keys) != rows:
            raise FormatError(f"key object {kid.hex()} holds {len(keys)} keys for a table version "
                              f"of {rows} rows", ErrorKind.BAD_OBJECT)
        return keys

    # --- settings ---------------------------------------------------------------------------
    def author(self, explicit: str | None = None) -> str:
        """Who a commit made now is by: ``explicit``, else ``$EMBFMT_AUTHOR``, else the
        repository's settings (``author``, or ``user.name`` and ``user.email``), else the
        global ones (:mod:`embfmt.history.config`), else ``user@host``."""
        if explicit:
            return explicit
        if os.environ.get("EMBFMT_AUTHOR"):
            return os.environ["EMBFMT_AUTHOR"]
        from .history.config import resolve_author

        return resolve_author(self.path) or _default_author()

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
        each optionally followed by ``~N`` or ``^`` (first parent, N times)."""
        if not isinstance(rev, str) or not rev:
            raise InputError(f"invalid revision {rev!r}", ErrorKind.BAD_REVISION)
        from .history.lineage import is_stamp

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
            from .suggest import did_you_mean

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

    def tag(self, name: str, rev: str = "HEAD") -> str:
        """Create an immutable tag; :class:`ConflictError` (``ref-exists``) if it exists."""
        check_ref_name(name, "tag")
        cid = bytes.fromhex(self.resolve(rev))
        with self.refs.locked():
            if self.refs.read("tags", name) is not None:
                raise ConflictError(f"tag {name!r} already exists (tags are immutable)", ErrorKind.REF_EXISTS)
            with self._onto(cid):
                self.refs.cas("tags", name, None, cid, reason=f"tag: {rev}")
        return cid.hex()

    def branch(self, name: str, rev: str = "HEAD") -> str:
        """Create a branch at ``rev``; :class:`ConflictError` (``ref-exists``) if it exists."""
        check_ref_name(name, "branch")
        cid = bytes.fromhex(self.resolve(rev))
        with self.refs.locked():
            if self.refs.read("heads", name) is not None:
                raise ConflictError(f"branch {name!r} already exists", ErrorKind.REF_EXISTS)
            with self._onto(cid):
                self.refs.cas("heads", name, None, cid, reason=f"branch: created from {rev}")
        return cid.hex()

    def reset(self, branch: str, rev: str) -> str:
        """Move ``branch`` to ``rev`` (rollback in O(1) when a ref reaches ``rev``: no data is
        read or written; onto a commit no ref reaches, its objects are refreshed first)."""
        check_ref_name(branch, "branch")
        cid = bytes.fromhex(self.resolve(rev))
        with self.refs.locked():
            cur = self.refs.read("heads", branch)
            if cur is None:
                raise NotFoundError(f"no branch {branch!r}")
            with self._onto(cid, cur):
                self.refs.cas("heads", branch, cur, cid, reason=f"reset: moving to {rev}")
        return cid.hex()

    @contextmanager
    def _onto(self, cid: bytes, first: bytes | None = None) -> Iterator[None]:
        """Make commit ``cid`` safe to point a ref at (spec §18.4); the ref moves in the body.
        Call with the ref lock held.

        When a ref reaches ``cid`` (``first``, the moved ref's value, is tried first: the
        common ``reset main HEAD~1``), that ref keeps it live in gc's snapshot of the refs,
        and nothing is read. Otherwise ``cid`` is an orphan, and a gc may be deleting its old
        objects right now: under a write lease (held until the move has landed), every object
        of its history that no ref reaches is refreshed, deepest first, each checked to be
        still there; :class:`ConflictError`, with no ref moved, when one is gone."""
        reached = self._reached_from_refs(cid, first)
        if reached is None:
            yield
            return
        lease = WriteLease(self.store.tmp)
        try:
            self._refresh_history(cid, reached)
            yield
        finally:
            lease.release()

    def _reached_from_refs(self, cid: bytes, first: bytes | None) -> set[bytes] | None:
        """None when some ref (or ``first``) reaches commit ``cid``; else every commit the refs
        reach (the walk had to visit them all to be sure)."""
        return self._reaches([*self._all_heads(), *([first] if first is not None else [])], cid)

    def _reaches(self, starts: list[bytes], cid: bytes) -> set[bytes] | None:
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

    def _refresh_history(self, cid: bytes, reached: set[bytes]) -> None:
        """Refresh every object of commit ``cid`` and its ancestors outside ``reached``."""
        done: set[str] = set()
        stack = [cid]
        try:
            while stack:
                c_id = stack.pop()
                if c_id in reached:
                    continue
                reached.add(c_id)
                c = self.get_commit(c_id)
                tables = {n: t for n, t in c.tables.items() if t not in done}
                self._refresh_tables(tables)
                done.update(tables.values())
                for oid in [*(bytes.fromhex(x) for x in _change_ids(c)), c_id]:  # the commit last
                    if not self.store.touch(oid):
                        raise NotFoundError(f"object {oid.hex()} of commit {c_id.hex()} is missing",
                                            ErrorKind.MISSING_OBJECT)
                stack.extend(bytes.fromhex(p) for p in c.parents)
        except (NotFoundError, ConflictError) as e:
            raise ConflictError(f"cannot point a ref at commit {cid.hex()}: no ref reaches it, and "
                                f"part of its history is gone (removed by a garbage collection "
                                f"running now, or lost): {e.message}; no ref was changed",
                                ErrorKind.CONFLICT) from None

    def checkout_branch(self, name: str) -> None:
        """Make ``name`` the branch ``HEAD`` names (it must exist); see :meth:`switch`."""
        self.switch(name)

    def switch(self, branch: str, *, create: bool = False, start: str = "HEAD") -> str:
        """Point ``HEAD`` at ``branch`` (as ``git switch``); returns its tip. With ``create``,
        first create it at ``start`` (``git switch -c``; :class:`ConflictError` if it exists).
        The switch is recorded in the reflog of ``HEAD``.

        >>> import numpy as np, tempfile
        >>> repo = Repo.init(tempfile.mkdtemp())
        >>> c = repo.commit({"t": np.zeros((2, 2), np.float32)})
        >>> repo.switch("exp", create=True) == c, repo.head_branch
        (True, 'exp')
        """
        check_ref_name(branch, "branch")
        if create:
            self.branch(branch, start)
        with self.refs.locked():
            tip = self.refs.read("heads", branch)
            if tip is None:
                raise NotFoundError(f"no branch {branch!r} (create it with switch -c)")
            try:
                old = self.refs.head_branch()
            except (FormatError, InputError):  # a damaged HEAD: switching repairs it
                old = "(damaged HEAD)"
            self.refs.set_head_branch(branch, reason=f"switch: from {old} to {branch}")
        return tip.hex()

    def delete_branch(self, name: str, *, force: bool = False) -> str:
        """Delete branch ``name`` (as ``git branch -d``); returns the commit it held.

        Refused (:class:`ConflictError`) for the branch ``HEAD`` names (``branch-in-use``), and,
        unless ``force``, when no other branch or tag reaches its tip (``not-merged``): those
        commits would then be kept only by the reflog, until its entries expire. The reflog
        keeps the tip either way (the deletion is the branch log's last entry).
        """
        check_ref_name(name, "branch")
        with self.refs.locked():
            tip = self.refs.read("heads", name)
            if tip is None:
                raise NotFoundError(f"no branch {name!r}")
            if name == self.refs.head_branch():
                raise ConflictError(f"cannot delete branch {name!r}: HEAD names it (switch to "
                                    "another branch first)", ErrorKind.BRANCH_IN_USE)
            if not force:
                others = [v for k, v in self.refs.list("heads").items() if k != name]
                others += list(self.refs.list("tags").values())
                if self._reaches(others, tip) is not None:
                    raise ConflictError(
                        f"branch {name!r} is not merged: no other branch or tag reaches its tip "
                        f"{tip.hex()[:12]}; delete it anyway with force=True (CLI: branch -D), "
                        "the reflog keeps the tip until its entries expire", ErrorKind.NOT_MERGED)
            self.refs.delete("heads", name, reason="branch: deleted")
        return tip.hex()

    def delete_tag(self, name: str) -> str:
        """Delete tag ``name``; returns the commit it named. Versions of that commit that the
        usage log records as used stay protected from gc (they are gc roots of their own,
        spec §18.4): :meth:`uses` with the returned id lists them (the CLI warns)."""
        check_ref_name(name, "tag")
        with self.refs.locked():
            tip = self.refs.read("tags", name)
            if tip is None:
                raise NotFoundError(f"no tag {name!r}")
            self.refs.delete("tags", name, reason="tag: deleted")
        return tip.hex()

    def reflog(self, ref: str | None = None, *, problems: list[dict[str, str]] | None = None) -> list[Any]:
        """Where ``ref`` has pointed, newest first: :class:`embfmt.history.reflog.ReflogEntry` items
        (ref, old, new, time, author, reason). ``ref`` is a branch or tag name (a branch wins,
        as in revisions; ``heads/X`` / ``tags/X`` say which), ``HEAD`` (switches of HEAD), or
        None for every ref's log merged. A deleted ref's log stays. Damaged lines are skipped
        (``verify`` reports them; so does ``problems``, a list to collect them in).

        >>> import numpy as np, tempfile
        >>> repo = Repo.init(tempfile.mkdtemp())
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

    # --- commit -----------------------------------------------------------------------------
    @overload
    def commit(self, tables: Mapping[str, Any], *, dry_run: Literal[False] = False, **kw: Any) -> str: ...

    @overload
    def commit(self, tables: Mapping[str, Any], *, dry_run: Literal[True], **kw: Any) -> CommitPlan: ...

    def commit(self, tables: Mapping[str, Any], *, message: str = "", metadata: Mapping[str, Any] | None = None,
               keys: Mapping[str, Any] | None = None, identity: Mapping[str, Mapping[str, Any]] | None = None,
               branch: str | None = None, author: str | None = None, remove: tuple[str, ...] = (),
               allow_identity_change: bool = False, allow_schema_change: bool = False,
               backend: str = "auto", time_utc: str | None = None,
               environment: Mapping[str, Any] | None = None, dry_run: bool = False) -> Any:
        """Commit new versions of one or more tables; returns the commit id.

        Parameters
        ----------
        tables
            Table name -> matrix (anything :func:`embfmt.fingerprint` accepts). Tables of the
            parent commit not named here carry over unchanged.
        message, metadata, author
            Free text, a JSON object, and who (default: :meth:`author`: ``$EMBFMT_AUTHOR``,
            the repository's or the global settings, else ``user@host``).
        keys
            Table name -> row keys (unique int64 or str, one per row), or for a table whose
            parent version has keys: ``"carry"`` (keep them: the same rows in the same order),
            :class:`~embfmt.objects.keys.CarryKeys` ``(appended=...)`` (the parent's rows first, then
            rows appended with these keys) or ``"drop"`` (no keys from now on). A keyed table
            committed without any of these is refused (:class:`InputError`,
            ``keys-required``): keys are never carried to rows whose identity is unknown (a
            re-export in another row order would silently get wrong keys), nor dropped.
        identity
            Table name -> identity stamp (model name, revision, normalization, ...). A stamp
            that differs from the parent's is refused (``identity-mismatch``) unless
            ``allow_identity_change``; without a stamp, the parent's carries over.
        branch
            Branch to commit to (default: the one ``HEAD`` names); created if missing.
        remove
            Table names to drop from the snapshot.
        allow_schema_change
            Allow a table's dtype or dim to differ from the parent's.
        dry_run
            Check and encode everything as a commit would, but store nothing and move no ref:
            returns a :class:`CommitPlan` (per table: new, changed or unchanged, rows changed,
            bytes that would be written, chunk encodings) instead of a commit id.

        Examples
        --------
        >>> import numpy as np, tempfile
        >>> repo = Repo.init(tempfile.mkdtemp())
        >>> x = np.zeros((100, 4), np.float32)
        >>> _ = repo.commit({"t": x})
        >>> x[3] = 1
        >>> plan = repo.commit({"t": x}, dry_run=True)
        >>> plan.tables["t"]["status"], plan.tables["t"]["rows_changed"], len(repo.log())
        ('changed', 1, 1)
        """
        branch = check_ref_name(self.head_branch if branch is None else branch, "branch")
        if not tables and not remove:
            raise InputError("nothing to commit: no tables given", ErrorKind.BAD_ARGUMENT)
        keys = dict(keys or {})
        identity = {k: dict(v) for k, v in (identity or {}).items()}
        for name in list(tables) + list(keys) + list(identity) + list(remove):
            check_ref_name(name, "table")
        for name in list(keys) + list(identity):
            if name not in tables:
                raise InputError(f"keys/identity given for table {name!r} which is not committed",
                                 ErrorKind.BAD_ARGUMENT)
        meta = _commit_meta(message, metadata)
        parent_id = self.refs.read("heads", branch)
        parent = self.get_commit(parent_id) if parent_id else None
        parent_tables = dict(parent.tables) if parent else {}
        backend_name = resolve_name(backend)
        for r in remove:
            if r not in parent_tables and r not in tables:
                raise NotFoundError(f"cannot remove table {r!r}: not in branch {branch!r}")

        # Validate every table (schema, identity, keys) before writing any object, so a refused
        # commit leaves the repository exactly as it was.
        prepared = []
        for name, x in tables.items():
            ptv = self.get_table_version(parent_tables[name]) if name in parent_tables else None
            prepared.append((name, ptv, self._prepare_table(
                name, x, ptv, keys.get(name), identity.get(name), allow_identity_change,
                allow_schema_change)))
        if dry_run:
            return self._plan(branch, parent_id, parent_tables, prepared, remove, backend_name)
        # Each stream holds its write lease until the commit has landed (or failed), so gc
        # keeps every object this commit wrote, however long it takes.
        streams: list[RowStream] = []
        batch = self.store.batch()  # every object of the commit, synced before the ref moves
        cid = None
        try:
            new_tables, write_info = self._store_tables(prepared, backend_name, streams, batch)
            cid = self._commit_snapshot(branch, parent_id, new_tables, write_info, remove, message,
                                        meta, author, time_utc, environment, backend_name,
                                        batch=batch)
            return cid
        finally:
            for stream in streams:
                stream.close()
            if cid is None:  # failed (a full disk, a conflict, Ctrl-C): take back what it wrote
                self._discard(batch)

    def _plan(self, branch: str, parent_id: bytes | None, parent_tables: dict[str, str],
              prepared: list[Any], remove: tuple[str, ...], backend_name: str | None) -> CommitPlan:
        """What committing ``prepared`` would store: the real write path against a
        :class:`~embfmt.store.DryRunBatch`, which counts the objects instead of storing them."""
        dry = DryRunBatch(self.store)
        plan: dict[str, dict[str, Any]] = {}
        for item in prepared:
            before = dry.bytes_written
            streams: list[RowStream] = []
            try:
                ids, info = self._store_tables([item], backend_name, streams, dry)
            finally:
                for stream in streams:
                    stream.close()
            name = item[0]
            tid, w = ids[name], info[name]
            prev = parent_tables.get(name)
            status = "new" if prev is None else "unchanged" if prev == tid else "changed"
            plan[name] = {"status": status, "version": tid, "fingerprint": w["fingerprint"],
                          "rows": w["rows"], "dim": w["dim"], "dtype": w["dtype"],
                          "parent_rows": w["parent_rows"],
                          # the writer counts appended rows as changed; the plan tells them apart
                          "rows_changed": (w["rows_changed"] - max(0, w["rows"] - w["parent_rows"])
                                           if prev is not None else 0),
                          "rows_added": max(0, w["rows"] - w["parent_rows"]),
                          "rows_removed": max(0, w["parent_rows"] - w["rows"]) if prev is not None else 0,
                          "bytes_written": dry.bytes_written - before, "chunks": w["chunks"],
                          "chunks_written": w["chunks_written"], "chunks_reused": w["chunks_reused"],
                          "codecs": w["codecs"]}
        for r in remove:
            if r in parent_tables and r not in plan:
                plan[r] = {"status": "removed", "version": None, "bytes_written": 0}
        return CommitPlan(branch, parent_id.hex() if parent_id else None, dict(sorted(plan.items())),
                          dry.bytes_written)

    def _store_tables(self, prepared: list[Any], backend_name: str | None,
                      streams: list[RowStream], batch: WriteBatch) -> tuple[dict[str, str], dict[str, Any]]:
        """Write the table versions of ``prepared`` (name, parent version, checked table) through
        one :class:`RowStream` each, appended to ``streams`` (the caller closes them once the
        commit has landed), their objects into ``batch``; returns their ids and write
        statistics."""
        new_tables: dict[str, str] = {}
        write_info: dict[str, Any] = {}
        for name, ptv, (m, key_arr, ident) in prepared:
            stream = RowStream(self, name, m.dtype, m.n_rows, m.dim, ptv, backend_name, batch)
            streams.append(stream)
            for block in m.blocks():  # the same streaming path as writer(), in row order
                stream.feed(block)
            new_tables[name], write_info[name] = self._finish_table(stream, ptv, key_arr, ident)
        return new_tables, write_info

    def _commit_snapshot(self, branch: str, parent_id: bytes | None, new_tables: dict[str, str],
                         write_info: dict[str, Any], remove: tuple[str, ...], message: str,
                         meta: dict[str, Any], author: str | None, time_utc: str | None,
                         environment: Mapping[str, Any] | None, backend_name: str | None,
                         embfmt_meta: Mapping[str, Any] | None = None,
                         batch: WriteBatch | None = None) -> str:
        """Write the commit object for already-stored table versions and move ``branch`` to it
        (compare-and-swap; re-parents onto a concurrent commit that touched other tables).
        ``embfmt_meta`` adds members to ``metadata.embfmt`` (spec §16).

        ``batch`` holds every object the commit wrote or reuses (a new one when None): it is
        synced before the ref moves, so an acknowledged commit survives a power loss (spec
        §18.6)."""
        if batch is None:
            batch = self.store.batch()
        meta = dict(meta)
        meta["embfmt"] = {"tables": write_info, **(embfmt_meta or {})}
        parent_tables = dict(self.get_commit(parent_id).tables) if parent_id else {}
        env = dict(environment) if environment is not None else capture_environment(backend_name)
        when = time_utc or _now_utc()
        who = self.author(author)
        for _attempt in range(100):
            snapshot = dict(parent_tables)
            for r in remove:
                if r not in snapshot and r not in new_tables:
                    raise NotFoundError(f"cannot remove table {r!r}: not in branch {branch!r}")
                snapshot.pop(r, None)
            snapshot.update(new_tables)
            c = Commit(dict(sorted(snapshot.items())), (parent_id.hex(),) if parent_id else (),
                       who, when, message, meta, env)
            cid = self._put_hashed(c.to_bytes(), batch)
            batch.sync()  # objects durable before the ref CAS (outside the lock: it can take ms)
            with self.refs.locked():
                cur = self.refs.read("heads", branch)
                if cur == parent_id:
                    verb = "revert" if "reverts" in meta["embfmt"] else "commit"
                    first = message.splitlines()[0] if message else ""
                    self.refs.cas("heads", branch, parent_id, cid, reason=f"{verb}: {first}".rstrip(),
                                  author=who)
                    break
            # Someone else moved the branch: re-parent onto their commit when they did not
            # touch our tables, else refuse. Never drop their commit.
            if cur is None:
                raise ConflictError(f"branch {branch!r} was deleted while committing")
            self._check_disjoint(cur, parent_id, set(new_tables) | set(remove), branch)
            parent_id = cur
            parent_tables = dict(self.get_commit(cur).tables)
        else:
            raise ConflictError(f"branch {branch!r} kept moving; gave up after 100 attempts")
        # Landed: record what the writer bound (spec §13.7), so that later diffs of these
        # versions need no full checks. Derived data (cache/): after the ref, so that a failed
        # commit leaves nothing but unreferenced objects.
        try:
            for tid in new_tables.values():
                self.reader.save_seals(self.get_table_version(tid))
        except EmbfmtError:  # derived data only: the commit has landed either way
            pass
        return cid.hex()

    def _check_disjoint(self, head: bytes, base: bytes | None, ours: set[str], branch: str) -> None:
        cid: bytes | None = head
        while cid is not None and cid != base:
            c = self.get_commit(cid)
            prev = dict(self.get_commit(c.parents[0]).tables) if c.parents else {}
            for t in ours:
                if c.tables.get(t) != prev.get(t):
                    raise ConflictError(f"branch {branch!r} moved while committing: commit "
                                        f"{cid.hex()[:12]} also changed table {t!r}; commit again")
            cid = bytes.fromhex(c.parents[0]) if c.parents else None
            if cid is None and base is not None:
                raise ConflictError(f"branch {branch!r} was reset while committing")

    def _prepare_table(self, name: str, x: Any, parent: TableVersion | None, keys: Any,
                       identity: dict[str, Any] | None, allow_identity_change: bool,
                       allow_schema_change: bool) -> tuple[Any, np.ndarray | bytes | None, dict[str, Any] | None]:
        """Check one table against the commit rules; writes nothing."""
        m = as_matrix(x)
        key_arr, identity = self._check_table(name, m.dtype, m.n_rows, m.dim, parent, keys, identity,
                                              allow_identity_change, allow_schema_change)
        return m, key_arr, identity

    def _check_table(self, name: str, dt: Any, n_rows: int, dim: int, parent: TableVersion | None,
                     keys: Any, identity: dict[str, Any] | None, allow_identity_change: bool,
                     allow_schema_change: bool) -> tuple[np.ndarray | bytes | None, dict[str, Any] | None]:
        """Schema, identity and key rules for a new version of ``name``; returns the normalized
        keys and the identity the version carries. Writes nothing."""
        if parent is not None and not allow_schema_change:
            if parent.dtype != dt:
                raise InputError(f"table {name!r} is {parent.dtype.name} in the parent commit, got "
                                 f"{dt.name} (pass allow_schema_change=True to change it)",
                                 ErrorKind.DTYPE_MISMATCH)
            if parent.dim != dim:
                raise InputError(f"table {name!r} has D = {parent.dim} in the parent commit, got "
                                 f"D = {dim} (pass allow_schema_change=True to change it)",
                                 ErrorKind.SHAPE_MISMATCH)
        pident = parent.identity if parent is not None else None
        if identity is not None:
            from .objects.table_version import canonical_json

            canonical_json(identity, f"identity of table {name!r}")
            if pident is not None and identity != pident and not allow_identity_change:
                raise ConflictError(
                    f"table {name!r}: identity {identity} differs from the parent's {pident}; "
                    "committing vectors from another embedding space is refused unless "
                    "allow_identity_change=True", ErrorKind.IDENTITY_MISMATCH)
        else:
            identity = pident
        return self._key_rule(name, n_rows, parent, keys), identity

    def _key_rule(self, name: str, n_rows: int, parent: TableVersion | None,
                  keys: Any) -> np.ndarray | bytes | None:
        """The keys of a new version of ``name`` (spec §18.1): new keys (an array), the id of
        the parent's key object to reuse (bytes), or None. Keys never follow rows whose
        identity the caller has not stated: a keyed parent needs keys, a carry or a drop."""
        pkeys = parent.keys_id if parent is not None else None
        if isinstance(keys, str) and keys == KEYS_CARRY:
            keys = CarryKeys()
        if isinstance(keys, str) and keys == KEYS_DROP:
            return None
        if isinstance(keys, CarryKeys):
            n_parent = parent.n_rows if parent is not None else 0
            if keys.appended is None:
                if pkeys is None:
                    return None  # nothing to carry, nothing lost
                if n_rows != n_parent:
                    raise InputError(
                        f"table {name!r}: keys='carry' keeps the parent's {n_parent} keys, but the "
                        f"new version has {n_rows} rows; for rows appended at the end pass "
                        "CarryKeys(appended=<their keys>), else keys for every row",
                        ErrorKind.BAD_KEYS)
                # The new version will reference this object: check it before writing anything
                # (a lost or damaged key object must not be carried into a new commit).
                self._keys(pkeys, n_parent)
                return pkeys
            if pkeys is None:
                raise InputError(f"table {name!r}: CarryKeys(appended=...) needs a parent version "
                                 "with keys; this one has none (pass keys for every row)",
                                 ErrorKind.BAD_KEYS)
            if isinstance(keys.appended, (str, bytes)):
                normalize_keys(keys.appended, n_rows - n_parent, name)  # refused: one str
            new = list(keys.appended)
            if n_parent + len(new) != n_rows:
                raise InputError(f"table {name!r}: the parent's {n_parent} keys and {len(new)} "
                                 f"appended keys for {n_rows} rows", ErrorKind.BAD_KEYS)
            old = self._keys(pkeys, n_parent)
            if len(new) and old.dtype != object:
                try:
                    joined: Any = np.concatenate([old, np.asarray(new, dtype=np.int64)])
                except (TypeError, ValueError, OverflowError):
                    joined = [*old.tolist(), *new]  # normalize_keys names what is wrong
            else:
                joined = [*old.tolist(), *new]
            return normalize_keys(joined, n_rows, name)
        if keys is None:
            if pkeys is not None:
                raise InputError(
                    f"table {name!r} has row keys in the parent commit and none were given for "
                    f"its new version ({parent.n_rows if parent else 0} -> {n_rows} rows); pass "
                    "keys for every row, keys='carry' (the same rows in the same order), "
                    "CarryKeys(appended=...) (the parent's rows, then rows appended at the end) "
                    "or keys='drop'", ErrorKind.KEYS_REQUIRED)
            return None
        return normalize_keys(keys, n_rows, name)

    def _finish_table(self, stream: RowStream, parent: TableVersion | None, key_arr: np.ndarray | bytes | None,
                      identity: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
        """Flush a fully fed :class:`RowStream` and store its table version; returns its id and
        the write statistics recorded in the commit."""
        w = stream.writer
        fp, stats = w.finish()
        tmeta: dict[str, Any] = {}
        if isinstance(key_arr, bytes):  # carried: the parent's key object, refreshed for gc
            if not stream.batch.touch(key_arr):
                raise NotFoundError(f"key object {key_arr.hex()} of table {stream.name!r} is missing "
                                    f"from {self.path} (lost, or removed by a garbage collection "
                                    "running now); nothing was committed", ErrorKind.MISSING_OBJECT)
            tmeta["keys"] = key_arr.hex()
        elif key_arr is not None:
            kid = self._put_hashed(encode_keys(key_arr), stream.batch)
            tmeta["keys"] = kid.hex()
        if identity is not None:
            tmeta["identity"] = identity
        digests = fp.chunk_digests
        tv = TableVersion(stream.dtype, stream.n_rows, stream.dim, digests, tmeta)
        tvb = tv.to_bytes()
        tid = self._put_hashed(tvb, stream.batch)
        with self._tv_lock:  # kept parsed: the commit records its bindings once it has landed
            self._tv_cache[tid] = tv
        extra = 0
        changes = w.changes()
        change_id = None
        if changes is not None and parent is not None:
            idx, (l2, cos, mx, ulp) = changes
            rec = ChangeRecord(stream.dtype.code, parent.n_rows, stream.n_rows, parent.object_id(),
                               tid, idx, l2, cos, mx, ulp)
            recb = rec.to_bytes()
            change_id = self._put_hashed(recb, stream.batch).hex()
            extra = len(recb)
        info = {"fingerprint": fp.root, "rows": stream.n_rows, "dim": stream.dim,
                "dtype": stream.dtype.name,
                "parent_rows": parent.n_rows if parent is not None else 0,
                "rows_changed": stats.rows_changed, **stats.to_dict(),
                # after the writer's own figure (chunks only), which it replaces: what the table
                # cost on disk includes its table-version object and change record
                "bytes_written": stats.bytes_written + len(tvb) + extra,
                "seconds": round(time.perf_counter() - stream.t0, 6)}
        if change_id is not None:
            info["changes"] = change_id
        return tid.hex(), info

    def writer(self, table: str, shape: tuple[int, int], dtype: Any, *, keys: Any = None,
               identity: Mapping[str, Any] | None = None, message: str = "",
               metadata: Mapping[str, Any] | None = None, branch: str | None = None,
               author: str | None = None, allow_identity_change: bool = False,
               allow_schema_change: bool = False, backend: str = "auto") -> StreamWriter:
        """A :class:`~embfmt.history.stream.StreamWriter` for a new version of ``table``: write blocks at
        any row offset (``w.write(start, block)``) or in order (``w.append(block)``) in bounded
        memory; the commit happens when the ``with`` block exits cleanly.

        The schema, identity and key rules of :meth:`commit` are checked here, before any row
        is written: ``keys`` takes what one table's entry of ``commit(keys=...)`` takes (keys,
        ``"carry"``, :class:`~embfmt.objects.keys.CarryKeys`, ``"drop"``), and a keyed table needs one
        of them. Other tables of the branch carry over unchanged.

        Examples
        --------
        >>> import numpy as np, tempfile, embfmt
        >>> repo = embfmt.Repo.init(tempfile.mkdtemp())
        >>> with repo.writer("t", shape=(4, 2), dtype=np.float32, message="m") as w:
        ...     w.append(np.ones((4, 2), np.float32))
        >>> repo.read("t").sum()
        np.float32(8.0)
        """
        return StreamWriter(self, table, shape, dtype, keys=keys, identity=identity, message=message,
                            metadata=metadata, branch=branch, author=author,
                            allow_identity_change=allow_identity_change,
                            allow_schema_change=allow_schema_change, backend=backend)

    def restore(self, rev: str, *, branch: str | None = None, message: str | None = None) -> str:
        """A new commit on ``branch`` whose tables are exactly those of ``rev`` (no chunk is
        written; history is kept, unlike :meth:`reset`). To undo the change one commit made
        instead, see :meth:`revert`.

        ``rev`` may be a commit no ref reaches any more (one a :meth:`reset` left behind), so
        the objects the new commit references are refreshed first, under a write lease, as a
        commit that reuses objects does (spec §18.4): a concurrent gc keeps them. One ``utime``
        per object; :class:`ConflictError` if one is already gone.
        """
        target = self.resolve(rev)
        branch = check_ref_name(self.head_branch if branch is None else branch, "branch")
        c = self.get_commit(target)
        lease = WriteLease(self.store.tmp)
        batch = self.store.batch()
        try:
            self._refresh_tables(c.tables, batch)
            return self._restore_commit(c, target, rev, branch, message, batch)
        finally:
            lease.release()

    def revert(self, rev: str, *, branch: str | None = None, message: str | None = None,
               author: str | None = None, backend: str = "auto") -> str:
        """Undo the change commit ``rev`` made, as a new commit on ``branch`` (git's revert):
        the inverse of ``rev``'s change against its first parent, applied to the branch head.

        Per table: a table ``rev`` added is removed, one it removed comes back, and one it
        changed goes back to the parent's version when the head still holds ``rev``'s
        version (no chunk is written). When the table changed again since, the revert works
        row by row, by position: rows ``rev`` changed get their parent values back, rows it
        appended are removed and rows it truncated come back, provided the head still holds
        ``rev``'s values for them. A row (or table) changed since is a conflict:
        :class:`ConflictError` (``revert-conflict``) whose ``conflicts`` maps each table to
        the rows at fault (or to a reason), and nothing is committed.

        Examples
        --------
        >>> import numpy as np, tempfile, embfmt
        >>> repo = embfmt.Repo.init(tempfile.mkdtemp())
        >>> x = np.zeros((4, 2), np.float32)
        >>> _ = repo.commit({"t": x}, message="zeros")
        >>> x[1] = 1
        >>> bad = repo.commit({"t": x}, message="row 1 set")
        >>> x[3] = 3
        >>> _ = repo.commit({"t": x}, message="row 3 set")
        >>> _ = repo.revert(bad)
        >>> repo.read("t")[:, 0].tolist()
        [0.0, 0.0, 0.0, 3.0]
        """
        target = self.resolve(rev)
        branch = check_ref_name(self.head_branch if branch is None else branch, "branch")
        c = self.get_commit(target)
        parent = c.parents[0] if c.parents else None
        p_tables = dict(self.get_commit(parent).tables) if parent else {}
        head_id = self.refs.read("heads", branch)
        if head_id is None:
            raise NotFoundError(f"branch {branch!r} has no commits to revert {rev!r} on")
        h_tables = dict(self.get_commit(head_id).tables)
        reuse: dict[str, str] = {}  # table -> an existing version that comes back
        remove: list[str] = []
        rows_back: list[tuple[str, TableVersion, TableVersion, TableVersion]] = []
        conflicts: dict[str, Any] = {}
        for t in sorted(set(c.tables) | set(p_tables)):
            pv, rv, hv = p_tables.get(t), c.tables.get(t), h_tables.get(t)
            if pv == rv:
                continue  # rev did not touch t
            if hv == rv:  # the head holds what rev made: the parent's state comes back whole
                if pv is None:
                    remove.append(t)
                else:
                    reuse[t] = pv
            elif pv is None:
                if hv is not None:
                    conflicts[t] = "added by the commit and changed since"
            elif rv is None:
                conflicts[t] = "removed by the commit and added again since"
            elif hv is None:
                conflicts[t] = "changed by the commit and removed since"
            else:
                rows_back.append((t, self.get_table_version(pv), self.get_table_version(rv),
                                  self.get_table_version(hv)))
        prepared = []
        for t, ptv, rtv, htv in rows_back:
            res = self._revert_rows(t, parent, target, ptv, rtv, htv)
            if isinstance(res, tuple):
                out, keys, ident = res
                prepared.append((t, htv, self._prepare_table(t, out, htv, keys, ident, True, False)))
            else:
                conflicts[t] = res
        if conflicts:
            named = target[:12] + (f" ({rev})" if rev != target else "")
            e = ConflictError(f"cannot revert {named}: "
                              + "; ".join(f"table {t!r} {_conflict_text(v)}" for t, v in sorted(conflicts.items()))
                              + "; nothing was committed", ErrorKind.REVERT_CONFLICT)
            e.conflicts = conflicts  # type: ignore[attr-defined]
            raise e
        if not reuse and not remove and not prepared:
            raise InputError(f"commit {target[:12]} changed no table: nothing to revert",
                             ErrorKind.BAD_ARGUMENT)
        first = c.message.splitlines()[0] if c.message else target[:12]
        text = message if message is not None else f'Revert "{first}"\n\nThis reverts commit {target}.'
        meta = _commit_meta(text, None)
        backend_name = resolve_name(backend)
        lease = WriteLease(self.store.tmp)  # versions that come back are reused objects (§18.4)
        streams: list[RowStream] = []
        batch = self.store.batch()
        try:
            self._refresh_tables(reuse, batch)
            new_tables, write_info = self._store_tables(prepared, backend_name, streams, batch)
            new_tables.update(reuse)
            return self._commit_snapshot(branch, head_id, new_tables, write_info, tuple(remove), text,
                                         meta, author, None, None, backend_name,
                                         embfmt_meta={"reverts": target}, batch=batch)
        finally:
            for stream in streams:
                stream.close()
            lease.release()

    def _revert_rows(self, table: str, parent: str | None, target: str, ptv: TableVersion,
                     rtv: TableVersion, htv: TableVersion) -> Any:
        """The head's rows of ``table`` with the change ``target`` made undone, by position:
        (rows, keys, identity); or what conflicts (a list of rows, or a reason)."""
        if len({(v.dtype, v.dim) for v in (ptv, rtv, htv)}) > 1:
            return "changed dtype or D (revert it by hand)"
        np_, nr, nh = ptv.n_rows, rtv.n_rows, htv.n_rows
        kp, kr, kh = (self._keys(v.keys_id, v.n_rows) if v.keys_id is not None else None
                      for v in (ptv, rtv, htv))
        m = min(np_, nr)
        if kp is not None and kr is not None and not np.array_equal(kp[:m], kr[:m]):
            return "changed row keys (revert it by hand)"
        if kh is not None and kr is not None and not np.array_equal(kh[:min(nh, nr)], kr[:min(nh, nr)]):
            return "has row keys changed since"
        ch = self.changed_rows(table, parent, target) if parent else None
        assert ch is not None  # a changed table has a parent version, so the commit a parent
        rv = TableView(rtv, self.reader, name=table, pool=self._pool)
        hv = TableView(htv, self.reader, name=table, pool=self._pool)
        pview = TableView(ptv, self.reader, name=table, pool=self._pool)
        mine = np.concatenate([ch.changed, ch.added]).astype(np.int64)  # rows rev wrote
        bad = mine[mine >= nh].tolist()
        have = mine[mine < nh]
        if len(have):
            u = np.dtype(f"u{htv.dtype.itemsize}")
            same = (_bits(hv.rows(have), u) == _bits(rv.rows(have), u)).all(axis=1)
            bad = sorted(bad + have[~same].tolist())
        if len(ch.removed) and nh < nr:
            bad += list(range(nh, nr))  # rows rev kept that the head no longer has
        if bad:
            return bad
        out = hv.read()  # a fresh array: ours to change
        if len(ch.changed):
            out[ch.changed] = pview.rows(ch.changed)
        keys = kh
        if len(ch.added):  # rows rev appended go; rows appended after them move up
            out = np.concatenate([out[:np_], out[nr:]])
            keys = None if kh is None else np.concatenate([kh[:np_], kh[nr:]])
        elif len(ch.removed):  # rows rev truncated come back where they were
            out = np.concatenate([out[:nr], pview[nr:np_], out[nr:]])
            if kh is not None:
                if kp is None:
                    return "has row keys, but the rows it removed had none"
                keys = np.concatenate([kh[:nr], kp[nr:np_], kh[nr:]])
        ident = ptv.identity if htv.identity == rtv.identity else htv.identity
        return out, (keys.tolist() if keys is not None and keys.dtype == object else keys), ident

    def _refresh_tables(self, tables: Mapping[str, str], batch: WriteBatch | None = None) -> None:
        """Refresh the modification time of every object the table versions ``tables`` reach
        (table versions, key objects, chunks and their delta bases, deepest first), through
        ``batch`` when the caller commits them (their names are then synced with it)."""
        batch = batch if batch is not None else self.store.batch()
        for tid in tables.values():
            tv = self.get_table_version(tid)
            oids = [d for chunk in tv.digests for d in reversed(self.reader.chain(chunk))]
            oids += [tv.keys_id] if tv.keys_id is not None else []
            for oid in [*oids, bytes.fromhex(tid)]:
                if not batch.touch(oid):
                    raise ConflictError(f"object {oid.hex()} of table version {tid} is gone (removed "
                                        "by a garbage collection running now, or lost); nothing was "
                                        "committed", ErrorKind.CONFLICT)

    def _restore_commit(self, c: Commit, target: str, rev: str, branch: str, message: str | None,
                        batch: WriteBatch) -> str:
        for _ in range(100):
            parent_id = self.refs.read("heads", branch)
            new = Commit(dict(c.tables), (parent_id.hex(),) if parent_id else (), self.author(None),
                         _now_utc(), message or f"Restore {target[:12]} ({rev})",
                         {"embfmt": {"restored_from": target}}, capture_environment(None))
            cid = self._put_hashed(new.to_bytes(), batch)
            batch.sync()  # the reused objects' names and the new commit, before the ref moves
            with self.refs.locked():
                if self.refs.read("heads", branch) == parent_id:
                    self.refs.cas("heads", branch, parent_id, cid, reason=f"restore: {rev}")
                    return cid.hex()
        raise ConflictError(f"branch {branch!r} kept moving")

    # --- reading ----------------------------------------------------------------------------
    def log(self, rev: str = "HEAD", max_count: int | None = None, *,
            table: str | None = None) -> list[CommitInfo]:
        """Commits reachable from ``rev``, newest first (by commit time; a commit always comes
        before its parents), at most ``max_count`` of them.

        ``rev`` may be a range ``A..B``: the commits reachable from ``B`` and not from ``A``,
        as in git (an empty side means ``HEAD``). With ``table``, only the commits that
        changed that table (added it, removed it, or stored another version of it) against
        their first parent.

        >>> import numpy as np, tempfile
        >>> repo = Repo.init(tempfile.mkdtemp())
        >>> a = repo.commit({"t": np.zeros((2, 2), np.float32)}, message="t")
        >>> b = repo.commit({"u": np.ones((2, 2), np.float32)}, message="u")
        >>> [c.message for c in repo.log(f"{a}..")], [c.message for c in repo.log(table="t")]
        (['u'], ['t'])
        """
        import heapq

        from .history.lineage import is_stamp

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
            exclude = {c.hex() for c in self._reachable_commits([bytes.fromhex(self.resolve(lo or "HEAD"))])}
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

    def show(self, rev: str = "HEAD") -> dict[str, Any]:
        """A commit with each table's shape, dtype, fingerprint, identity and write stats."""
        cid = self.resolve(rev)
        c = self.get_commit(cid)
        tables = {}
        written = c.metadata.get("embfmt", {}).get("tables", {})
        for name, tid in c.tables.items():
            tv = self.get_table_version(tid)
            tables[name] = {"version": tid, "rows": tv.n_rows, "dim": tv.dim, "dtype": tv.dtype.name,
                            "fingerprint": tv.fingerprint, "chunks": tv.n_chunks,
                            "keys": tv.keys_id is not None, "identity": tv.identity,
                            "write": written.get(name)}
        return {"id": cid, **c.to_dict(), "tables": tables}

    def ls(self, rev: str = "HEAD") -> dict[str, Any]:
        """The tables of ``rev`` (see :func:`embfmt.history.listing.list_tables`): per table its dtype,
        rows, dim, raw and stored bytes, keys, identity and fingerprint; decodes no chunk.

        >>> import numpy as np, tempfile
        >>> repo = Repo.init(tempfile.mkdtemp())
        >>> _ = repo.commit({"emb": np.ones((4, 3), np.float32)}, keys={"emb": ["a", "b", "c", "d"]})
        >>> [(t["table"], t["rows"], t["bytes_raw"], t["keys_count"]) for t in repo.ls()["tables"]]
        [('emb', 4, 48, 4)]
        """
        from .history.listing import list_tables

        return list_tables(self, rev)

    def show_table(self, rev: str, table: str) -> dict[str, Any]:
        """One table version of ``rev`` in detail (see :func:`embfmt.history.listing.table_detail`):
        its :meth:`ls` entry, stored bytes by object kind, chunks by codec, and its change
        against the parent commit from the change record (rows changed, drift summary)."""
        from .history.listing import table_detail

        return table_detail(self, rev, table)

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
        view = TableView(tv, self.reader, name=table, keys_loader=lambda kid: self._keys(kid, tv.n_rows),
                         pool=self._pool)
        view.commit, view.rev, view.environment = cid, rev, c.environment
        return view

    def read(self, table: str, rev: str = "HEAD") -> np.ndarray:
        """``table`` at ``rev`` as a numpy array, bit-exact."""
        return self.open(table, rev).read()

    def keys(self, table: str, rev: str = "HEAD") -> np.ndarray | None:
        """The row keys of ``table`` at ``rev`` (or None)."""
        return self.open(table, rev).keys

    def changed_rows(self, table: str, rev_a: str, rev_b: str = "HEAD", *, exact: bool = True) -> RowChanges:
        """Rows of ``table`` that differ between two revisions, by position (see
        :mod:`embfmt.compare.diff`): between a commit and its parent from the change object recorded
        at commit time; otherwise unchanged chunks are never read, and sparse patches answer
        without decompressing anything."""
        d = self._diff_from_record(rev_a, rev_b, table, stats=False, max_changed=RECORD_MAX_FRACTION)
        if d is not None:  # positions: a record exists only where both sides share their keys
            return RowChanges(d.changed_b, d.added, d.removed, 0, 0)
        return changed_rows(self.reader, self.table_version(table, rev_a),
                            self.table_version(table, rev_b), exact=exact)

    def diff(self, rev_a: str, rev_b: str = "HEAD", table: str | None = None, **kw: Any) -> Any:
        """Row-level diff of ``table`` between two revisions (see :func:`embfmt.diff`).

        Without ``table``, every table of either revision: a :class:`~embfmt.compare.diff.TablesDiff`,
        a mapping of table name -> :class:`~embfmt.compare.diff.Diff` for the tables both have (with the
        same dtype and D), whose ``added``, ``removed`` and ``schema_changed`` name the others
        and whose ``identical`` is True only when no table was added, removed or changed.

        >>> import numpy as np, tempfile
        >>> repo = Repo.init(tempfile.mkdtemp())
        >>> _ = repo.commit({"a": np.zeros((3, 2), np.float32), "b": np.zeros((3, 2), np.float32)})
        >>> _ = repo.commit({"b": np.ones((3, 2), np.float32), "c": np.ones((1, 2), np.float32)})
        >>> d = repo.diff("HEAD~1", "HEAD")
        >>> d.status(), d["b"].n_changed, d.identical
        ({'a': 'unchanged', 'b': 'changed', 'c': 'added'}, 3, False)
        """
        from .compare.diff import TablesDiff
        from .compare.diff import diff as _diff

        if table is not None:
            va, vb = self.open(table, rev_a), self.open(table, rev_b)  # each side read once
            d = self._diff_from_record(rev_a, rev_b, table, **kw)
            if d is None:
                d = _diff(va, vb, **kw)
            d.info["a"] = {"rev": rev_a, "commit": va.commit, "table": table, "fingerprint": va.fingerprint}
            d.info["b"] = {"rev": rev_b, "commit": vb.commit, "table": table, "fingerprint": vb.fingerprint}
            return d
        ca, cb = self.resolve(rev_a), self.resolve(rev_b)
        ta, tb = self.get_commit(ca).tables, self.get_commit(cb).tables

        def info(tid: str) -> dict[str, Any]:
            tv = self.get_table_version(tid)
            return {"rows": tv.n_rows, "dim": tv.dim, "dtype": tv.dtype.name,
                    "fingerprint": tv.fingerprint, "version": tid}

        diffs, schema = {}, {}
        for t in sorted(set(ta) & set(tb)):
            a, b = self.get_table_version(ta[t]), self.get_table_version(tb[t])
            if a.dtype != b.dtype or a.dim != b.dim:
                schema[t] = (info(ta[t]), info(tb[t]))
            else:
                diffs[t] = self.diff(ca, cb, t, **kw)
                diffs[t].info["a"]["rev"], diffs[t].info["b"]["rev"] = rev_a, rev_b
        return TablesDiff(diffs, {t: info(tb[t]) for t in set(tb) - set(ta)},
                          {t: info(ta[t]) for t in set(ta) - set(tb)}, schema,
                          {"a": {"rev": rev_a, "commit": ca}, "b": {"rev": rev_b, "commit": cb}})

    def _change_id(self, cid: bytes, table: str) -> str | None:
        """Hex id of the change object recorded for ``table`` in commit ``cid`` (or None)."""
        info = self.get_commit(cid).metadata.get("embfmt", {}).get("tables", {}).get(table, {})
        ch = info.get("changes") if isinstance(info, dict) else None
        return ch if isinstance(ch, str) else None

    def _change_count(self, cid: bytes, table: str) -> int | None:
        """How many rows the change object of ``table`` at commit ``cid`` lists, from its
        header alone (None without one)."""
        ch = self._change_id(cid, table)
        if ch is None:
            return None
        try:
            head, _ = self.store.get_prefix(bytes.fromhex(ch), L.CHANGE_HEADER_STRUCT.size)
        except (NotFoundError, ValueError):
            return None
        if len(head) < L.CHANGE_HEADER_STRUCT.size:
            return None
        return int(L.CHANGE_HEADER_STRUCT.unpack_from(head)[4])

    def change_record(self, rev: str, table: str) -> ChangeRecord | None:
        """The drift of ``table`` at ``rev`` against the first parent, recorded at commit time."""
        cid = self._change_id(self.resolve(rev), table)
        if cid is None:
            return None
        oid = bytes.fromhex(cid)
        return ChangeRecord.from_bytes(self._get(oid, "change object"), oid, f"change object {cid}")

    def _diff_from_record(self, rev_a: str, rev_b: str, table: str, *, stats: bool = True,
                          exact: bool = True, procrustes: bool = False, knn: int = 0,
                          max_changed: float = 1.0, **kw: Any) -> Any:
        """Parent <-> child diffs straight from the change object (no chunk is decoded); None
        when it does not apply, or when the record lists more than ``max_changed`` of the
        rows (its header says so: nothing else is read). Gives exactly what the full
        computation gives."""
        from .compare.diff import METRICS, Diff

        if procrustes or knn or kw.get("keys_a") is not None or kw.get("keys_b") is not None \
                or kw.get("backend", "auto") == "reference":
            return None
        ca, cb = self.resolve(rev_a), self.resolve(rev_b)
        for child, parent, flip in ((cb, ca, False), (ca, cb, True)):
            c = self.get_commit(child)
            if not c.parents or c.parents[0] != parent or table not in c.tables:
                continue
            p = self.get_commit(parent)
            if table not in p.tables:
                continue
            if max_changed < 1.0:
                n_listed = self._change_count(child, table)
                rows = self.get_table_version(c.tables[table]).n_rows
                if n_listed is None or n_listed > max_changed * max(1, rows):
                    continue
            rec = self.change_record(child, table)
            if rec is None or rec.table.hex() != c.tables[table] or rec.parent_table.hex() != p.tables[table]:
                continue
            rec_id = self._change_id(child, table)
            tv_child = self.get_table_version(c.tables[table])
            tv_parent = self.get_table_version(p.tables[table])
            # A record answers only once its rows are those whose rowprints differ (no chunk is
            # decoded); its drift values are the writer's statement, which verify recomputes.
            check_rows(rec, self.reader, tv_parent, tv_child, f"change object {rec_id}")
            ka = tv_parent.keys_id
            if (ka is not None or tv_child.keys_id is not None) and ka != tv_child.keys_id:
                continue  # keyed matching with different keys: not a positional diff
            n_a, n_b = (tv_child.n_rows, tv_parent.n_rows) if flip else (tv_parent.n_rows, tv_child.n_rows)
            keys = self._keys(ka, tv_parent.n_rows) if ka is not None else None
            d = Diff(n_a, n_b, tv_child.dim, tv_child.dtype.name, "key" if keys is not None else "position",
                     rec.index, rec.index, np.arange(n_a, n_b, dtype=np.int64),
                     np.arange(n_b, n_a, dtype=np.int64), min(n_a, n_b) - len(rec.index), keys, keys)
            if stats:
                d.stats = dict(zip(METRICS, (rec.l2, rec.cosine, rec.max_abs, rec.ulp)))
            d.info = {"source": "change-record"}
            return d
        return None

    # --- integrity and space ----------------------------------------------------------------
    def _all_heads(self) -> list[bytes]:
        return list(self.refs.list("heads").values()) + list(self.refs.list("tags").values())

    def _reachable_commits(self, starts: list[bytes], report: VerifyReport | None = None) -> list[bytes]:
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
                if report is None:
                    raise
                report.errors.append({"object": cid.hex(), "kind": e.kind.value, "error": str(e)})
                continue
            order.append(cid)
            stack.extend(bytes.fromhex(p) for p in c.parents)
        return order

    def verify(self, rev: str | None = None) -> VerifyReport:
        """Recompute every digest and root reachable from ``rev`` (or from every ref).

        Never raises for corruption: it is listed in the report (``report.ok`` is False).
        """
        report = VerifyReport()
        used: list[Any] = []
        if rev:
            try:
                starts = [bytes.fromhex(self.resolve(rev))]
            except (IntegrityError, FormatError) as e:  # the named commit itself is corrupt
                report.errors.append({"object": rev, "kind": e.kind.value, "error": str(e)})
                return report
        else:  # a corrupt ref is reported, and the walk goes on from the others
            bad_refs: list[tuple[str, FormatError]] = []
            starts = (list(self.refs.list("heads", bad_refs).values())
                      + list(self.refs.list("tags", bad_refs).values()))
            for ref, e in bad_refs:
                report.errors.append({"object": ref, "kind": e.kind.value, "error": str(e)})
            try:  # HEAD names the current branch: a damaged or missing HEAD is damage too
                self.refs.head_branch()
            except EmbfmtError as e:
                report.errors.append({"object": "HEAD", "kind": e.kind.value, "error": str(e)})
            # Versions the usage log records as used are live (gc keeps them, §18.4): checked
            # like the refs' history.
            from .history.lineage import UsageLog, gone_uses

            log_problems = UsageLog(self.path, durable=self.refs.durable).problems(used)
            # So are the commits reflog entries name, until the entries expire.
            log_problems += self.refs.reflog.problems() + self.refs.reflog.missing(self.store.has)
            try:
                starts += [c for c in self._extra_roots() if c not in set(starts)]
            except FormatError as e:  # a usage log that cannot be read: reported above
                if not any(p["object"] == UsageLog(self.path).log_name for p in log_problems):
                    log_problems.append({"object": UsageLog(self.path).log_name, "kind": e.kind.value,
                                         "error": str(e)})
        tv_ids: set[str] = set()
        change_ids: set[str] = set()
        records: list[tuple[Commit, str, str]] = []  # (commit, table, change object id)
        for cid in self._reachable_commits(starts, report):
            report.commits += 1
            c = self.get_commit(cid)
            tv_ids.update(c.tables.values())
            change_ids.update(_change_ids(c))
            tmeta = c.metadata.get("embfmt", {}).get("tables", {}) if isinstance(c.metadata.get("embfmt"), dict) else {}
            records += [(c, t, info["changes"]) for t, info in (tmeta.items() if isinstance(tmeta, dict) else [])
                        if isinstance(info, dict) and info.get("changes") in _change_ids(c)]
        chunk_ids: set[bytes] = set()
        key_ids: dict[bytes, set[int]] = {}  # key object -> row counts of the versions naming it
        reader = ChunkReader(self.store, self.kernels)
        seen: set[tuple[str, str]] = set()  # (object, error): one report per distinct fault

        def report_error(obj: str, e: EmbfmtError) -> None:
            if (obj, str(e)) not in seen:
                seen.add((obj, str(e)))
                report.errors.append({"object": obj, "kind": e.kind.value, "error": str(e)})

        for tid in sorted(tv_ids):
            try:
                tv = self.get_table_version(tid, cached=False)
            except EmbfmtError as e:
                report_error(tid, e)
                continue
            report.tables += 1
            chunk_ids.update(tv.digests)
            for c in range(tv.n_chunks):  # each chunk holds the rows its table version says
                try:
                    reader.chunk_of(tv, c)
                except NotFoundError:
                    pass  # reported by check() below
                except EmbfmtError as e:
                    report_error(tv.digests[c].hex(), e)
            if tv.keys_id is not None:
                key_ids.setdefault(tv.keys_id, set()).add(tv.n_rows)
        bases: set[bytes] = set()
        for d in chunk_ids:  # delta bases are checked in their own right too
            try:
                bases.update(reader.chain(d)[1:])
            except NotFoundError:
                pass  # reported by check() below, for the object that is missing
            except EmbfmtError as e:  # a chain too deep, or a base that does not fit its delta
                report_error(d.hex(), e)
        chunk_ids |= bases

        def check(d: bytes) -> tuple[bytes, EmbfmtError] | None:
            try:
                # Decoded in full (digest), and its rowprint section checked against the decoded
                # rows (spec §13.7): diffs trust those rowprints without decoding.
                reader.check_bound(d)
                reader.rowprints(d)
                return None
            except EmbfmtError as e:
                return d, e

        with progress.bar(len(chunk_ids), "verify chunks", unit="chunk") as bar:
            for err in self._pool.map(check, sorted(chunk_ids)):
                report.chunks += 1
                bar.update(1)
                if err:
                    report_error(err[0].hex(), err[1])
        for k in sorted(key_ids):
            report.keys += 1
            for n in sorted(key_ids[k]):  # one key per row of every version naming it
                try:
                    self._keys(k, n)
                except EmbfmtError as e:
                    report_error(k.hex(), e)
        parsed: dict[str, ChangeRecord] = {}
        for ch in sorted(change_ids):
            try:
                oid = bytes.fromhex(ch)
                parsed[ch] = ChangeRecord.from_bytes(self._get(oid, "change object"), oid, f"change object {ch}")
            except EmbfmtError as e:
                report.errors.append({"object": ch, "kind": e.kind.value, "error": str(e)})
        # What each record states, recomputed from the rows of its commit and its parent: a
        # record forged (and re-hashed) or wired into another commit is reported.
        for c, t, ch in records:
            if ch not in parsed:
                continue
            try:
                p = self.get_commit(bytes.fromhex(c.parents[0])) if c.parents else None
                if p is None or t not in p.tables or t not in c.tables:
                    raise FormatError(f"change object {ch}: its commit and its parent do not both "
                                      f"hold table {t!r}", ErrorKind.BAD_OBJECT)
                check_recomputed(parsed[ch], reader, self.kernels, self.get_table_version(p.tables[t]),
                                 self.get_table_version(c.tables[t]), f"change object {ch}",
                                 (p.tables[t], c.tables[t]))
            except EmbfmtError as e:
                if str(e).startswith(f"change object {ch}"):  # else: a damaged chunk or version,
                    report_error(ch, e)  # reported above in its own name
        if not rev:  # the usage log belongs to the repository, not to one revision
            report.errors.extend(log_problems)
            report.errors.extend(gone_uses(self, used))
        return report

    def _extra_roots(self, logged: set[bytes] | None = None) -> list[bytes]:
        """Commits that are gc roots besides the refs (spec §18.4), that are still stored:
        those the usage log names (a version recorded as used stays readable) and those
        reflog entries name (``logged``, else read now)."""
        from .history.lineage import UsageLog

        if logged is None:
            logged = self.refs.reflog.commits_named()
        return sorted(c for c in UsageLog(self.path).commits_named() | logged if self.store.has(c))

    def _reachable_objects(self, cache_keys: set[bytes] | None = None,
                           reflog_cutoff: float | None = None) -> set[bytes]:
        """Every object some ref (or another gc root, :meth:`_extra_roots`) reaches;
        ``cache_keys`` collects the rowprint-cache keys of the reachable table versions.
        Reflog entries older than ``reflog_cutoff`` (epoch seconds) are no roots."""
        live: set[bytes] = set()
        # The refs are read under the ref lock, as one snapshot: a ref move that relies on
        # another ref keeping its target reachable (:meth:`_onto`) is then seen either before
        # (through that ref) or after (through the moved ref), never neither. The reflog is
        # read in the same hold: a move logs itself before the ref changes.
        with self.refs.locked():
            heads = self._all_heads()
            logged = self.refs.reflog.commits_named(reflog_cutoff)
        self._mark_live(heads, live, cache_keys)
        for cid in self._extra_roots(logged):
            if cid in live:
                continue
            live.add(cid)
            try:
                self._mark_live([cid], live, cache_keys)
            except (NotFoundError, FormatError, IntegrityError):
                # A used commit that is damaged, or whose history is: keep whatever of it is
                # left (marked so far, and the object itself); verify reports the damage.
                continue
        return live

    def _mark_live(self, starts: list[bytes], live: set[bytes], cache_keys: set[bytes] | None) -> None:
        for cid in self._reachable_commits(starts):
            live.add(cid)
            live.update(bytes.fromhex(x) for x in _change_ids(self.get_commit(cid)))
            for tid in self.get_commit(cid).tables.values():
                t = bytes.fromhex(tid)
                if t in live:
                    continue
                live.add(t)
                tv = self.get_table_version(t)
                if cache_keys is not None:
                    cache_keys.add(ChunkReader.table_key(tv))
                if tv.keys_id is not None:
                    live.add(tv.keys_id)
                for d in tv.digests:
                    if d not in live:
                        live.update(self.reader.chain(d))

    def gc(self, *, grace_seconds: float = 3600.0,
           reflog_expire_seconds: float = DEFAULT_REFLOG_EXPIRE_SECONDS) -> GcReport:
        """Remove objects no ref reaches (commits, tables, chunks and their delta bases).

        Objects younger than ``grace_seconds`` are kept, so a commit running concurrently in
        another process never loses objects it wrote but has not referenced yet. Commits that
        reflog entries name are kept too (a ``reset`` cannot lose the old tip): entries older
        than ``reflog_expire_seconds`` (default 30 days) are dropped first; 0 drops them all.
        Versions the usage log records as used are always kept.
        """
        if not reflog_expire_seconds >= 0 or not grace_seconds >= 0:  # also refuses NaN
            raise InputError(f"grace_seconds and reflog_expire_seconds must be >= 0, got "
                             f"{grace_seconds} and {reflog_expire_seconds}", ErrorKind.BAD_ARGUMENT)
        rep, cutoff, cache_keys = self._collect(grace_seconds, reflog_expire_seconds)
        rep.bytes_freed += self.store.clean_tmp(cutoff)
        for c in (self.reader.rowprint_cache, self.reader.seal_cache):  # derived data of versions gone (§11.1)
            if c is not None:
                rep.bytes_freed += c.prune(cache_keys, cutoff)
        self.reader.clear()
        return rep

    def _gc_cutoff(self, grace_seconds: float, *, remove_stale: bool = True) -> tuple[float, int, int]:
        """The modification time at or before which gc may remove an unreachable object or temp
        file (spec §18.4), with the counts of live and stale leases."""
        cutoff = time.time() - grace_seconds
        oldest, live, stale = scan_leases(self.store.tmp, remove_stale=remove_stale)
        if oldest is not None:
            # A table write is running: keep whatever it wrote or touched since it started
            # (1 s of slack for file systems with coarse timestamps).
            cutoff = min(cutoff, oldest - 1.0)
        return cutoff, live, stale

    def _collect(self, grace_seconds: float, reflog_expire_seconds: float | None,
                 candidates: list[bytes] | None = None) -> tuple[GcReport, float, set[bytes]]:
        """gc's removal of unreachable objects among ``candidates`` (default: every object),
        first expiring reflog entries older than ``reflog_expire_seconds`` (None: none);
        returns the report, the cutoff time and the rowprint-cache keys still live."""
        # Leases first, refs second (spec §18.4): a writer whose commit lands between the two
        # steps is then either seen holding its lease (everything it wrote or touched is kept)
        # or seen through the ref it moved. In the other order, a long write that started
        # before the grace period could commit after the ref walk and drop its lease before
        # the lease check, and gc would delete old chunks that its new commit references.
        # A symlinked tmp/, objects/ fan-out or cache/ directory would make gc delete files
        # outside the repository: refused (unsafe-path) before anything is deleted.
        self.store.check_layout()
        for c in (self.reader.rowprint_cache, self.reader.seal_cache):
            if c is not None:
                real_dir(os.path.dirname(c.dir), "cache directory")
                real_dir(c.dir, "cache directory")
        cutoff, _, _ = self._gc_cutoff(grace_seconds)
        cache_keys: set[bytes] = set()
        rep = GcReport()
        expiry: float | None = None  # None: every reflog entry stays a root
        if reflog_expire_seconds is not None:
            expiry = float("inf") if reflog_expire_seconds == 0 else time.time() - reflog_expire_seconds
        live = self._reachable_objects(cache_keys, expiry)
        # Nothing is deleted before the refs just walked are durable (spec §18.6): a ref moved
        # by a writer that did not sync it could otherwise come back after a power loss and
        # name the objects deleted here.
        self.refs.sync()
        # The walk succeeded: now drop the expired entries (before any object goes, so that no
        # entry ever names a deleted commit). Entries appended meanwhile are newer: kept.
        if expiry is not None:
            with self.refs.locked():
                rep.reflog_expired = self.refs.reflog.expire(expiry)
        oids = list(self.store.iter()) if candidates is None else candidates
        removed: list[bytes] = []
        with progress.bar(len(oids), "gc objects", unit="obj") as bar:
            for oid in oids:
                bar.update(1)
                # The age seen here only selects candidates: a writer may refresh the object
                # right after this look (and commit a reference to it), so the deletion
                # checks the age again, atomically with the unlink (Store.delete_if_older).
                if oid in live or self.store.mtime(oid) > cutoff:
                    rep.objects_kept += 1
                    continue
                freed = self.store.delete_if_older(oid, cutoff)
                if freed:
                    rep.bytes_freed += freed
                    rep.objects_removed += 1
                    removed.append(oid)
                elif self.store.has(oid):  # refreshed since: a writer reuses it
                    rep.objects_kept += 1
        self.store.sync_deletions(removed)  # the space is free once gc returns, crash or not
        return rep, cutoff, cache_keys

    def gc_status(self, *, grace_seconds: float = 3600.0) -> dict[str, Any]:
        """What :meth:`gc` would find, changing nothing (works on a read-only repository):
        unreferenced objects (count and bytes, and how many of them are younger than the
        grace period, which gc keeps), temporary files under ``tmp/`` (of writers running
        or dead), and live and stale write leases. What an interrupted write left behind
        shows here at once, whatever the grace period."""
        cutoff, live_leases, stale_leases = self._gc_cutoff(grace_seconds, remove_stale=False)
        live = self._reachable_objects(None, time.time() - DEFAULT_REFLOG_EXPIRE_SECONDS)
        out: dict[str, Any] = {"grace_seconds": grace_seconds, "objects": 0, "bytes": 0,
                               "unreferenced_objects": 0, "unreferenced_bytes": 0,
                               "unreferenced_kept_by_grace": 0, "temp_files": 0, "temp_bytes": 0,
                               "temp_kept_by_grace": 0, "writes_running": live_leases,
                               "dead_writer_leases": stale_leases}
        for oid in self.store.iter():
            try:
                n = self.store.size(oid)
            except NotFoundError:
                continue  # removed meanwhile
            out["objects"] += 1
            out["bytes"] += n
            if oid not in live:
                out["unreferenced_objects"] += 1
                out["unreferenced_bytes"] += n
                out["unreferenced_kept_by_grace"] += self.store.mtime(oid) > cutoff
        for name, size, mtime in self.store.tmp_files():
            out["temp_files"] += 1
            out["temp_bytes"] += size
            out["temp_kept_by_grace"] += mtime > cutoff
        return out

    def _discard(self, batch: WriteBatch) -> int:
        """Remove again the objects a failed commit stored itself, by gc's rules (spec §18.4,
        grace 0: an object another running write reuses, or one a ref reaches, stays);
        returns the bytes freed. Best effort: the commit's own error is what the caller sees."""
        if not batch.published:
            return 0
        try:
            rep, _, _ = self._collect(0.0, None, list(batch.published))
        except (EmbfmtError, OSError):
            return 0
        return rep.bytes_freed

    def disk_usage(self) -> int:
        """Bytes of all stored objects."""
        return sum(self.store.size(o) for o in self.store.iter())

    def iter_commits(self) -> Iterator[CommitInfo]:
        """Every commit reachable from any ref."""
        for cid in self._reachable_commits(self._all_heads()):
            yield CommitInfo(cid.hex(), self.get_commit(cid))

    # --- lineage: stamps, usage log, blame (spec §21; embfmt.history.lineage, embfmt.compare.blame) ----------
    def stamp(self, table: str, rev: str = "HEAD") -> str:
        """A compact token naming ``table`` at ``rev`` exactly, for model metadata and inference
        logs: ``emb1:s:<table>@<commit>:<table-version id prefix>:<check>``. It works anywhere a
        revision does, and :meth:`resolve_stamp` checks it and says what it names.

        >>> import numpy as np, tempfile
        >>> repo = Repo.init(tempfile.mkdtemp())
        >>> cid = repo.commit({"emb": np.ones((2, 3), np.float32)})
        >>> s = repo.stamp("emb")
        >>> repo.resolve(s) == cid, repo.resolve_stamp(s).rows
        (True, 2)
        """
        from .history.lineage import stamp

        return stamp(self, table, rev)

    def resolve_stamp(self, stamp: str) -> Any:
        """What ``stamp`` names, checked (:class:`embfmt.history.lineage.StampInfo`: table, commit,
        table_version, fingerprint, rows, dim, dtype, identity). A malformed or mistyped stamp is
        :class:`FormatError` (``bad-stamp``); one whose table or version id disagrees with its
        commit is :class:`IntegrityError`; one whose commit is not here (gone after reset + gc,
        or from another repository) is :class:`NotFoundError`."""
        from .history.lineage import resolve_stamp

        return resolve_stamp(self, stamp)

    def record_use(self, stamp: str, *, consumer: str, context: Mapping[str, Any] | None = None) -> str:
        """Append to the usage log that ``consumer`` (a model, a service, a job) used the table
        version ``stamp`` names, with optional JSON ``context``; returns the record id.

        The stamp must resolve. The log is append-only and hash-chained (``verify`` checks it);
        appends from several processes are serialised by the ref lock.

        >>> import numpy as np, tempfile
        >>> repo = Repo.init(tempfile.mkdtemp())
        >>> _ = repo.commit({"emb": np.ones((2, 3), np.float32)})
        >>> rid = repo.record_use(repo.stamp("emb"), consumer="ranker", context={"job": 1})
        >>> [u.id for u in repo.uses()] == [rid]
        True
        """
        from .history.lineage import record_use

        return record_use(self, stamp, consumer=consumer, context=context).id

    def uses(self, rev: str | None = None, *, table: str | None = None) -> list[Any]:
        """Usage-log records (:class:`embfmt.history.lineage.UseRecord`), oldest first; with ``rev``
        only uses of that commit, with ``table`` only of that table. A tampered log raises
        :class:`IntegrityError` naming the line."""
        from .history.lineage import uses

        return uses(self, rev, table=table)

    def blame(self, table: str, row: int | None = None, *, key: Any = None,
              rev: str = "HEAD") -> list[Any]:
        """The versions in which one row (by position, or by ``key``) of ``table`` was added,
        changed or removed, newest first, along first parents from ``rev``: a list of
        :class:`embfmt.compare.blame.BlameEntry` with commit, time, author, message and drift. Decodes
        no chunk where the row did not change (see :mod:`embfmt.compare.blame`).

        >>> import numpy as np, tempfile
        >>> repo = Repo.init(tempfile.mkdtemp())
        >>> x = np.zeros((4, 2), np.float32)
        >>> _ = repo.commit({"emb": x}, message="a")
        >>> x[1] = 3
        >>> _ = repo.commit({"emb": x}, message="b")
        >>> [(e.kind, e.message) for e in repo.blame("emb", 1)]
        [('changed', 'b'), ('added', 'a')]
        """
        from .compare.blame import blame

        return blame(self, table, row, key=key, rev=rev).entries
