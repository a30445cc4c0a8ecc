"""Writing a table version row block by row block, in any order, in bounded memory.

:class:`RowStream` is the one path every table write takes: :meth:`Repo.commit` feeds it a
matrix's blocks in row order, :class:`StreamWriter` (``repo.writer(...)``) lets training code
write blocks at any row offset. Rows reach the fingerprinter and the chunk writer strictly in
row order (the fingerprint is defined over the row sequence, spec §4), so rows written ahead
of the next unwritten row wait in a scratch file under the repository's ``tmp/`` directory,
never in memory: what is resident is a few chunks being hashed and encoded plus one byte per
row of each chunk that is only partly written (at most 1/row_bytes of the table, for writes
scattered row by row). The scratch file grows up to the size of the rows written ahead.

Nothing becomes visible until the commit: chunk objects written on the way are unreferenced
until the commit object and the branch update land, so an exception or a killed process leaves
the branch, the log and ``verify`` exactly as they were (``gc`` later removes the orphaned
objects and scratch files, after its grace period). While a write runs, it holds a write lease
(:class:`~embfmt.store.Leases`): ``gc`` removes nothing written after the lease was taken, however long
the writer stays open.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _fs, progress
from ..canonical.dtype import DType
from ..errors import ConflictError, ErrorKind, InputError, IntegrityError
from ..store import real_dir
from .writer import TableWriter

if TYPE_CHECKING:
    from ..backend import Kernels
    from ..objects.table_version import TableVersion
    from ..store import Lease, Leases, Store, WriteBatch
    from .reader import ChunkReader

__all__ = ["RowStream"]

# Rows read back from the scratch file are fed in runs of at most this many bytes: large enough
# that the chunk writer gets many chunks per call (it parallelizes across chunks), small enough
# to keep the resident set bounded: 16 chunks of the canonical ~1 MiB (spec §4), enough runs
# for the writer's thread pool to spread over its workers.
DRAIN_BYTES = 16 << 20

_COMPLETE = True  # coverage marker of a chunk whose rows are all in the scratch file


class RowStream:
    """Rows of one new table version on their way to the chunk writer.

    ``feed`` takes canonical rows in row order; ``write`` takes them at any row offset. Not
    thread-safe by itself: :class:`StreamWriter` serializes calls.
    """

    def __init__(self, store: Store, leases: Leases, reader: ChunkReader, kernels: Kernels, name: str, dt: DType,
                 n_rows: int, dim: int, parent: TableVersion | None, backend: str,
                 batch: WriteBatch | None = None) -> None:
        self.name = name
        self.dtype = dt
        self.n_rows = n_rows
        self.dim = dim
        self.row_bytes = dim * dt.itemsize
        self.t0 = time.perf_counter()
        # Held until close(): gc keeps every object written (or touched) after this moment.
        self._lease: Lease | None = leases.acquire()
        # Every object of this write goes through one batch, synced before the commit's ref
        # moves (spec §18.6); Repo.commit shares one batch among the tables of a commit.
        self.batch = batch if batch is not None else store.batch()
        self.writer = TableWriter(self.batch, reader, kernels, dt, dim, parent, backend=backend)
        self.chunk_rows = self.writer.fp.chunk_rows
        self.cursor = 0  # rows [0, cursor) have gone to the writer
        self._tmp_dir = store.scratch_dir
        self._fd: int | None = None
        self._scratch: str | None = None
        # chunk index -> which of its rows sit in the scratch file (or _COMPLETE)
        self._pending: dict[int, Any] = {}
        self._bar = progress.bar(n_rows * self.row_bytes, f"write {name}")

    # --- in order ------------------------------------------------------------------------------
    def feed(self, rows: np.ndarray) -> None:
        """Canonical rows ``[cursor, cursor + len(rows))``."""
        n = rows.shape[0]
        if self.cursor + n > self.n_rows:
            raise InputError(f"table {self.name!r}: {self.cursor + n} rows written, the table has "
                             f"{self.n_rows}", ErrorKind.SHAPE_MISMATCH)
        self.cursor += n
        self.writer.update_canonical(rows, last=self.cursor == self.n_rows)
        self._bar.update(n * self.row_bytes)

    # --- any order -----------------------------------------------------------------------------
    def write(self, start: int, rows: np.ndarray) -> None:
        """Canonical rows ``[start, start + len(rows))``; rows not yet consumed may be rewritten
        (the last write wins), rows already consumed may not."""
        n = rows.shape[0]
        end = start + n
        if start < 0 or end > self.n_rows:
            raise InputError(f"table {self.name!r}: rows [{start}, {end}) are outside the table's "
                             f"{self.n_rows} rows", ErrorKind.SHAPE_MISMATCH)
        if n == 0:
            return
        if start < self.cursor:
            raise ConflictError(f"table {self.name!r}: rows [{start}, {min(end, self.cursor)}) were "
                                "already written and hashed; each row can be written once after "
                                "all rows before it are in")
        if start == self.cursor:
            # The next rows in order: straight to the writer. Buffered copies of these rows
            # (an earlier write of the same rows) are superseded; rows after ``end`` stay.
            self.feed(rows)
            for c in [c for c in self._pending if (c + 1) * self.chunk_rows <= self.cursor]:
                del self._pending[c]
        else:
            self._spill(start, rows)
        self._drain()

    def _chunk_len(self, c: int) -> int:
        return min(self.chunk_rows, self.n_rows - c * self.chunk_rows)

    def _spill(self, start: int, rows: np.ndarray) -> None:
        # Scratch data is never synced: it is not part of any acknowledged state (a power loss
        # ends the write it belongs to). A refusal (full disk, read-only) is a StorageError.
        if self._fd is None:
            real_dir(self._tmp_dir, "temp directory")
            _fs.makedirs(self._tmp_dir, durable=False)
            self._scratch = os.path.join(self._tmp_dir, f"stream-{uuid.uuid4().hex}.rows")
            self._fd = _fs.create(self._scratch, 0o600, flags=os.O_RDWR)
        data = np.ascontiguousarray(rows)
        _fs.pwrite(self._fd, memoryview(data).cast("B"), start * self.row_bytes, self._scratch)  # type: ignore[arg-type]  # __buffer__ (3.12+ stubs); _scratch is set above
        cr = self.chunk_rows
        end = start + rows.shape[0]
        for c in range(start // cr, (end - 1) // cr + 1):
            cov = self._pending.get(c)
            if cov is _COMPLETE:
                continue
            if cov is None:
                cov = np.zeros(self._chunk_len(c), dtype=bool)
            cov[max(start, c * cr) - c * cr:min(end, (c + 1) * cr) - c * cr] = True
            self._pending[c] = _COMPLETE if cov.all() else cov

    def _drain(self) -> None:
        """Feed every buffered row that is now next in order."""
        cr = self.chunk_rows
        while self.cursor < self.n_rows:
            c = self.cursor // cr
            cov = self._pending.get(c)
            if cov is None:
                return
            lo = self.cursor - c * cr
            if cov is _COMPLETE:
                stop = c * cr + self._chunk_len(c)
                del self._pending[c]
                # Extend the run over following complete chunks, up to DRAIN_BYTES.
                while (stop < self.n_rows and self._pending.get(stop // cr) is _COMPLETE
                       and (stop - self.cursor + cr) * self.row_bytes <= DRAIN_BYTES):
                    del self._pending[stop // cr]
                    stop = min(self.n_rows, stop + cr)
            else:
                gap = np.flatnonzero(~cov[lo:])
                k = int(gap[0]) if len(gap) else len(cov) - lo
                if k == 0:
                    return
                stop = self.cursor + k
            self.feed(self._read(self.cursor, stop))

    def _read(self, start: int, stop: int) -> np.ndarray:
        assert self._fd is not None
        buf = np.empty((stop - start, self.row_bytes), dtype=np.uint8)
        view = memoryview(buf).cast("B")  # type: ignore[arg-type]  # numpy's stubs: ndarray.__buffer__ on 3.12+ only
        off = start * self.row_bytes
        while len(view):
            k = os.preadv(self._fd, [view], off)
            if k <= 0:  # the file was truncated under the writer: rows spilled to it are gone
                raise IntegrityError(
                    f"table {self.name!r}: the scratch file {self._scratch} holding rows written "
                    f"ahead is short: reading bytes [{start * self.row_bytes}, {stop * self.row_bytes}) "
                    f"of it stopped at byte {off} (truncated by another process?); nothing was "
                    "committed: write the table again",
                    ErrorKind.TRUNCATED)
            view, off = view[k:], off + k
        return buf

    def missing(self) -> tuple[int, int] | None:
        """The first range of rows never written, or None when every row is in."""
        if self.cursor >= self.n_rows:
            return None
        cr = self.chunk_rows
        r = self.cursor
        while r < self.n_rows:
            c = r // cr
            cov = self._pending.get(c)
            if cov is _COMPLETE:
                break
            if cov is not None:
                hit = np.flatnonzero(cov[r - c * cr:])
                if len(hit):
                    r += int(hit[0])
                    break
            r = min(self.n_rows, (c + 1) * cr)
        return self.cursor, r

    def close(self) -> None:
        """Remove the scratch file and release the write lease (idempotent). The caller
        references the written objects (commits) before closing, or abandons them to gc."""
        self._bar.close()
        # Objects still in flight are linked (or fail) before the lease that protects them goes.
        self.batch.abandon()
        if self._lease is not None:
            self._lease.release()
            self._lease = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._scratch is not None:
            _fs.discard(self._scratch)  # never through a tmp/ swapped for a link
            self._scratch = None
        self._pending.clear()
