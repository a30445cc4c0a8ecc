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
import types
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
    from .fingerprint import Fingerprint, Fingerprinter, InclusionProof, fingerprint, verify_proof
    from .diff import Diff, diff
    from .keys import CarryKeys
    from .repo import CommitInfo, GcReport, Repo, VerifyReport
    from .lineage import StampInfo, UseRecord
    from .blame import BlameEntry
    from .stream import StreamWriter
    from .table import TableView
    from .tracker import Tracker
    from .verify import VerifyResult, verify

# The public names are loaded on first access (PEP 562): `embfmt --help` or `embfmt log` must
# not pay for numpy, blake3 or the whole object model they never use (issue 13; measured with
# `python -X importtime`). Each name maps to the submodule that defines it.
_LAZY = {
    "available_backends": "backend", "get_backend": "backend",
    "Fingerprint": "fingerprint", "Fingerprinter": "fingerprint", "InclusionProof": "fingerprint",
    "fingerprint": "fingerprint", "verify_proof": "fingerprint",
    "Diff": "diff", "diff": "diff",
    "CarryKeys": "keys",
    "CommitInfo": "repo", "GcReport": "repo", "Repo": "repo", "VerifyReport": "repo",
    "StampInfo": "lineage", "UseRecord": "lineage",
    "BlameEntry": "blame",
    "StreamWriter": "stream",
    "TableView": "table",
    "Tracker": "tracker",
    "VerifyResult": "verify", "verify": "verify",
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


class _Package(types.ModuleType):
    """Keeps ``embfmt.fingerprint``, ``embfmt.diff`` and ``embfmt.verify`` the functions.

    Three public functions share their name with the submodule that defines them. Importing a
    submodule binds it on its package (``setattr(embfmt, "diff", <module>)``), which an eager
    ``from .diff import diff`` used to overwrite with the function right away; with lazy
    loading the binding can come later (any ``from .diff import ...`` inside embfmt), so the
    function is bound in its place here, as before.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _LAZY.get(name) == name:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

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
