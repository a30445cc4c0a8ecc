"""The embfmt error tree.

Every error raised on purpose by embfmt is an :class:`EmbfmtError`. Subclasses are grouped by
what the caller does about them, and each instance carries a stable :class:`ErrorKind` string
that scripts and the CLI's ``--json`` output can match on.

Examples
--------
>>> import numpy as np, embfmt
>>> try:
...     embfmt.fingerprint(np.zeros(3, dtype=np.float32))
... except embfmt.InputError as e:
...     print(e.kind)
not-a-matrix
"""

from __future__ import annotations

from enum import Enum

__all__ = [
    "ErrorKind",
    "EmbfmtError",
    "InputError",
    "FormatError",
    "IntegrityError",
    "NotFoundError",
    "ConflictError",
    "BackendUnavailableError",
    "StorageError",
]


class ErrorKind(str, Enum):
    """Stable machine-readable error kinds. Append-only: a kind is never renamed or reused."""

    def __str__(self) -> str:  # print(e.kind) shows the stable string, not the Python name
        return str(self.value)

    # InputError: the caller passed something embfmt does not accept.
    NOT_A_MATRIX = "not-a-matrix"
    UNSUPPORTED_DTYPE = "unsupported-dtype"
    ZERO_DIM = "zero-dim"
    SHAPE_MISMATCH = "shape-mismatch"
    DTYPE_MISMATCH = "dtype-mismatch"
    BAD_ARGUMENT = "bad-argument"
    TOO_LARGE = "too-large"
    DUPLICATE_KEY = "duplicate-key"
    BAD_KEYS = "bad-keys"
    BAD_REF_NAME = "bad-ref-name"
    BAD_REVISION = "bad-revision"
    NOT_A_REPOSITORY = "not-a-repository"
    MISSING_EXTRA = "missing-extra"
    # FormatError: bytes that do not follow the spec.
    BAD_MAGIC = "bad-magic"
    UNSUPPORTED_VERSION = "unsupported-version"
    BAD_HEADER = "bad-header"
    TRUNCATED = "truncated"
    BAD_FINGERPRINT = "bad-fingerprint"
    BAD_PROOF = "bad-proof"
    BAD_FILE = "bad-file"
    BAD_OBJECT = "bad-object"
    BAD_REF = "bad-ref"
    BAD_STAMP = "bad-stamp"
    # IntegrityError: bytes that parse but do not hash to what they claim.
    DIGEST_MISMATCH = "digest-mismatch"
    # NotFoundError
    NOT_FOUND = "not-found"
    MISSING_OBJECT = "missing-object"
    AMBIGUOUS_REVISION = "ambiguous-revision"
    # ConflictError
    CONFLICT = "conflict"
    IDENTITY_MISMATCH = "identity-mismatch"
    REF_EXISTS = "ref-exists"
    LOCKED = "locked"
    # BackendUnavailableError
    BACKEND_UNAVAILABLE = "backend-unavailable"
    # ConflictError: revert found rows changed since the commit it undoes (``.conflicts``).
    REVERT_CONFLICT = "revert-conflict"
    # StorageError
    READ_ONLY_REPOSITORY = "read-only-repository"
    NO_SPACE = "no-space"
    # ConflictError: deleting the branch HEAD names.
    BRANCH_IN_USE = "branch-in-use"
    # ConflictError: deleting a branch whose tip no other ref reaches (force to delete anyway).
    NOT_MERGED = "not-merged"
    # InputError: a new version of a keyed table was given no keys and no explicit carry or
    # drop (spec §18.1): the rows' identity is unknown, so the parent's keys cannot follow them.
    KEYS_REQUIRED = "keys-required"
    # FormatError: a symbolic link, FIFO, device or directory where the repository keeps a
    # regular file (never followed or opened for reading: it could hang or lead outside).
    NOT_A_FILE = "not-a-file"
    # ConflictError: a write or delete refused because its path leads out of the repository
    # through a symbolic link.
    UNSAFE_PATH = "unsafe-path"
    # InputError: a storage URL with a user, password or query string in it (credentials belong
    # in storage_options or the environment; a URL ends up in logs and shell history).
    CREDENTIALS_IN_URL = "credentials-in-url"
    # StorageError: object storage refused the credentials (401/403).
    ACCESS_DENIED = "access-denied"
    # StorageError: object storage could not be reached, or failed after its retries.
    STORAGE_UNAVAILABLE = "storage-unavailable"
    # StorageError: the store lacks an operation the repository needs (e.g. compare-and-swap).
    UNSUPPORTED_BY_STORE = "unsupported-by-store"


class EmbfmtError(Exception):
    """Root of every error embfmt raises on purpose.

    Parameters
    ----------
    message
        One human-readable sentence naming the object or file at fault.
    kind
        The stable :class:`ErrorKind`; defaults to the subclass's ``default_kind``.
    """

    default_kind: ErrorKind = ErrorKind.BAD_ARGUMENT

    def __init__(self, message: str, kind: ErrorKind | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.kind: ErrorKind = kind if kind is not None else self.default_kind

    def __str__(self) -> str:
        return self.message


class InputError(EmbfmtError, ValueError):
    """The caller passed an array, argument or file that embfmt does not accept."""

    default_kind = ErrorKind.BAD_ARGUMENT


class FormatError(EmbfmtError, ValueError):
    """Bytes (a file, an object, a fingerprint string, a proof) that do not follow the spec."""

    default_kind = ErrorKind.BAD_HEADER


class IntegrityError(EmbfmtError):
    """Data that parses but whose hash is not the one it claims: corruption or tampering."""

    default_kind = ErrorKind.DIGEST_MISMATCH


class NotFoundError(EmbfmtError, KeyError):
    """A file, object, table, revision or dataset that does not exist."""

    default_kind = ErrorKind.NOT_FOUND

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.message


class ConflictError(EmbfmtError):
    """A concurrent update or a rule (e.g. mixing embedding spaces) refused the write."""

    default_kind = ErrorKind.CONFLICT


class BackendUnavailableError(EmbfmtError, RuntimeError):
    """A backend was asked for explicitly but cannot run here (e.g. no CuPy or no GPU)."""

    default_kind = ErrorKind.BACKEND_UNAVAILABLE


class StorageError(EmbfmtError, OSError):
    """The file system refused a change to a repository (read-only, permission denied, no space
    left): the caller fixes the environment and retries. Nothing stored was lost or changed.
    It is an :class:`OSError` too, with ``errno`` and ``filename`` set."""

    default_kind = ErrorKind.NO_SPACE

    def __str__(self) -> str:  # OSError would format its errno tuple
        return self.message
