"""'Did you mean ...?' for a mistyped name: close spellings by :mod:`difflib`, ignoring case.

>>> did_you_mean("mian", ["main", "exp", "v1"])
"; did you mean 'main'?"
>>> did_you_mean("zzz", ["main"])
''
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["did_you_mean"]


def did_you_mean(word: str, choices: Iterable[str], n: int = 3) -> str:
    """``"; did you mean 'x'?"`` (or ``'x' or 'y'``) for the choices closest to ``word``, or ``""``."""
    import difflib

    by_lower: dict[str, str] = {}
    for c in choices:
        by_lower.setdefault(c.lower(), c)
    hits = [by_lower[h] for h in difflib.get_close_matches(word.lower(), list(by_lower), n=n, cutoff=0.6)]
    if not hits:
        return ""
    return "; did you mean " + " or ".join(repr(h) for h in hits) + "?"
