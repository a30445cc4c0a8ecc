"""Moving refs: branches, tags, reset, switch and deletions (spec §17, §18.4).

Every move takes the ref lock and goes through compare-and-swap (``RefStore.cas``), and is
logged in the reflog. A ref moved onto a commit that no ref reaches any more first makes that
commit's history safe from a concurrent gc (:meth:`Branches.onto`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import ConflictError, ErrorKind, FormatError, InputError, NotFoundError
from ..objects.names import check_ref_name
from .revisions import Revisions
from .transaction import Transaction

__all__ = ["Branches"]


class Branches:
    """Ref moves of the repository that ``revs`` reads; ``tx`` refreshes reused objects."""

    def __init__(self, revs: Revisions, tx: Transaction) -> None:
        self.revs = revs
        self.tx = tx

    def tag(self, name: str, rev: str = "HEAD") -> str:
        """Create an immutable tag; :class:`ConflictError` (``ref-exists``) if it exists."""
        check_ref_name(name, "tag")
        cid = bytes.fromhex(self.revs.resolve(rev))
        with self.revs.refs.locked():
            if self.revs.refs.read("tags", name) is not None:
                raise ConflictError(f"tag {name!r} already exists (tags are immutable)", ErrorKind.REF_EXISTS)
            with self.onto(cid):
                self.revs.refs.cas("tags", name, None, cid, reason=f"tag: {rev}")
        return cid.hex()

    def branch(self, name: str, rev: str = "HEAD") -> str:
        """Create a branch at ``rev``; :class:`ConflictError` (``ref-exists``) if it exists."""
        check_ref_name(name, "branch")
        cid = bytes.fromhex(self.revs.resolve(rev))
        with self.revs.refs.locked():
            if self.revs.refs.read("heads", name) is not None:
                raise ConflictError(f"branch {name!r} already exists", ErrorKind.REF_EXISTS)
            with self.onto(cid):
                self.revs.refs.cas("heads", name, None, cid, reason=f"branch: created from {rev}")
        return cid.hex()

    def reset(self, branch: str, rev: str) -> str:
        """Move ``branch`` to ``rev`` (rollback in O(1) when a ref reaches ``rev``: no data is
        read or written; onto a commit no ref reaches, its objects are refreshed first)."""
        check_ref_name(branch, "branch")
        cid = bytes.fromhex(self.revs.resolve(rev))
        with self.revs.refs.locked():
            cur = self.revs.refs.read("heads", branch)
            if cur is None:
                raise NotFoundError(f"no branch {branch!r}")
            with self.onto(cid, cur):
                self.revs.refs.cas("heads", branch, cur, cid, reason=f"reset: moving to {rev}")
        return cid.hex()

    @contextmanager
    def onto(self, cid: bytes, first: bytes | None = None) -> Iterator[None]:
        """Make commit ``cid`` safe to point a ref at (spec §18.4); the ref moves in the body.
        Call with the ref lock held.

        When a ref reaches ``cid`` (``first``, the moved ref's value, is tried first: the
        common ``reset main HEAD~1``), that ref keeps it live in gc's snapshot of the refs,
        and nothing is read. Otherwise ``cid`` is an orphan, and a gc may be deleting its old
        objects right now: under a write lease (held until the move has landed), every object
        of its history that no ref reaches is refreshed, deepest first, each checked to be
        still there; :class:`ConflictError`, with no ref moved, when one is gone."""
        reached = self._reached_from_refs(cid, first)
        if reached is None:
            yield
            return
        lease = self.revs.leases.acquire()
        try:
            self._refresh_history(cid, reached)
            yield
        finally:
            lease.release()

    def _reached_from_refs(self, cid: bytes, first: bytes | None) -> set[bytes] | None:
        """None when some ref (or ``first``) reaches commit ``cid``; else every commit the refs
        reach (the walk had to visit them all to be sure)."""
        return self.revs.reaches([*self.revs.all_heads(), *([first] if first is not None else [])], cid)

    def _refresh_history(self, cid: bytes, reached: set[bytes]) -> None:
        """Refresh every object of commit ``cid`` and its ancestors outside ``reached``."""
        done: set[str] = set()
        stack = [cid]
        try:
            while stack:
                c_id = stack.pop()
                if c_id in reached:
                    continue
                reached.add(c_id)
                c = self.revs.get_commit(c_id)
                tables = {n: t for n, t in c.tables.items() if t not in done}
                self.tx.refresh_tables(tables)
                done.update(tables.values())
                for oid in [*(bytes.fromhex(x) for x in c.change_ids()), c_id]:  # the commit last
                    if not self.revs.store.touch(oid):
                        raise NotFoundError(f"object {oid.hex()} of commit {c_id.hex()} is missing",
                                            ErrorKind.MISSING_OBJECT)
                stack.extend(bytes.fromhex(p) for p in c.parents)
        except (NotFoundError, ConflictError) as e:
            raise ConflictError(f"cannot point a ref at commit {cid.hex()}: no ref reaches it, and "
                                f"part of its history is gone (removed by a garbage collection "
                                f"running now, or lost): {e.message}; no ref was changed",
                                ErrorKind.CONFLICT) from None

    def checkout_branch(self, name: str) -> None:
        """Make ``name`` the branch ``HEAD`` names (it must exist); see :meth:`switch`."""
        self.switch(name)

    def switch(self, branch: str, *, create: bool = False, start: str = "HEAD") -> str:
        """Point ``HEAD`` at ``branch`` (as ``git switch``); returns its tip. With ``create``,
        first create it at ``start`` (``git switch -c``; :class:`ConflictError` if it exists).
        The switch is recorded in the reflog of ``HEAD``.

        >>> import numpy as np, tempfile, embfmt
        >>> repo = embfmt.Repo.init(tempfile.mkdtemp())
        >>> c = repo.commit({"t": np.zeros((2, 2), np.float32)})
        >>> repo.switch("exp", create=True) == c, repo.head_branch
        (True, 'exp')
        """
        check_ref_name(branch, "branch")
        if create:
            self.branch(branch, start)
        with self.revs.refs.locked():
            tip = self.revs.refs.read("heads", branch)
            if tip is None:
                raise NotFoundError(f"no branch {branch!r} (create it with switch -c)")
            try:
                old = self.revs.refs.head_branch()
            except (FormatError, InputError):  # a damaged HEAD: switching repairs it
                old = "(damaged HEAD)"
            self.revs.refs.set_head_branch(branch, reason=f"switch: from {old} to {branch}")
        return tip.hex()

    def delete_branch(self, name: str, *, force: bool = False) -> str:
        """Delete branch ``name`` (as ``git branch -d``); returns the commit it held.

        Refused (:class:`ConflictError`) for the branch ``HEAD`` names (``branch-in-use``), and,
        unless ``force``, when no other branch or tag reaches its tip (``not-merged``): those
        commits would then be kept only by the reflog, until its entries expire. The reflog
        keeps the tip either way (the deletion is the branch log's last entry).
        """
        check_ref_name(name, "branch")
        with self.revs.refs.locked():
            tip = self.revs.refs.read("heads", name)
            if tip is None:
                raise NotFoundError(f"no branch {name!r}")
            if name == self.revs.refs.head_branch():
                raise ConflictError(f"cannot delete branch {name!r}: HEAD names it (switch to "
                                    "another branch first)", ErrorKind.BRANCH_IN_USE)
            if not force:
                others = [v for k, v in self.revs.refs.list("heads").items() if k != name]
                others += list(self.revs.refs.list("tags").values())
                if self.revs.reaches(others, tip) is not None:
                    raise ConflictError(
                        f"branch {name!r} is not merged: no other branch or tag reaches its tip "
                        f"{tip.hex()[:12]}; delete it anyway with force=True (CLI: branch -D), "
                        "the reflog keeps the tip until its entries expire", ErrorKind.NOT_MERGED)
            self.revs.refs.delete("heads", name, reason="branch: deleted")
        return tip.hex()

    def delete_tag(self, name: str) -> str:
        """Delete tag ``name``; returns the commit it named. Versions of that commit that the
        usage log records as used stay protected from gc (they are gc roots of their own,
        spec §18.4): :meth:`uses` with the returned id lists them (the CLI warns)."""
        check_ref_name(name, "tag")
        with self.revs.refs.locked():
            tip = self.revs.refs.read("tags", name)
            if tip is None:
                raise NotFoundError(f"no tag {name!r}")
            self.revs.refs.delete("tags", name, reason="tag: deleted")
        return tip.hex()
