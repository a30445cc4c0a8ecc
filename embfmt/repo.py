"""Repositories: versioned embedding tables on the local filesystem (spec §11-§18).

A directory is a repository: ``embfmt.json`` (format marker), ``objects/`` (content-addressed
chunk, table-version, key and commit objects), ``refs/heads`` and ``refs/tags``, ``HEAD``.

:class:`Repo` is the facade over the layers below: the read side (``history.revisions``), the one
commit path (``history.transaction``), ref moves (``history.branches``), verify and gc
(``history.maintenance``), comparisons (``compare``) and the usage log (``history.lineage``).

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

import os
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np

from .backend import LazyCpuKernels, _threads
from .errors import ConflictError, ErrorKind
from .history import lineage
from .history.branches import Branches
from .history.cache import RowprintCache, SealCache
from .history.discovery import find_repository
from .history.layout import check_repository, create_repository, default_durable
from .history.maintenance import GcReport, Maintenance, VerifyReport
from .history.listing import list_tables
from .history.reader import ChunkReader
from .history.memory import MemoryRefs
from .history.ref import RefStore, Refs
from .history.reflog import DEFAULT_EXPIRE_SECONDS as DEFAULT_REFLOG_EXPIRE_SECONDS
from .history.reflog import ReflogEntry
from .history.revisions import CommitInfo, Revisions
from .history.stream_writer import StreamWriter
from .history.table import TableView
from .history.transaction import CommitPlan, Transaction
from .objects.change import ChangeRecord
from .objects.commit import Commit
from .objects.names import check_ref_name
from .objects.stamp import StampInfo
from .objects.table_version import TableVersion
from .store import LeaseDir, Leases, LocalStore, MemoryLeases, MemoryStore, Store

if TYPE_CHECKING:
    from .compare.blame import BlameEntry
    from .compare.diff import Diff, RowChanges, TablesDiff

__all__ = ["Repo", "CommitInfo", "CommitPlan", "VerifyReport", "GcReport", "find_repository",
           "default_durable"]


class Repo:
    """An embfmt repository in a local directory. ``durable`` (default: :func:`default_durable`):
    an acknowledged change survives a power loss (spec §18.6); ``durable=False`` keeps writes
    atomic only (scratch repositories). ``durable_objects`` is its older name."""

    def __init__(self, path: str | os.PathLike[str], *, durable: bool | None = None,
                 durable_objects: bool | None = None) -> None:
        self.path = os.fspath(path)
        if durable is None:
            durable = durable_objects if durable_objects is not None else default_durable(self.path)
        check_repository(self.path)
        store = LocalStore(self.path, durable=durable)
        self._assemble(store, RefStore(self.path, durable=durable), LeaseDir(store.tmp), durable,
                       RowprintCache(self.path), SealCache(self.path))

    @classmethod
    def in_memory(cls, *, default_branch: str = "main") -> Repo:
        """A repository in memory (MemoryStore, MemoryRefs, MemoryLeases; no cache, no usage log)."""
        repo = cls.__new__(cls)
        repo.path = ":memory:"
        repo._assemble(MemoryStore(), MemoryRefs(default_branch), MemoryLeases(), False, None, None)
        return repo

    def _assemble(self, store: Store, refs: Refs, leases: Leases, durable: bool,
                  rowprint_cache: RowprintCache | None, seal_cache: SealCache | None) -> None:
        self.durable = durable
        self.store = store
        self.refs = refs
        self.refs.author = self.author  # who reflog entries name: as a commit now would
        # Numba kernels load on first use: log, show, tag, branch and reset never need them.
        self.kernels = LazyCpuKernels()
        self.reader = ChunkReader(store, self.kernels, rowprint_cache=rowprint_cache, seal_cache=seal_cache)
        self._pool = ThreadPoolExecutor(_threads(), thread_name_prefix="embfmt-read")
        self.revisions = Revisions(self.path, store, refs, leases, self.reader, self._pool)
        self.maintenance = Maintenance(self.revisions, self.kernels)
        self.transaction = Transaction(self.revisions, self.maintenance, self.kernels)
        self.ref_moves = Branches(self.revisions, self.transaction)

    @classmethod
    def init(cls, path: str | os.PathLike[str], *, exist_ok: bool = False,
             default_branch: str = "main", durable: bool | None = None) -> Repo:
        """Create a repository at ``path`` (an empty or missing directory), on stable storage."""
        p = os.fspath(path)
        check_ref_name(default_branch, "branch")
        if not create_repository(p, default_branch, default_durable(p) if durable is None else durable) \
                and not exist_ok:
            raise ConflictError(f"{p} is already an embfmt repository", ErrorKind.REF_EXISTS)
        return cls(p, durable=durable)

    @classmethod
    def discover(cls, start: str | os.PathLike[str] = ".", **kw: Any) -> Repo:
        """The repository that holds ``start`` or its closest parent (spec §11.2), as git finds ``.git``."""
        return cls(find_repository(start), **kw)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def __enter__(self) -> Repo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Repo({self.path!r})"

    def get_commit(self, cid: bytes | str) -> Commit:
        return self.revisions.get_commit(cid)

    def get_table_version(self, tid: bytes | str, *, cached: bool = True) -> TableVersion:
        return self.revisions.get_table_version(tid, cached=cached)

    def author(self, explicit: str | None = None) -> str:
        """Who a commit made now is by (see :func:`embfmt.history.config.author_for`)."""
        return self.transaction.author(explicit)

    @property
    def head_branch(self) -> str:
        """The branch ``HEAD`` names (``main`` in a new repository)."""
        return self.revisions.head_branch

    def branches(self) -> dict[str, str]:
        """Branch name -> commit id."""
        return self.revisions.branches()

    def tags(self) -> dict[str, str]:
        """Tag name -> commit id."""
        return self.revisions.tags()

    def resolve(self, rev: str = "HEAD") -> str:
        """A full commit id for ``rev`` (``HEAD``, branch, tag, id prefix, ``~N``/``^``, stamp)."""
        return self.revisions.resolve(rev)

    def reflog(self, ref: str | None = None, *, problems: list[dict[str, str]] | None = None) -> list[ReflogEntry]:
        """Where ``ref`` has pointed, newest first (see :meth:`Revisions.reflog`)."""
        return self.revisions.reflog(ref, problems=problems)

    def log(self, rev: str = "HEAD", max_count: int | None = None, *, table: str | None = None) -> list[CommitInfo]:
        """Commits reachable from ``rev`` (or ``A..B``), newest first (see :meth:`Revisions.log`)."""
        return self.revisions.log(rev, max_count, table=table)

    def iter_commits(self) -> Iterator[CommitInfo]:
        """Every commit reachable from any ref."""
        return self.revisions.iter_commits()

    def show(self, rev: str = "HEAD") -> dict[str, Any]:
        """A commit with each table's shape, dtype, fingerprint, identity and write stats."""
        return self.revisions.show(rev)

    def ls(self, rev: str = "HEAD") -> dict[str, Any]:
        """The tables of ``rev`` (see :func:`embfmt.history.listing.list_tables`)."""
        return list_tables(self.revisions, rev)

    def show_table(self, rev: str, table: str) -> dict[str, Any]:
        """One table version of ``rev`` in detail (see :func:`embfmt.compare.tables.table_detail`)."""
        from .compare.tables import table_detail  # lazy: compare/ is not needed to open a repository

        return table_detail(self.revisions, rev, table)

    def table_version(self, table: str, rev: str = "HEAD") -> TableVersion:
        return self.revisions.table_version(table, rev)

    def open(self, table: str, rev: str = "HEAD") -> TableView:
        """A lazy, read-only view of ``table`` at ``rev``."""
        return self.revisions.open(table, rev)

    def read(self, table: str, rev: str = "HEAD") -> np.ndarray:
        """``table`` at ``rev`` as a numpy array, bit-exact."""
        return self.open(table, rev).read()

    def keys(self, table: str, rev: str = "HEAD") -> np.ndarray | None:
        """The row keys of ``table`` at ``rev`` (or None)."""
        return self.open(table, rev).keys

    def change_record(self, rev: str, table: str) -> ChangeRecord | None:
        """The drift of ``table`` at ``rev`` against the first parent, recorded at commit time."""
        return self.revisions.change_record(rev, table)

    def changed_rows(self, table: str, rev_a: str, rev_b: str = "HEAD", *, exact: bool = True) -> RowChanges:
        """Rows of ``table`` that differ between two revisions (see :func:`embfmt.compare.tables.changed_rows`)."""
        from .compare.tables import changed_rows  # lazy: compare/ is not needed to open a repository

        return changed_rows(self.revisions, table, rev_a, rev_b, exact=exact)

    @overload
    def diff(self, rev_a: str, rev_b: str, table: str, **kw: Any) -> Diff: ...

    @overload
    def diff(self, rev_a: str, rev_b: str = "HEAD", table: None = None, **kw: Any) -> TablesDiff: ...

    def diff(self, rev_a: str, rev_b: str = "HEAD", table: str | None = None, **kw: Any) -> Diff | TablesDiff:
        """Row-level diff of ``table`` (or every table) of two revisions (:func:`embfmt.compare.tables.diff`)."""
        from .compare.tables import diff  # lazy: compare/ is not needed to open a repository

        return diff(self.revisions, rev_a, rev_b, table, **kw)

    def blame(self, table: str, row: int | None = None, *, key: Any = None, rev: str = "HEAD") -> list[BlameEntry]:
        """The versions in which one row of ``table`` changed, newest first (see :mod:`embfmt.compare.blame`)."""
        from .compare.blame import blame  # lazy: compare/ is not needed to open a repository

        return blame(self.revisions, table, row, key=key, rev=rev).entries

    @overload
    def commit(self, tables: Mapping[str, Any], *, dry_run: Literal[False] = False, **kw: Any) -> str: ...

    @overload
    def commit(self, tables: Mapping[str, Any], *, dry_run: Literal[True], **kw: Any) -> CommitPlan: ...

    def commit(self, tables: Mapping[str, Any], **kw: Any) -> str | CommitPlan:
        """Commit new versions of tables; returns the commit id (see :meth:`Transaction.commit`)."""
        return self.transaction.commit(tables, **kw)

    def writer(self, table: str, shape: tuple[int, int], dtype: Any, **kw: Any) -> StreamWriter:
        """A :class:`~embfmt.history.stream_writer.StreamWriter`: a new version of ``table`` by blocks."""
        return StreamWriter(self.transaction, table, shape, dtype, **kw)

    def restore(self, rev: str, *, branch: str | None = None, message: str | None = None) -> str:
        """A new commit on ``branch`` whose tables are exactly those of ``rev`` (see :meth:`Transaction.restore`)."""
        return self.transaction.restore(rev, branch=branch, message=message)

    def revert(self, rev: str, *, branch: str | None = None, message: str | None = None,
               author: str | None = None, backend: str = "auto") -> str:
        """Undo the change commit ``rev`` made, as a new commit (see :func:`embfmt.compare.revert.revert`)."""
        from .compare.revert import revert  # lazy: compare/ is not needed to open a repository

        return revert(self.revisions, self.transaction, rev, branch=branch, message=message,
                      author=author, backend=backend)

    def tag(self, name: str, rev: str = "HEAD") -> str:
        """Create an immutable tag; :class:`ConflictError` (``ref-exists``) if it exists."""
        return self.ref_moves.tag(name, rev)

    def branch(self, name: str, rev: str = "HEAD") -> str:
        """Create a branch at ``rev``; :class:`ConflictError` (``ref-exists``) if it exists."""
        return self.ref_moves.branch(name, rev)

    def reset(self, branch: str, rev: str) -> str:
        """Move ``branch`` to ``rev`` (see :meth:`Branches.reset`)."""
        return self.ref_moves.reset(branch, rev)

    def checkout_branch(self, name: str) -> None:
        """Make ``name`` the branch ``HEAD`` names (it must exist); see :meth:`switch`."""
        self.ref_moves.switch(name)

    def switch(self, branch: str, *, create: bool = False, start: str = "HEAD") -> str:
        """Point ``HEAD`` at ``branch`` (``git switch``, ``-c`` with ``create``); returns its tip."""
        return self.ref_moves.switch(branch, create=create, start=start)

    def delete_branch(self, name: str, *, force: bool = False) -> str:
        """Delete branch ``name`` (see :meth:`Branches.delete_branch`); returns the commit it held."""
        return self.ref_moves.delete_branch(name, force=force)

    def delete_tag(self, name: str) -> str:
        """Delete tag ``name`` (see :meth:`Branches.delete_tag`); returns the commit it named."""
        return self.ref_moves.delete_tag(name)

    def verify(self, rev: str | None = None) -> VerifyReport:
        """Recompute every digest and root reachable from ``rev`` (see :meth:`Maintenance.verify`)."""
        from .compare.records import check_recomputed  # lazy: compare/ is not needed to open a repository

        return self.maintenance.verify(rev, check_record=check_recomputed)

    def gc(self, *, grace_seconds: float = 3600.0,
           reflog_expire_seconds: float = DEFAULT_REFLOG_EXPIRE_SECONDS) -> GcReport:
        """Remove objects no ref reaches (see :meth:`Maintenance.gc`)."""
        return self.maintenance.gc(grace_seconds=grace_seconds, reflog_expire_seconds=reflog_expire_seconds)

    def gc_status(self, *, grace_seconds: float = 3600.0) -> dict[str, Any]:
        """What :meth:`gc` would find, changing nothing (see :meth:`Maintenance.gc_status`)."""
        return self.maintenance.gc_status(grace_seconds=grace_seconds)

    def disk_usage(self) -> int:
        """Bytes of all stored objects."""
        return self.maintenance.disk_usage()

    def stamp(self, table: str, rev: str = "HEAD") -> str:
        """A token naming ``table`` at ``rev`` exactly (``emb1:s:...``); it works as a revision."""
        return self.revisions.stamp(table, rev)

    def resolve_stamp(self, stamp: str) -> StampInfo:
        """What ``stamp`` names, checked (see :meth:`Revisions.resolve_stamp`)."""
        return self.revisions.resolve_stamp(stamp)

    def record_use(self, stamp: str, *, consumer: str, context: Mapping[str, Any] | None = None) -> str:
        """Append to the usage log that ``consumer`` used the version ``stamp`` names; returns the record id."""
        return lineage.record_use(self.revisions, stamp, consumer=consumer, context=context).id

    def uses(self, rev: str | None = None, *, table: str | None = None) -> list[lineage.UseRecord]:
        """Usage-log records, oldest first; with ``rev`` / ``table`` only those of that commit / table."""
        return lineage.uses(self.revisions, rev, table=table)
