"""Names of branches, tags and tables (spec §17): the one rule every name in a repository obeys."""

from __future__ import annotations

import re

from .. import _layout as L
from ..errors import ErrorKind, InputError

__all__ = ["check_ref_name"]

_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*\Z")


def check_ref_name(name: str, what: str = "ref") -> str:
    """Validate a branch or tag name: ``/``-separated segments of ``[A-Za-z0-9_][A-Za-z0-9._-]*``,
    no ``..``, no segment ending in ``.lock``, at most 200 characters."""
    ok = isinstance(name, str) and 0 < len(name) <= L.MAX_REF_NAME and ".." not in name
    if ok:
        for seg in name.split("/"):
            if not _SEGMENT.match(seg) or seg.endswith(".lock"):
                ok = False
                break
    if not ok:
        raise InputError(f"invalid {what} name {name!r}: use letters, digits, '_', '-', '.' and "
                         "'/'-separated segments, no '..', at most 200 characters",
                         ErrorKind.BAD_REF_NAME)
    return name
