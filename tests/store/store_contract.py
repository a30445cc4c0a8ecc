"""The Store contract (embfmt/store/abc.py) as a reusable test class.

A test module subclasses :class:`StoreContract` (its name starting with ``Test``) and gives a
``store`` fixture; every test here then runs against that store. tests/store/test_store_contract.py
does so for LocalStore, MemoryStore and ObjectStore on memory://, file:// and a real S3 server.
"""

from __future__ import annotations

import time

import blake3
import pytest

from embfmt.errors import ErrorKind, FormatError, NotFoundError
from embfmt.store import Store


def oid(data: bytes) -> bytes:
    return blake3.blake3(data).digest()


class StoreContract:
    """Tests every Store must pass; subclasses provide the ``store`` fixture."""

    def test_put_then_get(self, store: Store) -> None:
        data = b"embfmt" * 100
        assert store.put(oid(data), data) is True
        assert store.get(oid(data)) == data
        assert store.has(oid(data)) and store.size(oid(data)) == len(data)

    def test_put_is_idempotent_and_never_rewrites(self, store: Store) -> None:
        k = oid(b"first")
        assert store.put(k, b"first") is True
        # a second put under the same id (another encoding of the same content, in a real
        # repository) leaves the stored bytes untouched and says it did nothing
        assert store.put(k, b"second, longer") is False
        assert store.get(k) == b"first"

    def test_put_buffers_are_concatenated(self, store: Store) -> None:
        parts = [b"ab", memoryview(b"cd"), bytearray(b"ef")]
        assert store.put(oid(b"abcdef"), parts) is True  # type: ignore[arg-type]
        assert store.get(oid(b"abcdef")) == b"abcdef"

    def test_empty_object(self, store: Store) -> None:
        assert store.put(oid(b""), b"") is True
        assert store.get(oid(b"")) == b"" and store.size(oid(b"")) == 0 and store.has(oid(b""))

    def test_missing(self, store: Store) -> None:
        k = oid(b"never stored")
        assert not store.has(k)
        with pytest.raises(NotFoundError):
            store.get(k)
        with pytest.raises(NotFoundError):
            store.size(k)
        with pytest.raises(NotFoundError):
            store.get_range(k, 0, 4)
        assert store.delete(k) == 0
        assert store.touch(k) is False

    def test_get_is_bounded(self, store: Store) -> None:
        data = bytes(range(256)) * 64  # 16 KiB
        store.put(oid(data), data)
        assert store.get(oid(data), max_size=len(data)) == data
        with pytest.raises(FormatError) as e:
            store.get(oid(data), max_size=len(data) - 1)
        assert e.value.kind == ErrorKind.BAD_OBJECT

    def test_get_range(self, store: Store) -> None:
        data = bytes(range(100))
        store.put(oid(data), data)
        assert store.get_range(oid(data), 10, 5) == data[10:15]
        assert store.get_range(oid(data), 95, 50) == data[95:]  # short at the end, like pread
        assert store.get_range(oid(data), 100, 5) == b""
        assert store.get_range(oid(data), 200, 5) == b""
        assert store.get_prefix(oid(data), 8) == (data[:8], 100)
        assert store.get_prefix(oid(data), 1000) == (data, 100)

    def test_delete(self, store: Store) -> None:
        store.put(oid(b"x" * 10), b"x" * 10)
        assert store.delete(oid(b"x" * 10)) == 10
        assert not store.has(oid(b"x" * 10))
        assert store.delete(oid(b"x" * 10)) == 0

    def test_iter_lists_exactly_the_stored_ids(self, store: Store) -> None:
        ids = set()
        for i in range(40):
            d = b"obj %d" % i
            store.put(oid(d), d)
            ids.add(oid(d))
        assert set(store.iter()) == ids
        store.delete(oid(b"obj 3"))
        assert set(store.iter()) == ids - {oid(b"obj 3")}

    def test_batch_stores_everything_by_sync(self, store: Store) -> None:
        store.put(oid(b"old"), b"old")
        b = store.batch()
        new = [b"batch %d" % i * 1000 for i in range(50)]
        for d in new:
            b.put(oid(d), d)
        b.put(oid(b"old"), b"old")
        b.sync()
        for d in new:
            assert store.get(oid(d)) == d
        assert sorted(b.published) == sorted(oid(d) for d in new)  # not the existing one
        assert b.touch(oid(b"old")) and not b.touch(oid(b"absent"))

    def test_batch_keeps_its_own_copy_of_the_buffer(self, store: Store) -> None:
        buf = bytearray(b"A" * 4096)
        b = store.batch()
        b.put(oid(bytes(buf)), buf)  # type: ignore[arg-type]
        want = bytes(buf)
        buf[:] = b"B" * 4096  # a writer reuses its buffer as soon as put returns
        b.sync()
        assert store.get(oid(want)) == want

    def test_mtime_and_delete_if_older(self, store: Store) -> None:
        store.put(oid(b"aged"), b"aged")
        t = store.mtime(oid(b"aged"))
        assert t == 0.0 or abs(t - time.time()) < 120  # the server's clock, or unknown
        assert store.delete_if_older(oid(b"aged"), time.time() - 3600) == 0  # young: kept
        assert store.has(oid(b"aged"))
        assert store.delete_if_older(oid(b"aged"), time.time() + 3600) == 4  # old enough
        assert not store.has(oid(b"aged"))
        assert store.delete_if_older(oid(b"aged"), time.time() + 3600) == 0

    def test_touch(self, store: Store) -> None:
        store.put(oid(b"t"), b"t")
        assert store.touch(oid(b"t")) is True
        if store.touch_refreshes:  # the age gc looks at moves on; a young object survives
            before = store.mtime(oid(b"t"))
            time.sleep(0.05)
            cutoff = time.time()
            time.sleep(0.05)
            store.touch(oid(b"t"))
            assert store.mtime(oid(b"t")) >= before
            assert store.delete_if_older(oid(b"t"), cutoff) == 0 and store.has(oid(b"t"))
