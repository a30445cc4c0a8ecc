"""embfmt: change tracking for embedding tables.

Canonical fingerprints, versioned delta storage and row-level diffs of embedding matrices.
Importing embfmt imports neither Numba nor CuPy; kernels load on first use.

Examples
--------
>>> import numpy as np, embfmt
>>> fp = embfmt.fingerprint(np.eye(4, dtype=np.float32))
>>> fp.root.startswith("emb1:b3:")
True
"""

from __future__ import annotations

from .backend import available_backends, get_backend
from .errors import (
    BackendUnavailableError,
    ConflictError,
    EmbfmtError,
    ErrorKind,
    FormatError,
    InputError,
    IntegrityError,
    NotFoundError,
)
from .fingerprint import Fingerprint, Fingerprinter, InclusionProof, fingerprint, verify_proof
from .diff import Diff, diff
from .repo import CommitInfo, GcReport, Repo, VerifyReport
from .lineage import StampInfo, UseRecord
from .blame import BlameEntry
from .stream import StreamWriter
from .table import TableView
from .tracker import Tracker
from .verify import VerifyResult, verify

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "fingerprint",
    "Fingerprint",
    "Fingerprinter",
    "InclusionProof",
    "verify_proof",
    "Repo",
    "StampInfo",
    "UseRecord",
    "BlameEntry",
    "StreamWriter",
    "Tracker",
    "diff",
    "verify",
    "VerifyResult",
    "Diff",
    "TableView",
    "CommitInfo",
    "VerifyReport",
    "GcReport",
    "available_backends",
    "get_backend",
    "EmbfmtError",
    "ErrorKind",
    "InputError",
    "FormatError",
    "IntegrityError",
    "NotFoundError",
    "ConflictError",
    "BackendUnavailableError",
]
