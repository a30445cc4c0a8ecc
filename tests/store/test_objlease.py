"""Write leases and collector markers on object storage (spec/objstore-v1.md §6), on a real S3
server process and on memory://: what a collector sees, stale leases, and the reuse order that
keeps a reused object from a concurrent collector."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

pytest.importorskip("obstore", reason="object storage needs obstore: pip install -e '.[test]'")

from embfmt.errors import ConflictError, ErrorKind  # noqa: E402
from embfmt.store._objlease import GcMarker, ObjectLease, live_markers, scan_leases  # noqa: E402
from embfmt.store._objstore import ObjectStore  # noqa: E402


def test_collector_sees_floor_and_reused_ids(cas_store: ObjectStore) -> None:
    st = cas_store
    st.put(b"\1" * 32, b"old object")
    lease = ObjectLease(st)
    assert lease.reuse([b"\1" * 32, b"\2" * 32]) == [b"\2" * 32]  # the second is not stored
    with GcMarker(st) as gc:
        scan = scan_leases(st, gc.now)
    assert scan.live == 1 and scan.stale == 0
    assert scan.protected == {b"\1" * 32, b"\2" * 32}
    assert scan.floor is not None and scan.floor <= lease.since and lease.since - scan.floor <= 1.0
    lease.release()
    with GcMarker(st) as gc:
        scan = scan_leases(st, gc.now)
    assert scan.live == 0 and scan.floor is None and not scan.protected
    assert list(st.list_keys("tmp/")) == []


def test_a_stale_lease_is_removed_and_its_writer_stops(cas_store: ObjectStore) -> None:
    st = cas_store
    lease = ObjectLease(st, ttl=1)
    time.sleep(2.2)  # S3's Last-Modified has whole seconds
    with GcMarker(st) as gc:
        scan = scan_leases(st, gc.now)
    assert scan.stale == 1 and scan.live == 0
    with pytest.raises(ConflictError) as e:  # the writer finds out before it moves a ref
        lease.confirm()
    assert e.value.kind == ErrorKind.CONFLICT


def test_reuse_waits_for_a_running_collector(cas_store: ObjectStore) -> None:
    st = cas_store
    st.put(b"\3" * 32, b"x")
    gc = GcMarker(st)
    lease = ObjectLease(st)
    lease.poll_s = 0.05
    done: list[Any] = []
    t = threading.Thread(target=lambda: done.append(lease.reuse([b"\3" * 32])))
    t.start()
    time.sleep(0.6)
    assert not done  # waiting: a collector that read the leases before may delete the object
    assert b"\3" * 32 in scan_leases(st, gc.now).protected  # but its id is in the lease already
    gc.release()
    t.join(10)
    assert done == [[]]
    lease.release()


def test_reuse_after_a_collector_deleted_the_object_reports_it_gone(cas_store: ObjectStore) -> None:
    """The interleaving the order exists for: the collector reads the leases before the writer
    names the object, and deletes it while the writer waits; the writer then finds it gone."""
    st = cas_store
    oid = b"\4" * 32
    st.put(oid, b"reused")
    gc = GcMarker(st)
    assert scan_leases(st, gc.now).protected == set()  # read before the writer's lease
    lease = ObjectLease(st)
    lease.poll_s = 0.05
    out: list[list[bytes]] = []
    t = threading.Thread(target=lambda: out.append(lease.reuse([oid])))
    t.start()
    time.sleep(0.3)
    st.delete(oid)  # the collector's deletion, its scan having missed the lease
    gc.release()
    t.join(10)
    assert out == [[oid]]  # gone: the writer writes it afresh instead of referencing it
    lease.release()


def test_a_stale_marker_does_not_block_writers(cas_store: ObjectStore) -> None:
    st = cas_store
    GcMarker(st, ttl=1)  # a collector that died (never released)
    time.sleep(2.2)
    lease = ObjectLease(st)
    st.put(b"\5" * 32, b"x")
    assert lease.reuse([b"\5" * 32], wait_s=5) == []
    assert live_markers(st, lease.since) == []
    lease.release()


def test_a_collector_stops_when_its_marker_is_overdue(cas_store: ObjectStore) -> None:
    st = cas_store
    clock = [0.0]
    gc = GcMarker(st, ttl=60, clock=lambda: clock[0])
    clock[0] = 25.0
    gc.check()  # due for a heartbeat: rewritten
    clock[0] = 25.0 + 31.0
    with pytest.raises(ConflictError):
        gc.check()
    gc.release()


def test_a_batch_names_what_it_reuses_in_the_live_leases(cas_store: ObjectStore) -> None:
    """ObjectBatch.touch cannot refresh an object: sync (before the ref move) names the reused
    ids in this process's live leases, where a collector sees them."""
    st = cas_store
    st.put(b"\6" * 32, b"reused")
    with ObjectLease(st):
        b = st.batch()
        assert b.touch(b"\6" * 32) and not b.touch(b"\7" * 32)
        b.sync()
        with GcMarker(st) as gc:
            assert scan_leases(st, gc.now).protected == {b"\6" * 32}
    with GcMarker(st) as gc:  # released: protects nothing any more
        assert scan_leases(st, gc.now).protected == set()


def test_a_batch_whose_reused_object_was_collected_fails_before_the_ref_moves(cas_store: ObjectStore) -> None:
    st = cas_store
    st.put(b"\10" * 32, b"reused")
    with ObjectLease(st):
        b = st.batch()
        assert b.touch(b"\10" * 32)
        st.delete(b"\10" * 32)  # a collector that read the leases before the batch named it
        with pytest.raises(ConflictError) as e:
            b.sync()
        assert e.value.kind == ErrorKind.CONFLICT and (b"\10" * 32).hex() in str(e.value)


def test_store_touch_outside_a_batch_is_protected_at_the_flush(cas_store: ObjectStore) -> None:
    """A chunk writer reuses through Store.touch, not the batch: the flush before the ref move
    covers those ids too."""
    st = cas_store
    st.put(b"\11" * 32, b"chunk")
    with ObjectLease(st):
        assert st.touch(b"\11" * 32)
        with GcMarker(st) as gc:
            assert scan_leases(st, gc.now).protected == set()  # recorded, not yet named
        st.flush_reuses()
        with GcMarker(st) as gc:
            assert scan_leases(st, gc.now).protected == {b"\11" * 32}
    assert st.touch(b"\11" * 32)  # no live lease: nothing to record
    st.flush_reuses()
