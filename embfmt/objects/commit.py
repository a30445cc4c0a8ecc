"""Commit objects: a snapshot of named table versions with history and provenance (spec §16).

Bytes: the 11-byte magic ``EMBCOMMIT1\\n`` then canonical JSON (sorted keys, no whitespace,
UTF-8). The id is BLAKE3 of those bytes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import blake3

from .. import _layout as L
from ..errors import ErrorKind, FormatError, IntegrityError
from .table_version import canonical_json
from .names import check_ref_name

__all__ = ["Commit"]

_HEX64 = re.compile(r"[0-9a-f]{64}\Z")


@dataclass(frozen=True, slots=True)
class Commit:
    """An immutable commit."""

    tables: dict[str, str]
    """Table name -> table-version id (hex)."""
    parents: tuple[str, ...]
    author: str
    time: str
    """UTC, ISO 8601 with a ``Z`` suffix, e.g. ``2026-11-26T15:00:00Z``."""
    message: str
    metadata: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"format": L.FORMAT_MAJOR, "tables": dict(self.tables), "parents": list(self.parents),
                "author": self.author, "time": self.time, "message": self.message,
                "metadata": self.metadata, "environment": self.environment}

    def embfmt_meta(self) -> dict[str, Any]:
        """``metadata.embfmt``, what embfmt itself recorded (spec §16): {} when absent or not an
        object. Every reader of those members goes through here."""
        m = self.metadata.get("embfmt")
        return m if isinstance(m, dict) else {}

    def embfmt_tables(self) -> dict[str, Any]:
        """``metadata.embfmt.tables``: table name -> what writing that table recorded."""
        t = self.embfmt_meta().get("tables")
        return t if isinstance(t, dict) else {}

    def change_ids(self) -> list[str]:
        """Ids (hex) of the change objects the commit references (``tables.*.changes``)."""
        out = []
        for info in self.embfmt_tables().values():
            x = info.get("changes") if isinstance(info, dict) else None
            if isinstance(x, str) and len(x) == 64:
                out.append(x)
        return out

    def to_bytes(self) -> bytes:
        return L.COMMIT_MAGIC + canonical_json(self.to_dict(), "commit metadata")

    def object_id(self) -> bytes:
        return blake3.blake3(self.to_bytes()).digest()

    @classmethod
    def from_bytes(cls, buf: bytes, oid: bytes | None = None, name: str = "commit") -> Commit:
        if oid is not None and blake3.blake3(buf).digest() != oid:
            raise IntegrityError(f"{name}: bytes do not hash to its id")
        if not buf.startswith(L.COMMIT_MAGIC):
            raise FormatError(f"{name}: not a commit object", ErrorKind.BAD_MAGIC)
        if len(buf) > L.MAX_COMMIT_BYTES:
            raise FormatError(f"{name}: {len(buf)} bytes exceeds {L.MAX_COMMIT_BYTES}", ErrorKind.BAD_OBJECT)
        try:
            d = json.loads(buf[len(L.COMMIT_MAGIC):].decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as e:  # ValueError: JSON, 4300+ digit ints
            raise FormatError(f"{name}: not UTF-8 JSON ({type(e).__name__}: {str(e)[:200]})", ErrorKind.BAD_OBJECT) from None
        try:
            if d["format"] != L.FORMAT_MAJOR:
                raise FormatError(f"{name}: format v{d['format']}", ErrorKind.UNSUPPORTED_VERSION)
            tables = d["tables"]
            parents = tuple(d["parents"])
            ok = (isinstance(tables, dict) and all(isinstance(v, str) and _HEX64.match(v) for v in tables.values())
                  and all(isinstance(p, str) and _HEX64.match(p) for p in parents)
                  and isinstance(d["author"], str) and isinstance(d["time"], str)
                  and isinstance(d["message"], str) and isinstance(d["metadata"], dict)
                  and isinstance(d["environment"], dict))
            for t in tables:
                check_ref_name(t, "table")
        except (KeyError, TypeError) as e:
            raise FormatError(f"{name}: missing or mistyped field ({e})", ErrorKind.BAD_OBJECT) from None
        except Exception as e:
            if isinstance(e, FormatError):
                raise
            raise FormatError(f"{name}: invalid ({e})", ErrorKind.BAD_OBJECT) from None
        if not ok:
            raise FormatError(f"{name}: invalid field types", ErrorKind.BAD_OBJECT)
        return cls(dict(tables), parents, d["author"], d["time"], d["message"], d["metadata"],
                   d["environment"])
