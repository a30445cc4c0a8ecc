"""A power-loss simulator for repositories (used by test_power_loss.py).

:class:`Recorder` is installed as :data:`embfmt._fs.tracer`: it sees every change embfmt makes
to a repository (create, write, truncate, fsync, fsync of a directory, mkdir, link, rename,
unlink), in the order they completed, while the real calls run as usual. ``ack(label)`` marks
the moment an API call returned: what it did is acknowledged from that point on.

:class:`Model` replays such a log on an in-memory file system that keeps, for every file, its
current bytes and the bytes of its last fsync, and for every directory its current entries
and the entries of its last fsync. :meth:`Model.crash_states` gives the trees a power loss
could leave after a prefix of the log, as POSIX allows them:

- ``applied``: everything that completed (what a killed process leaves);
- ``lost``: unsynced data and unsynced directory changes are gone (files as of their last
  fsync, directories as of theirs; a file never fsynced is empty);
- ``torn``: directory changes kept, unsynced data cut in half (a write that reached the disk
  partly);
- ``names-kept``: directory changes kept, unsynced data lost (the delayed-allocation case:
  a rename or link reached the disk, the data did not);
- per directory with unsynced changes, ``only <dir> lost`` and ``only <dir> kept`` (with
  unsynced data lost): directories are written back independently.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass, field
from typing import Any


class Recorder:
    """Collects the operations under ``root`` (paths relative to it) and acknowledgements."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self.ops: list[tuple[Any, ...]] = []
        self._lock = threading.Lock()

    def _rel(self, p: str) -> str | None:
        a = os.path.abspath(p)
        if a == self.root:
            return ""
        if a.startswith(self.root + os.sep):
            return os.path.relpath(a, self.root)
        return None

    def __call__(self, op: str, *args: Any) -> None:
        if op in ("link", "rename"):
            src, dst = self._rel(args[0]), self._rel(args[1])
            if src is None or dst is None:
                return
            rec: tuple[Any, ...] = (op, src, dst)
        else:
            p = self._rel(args[0])
            if p is None:
                return
            rec = (op, p, *args[1:])
        with self._lock:
            self.ops.append(rec)

    def ack(self, label: Any) -> None:
        with self._lock:
            self.ops.append(("ack", label))


@dataclass(eq=False)
class _Inode:
    data: bytearray = field(default_factory=bytearray)
    synced: bytes = b""


@dataclass(eq=False)
class _Dir:
    entries: dict[str, Any] = field(default_factory=dict)  # name -> int (inode) or _Dir
    synced: dict[str, Any] = field(default_factory=dict)


class Model:
    """An in-memory file system replaying a :class:`Recorder` log (see the module docstring)."""

    def __init__(self, root: str) -> None:
        self.inodes: dict[int, _Inode] = {}
        self.root = _Dir()
        self.unknown: list[tuple[Any, ...]] = []  # ops on paths the model does not hold
        self.partial: dict[int, list[str]] = {}
        self._load(root, self.root)

    def _new_inode(self, data: bytes, synced: bytes) -> int:
        ino = len(self.inodes) + 1
        self.inodes[ino] = _Inode(bytearray(data), synced)
        return ino

    def _load(self, path: str, d: _Dir) -> None:
        # The starting tree is on stable storage: every file and entry is synced.
        for name in sorted(os.listdir(path)):
            p = os.path.join(path, name)
            if os.path.isdir(p):
                sub = _Dir()
                self._load(p, sub)
                d.entries[name] = sub
            else:
                with open(p, "rb") as f:
                    b = f.read()
                d.entries[name] = self._new_inode(b, b)
        d.synced = dict(d.entries)

    def _dir(self, rel: str) -> _Dir | None:
        d: Any = self.root
        for part in [x for x in rel.split(os.sep) if x]:
            d = d.entries.get(part) if isinstance(d, _Dir) else None
        return d if isinstance(d, _Dir) else None

    def _parent(self, rel: str) -> tuple[_Dir | None, str]:
        head, name = os.path.split(rel)
        return self._dir(head), name

    def _inode(self, rel: str) -> _Inode | None:
        d, name = self._parent(rel)
        ino = d.entries.get(name) if d is not None else None
        return self.inodes[ino] if isinstance(ino, int) else None

    def apply(self, rec: tuple[Any, ...]) -> None:
        op = rec[0]
        if op == "ack":
            return
        if op == "create":
            d, name = self._parent(rec[1])
            if d is None:
                return self.unknown.append(rec)
            d.entries[name] = self._new_inode(b"", b"")
        elif op == "mkdir":
            d, name = self._parent(rec[1])
            if d is None:
                return self.unknown.append(rec)
            d.entries.setdefault(name, _Dir())
        elif op == "write":
            ino = self._inode(rec[1])
            if ino is None:
                return self.unknown.append(rec)
            off, data = rec[2], rec[3]
            if len(ino.data) < off:
                ino.data.extend(b"\0" * (off - len(ino.data)))
            ino.data[off:off + len(data)] = data
        elif op == "truncate":
            ino = self._inode(rec[1])
            if ino is None:
                return self.unknown.append(rec)
            del ino.data[rec[2]:]
        elif op == "fsync":
            ino = self._inode(rec[1])
            if ino is None:
                return self.unknown.append(rec)
            ino.synced = bytes(ino.data)
        elif op == "fsync_dir":
            d = self._dir(rec[1])
            if d is None:
                return self.unknown.append(rec)
            d.synced = dict(d.entries)
        elif op in ("link", "rename"):
            sd, sname = self._parent(rec[1])
            dd, dname = self._parent(rec[2])
            if sd is None or dd is None or sname not in sd.entries:
                return self.unknown.append(rec)
            dd.entries[dname] = sd.entries[sname]
            if op == "rename":
                del sd.entries[sname]
        elif op == "unlink":
            d, name = self._parent(rec[1])
            if d is None or name not in d.entries:
                return self.unknown.append(rec)
            del d.entries[name]
        else:
            raise ValueError(f"unknown op {op}")

    # --- crash states ----------------------------------------------------------------------
    def _dirs(self) -> list[tuple[str, _Dir]]:
        out = []

        def walk(rel: str, d: _Dir) -> None:
            out.append((rel, d))
            seen = set()
            for name, e in list(d.entries.items()) + list(d.synced.items()):
                if isinstance(e, _Dir) and id(e) not in seen:
                    seen.add(id(e))
                    walk(os.path.join(rel, name), e)

        walk("", self.root)
        return out

    def _tree(self, keep_names: set[int], data: str) -> dict[str, bytes | None]:
        """path -> bytes (None: a directory) for one crash state: directories whose id is in
        ``keep_names`` show their current entries, the others their synced ones."""
        out: dict[str, bytes | None] = {}
        partial: list[str] = []

        def content(ino: _Inode) -> bytes:
            cur = bytes(ino.data)
            if data == "kept" or cur == ino.synced:
                return cur
            if data == "lost":
                return ino.synced
            base = ino.synced if cur.startswith(ino.synced) else b""
            return cur[:len(base) + (len(cur) - len(base)) // 2]  # torn

        def walk(rel: str, d: _Dir) -> None:
            entries = d.entries if id(d) in keep_names else d.synced
            for name, e in sorted(entries.items()):
                p = os.path.join(rel, name)
                if isinstance(e, _Dir):
                    out[p] = None
                    walk(p, e)
                else:
                    out[p] = content(self.inodes[e])
                    if out[p] != self.inodes[e].data:
                        partial.append(p)

        walk("", self.root)
        self.partial[id(out)] = partial
        return out

    def partial_files(self, tree: dict[str, bytes | None]) -> list[str]:
        """Files of a crash state (from :meth:`crash_states`) that hold less or other than
        what was last written to them."""
        return self.partial.get(id(tree), [])

    def crash_states(self) -> list[tuple[str, dict[str, bytes | None]]]:
        self.partial.clear()
        dirs = self._dirs()
        dirty = [(rel, d) for rel, d in dirs if not _same(d.entries, d.synced)]
        everything = {id(d) for _, d in dirs}
        states = [("applied", self._tree(everything, "kept")),
                  ("lost", self._tree(set(), "lost")),
                  ("torn", self._tree(everything, "torn")),
                  ("names-kept", self._tree(everything, "lost"))]
        for rel, d in dirty:
            states.append((f"only {rel or '.'}/ lost", self._tree(everything - {id(d)}, "lost")))
            states.append((f"only {rel or '.'}/ kept", self._tree({id(d)}, "lost")))
        return states


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a.keys() == b.keys() and all(a[k] is b[k] for k in a)


def tree_digest(tree: dict[str, bytes | None]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for p in sorted(tree):
        v = tree[p]
        h.update(p.encode() + b"\0" + (b"D" if v is None else b"F" + len(v).to_bytes(8, "little") + v))
    return h.hexdigest()


def materialize(tree: dict[str, bytes | None], dest: str) -> None:
    os.makedirs(dest)
    for p in sorted(tree):
        v = tree[p]
        full = os.path.join(dest, p)
        if v is None:
            os.makedirs(full, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "wb") as f:
                f.write(v)
