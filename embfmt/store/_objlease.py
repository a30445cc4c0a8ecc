"""Write leases and collector markers on object storage (spec/objstore-v1.md §6).

A local repository keeps gc away from a running writer with a ``flock``ed lease file and by
refreshing the modification time of objects the writer reuses (embfmt/store/_lease.py, spec §18.4).
Object storage has neither locks nor a way to refresh an object's age without rewriting it
(a copy onto itself costs the object's size per reuse and still races with a deletion), so
here a lease is an object, ``tmp/lease-<32 hex>``, that

- marks when its writer started (``since``: the server's Last-Modified of its first version):
  gc removes no object newer than the oldest live lease's ``since``;
- lists the ids the writer reuses (``reuses``): gc removes none of them;
- stays live while its owner rewrites it (a heartbeat at least every ``ttl / 3``): a lease not
  rewritten for ``ttl`` seconds is stale (its writer died) and gc removes it.

A collector announces itself with a marker ``tmp/gc-<32 hex>`` before it reads the leases; a
writer that reuses an object writes the id into its lease first, then waits while a live marker
exists, then checks that the object is still there. Whichever order the two run in, a reused
object is either protected or found gone (the argument is in the spec). Every time compared is
the server's: a client's clock is only used to pace its own heartbeats.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..errors import ConflictError, ErrorKind, FormatError
from ._objstore import ObjectStore
from .abc import Leases

__all__ = ["ObjectLease", "ObjectLeases", "GcMarker", "LeaseScan", "scan_leases", "live_markers",
           "LEASE_PREFIX", "MARKER_PREFIX", "LEASE_TTL_S", "MARKER_TTL_S"]

LEASE_PREFIX = "tmp/lease-"
MARKER_PREFIX = "tmp/gc-"
#: a lease not rewritten for this long is stale (its writer is gone)
LEASE_TTL_S = 600.0
#: a collector's marker not rewritten for this long is stale
MARKER_TTL_S = 3600.0
#: the marker of a gc run through the Leases interface (rewritten by each deletion's check):
#: shorter, so that writers waiting on a gc that failed half way wait minutes, not an hour
COLLECTION_TTL_S = 300.0
# a lease lists every id its writer reuses: a bound keeps a hostile one from exhausting memory
MAX_LEASE_BYTES = 1 << 26
# how often a waiting writer rewrites its lease (moving the server's time on) and looks again
POLL_S = 1.0


def _body(**members: object) -> bytes:
    return json.dumps(members, sort_keys=True, separators=(",", ":")).encode()


def _parse(data: bytes, key: str) -> dict[str, object]:
    try:
        doc = json.loads(data)
        if not isinstance(doc, dict):
            raise ValueError("not an object")
        return doc
    except ValueError as e:  # UnicodeDecodeError is a ValueError too
        raise FormatError(f"{key} is not a lease or marker ({e})", ErrorKind.BAD_FILE) from None


def _server_now(store: ObjectStore, key: str) -> float:
    t = store.key_mtime(key)
    if t is None:
        raise ConflictError(f"{key} was removed while its owner held it", ErrorKind.CONFLICT)
    return t


class _Owned:
    """A key this process created and rewrites by compare-and-swap on its own last ETag."""

    def __init__(self, store: ObjectStore, prefix: str, ttl: float, clock: Callable[[], float]) -> None:
        self.store = store
        self.ttl = float(ttl)
        self.key = f"{prefix}{uuid.uuid4().hex}"
        self._clock = clock
        self._etag = ""
        self._beat = 0.0
        self.released = False

    def _write(self, body: bytes) -> None:
        try:
            self._etag = self.store.swap_key(self.key, body, self._etag)
        except ConflictError:
            raise ConflictError(f"{self.key} was removed or replaced by another process (judged stale: "
                                f"not rewritten within its {self.ttl:.0f} s); this process stops here, "
                                "having moved no ref", ErrorKind.CONFLICT) from None
        self._beat = self._clock()

    def release(self) -> None:
        """Remove the key (idempotent)."""
        if not self.released:
            self.released = True
            self.store.delete_key(self.key)

    def __enter__(self):  # type: ignore[no-untyped-def]
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class ObjectLease(_Owned):
    """The write lease of one table write on object storage; create it before the write's first
    object, :meth:`release` it once the commit landed or gave up."""

    def __init__(self, store: ObjectStore, ttl: float = LEASE_TTL_S, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(store, LEASE_PREFIX, ttl, clock)
        self.reuses: set[bytes] = set()
        self.poll_s = POLL_S
        self._etag = store.create_key(self.key, _body(reuses=[], since=0, ttl=self.ttl))
        self._beat = clock()
        #: the server's time when the lease was first written: gc keeps every object newer
        self.since = _server_now(store, self.key)
        self._write(self._doc())
        store.live_leases.add(self)

    def _doc(self) -> bytes:
        return _body(reuses=sorted(o.hex() for o in self.reuses), since=self.since, ttl=self.ttl)

    def heartbeat(self, force: bool = False) -> None:
        """Rewrite the lease if a third of its ttl passed since the last write (or ``force``);
        raises :class:`ConflictError` when a collector removed it as stale."""
        if force or self._clock() - self._beat >= self.ttl / 3:
            self._write(self._doc())

    def reuse(self, oids: Iterable[bytes], *, wait_s: float = MARKER_TTL_S) -> list[bytes]:
        """Protect existing objects this write will reference instead of writing them; returns
        those among ``oids`` that are gone (the caller writes them afresh, or fails with
        ``conflict`` where it cannot). In the order spec/objstore-v1.md §6 requires: name them in
        the lease, wait while a collector's live marker exists, then check each is stored."""
        oids = list(dict.fromkeys(oids))
        new = [o for o in oids if o not in self.reuses]
        if new:
            self.reuses.update(new)
            self._write(self._doc())
            self._wait_for_collectors(wait_s)
        else:
            self.heartbeat()
        return [o for o in oids if not self.store.has(o)]

    def protect(self, oids: Iterable[bytes], *, wait_s: float = MARKER_TTL_S) -> None:
        """Steps 1-2 of :meth:`reuse` for ids a batch reuses (the batch checks step 3 itself):
        name them in the lease (a rewrite: also a heartbeat), then wait while a collector runs."""
        self.reuses.update(oids)
        self._write(self._doc())
        self._wait_for_collectors(wait_s)

    def release(self) -> None:
        self.store.live_leases.discard(self)
        super().release()

    def confirm(self) -> None:
        """Rewrite the lease now; a writer calls this right before its ref move (spec §6): a
        lease a collector judged stale fails here with :class:`ConflictError`, before a ref
        names objects that gc may already have removed."""
        self._write(self._doc())

    def _wait_for_collectors(self, timeout_s: float) -> None:
        """Return once no collector's marker is live, in server time (the lease's own
        Last-Modified, moved on by rewriting the lease while waiting); :class:`ConflictError`
        (``locked``) after ``timeout_s``."""
        deadline = self._clock() + timeout_s
        while True:
            if not live_markers(self.store, _server_now(self.store, self.key)):
                return
            if self._clock() > deadline:
                raise ConflictError(f"a garbage collection of {self.store.url} is still running after "
                                    f"{timeout_s:.0f} s; retry later", ErrorKind.LOCKED)
            time.sleep(self.poll_s)
            self._write(self._doc())


class GcMarker(_Owned):
    """A collector's marker: created before it reads the leases, removed after its last
    deletion; :attr:`now` is the server's time at its creation."""

    def __init__(self, store: ObjectStore, ttl: float = MARKER_TTL_S, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(store, MARKER_PREFIX, ttl, clock)
        self._etag = store.create_key(self.key, _body(ttl=self.ttl))
        self._beat = clock()
        self.now = _server_now(store, self.key)

    def check(self) -> None:
        """Call before each deletion (or batch of them): rewrites the marker when due, and
        raises :class:`ConflictError` when more than half its ttl passed since its last
        successful write, after which writers may have judged it stale."""
        if self._clock() - self._beat > self.ttl / 2:
            raise ConflictError(f"collector marker {self.key} was not rewritten for more than half its "
                                f"{self.ttl:.0f} s; stopping before deleting anything more", ErrorKind.CONFLICT)
        if self._clock() - self._beat >= self.ttl / 3:
            self._write(_body(ttl=self.ttl))


@dataclass
class LeaseScan:
    """What live leases protect, as a collector sees them at server time ``now``."""

    now: float
    #: no object whose Last-Modified is later than this may be removed (None: no live lease)
    floor: float | None = None
    #: ids live leases reuse: never removed
    protected: set[bytes] = field(default_factory=set)
    live: int = 0
    stale: int = 0


def _read_owned(store: ObjectStore, key: str) -> tuple[dict[str, object], float, str] | None:
    got = store.read_key(key, MAX_LEASE_BYTES)
    t = store.key_mtime(key)
    if got is None or t is None:
        return None
    return _parse(got.data, key), t, got.etag


def _ttl(doc: dict[str, object], default: float) -> float:
    t = doc.get("ttl")
    return float(t) if isinstance(t, (int, float)) and not isinstance(t, bool) and t > 0 else default


def scan_leases(store: ObjectStore, now: float, *, remove_stale: bool = True) -> LeaseScan:
    """Step 2 of the collector (spec/objstore-v1.md §6): the floor and the protected ids of the
    live leases; stale ones are removed (unless ``remove_stale`` is False). A lease that does
    not parse is treated as live since ``now`` protecting nothing it names: gc then removes
    nothing newer than now, which is safe."""
    scan = LeaseScan(now)
    for key in list(store.list_keys(LEASE_PREFIX)):
        try:
            got = _read_owned(store, key)
        except FormatError:
            got = None
            scan.live += 1
            scan.floor = now - 1 if scan.floor is None else min(scan.floor, now - 1)
            continue
        if got is None:
            continue  # released meanwhile
        doc, mtime, _ = got
        if now - mtime > _ttl(doc, LEASE_TTL_S):
            scan.stale += 1
            if remove_stale:
                store.delete_key(key)
            continue
        scan.live += 1
        since = doc.get("since")
        # whole-second Last-Modified on S3: one second of slack, as spec §18.4 rule 2
        start = (float(since) if isinstance(since, (int, float)) and since else mtime) - 1.0
        scan.floor = start if scan.floor is None else min(scan.floor, start)
        reuses = doc.get("reuses")
        for h in reuses if isinstance(reuses, list) else []:
            try:
                scan.protected.add(bytes.fromhex(h))
            except (TypeError, ValueError):
                continue
    return scan


def live_markers(store: ObjectStore, now: float, *, exclude: str = "") -> list[str]:
    """Keys of collectors' markers that are live at server time ``now``."""
    out = []
    for key in store.list_keys(MARKER_PREFIX):
        if key == exclude:
            continue
        try:
            got = _read_owned(store, key)
        except FormatError:
            out.append(key)  # unreadable: assume a collector runs
            continue
        if got is not None and now - got[1] <= _ttl(got[0], MARKER_TTL_S):
            out.append(key)
    return out


class ObjectLeases(Leases):
    """The write leases of a repository on object storage, as the :class:`Leases` interface
    gives them to a Repo: :meth:`acquire` is an :class:`ObjectLease`, :meth:`scan` is a
    collector's steps 1-2 (its marker, then the leases). Objects writers reuse reach the
    leases through ``ObjectStore.touch`` and ``flush_reuses`` (a batch's sync, a ref move); the
    ids live leases protect reach gc's deletions through ``ObjectStore.begin_collection``."""

    def __init__(self, store: ObjectStore, ttl: float = LEASE_TTL_S) -> None:
        self.store = store
        self.ttl = ttl

    def acquire(self) -> ObjectLease:
        return ObjectLease(self.store, self.ttl)

    def scan(self, *, remove_stale: bool = True) -> tuple[float | None, int, int]:
        """Steps 1-2 of a collector. With ``remove_stale`` (a gc), its marker stays and the
        protected ids go to the store (``begin_collection``) until the gc's
        ``sync_deletions``; without (a status report), the marker goes at once."""
        gc = GcMarker(self.store, ttl=COLLECTION_TTL_S)
        try:
            s = scan_leases(self.store, gc.now, remove_stale=remove_stale)
        except BaseException:
            gc.release()
            raise
        if remove_stale:
            self.store.begin_collection(gc, s.protected)
        else:
            gc.release()
        # the local form: the oldest live lease's creation time (callers subtract their second)
        return (None if s.floor is None else s.floor + 1.0), s.live, s.stale
