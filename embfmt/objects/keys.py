"""Row keys: unique int64 or UTF-8 string keys, one per row, stored as key objects (spec §15)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import blake3
import numpy as np
import zstandard

from .. import _layout as L
from .chunk import decompress_exact
from ..errors import ErrorKind, FormatError, InputError, IntegrityError, NotFoundError

__all__ = ["normalize_keys", "encode_keys", "decode_keys", "KeyIndex", "CarryKeys", "KEYS_CARRY",
           "KEYS_DROP", "one_or_many"]

#: ``keys={table: "carry"}``: the new version keeps its parent's keys (same rows, same order).
KEYS_CARRY = "carry"
#: ``keys={table: "drop"}``: the new version has no keys, even though its parent had some.
KEYS_DROP = "drop"


@dataclass(frozen=True)
class CarryKeys:
    """Keys of a new table version taken from its parent's version, for rows whose identity
    the caller knows: the parent's ``N`` rows are the new version's first ``N`` rows, in the
    same order, followed by ``len(appended)`` new rows with the keys ``appended``.

    ``CarryKeys()`` (or the string ``"carry"``) needs the same row count as the parent.
    Without it, a commit of a keyed table with no keys is refused (``keys-required``):
    embfmt cannot tell a re-export in another row order from the same rows.

    Examples
    --------
    >>> import numpy as np, tempfile, embfmt
    >>> repo = embfmt.Repo.init(tempfile.mkdtemp())
    >>> _ = repo.commit({"t": np.zeros((2, 3), np.float32)}, keys={"t": ["a", "b"]})
    >>> _ = repo.commit({"t": np.ones((3, 3), np.float32)}, keys={"t": embfmt.CarryKeys(["c"])})
    >>> repo.keys("t").tolist()
    ['a', 'b', 'c']
    """

    appended: Any = None
    """Keys of the rows after the parent's (None: no row is appended)."""


def one_or_many(keys: Any) -> tuple[Any, bool]:
    """``(keys, True)`` for one key (a str, bytes or scalar), ``(keys, False)`` for a sequence or
    array of keys. A str is one key, never a sequence of one-character keys."""
    if isinstance(keys, (str, bytes, int, np.integer)) or (isinstance(keys, np.ndarray) and keys.ndim == 0):
        return keys, True
    return keys, False


def normalize_keys(keys: Any, n_rows: int, table: str) -> np.ndarray:
    """Validate user keys: int64 array or object array of str, length ``n_rows``, unique."""
    if isinstance(keys, (str, bytes)):  # list("abc") would be three keys: never what was meant
        raise InputError(f"table {table!r}: keys must be a sequence of {n_rows} keys, got one "
                         f"{type(keys).__name__} {keys[:40]!r} (one key: put it in a list)",
                         ErrorKind.BAD_KEYS)
    if isinstance(keys, np.ndarray) and keys.dtype.kind in "iu":
        arr = keys.astype(np.int64)
        if keys.dtype.kind == "u" and keys.size and keys.max() > np.iinfo(np.int64).max:
            raise InputError(f"table {table!r}: keys exceed int64", ErrorKind.BAD_KEYS)
    else:
        seq = list(keys)
        if seq and all(isinstance(k, (int, np.integer)) and not isinstance(k, bool) for k in seq):
            try:
                arr = np.array(seq, dtype=np.int64)
            except OverflowError:
                raise InputError(f"table {table!r}: keys exceed int64", ErrorKind.BAD_KEYS) from None
        elif all(isinstance(k, str) for k in seq):
            arr = np.array(seq, dtype=object)
            for k in seq:
                if len(k.encode("utf-8", "surrogatepass")) > L.MAX_KEY_BYTES:
                    raise InputError(f"table {table!r}: a key is longer than {L.MAX_KEY_BYTES} bytes",
                                     ErrorKind.BAD_KEYS)
        else:
            raise InputError(f"table {table!r}: keys must be all int64 or all str", ErrorKind.BAD_KEYS)
    if arr.ndim != 1 or len(arr) != n_rows:
        raise InputError(f"table {table!r}: {len(arr)} keys for {n_rows} rows", ErrorKind.BAD_KEYS)
    if arr.dtype == object:
        seen: set[str] = set()
        for k in arr:
            if k in seen:
                raise InputError(f"table {table!r}: duplicate key {k!r}", ErrorKind.DUPLICATE_KEY)
            seen.add(k)
    elif len(arr):
        s = np.sort(arr)
        dup = np.flatnonzero(s[1:] == s[:-1])
        if len(dup):
            raise InputError(f"table {table!r}: duplicate key {int(s[dup[0]])}", ErrorKind.DUPLICATE_KEY)
    return arr


def encode_keys(arr: np.ndarray) -> bytes:
    """Key object bytes: 32-byte header then a zstd frame of the raw key bytes."""
    if arr.dtype == object:
        enc = [k.encode("utf-8") for k in arr]
        offs = np.zeros(len(enc) + 1, dtype="<u8")
        np.cumsum([len(e) for e in enc], out=offs[1:])
        raw = offs.tobytes() + b"".join(enc)
        kind = L.KEYS_UTF8
    else:
        raw = arr.astype("<i8").tobytes()
        kind = L.KEYS_INT64
    z = zstandard.ZstdCompressor(level=3).compress(raw)
    return L.KEYS_HEADER_STRUCT.pack(L.KEYS_MAGIC, L.FORMAT_MAJOR, kind, 0, len(arr), len(raw), len(z)) + z


def decode_keys(buf: bytes, oid: bytes | None = None, name: str = "key object") -> np.ndarray:
    """Parse, bound-check and decode a key object (verifying its id when given)."""
    if oid is not None and blake3.blake3(buf).digest() != oid:
        raise IntegrityError(f"{name}: bytes do not hash to its id")
    hs = L.KEYS_HEADER_STRUCT.size
    if len(buf) < hs:
        raise FormatError(f"{name}: truncated", ErrorKind.TRUNCATED)
    magic, major, kind, r0, n, raw_len, zlen = L.KEYS_HEADER_STRUCT.unpack_from(buf)
    if magic != L.KEYS_MAGIC:
        raise FormatError(f"{name}: bad magic {magic!r}", ErrorKind.BAD_MAGIC)
    if major != L.FORMAT_MAJOR:
        raise FormatError(f"{name}: format v{major}", ErrorKind.UNSUPPORTED_VERSION)
    if r0 or kind not in (L.KEYS_INT64, L.KEYS_UTF8) or n > L.MAX_ROWS or len(buf) != hs + zlen:
        raise FormatError(f"{name}: invalid header", ErrorKind.BAD_OBJECT)
    want_min = 8 * n if kind == L.KEYS_INT64 else 8 * (n + 1)
    max_raw = want_min if kind == L.KEYS_INT64 else want_min + n * L.MAX_KEY_BYTES
    if not want_min <= raw_len <= max_raw:
        raise FormatError(f"{name}: raw length {raw_len} impossible for {n} keys", ErrorKind.BAD_OBJECT)
    if raw_len > L.ZSTD_MAX_RATIO * zlen:  # checked before decompress() sizes its output by it
        raise FormatError(f"{name}: raw length {raw_len} cannot come from a {zlen}-byte zstd frame",
                          ErrorKind.BAD_OBJECT)
    raw = decompress_exact(memoryview(buf)[hs:], raw_len, f"{name}: payload")
    if kind == L.KEYS_INT64:
        arr = np.frombuffer(raw, dtype="<i8").astype(np.int64)
        if len(arr) > 1 and not bool(np.all(arr[1:] > arr[:-1])):  # increasing: unique, no sort
            s = np.sort(arr)
            dup = np.flatnonzero(s[1:] == s[:-1])
            if len(dup):
                raise FormatError(f"{name}: key {int(s[dup[0]])} names two rows (keys are unique, "
                                  "spec §15)", ErrorKind.BAD_OBJECT)
        return arr
    offs = np.frombuffer(raw, dtype="<u8", count=n + 1)
    body = raw[8 * (n + 1):]
    if offs[0] != 0 or np.any(np.diff(offs.astype(np.int64)) < 0) or offs[-1] != len(body):
        raise FormatError(f"{name}: string offsets are invalid", ErrorKind.BAD_OBJECT)
    try:
        strs = [body[offs[i]:offs[i + 1]].decode("utf-8") for i in range(n)]
    except UnicodeDecodeError as e:
        raise FormatError(f"{name}: key is not UTF-8 ({e})", ErrorKind.BAD_OBJECT) from None
    if len(set(strs)) != n:
        from collections import Counter

        twice = Counter(strs).most_common(1)[0][0]
        raise FormatError(f"{name}: key {twice!r} names two rows (keys are unique, spec §15)",
                          ErrorKind.BAD_OBJECT)
    return np.array(strs, dtype=object)


class KeyIndex:
    """Key -> row lookup built on first use."""

    def __init__(self, keys: np.ndarray) -> None:
        self.keys = keys
        self._map: dict[Any, int] | None = None
        self._order: np.ndarray | None = None

    def rows(self, wanted: Any) -> np.ndarray:
        """Row indices of ``wanted`` keys; raises KeyError-compatible NotFoundError if absent."""
        if self.keys.dtype == object:
            if self._map is None:
                self._map = {k: i for i, k in enumerate(self.keys)}
            out = []
            for k in wanted:
                try:
                    out.append(self._map[k])
                except KeyError:
                    raise NotFoundError(f"no row with key {k!r}") from None
            return np.array(out, dtype=np.int64)
        if self._order is None:
            self._order = np.argsort(self.keys, kind="stable")
        if isinstance(wanted, np.ndarray) and wanted.dtype.kind in "iu":
            if wanted.dtype.kind == "u" and wanted.size and wanted.max() > np.iinfo(np.int64).max:
                raise NotFoundError(f"no row with key {int(wanted.max())}")
            w = wanted.astype(np.int64).reshape(-1)
        else:  # a str, float or bool is no int64 key: not found (never parsed or truncated)
            for k in wanted:
                if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) \
                        or not -(1 << 63) <= int(k) < (1 << 63):
                    raise NotFoundError(f"no row with key {k!r}")
            w = np.array([int(k) for k in wanted], dtype=np.int64)
        sk = self.keys[self._order]
        pos = np.searchsorted(sk, w)
        pos_c = np.minimum(pos, max(0, len(sk) - 1))
        miss = (pos >= len(sk)) | (sk[pos_c] != w) if len(sk) else np.ones(len(w), bool)
        if np.any(miss):
            raise NotFoundError(f"no row with key {int(w[np.flatnonzero(miss)[0]])}")
        return self._order[pos_c].astype(np.int64)
