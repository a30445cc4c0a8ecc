"""Committing embedding tables from a training loop every N steps.

Framework-neutral: a tracked value is anything :func:`embfmt.fingerprint` accepts (a PyTorch
parameter on CPU or GPU, a numpy array, CuPy, ...) or a zero-argument callable returning one,
for models that replace their tensors. Values are read at commit time, block by block, so a GPU
table is copied to the host one bounded block at a time, never whole.

Examples
--------
>>> import numpy as np, tempfile, embfmt
>>> repo = embfmt.Repo.init(tempfile.mkdtemp())
>>> emb = np.zeros((100, 8), np.float32)
>>> tracker = embfmt.Tracker(repo, {"item_emb": emb}, every=10)
>>> for step in range(1, 31):
...     emb[step % 100] += 0.1            # a training step
...     _ = tracker.step(step, loss=1.0 / step)
>>> [c.metadata["step"] for c in repo.log()]
[30, 20, 10]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import ErrorKind, InputError
from ..objects.keys import KEYS_CARRY

if TYPE_CHECKING:
    from .transaction import Transaction


class Repository(Protocol):
    """What a tracker commits through: a repository's path and its commit transaction
    (an :class:`embfmt.Repo`)."""

    path: str
    transaction: Transaction

__all__ = ["Tracker"]


def _metric(name: str, v: Any) -> Any:
    """A JSON value for a metric: numbers (torch/numpy scalars included) as float or int;
    NaN and infinities as strings, since JSON has no literal for them."""
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, int):
        return v
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise InputError(f"metric {name!r} is a {type(v).__name__}, not a number or string",
                         ErrorKind.BAD_ARGUMENT) from None
    return f if math.isfinite(f) else str(f)


class Tracker:
    """Commit ``tables`` to ``repo`` every ``every`` steps, with step metadata.

    Parameters
    ----------
    repo
        The repository.
    tables
        Table name -> tensor/array, or a callable returning one.
    every
        Commit when ``step % every == 0`` (``every >= 1``).
    branch
        Branch to commit to (default: ``HEAD``'s).
    message
        Commit message template; ``{step}`` and metric names are filled in.
    metadata
        Extra commit metadata (e.g. the training run id), added to every commit.
    identity
        As in :meth:`embfmt.Repo.commit`; passed on every commit.
    keys
        As in :meth:`embfmt.Repo.commit` (keys, ``"carry"``, :class:`~embfmt.objects.keys.CarryKeys`,
        ``"drop"``), passed on every commit. A tracked table that ``keys`` does not name gets
        ``"carry"``: a tracker commits the same tensor over time, so row ``i`` is the same
        entity in every commit and its key follows it, as long as the row count holds. When
        the tensor grows, pass its keys (``tracker.keys = {"t": CarryKeys(appended=...)}``):
        keys are never carried to rows whose identity is unknown.

    Attributes
    ----------
    commits : list[tuple[int, str]]
        ``(step, commit id)`` of every commit this tracker made.
    """

    def __init__(self, repo: Repository, tables: Mapping[str, Any], *, every: int = 1000,
                 branch: str | None = None, message: str = "step {step}",
                 metadata: Mapping[str, Any] | None = None,
                 identity: Mapping[str, Mapping[str, Any]] | None = None,
                 keys: Mapping[str, Any] | None = None) -> None:
        if not tables:
            raise InputError("Tracker needs at least one table", ErrorKind.BAD_ARGUMENT)
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise InputError(f"every must be an integer >= 1, got {every!r}", ErrorKind.BAD_ARGUMENT)
        if metadata is not None and ("step" in metadata or "metrics" in metadata):
            raise InputError("metadata keys 'step' and 'metrics' are set by the tracker",
                             ErrorKind.BAD_ARGUMENT)
        self.repo = repo
        self.tables = dict(tables)
        self.every = every
        self.branch = branch
        self.message = message
        self.metadata = dict(metadata or {})
        self.identity = dict(identity) if identity else None
        self.keys = dict(keys) if keys else None
        self.commits: list[tuple[int, str]] = []

    @property
    def last_commit(self) -> str | None:
        """The id of this tracker's latest commit, or None."""
        return self.commits[-1][1] if self.commits else None

    def step(self, step: int, **metrics: Any) -> str | None:
        """Call once per training step; commits (and returns the commit id) when ``step`` is a
        multiple of ``every``, else returns None. ``metrics`` go into the commit metadata."""
        if step % self.every != 0:
            return None
        return self.commit(step, **metrics)

    def commit(self, step: int, **metrics: Any) -> str:
        """Commit the tracked tables now, whatever the step (e.g. after the last step)."""
        if self.commits and self.commits[-1][0] == step:
            return self.commits[-1][1]  # already committed at this step (e.g. step() then commit())
        values = {name: (v() if callable(v) else v) for name, v in self.tables.items()}
        mets = {k: _metric(k, v) for k, v in sorted(metrics.items())}
        try:
            msg = self.message.format(step=step, **mets)
        except (KeyError, IndexError, ValueError) as e:
            raise InputError(f"message template {self.message!r}: {e}", ErrorKind.BAD_ARGUMENT) from None
        meta = {**self.metadata, "step": int(step)}
        if mets:
            meta["metrics"] = mets
        keys = {**{name: KEYS_CARRY for name in values}, **(self.keys or {})}
        cid = self.repo.transaction.commit(values, message=msg, metadata=meta, branch=self.branch,
                                           identity=self.identity, keys=keys)
        assert isinstance(cid, str)  # not a dry run
        self.commits.append((int(step), cid))
        return cid

    def __repr__(self) -> str:
        return f"Tracker({self.repo.path!r}, tables={list(self.tables)}, every={self.every})"
