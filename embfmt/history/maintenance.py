"""Maintenance of a repository: verify what is stored, collect what nothing reaches (spec §18.4, §19).

:meth:`Maintenance.verify` recomputes every digest and root reachable from the refs (and the
other gc roots: the usage log and the reflog) and reports what is wrong without raising;
:meth:`Maintenance.gc` removes what no root reaches, by the rules that make it safe beside
running writers (grace period, write leases, refs read as one snapshot, durable refs first).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import progress
from ..backend import Kernels
from ..errors import EmbfmtError, FormatError, InputError, IntegrityError, NotFoundError, ErrorKind
from ..store import WriteBatch, real_dir
from .lineage import UsageLog, gone_uses
from .reader import ChunkReader
from .reflog import DEFAULT_EXPIRE_SECONDS as DEFAULT_REFLOG_EXPIRE_SECONDS
from ..objects.change import ChangeRecord
from ..objects.commit import Commit
from ..objects.table_version import TableVersion
from .revisions import Revisions

__all__ = ["Maintenance", "VerifyReport", "GcReport", "RecordCheck"]

#: ``check(record, reader, kernels, parent version, child version, name, (parent id, child id))``
#: raises :class:`FormatError` when the change object states what its versions' rows do not.
RecordCheck = Callable[[ChangeRecord, ChunkReader, Kernels, TableVersion, TableVersion, str, tuple[str, str]], None]


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


class Maintenance:
    """Verify and gc of the repository that ``revs`` reads; ``kernels`` decode chunks."""

    def __init__(self, revs: Revisions, kernels: Kernels) -> None:
        self.revs = revs
        self.kernels = kernels

    def verify(self, rev: str | None = None, *, check_record: RecordCheck | None = None) -> VerifyReport:
        """Recompute every digest and root reachable from ``rev`` (or from every ref).

        Never raises for corruption: it is listed in the report (``report.ok`` is False).
        ``check_record`` recomputes what each change object states from the rows of its
        commit and first parent (:func:`embfmt.compare.records.check_recomputed`: a
        comparison, so it comes from the layer above).
        """
        report = VerifyReport()
        used: list[Any] = []
        if rev:
            try:
                starts = [bytes.fromhex(self.revs.resolve(rev))]
            except (IntegrityError, FormatError) as e:  # the named commit itself is corrupt
                report.errors.append({"object": rev, "kind": e.kind.value, "error": str(e)})
                return report
        else:  # a corrupt ref is reported, and the walk goes on from the others
            bad_refs: list[tuple[str, FormatError]] = []
            starts = (list(self.revs.refs.list("heads", bad_refs).values())
                      + list(self.revs.refs.list("tags", bad_refs).values()))
            for ref, bad in bad_refs:
                report.errors.append({"object": ref, "kind": bad.kind.value, "error": str(bad)})
            try:  # HEAD names the current branch: a damaged or missing HEAD is damage too
                self.revs.refs.head_branch()
            except EmbfmtError as e:
                report.errors.append({"object": "HEAD", "kind": e.kind.value, "error": str(e)})
            # Versions the usage log records as used are live (gc keeps them, §18.4): checked
            # like the refs' history.
            log_problems = UsageLog(self.revs.path, durable=self.revs.refs.durable).problems(used)
            # So are the commits reflog entries name, until the entries expire.
            log_problems += self.revs.refs.reflog.problems() + self.revs.refs.reflog.missing(self.revs.store.has)
            try:
                starts += [c for c in self.extra_roots() if c not in set(starts)]
            except FormatError as e:  # a usage log that cannot be read: reported above
                if not any(p["object"] == UsageLog(self.revs.path).log_name for p in log_problems):
                    log_problems.append({"object": UsageLog(self.revs.path).log_name, "kind": e.kind.value,
                                         "error": str(e)})
        tv_ids: set[str] = set()
        change_ids: set[str] = set()
        records: list[tuple[Commit, str, str]] = []  # (commit, table, change object id)
        for cid in self.revs.reachable_commits(starts, report.errors):
            report.commits += 1
            c = self.revs.get_commit(cid)
            tv_ids.update(c.tables.values())
            ids = c.change_ids()
            change_ids.update(ids)
            records += [(c, t, info["changes"]) for t, info in c.embfmt_tables().items()
                        if isinstance(info, dict) and info.get("changes") in ids]
        chunk_ids: set[bytes] = set()
        key_ids: dict[bytes, set[int]] = {}  # key object -> row counts of the versions naming it
        reader = ChunkReader(self.revs.store, self.kernels)
        seen: set[tuple[str, str]] = set()  # (object, error): one report per distinct fault

        def report_error(obj: str, e: EmbfmtError) -> None:
            if (obj, str(e)) not in seen:
                seen.add((obj, str(e)))
                report.errors.append({"object": obj, "kind": e.kind.value, "error": str(e)})

        for tid in sorted(tv_ids):
            try:
                tv = self.revs.get_table_version(tid, cached=False)
            except EmbfmtError as e:
                report_error(tid, e)
                continue
            report.tables += 1
            chunk_ids.update(tv.digests)
            for ci in range(tv.n_chunks):  # each chunk holds the rows its table version says
                try:
                    reader.chunk_of(tv, ci)
                except NotFoundError:
                    pass  # reported by check() below
                except EmbfmtError as e:
                    report_error(tv.digests[ci].hex(), e)
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
            for err in self.revs.pool.map(check, sorted(chunk_ids)):
                report.chunks += 1
                bar.update(1)
                if err:
                    report_error(err[0].hex(), err[1])
        for k in sorted(key_ids):
            report.keys += 1
            for n in sorted(key_ids[k]):  # one key per row of every version naming it
                try:
                    self.revs.keys_of(k, n)
                except EmbfmtError as e:
                    report_error(k.hex(), e)
        parsed: dict[str, ChangeRecord] = {}
        for ch in sorted(change_ids):
            try:
                parsed[ch] = self.revs.change_object(bytes.fromhex(ch))
            except EmbfmtError as e:
                report.errors.append({"object": ch, "kind": e.kind.value, "error": str(e)})
        # What each record states, recomputed from the rows of its commit and its parent: a
        # record forged (and re-hashed) or wired into another commit is reported.
        for c, t, ch in records:
            if ch not in parsed or check_record is None:
                continue
            try:
                p = self.revs.get_commit(bytes.fromhex(c.parents[0])) if c.parents else None
                if p is None or t not in p.tables or t not in c.tables:
                    raise FormatError(f"change object {ch}: its commit and its parent do not both "
                                      f"hold table {t!r}", ErrorKind.BAD_OBJECT)
                check_record(parsed[ch], reader, self.kernels,
                             self.revs.get_table_version(p.tables[t]),
                             self.revs.get_table_version(c.tables[t]), f"change object {ch}",
                             (p.tables[t], c.tables[t]))
            except EmbfmtError as e:
                if str(e).startswith(f"change object {ch}"):  # else: a damaged chunk or version,
                    report_error(ch, e)  # reported above in its own name
        if not rev:  # the usage log belongs to the repository, not to one revision
            report.errors.extend(log_problems)
            report.errors.extend(gone_uses(self.revs, used))
        return report

    def extra_roots(self, logged: set[bytes] | None = None) -> list[bytes]:
        """Commits that are gc roots besides the refs (spec §18.4), that are still stored:
        those the usage log names (a version recorded as used stays readable) and those
        reflog entries name (``logged``, else read now)."""
        if logged is None:
            logged = self.revs.refs.reflog.commits_named()
        return sorted(c for c in UsageLog(self.revs.path).commits_named() | logged if self.revs.store.has(c))

    def reachable_objects(self, cache_keys: set[bytes] | None = None,
                           reflog_cutoff: float | None = None) -> set[bytes]:
        """Every object some ref (or another gc root, :meth:`_extra_roots`) reaches;
        ``cache_keys`` collects the rowprint-cache keys of the reachable table versions.
        Reflog entries older than ``reflog_cutoff`` (epoch seconds) are no roots."""
        live: set[bytes] = set()
        # The refs are read under the ref lock, as one snapshot: a ref move that relies on
        # another ref keeping its target reachable (:meth:`_onto`) is then seen either before
        # (through that ref) or after (through the moved ref), never neither. The reflog is
        # read in the same hold: a move logs itself before the ref changes.
        with self.revs.refs.locked():
            heads = self.revs.all_heads()
            logged = self.revs.refs.reflog.commits_named(reflog_cutoff)
        self._mark_live(heads, live, cache_keys)
        for cid in self.extra_roots(logged):
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
        for cid in self.revs.reachable_commits(starts):
            live.add(cid)
            live.update(bytes.fromhex(x) for x in self.revs.get_commit(cid).change_ids())
            for tid in self.revs.get_commit(cid).tables.values():
                t = bytes.fromhex(tid)
                if t in live:
                    continue
                live.add(t)
                tv = self.revs.get_table_version(t)
                if cache_keys is not None:
                    cache_keys.add(ChunkReader.table_key(tv))
                if tv.keys_id is not None:
                    live.add(tv.keys_id)
                for d in tv.digests:
                    if d not in live:
                        live.update(self.revs.reader.chain(d))

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
        rep, cutoff, cache_keys = self.collect(grace_seconds, reflog_expire_seconds)
        rep.bytes_freed += self.revs.store.clean_tmp(cutoff)
        for c in (self.revs.reader.rowprint_cache, self.revs.reader.seal_cache):  # derived data of versions gone (§11.1)
            if c is not None:
                rep.bytes_freed += c.prune(cache_keys, cutoff)
        self.revs.reader.clear()
        return rep

    def _gc_cutoff(self, grace_seconds: float, *, remove_stale: bool = True) -> tuple[float, int, int]:
        """The modification time at or before which gc may remove an unreachable object or temp
        file (spec §18.4), with the counts of live and stale leases."""
        cutoff = time.time() - grace_seconds
        oldest, live, stale = self.revs.leases.scan(remove_stale=remove_stale)
        if oldest is not None:
            # A table write is running: keep whatever it wrote or touched since it started
            # (1 s of slack for file systems with coarse timestamps).
            cutoff = min(cutoff, oldest - 1.0)
        return cutoff, live, stale

    def collect(self, grace_seconds: float, reflog_expire_seconds: float | None,
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
        self.revs.store.check_layout()
        for c in (self.revs.reader.rowprint_cache, self.revs.reader.seal_cache):
            if c is not None:
                real_dir(os.path.dirname(c.dir), "cache directory")
                real_dir(c.dir, "cache directory")
        cutoff, _, _ = self._gc_cutoff(grace_seconds)
        cache_keys: set[bytes] = set()
        rep = GcReport()
        expiry: float | None = None  # None: every reflog entry stays a root
        if reflog_expire_seconds is not None:
            expiry = float("inf") if reflog_expire_seconds == 0 else time.time() - reflog_expire_seconds
        live = self.reachable_objects(cache_keys, expiry)
        # Nothing is deleted before the refs just walked are durable (spec §18.6): a ref moved
        # by a writer that did not sync it could otherwise come back after a power loss and
        # name the objects deleted here.
        self.revs.refs.sync()
        # The walk succeeded: now drop the expired entries (before any object goes, so that no
        # entry ever names a deleted commit). Entries appended meanwhile are newer: kept.
        if expiry is not None:
            with self.revs.refs.locked():
                rep.reflog_expired = self.revs.refs.reflog.expire(expiry)
        oids = list(self.revs.store.iter()) if candidates is None else candidates
        removed: list[bytes] = []
        with progress.bar(len(oids), "gc objects", unit="obj") as bar:
            for oid in oids:
                bar.update(1)
                # The age seen here only selects candidates: a writer may refresh the object
                # right after this look (and commit a reference to it), so the deletion
                # checks the age again, atomically with the unlink (Store.delete_if_older).
                if oid in live or self.revs.store.mtime(oid) > cutoff:
                    rep.objects_kept += 1
                    continue
                freed = self.revs.store.delete_if_older(oid, cutoff)
                if freed:
                    rep.bytes_freed += freed
                    rep.objects_removed += 1
                    removed.append(oid)
                elif self.revs.store.has(oid):  # refreshed since: a writer reuses it
                    rep.objects_kept += 1
        self.revs.store.sync_deletions(removed)  # the space is free once gc returns, crash or not
        return rep, cutoff, cache_keys

    def gc_status(self, *, grace_seconds: float = 3600.0) -> dict[str, Any]:
        """What :meth:`gc` would find, changing nothing (works on a read-only repository):
        unreferenced objects (count and bytes, and how many of them are younger than the
        grace period, which gc keeps), temporary files under ``tmp/`` (of writers running
        or dead), and live and stale write leases. What an interrupted write left behind
        shows here at once, whatever the grace period."""
        cutoff, live_leases, stale_leases = self._gc_cutoff(grace_seconds, remove_stale=False)
        live = self.reachable_objects(None, time.time() - DEFAULT_REFLOG_EXPIRE_SECONDS)
        out: dict[str, Any] = {"grace_seconds": grace_seconds, "objects": 0, "bytes": 0,
                               "unreferenced_objects": 0, "unreferenced_bytes": 0,
                               "unreferenced_kept_by_grace": 0, "temp_files": 0, "temp_bytes": 0,
                               "temp_kept_by_grace": 0, "writes_running": live_leases,
                               "dead_writer_leases": stale_leases}
        for oid in self.revs.store.iter():
            try:
                n = self.revs.store.size(oid)
            except NotFoundError:
                continue  # removed meanwhile
            out["objects"] += 1
            out["bytes"] += n
            if oid not in live:
                out["unreferenced_objects"] += 1
                out["unreferenced_bytes"] += n
                out["unreferenced_kept_by_grace"] += self.revs.store.mtime(oid) > cutoff
        for name, size, mtime in self.revs.store.tmp_files():
            out["temp_files"] += 1
            out["temp_bytes"] += size
            out["temp_kept_by_grace"] += mtime > cutoff
        return out

    def discard(self, batch: WriteBatch) -> int:
        """Remove again the objects a failed commit stored itself, by gc's rules (spec §18.4,
        grace 0: an object another running write reuses, or one a ref reaches, stays);
        returns the bytes freed. Best effort: the commit's own error is what the caller sees."""
        if not batch.published:
            return 0
        try:
            rep, _, _ = self.collect(0.0, None, list(batch.published))
        except (EmbfmtError, OSError):
            return 0
        return rep.bytes_freed

    def disk_usage(self) -> int:
        """Bytes of all stored objects."""
        return sum(self.revs.store.size(o) for o in self.revs.store.iter())
