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

import sys
from typing import TYPE_CHECKING, Any

from .errors import (
    BackendUnavailableError,
    ConflictError,
    EmbfmtError,
    ErrorKind,
    FormatError,
    InputError,
    IntegrityError,
    NotFoundError,
    StorageError,
)

if TYPE_CHECKING:
    from .backend import available_backends, get_backend
    from .canonical.fingerprint import Fingerprint, Fingerprinter, InclusionProof, fingerprint, verify_proof
    from .compare.diff import Diff, diff
    from .objects.keys import CarryKeys
    from .repo import CommitInfo, GcReport, Repo, VerifyReport
    from .history.lineage import UseRecord
    from .objects.stamp import StampInfo
    from .compare.blame import BlameEntry
    from .history.stream_writer import StreamWriter
    from .history.table import TableView
    from .history.tracker import Tracker
    from .compare.verify_array import VerifyResult, verify

# The public names are loaded on first access (PEP 562): `embfmt --help` or `embfmt log` must
# not pay for numpy, blake3 or the whole object model they never use (issue 13; measured with
# `python -X importtime`). Each name maps to the submodule that defines it.
_LAZY = {
    "available_backends": "backend", "get_backend": "backend",
    "Fingerprint": "canonical.fingerprint", "Fingerprinter": "canonical.fingerprint",
    "InclusionProof": "canonical.fingerprint", "fingerprint": "canonical.fingerprint",
    "verify_proof": "canonical.fingerprint",
    "Diff": "compare.diff", "diff": "compare.diff",
    "CarryKeys": "objects.keys",
    "CommitInfo": "repo", "GcReport": "repo", "Repo": "repo", "VerifyReport": "repo",
    "StampInfo": "objects.stamp", "UseRecord": "history.lineage",
    "BlameEntry": "compare.blame",
    "StreamWriter": "history.stream_writer",
    "TableView": "history.table",
    "Tracker": "history.tracker",
    "VerifyResult": "compare.verify_array", "verify": "compare.verify_array",
}


def __getattr__(name: str) -> Any:
    import importlib
    import importlib.util

    mod = _LAZY.get(name)
    if mod is not None:
        value = getattr(importlib.import_module(f"{__name__}.{mod}"), name)
        setattr(sys.modules[__name__], name, value)
        return value
    # `import embfmt; embfmt.repo.X` worked when every submodule was imported eagerly
    if not name.startswith("__") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


from ._version import __version__

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
    "CarryKeys",
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
    "StorageError",
]
