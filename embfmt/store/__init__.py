"""Object stores: the :class:`Store` interface and its local-filesystem and in-memory forms."""

from __future__ import annotations

from ._dryrun import DryRunBatch
from ._local import LocalStore, open_regular, read_bounded, real_dir, remove_entries
from ._memory import MemoryStore
from .abc import Store, WriteBatch

__all__ = ["Store", "WriteBatch", "LocalStore", "MemoryStore", "DryRunBatch", "open_regular", "read_bounded",
           "real_dir", "remove_entries"]
