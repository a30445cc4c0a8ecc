"""Settings: who commits, the default branch, progress bars (spec §11.3).

Two files, each a JSON object of setting name -> string, never hashed into any object:

* the repository's ``config`` file (``<repository>/config``), for that repository;
* the global file ``$XDG_CONFIG_HOME/embfmt/config`` (``~/.config/embfmt/config`` when
  ``XDG_CONFIG_HOME`` is unset), for every repository of the user.

A repository setting wins over the global one. The commit author comes from, in order: the
explicit ``author=`` / ``--author``; ``$EMBFMT_AUTHOR``; the repository's ``author``, else its
``user.name`` and ``user.email``; the same from the global file; ``user@host``.

Examples
--------
>>> import tempfile, os
>>> d = tempfile.mkdtemp()
>>> set_value(os.path.join(d, "config"), "user.name", "Ada")
>>> set_value(os.path.join(d, "config"), "user.email", "ada@example.org")
>>> author_from(read(os.path.join(d, "config")))
'Ada <ada@example.org>'
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import uuid
from typing import Any

from ..errors import ErrorKind, FormatError, InputError
from ..suggest import did_you_mean
from ..objects.names import check_ref_name

__all__ = ["KEYS", "REPO_CONFIG", "global_path", "read", "set_value", "unset_value",
           "check_key", "normalize", "author_from", "lookup", "resolve_author", "default_author", "author_for", "effective"]

REPO_CONFIG = "config"  # the file name in a repository directory (spec §11.3)

# A settings file is small: refuse anything larger before parsing it.
MAX_BYTES = 65536

KEYS = {
    "author": "commit author, e.g. 'Ada <ada@example.org>' (wins over user.name/user.email)",
    "user.name": "commit author name (with user.email: 'name <email>')",
    "user.email": "commit author e-mail",
    "init.defaultBranch": "the branch `embfmt init` creates (default: main)",
    "core.progress": "progress bars on a terminal: auto (default), true or false",
    "core.durable": "true (default): acknowledged changes survive a power loss; false: no fsyncs "
                    "(scratch repositories; spec §18.6)",
}

_TRUE, _FALSE = ("true", "on", "yes", "1"), ("false", "off", "no", "0")


def global_path() -> str:
    """``$XDG_CONFIG_HOME/embfmt/config``, or ``~/.config/embfmt/config``."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "embfmt", "config")


def check_key(key: str) -> str:
    """``key`` if it is a known setting; else :class:`InputError` with the closest one."""
    if key not in KEYS:

        hint = did_you_mean(key, KEYS, n=1) or f" (known: {', '.join(sorted(KEYS))})"
        raise InputError(f"unknown setting {key!r}{hint}", ErrorKind.BAD_ARGUMENT)
    return key


def normalize(key: str, value: str) -> str:
    """``value`` as stored for ``key``; :class:`InputError` for an unknown key or a bad value."""
    check_key(key)
    if not isinstance(value, str) or not value.strip() or len(value) > 1024 or "\n" in value:
        raise InputError(f"setting {key!r}: expected one non-empty line of at most 1024 characters, "
                         f"got {value!r}", ErrorKind.BAD_ARGUMENT)
    if key == "core.progress":
        v = value.strip().lower()
        if v in _TRUE:
            return "true"
        if v in _FALSE:
            return "false"
        if v == "auto":
            return "auto"
        raise InputError(f"setting 'core.progress': expected auto, true or false, got {value!r}",
                         ErrorKind.BAD_ARGUMENT)
    if key == "core.durable":
        v = value.strip().lower()
        if v in _TRUE + _FALSE:
            return "true" if v in _TRUE else "false"
        raise InputError(f"setting 'core.durable': expected true or false, got {value!r}",
                         ErrorKind.BAD_ARGUMENT)
    if key == "init.defaultBranch":

        check_ref_name(value, "branch")
    return value


def read(path: str) -> dict[str, str]:
    """The settings in ``path`` (empty when the file does not exist). A file that is not a JSON
    object of known settings to strings is :class:`FormatError` naming it."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        return {}
    except IsADirectoryError:
        raise FormatError(f"{path}: is a directory, not a settings file", ErrorKind.BAD_FILE) from None
    if len(data) > MAX_BYTES:
        raise FormatError(f"{path}: settings file larger than {MAX_BYTES} bytes", ErrorKind.BAD_FILE)
    try:
        obj = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise FormatError(f"{path}: not a JSON settings file ({type(e).__name__}: {str(e)[:200]}); "
                          "fix or delete it", ErrorKind.BAD_FILE) from None
    if not isinstance(obj, dict):
        raise FormatError(f"{path}: expected a JSON object of settings", ErrorKind.BAD_FILE)
    out: dict[str, str] = {}
    for k, v in obj.items():
        if not isinstance(v, str):
            raise FormatError(f"{path}: setting {k!r} must be a string, got {type(v).__name__}",
                              ErrorKind.BAD_FILE)
        try:
            out[k] = normalize(k, v)
        except InputError as e:
            raise FormatError(f"{path}: {e.message}", ErrorKind.BAD_FILE) from None
    return out


def _write(path: str, settings: dict[str, str]) -> None:
    """Replace ``path`` atomically (temp file + rename): a reader sees the old or the new file."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.{uuid.uuid4().hex}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(dict(sorted(settings.items())), f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def set_value(path: str, key: str, value: str) -> None:
    """Set ``key`` to ``value`` in the settings file ``path`` (created if missing)."""
    settings = read(path)
    settings[key] = normalize(key, value)
    _write(path, settings)


def unset_value(path: str, key: str) -> bool:
    """Remove ``key`` from ``path``; False when it was not set."""
    settings = read(path)
    if key not in settings:
        return False
    del settings[key]
    _write(path, settings)
    return True


def author_from(settings: dict[str, str]) -> str | None:
    """The author one settings file names: ``author``, else ``user.name <user.email>``."""
    if settings.get("author"):
        return settings["author"]
    name, email = settings.get("user.name"), settings.get("user.email")
    if name and email:
        return f"{name} <{email}>"
    return name or email or None


def lookup(key: str, repo_path: str | None) -> tuple[str, str] | None:
    """(value, scope) of ``key``: the repository's setting, else the global one, else None."""
    if repo_path is not None:
        v = read(os.path.join(repo_path, REPO_CONFIG)).get(key)
        if v is not None:
            return v, "repository"
    v = read(global_path()).get(key)
    return (v, "global") if v is not None else None


def _settings_scopes(repo_path: str | None) -> list[dict[str, str]]:
    scopes = [read(os.path.join(repo_path, REPO_CONFIG))] if repo_path is not None else []
    return scopes + [read(global_path())]


def resolve_author(repo_path: str | None) -> str | None:
    """The author the settings give (repository first, then global), or None."""
    for s in _settings_scopes(repo_path):
        a = author_from(s)
        if a:
            return a
    return None


def default_author() -> str:
    """``$EMBFMT_AUTHOR``, else ``user@host``: who acts when no setting says."""
    env = os.environ.get("EMBFMT_AUTHOR")
    if env:
        return env
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def author_for(repo_path: str | None, explicit: str | None = None) -> str:
    """Who a commit made now in ``repo_path`` is by: ``explicit``, else ``$EMBFMT_AUTHOR``, else
    the repository's settings (``author``, or ``user.name`` and ``user.email``), else the
    global ones, else ``user@host``."""
    if explicit:
        return explicit
    if os.environ.get("EMBFMT_AUTHOR"):
        return os.environ["EMBFMT_AUTHOR"]
    return resolve_author(repo_path) or default_author()


def effective(repo_path: str | None) -> dict[str, Any]:
    """Every setting in force: key -> {"value", "scope"} (the repository's wins)."""
    out: dict[str, Any] = {}
    for k, v in read(global_path()).items():
        out[k] = {"value": v, "scope": "global"}
    if repo_path is not None:
        for k, v in read(os.path.join(repo_path, REPO_CONFIG)).items():
            out[k] = {"value": v, "scope": "repository"}
    return dict(sorted(out.items()))
