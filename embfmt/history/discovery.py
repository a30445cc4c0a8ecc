"""Where the repository is (spec §11.2): a directory that is one, or a project's ``.embfmt/``,
found walking up from a start directory as git finds ``.git``. Standard library only, so the
CLI can look before it imports anything heavy."""

from __future__ import annotations

import os

from .. import _layout as L
from ..errors import ErrorKind, NotFoundError

__all__ = ["find_repository"]


def find_repository(start: str | os.PathLike[str] = ".") -> str:
    """The path of the repository that holds ``start`` (spec §11.2), walking up from it: the
    first directory that is a repository (holds ``embfmt.json``) or holds one in ``.embfmt/``.
    A ``.embfmt`` that is a symbolic link is not followed."""
    here = os.path.abspath(os.fspath(start))
    if not os.path.isdir(here):
        raise NotFoundError(f"{os.fspath(start)}: no such directory", ErrorKind.NOT_A_REPOSITORY)
    d = here
    while True:
        if os.path.isfile(os.path.join(d, L.REPO_MARKER)):
            return d
        hidden = os.path.join(d, L.HIDDEN_REPO_DIR)
        if not os.path.islink(hidden) and os.path.isfile(os.path.join(hidden, L.REPO_MARKER)):
            return hidden
        up = os.path.dirname(d)
        if up == d:
            raise NotFoundError(f"{here} is not in an embfmt repository (no {L.REPO_MARKER} or "
                                f"{L.HIDDEN_REPO_DIR}/ here or in any parent directory); create one "
                                "with `embfmt init`", ErrorKind.NOT_A_REPOSITORY)
        d = up
