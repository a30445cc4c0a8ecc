"""Repository objects as bytes (spec §12-§17): chunks, table versions, keys, commits, change records. No I/O."""
