"""Stamp text (spec §21.1): a short token naming one table version of one commit.

    emb1:s:<table>@<commit id, 64 hex>:<table-version id, first 32 hex>:<check, 8 hex>

Making, recognising and parsing the text is pure (no repository is read); checking what a
stamp names against a repository is :meth:`embfmt.history.revisions.Revisions.resolve_stamp`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import blake3

from ..errors import ErrorKind, FormatError, InputError
from .names import check_ref_name

__all__ = ["STAMP_PREFIX", "StampInfo", "is_stamp", "make_stamp", "parse_stamp"]

#: Every stamp starts with this: "emb1" is the format major (as in fingerprints "emb1:b3:"),
#: "s" says stamp.
STAMP_PREFIX = "emb1:s:"
#: Hex digits of the table-version id kept in a stamp: 128 bits, so a forged stamp that names
#: another version of the same table at the same commit cannot be made by chance.
STAMP_TV_HEX = 32
#: Hex digits of the check value (BLAKE3 of the rest of the stamp): catches typos and bit flips
#: before any lookup, so a damaged stamp is never reported as "stale".
STAMP_CHECK_HEX = 8
_STAMP_RE = re.compile(r"emb1:s:(?P<table>[^@\s]+)@(?P<commit>[0-9a-f]{64}):"
                       r"(?P<tv>[0-9a-f]{32}):(?P<check>[0-9a-f]{8})\Z")
#: Longest possible stamp (a 200-character table name).
MAX_STAMP_CHARS = len(STAMP_PREFIX) + 200 + 1 + 64 + 1 + STAMP_TV_HEX + 1 + STAMP_CHECK_HEX


def _check_digits(body: str) -> str:
    return blake3.blake3(body.encode("utf-8")).hexdigest()[:STAMP_CHECK_HEX]


def make_stamp(table: str, commit: str, table_version: str) -> str:
    """The stamp text for ``table`` at ``commit`` whose table-version id is ``table_version``
    (both 64 lowercase hex digits). Pure: reads no repository.

    Examples
    --------
    >>> make_stamp("emb", "ab" * 32, "cd" * 32)[:19]
    'emb1:s:emb@abababab'
    """
    check_ref_name(table, "table")
    for what, h in (("commit", commit), ("table version", table_version)):
        if not re.fullmatch(r"[0-9a-f]{64}", h):
            raise InputError(f"{what} id must be 64 lowercase hex digits, got {h!r}",
                             ErrorKind.BAD_ARGUMENT)
    body = f"{STAMP_PREFIX}{table}@{commit}:{table_version[:STAMP_TV_HEX]}"
    return f"{body}:{_check_digits(body)}"


def is_stamp(text: Any) -> bool:
    """True when ``text`` looks like a stamp (starts with ``emb1:s:``); it may still be invalid."""
    return isinstance(text, str) and text.startswith(STAMP_PREFIX)


def parse_stamp(text: str) -> tuple[str, str, str]:
    """``(table, commit id, table-version id prefix)`` of a well-formed stamp.

    Raises :class:`FormatError` (``bad-stamp``) for anything else, including a check value
    that does not match (a mistyped or altered stamp).

    Examples
    --------
    >>> s = make_stamp("item_emb", "01" * 32, "23" * 32)
    >>> parse_stamp(s)[0]
    'item_emb'
    >>> parse_stamp(s[:-1] + ("0" if s[-1] != "0" else "1"))
    Traceback (most recent call last):
    ...
    embfmt.errors.FormatError: stamp ... check value ... does not match ...
    """
    if not isinstance(text, str):
        raise FormatError(f"a stamp is a string, got {type(text).__name__}", ErrorKind.BAD_STAMP)
    shown = text if len(text) <= MAX_STAMP_CHARS else text[:MAX_STAMP_CHARS] + "..."
    if len(text) > MAX_STAMP_CHARS:
        raise FormatError(f"stamp {shown!r} is longer than {MAX_STAMP_CHARS} characters",
                          ErrorKind.BAD_STAMP)
    m = _STAMP_RE.match(text)
    if not m:
        raise FormatError(f"malformed stamp {shown!r}: expected emb1:s:TABLE@<64 hex commit>:"
                          f"<{STAMP_TV_HEX} hex table version>:<{STAMP_CHECK_HEX} hex check>",
                          ErrorKind.BAD_STAMP)
    try:
        check_ref_name(m.group("table"), "table")
    except InputError:
        raise FormatError(f"malformed stamp {shown!r}: invalid table name {m.group('table')!r}",
                          ErrorKind.BAD_STAMP) from None
    body = text[:-(STAMP_CHECK_HEX + 1)]
    if _check_digits(body) != m.group("check"):
        raise FormatError(f"stamp {shown!r}: check value {m.group('check')} does not match the rest "
                          f"of the stamp (expected {_check_digits(body)}): it was mistyped or "
                          "altered", ErrorKind.BAD_STAMP)
    return m.group("table"), m.group("commit"), m.group("tv")


@dataclass(frozen=True)
class StampInfo:
    """What a stamp names, as :meth:`Repo.resolve_stamp` found it in the repository."""

    stamp: str
    table: str
    commit: str
    """Full commit id (hex)."""
    table_version: str
    """Full table-version id (hex)."""
    fingerprint: str
    rows: int
    dim: int
    dtype: str
    identity: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {"stamp": self.stamp, "table": self.table, "commit": self.commit,
                "table_version": self.table_version, "fingerprint": self.fingerprint,
                "rows": self.rows, "dim": self.dim, "dtype": self.dtype, "identity": self.identity}


