"""The ``embfmt`` command line.

Exit codes: 0 success; 1 a check found a difference or corruption; 2 usage or input error
(one line on stderr naming the file or object at fault, never a traceback).

Repository commands run on the repository that holds the current directory, or ``PATH`` given
with the global ``-C PATH`` option (``embfmt -C repo log``): that directory or its closest parent
that is a repository or holds one in ``.embfmt/`` (spec §11.2), as git finds ``.git``. As with
``git -C``, every relative path on the command line (input files, ``-o`` outputs, ``init``'s
directory) is then taken relative to ``PATH``.

Each command imports what it uses inside its own function (``# lazy: start-up time``):
``embfmt --help`` imports argparse and nothing heavy, and ``log``/``show``/``branch``/``tag``
only the object model they read (tests/cli/test_startup.py guards both).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

from .. import progress
from .._version import __version__
from ..errors import (EmbfmtError, ErrorKind, FormatError, InputError, IntegrityError,
                     NotFoundError)

if TYPE_CHECKING:
    from ..objects.commit import Commit
    from ..repo import Repo

__all__ = ["main", "build_parser"]

EXIT_OK, EXIT_DIFFERENT, EXIT_ERROR = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse would exit 2 with usage; keep one line
        self.exit(EXIT_ERROR, f"embfmt: error: {message}\n")

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        # A mistyped command or choice gets the closest spellings instead of the whole list.
        choices = action.choices
        if choices is not None and value not in choices:
            from ..suggest import did_you_mean  # lazy: start-up time

            hint = did_you_mean(str(value), [str(c) for c in choices])
            if hint:
                what = "unknown command" if action.dest == "command" else "invalid choice"
                raise argparse.ArgumentError(action if what == "invalid choice" else None,
                                             f"{what} {value!r}{hint}")
        super()._check_value(action, value)


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def _fmt_bytes(n: int | None) -> str:
    if n is None:
        return "?"
    if n < 1024:
        return f"{n} B"
    v = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        v /= 1024
        if v < 1024 or unit == "TiB":
            return f"{v:.1f} {unit}"
    return f"{n} B"  # pragma: no cover


# --- paths and the repository ----------------------------------------------------------------
def _path(args: argparse.Namespace, p: str) -> str:
    """``p`` as the command sees it: relative to ``-C PATH`` when that was given."""
    base = getattr(args, "chdir", None)
    if base and not os.path.isabs(p):
        return os.path.join(base, p)
    return p


@contextmanager
def _open_repo(args: argparse.Namespace) -> Iterator[Repo]:
    from ..history.discovery import find_repository  # lazy: start-up time
    from ..repo import Repo  # lazy: start-up time

    base = getattr(args, "chdir", None) or "."
    if not os.path.isdir(base):
        raise NotFoundError(f"{base}: no such directory (given with -C)", ErrorKind.NOT_A_REPOSITORY)
    # Like git: the directory, or its closest parent, that is or holds a repository (§11.2).
    with Repo(find_repository(base)) as repo:
        yield repo


def _check_name(name: str, what: str) -> str:
    from ..objects.names import check_ref_name  # lazy: start-up time

    return check_ref_name(name, what)


# --- init ------------------------------------------------------------------------------------
def cmd_init(args: argparse.Namespace) -> int:
    from ..repo import Repo  # lazy: start-up time

    from .. import _layout as L  # lazy: start-up time

    from ..history.config import lookup  # lazy: start-up time

    setting = lookup("init.defaultBranch", None) if args.initial_branch is None else None
    branch = args.initial_branch or (setting[0] if setting else "main")
    _check_name(branch, "branch")
    if args.path is not None:  # PATH is the repository itself
        path = _path(args, args.path)
    else:  # the current (or -C) directory is a project: its repository goes in .embfmt/ (§11.2)
        project = _path(args, ".")
        if os.path.isfile(os.path.join(project, L.REPO_MARKER)):
            raise InputError(f"{os.path.abspath(project)} is already an embfmt repository",
                             ErrorKind.REF_EXISTS)
        path = os.path.abspath(os.path.join(project, L.HIDDEN_REPO_DIR))
        if os.path.islink(path):
            raise InputError(f"{path} is a symbolic link; embfmt does not follow it", ErrorKind.BAD_ARGUMENT)
    with Repo.init(path, default_branch=branch):
        pass
    full = os.path.abspath(path)
    if args.json:
        _print_json({"path": full, "branch": branch})
    else:
        print(f"Initialized empty embfmt repository in {full}")
    return EXIT_OK


# --- config ----------------------------------------------------------------------------------
def _repo_path_or_none(args: argparse.Namespace) -> str | None:
    from ..history.discovery import find_repository  # lazy: start-up time

    try:
        return find_repository(getattr(args, "chdir", None) or ".")
    except NotFoundError:
        return None


def cmd_config(args: argparse.Namespace) -> int:
    from ..history import config  # lazy: start-up time

    if args.list and (args.key is not None or args.unset):
        raise InputError("config --list takes no KEY and no --unset", ErrorKind.BAD_ARGUMENT)
    if not args.list and args.key is None:
        raise InputError("config: give KEY [VALUE], --unset KEY or --list", ErrorKind.BAD_ARGUMENT)
    if args.unset and args.value is not None:
        raise InputError("config --unset KEY takes no VALUE", ErrorKind.BAD_ARGUMENT)
    repo_path = None if args.glob else _repo_path_or_none(args)
    writes = args.unset or args.value is not None
    if writes and not args.glob and repo_path is None:
        from ..history.discovery import find_repository  # lazy: start-up time

        find_repository(getattr(args, "chdir", None) or ".")  # raises not-a-repository, naming it
    path = config.global_path() if args.glob else os.path.join(str(repo_path), config.REPO_CONFIG)
    if args.list:
        if args.glob:
            found = {k: {"value": v, "scope": "global"} for k, v in config.read(path).items()}
        else:
            found = config.effective(repo_path)
        if args.json:
            _print_json({"settings": found, "repository": repo_path, "global": config.global_path()})
        else:
            for k, v in found.items():
                print(f"{k}={v['value']}")
        return EXIT_OK
    if args.unset:
        config.check_key(args.key)
        if not config.unset_value(path, args.key):
            sys.stderr.write(f"embfmt: config: {args.key} is not set in {path}\n")
            return EXIT_DIFFERENT
        return EXIT_OK
    if args.value is not None:
        config.set_value(path, args.key, args.value)
        return EXIT_OK
    config.check_key(args.key)  # an unknown key is a usage error, with a suggestion
    if args.glob:
        value = config.read(path).get(args.key)
        hit = (value, "global") if value is not None else None
    else:
        hit = config.lookup(args.key, repo_path)
    if args.json:
        _print_json({"key": args.key, "value": hit[0] if hit else None, "scope": hit[1] if hit else None})
    elif hit:
        print(hit[0])
    return EXIT_OK if hit else EXIT_DIFFERENT  # as git config: 1 when the key is not set


# --- commit ----------------------------------------------------------------------------------
def _split_assignment(text: str, option: str, what: str = "TABLE=FILE") -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise InputError(f"{option}: expected {what}, got {text!r}", ErrorKind.BAD_ARGUMENT)
    return name, value


def _split_dataset(args: argparse.Namespace, spec: str) -> tuple[str, str | None]:
    """``FILE`` or ``FILE:DATASET``, with FILE taken relative to ``-C``."""
    from ..formats import split_dataset  # lazy: start-up time

    return split_dataset(spec, lambda p: _path(args, p))


def _parse_meta(items: list[str], json_items: Sequence[str] = ()) -> dict[str, Any]:
    """``--meta KEY=VALUE`` stores VALUE as the string it is (``version=1.10`` stays ``"1.10"``,
    ``sha=0e12`` stays ``"0e12"``); ``--meta-json KEY=JSON`` stores a typed JSON value."""
    from ..objects.table_version import canonical_json  # lazy: start-up time

    meta: dict[str, Any] = {}
    for opt, group in (("--meta", items), ("--meta-json", json_items)):
        for item in group:
            key, _, value = item.partition("=")
            if "=" not in item or not key:
                raise InputError(f"{opt}: expected KEY={'JSON' if opt == '--meta-json' else 'VALUE'}, "
                                 f"got {item!r}", ErrorKind.BAD_ARGUMENT)
            if key in meta:
                raise InputError(f"{opt}: metadata key {key!r} given twice", ErrorKind.BAD_ARGUMENT)
            if opt == "--meta":
                meta[key] = value
                continue
            try:
                v = json.loads(value, parse_constant=_no_constant)
                canonical_json({key: v}, "metadata")  # depth, size, finite numbers
            except (ValueError, RecursionError, EmbfmtError) as e:
                why = e.message if isinstance(e, EmbfmtError) else f"{type(e).__name__}: {str(e)[:200]}"
                raise InputError(f"--meta-json {key}: {value[:80]!r} is not a JSON value embfmt can "
                                 f"store ({why}); use --meta {key}=... for a string",
                                 ErrorKind.BAD_ARGUMENT) from None
            meta[key] = v
    return meta


def _no_constant(name: str) -> Any:
    # JSON has no NaN or infinities; Python's json would accept them and canonical JSON refuses.
    raise ValueError(f"{name} is not JSON")


def _load_keys(args: argparse.Namespace, path: str, table: str) -> Any:
    import numpy as np  # lazy: start-up time

    full = _path(args, path)
    if not os.path.exists(full):
        raise NotFoundError(f"{full}: no such file (keys for table {table!r})")
    try:
        arr = np.load(full, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise FormatError(f"{full}: not a readable .npy file of row keys ({e})", ErrorKind.BAD_FILE) from None
    if not isinstance(arr, np.ndarray) or arr.ndim != 1:
        raise InputError(f"{full}: row keys must be a 1-D array, got shape "
                         f"{getattr(arr, 'shape', None)}", ErrorKind.BAD_KEYS)
    if arr.dtype.kind == "U":
        return [str(k) for k in arr]
    if arr.dtype.kind not in "iu":
        raise InputError(f"{full}: row keys must be integers or strings, got {arr.dtype}",
                         ErrorKind.BAD_KEYS)
    return arr


def _key_options(args: argparse.Namespace, specs: dict[str, Any]) -> dict[str, Any]:
    """Table -> keys from --keys, --carry-keys, --append-keys and --drop-keys (one per table)."""
    from ..objects.keys import KEYS_CARRY, KEYS_DROP, CarryKeys  # lazy: start-up time

    keys: dict[str, Any] = {}
    given: list[tuple[str, str, Any]] = []
    for item in args.keys:
        name, path = _split_assignment(item, "--keys", "TABLE=FILE.npy")
        given.append(("--keys", name, path))
    for item in args.append_keys:
        name, path = _split_assignment(item, "--append-keys", "TABLE=FILE.npy")
        given.append(("--append-keys", name, path))
    given += [("--carry-keys", name, None) for name in args.carry_keys]
    given += [("--drop-keys", name, None) for name in args.drop_keys]
    seen: dict[str, str] = {}
    for opt, name, path in given:
        if name not in specs:
            raise InputError(f"{opt}: table {name!r} is not committed here", ErrorKind.BAD_ARGUMENT)
        if name in seen:
            raise InputError(f"table {name!r}: {seen[name]} and {opt} both given; choose one",
                             ErrorKind.BAD_ARGUMENT)
        seen[name] = opt
        if opt == "--keys":
            keys[name] = _load_keys(args, path, name)
        elif opt == "--append-keys":
            keys[name] = CarryKeys(appended=_load_keys(args, path, name))
        else:
            keys[name] = KEYS_CARRY if opt == "--carry-keys" else KEYS_DROP
    return keys


def _name_file(e: EmbfmtError, files: dict[str, str]) -> EmbfmtError:
    """Add the input file to a repository error that names only the table."""
    msg = (e.message.replace("allow_schema_change=True", "--allow-schema-change")
           .replace("allow_identity_change=True", "--allow-identity-change")
           .replace("keys='carry'", "--carry-keys")
           .replace("CarryKeys(appended=<their keys>)", "--append-keys T=FILE.npy"))
    for name, path in files.items():
        if msg.startswith(f"table {name!r}"):
            msg = f"{path}: {msg}"
            break
    return type(e)(msg, e.kind) if msg != e.message else e


def cmd_commit(args: argparse.Namespace) -> int:
    from ..formats import read  # lazy: start-up time

    specs: dict[str, tuple[str, str | None]] = {}
    for item in args.tables:
        name, spec = _split_assignment(item, "TABLE=FILE")
        _check_name(name, "table")
        if name in specs:
            raise InputError(f"table {name!r} given twice", ErrorKind.BAD_ARGUMENT)
        path, ds = _split_dataset(args, spec)
        specs[name] = (_path(args, path), ds if ds is not None else args.dataset)
    keys = _key_options(args, specs)
    identity: dict[str, dict[str, Any]] = {}
    for item in args.identity:
        name, text = _split_assignment(item, "--identity", "TABLE=JSON")
        if name not in specs:
            raise InputError(f"--identity: table {name!r} is not committed here", ErrorKind.BAD_ARGUMENT)
        try:
            ident = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(f"--identity for table {name!r}: not JSON ({e})", ErrorKind.BAD_ARGUMENT) from None
        if not isinstance(ident, dict):
            raise InputError(f"--identity for table {name!r}: expected a JSON object, got {text!r}",
                             ErrorKind.BAD_ARGUMENT)
        identity[name] = ident
    metadata = _parse_meta(args.meta, args.meta_json)
    if args.branch:
        _check_name(args.branch, "branch")

    with ExitStack() as stack:  # open (and check) every input file before the repository
        tables: dict[str, Any] = {}
        for name, (path, ds) in specs.items():
            src = stack.enter_context(read(path, ds, args.format, dtype=args.dtype,
                                           vector_column=args.vector_column,
                                           key_column=args.key_column))
            tables[name] = src.matrix
            if src.keys is not None and name not in keys:  # --keys wins over the file's keys
                keys[name] = src.keys
        repo = stack.enter_context(_open_repo(args))
        try:
            out = repo.commit(tables, message=args.message, metadata=metadata, keys=keys or None,
                              identity=identity or None, branch=args.branch, author=args.author,
                              allow_identity_change=args.allow_identity_change,
                              allow_schema_change=args.allow_schema_change, dry_run=args.dry_run)
        except EmbfmtError as e:
            if e.kind is ErrorKind.KEYS_REQUIRED:  # say it in the CLI's words
                e = InputError(e.message.split("; pass ")[0] + "; give --keys T=FILE.npy, "
                               "--carry-keys T (the same rows in the same order), --append-keys "
                               "T=FILE.npy (the parent's rows, then rows appended at the end, "
                               "keyed by FILE) or --drop-keys T", e.kind)
            raise _name_file(e, {n: p for n, (p, _) in specs.items()}) from None
        if args.dry_run:
            _print_plan(out, args.json)
            return EXIT_OK
        cid = out
        if args.json:
            shown = repo.show(cid)
            _print_json({"id": cid, "branch": args.branch or repo.head_branch,
                         "tables": {n: shown["tables"][n] for n in tables}})
        else:
            print(cid)
    return EXIT_OK


def _print_plan(plan: Any, as_json: bool) -> None:
    """``commit --dry-run``: what each table would store, in plain words."""
    if as_json:
        _print_json(plan.to_dict())
        return
    parent = plan.parent[:12] if plan.parent else "none (first commit)"
    print(f"dry run: nothing was written; a commit to {plan.branch} (parent {parent}) would store:")
    width = max((len(n) for n in plan.tables), default=0)
    for name, t in plan.tables.items():
        if t["status"] == "removed":
            print(f"  {name:<{width}}  removed")
            continue
        shape = f"{t['rows']} x {t['dim']} {t['dtype']}"
        if t["status"] == "unchanged":
            print(f"  {name:<{width}}  unchanged  {shape}  {_fmt_bytes(t['bytes_written'])}")
            continue
        parts = []
        if t["status"] == "changed":
            parts.append(f"{t['rows_changed']} rows changed")
            if t["rows_added"]:
                parts.append(f"{t['rows_added']} added")
            if t["rows_removed"]:
                parts.append(f"{t['rows_removed']} removed")
        how = [f"{n} chunk{'s' if n != 1 else ''} {_CODEC_WORDS.get(c, c)}" for c, n in t["codecs"].items()]
        if t["chunks_reused"]:
            how.append(f"{t['chunks_reused']} already stored")
        print(f"  {name:<{width}}  {t['status']:<9}  {shape}  {_fmt_bytes(t['bytes_written'])}"
              + (f"  ({', '.join(parts + how)})" if parts or how else ""))
    print(f"  total {_fmt_bytes(plan.bytes_written)} (plus the commit object, about 1 KiB)")


# --- log and show ----------------------------------------------------------------------------
def _decorations(repo: Repo) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    head = repo.head_branch
    for name, cid in sorted(repo.branches().items()):
        out.setdefault(cid, []).append(f"HEAD -> {name}" if name == head else name)
    for name, cid in sorted(repo.tags().items()):
        out.setdefault(cid, []).append(f"tag: {name}")
    for v in out.values():  # HEAD first, like git
        v.sort(key=lambda s: (not s.startswith("HEAD"), s.startswith("tag:"), s))
    return out


def _user_meta(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in meta.items() if k != "embfmt"}


def _table_line(name: str, t: dict[str, Any], width: int, parent_version: str | None) -> str:
    shape = f"{t['rows']} x {t['dim']} {t['dtype']}"
    w = t.get("write")
    if not w:
        what = ("unchanged" if t["version"] == parent_version
                else "0 B written (an existing version)")
        return f"    {name:<{width}}  {shape:<24}  {what}"
    codecs = ", ".join(f"{k} {v}" for k, v in sorted((w.get("codecs") or {}).items()))
    parts = [f"{w.get('chunks_written', '?')}/{w.get('chunks', '?')} chunks written"]
    if codecs:
        parts.append(codecs)
    if parent_version is None:
        parts.append("new table")
    else:
        added = int(w.get("rows", 0)) - int(w.get("parent_rows", 0))
        parts.append(f"{w.get('rows_changed', 0)} rows changed")
        if added:
            parts.append(f"{added:+d} rows")
    return (f"    {name:<{width}}  {shape:<24}  {_fmt_bytes(w.get('bytes_written')):>10} written "
            f"({'; '.join(parts)})")


def _parent_tables(repo: Repo, shown: dict[str, Any]) -> dict[str, str]:
    return dict(repo.get_commit(shown["parents"][0]).tables) if shown["parents"] else {}


def _print_commit(shown: dict[str, Any], commit: Commit, deco: list[str], parent: dict[str, str], *,
                  full: bool) -> None:
    tail = f" ({', '.join(deco)})" if deco else ""
    print(f"commit {shown['id']}{tail}")
    if full and shown["parents"]:
        print(f"Parents: {' '.join(shown['parents'])}")
    print(f"Author:  {shown['author']}")
    print(f"Date:    {shown['time']}")
    meta = _user_meta(shown["metadata"])
    if meta:
        print(f"Meta:    {json.dumps(meta, sort_keys=True)}")
    written = commit.embfmt_meta()  # metadata.embfmt is parsed in one place (issue 14)
    restored = written.get("restored_from") or written.get("reverted_to")  # reverted_to: older writers
    if restored:
        print(f"Restore: tables of {restored}")
    if written.get("reverts"):
        print(f"Reverts: {written['reverts']}")
    print()
    for line in (shown["message"] or "(no message)").splitlines() or [""]:
        print(f"    {line}")
    print()
    tables = shown["tables"]
    width = max((len(n) for n in tables), default=0)
    for name in sorted(tables):
        t = tables[name]
        print(_table_line(name, t, width, parent.get(name)))
        if full:
            print(f"        version      {t['version']}")
            print(f"        fingerprint  {t['fingerprint']}")
            print(f"        chunks       {t['chunks']}")
            print(f"        keys         {'yes' if t['keys'] else 'no'}")
            if t.get("identity") is not None:
                print(f"        identity     {json.dumps(t['identity'], sort_keys=True)}")
    for name in sorted(set(parent) - set(tables)):
        print(f"    {name:<{width}}  removed")
    if not tables:
        print("    (no tables)")


def cmd_log(args: argparse.Namespace) -> int:
    if args.max_count is not None and args.max_count < 0:
        raise InputError(f"-n must be >= 0, got {args.max_count}", ErrorKind.BAD_ARGUMENT)
    with _open_repo(args) as repo:
        commits = repo.log(args.rev, max_count=args.max_count, table=args.table)
        if args.json:
            _print_json([repo.show(c.id) for c in commits])
            return EXIT_OK
        deco = _decorations(repo)
        if args.oneline:
            for c in commits:
                refs = f" ({', '.join(deco[c.id])})" if c.id in deco else ""
                first = c.message.splitlines()[0] if c.message else "(no message)"
                print(f"{c.id[:12]}{refs} {first}")
            return EXIT_OK
        for i, c in enumerate(commits):
            if i:
                print()
            s = repo.show(c.id)
            _print_commit(s, repo.get_commit(s["id"]), deco.get(s["id"], []), _parent_tables(repo, s),
                          full=False)
    return EXIT_OK


def _rev_table(spec: str) -> tuple[str, str | None]:
    """``REV:TABLE`` -> (REV, TABLE); a plain revision or a stamp (which holds ``:``) -> (spec, None).
    Table and ref names never hold ``:`` (spec §17), so the last one splits."""
    from ..objects.stamp import is_stamp  # lazy: start-up time

    if is_stamp(spec) or ":" not in spec:
        return spec, None
    rev, _, table = spec.rpartition(":")
    if not rev or not table:
        raise InputError(f"expected REV or REV:TABLE, got {spec!r}", ErrorKind.BAD_REVISION)
    return rev, table


def _print_table_detail(t: dict[str, Any]) -> None:
    print(f"table {t['table']} at {t['rev']} (commit {t['commit'][:12]})")
    print(f"    version      {t['version']}")
    print(f"    fingerprint  {t['fingerprint']}")
    print(f"    shape        {t['rows']} x {t['dim']} {t['dtype']}")
    st = t["stored"]
    print(f"    bytes        {_fmt_bytes(t['bytes_raw'])} raw, {_fmt_bytes(t['bytes_stored'])} stored "
          f"({_fmt_bytes(st['chunks'])} in {st['chunk_objects']} chunk objects with their delta bases, "
          f"{_fmt_bytes(st['keys'])} keys, {_fmt_bytes(st['table_version'])} table version)")
    codecs = ", ".join(f"{n} {_CODEC_WORDS.get(k, k)}" for k, n in t["codecs"].items())
    print(f"    chunks       {t['chunks']} of {t['chunk_rows']} rows ({codecs or 'none'})")
    print(f"    keys         {'yes, ' + str(t['keys_count']) if t['keys'] else 'no'}")
    print(f"    identity     {json.dumps(t['identity'], sort_keys=True) if t['identity'] is not None else '-'}")
    ch = t["change"]
    if ch["status"] == "new":
        what = "new table" + (f" (not in parent {ch['parent'][:12]})" if ch["parent"] else " (first commit)")
    elif ch["status"] == "unchanged":
        what = f"unchanged from parent {ch['parent'][:12]}"
    else:
        parts = [f"{ch['rows_changed']} rows changed" if ch["rows_changed"] is not None
                 else "rows changed: no change record"]
        if ch["rows_added"]:
            parts.append(f"{ch['rows_added']} added")
        if ch["rows_removed"]:
            parts.append(f"{ch['rows_removed']} removed")
        what = f"vs parent {ch['parent'][:12]} ({ch['parent_rows']} rows): " + ", ".join(parts)
    print(f"    change       {what}")
    drift = ch.get("drift")
    if drift and ch.get("rows_changed"):
        for m in ("l2", "cosine", "max_abs", "ulp"):
            s = drift[m]
            print(f"        {m:<8} mean {_fmt_num(s['mean'])}  p50 {_fmt_num(s['p50'])}  "
                  f"max {_fmt_num(s['max'])}  min {_fmt_num(s['min'])}")


def cmd_show(args: argparse.Namespace) -> int:
    rev, table = _rev_table(args.rev)
    with _open_repo(args) as repo:
        if table is not None:
            detail = repo.show_table(rev, table)
            if args.json:
                _print_json(detail)
            else:
                _print_table_detail(detail)
            return EXIT_OK
        shown = repo.show(args.rev)
        if args.json:
            _print_json(shown)
        else:
            _print_commit(shown, repo.get_commit(shown["id"]), _decorations(repo).get(shown["id"], []),
                          _parent_tables(repo, shown), full=True)
    return EXIT_OK


# Codecs in plain words (spec §13.3), for people who do not know the codec names.
_CODEC_WORDS = {"raw": "stored in full", "shuffle-planes": "stored in full (byte planes)",
                "xor-delta": "as XOR deltas to the parent", "sub-zigzag-delta": "as deltas to the parent",
                "sparse-patch": "as patches of the changed rows"}


def cmd_ls(args: argparse.Namespace) -> int:
    with _open_repo(args) as repo:
        listing = repo.ls(args.rev)
        deco = _decorations(repo).get(listing["commit"], [])
    if args.json:
        _print_json(listing)
        return EXIT_OK
    print(f"commit {listing['commit']}" + (f" ({', '.join(deco)})" if deco else ""))
    rows = [("TABLE", "DTYPE", "SHAPE", "RAW", "STORED", "KEYS", "IDENTITY")]
    for t in listing["tables"]:
        rows.append((t["table"], t["dtype"], f"{t['rows']} x {t['dim']}", _fmt_bytes(t["bytes_raw"]),
                     _fmt_bytes(t["bytes_stored"]), f"yes {t['keys_count']}" if t["keys"] else "no",
                     json.dumps(t["identity"], sort_keys=True) if t["identity"] is not None else "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(f"{v:<{w}}" if i not in (3, 4) else f"{v:>{w}}" for i, (v, w) in
                        enumerate(zip(r, widths))) + "  " + r[-1])
    if not listing["tables"]:
        print("(no tables)")
    return EXIT_OK


# --- checkout --------------------------------------------------------------------------------
def _split_output(args: argparse.Namespace, out: str) -> tuple[str, str | None]:
    """``-o FILE:DATASET`` for an output that does not exist yet: split at the first ``:`` whose
    head has a known extension (``out.h5:/grp/emb``, ``m.safetensors:emb.weight``)."""
    from ..formats import _EXT  # lazy: start-up time

    if args.dataset is not None:
        return out, args.dataset
    for i in [i for i, ch in enumerate(out) if ch == ":"]:
        head, tail = out[:i], out[i + 1:]
        if os.path.splitext(head)[1].lower() in _EXT and tail:
            return head, tail
    return out, None


class _CorruptionFound(Exception):
    """A read of the repository found a damaged or missing object: exit 1, not 2 (README)."""

    def __init__(self, error: EmbfmtError) -> None:
        super().__init__(error.message)
        self.error = error


# FormatError kinds that describe what the user gave (a file, a fingerprint, a stamp) or a
# repository newer than this embfmt, not damage to stored objects.
_NOT_DAMAGE = {ErrorKind.BAD_FILE, ErrorKind.BAD_FINGERPRINT, ErrorKind.BAD_PROOF,
               ErrorKind.BAD_STAMP, ErrorKind.UNSUPPORTED_VERSION}


@contextmanager
def _reading_repository() -> Iterator[None]:
    """Around code that reads only repository objects (after the user's files are open): a
    hash mismatch, a malformed object or ref, or a missing object is corruption found."""
    try:
        yield
    except (IntegrityError, FormatError, NotFoundError) as e:
        if (isinstance(e, IntegrityError)
                or (isinstance(e, NotFoundError) and e.kind is ErrorKind.MISSING_OBJECT)
                or (isinstance(e, FormatError) and e.kind not in _NOT_DAMAGE)):
            raise _CorruptionFound(e) from None
        raise


def cmd_checkout(args: argparse.Namespace) -> int:
    from ..formats import format_for_output, write  # lazy: start-up time

    if args.output == "-":
        return _checkout_stdout(args)
    out, dataset = _split_output(args, _path(args, args.output))
    if os.path.isdir(out):
        raise InputError(f"{out}: is a directory; give an output file", ErrorKind.BAD_ARGUMENT)
    # An extension that names no format is refused: writing .npy bytes under another name
    # (as checkout once did) only moves the surprise to whoever opens the file.
    fmt = format_for_output(out, args.format)
    with _open_repo(args) as repo, _reading_repository():
        cid = repo.resolve(args.rev)
        view = repo.open(args.table, cid)
        d = os.path.dirname(os.path.abspath(out))
        if not os.path.isdir(d):
            raise NotFoundError(f"{out}: directory {d} does not exist")
        # safetensors and HDF5 name the tensor after the table unless told otherwise.
        if dataset is None and fmt in ("safetensors", "hdf5"):
            dataset = args.table
        # Into an existing HDF5 / safetensors file only this dataset is written (the others are
        # kept); an existing dataset of that name, or file of another format, needs --force.
        fmt = write(out, view, dataset=dataset, fmt=fmt, overwrite=args.force,
                    vector_column=args.vector_column, key_column=args.key_column)
        if args.json:
            _print_json({"id": cid, "table": args.table, "file": out, "format": fmt,
                         "rows": view.shape[0], "dim": view.shape[1],
                         "dtype": view.version.dtype.name, "fingerprint": view.fingerprint,
                         "keys": view.version.keys_id is not None,
                         "bytes": os.path.getsize(out)})
        else:
            print(f"{out}: {args.table} at {cid[:12]}, {view.shape[0]} x {view.shape[1]} "
                  f"{view.version.dtype.name}, {view.fingerprint}")
    return EXIT_OK


def _checkout_stdout(args: argparse.Namespace) -> int:
    """``-o -``: the table goes to standard output, in --format (default npy)."""
    from ..formats import STREAMABLE, format_for_output, write_stream  # lazy: start-up time

    fmt = format_for_output("-", args.format or "npy")
    if fmt not in STREAMABLE:
        raise InputError(f"-o -: {fmt} cannot be written to standard output (it needs a seekable "
                         f"file); give a file, or --format {' / '.join(STREAMABLE)}",
                         ErrorKind.BAD_ARGUMENT)
    if args.json:
        raise InputError("-o -: --json cannot share standard output with the table; write a "
                         "file to get the JSON summary", ErrorKind.BAD_ARGUMENT)
    if fmt not in ("word2vec", "glove") and sys.stdout.isatty():
        raise InputError(f"-o -: not writing binary {fmt} to a terminal; redirect or pipe it "
                         "(-o - > FILE), or give --format word2vec", ErrorKind.BAD_ARGUMENT)
    with _open_repo(args) as repo, _reading_repository():
        view = repo.open(args.table, repo.resolve(args.rev))
        out = sys.stdout.buffer
        write_stream(out, view, dataset=args.dataset or args.table, fmt=fmt, name="<stdout>",
                     vector_column=args.vector_column, key_column=args.key_column)
        out.flush()
    return EXIT_OK


# --- refs ------------------------------------------------------------------------------------
def _delete_ref(args: argparse.Namespace, what: str) -> int:
    """``branch -d/-D NAME`` and ``tag -d NAME``."""
    if args.name is None or args.rev is not None or args.list:
        raise InputError(f"{what} --delete takes one NAME", ErrorKind.BAD_ARGUMENT)
    _check_name(args.name, what)
    uses: list[Any] = []
    cid: str | None
    with _open_repo(args) as repo:
        if what == "branch":
            cid = repo.delete_branch(args.name, force=args.force)
        else:
            cid = repo.tags().get(args.name)
            uses = repo.uses(cid) if cid is not None else []
            cid = repo.delete_tag(args.name)
    if uses:  # the versions stay: recorded uses are gc roots (spec §18.4)
        consumers = sorted({u.consumer for u in uses})
        sys.stderr.write(f"embfmt: warning: tag {args.name!r} named {cid[:12]}, which the usage log "
                         f"records as used {len(uses)} time(s) (by {', '.join(consumers[:10])}"
                         f"{' ...' if len(consumers) > 10 else ''}); those versions stay readable "
                         f"(gc keeps recorded uses) under {cid}\n")
    if args.json:
        out: dict[str, Any] = {"deleted": args.name, "id": cid}
        if what == "tag":
            out["uses"] = [u.to_dict() for u in uses]
        _print_json(out)
    else:
        print(cid)
    return EXIT_OK


def cmd_tag(args: argparse.Namespace) -> int:
    if args.delete:
        return _delete_ref(args, "tag")
    if args.list or args.name is None:
        if args.rev is not None or (args.name is not None):
            raise InputError("tag --list takes no NAME or REV", ErrorKind.BAD_ARGUMENT)
        with _open_repo(args) as repo:
            tags = repo.tags()
        if args.json:
            _print_json({"tags": tags})
        else:
            for name, cid in sorted(tags.items()):
                print(f"{name}\t{cid}")
        return EXIT_OK
    _check_name(args.name, "tag")
    with _open_repo(args) as repo:
        cid = repo.tag(args.name, args.rev or "HEAD")
    if args.json:
        _print_json({"tag": args.name, "id": cid})
    else:
        print(cid)
    return EXIT_OK


def cmd_branch(args: argparse.Namespace) -> int:
    if args.force_delete:
        args.delete = args.force = True
    if args.delete:
        return _delete_ref(args, "branch")
    if args.force:
        raise InputError("branch --force goes with -d (delete a branch no other ref reaches)",
                         ErrorKind.BAD_ARGUMENT)
    if args.list or args.name is None:
        if args.rev is not None or args.name is not None:
            raise InputError("branch --list takes no NAME or REV", ErrorKind.BAD_ARGUMENT)
        with _open_repo(args) as repo:
            branches, head = repo.branches(), repo.head_branch
        if args.json:
            _print_json({"head": head, "branches": branches})
        else:
            names = sorted(set(branches) | {head})
            for name in names:
                mark = "*" if name == head else " "
                print(f"{mark} {name}\t{branches.get(name, '(no commits yet)')}")
        return EXIT_OK
    _check_name(args.name, "branch")
    with _open_repo(args) as repo:
        cid = repo.branch(args.name, args.rev or "HEAD")
    if args.json:
        _print_json({"branch": args.name, "id": cid})
    else:
        print(cid)
    return EXIT_OK


def cmd_switch(args: argparse.Namespace) -> int:
    if args.start is not None and not args.create:
        raise InputError("switch START goes with -c (create the branch at START)", ErrorKind.BAD_ARGUMENT)
    _check_name(args.branch, "branch")
    with _open_repo(args) as repo:
        cid = repo.switch(args.branch, create=args.create, start=args.start or "HEAD")
    if args.json:
        _print_json({"branch": args.branch, "id": cid, "created": bool(args.create)})
    else:
        print(cid)
    return EXIT_OK


def cmd_reset(args: argparse.Namespace) -> int:
    _check_name(args.branch, "branch")
    with _open_repo(args) as repo:
        previous = repo.branches().get(args.branch)
        cid = repo.reset(args.branch, args.rev)
    if args.json:
        _print_json({"branch": args.branch, "id": cid, "previous": previous})
    else:
        print(cid)
    return EXIT_OK


def cmd_restore(args: argparse.Namespace) -> int:
    if args.branch:
        _check_name(args.branch, "branch")
    with _open_repo(args) as repo:
        target = repo.resolve(args.rev)
        cid = repo.restore(args.rev, branch=args.branch, message=args.message)
        branch = args.branch or repo.head_branch
    if args.json:
        _print_json({"id": cid, "branch": branch, "restored_from": target})
    else:
        print(cid)
    return EXIT_OK


def cmd_revert(args: argparse.Namespace) -> int:
    if args.branch:
        _check_name(args.branch, "branch")
    with _open_repo(args) as repo:
        target = repo.resolve(args.rev)
        cid = repo.revert(args.rev, branch=args.branch, message=args.message, author=args.author)
        branch = args.branch or repo.head_branch
        after = repo.get_commit(cid)
        before = dict(repo.get_commit(after.parents[0]).tables)
    if args.json:
        changed = {t: ("removed" if t not in after.tables else "added" if t not in before else "changed")
                   for t in sorted(set(before) | set(after.tables))
                   if before.get(t) != after.tables.get(t)}
        _print_json({"id": cid, "branch": branch, "reverts": target, "tables": changed})
    else:
        print(cid)
    return EXIT_OK


# --- verify and gc ---------------------------------------------------------------------------
_HEX64 = re.compile(r"[0-9a-f]{64}")


def cmd_verify(args: argparse.Namespace) -> int:
    if args.all and args.rev:
        raise InputError("verify: give a REV or --all, not both", ErrorKind.BAD_ARGUMENT)
    with _open_repo(args) as repo:
        try:
            rep = repo.verify(args.rev or None)
            d = rep.to_dict()
        except (IntegrityError, FormatError, NotFoundError) as e:
            # The revision's own commit (or the ref naming it) is corrupt or missing: that is
            # corruption found, not a usage error.
            if isinstance(e, NotFoundError) and e.kind is not ErrorKind.MISSING_OBJECT:
                raise
            m = _HEX64.search(e.message)
            d = {"ok": False, "commits": 0, "tables": 0, "chunks": 0, "keys": 0,
                 "errors": [{"object": m.group(0) if m else (args.rev or ""), "kind": e.kind.value,
                             "error": e.message}]}
    d["revision"] = args.rev or None
    if args.json:
        _print_json(d)
    else:
        scope = f"revision {args.rev}" if args.rev else "all refs"
        status = "ok" if d["ok"] else f"FAILED ({len(d['errors'])} errors)"
        print(f"{status}: {scope}: {d['commits']} commits, {d['tables']} table versions, "
              f"{d['chunks']} chunks, {d['keys']} key objects checked")
    for err in d["errors"]:
        sys.stderr.write(f"embfmt: verify: object {err['object']} [{err['kind']}]: {err['error']}\n")
    return EXIT_OK if d["ok"] else EXIT_DIFFERENT


def _seconds(text: str, option: str) -> float:
    """A duration in seconds >= 0, or ``now`` (0)."""
    if text == "now":
        return 0.0
    try:
        v = float(text)
    except ValueError:
        v = float("nan")
    if not v >= 0 or v == float("inf"):
        raise InputError(f"{option} takes SECONDS (>= 0) or 'now', got {text!r}", ErrorKind.BAD_ARGUMENT)
    return v


def cmd_gc(args: argparse.Namespace) -> int:
    from ..history.reflog import DEFAULT_EXPIRE_SECONDS  # lazy: start-up time

    grace = 0.0 if args.prune_now else args.grace
    if grace < 0:
        raise InputError(f"--grace must be >= 0, got {grace}", ErrorKind.BAD_ARGUMENT)
    if args.status:
        return _gc_status(args, grace)
    expire = DEFAULT_EXPIRE_SECONDS if args.expire_reflog is None else _seconds(args.expire_reflog, "--expire-reflog")
    with _open_repo(args) as repo:
        rep = repo.gc(grace_seconds=grace, reflog_expire_seconds=expire)
        usage = repo.disk_usage()
    d = rep.to_dict()
    d.update(grace_seconds=grace, bytes_on_disk=usage, reflog_expire_seconds=expire)
    if args.json:
        _print_json(d)
    else:
        print(f"removed {d['objects_removed']} objects ({_fmt_bytes(d['bytes_freed'])} freed), "
              f"kept {d['objects_kept']} ({_fmt_bytes(usage)} on disk); grace {grace:g} s; "
              f"{d['reflog_expired']} reflog entries expired (older than {expire:g} s)")
    return EXIT_OK


def cmd_reflog(args: argparse.Namespace) -> int:
    if args.max_count is not None and args.max_count < 0:
        raise InputError(f"-n must be >= 0, got {args.max_count}", ErrorKind.BAD_ARGUMENT)
    problems: list[dict[str, str]] = []
    with _open_repo(args) as repo:
        entries = repo.reflog(args.ref, problems=problems)
    index: dict[str, int] = {}
    shown = []
    for e in entries:  # newest first; ref@{i}: the i-th move back in that ref's log
        i = index[e.ref] = index.get(e.ref, -1) + 1
        shown.append((i, e))
    shown = shown[:args.max_count] if args.max_count is not None else shown
    if args.json:
        _print_json({"ref": args.ref, "entries": [{**e.to_dict(), "index": i} for i, e in shown],
                     "problems": problems})
    else:
        for i, e in shown:
            print(f"{e.new[:12]} {e.ref}@{{{i}}}  {e.time}  {e.author}  {e.reason}")
    for p in problems:
        sys.stderr.write(f"embfmt: reflog: {p['object']} [{p['kind']}]: {p['error']}\n")
    return EXIT_DIFFERENT if problems else EXIT_OK


def _gc_status(args: argparse.Namespace, grace: float) -> int:
    with _open_repo(args) as repo:
        st = repo.gc_status(grace_seconds=grace)
    if args.json:
        _print_json(st)
        return EXIT_OK
    b = _fmt_bytes
    print(f"objects: {st['objects']} ({b(st['bytes'])}); unreferenced: {st['unreferenced_objects']} "
          f"({b(st['unreferenced_bytes'])}), {st['unreferenced_kept_by_grace']} of them younger than "
          f"the grace period ({grace:g} s)")
    print(f"temp files: {st['temp_files']} ({b(st['temp_bytes'])}), {st['temp_kept_by_grace']} "
          "younger than the grace period")
    print(f"writes running: {st['writes_running']}; leases of dead writers: {st['dead_writer_leases']}")
    if st["unreferenced_objects"] or st["temp_files"]:
        print(f"`embfmt gc` removes what is older than the grace period; `embfmt gc --prune-now` "
              "removes the rest too, except what a running write holds")
    return EXIT_OK


# --- fingerprint and demo --------------------------------------------------------------------
def cmd_fingerprint(args: argparse.Namespace) -> int:
    from ..canonical.fingerprint import fingerprint  # lazy: start-up time
    from ..source import open_matrix  # lazy: start-up time

    path = _path(args, args.file)
    t0 = time.perf_counter()
    with open_matrix(path, args.dataset, args.format) as m:
        fp = fingerprint(m, backend=args.backend)
    secs = time.perf_counter() - t0
    if args.json:
        d = fp.to_dict()
        d.update(file=args.file, seconds=round(secs, 6),
                 gb_per_s=round(fp.nbytes / secs / 1e9, 3) if secs > 0 else None)
        if args.dataset:
            d["dataset"] = args.dataset
        _print_json(d)
    else:
        print(fp.root)
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo  # lazy: start-up time

    return run_demo(_path(args, args.dir) if args.dir else None, quiet=args.quiet)


# --- diff and verify-array -------------------------------------------------------------------
_FINGERPRINT_TEXT = re.compile(r"\s*emb\d+:")


class _Operand:
    """One side of ``embfmt diff``: a matrix file or a revision of the repository."""

    def __init__(self, spec: str, kind: str, path: str | None = None, dataset: str | None = None) -> None:
        self.spec, self.kind, self.path, self.dataset = spec, kind, path, dataset


_REPO_CONTROL = ("HEAD", "embfmt.json", "objects", "refs", "tmp", "config")


def _is_file_operand(args: argparse.Namespace, spec: str) -> bool:
    """``spec`` names an existing file that is not part of the repository itself (so ``HEAD``
    run inside a repository is the revision, not the repository's HEAD file)."""
    full = _path(args, spec)
    if not spec or not os.path.isfile(full):
        return False
    base = os.path.realpath(getattr(args, "chdir", None) or ".")
    if os.path.isfile(os.path.join(base, "embfmt.json")):
        real = os.path.realpath(full)
        for name in _REPO_CONTROL:
            ctl = os.path.join(base, name)
            if real == ctl or real.startswith(ctl + os.sep):
                return False
    return True


def _spelled_as_file(spec: str) -> bool:
    """``./x``, ``../x``, an absolute path, or a name (before any ``:DATASET``) with a matrix
    file extension: a file whatever the repository holds (spec-free CLI rule, README)."""
    from ..formats import has_matrix_extension  # lazy: start-up time

    seps = ("/", os.sep)
    if spec.startswith(tuple(p + s for p in (".", "..") for s in seps) + seps):
        return True
    heads = [spec] + [spec[:i] for i, ch in enumerate(spec) if ch == ":"]
    return any(has_matrix_extension(h) for h in heads)


def _names_revision(args: argparse.Namespace, spec: str) -> str | None:
    """The commit ``spec`` resolves to in the repository of the command, or None."""
    from ..repo import Repo  # lazy: start-up time

    base = getattr(args, "chdir", None) or "."
    try:
        with Repo(os.path.abspath(base)) as repo:
            return repo.resolve(spec)
    except EmbfmtError:
        return None


def _classify(args: argparse.Namespace, spec: str, dataset: str | None) -> _Operand:
    """A matrix file or a revision. Spelled as a file (``./base``, a path, a known extension):
    a file. A bare name that is an existing file and not a revision: that file. One that is
    both is refused (exit 2), naming both readings: a file never silently shadows a revision."""
    path, ds = spec, None
    if not _is_file_operand(args, spec):
        path, ds = _split_dataset(args, spec)
    if ds is not None and dataset is not None and ds != dataset:
        raise InputError(f"{spec}: dataset given twice ({ds!r} and {dataset!r})", ErrorKind.BAD_ARGUMENT)
    op = _Operand(spec, "file", _path(args, path), ds if ds is not None else dataset)
    if _spelled_as_file(spec):
        return op  # a missing file is then "no such file", never a revision by accident
    if not _is_file_operand(args, path):
        return _Operand(spec, "rev")
    cid = _names_revision(args, spec)
    if cid is not None:
        raise InputError(f"{spec!r} is both a file ({_path(args, path)}) and a revision (commit "
                         f"{cid[:12]}); write ./{spec} for the file or {cid[:12]} for the revision",
                         ErrorKind.AMBIGUOUS_REVISION)
    return op


def _pick_table(repo: Repo, revs: list[str], table: str | None) -> str:
    """``--table``, or the one table every revision in ``revs`` has."""
    sets = [set(repo.get_commit(repo.resolve(r)).tables) for r in revs]
    if table is not None:
        return table
    common = set.intersection(*sets) if sets else set()
    if len(common) == 1:
        return next(iter(common))
    what = " and ".join(repr(r) for r in revs)
    if not common:
        raise InputError(f"revisions {what} share no table" if len(revs) > 1
                         else f"revision {what} has no table", ErrorKind.BAD_ARGUMENT)
    raise InputError(f"give --table: {what} {'share' if len(revs) > 1 else 'has'} "
                     f"{len(common)} tables ({', '.join(sorted(common))})", ErrorKind.BAD_ARGUMENT)


def _rev_error(op: _Operand, e: EmbfmtError) -> EmbfmtError:
    """A revision that does not resolve may have been meant as a file: say both."""
    if isinstance(e, NotFoundError) and e.kind is ErrorKind.NOT_A_REPOSITORY:
        return NotFoundError(f"{op.spec}: no such file, and no repository to read it as a "
                             f"revision ({e.message})", ErrorKind.NOT_FOUND)
    if e.kind is ErrorKind.BAD_REVISION or (e.kind is ErrorKind.NOT_FOUND and "unknown revision" in e.message):
        return type(e)(f"{op.spec}: no such file or revision ({e.message})", e.kind)
    return e


def _view_info(view: Any) -> dict[str, Any]:
    return {"rev": view.rev, "commit": view.commit, "table": view.name, "fingerprint": view.fingerprint}


def _fmt_num(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if isinstance(v, int):
        return str(v)
    return f"{v:.6g}"


def _print_diff(d: Any, labels: tuple[str, str], top: int) -> None:
    for side, label, n in (("a", labels[0], d.n_a), ("b", labels[1], d.n_b)):
        print(f"{side}: {label}  ({n} x {d.dim} {d.dtype})")
    c = d.to_dict(top=0)["counts"]
    print(f"matched by {d.matched_by}: {c['changed']} changed, {c['added']} added, "
          f"{c['removed']} removed, {c['unchanged']} unchanged")
    if d.identical:
        print("identical")
    summ = d.summary()
    if summ and d.n_changed:
        cols = ("count", "mean", "p50", "p90", "p99", "max")
        print()
        print(f"{'metric':<8} " + " ".join(f"{h:>12}" for h in cols))
        for m, s in summ.items():
            print(f"{m:<8} " + " ".join(f"{_fmt_num(s[h]):>12}" for h in cols)
                  + (f"  ({s['nonfinite']} non-finite)" if s["nonfinite"] else ""))
    rows = d.top(top) if top else []
    if rows:
        print()
        print(f"top {len(rows)} by l2:")
        keyed = "key" in rows[0]
        head = f"{'a':>10} {'b':>10} " + (f"{'key':>16} " if keyed else "")
        print(head + " ".join(f"{m:>12}" for m in ("l2", "cosine", "max_abs", "ulp")))
        for r in rows:
            line = f"{r['a']:>10} {r['b']:>10} " + (f"{str(r['key'])[:16]:>16} " if keyed else "")
            print(line + " ".join(f"{_fmt_num(r[m]):>12}" for m in ("l2", "cosine", "max_abs", "ulp")))
    if d.procrustes is not None:
        p = d.procrustes
        print()
        if p.get("rows"):
            print(f"procrustes ({p['rows']} rows): raw l2 mean {_fmt_num(p['raw_l2_mean'])}, residual "
                  f"after best rotation {_fmt_num(p['residual_l2_mean'])}; rotation explains "
                  f"{100 * p['rotation_explains']:.1f}% of the squared drift"
                  + (" (rotation-like)" if p["is_rotation_like"] else ""))
        else:
            print("procrustes: no finite matched rows")
    if d.knn is not None:
        k = d.knn
        if k.get("mean") is None:
            print(f"knn@{k['k']}: too few rows ({k['rows']})")
        else:
            print(f"knn@{k['k']} overlap ({k['rows']} rows): mean {k['mean']:.4f}, p10 {k['p10']:.4f}, "
                  f"p50 {k['p50']:.4f}, min {k['min']:.4f}")


def cmd_diff(args: argparse.Namespace) -> int:
    from ..compare.diff import diff  # lazy: start-up time
    from ..canonical.fingerprint import fingerprint  # lazy: start-up time
    from ..source import open_matrix  # lazy: start-up time

    if args.top < 0:
        raise InputError(f"--top must be >= 0, got {args.top}", ErrorKind.BAD_ARGUMENT)
    if args.knn < 0:
        raise InputError(f"--knn must be >= 0, got {args.knn}", ErrorKind.BAD_ARGUMENT)
    if args.sample < 1:
        raise InputError(f"--sample must be >= 1, got {args.sample}", ErrorKind.BAD_ARGUMENT)
    ops = [_classify(args, args.a, args.dataset_a), _classify(args, args.b, args.dataset_b)]
    for op, opt in zip(ops, ("--dataset-a", "--dataset-b")):
        if op.kind == "rev" and getattr(args, opt[2:].replace("-", "_")) is not None:
            raise InputError(f"{opt} given, but {op.spec!r} is not a file", ErrorKind.BAD_ARGUMENT)
    summary = [o for o in ("--stat", "--name-only", "--name-status") if getattr(args, o[2:].replace("-", "_"))]
    if len(summary) > 1 or (summary and args.json):
        raise InputError(f"diff: {' and '.join(summary + (['--json'] if args.json else []))} "
                         "cannot be combined; choose one", ErrorKind.BAD_ARGUMENT)
    # A summary shows counts only: per-row statistics would be computed for nothing.
    kw = dict(stats=args.stats and (not summary or bool(args.plot)), procrustes=args.procrustes,
              knn=args.knn, sample=args.sample)
    if all(op.kind == "rev" for op in ops) and args.table is None:
        with _open_repo(args) as repo, _reading_repository():
            try:
                ta, tb = (set(repo.get_commit(repo.resolve(op.spec)).tables) for op in ops)
            except EmbfmtError as e:
                bad = next((op for op in ops if op.spec in e.message), ops[0])
                raise _rev_error(bad, e) from None
            if not (len(ta) == 1 and ta == tb):  # every table, not just one of them
                return _diff_tables(args, repo, ops, kw, summary[0] if summary else None)
    with ExitStack() as stack:
        sides: list[Any] = []
        infos: list[dict[str, Any]] = []
        labels: list[str] = []
        for op in ops:  # open (and check) the files first
            if op.kind == "file":
                m = stack.enter_context(open_matrix(op.path, op.dataset))  # type: ignore[arg-type]
                sides.append(m)
                infos.append({"file": op.spec, "dataset": op.dataset})
                labels.append(op.spec + (f" [{op.dataset}]" if op.dataset else ""))
            else:
                sides.append(None)
                infos.append({})
                labels.append(op.spec)
        stack.enter_context(_reading_repository())  # from here on only the repository is read
        revs = [op for op in ops if op.kind == "rev"]
        if revs:
            try:
                repo = stack.enter_context(_open_repo(args))
                table = _pick_table(repo, [op.spec for op in revs], args.table)
                for i, op in enumerate(ops):
                    if op.kind == "rev":
                        sides[i] = repo.open(table, op.spec)
            except EmbfmtError as e:
                bad = next((op for op in revs if op.spec in e.message), revs[0])
                raise _rev_error(bad, e) from None
        elif args.table is not None:
            raise InputError("--table applies to revisions; both operands are files", ErrorKind.BAD_ARGUMENT)
        if len(revs) == 2:
            d = repo.diff(ops[0].spec, ops[1].spec, table, **kw)
        else:
            d = diff(sides[0], sides[1], **kw)
        for i, (side, op) in enumerate(zip(sides, ops)):
            if op.kind == "rev":
                v = _view_info(side)
                infos[i] = v
                labels[i] = f"{op.spec} (commit {v['commit'][:12]}, table {v['table']})"
            elif args.json:
                infos[i]["fingerprint"] = d.info.get(f"fingerprint_{'ab'[i]}") or fingerprint(side).root
        for side_name, info in zip("ab", infos):
            d.info[side_name] = {**d.info.get(side_name, {}), **info}
        if args.plot:
            from ..compare.plot import plot_diff  # lazy: start-up time

            plot_diff(d, _path(args, args.plot), title=None)
    if args.json:
        _print_json(d.to_dict(top=args.top, rows=args.rows))
    elif summary:
        name = d.info.get("b", {}).get("table") or args.b
        _print_summary([(name, "unchanged" if d.identical else "changed", d, None, None)], summary[0])
    else:
        _print_diff(d, (labels[0], labels[1]), args.top)
        if args.rows:
            _print_rows(d)
        if args.plot:
            print(f"wrote {_path(args, args.plot)}")
    return EXIT_OK if d.identical else EXIT_DIFFERENT


def _diff_tables(args: argparse.Namespace, repo: Repo, ops: list[_Operand], kw: dict[str, Any],
                 summary: str | None) -> int:
    """``embfmt diff A B`` of two revisions without --table: every table of either side."""
    try:
        td = repo.diff(ops[0].spec, ops[1].spec, **kw)
    except EmbfmtError as e:
        bad = next((op for op in ops if op.spec in e.message), ops[0])
        raise _rev_error(bad, e) from None
    if args.plot:
        from ..compare.plot import plot_tables  # lazy: start-up time

        plot_tables(td, _path(args, args.plot))
    entries = []
    for name, st in td.status().items():
        sc = td.schema_changed.get(name)
        entries.append((name, st, td.diffs.get(name), sc[0] if sc else td.removed.get(name),
                        sc[1] if sc else td.added.get(name)))
    if args.json:
        _print_json(td.to_dict(top=args.top, rows=args.rows))
    elif summary:
        _print_summary(entries, summary)
    else:
        for side in "ab":
            i = td.info[side]
            print(f"{side}: {i['rev']}  (commit {i['commit'][:12]})")
        c = td.to_dict(top=0)["table_counts"]
        print(f"{len(entries)} tables: {c['changed']} changed, {c['added']} added, "
              f"{c['removed']} removed, {c['unchanged']} unchanged")
        for name, st, d, a, b in entries:
            print()
            if d is not None and not d.identical:
                print(f"== table {name}: changed ==")
                _print_diff(d, (ops[0].spec, ops[1].spec), args.top)
                if args.rows:
                    _print_rows(d)
            elif d is not None:
                print(f"== table {name}: unchanged ({d.n_a} x {d.dim} {d.dtype}) ==")
            elif a is not None and b is not None:
                print(f"== table {name}: changed: {a['rows']} x {a['dim']} {a['dtype']} -> "
                      f"{b['rows']} x {b['dim']} {b['dtype']} (dtype or D changed: rows not compared) ==")
            else:
                t = a if a is not None else b
                print(f"== table {name}: {st} ({t['rows']} x {t['dim']} {t['dtype']}) ==")
        if args.plot:
            print(f"\nwrote {_path(args, args.plot)}")
    return EXIT_OK if td.identical else EXIT_DIFFERENT


def _print_summary(entries: list[tuple[str, str, Any, Any, Any]], mode: str) -> None:
    """git's --stat / --name-only / --name-status, one line per table that differs."""
    differ = [e for e in entries if e[1] != "unchanged"]
    if mode == "--name-only":
        for name, *_ in differ:
            print(name)
        return
    if mode == "--name-status":
        for name, st, *_ in differ:
            print(f"{'MAD'[('changed', 'added', 'removed').index(st)]}\t{name}")
        return
    width = max((len(e[0]) for e in differ), default=0)
    for name, st, d, a, b in differ:
        if d is not None:
            what = (f"{d.n_changed} changed, {len(d.added)} added, {len(d.removed)} removed "
                    f"({d.n_a} -> {d.n_b} rows)")
        elif a is not None and b is not None:
            what = f"dtype or D changed ({a['dtype']} x {a['dim']} -> {b['dtype']} x {b['dim']})"
        else:
            t = a if a is not None else b
            what = f"{st} ({t['rows']} x {t['dim']} {t['dtype']})"
        print(f" {name:<{width}} | {what}")
    if differ:
        n = {k: sum(1 for e in differ if e[1] == k) for k in ("changed", "added", "removed")}
        print(f" {len(differ)} table{'s' if len(differ) != 1 else ''} differ: {n['changed']} changed, "
              f"{n['added']} added, {n['removed']} removed; {len(entries) - len(differ)} unchanged")


def _print_rows(d: Any) -> None:
    print()
    print("changed (a -> b): " + " ".join(f"{x}->{y}" if x != y else str(x)
                                        for x, y in zip(d.changed_a.tolist(), d.changed_b.tolist())))
    print("added (b): " + " ".join(map(str, d.added.tolist())))
    print("removed (a): " + " ".join(map(str, d.removed.tolist())))


def cmd_verify_array(args: argparse.Namespace) -> int:
    from ..source import open_matrix  # lazy: start-up time
    from ..compare.verify_array import verify  # lazy: start-up time

    tol = dict(atol=args.atol, rtol=args.rtol, ulp=args.ulp, min_cosine=args.min_cosine)
    against = args.against
    is_fp = bool(_FINGERPRINT_TEXT.match(against))
    if is_fp and args.table is not None:
        raise InputError("--table applies to a revision, not to a fingerprint", ErrorKind.BAD_ARGUMENT)
    if is_fp:
        from ..canonical.fingerprint import parse_root  # lazy: start-up time

        parse_root(against)  # a malformed fingerprint is a usage error before any file is read
    path = _path(args, args.file)
    with ExitStack() as stack:
        m = stack.enter_context(open_matrix(path, args.dataset))
        if is_fp:
            res = verify(m, against.strip(), **tol)
        else:
            op = _Operand(against, "rev")
            stack.enter_context(_reading_repository())  # FILE is open: only the repository now
            try:
                repo = stack.enter_context(_open_repo(args))
                table = _pick_table(repo, [against], args.table)
                view = repo.open(table, against)
            except EmbfmtError as e:
                if isinstance(e, NotFoundError) and e.kind is ErrorKind.NOT_A_REPOSITORY:
                    raise NotFoundError(f"--against {against}: not a fingerprint (emb1:b3:...), and "
                                        f"no repository to read it as a revision ({e.message})",
                                        ErrorKind.NOT_FOUND) from None
                raise _rev_error(op, e) from None
            res = verify(m, view, **tol)
    if args.json:
        _print_json(res.to_dict())
    else:
        what = (f"{against} (commit {res.reference['commit'][:12]}, table {res.reference['table']})"
                if res.reference.get("type") == "stored" else res.expected)
        tol_text = "bit-exact" if res.mode == "exact" else f"{res.mode} {res.tolerance[res.mode]:g}"
        if res.passed:
            extra = "" if res.equal else f"; {len(res.rows_differ or [])} rows differ within tolerance"
            print(f"PASS: {args.file} matches {what} ({tol_text}{extra})")
        else:
            print(f"FAIL: {args.file} does not match {what} ({tol_text})")
            if res.reason:
                print(f"  {res.reason}")
            print(f"  expected {res.expected}")
            print(f"  actual   {res.actual}")
            if res.chunks_differ is not None:
                print(f"  {len(res.chunks_differ)} chunks differ; rows {_first(res.rows_differ or [])}")
            if res.rows_failed:
                print(f"  {res.n_failed} rows outside tolerance; first:")
                for r in res.rows_failed[:10]:
                    print(f"    row {r['row']}: l2 {_fmt_num(r['l2'])}, cosine {_fmt_num(r['cosine'])}, "
                          f"max_abs {_fmt_num(r['max_abs'])}, ulp {r['ulp']}")
    return EXIT_OK if res.passed else EXIT_DIFFERENT


def _first(xs: list[int], n: int = 10) -> str:
    return " ".join(map(str, xs[:n])) + (f" ... ({len(xs)} in all)" if len(xs) > n else "")


# --- lineage: stamp, record-use, uses, blame --------------------------------------------------
def cmd_stamp(args: argparse.Namespace) -> int:
    with _open_repo(args) as repo:
        if args.resolve:
            if args.rev:
                raise InputError("stamp --resolve STAMP takes no REV", ErrorKind.BAD_ARGUMENT)
            info = repo.resolve_stamp(args.resolve)
        else:
            if not args.table:
                raise InputError("stamp: give TABLE [REV], or --resolve STAMP", ErrorKind.BAD_ARGUMENT)
            info = repo.resolve_stamp(repo.stamp(args.table, args.rev or "HEAD"))
    if args.json:
        _print_json(info.to_dict())
    elif args.resolve:
        print(f"table {info.table}  commit {info.commit}\nversion {info.table_version}\n"
              f"{info.rows} x {info.dim} {info.dtype}  {info.fingerprint}")
    else:
        print(info.stamp)
    return EXIT_OK


def cmd_record_use(args: argparse.Namespace) -> int:
    context = None
    if args.context is not None:
        try:
            context = json.loads(args.context)
        except json.JSONDecodeError as e:
            raise InputError(f"--context: not JSON ({e})", ErrorKind.BAD_ARGUMENT) from None
    with _open_repo(args) as repo:
        rid = repo.record_use(args.stamp, consumer=args.consumer, context=context)
    if args.json:
        _print_json({"id": rid, "stamp": args.stamp, "consumer": args.consumer, "context": context})
    else:
        print(rid)
    return EXIT_OK


def cmd_uses(args: argparse.Namespace) -> int:
    with _open_repo(args) as repo:
        cid = repo.resolve(args.rev) if args.rev else None  # a bad REV is a usage error (2)
        if args.table:
            _check_name(args.table, "table")
        try:
            recs = repo.uses(cid, table=args.table)
        except (IntegrityError, FormatError) as e:
            # A damaged usage log is corruption found, like verify's: exit 1.
            sys.stderr.write(f"embfmt: uses: [{e.kind.value}]: {e}\n")
            return EXIT_DIFFERENT
    if args.json:
        _print_json({"rev": args.rev, "commit": cid, "table": args.table, "count": len(recs),
                     "consumers": sorted({r.consumer for r in recs}),
                     "uses": [r.to_dict() for r in recs]})
        return EXIT_OK
    for r in recs:
        ctx = f"  {json.dumps(r.context, sort_keys=True)}" if r.context else ""
        print(f"{r.time}  {r.consumer}  {r.table}@{r.commit[:12]}  {r.id[:12]}{ctx}")
    scope = f" of {args.rev} ({cid[:12]})" if cid else ""
    print(f"{len(recs)} uses{scope} by {len({r.consumer for r in recs})} consumers")
    return EXIT_OK


def cmd_blame(args: argparse.Namespace) -> int:
    from ..compare.blame import blame  # lazy: start-up time

    if (args.row is None) == (args.key is None):
        raise InputError("blame: give ROW or --key K (one of them)", ErrorKind.BAD_ARGUMENT)
    row = None
    if args.row is not None:
        if not re.fullmatch(r"\d+", args.row):
            raise InputError(f"blame: ROW must be an integer >= 0, got {args.row!r}", ErrorKind.BAD_ARGUMENT)
        row = int(args.row)
    with _open_repo(args) as repo:
        rep = blame(repo.revisions, args.table, row, key=args.key, rev=args.rev)
    if args.json:
        _print_json(rep.to_dict())
        return EXIT_OK
    what = f"key {args.key}" if args.key is not None else f"row {row}"
    print(f"table {args.table}, {what}, from {args.rev} ({rep.commit[:12]}): {len(rep.entries)} "
          f"versions changed it ({rep.commits_walked} commits walked, {rep.chunks_decoded} chunks decoded)")
    for e in rep.entries:
        where = f"row {e.row}" if e.row is not None else f"was row {e.parent_row}"
        if e.row is not None and e.parent_row is not None and e.row != e.parent_row:
            where += f" (was {e.parent_row})"
        if e.drift is not None:
            d = e.drift
            detail = (f"l2 {_fmt_num(d['l2'])}  cos {_fmt_num(d['cosine'])}  "
                      f"max_abs {_fmt_num(d['max_abs'])}  ulp {d['ulp']}")
        elif e.schema_change:
            detail = "dtype or D changed"
        else:
            detail = ""
        print(f"{e.kind:<8} {e.commit[:12]}  {e.time}  {e.author}  {where}  {detail}".rstrip())
        print(f"         {e.message.splitlines()[0] if e.message else '(no message)'}")
    return EXIT_OK


# --- parser ----------------------------------------------------------------------------------
_FORMAT_CHOICES = ["npy", "hdf5", "h5", "safetensors", "parquet", "arrow", "word2vec", "glove",
                   "word2vec-bin", "torch"]


# Command name -> its parser, for "did you mean" on a mistyped option (filled by build_parser).
_SUBPARSERS: dict[str, argparse.ArgumentParser] = {}


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="embfmt", description="Change tracking for embedding tables.",
                epilog="Exit codes: 0 success; 1 a difference or corruption was found (verify, a diff that differs, verify-array failing, checkout or diff reading a damaged repository); 2 usage or input error.")
    p.add_argument("--version", action="version", version=f"embfmt {_version()}")
    p.add_argument("-C", dest="chdir", metavar="PATH",
                   help="run as if started in PATH (a repository, or a directory in a project "
                        "whose .embfmt/ is found walking up; relative paths are taken relative "
                        "to it, as with git -C)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    _SUBPARSERS.clear()

    def add(name: str, func: Callable[[argparse.Namespace], int], help: str,
            json_help: str | None = "print JSON (sorted keys)") -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help)
        _SUBPARSERS[name] = sp
        if json_help:
            sp.add_argument("--json", action="store_true", help=json_help)
        if name != "demo":  # demo's own --quiet prints only the repository path
            sp.add_argument("-q", "--quiet", action="store_true",
                            help="no progress bars (they show only when stderr is a terminal)")
        sp.set_defaults(func=func)
        return sp

    f = add("fingerprint", cmd_fingerprint, "print the canonical fingerprint of a matrix file",
            "print rows, dim, dtype, chunk_rows, chunks, seconds and GB/s as JSON")
    f.description = ("Fingerprint a matrix stored in a .npy, HDF5, .safetensors, Parquet, Arrow "
                     "or word-vector file (FILE:DATASET names a dataset; memory-mapped or read "
                     "in blocks, except text formats).")
    f.add_argument("file")
    f.add_argument("--dataset", help="HDF5 dataset path, safetensors tensor or Parquet/Arrow vector column")
    f.add_argument("--format", choices=_FORMAT_CHOICES,
                   help="file format (default: by extension, then magic bytes)")
    f.add_argument("--backend", default="auto", choices=["auto", "cpu", "gpu", "reference"])

    i = add("init", cmd_init, "create an empty repository: .embfmt/ in the current directory, or PATH")
    i.description = ("Without PATH, make the current directory (or -C's) a project: its "
                     "repository goes in a hidden .embfmt/ directory, found from the directory and "
                     "every directory below it, as git finds .git. With PATH, PATH itself becomes "
                     "the repository (an empty or missing directory).")
    i.add_argument("path", nargs="?", help="a directory to become the repository itself; must be "
                                           "empty or missing (default: .embfmt/ here)")
    i.add_argument("--initial-branch", metavar="NAME",
                   help="default: the global setting init.defaultBranch, else main")

    c = add("commit", cmd_commit, "commit new versions of tables from matrix files",
            "print the commit id and each table's write stats as JSON")
    c.add_argument("tables", nargs="+", metavar="TABLE=FILE",
                   help="a table and its .npy, HDF5, .safetensors, Parquet, Arrow or word-vector "
                        "(.vec/.txt/.bin) file; FILE:DATASET names an HDF5 dataset, safetensors "
                        "tensor or Parquet vector column (e.g. emb=model.h5:/path/ds). Keys in "
                        "the file (a Parquet key column, words) become the table's row keys")
    c.add_argument("--format", choices=_FORMAT_CHOICES,
                   help="format of every FILE (default: by extension, then magic bytes)")
    c.add_argument("--dtype", choices=["float64", "float32", "float16", "bfloat16", "int8", "uint8"],
                   help="dtype to parse word-vector text into (default float32)")
    c.add_argument("--vector-column", metavar="NAME",
                   help="Parquet/Arrow vector column (default: the only list column)")
    c.add_argument("--key-column", metavar="NAME",
                   help="Parquet/Arrow key column (default: a column named key or id, if any)")
    c.add_argument("-m", "--message", required=True)
    c.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE",
                   help="commit metadata: KEY gets the string VALUE, as typed (1.10 stays 1.10)")
    c.add_argument("--meta-json", action="append", default=[], metavar="KEY=JSON",
                   help="commit metadata: KEY gets the JSON value (a number, true, null, a list "
                        "or an object), e.g. --meta-json lr=0.001 --meta-json tags='[1, 2]'")
    c.add_argument("--branch", help="branch to commit to (default: HEAD's; created if missing)")
    c.add_argument("--dataset", help="HDF5 dataset or safetensors tensor for every FILE without :DATASET")
    c.add_argument("--keys", action="append", default=[], metavar="TABLE=FILE.npy",
                   help="row keys: a 1-D .npy of unique integers or strings, one per row "
                        "(replaces keys read from the file)")
    c.add_argument("--carry-keys", action="append", default=[], metavar="TABLE",
                   help="keep the parent version's keys: FILE holds the same rows in the same "
                        "order. A table whose parent has keys needs keys (from FILE or --keys), "
                        "--carry-keys, --append-keys or --drop-keys")
    c.add_argument("--append-keys", action="append", default=[], metavar="TABLE=FILE.npy",
                   help="the parent's keys for its rows, which come first in FILE, then the "
                        "keys in FILE.npy for the rows appended after them")
    c.add_argument("--drop-keys", action="append", default=[], metavar="TABLE",
                   help="commit TABLE without keys although its parent version has some")
    c.add_argument("--identity", action="append", default=[], metavar="TABLE=JSON",
                   help='identity stamp, e.g. emb=\'{"model": "enc", "revision": "3"}\'')
    c.add_argument("--dry-run", action="store_true",
                   help="check and encode everything, then report per table what would be stored "
                        "(new/changed/unchanged, rows changed, bytes, encodings) without writing "
                        "any object or moving any ref")
    c.add_argument("--allow-identity-change", action="store_true")
    c.add_argument("--allow-schema-change", action="store_true",
                   help="allow a table's dtype or dim to change")
    c.add_argument("--author", help="default: $EMBFMT_AUTHOR, then the settings author or "
                                    "user.name/user.email (repository, then global; see embfmt "
                                    "config), then user@host")

    lg = add("log", cmd_log, "list commits, newest first")
    lg.add_argument("rev", nargs="?", default="HEAD", metavar="REV",
                    help="a revision (default HEAD) or a range A..B: the commits reachable from B "
                         "and not from A, as in git (an empty side is HEAD)")
    lg.add_argument("-n", "--max-count", type=int, metavar="N", help="show at most N commits")
    lg.add_argument("--oneline", action="store_true",
                    help="one line per commit: short id, refs, first line of the message")
    lg.add_argument("--table", metavar="TABLE",
                    help="only commits that changed TABLE (added, removed or a new version)")

    s = add("show", cmd_show, "show one commit and its tables, or with REV:TABLE one table version "
                              "in detail")
    s.add_argument("rev", nargs="?", default="HEAD", metavar="REV[:TABLE]",
                   help="a revision (default HEAD); REV:TABLE shows that table's version: "
                        "fingerprint, chunks, stored bytes, keys, identity, change vs the parent")

    ls = add("ls", cmd_ls, "list the tables of a revision: dtype, shape, raw and stored bytes, "
                           "keys, identity")
    ls.add_argument("rev", nargs="?", default="HEAD", metavar="REV", help="default: HEAD")

    cf = add("config", cmd_config, "get, set or list settings: author, user.name, user.email, "
                                   "init.defaultBranch, core.progress, core.durable",
             "print the value and its scope (or, with --list, every setting) as JSON")
    cf.description = ("Settings of the repository (its config file) or, with --global, of the user "
                      "($XDG_CONFIG_HOME/embfmt/config, else ~/.config/embfmt/config); a "
                      "repository's setting wins. KEY prints the value in force (exit 1 when it "
                      "is not set), KEY VALUE sets it, --unset KEY removes it, --list shows them "
                      "all. The commit author comes from --author, then $EMBFMT_AUTHOR, then "
                      "author (or user.name and user.email) of the repository, then of the "
                      "global settings, then user@host. Settings are never part of any object.")
    cf.add_argument("key", nargs="?", metavar="KEY", help="one of: " + ", ".join(
        ["author", "user.name", "user.email", "init.defaultBranch", "core.progress", "core.durable"]))
    cf.add_argument("value", nargs="?", metavar="VALUE")
    cf.add_argument("--global", dest="glob", action="store_true", help="the user's settings file")
    cf.add_argument("--list", "-l", action="store_true", help="every setting in force")
    cf.add_argument("--unset", action="store_true", help="remove KEY")

    co = add("checkout", cmd_checkout, "write one table of a revision to a file")
    co.description = ("Write TABLE at REV to OUT in the format of its extension or --format: "
                      ".npy, HDF5 (.h5, OUT:DATASET), .safetensors, Parquet, Arrow, "
                      "word2vec text (.vec/.txt), GloVe text, word2vec binary (.bin). Row keys go "
                      "to Parquet/Arrow key columns and word-vector words (the row index when "
                      "the table has no keys). Into an existing HDF5 or safetensors file, only DATASET is "
                      "added (or replaced, with --force); everything else in it is kept. Copies "
                      "block by block into a temporary file renamed into place.")
    co.add_argument("rev")
    co.add_argument("table")
    co.add_argument("-o", "--output", required=True, metavar="OUT",
                    help="the output file; - writes to standard output in --format (default "
                         "npy; also safetensors, word2vec, glove, word2vec-bin)")
    co.add_argument("--force", action="store_true",
                    help="replace OUT if it exists; in an HDF5 or safetensors OUT, replace only "
                         "DATASET (the file's other datasets and tensors are always kept)")
    co.add_argument("--format", choices=_FORMAT_CHOICES,
                    help="default: by the extension of OUT (an unknown one is refused)")
    co.add_argument("--dataset", metavar="NAME",
                    help="HDF5 dataset / safetensors tensor (default: the table name) or "
                         "Parquet/Arrow vector column (default: embedding)")
    co.add_argument("--vector-column", metavar="NAME", help="Parquet/Arrow vector column name")
    co.add_argument("--key-column", metavar="NAME", help="Parquet/Arrow key column name (default: key)")

    t = add("tag", cmd_tag, "create an immutable tag, list tags, or delete one (-d)")
    t.add_argument("name", nargs="?")
    t.add_argument("rev", nargs="?")
    t.add_argument("-l", "--list", action="store_true")
    t.add_argument("-d", "--delete", action="store_true",
                   help="delete tag NAME; versions of its commit that the usage log records as "
                        "used stay readable (gc keeps them) and are named in a warning")

    b = add("branch", cmd_branch, "create a branch, list branches (* marks HEAD's), or delete one (-d)")
    b.add_argument("name", nargs="?")
    b.add_argument("rev", nargs="?")
    b.add_argument("-l", "--list", action="store_true")
    b.add_argument("-d", "--delete", action="store_true",
                   help="delete branch NAME; refused for HEAD's branch, and when no other branch "
                        "or tag reaches its tip (the reflog keeps the tip until it expires)")
    b.add_argument("-D", dest="force_delete", action="store_true", help="--delete --force")
    b.add_argument("-f", "--force", action="store_true",
                   help="with -d: delete even when no other ref reaches the tip")

    sw = add("switch", cmd_switch, "point HEAD at a branch (commits then go there)",
             "print the branch, its tip and whether it was created as JSON")
    sw.add_argument("branch", metavar="BRANCH")
    sw.add_argument("start", nargs="?", metavar="START", help="with -c: where the new branch starts (default HEAD)")
    sw.add_argument("-c", "--create", action="store_true", help="create BRANCH first (at START)")

    r = add("reset", cmd_reset, "move a branch to a revision (O(1) rollback; history after it "
                                "is no longer on the branch)")
    r.add_argument("branch")
    r.add_argument("rev")

    rs = add("restore", cmd_restore, "commit the tables of REV again on top of the branch "
                                     "(rollback that keeps history)")
    rs.add_argument("rev")
    rs.add_argument("-m", "--message")
    rs.add_argument("--branch", help="default: HEAD's")

    rv = add("revert", cmd_revert, "undo the change commit REV made, as a new commit on the "
                                   "branch (git revert; exit 2 on a conflict, nothing committed)")
    rv.description = ("Apply the inverse of REV's change against its parent to the branch head: "
                      "tables REV added are removed, tables it removed come back, rows it "
                      "changed get their old values, rows it appended are removed. A row "
                      "changed again since REV is a conflict (revert-conflict, naming table "
                      "and rows): nothing is committed. To make a commit whose content is "
                      "REV's instead, use `embfmt restore REV`.")
    rv.add_argument("rev")
    rv.add_argument("-m", "--message", help='default: Revert "<REV\'s message>"')
    rv.add_argument("--branch", help="default: HEAD's")
    rv.add_argument("--author", help="default: from config, $EMBFMT_AUTHOR or user@host")

    v = add("verify", cmd_verify, "recompute every digest reachable from REV or from every ref "
                                  "(exit 1 on corruption)")
    v.add_argument("rev", nargs="?", help="default: every branch and tag")
    v.add_argument("--all", action="store_true", help="check everything reachable from any ref")

    g = add("gc", cmd_gc, "delete objects no ref reaches")
    gg = g.add_mutually_exclusive_group()
    gg.add_argument("--grace", type=float, default=3600.0, metavar="SECONDS",
                    help="keep unreachable objects younger than this (default 3600, safe with "
                         "concurrent writers)")
    gg.add_argument("--prune-now", action="store_true",
                    help="grace 0: only safe when no other process is writing")
    g.add_argument("--expire-reflog", metavar="SECONDS|now",
                   help="first drop reflog entries older than this (default 30 days, 2592000); "
                        "the commits the remaining entries name are kept. 'now' drops them all, "
                        "so a reset can then lose the old tip")
    g.add_argument("--status", action="store_true",
                   help="remove nothing: list unreferenced objects and temp files (what an "
                        "interrupted write left behind) with their sizes, whatever their age")

    rl = add("reflog", cmd_reflog, "list where refs have pointed, newest first (commits, resets, "
                                   "branch and tag changes, switches; exit 1 if a log is damaged)",
             "print the entries (ref, old, new, time, author, reason, index) and problems as JSON")
    rl.add_argument("ref", nargs="?", metavar="REF",
                    help="a branch or tag (heads/NAME, tags/NAME to say which), or HEAD for switches "
                         "(default: every ref)")
    rl.add_argument("-n", "--max-count", type=int, metavar="N", help="show at most N entries")


    df = add("diff", cmd_diff, "row-level diff of two revisions or matrix files (exit 1 if they differ)",
             "print the diff as JSON (schema: spec/diff-json.md)")
    df.description = ("Compare B with A row by row. Each of A and B is a revision of the "
                      "repository or a matrix file (.npy, HDF5, .safetensors, ...; FILE:DATASET "
                      "names a dataset). A file is spelled as one: ./NAME, a path, or a name with "
                      "a matrix extension; a bare NAME that is both a file and a revision is an "
                      "error naming both. Two revisions without --table: every table of either "
                      "side (added, removed, changed). Exit 0: identical; 1: they differ; 2: "
                      "error (including a different dtype or D of one table).")
    df.add_argument("a", metavar="A")
    df.add_argument("b", metavar="B")
    df.add_argument("--table", help="compare only this table (default for two revisions: every "
                                    "table of either side, added, removed and changed)")
    df.add_argument("--stat", action="store_true",
                    help="one line per table that differs: rows changed, added and removed")
    df.add_argument("--name-only", action="store_true", help="only the names of the tables that differ")
    df.add_argument("--name-status", action="store_true",
                    help="the tables that differ, each with M (changed), A (added) or D (removed)")
    df.add_argument("--top", type=int, default=10, metavar="K", help="list the K rows that moved most (default 10)")
    df.add_argument("--plot", metavar="FILE.png", help="write a PNG report (needs matplotlib)")
    df.add_argument("--stats", action=argparse.BooleanOptionalAction, default=True,
                    help="per-row l2 / cosine / max-abs / ULP statistics of changed rows (default: on)")
    df.add_argument("--rows", action="store_true", help="list every changed, added and removed row")
    df.add_argument("--procrustes", action="store_true",
                    help="drift left after the best rotation (orthogonal Procrustes) on a sample")
    df.add_argument("--knn", type=int, default=0, metavar="K", help="exact kNN Jaccard@K overlap on a sample")
    df.add_argument("--sample", type=int, default=10_000, metavar="N",
                    help="rows sampled for --procrustes / --knn (default 10000)")
    df.add_argument("--dataset-a", metavar="NAME", help="HDF5 dataset or safetensors tensor of file A")
    df.add_argument("--dataset-b", metavar="NAME", help="HDF5 dataset or safetensors tensor of file B")

    va = add("verify-array", cmd_verify_array,
             "check a matrix file against a fingerprint or a stored version (exit 1 if it fails)",
             "print the result as JSON (schema: spec/diff-json.md)")
    va.description = ("Check FILE against --against: a fingerprint text (emb1:b3:..., bit-exact only) "
                      "or a revision of the repository (bit-exact, or within one tolerance per row). "
                      "Exit 0: passes; 1: fails; 2: error.")
    va.add_argument("file", metavar="FILE")
    va.add_argument("--dataset", help="HDF5 dataset or safetensors tensor")
    va.add_argument("--against", required=True, metavar="REV_OR_FINGERPRINT")
    va.add_argument("--table", help="table of the revision (needed when it has several)")
    tg = va.add_mutually_exclusive_group()
    tg.add_argument("--atol", type=float, metavar="X", help="max |b - a| <= X per row")
    tg.add_argument("--rtol", type=float, metavar="X", help="||b - a|| <= X * ||a|| per row")
    tg.add_argument("--ulp", type=int, metavar="N", help="max ULP distance <= N per row")
    tg.add_argument("--min-cosine", type=float, metavar="C", help="cosine(a, b) >= C per row")

    st = add("stamp", cmd_stamp, "print the stamp of TABLE at REV (a token naming that exact "
                                 "table version, for model metadata and logs)",
             "print the stamp and what it names as JSON")
    st.add_argument("table", nargs="?")
    st.add_argument("rev", nargs="?", help="default: HEAD")
    st.add_argument("--resolve", metavar="STAMP", help="check STAMP and show what it names instead")

    ru = add("record-use", cmd_record_use, "append a use of STAMP to the usage log")
    ru.add_argument("stamp", metavar="STAMP")
    ru.add_argument("--consumer", required=True, help="who used it (a model, service or job)")
    ru.add_argument("--context", metavar="JSON", help="a JSON object stored with the record")

    us = add("uses", cmd_uses, "list the usage log: which consumers used which table versions "
                               "(exit 1 if the log is damaged)",
             "print rev, commit, table, count, consumers and the records as JSON")
    us.add_argument("rev", nargs="?", help="only uses of this revision's commit (default: all)")
    us.add_argument("--table", help="only uses of this table")

    bl = add("blame", cmd_blame, "list the versions in which one row of TABLE changed, with "
                                 "commit, message and drift",
             "print the entries (newest first) and walk statistics as JSON")
    bl.add_argument("table", metavar="TABLE")
    bl.add_argument("row", nargs="?", metavar="ROW", help="row index (or use --key)")
    bl.add_argument("--key", metavar="K", help="follow the row holding key K in each version")
    bl.add_argument("--rev", default="HEAD", help="walk first parents from here (default HEAD)")

    d = add("demo", cmd_demo, "run the built-in end-to-end example", None)
    d.add_argument("dir", nargs="?", help="where to create the demo repository (default: a new temp dir)")
    d.add_argument("--quiet", action="store_true", help="print only the repository path")
    return p


def _version() -> str:
    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # as parse_args would say, plus the closest option of that command
        from ..suggest import did_you_mean  # lazy: start-up time

        sub = _SUBPARSERS.get(getattr(args, "command", None) or "")
        options = [o for a in (sub._actions if sub is not None else []) for o in a.option_strings]
        first = next((x for x in extra if x.startswith("-")), None)
        hint = did_you_mean(first.split("=")[0], options) if first else ""
        parser.error(f"unrecognized arguments: {' '.join(extra)}{hint}")
    func: Callable[[argparse.Namespace], int] = args.func
    # Progress bars only for a person watching: stderr is a terminal, no --quiet, no --json
    # (EMBFMT_PROGRESS=0/1, else the core.progress setting, overrides, e.g. to keep a terminal
    # session quiet).
    try:
        forced = os.environ.get("EMBFMT_PROGRESS")
        if forced not in ("0", "1") and args.command != "config":  # so a bad file can be fixed
            from ..history.config import lookup  # lazy: start-up time

            setting = lookup("core.progress", _repo_path_or_none(args))
            forced = {"true": "1", "false": "0"}.get(setting[0]) if setting else None
        show = sys.stderr.isatty() if forced not in ("0", "1") else forced == "1"
        progress.enable(show and not getattr(args, "quiet", False) and not getattr(args, "json", False))
        return func(args)
    except _CorruptionFound as c:
        e = c.error
        sys.stderr.write(f"embfmt: error [{e.kind.value}]: {e} (the repository is damaged; "
                         "`embfmt verify` lists every damaged object)\n")
        return EXIT_DIFFERENT
    except EmbfmtError as e:
        sys.stderr.write(f"embfmt: error [{e.kind.value}]: {e}\n")
        return EXIT_ERROR
    except BrokenPipeError:  # `embfmt log | head`
        try:  # keep the interpreter's final flush from raising again
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_OK
    except OSError as e:
        sys.stderr.write(f"embfmt: error [io]: {e.filename or ''}: {e.strerror or e}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("embfmt: interrupted\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
