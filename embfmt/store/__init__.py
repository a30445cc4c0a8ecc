"""Object stores: the :class:`Store` interface and its local-filesystem, in-memory and
object-storage (:class:`ObjectStore`: s3://, gs://, az://, memory://, file://) forms."""

from __future__ import annotations

from ._dryrun import DryRunBatch
from ._local import LocalStore, open_regular, read_bounded, real_dir, remove_entries
from ._memory import MemoryStore
from ._objstore import ObjectStore
from .abc import Store, WriteBatch

__all__ = ["Store", "WriteBatch", "LocalStore", "MemoryStore", "ObjectStore", "DryRunBatch", "open_regular", "read_bounded",
           "real_dir", "remove_entries"]
