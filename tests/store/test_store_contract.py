"""The Store contract (tests/store/store_contract.py) on every store embfmt has: the local
directory, memory, and object storage through obstore on memory://, file:// and a real S3
server on loopback (moto, as its own process: tests/s3server.py)."""

from __future__ import annotations

import importlib.util
import uuid
from pathlib import Path
from typing import Any

import pytest

from embfmt.store import LocalStore, MemoryStore
from embfmt.store._objstore import ObjectStore

from .store_contract import StoreContract

# obstore is in the test extra (CI installs it); a venv without it skips these visibly
needs_obstore = pytest.mark.skipif(importlib.util.find_spec("obstore") is None,
                                   reason="object storage needs obstore: pip install -e '.[test]'")


class TestLocalStore(StoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> LocalStore:
        return LocalStore(str(tmp_path), durable=False)


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def store(self) -> MemoryStore:
        return MemoryStore()


@needs_obstore
class TestObjectStoreMemory(StoreContract):
    @pytest.fixture
    def store(self) -> ObjectStore:
        return ObjectStore(f"memory://contract-{uuid.uuid4().hex}")


@needs_obstore
class TestObjectStoreFile(StoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> ObjectStore:
        return ObjectStore(tmp_path.as_uri())


@needs_obstore
class TestObjectStoreS3(StoreContract):
    @pytest.fixture
    def store(self, s3_url: str, s3_options: dict[str, Any]) -> ObjectStore:
        return ObjectStore(s3_url, s3_options)
