"""ErrorKind is append-only: every kind that was ever released keeps its exact string.

Scripts match on ``e.kind`` and on the ``"error"`` field of ``--json`` output, and the spec's
validation rules and the invalid-input vectors name kinds by these strings, so renaming or
removing one breaks callers silently. ``PINNED`` below is the released list, in the order the
kinds were added.

To add a kind: add the member to ``ErrorKind`` in embfmt/errors.py (with a comment naming the
error class that raises it), then append one line ``"NAME": "its-string",`` at the END of
``PINNED`` here. Never edit or delete a line of ``PINNED``: a kind that is no longer raised
stays in the enum (its string must not be reused for a different meaning).
"""

from __future__ import annotations

import re

from embfmt.errors import ErrorKind

PINNED: dict[str, str] = {
    "NOT_A_MATRIX": "not-a-matrix",
    "UNSUPPORTED_DTYPE": "unsupported-dtype",
    "ZERO_DIM": "zero-dim",
    "SHAPE_MISMATCH": "shape-mismatch",
    "DTYPE_MISMATCH": "dtype-mismatch",
    "BAD_ARGUMENT": "bad-argument",
    "TOO_LARGE": "too-large",
    "DUPLICATE_KEY": "duplicate-key",
    "BAD_KEYS": "bad-keys",
    "BAD_REF_NAME": "bad-ref-name",
    "BAD_REVISION": "bad-revision",
    "NOT_A_REPOSITORY": "not-a-repository",
    "MISSING_EXTRA": "missing-extra",
    "BAD_MAGIC": "bad-magic",
    "UNSUPPORTED_VERSION": "unsupported-version",
    "BAD_HEADER": "bad-header",
    "TRUNCATED": "truncated",
    "BAD_FINGERPRINT": "bad-fingerprint",
    "BAD_PROOF": "bad-proof",
    "BAD_FILE": "bad-file",
    "BAD_OBJECT": "bad-object",
    "BAD_REF": "bad-ref",
    "BAD_STAMP": "bad-stamp",
    "DIGEST_MISMATCH": "digest-mismatch",
    "NOT_FOUND": "not-found",
    "MISSING_OBJECT": "missing-object",
    "AMBIGUOUS_REVISION": "ambiguous-revision",
    "CONFLICT": "conflict",
    "IDENTITY_MISMATCH": "identity-mismatch",
    "REF_EXISTS": "ref-exists",
    "LOCKED": "locked",
    "BACKEND_UNAVAILABLE": "backend-unavailable",
    "REVERT_CONFLICT": "revert-conflict",
    "READ_ONLY_REPOSITORY": "read-only-repository",
    "NO_SPACE": "no-space",
    "BRANCH_IN_USE": "branch-in-use",
    "NOT_MERGED": "not-merged",
    "KEYS_REQUIRED": "keys-required",
    "NOT_A_FILE": "not-a-file",
    "UNSAFE_PATH": "unsafe-path",
    "CREDENTIALS_IN_URL": "credentials-in-url",
    "ACCESS_DENIED": "access-denied",
    "STORAGE_UNAVAILABLE": "storage-unavailable",
    "UNSUPPORTED_BY_STORE": "unsupported-by-store",
    # append new kinds here, one line each (see the module docstring)
}

HOW_TO_ADD = "to add a kind, append it at the end of PINNED in tests/test_error_kinds.py (see its docstring)"


def test_no_released_kind_renamed_or_removed() -> None:
    members = ErrorKind.__members__
    missing = [name for name in PINNED if name not in members]
    assert not missing, (f"ErrorKind members removed or renamed: {missing}; ErrorKind is append-only, "
                         "put them back with their released strings")
    changed = {name: (PINNED[name], members[name].value) for name in PINNED
               if members[name].value != PINNED[name]}
    assert not changed, (f"ErrorKind strings changed (name: (released, now)): {changed}; a released "
                         "string never changes, add a new kind instead")


def test_every_kind_is_pinned() -> None:
    # A kind that exists but is not in PINNED is new: it is allowed, and pinning it here is what
    # makes it released. Failing here is the reminder to do that in the same commit.
    unpinned = {m.name: m.value for m in ErrorKind if m.name not in PINNED}
    assert not unpinned, f"new ErrorKind members {unpinned} are not pinned; {HOW_TO_ADD}"


def test_kind_strings_are_unique_and_well_formed() -> None:
    values = [m.value for m in ErrorKind]
    # Enum would silently alias a duplicate value to the first member: count the raw names too.
    assert len(ErrorKind.__members__) == len(set(values)) == len(values), "two kinds share one string"
    assert len(set(PINNED.values())) == len(PINNED), "PINNED lists one string twice"
    bad = [v for v in values if not re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", v)]
    assert not bad, f"kind strings are lowercase words joined by '-': {bad}"


def test_kind_prints_as_its_string() -> None:
    # print(e.kind) and f"{e.kind}" must show the stable string, not "ErrorKind.NOT_FOUND".
    for m in ErrorKind:
        assert str(m) == f"{m}" == m.value
        assert ErrorKind(m.value) is m
