"""A repository's files on the local filesystem (spec §11): the marker ``embfmt.json`` and the
directories ``objects/``, ``refs/heads``, ``refs/tags`` and ``tmp/``; checked on open, made by init."""

from __future__ import annotations

import json
import os

from .. import _fs
from .. import _layout as L
from ..errors import EmbfmtError, ErrorKind, FormatError, InputError, NotFoundError
from ..store import read_bounded
from . import config
from .ref import RefStore

__all__ = ["default_durable", "check_repository", "create_repository", "MARKER_BYTES"]

# embfmt.json is one short JSON object; a larger file (or a FIFO, a device) is not read.
MARKER_BYTES = 4096


def default_durable(repo_path: str | None = None) -> bool:
    """The durability of a :class:`Repo` opened without ``durable=``: the environment variable
    ``EMBFMT_DURABLE`` (``0``, ``false``, ``no``, ``off`` turn it off), else the setting
    ``core.durable`` of the repository or the user (``embfmt config``), else on. A settings
    file that does not parse leaves it on: damage never makes writes less safe."""
    env = os.environ.get("EMBFMT_DURABLE")
    if env is not None:
        return env.strip().lower() not in ("0", "false", "no", "off")
    try:
        found = config.lookup("core.durable", repo_path)
    except EmbfmtError:
        return True
    return found is None or found[0] != "false"


def check_repository(path: str) -> None:
    """Refuse ``path`` unless it is a repository this embfmt reads: its marker names the format
    and version (:class:`NotFoundError` ``not-a-repository``, :class:`FormatError` otherwise)."""
    marker = os.path.join(path, L.REPO_MARKER)
    try:
        info = json.loads(read_bounded(marker, MARKER_BYTES, L.REPO_MARKER))
    except FormatError:  # a FIFO, link or oversized file in its place: said as such
        raise
    except (FileNotFoundError, NotADirectoryError):
        raise NotFoundError(f"{path} is not an embfmt repository (no {L.REPO_MARKER}); "
                            "create one with `embfmt init`", ErrorKind.NOT_A_REPOSITORY) from None
    except (ValueError, UnicodeDecodeError, IsADirectoryError, RecursionError) as e:  # ValueError: JSON
        raise FormatError(f"{marker} is corrupt ({type(e).__name__}: {str(e)[:200]})", ErrorKind.BAD_FILE) from None
    if not isinstance(info, dict) or info.get("format") != L.REPO_FORMAT_NAME:
        raise FormatError(f"{marker} does not describe an embfmt repository", ErrorKind.BAD_FILE)
    if info.get("version") != L.REPO_FORMAT_VERSION:
        raise FormatError(f"{path}: repository format version {info.get('version')!r}; this "
                          f"embfmt reads version {L.REPO_FORMAT_VERSION}", ErrorKind.UNSUPPORTED_VERSION)


def create_repository(path: str, default_branch: str, durable: bool) -> bool:
    """Make the files of a new repository at ``path`` (an empty or missing directory); False
    when one is there already. The marker comes last: a directory without it is not a
    repository yet, whatever a crash left."""
    marker = os.path.join(path, L.REPO_MARKER)
    if os.path.exists(marker):
        return False
    if os.path.isdir(path) and os.listdir(path):
        raise InputError(f"{path} exists and is not empty; init needs an empty directory",
                         ErrorKind.BAD_ARGUMENT)
    for sub in ("objects", "refs/heads", "refs/tags", "tmp"):
        _fs.makedirs(os.path.join(path, sub), durable=durable)
    RefStore(path, durable=durable).set_head_branch(default_branch)
    _fs.write_atomic(marker, json.dumps({"format": L.REPO_FORMAT_NAME,
                                          "version": L.REPO_FORMAT_VERSION}).encode() + b"\n",
                     durable=durable)
    return True
