"""Object stores: the :class:`Store` interface and its local-filesystem, in-memory and
object-storage (:class:`ObjectStore`: s3://, gs://, az://, memory://, file://) forms."""

from __future__ import annotations

from ._dryrun import DryRunBatch
from ._lease import LeaseDir, WriteLease
from ._local import LocalStore, open_regular, read_bounded, real_dir, remove_entries
from ._memory import MemoryLeases, MemoryStore
from ._objrefs import ObjectRefs
from ._objstore import ObjectStore
from .abc import Lease, Leases, Store, WriteBatch

__all__ = ["Store", "WriteBatch", "Lease", "Leases", "LeaseDir", "WriteLease", "LocalStore", "MemoryStore",
           "MemoryLeases", "ObjectStore", "ObjectRefs", "DryRunBatch", "open_regular", "read_bounded",
           "real_dir", "remove_entries"]
