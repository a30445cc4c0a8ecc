"""The Merkle tree over chunk digests and its inclusion proofs (spec §6).

Construction (normative text in the spec):

* leaf   = BLAKE3(0x00 || chunk_digest)
* node   = BLAKE3(0x01 || left || right)
* empty  = BLAKE3(0x02)                              (a table with N = 0 has no chunks)
* levels are built bottom-up by pairing neighbours left to right; an odd last node is
  promoted to the next level unchanged (never duplicated: duplication would let two
  different leaf lists share a root, the CVE-2012-2459 flaw).

The one-byte tags make leaf, node, empty and root preimages differ in length or first byte,
so no value hashed for one role can be replayed in another.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import blake3
import numpy as np

from .. import _layout as L
from ..errors import BackendUnavailableError, ErrorKind, FormatError

__all__ = ["leaf_hash", "node_hash", "empty_hash", "tree_levels", "tree_hash", "audit_path",
           "root_from_path", "check_device_tree_hash"]


def _h(data: bytes) -> bytes:
    return blake3.blake3(data).digest()


def leaf_hash(digest: bytes) -> bytes:
    """``BLAKE3(0x00 || digest)``."""
    return _h(L.TAG_LEAF + digest)


def node_hash(left: bytes, right: bytes) -> bytes:
    """``BLAKE3(0x01 || left || right)``."""
    return _h(L.TAG_NODE + left + right)


def empty_hash() -> bytes:
    """``BLAKE3(0x02)``: the tree hash of zero chunks."""
    return _h(L.TAG_EMPTY)


def tree_levels(digests: Sequence[bytes]) -> list[list[bytes]]:
    """All levels of the tree, leaves first, root level (one node) last; ``[]`` when empty."""
    if not digests:
        return []
    level = [leaf_hash(d) for d in digests]
    levels = [level]
    while len(level) > 1:
        nxt = [node_hash(level[j], level[j + 1]) for j in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])  # odd last node: promoted unchanged
        level = nxt
        levels.append(level)
    return levels


def tree_hash(digests: Sequence[bytes]) -> bytes:
    """The Merkle tree hash of an ordered list of 32-byte chunk digests."""
    if not digests:
        return empty_hash()
    return tree_levels(digests)[-1][0]


def audit_path(levels: list[list[bytes]], index: int) -> list[bytes]:
    """Sibling hashes from leaf ``index`` up to the root (promoted levels contribute none)."""
    path = []
    for level in levels[:-1]:
        sib = index ^ 1
        if sib < len(level):
            path.append(level[sib])
        index //= 2
    return path


def root_from_path(digest: bytes, index: int, n_leaves: int, path: Sequence[bytes]) -> bytes:
    """Recompute the tree hash from one leaf's digest and its audit path.

    Raises :class:`FormatError` (``bad-proof``) when the path has the wrong length for
    ``(index, n_leaves)``; a path of the right shape but wrong content simply yields a
    different hash.
    """
    if not 0 <= index < n_leaves:
        raise FormatError(f"proof index {index} outside 0..{n_leaves - 1}", ErrorKind.BAD_PROOF)
    if len(digest) != L.DIGEST_BYTES:
        raise FormatError(f"chunk digest must be {L.DIGEST_BYTES} bytes, got {len(digest)}",
                          ErrorKind.BAD_PROOF)
    h = leaf_hash(digest)
    it = iter(path)
    size = n_leaves
    used = 0
    while size > 1:
        sib = index ^ 1
        if sib < size:
            try:
                s = next(it)
            except StopIteration:
                raise FormatError("proof has too few sibling hashes", ErrorKind.BAD_PROOF) from None
            used += 1
            if len(s) != L.DIGEST_BYTES:
                raise FormatError("proof sibling hash is not 32 bytes", ErrorKind.BAD_PROOF)
            h = node_hash(s, h) if index & 1 else node_hash(h, s)
        index //= 2
        size = (size + 1) // 2
    if used != len(path):
        raise FormatError(f"proof has {len(path) - used} sibling hashes too many", ErrorKind.BAD_PROOF)
    return h


def check_device_tree_hash(tree_hash_device: Callable[[Any], bytes]) -> None:
    """Refuse a device whose Merkle tree hash (``tree_hash_device``, the GPU backend's, over a
    ``uint8[n, 32]`` array of digests) differs from :func:`tree_hash`: leaves, nodes and a
    promoted odd node (7 leaves). Raises :class:`BackendUnavailableError`; run before the
    device tree hash is first trusted (canonical.fingerprint), as the backend's self-check does
    for its other kernels."""
    dg = np.random.default_rng(0).integers(0, 256, (7, 32), dtype=np.uint8)
    if tree_hash_device(dg) != tree_hash([bytes(d) for d in dg]):
        raise BackendUnavailableError("backend 'gpu' is unavailable: its Merkle tree hashes differ from "
                                      "the reference on this device; refusing to use it")
