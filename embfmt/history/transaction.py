"""The commit transaction: THE one path by which new table versions and commits land (spec §18).

Every commit takes it: :meth:`embfmt.Repo.commit`, the streaming writer, revert, restore and
the tracker. In order:

1. the schema, identity and key rules are checked for every table before anything is written
   (:meth:`Transaction.check_table`), so a refused commit leaves the repository as it was;
2. each table's rows go through one :class:`~embfmt.history.stream.RowStream` (fingerprint and
   chunk objects) under a write lease, and :meth:`Transaction.finish_table` stores its key,
   table-version and change objects, all into one write batch;
3. :meth:`Transaction.land` writes the commit object, syncs the batch, then moves the branch by
   compare-and-swap under the ref lock: a concurrent commit that touched other tables is
   re-parented onto, one that touched ours is a conflict (never dropped);
4. a commit that fails takes back what it stored (:meth:`Maintenance.discard`, gc's rules).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, NamedTuple

import numpy as np

from ..backend import Kernels, resolve_name
from ..canonical.dtype import DType
from ..canonical.matrix import Matrix, as_matrix
from ..errors import ConflictError, EmbfmtError, ErrorKind, InputError, NotFoundError
from ..objects.change import ChangeRecord
from ..objects.commit import Commit
from ..objects.keys import KEYS_CARRY, KEYS_DROP, CarryKeys, encode_keys, normalize_keys
from ..objects.names import check_ref_name
from ..objects.table_version import TableVersion, canonical_json
from ..store import DryRunBatch, WriteBatch
from .config import author_for
from .maintenance import Maintenance
from .revisions import Revisions
from .stream import RowStream

__all__ = ["Transaction", "CommitPlan", "PreparedTable", "commit_meta"]


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


class PreparedTable(NamedTuple):
    """One table of a commit, checked against the rules and not written yet."""

    name: str
    parent: TableVersion | None
    matrix: Matrix
    keys: np.ndarray | bytes | None
    """New keys, the id of the parent's key object to reuse, or None."""
    identity: dict[str, Any] | None


def commit_meta(message: Any, metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate a commit message and user metadata (JSON object; ``embfmt`` is reserved)."""
    if not isinstance(message, str):
        raise InputError("message must be a string", ErrorKind.BAD_ARGUMENT)
    meta = dict(metadata or {})
    if "embfmt" in meta:
        raise InputError("metadata key 'embfmt' is reserved", ErrorKind.BAD_ARGUMENT)
    canonical_json(meta, "commit metadata")
    return meta


def capture_environment(backend: str | None) -> dict[str, Any]:
    """:func:`embfmt.environment.capture_environment`, imported on first use: it needs
    importlib.metadata (~20 ms), which log, show, branch and tag never do."""
    from ..environment import capture_environment as capture  # lazy: start-up time (see above)

    return capture(backend)


def _now_utc() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Transaction:
    """Commits to the repository that ``revs`` reads; ``kernels`` encode and compare chunks."""

    def __init__(self, revs: Revisions, maintenance: Maintenance, kernels: Kernels) -> None:
        self.revs = revs
        self.maintenance = maintenance
        self.kernels = kernels

    def author(self, explicit: str | None = None) -> str:
        """Who a commit made now is by (see :func:`embfmt.history.config.author_for`)."""
        return author_for(self.revs.path, explicit)

    # --- commit -----------------------------------------------------------------------------
    def commit(self, tables: Mapping[str, Any], *, message: str = "", metadata: Mapping[str, Any] | None = None,
               keys: Mapping[str, Any] | None = None, identity: Mapping[str, Mapping[str, Any]] | None = None,
               branch: str | None = None, author: str | None = None, remove: tuple[str, ...] = (),
               allow_identity_change: bool = False, allow_schema_change: bool = False,
               backend: str = "auto", time_utc: str | None = None,
               environment: Mapping[str, Any] | None = None, dry_run: bool = False) -> str | CommitPlan:
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
        >>> import numpy as np, tempfile, embfmt
        >>> repo = embfmt.Repo.init(tempfile.mkdtemp())
        >>> x = np.zeros((100, 4), np.float32)
        >>> _ = repo.commit({"t": x})
        >>> x[3] = 1
        >>> plan = repo.commit({"t": x}, dry_run=True)
        >>> plan.tables["t"]["status"], plan.tables["t"]["rows_changed"], len(repo.log())
        ('changed', 1, 1)
        """
        revs = self.revs
        branch = check_ref_name(revs.head_branch if branch is None else branch, "branch")
        if not tables and not remove:
            raise InputError("nothing to commit: no tables given", ErrorKind.BAD_ARGUMENT)
        keys = dict(keys or {})
        ident = {k: dict(v) for k, v in (identity or {}).items()}
        for name in list(tables) + list(keys) + list(ident) + list(remove):
            check_ref_name(name, "table")
        for name in list(keys) + list(ident):
            if name not in tables:
                raise InputError(f"keys/identity given for table {name!r} which is not committed",
                                 ErrorKind.BAD_ARGUMENT)
        meta = commit_meta(message, metadata)
        parent_id = revs.refs.read("heads", branch)
        parent = revs.get_commit(parent_id) if parent_id else None
        parent_tables = dict(parent.tables) if parent else {}
        backend_name = resolve_name(backend)
        for r in remove:
            if r not in parent_tables and r not in tables:
                raise NotFoundError(f"cannot remove table {r!r}: not in branch {branch!r}")
        # Validate every table (schema, identity, keys) before writing any object, so a refused
        # commit leaves the repository exactly as it was.
        prepared = []
        for name, x in tables.items():
            ptv = revs.get_table_version(parent_tables[name]) if name in parent_tables else None
            prepared.append(self.prepare_table(name, x, ptv, keys.get(name), ident.get(name),
                                               allow_identity_change, allow_schema_change))
        if dry_run:
            return self._plan(branch, parent_id, parent_tables, prepared, remove, backend_name)
        return self.commit_prepared(branch, parent_id, prepared, {}, remove, message, meta, author,
                                    backend_name, time_utc=time_utc, environment=environment)

    def commit_prepared(self, branch: str, parent_id: bytes | None, prepared: list[PreparedTable],
                        reuse: Mapping[str, str], remove: tuple[str, ...], message: str,
                        meta: dict[str, Any], author: str | None, backend_name: str, *,
                        time_utc: str | None = None, environment: Mapping[str, Any] | None = None,
                        embfmt_meta: Mapping[str, Any] | None = None) -> str:
        """Write ``prepared`` and commit them with the existing versions ``reuse`` (table ->
        version id, refreshed first so that a concurrent gc keeps them, spec §18.4)."""
        # Each stream holds its write lease until the commit has landed (or failed), so gc
        # keeps every object this commit wrote, however long it takes.
        streams: list[RowStream] = []
        lease = self.revs.leases.acquire() if reuse else None
        batch = self.revs.store.batch()  # every object of the commit, synced before the ref moves
        cid = None
        try:
            self.refresh_tables(reuse, batch)
            new_tables, write_info = self._store_tables(prepared, backend_name, streams, batch)
            new_tables.update(reuse)
            cid = self.land(branch, parent_id, new_tables, remove, message, meta, author=author,
                            write_info=write_info, time_utc=time_utc, environment=environment,
                            backend_name=backend_name, embfmt_meta=embfmt_meta, batch=batch)
            return cid
        finally:
            for stream in streams:
                stream.close()
            if lease is not None:
                lease.release()
            if cid is None:  # failed (a full disk, a conflict, Ctrl-C): take back what it wrote
                self.maintenance.discard(batch)

    def _plan(self, branch: str, parent_id: bytes | None, parent_tables: dict[str, str],
              prepared: list[PreparedTable], remove: tuple[str, ...], backend_name: str) -> CommitPlan:
        """What committing ``prepared`` would store: the real write path against a
        :class:`~embfmt.store.DryRunBatch`, which counts the objects instead of storing them."""
        dry = DryRunBatch(self.revs.store)
        plan: dict[str, dict[str, Any]] = {}
        for item in prepared:
            before = dry.bytes_written
            streams: list[RowStream] = []
            try:
                ids, info = self._store_tables([item], backend_name, streams, dry)
            finally:
                for stream in streams:
                    stream.close()
            name = item.name
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

    def stream(self, name: str, dt: DType, n_rows: int, dim: int, parent: TableVersion | None,
               backend_name: str, batch: WriteBatch | None = None) -> RowStream:
        """A :class:`RowStream` for a new version of table ``name`` (it holds a write lease)."""
        revs = self.revs
        return RowStream(revs.store, revs.leases, revs.reader, self.kernels, name, dt, n_rows, dim, parent,
                         backend_name, batch)

    def _store_tables(self, prepared: list[PreparedTable], backend_name: str,
                      streams: list[RowStream], batch: WriteBatch) -> tuple[dict[str, str], dict[str, Any]]:
        """Write the table versions of ``prepared`` through one :class:`RowStream` each, appended
        to ``streams`` (the caller closes them once the commit has landed), their objects into
        ``batch``; returns their ids and write statistics."""
        new_tables: dict[str, str] = {}
        write_info: dict[str, Any] = {}
        for p in prepared:
            m = p.matrix
            stream = self.stream(p.name, m.dtype, m.n_rows, m.dim, p.parent, backend_name, batch)
            streams.append(stream)
            for block in m.blocks():  # the same streaming path as writer(), in row order
                stream.feed(block)
            new_tables[p.name], write_info[p.name] = self.finish_table(stream, p.parent, p.keys, p.identity)
        return new_tables, write_info

    # --- the rules (spec §18.1) -------------------------------------------------------------
    def prepare_table(self, name: str, x: Any, parent: TableVersion | None, keys: Any,
                      identity: dict[str, Any] | None, allow_identity_change: bool,
                      allow_schema_change: bool) -> PreparedTable:
        """Check one table against the commit rules; writes nothing."""
        m = as_matrix(x)
        key_arr, identity = self.check_table(name, m.dtype, m.n_rows, m.dim, parent, keys, identity,
                                             allow_identity_change, allow_schema_change)
        return PreparedTable(name, parent, m, key_arr, identity)

    def check_table(self, name: str, dt: DType, n_rows: int, dim: int, parent: TableVersion | None,
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
                self.revs.keys_of(pkeys, n_parent)
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
            old = self.revs.keys_of(pkeys, n_parent)
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

    # --- storing a table version ------------------------------------------------------------
    def finish_table(self, stream: RowStream, parent: TableVersion | None, key_arr: np.ndarray | bytes | None,
                     identity: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
        """Flush a fully fed :class:`RowStream` and store its table version; returns its id and
        the write statistics recorded in the commit."""
        revs = self.revs
        w = stream.writer
        fp, stats = w.finish()
        tmeta: dict[str, Any] = {}
        if isinstance(key_arr, bytes):  # carried: the parent's key object, refreshed for gc
            if not stream.batch.touch(key_arr):
                raise NotFoundError(f"key object {key_arr.hex()} of table {stream.name!r} is missing "
                                    f"from {revs.path} (lost, or removed by a garbage collection "
                                    "running now); nothing was committed", ErrorKind.MISSING_OBJECT)
            tmeta["keys"] = key_arr.hex()
        elif key_arr is not None:
            kid = revs.put_hashed(encode_keys(key_arr), stream.batch)
            tmeta["keys"] = kid.hex()
        if identity is not None:
            tmeta["identity"] = identity
        tv = TableVersion(stream.dtype, stream.n_rows, stream.dim, fp.chunk_digests, tmeta)
        tvb = tv.to_bytes()
        tid = revs.put_hashed(tvb, stream.batch)
        revs.remember(tid, tv)  # kept parsed: the commit records its bindings once it has landed
        extra = 0
        changes = w.changes()
        change_id = None
        if changes is not None and parent is not None:
            idx, drift = changes
            rec = ChangeRecord(stream.dtype.code, parent.n_rows, stream.n_rows, parent.object_id(),
                               tid, idx, *drift)
            recb = rec.to_bytes()
            change_id = revs.put_hashed(recb, stream.batch).hex()
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

    def refresh_tables(self, tables: Mapping[str, str], batch: WriteBatch | None = None) -> None:
        """Refresh the modification time of every object the table versions ``tables`` reach
        (table versions, key objects, chunks and their delta bases, deepest first), through
        ``batch`` when the caller commits them (their names are then synced with it)."""
        revs = self.revs
        batch = batch if batch is not None else revs.store.batch()
        for tid in tables.values():
            tv = revs.get_table_version(tid)
            oids = [d for chunk in tv.digests for d in reversed(revs.reader.chain(chunk))]
            oids += [tv.keys_id] if tv.keys_id is not None else []
            for oid in [*oids, bytes.fromhex(tid)]:
                if not batch.touch(oid):
                    raise ConflictError(f"object {oid.hex()} of table version {tid} is gone (removed "
                                        "by a garbage collection running now, or lost); nothing was "
                                        "committed", ErrorKind.CONFLICT)

    # --- landing ----------------------------------------------------------------------------
    def land(self, branch: str, parent_id: bytes | None, new_tables: Mapping[str, str],
             remove: tuple[str, ...], message: str, meta: Mapping[str, Any], *,
             author: str | None = None, write_info: Mapping[str, Any] | None = None,
             time_utc: str | None = None, environment: Mapping[str, Any] | None = None,
             backend_name: str | None = None, embfmt_meta: Mapping[str, Any] | None = None,
             batch: WriteBatch | None = None, exact: bool = False, reason: str | None = None) -> str:
        """Write the commit object for already-stored table versions and move ``branch`` to it:
        the one compare-and-swap retry loop of the repository.

        The snapshot is the parent's tables with ``new_tables`` set and ``remove`` dropped, or
        with ``exact`` just ``new_tables``. When another writer moved the branch meanwhile, the
        commit is re-parented onto theirs if they did not touch the tables this one sets or
        drops (every table of either snapshot, with ``exact``), else it is refused
        (:class:`ConflictError`): their commit is never dropped. ``write_info`` and
        ``embfmt_meta`` go into ``metadata.embfmt`` (spec §16); ``reason`` is the reflog's
        (default ``commit: <first line>``).

        ``batch`` holds every object the commit wrote or reuses (a new one when None): it is
        synced before the ref moves, so an acknowledged commit survives a power loss (spec
        §18.6)."""
        revs = self.revs
        if batch is None:
            batch = revs.store.batch()
        emb: dict[str, Any] = {} if write_info is None else {"tables": dict(write_info)}
        emb.update(embfmt_meta or {})
        full_meta = {**meta, "embfmt": emb}
        env = dict(environment) if environment is not None else capture_environment(backend_name)
        when = time_utc or _now_utc()
        who = self.author(author)
        if reason is None:
            verb = "revert" if "reverts" in emb else "commit"
            first = message.splitlines()[0] if message else ""
            reason = f"{verb}: {first}".rstrip()
        for _attempt in range(100):
            parent_tables = dict(revs.get_commit(parent_id).tables) if parent_id else {}
            if exact:
                snapshot = dict(new_tables)
                ours = set(parent_tables) | set(new_tables)
            else:
                snapshot = dict(parent_tables)
                for r in remove:
                    if r not in snapshot and r not in new_tables:
                        raise NotFoundError(f"cannot remove table {r!r}: not in branch {branch!r}")
                    snapshot.pop(r, None)
                snapshot.update(new_tables)
                ours = set(new_tables) | set(remove)
            c = Commit(dict(sorted(snapshot.items())), (parent_id.hex(),) if parent_id else (),
                       who, when, message, full_meta, env)
            cid = revs.put_hashed(c.to_bytes(), batch)
            batch.sync()  # objects durable before the ref CAS (outside the lock: it can take ms)
            with revs.refs.locked():
                cur = revs.refs.read("heads", branch)
                if cur == parent_id:
                    revs.refs.cas("heads", branch, parent_id, cid, reason=reason, author=who)
                    break
            # Someone else moved the branch: re-parent onto their commit when they did not
            # touch our tables, else refuse. Never drop their commit.
            if cur is None:
                raise ConflictError(f"branch {branch!r} was deleted while committing")
            self._check_disjoint(cur, parent_id, ours, branch)
            parent_id = cur
        else:
            raise ConflictError(f"branch {branch!r} kept moving; gave up after 100 attempts")
        # Landed: record what the writer bound (spec §13.7), so that later diffs of these
        # versions need no full checks. Derived data (cache/): after the ref, so that a failed
        # commit leaves nothing but unreferenced objects.
        if write_info is not None:
            try:
                for tid in new_tables.values():
                    revs.reader.save_seals(revs.get_table_version(tid))
            except EmbfmtError:  # derived data only: the commit has landed either way
                pass
        return cid.hex()

    def _check_disjoint(self, head: bytes, base: bytes | None, ours: set[str], branch: str) -> None:
        revs = self.revs
        cid: bytes | None = head
        while cid is not None and cid != base:
            c = revs.get_commit(cid)
            prev = dict(revs.get_commit(c.parents[0]).tables) if c.parents else {}
            for t in ours:
                if c.tables.get(t) != prev.get(t):
                    raise ConflictError(f"branch {branch!r} moved while committing: commit "
                                        f"{cid.hex()[:12]} also changed table {t!r}; commit again")
            cid = bytes.fromhex(c.parents[0]) if c.parents else None
            if cid is None and base is not None:
                raise ConflictError(f"branch {branch!r} was reset while committing")

    # --- restore ----------------------------------------------------------------------------
    def restore(self, rev: str, *, branch: str | None = None, message: str | None = None) -> str:
        """A new commit on ``branch`` whose tables are exactly those of ``rev`` (no chunk is
        written; history is kept, unlike :meth:`reset`). To undo the change one commit made
        instead, see :meth:`revert`.

        ``rev`` may be a commit no ref reaches any more (one a :meth:`reset` left behind), so
        the objects the new commit references are refreshed first, under a write lease, as a
        commit that reuses objects does (spec §18.4): a concurrent gc keeps them. One ``utime``
        per object; :class:`ConflictError` if one is already gone.
        """
        revs = self.revs
        target = revs.resolve(rev)
        branch = check_ref_name(revs.head_branch if branch is None else branch, "branch")
        c = revs.get_commit(target)
        lease = revs.leases.acquire()
        batch = revs.store.batch()
        try:
            self.refresh_tables(c.tables, batch)
            return self.land(branch, revs.refs.read("heads", branch), c.tables, (),
                             message or f"Restore {target[:12]} ({rev})", {},
                             embfmt_meta={"restored_from": target}, batch=batch, exact=True,
                             reason=f"restore: {rev}")
        finally:
            lease.release()
