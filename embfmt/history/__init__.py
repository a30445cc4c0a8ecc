"""A repository's history on a store: refs, reflog, leases, reading and writing table versions, lineage."""
