"""Pure-numpy reference oracle for the row and chunk hash kernels.

This module is the *definition* the fast kernels (``cpu``, ``gpu``) are tested
against.  It is written to be read next to the published specifications, not to
be fast:

* XXH3-64, seed 0, default 192-byte secret ("kSecret"):
  https://github.com/Cyan4973/xxHash/blob/dev/doc/xxhash_spec.md
* BLAKE3-256, default (unkeyed) hash mode, 32-byte output:
  https://github.com/BLAKE3-team/BLAKE3-specs/blob/master/blake3.pdf
* Byte-plane shuffle (as in Blosc / HDF5 "shuffle"), dense XOR and
  subtract-zigzag deltas, and bit-exact row equality (chunk codecs 1-3).

Everything is integer arithmetic on bit patterns.  numpy ``uint64`` / ``uint32``
*array* arithmetic wraps modulo 2**64 / 2**32 silently, which is exactly the
ring both hashes are defined over.  (numpy *scalar* arithmetic warns on
overflow instead, so every wrapping operation here is done on arrays; Python
``int`` is used, reduced explicitly, where only constants are involved.)

Because every row of an embedding matrix has the same byte length, XXH3's
control flow (which depends only on the length) is identical for all rows.
``rowprints`` therefore runs the algorithm once, with each 64-bit "variable"
of the spec being a ``uint64`` array holding that variable for all N rows.

No numba import: this module must work (and stay obviously correct) without a
JIT.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "rowprints",
    "blake3",
    "chunk_digests",
    "shuffle",
    "unshuffle",
    "delta_encode",
    "delta_decode",
    "rows_equal",
    "row_stats",
]

# ---------------------------------------------------------------------------
# XXH3 constants (xxhash_spec.md, "Prime constants").
# They are the primes of XXH32 / XXH64 (chosen by the xxHash author as odd
# numbers with a good bit mix); PRIME_MX1/PRIME_MX2 are the XXH3 avalanche
# multipliers.  Values copied from the spec, not derived here.
# ---------------------------------------------------------------------------
PRIME32_1 = 0x9E3779B1
PRIME32_2 = 0x85EBCA77
PRIME32_3 = 0xC2B2AE3D
PRIME64_1 = 0x9E3779B185EBCA87
PRIME64_2 = 0xC2B2AE3D27D4EB4F
PRIME64_3 = 0x165667B19E3779F9
PRIME64_4 = 0x85EBCA77C2B2AE63
PRIME64_5 = 0x27D4EB2F165667C5
PRIME_MX1 = 0x165667919E3779F9
PRIME_MX2 = 0x9FB21C651E98DF25

MASK32 = 0xFFFFFFFF
MASK64 = 0xFFFFFFFFFFFFFFFF

# The default 192-byte secret, "kSecret" in the spec (pseudo-random bytes).
K_SECRET = bytes.fromhex(
    "b8fe6c3923a44bbe7c01812cf721ad1cded46de9839097db7240a4a4b7b3671f"
    "cb79e64eccc0e578825ad07dccff7221b8084674f743248ee03590e6813a264c"
    "3c2852bb91c300cb88d0658b1b532ea371644897a20df94e3819ef46a9deacd8"
    "a8fa763fe39c343ff9dcbbc7c70b4f1d8a51e04bcdb45931c89f7ec9d9787364"
    "eac5ac8334d3ebc3c581a0fffa1363eb170ddd51b7f0da49d316552629d4689e"
    "2b16be587d47a1fc8ff8b8d17ad031ce45cb3a8f95160428afd7fbcabb4b407e"
)
SECRET_SIZE = 192  # len(K_SECRET)
assert len(K_SECRET) == SECRET_SIZE

# Long-input geometry (spec, "Long inputs"):
STRIPE_LEN = 64  # one stripe = 8 lanes x 8 bytes
ACC_NB = 8  # number of 64-bit accumulators / lanes per stripe
SECRET_CONSUME_RATE = 8  # the secret window advances 8 bytes per stripe
# Stripes per block: how many 64-byte secret windows, each shifted by 8 bytes,
# fit in the secret: (192 - 64) / 8 = 16.
NB_STRIPES_PER_BLOCK = (SECRET_SIZE - STRIPE_LEN) // SECRET_CONSUME_RATE
BLOCK_LEN = STRIPE_LEN * NB_STRIPES_PER_BLOCK  # 16 * 64 = 1024 bytes
# The scramble step uses the last 64 bytes of the secret: offset 192 - 64 = 128.
SCRAMBLE_SECRET_OFFSET = SECRET_SIZE - STRIPE_LEN
# The final (overlapping) stripe uses secret offset 192 - 64 - 7 = 121
# (XXH_SECRET_LASTACC_START = 7 in the spec).
LAST_STRIPE_SECRET_OFFSET = SECRET_SIZE - STRIPE_LEN - 7
# mergeAccs starts at secret offset 11 (XXH_SECRET_MERGEACCS_START).
MERGE_ACCS_SECRET_OFFSET = 11
# 129..240-byte inputs: the 16-byte rounds after the 8th use the secret from
# offset 3 (XXH3_MIDSIZE_STARTOFFSET), and the last 16 input bytes use
# offset 136 - 17 = 119 (XXH3_SECRET_SIZE_MIN - XXH3_MIDSIZE_LASTOFFSET).
MIDSIZE_STARTOFFSET = 3
MIDSIZE_LAST_SECRET_OFFSET = 136 - 17
MIDSIZE_MAX = 240

# Initial accumulator values for the long path (spec, "Initialization").
INIT_ACC = (
    PRIME32_3,
    PRIME64_1,
    PRIME64_2,
    PRIME64_3,
    PRIME64_4,
    PRIME32_2,
    PRIME64_5,
    PRIME32_1,
)


def _u64(x: int) -> np.uint64:
    """A Python int reduced mod 2**64, as a numpy uint64 scalar."""
    return np.uint64(x & MASK64)


def _secret64(offset: int) -> np.uint64:
    """readLE64(kSecret + offset) as a uint64 scalar."""
    return np.uint64(int.from_bytes(K_SECRET[offset : offset + 8], "little"))


def _secret32(offset: int) -> int:
    """readLE32(kSecret + offset) as a Python int."""
    return int.from_bytes(K_SECRET[offset : offset + 4], "little")


# ---------------------------------------------------------------------------
# XXH3 primitives, vectorized over rows.  Every ``np.ndarray`` argument or
# result below is a uint64 array of shape (N,) holding one spec variable for
# all N rows (or (N, 8) for the eight accumulators).
# ---------------------------------------------------------------------------


def read_le64(rows: np.ndarray, offset: int) -> np.ndarray:
    """readLE64(row + offset) for every row.

    Returns ``sum(rows[:, offset + k] << 8k for k in 0..7)`` as uint64 (N,).
    The 8-byte column slice is copied (it is generally unaligned) and then
    reinterpreted explicitly as little-endian, so the result does not depend on
    the host byte order.
    """
    cols = np.ascontiguousarray(rows[:, offset : offset + 8])
    return cols.view("<u8").reshape(rows.shape[0]).astype(np.uint64)


def read_le32(rows: np.ndarray, offset: int) -> np.ndarray:
    """readLE32(row + offset) for every row, widened to uint64 (N,)."""
    cols = np.ascontiguousarray(rows[:, offset : offset + 4])
    return cols.view("<u4").reshape(rows.shape[0]).astype(np.uint64)


def read_le64_lanes(rows: np.ndarray, offset: int) -> np.ndarray:
    """The 8 little-endian u64 words of the stripe at ``offset``: shape (N, 8)."""
    cols = np.ascontiguousarray(rows[:, offset : offset + STRIPE_LEN])
    return cols.view("<u8").reshape(rows.shape[0], ACC_NB).astype(np.uint64)


def rotl64(x: np.ndarray, r: int) -> np.ndarray:
    """Rotate each 64-bit value left by ``r`` (0 < r < 64)."""
    return (x << np.uint64(r)) | (x >> np.uint64(64 - r))


def xxh64_avalanche(h: np.ndarray) -> np.ndarray:
    """XXH64_avalanche (used by XXH3 for 0..3-byte inputs).

    h ^= h >> 33; h *= PRIME64_2; h ^= h >> 29; h *= PRIME64_3; h ^= h >> 32
    """
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(PRIME64_2)
    h = h ^ (h >> np.uint64(29))
    h = h * np.uint64(PRIME64_3)
    return h ^ (h >> np.uint64(32))


def xxh3_avalanche(h: np.ndarray) -> np.ndarray:
    """XXH3_avalanche.

    h ^= h >> 37; h *= PRIME_MX1; h ^= h >> 32
    """
    h = h ^ (h >> np.uint64(37))
    h = h * np.uint64(PRIME_MX1)
    return h ^ (h >> np.uint64(32))


def rrmxmx(h: np.ndarray, length: int) -> np.ndarray:
    """XXH3_rrmxmx (4..8-byte inputs): a stronger avalanche that mixes in the length.

    h ^= rotl64(h, 49) ^ rotl64(h, 24); h *= PRIME_MX2;
    h ^= (h >> 35) + len; h *= PRIME_MX2; h ^= h >> 28
    """
    h = h ^ (rotl64(h, 49) ^ rotl64(h, 24))
    h = h * np.uint64(PRIME_MX2)
    h = h ^ ((h >> np.uint64(35)) + np.uint64(length))
    h = h * np.uint64(PRIME_MX2)
    return h ^ (h >> np.uint64(28))


def mul128_fold64(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """XXH3_mul128_fold64: the full 128-bit product a*b, high half XOR low half.

    numpy has no 128-bit integers, so this is the schoolbook product on 32-bit
    halves (the spec's portable XXH_mult64to128):

        a = aH*2^32 + aL, b = bH*2^32 + bL
        ll = aL*bL, hl = aH*bL, lh = aL*bH, hh = aH*bH   (each < 2^64: exact)
        cross = (ll >> 32) + (hl & 0xFFFFFFFF) + lh
              <= (2^32-1) + (2^32-1) + (2^32-1)^2 = 2^64 - 1   (no overflow)
        high = (hl >> 32) + (cross >> 32) + hh
        low  = (cross << 32) | (ll & 0xFFFFFFFF)

    Returns ``low ^ high``.
    """
    m32 = np.uint64(MASK32)
    s32 = np.uint64(32)
    a_lo, a_hi = a & m32, a >> s32
    b_lo, b_hi = b & m32, b >> s32
    ll = a_lo * b_lo
    hl = a_hi * b_lo
    lh = a_lo * b_hi
    hh = a_hi * b_hi
    cross = (ll >> s32) + (hl & m32) + lh
    high = (hl >> s32) + (cross >> s32) + hh
    low = (cross << s32) | (ll & m32)
    return low ^ high


def mix16b(rows: np.ndarray, offset: int, secret_offset: int) -> np.ndarray:
    """XXH3_mix16B with seed 0.

    mul128_fold64(readLE64(in) ^ readLE64(secret),
                  readLE64(in + 8) ^ readLE64(secret + 8))

    (With a seed s the secret words would be ``+ s`` and ``- s``; s = 0 here.)
    """
    lo = read_le64(rows, offset) ^ _secret64(secret_offset)
    hi = read_le64(rows, offset + 8) ^ _secret64(secret_offset + 8)
    return mul128_fold64(lo, hi)


def accumulate_512(acc: np.ndarray, stripe: np.ndarray, secret_offset: int) -> None:
    """XXH3_accumulate_512 on every row, in place on ``acc`` (N, 8).

    For lane i in 0..7, with data = stripe[:, i] and key = readLE64(secret + 8i):

        data_key = data ^ key
        acc[i ^ 1] += data
        acc[i]     += (data_key & 0xFFFFFFFF) * (data_key >> 32)
    """
    keys = np.array(
        [_secret64(secret_offset + 8 * i) for i in range(ACC_NB)], dtype=np.uint64
    )
    data_key = stripe ^ keys
    # lane i ^ 1 swaps neighbours: 0<->1, 2<->3, ...
    swapped = stripe[:, [i ^ 1 for i in range(ACC_NB)]]
    acc += swapped
    acc += (data_key & np.uint64(MASK32)) * (data_key >> np.uint64(32))


def scramble(acc: np.ndarray) -> None:
    """XXH3_scrambleAcc with the last 64 secret bytes, in place on ``acc`` (N, 8).

    acc[i] ^= acc[i] >> 47; acc[i] ^= readLE64(secret + 128 + 8i); acc[i] *= PRIME32_1
    """
    keys = np.array(
        [_secret64(SCRAMBLE_SECRET_OFFSET + 8 * i) for i in range(ACC_NB)],
        dtype=np.uint64,
    )
    acc ^= acc >> np.uint64(47)
    acc ^= keys
    acc *= np.uint64(PRIME32_1)


def merge_accs(acc: np.ndarray, start: int) -> np.ndarray:
    """XXH3_mergeAccs with secret offset 11.

    result = start + sum_{i=0..3} mul128_fold64(acc[2i]   ^ readLE64(secret + 11 + 16i),
                                                acc[2i+1] ^ readLE64(secret + 11 + 16i + 8))
    return xxh3_avalanche(result)
    """
    n = acc.shape[0]
    result = np.full(n, _u64(start), dtype=np.uint64)
    for i in range(4):
        off = MERGE_ACCS_SECRET_OFFSET + 16 * i
        result += mul128_fold64(acc[:, 2 * i] ^ _secret64(off), acc[:, 2 * i + 1] ^ _secret64(off + 8))
    return xxh3_avalanche(result)


# ---------------------------------------------------------------------------
# XXH3-64 by length class.
# ---------------------------------------------------------------------------


def _xxh3_len_0(n: int) -> np.ndarray:
    # XXH64_avalanche(seed ^ readLE64(secret + 56) ^ readLE64(secret + 64))
    h = np.full(n, _secret64(56) ^ _secret64(64), dtype=np.uint64)
    return xxh64_avalanche(h)


def _xxh3_len_1to3(rows: np.ndarray) -> np.ndarray:
    # c1 = in[0], c2 = in[len >> 1], c3 = in[len - 1]
    # combined = (c1 << 16) | (c2 << 24) | c3 | (len << 8)
    # keyed = combined ^ ((readLE32(secret) ^ readLE32(secret + 4)) + seed)
    length = rows.shape[1]
    c1 = rows[:, 0].astype(np.uint64)
    c2 = rows[:, length >> 1].astype(np.uint64)
    c3 = rows[:, length - 1].astype(np.uint64)
    combined = (c1 << np.uint64(16)) | (c2 << np.uint64(24)) | c3 | np.uint64(length << 8)
    bitflip = np.uint64(_secret32(0) ^ _secret32(4))
    return xxh64_avalanche(combined ^ bitflip)


def _xxh3_len_4to8(rows: np.ndarray) -> np.ndarray:
    # input64 = readLE32(in + len - 4) + (readLE32(in) << 32)
    # keyed = input64 ^ (readLE64(secret + 8) ^ readLE64(secret + 16))   (- seed)
    length = rows.shape[1]
    input1 = read_le32(rows, 0)
    input2 = read_le32(rows, length - 4)
    input64 = input2 + (input1 << np.uint64(32))
    bitflip = _secret64(8) ^ _secret64(16)
    return rrmxmx(input64 ^ bitflip, length)


def _xxh3_len_9to16(rows: np.ndarray) -> np.ndarray:
    # lo = readLE64(in) ^ (readLE64(secret + 24) ^ readLE64(secret + 32))
    # hi = readLE64(in + len - 8) ^ (readLE64(secret + 40) ^ readLE64(secret + 48))
    # acc = len + bswap64(lo) + hi + mul128_fold64(lo, hi)
    length = rows.shape[1]
    lo = read_le64(rows, 0) ^ (_secret64(24) ^ _secret64(32))
    hi = read_le64(rows, length - 8) ^ (_secret64(40) ^ _secret64(48))
    acc = np.uint64(length) + lo.byteswap() + hi + mul128_fold64(lo, hi)
    return xxh3_avalanche(acc)


def _xxh3_len_17to128(rows: np.ndarray) -> np.ndarray:
    # acc = len * PRIME64_1, then pairs of mix16B from both ends of the input,
    # working inwards, 16 bytes of input per 16 bytes of secret.
    n, length = rows.shape
    acc = np.full(n, _u64(length * PRIME64_1), dtype=np.uint64)
    if length > 32:
        if length > 64:
            if length > 96:
                acc += mix16b(rows, 48, 96)
                acc += mix16b(rows, length - 64, 112)
            acc += mix16b(rows, 32, 64)
            acc += mix16b(rows, length - 48, 80)
        acc += mix16b(rows, 16, 32)
        acc += mix16b(rows, length - 32, 48)
    acc += mix16b(rows, 0, 0)
    acc += mix16b(rows, length - 16, 16)
    return xxh3_avalanche(acc)


def _xxh3_len_129to240(rows: np.ndarray) -> np.ndarray:
    # acc = len * PRIME64_1; 8 rounds of mix16B; avalanche; the remaining
    # len/16 - 8 rounds use the secret from offset 3; then the last 16 bytes
    # with secret offset 119; avalanche.
    n, length = rows.shape
    nb_rounds = length // 16
    acc = np.full(n, _u64(length * PRIME64_1), dtype=np.uint64)
    for i in range(8):
        acc += mix16b(rows, 16 * i, 16 * i)
    acc = xxh3_avalanche(acc)
    for i in range(8, nb_rounds):
        acc += mix16b(rows, 16 * i, 16 * (i - 8) + MIDSIZE_STARTOFFSET)
    acc += mix16b(rows, length - 16, MIDSIZE_LAST_SECRET_OFFSET)
    return xxh3_avalanche(acc)


def _xxh3_long(rows: np.ndarray) -> np.ndarray:
    # Spec, "Long inputs" (len > 240):
    #   nb_blocks = (len - 1) // 1024
    #   each full block: 16 stripes (stripe s uses secret + 8s), then scramble
    #   last partial block: ((len - 1) - 1024 * nb_blocks) // 64 stripes
    #   last stripe: the 64 bytes ending at len, secret + 121
    #   result = mergeAccs(acc, secret + 11, len * PRIME64_1)
    # The "- 1" makes an input that ends exactly on a stripe/block boundary
    # leave its final stripe to the "last stripe" step (never an empty one).
    n, length = rows.shape
    acc = np.tile(np.array(INIT_ACC, dtype=np.uint64), (n, 1))
    nb_blocks = (length - 1) // BLOCK_LEN
    for b in range(nb_blocks):
        for s in range(NB_STRIPES_PER_BLOCK):
            off = b * BLOCK_LEN + s * STRIPE_LEN
            accumulate_512(acc, read_le64_lanes(rows, off), s * SECRET_CONSUME_RATE)
        scramble(acc)
    nb_stripes = ((length - 1) - BLOCK_LEN * nb_blocks) // STRIPE_LEN
    for s in range(nb_stripes):
        off = nb_blocks * BLOCK_LEN + s * STRIPE_LEN
        accumulate_512(acc, read_le64_lanes(rows, off), s * SECRET_CONSUME_RATE)
    accumulate_512(acc, read_le64_lanes(rows, length - STRIPE_LEN), LAST_STRIPE_SECRET_OFFSET)
    return merge_accs(acc, length * PRIME64_1)


def rowprints(rows: np.ndarray) -> np.ndarray:
    """XXH3-64 (seed 0, default secret) of every row.

    Parameters
    ----------
    rows : np.ndarray
        2-D uint8 array of shape (N, row_bytes); N >= 0, row_bytes >= 0.

    Returns
    -------
    np.ndarray
        uint64 array of shape (N,) with
        ``out[i] == xxhash.xxh3_64_intdigest(rows[i].tobytes())``.
    """
    rows = np.ascontiguousarray(rows)
    if rows.ndim != 2 or rows.dtype != np.uint8:
        raise ValueError(f"rows must be a 2-D uint8 array, got {rows.dtype} {rows.shape}")
    n, length = rows.shape
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    if length == 0:
        return _xxh3_len_0(n)
    if length <= 3:
        return _xxh3_len_1to3(rows)
    if length <= 8:
        return _xxh3_len_4to8(rows)
    if length <= 16:
        return _xxh3_len_9to16(rows)
    if length <= 128:
        return _xxh3_len_17to128(rows)
    if length <= MIDSIZE_MAX:
        return _xxh3_len_129to240(rows)
    return _xxh3_long(rows)


# ---------------------------------------------------------------------------
# BLAKE3 (spec section 2), vectorized over chunks / parent nodes.
# ---------------------------------------------------------------------------

# IV: the SHA-256 initial hash value (first 32 bits of the fractional parts of
# the square roots of the first 8 primes), reused by BLAKE3.
BLAKE3_IV = (
    0x6A09E667,
    0xBB67AE85,
    0x3C6EF372,
    0xA54FF53A,
    0x510E527F,
    0x9B05688C,
    0x1F83D9AB,
    0x5BE0CD19,
)
# Message word permutation applied between rounds (spec, Table 2).
MSG_PERMUTATION = (2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8)
# Domain-separation flags (spec, Table 3).
CHUNK_START = 1 << 0
CHUNK_END = 1 << 1
PARENT = 1 << 2
ROOT = 1 << 3
BLAKE3_BLOCK_LEN = 64
BLAKE3_CHUNK_LEN = 1024  # 16 blocks
BLAKE3_BLOCKS_PER_CHUNK = BLAKE3_CHUNK_LEN // BLAKE3_BLOCK_LEN
BLAKE3_ROUNDS = 7


def _rotr32(x: np.ndarray, r: int) -> np.ndarray:
    return (x >> np.uint32(r)) | (x << np.uint32(32 - r))


def _g(v: list[np.ndarray], a: int, b: int, c: int, d: int, mx: np.ndarray, my: np.ndarray) -> None:
    """The BLAKE3 quarter-round G (ChaCha's with rotations 16, 12, 8, 7)."""
    v[a] = v[a] + v[b] + mx
    v[d] = _rotr32(v[d] ^ v[a], 16)
    v[c] = v[c] + v[d]
    v[b] = _rotr32(v[b] ^ v[c], 12)
    v[a] = v[a] + v[b] + my
    v[d] = _rotr32(v[d] ^ v[a], 8)
    v[c] = v[c] + v[d]
    v[b] = _rotr32(v[b] ^ v[c], 7)


def _compress(
    cv: np.ndarray,
    block: np.ndarray,
    counter: np.ndarray,
    block_len: np.ndarray,
    flags: np.ndarray,
) -> np.ndarray:
    """BLAKE3 compression function, truncated to the 8-word chaining value.

    Parameters
    ----------
    cv : (M, 8) uint32 input chaining values.
    block : (M, 16) uint32 message words (little-endian block bytes).
    counter : (M,) uint64 counter t (split into low/high 32-bit words).
    block_len : (M,) uint32 number of message bytes in the block (0..64).
    flags : (M,) uint32 domain flags.

    Returns
    -------
    (M, 8) uint32: ``state[i] ^ state[i + 8]`` for i in 0..7 after 7 rounds,
    where the initial state is ``cv[0..7], IV[0..3], t_lo, t_hi, block_len, flags``.
    """
    m = cv.shape[0]
    u32 = np.uint32
    v = [cv[:, i].copy() for i in range(8)]
    v += [np.full(m, BLAKE3_IV[i], dtype=u32) for i in range(4)]
    v += [
        (counter & np.uint64(0xFFFFFFFF)).astype(u32),
        (counter >> np.uint64(32)).astype(u32),
        block_len.astype(u32),
        flags.astype(u32),
    ]
    w = [block[:, i] for i in range(16)]
    for r in range(BLAKE3_ROUNDS):
        # columns
        _g(v, 0, 4, 8, 12, w[0], w[1])
        _g(v, 1, 5, 9, 13, w[2], w[3])
        _g(v, 2, 6, 10, 14, w[4], w[5])
        _g(v, 3, 7, 11, 15, w[6], w[7])
        # diagonals
        _g(v, 0, 5, 10, 15, w[8], w[9])
        _g(v, 1, 6, 11, 12, w[10], w[11])
        _g(v, 2, 7, 8, 13, w[12], w[13])
        _g(v, 3, 4, 9, 14, w[14], w[15])
        if r < BLAKE3_ROUNDS - 1:
            w = [w[p] for p in MSG_PERMUTATION]
    return np.stack([v[i] ^ v[i + 8] for i in range(8)], axis=1)


def _as_bytes(data: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    return np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)


def blake3(data: bytes | bytearray | memoryview | np.ndarray) -> bytes:
    """BLAKE3-256 (default hash mode) of a byte string.

    Parameters
    ----------
    data : bytes-like or np.ndarray
        The message; an array is hashed as its C-order raw bytes.

    Returns
    -------
    bytes
        The 32-byte digest; equals ``blake3.blake3(data).digest()``.

    Notes
    -----
    The message is split into 1024-byte chunks (at least one, possibly empty);
    chunk c is compressed block by block (64-byte blocks, zero padded, counter
    t = c, CHUNK_START on its first block, CHUNK_END on its last).  All chunks'
    block j are compressed in one vectorized call.  Chaining values are then
    combined level by level: adjacent pairs (left || right) are compressed with
    key = IV, t = 0, block_len = 64, flags = PARENT; an unpaired last node moves
    up a level unchanged.  That yields the same tree as the spec's left-balanced
    rule (the left subtree holds the largest power of two of chunks < n).  The
    very last compression (the single chunk's last block, or the top parent)
    also carries ROOT, and its chaining value is the digest (little-endian).
    """
    buf = _as_bytes(data)
    n_bytes = buf.size
    n_chunks = max(1, -(-n_bytes // BLAKE3_CHUNK_LEN))
    padded = np.zeros(n_chunks * BLAKE3_CHUNK_LEN, dtype=np.uint8)
    padded[:n_bytes] = buf
    words = padded.view("<u4").astype(np.uint32).reshape(n_chunks, BLAKE3_BLOCKS_PER_CHUNK, 16)

    chunk_idx = np.arange(n_chunks, dtype=np.uint64)
    chunk_len = np.minimum(BLAKE3_CHUNK_LEN, n_bytes - BLAKE3_CHUNK_LEN * chunk_idx.astype(np.int64))
    # ceil(chunk_len / 64), but an empty (only possible: the sole) chunk still
    # compresses one empty block.
    n_blocks = np.maximum(1, -(-chunk_len // BLAKE3_BLOCK_LEN))
    is_root_chunk = n_chunks == 1

    cv = np.tile(np.array(BLAKE3_IV, dtype=np.uint32), (n_chunks, 1))
    for j in range(int(n_blocks.max())):
        active = j < n_blocks
        last = j == n_blocks - 1
        block_len = np.where(last, chunk_len - BLAKE3_BLOCK_LEN * (n_blocks - 1), BLAKE3_BLOCK_LEN)
        flags = np.where(last, CHUNK_END | (ROOT if is_root_chunk else 0), 0)
        if j == 0:
            flags = flags | CHUNK_START
        out = _compress(cv, words[:, j, :], chunk_idx, block_len, flags)
        cv = np.where(active[:, None], out, cv)

    while cv.shape[0] > 1:
        k = cv.shape[0]
        pairs = k // 2
        block = np.concatenate([cv[0 : 2 * pairs : 2], cv[1 : 2 * pairs : 2]], axis=1)
        flag = PARENT | (ROOT if k == 2 else 0)
        parents = _compress(
            np.tile(np.array(BLAKE3_IV, dtype=np.uint32), (pairs, 1)),
            block,
            np.zeros(pairs, dtype=np.uint64),
            np.full(pairs, BLAKE3_BLOCK_LEN),
            np.full(pairs, flag),
        )
        cv = np.concatenate([parents, cv[2 * pairs :]], axis=0)

    return cv[0].astype("<u4").tobytes()


def chunk_digests(rows: np.ndarray, chunk_rows: int) -> np.ndarray:
    """BLAKE3-256 of each run of ``chunk_rows`` consecutive rows.

    Parameters
    ----------
    rows : np.ndarray
        2-D uint8 array of shape (N, row_bytes).
    chunk_rows : int
        Rows per chunk, >= 1.  The last chunk may hold fewer rows.

    Returns
    -------
    np.ndarray
        uint8 array of shape (ceil(N / chunk_rows), 32) with
        ``out[c] = blake3(rows[c*chunk_rows:(c+1)*chunk_rows].tobytes())``.
    """
    rows = np.ascontiguousarray(rows)
    if rows.ndim != 2 or rows.dtype != np.uint8:
        raise ValueError(f"rows must be a 2-D uint8 array, got {rows.dtype} {rows.shape}")
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    n = rows.shape[0]
    n_chunks = -(-n // chunk_rows)
    out = np.empty((n_chunks, 32), dtype=np.uint8)
    for c in range(n_chunks):
        out[c] = np.frombuffer(blake3(rows[c * chunk_rows : (c + 1) * chunk_rows]), dtype=np.uint8)
    return out


# ---------------------------------------------------------------------------
# Byte-plane shuffle and dense deltas (chunk codecs 1, 2, 3), row equality.
#
# Canonical data is a 1-D uint8 array whose length is a multiple of
# ``itemsize``; a "word" is the little-endian unsigned integer formed by each
# run of ``itemsize`` bytes, bits = 8 * itemsize.  Everything is integer
# arithmetic on those words: numpy unsigned *array* arithmetic wraps modulo
# 2**bits, which is exactly the ring the deltas are defined over.
# ---------------------------------------------------------------------------

ITEMSIZES = (1, 2, 4, 8)
DELTA_XOR = 2  # chunk codec 2: d = new ^ base
DELTA_SUB_ZIGZAG = 3  # chunk codec 3: d = zigzag(new - base)
DELTA_MODES = (DELTA_XOR, DELTA_SUB_ZIGZAG)

# Explicitly little-endian word dtypes, so the oracle means the same thing on
# any host (a view of a uint8 array as "<u4" reads LE words everywhere).
_UWORD = {1: np.dtype("<u1"), 2: np.dtype("<u2"), 4: np.dtype("<u4"), 8: np.dtype("<u8")}
_SWORD = {1: np.dtype("<i1"), 2: np.dtype("<i2"), 4: np.dtype("<i4"), 8: np.dtype("<i8")}


def _check_choice(value: object, allowed: tuple[int, ...], what: str) -> int:
    """``int(value)`` if it is an integer (not a bool) in ``allowed``, else ValueError."""
    # bool is an int subclass: True would silently mean itemsize 1.
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or int(value) not in allowed:
        raise ValueError(f"{what} must be one of {allowed}, got {value!r}")
    return int(value)


def check_itemsize(itemsize: object) -> int:
    """Validate a word size in bytes: one of 1, 2, 4, 8 (else ValueError)."""
    return _check_choice(itemsize, ITEMSIZES, "itemsize")


def check_mode(mode: object) -> int:
    """Validate a delta mode: DELTA_XOR (2) or DELTA_SUB_ZIGZAG (3) (else ValueError)."""
    return _check_choice(mode, DELTA_MODES, "mode")


def check_canonical(data: object, itemsize: int, what: str = "data") -> np.ndarray:
    """``data`` as a C-contiguous 1-D uint8 array of whole words (else ValueError).

    A copy is made only for a strided view; read-only arrays are returned as is.
    """
    if not isinstance(data, np.ndarray) or data.ndim != 1 or data.dtype != np.uint8:
        raise ValueError(
            f"{what} must be a 1-D uint8 numpy array, got {type(data).__name__} "
            f"{getattr(data, 'dtype', None)} {getattr(data, 'shape', None)}"
        )
    if data.size % itemsize:
        raise ValueError(f"{what} has {data.size} bytes, not a multiple of itemsize {itemsize}")
    return np.ascontiguousarray(data)


def check_planes(data: object, itemsize: int, what: str = "data") -> list[np.ndarray]:
    """The byte planes of a shuffled input, as ``itemsize`` C-contiguous 1-D uint8 arrays of
    equal length n (else ValueError).

    ``data`` is either one 1-D uint8 array of ``n * itemsize`` bytes (plane p is bytes
    ``[p*n, (p+1)*n)``) or a sequence of ``itemsize`` 1-D uint8 arrays of n bytes each, plane
    p being byte p of every word. Decoders pass the planes of a chunk object as they lie:
    raw planes as views of the object's bytes and decompressed ones in their own buffers,
    so no plane is copied only to make the planes contiguous.
    """
    if isinstance(data, np.ndarray):
        a = check_canonical(data, itemsize, what)
        n = a.size // itemsize
        return [a[p * n:(p + 1) * n] for p in range(itemsize)]
    if not isinstance(data, (list, tuple)) or len(data) != itemsize:
        raise ValueError(f"{what} must be a 1-D uint8 array or a sequence of {itemsize} planes, got "
                         f"{type(data).__name__} of length {len(data) if isinstance(data, (list, tuple)) else '-'}")
    planes = [check_canonical(x, 1, f"{what} plane {p}") for p, x in enumerate(data)]
    if any(x.size != planes[0].size for x in planes):
        raise ValueError(f"{what} planes differ in length: {[x.size for x in planes]}")
    return planes


def check_pair(
    new: object, base: object, itemsize: int, names: tuple[str, str] = ("new", "base")
) -> tuple[np.ndarray, np.ndarray]:
    """Two canonical arrays of the same length (else ValueError)."""
    a = check_canonical(new, itemsize, names[0])
    b = check_canonical(base, itemsize, names[1])
    if a.size != b.size:
        raise ValueError(f"{names[0]} has {a.size} bytes but {names[1]} has {b.size}")
    return a, b


def shuffle(data: np.ndarray, itemsize: int) -> np.ndarray:
    """Byte-plane shuffle: gather byte p of every word into plane p.

    Parameters
    ----------
    data : np.ndarray
        1-D uint8, length ``n * itemsize``.
    itemsize : int
        Word size in bytes, one of 1, 2, 4, 8.

    Returns
    -------
    np.ndarray
        Fresh 1-D uint8 array of the same length with
        ``out[p*n + i] = data[i*itemsize + p]`` for p < itemsize, i < n.
        (For itemsize 1 that is a copy.)  Grouping e.g. all float exponent
        bytes together is what makes the result compress well.
    """
    k = check_itemsize(itemsize)
    data = check_canonical(data, k)
    n = data.size // k
    out = np.empty(data.size, dtype=np.uint8)
    for p in range(k):
        # data[p::k] is byte p of words 0, 1, ..., n-1.
        out[p * n : (p + 1) * n] = data[p::k]
    return out


def check_out(out: object, size: int, *inputs: np.ndarray) -> np.ndarray:
    """A fresh uint8 array of ``size`` bytes for ``out=None``, else ``out`` itself, which must
    be a writable C-contiguous 1-D uint8 array of that size sharing no memory with ``inputs``
    (else ValueError: the kernels read inputs after writing output bytes)."""
    if out is None:
        return np.empty(size, dtype=np.uint8)
    if (not isinstance(out, np.ndarray) or out.dtype != np.uint8 or out.ndim != 1
            or out.size != size or not out.flags.c_contiguous or not out.flags.writeable):
        raise ValueError(f"out must be a writable C-contiguous 1-D uint8 array of {size} bytes, got "
                         f"{type(out).__name__} {getattr(out, 'dtype', None)} {getattr(out, 'shape', None)}")
    if any(np.may_share_memory(out, x) for x in inputs):
        raise ValueError("out must not overlap the inputs")
    return out


def unshuffle(data: np.ndarray | Sequence[np.ndarray], itemsize: int,
              out: np.ndarray | None = None) -> np.ndarray:
    """Inverse of :func:`shuffle`: ``out[i*itemsize + p] = data[p*n + i]``.

    Parameters
    ----------
    data : np.ndarray or sequence of np.ndarray
        1-D uint8, length ``n * itemsize`` (``itemsize`` planes of n bytes), or the
        ``itemsize`` planes as separate 1-D uint8 arrays of n bytes (:func:`check_planes`).
    itemsize : int
        Word size in bytes, one of 1, 2, 4, 8.
    out : np.ndarray, optional
        Writable C-contiguous 1-D uint8 array of the same length to write into; must not
        overlap ``data``.

    Returns
    -------
    np.ndarray
        ``out`` or a fresh 1-D uint8 array; ``unshuffle(shuffle(x, k), k) == x``.
    """
    k = check_itemsize(itemsize)
    planes = check_planes(data, k)
    n = planes[0].size
    out = check_out(out, n * k, *planes)
    for p in range(k):
        out[p::k] = planes[p]
    return out


def delta_encode(new: np.ndarray, base: np.ndarray, itemsize: int, mode: int) -> np.ndarray:
    """Dense delta of ``new`` against ``base``, word by word, then shuffled.

    Parameters
    ----------
    new, base : np.ndarray
        1-D uint8 arrays of the same length ``n * itemsize``.
    itemsize : int
        Word size in bytes, one of 1, 2, 4, 8; bits = 8 * itemsize.
    mode : int
        ``DELTA_XOR`` (2) or ``DELTA_SUB_ZIGZAG`` (3).

    Returns
    -------
    np.ndarray
        ``shuffle(d, itemsize)`` where, for every word w (little-endian):

        * mode 2: ``d_w = new_w ^ base_w``;
        * mode 3: ``s = (new_w - base_w) mod 2**bits`` read as a signed
          two's-complement bits-wide integer, and
          ``d_w = ((s << 1) ^ (s >> (bits-1))) mod 2**bits`` with an arithmetic
          right shift (zigzag: 0, -1, 1, -2, 2, ... -> 0, 1, 2, 3, 4, ...).
    """
    k = check_itemsize(itemsize)
    m = check_mode(mode)
    new, base = check_pair(new, base, k)
    a = new.view(_UWORD[k])
    b = base.view(_UWORD[k])
    if m == DELTA_XOR:
        d = a ^ b
    else:
        bits = 8 * k
        s = a - b  # wraps mod 2**bits (unsigned array arithmetic)
        # Arithmetic shift of the signed reading: 0 if s >= 0, else -1 (all ones).
        sign = s.view(_SWORD[k]) >> (bits - 1)
        # The left shift is done unsigned so the dropped top bit wraps away.
        d = (s << 1) ^ sign.view(_UWORD[k])
    return shuffle(d.view(np.uint8), k)


def delta_decode(shuffled: np.ndarray | Sequence[np.ndarray], base: np.ndarray, itemsize: int,
                 mode: int, out: np.ndarray | None = None) -> np.ndarray:
    """Inverse of :func:`delta_encode`: rebuild ``new`` from the shuffled delta and ``base``.

    Parameters
    ----------
    shuffled : np.ndarray or sequence of np.ndarray
        1-D uint8, the output of ``delta_encode(new, base, itemsize, mode)``, or its
        ``itemsize`` planes as separate arrays (:func:`check_planes`).
    base : np.ndarray
        1-D uint8, the same length.
    itemsize : int
        Word size in bytes, one of 1, 2, 4, 8; bits = 8 * itemsize.
    mode : int
        ``DELTA_XOR`` (2) or ``DELTA_SUB_ZIGZAG`` (3).
    out : np.ndarray, optional
        Writable C-contiguous 1-D uint8 array of the same length, overlapping neither input.

    Returns
    -------
    np.ndarray
        ``out`` or a fresh 1-D uint8 array: with ``d = unshuffle(shuffled, itemsize)`` read
        as little-endian words,

        * mode 2: ``new_w = d_w ^ base_w``;
        * mode 3: ``s = (d_w >> 1) ^ -(d_w & 1)`` (mod 2**bits, logical shift:
          undoes the zigzag), ``new_w = (base_w + s) mod 2**bits``.
    """
    k = check_itemsize(itemsize)
    m = check_mode(mode)
    planes = check_planes(shuffled, k, "shuffled")
    base = check_canonical(base, k, "base")
    if base.size != planes[0].size * k:
        raise ValueError(f"shuffled has {planes[0].size * k} bytes but base has {base.size}")
    d = unshuffle(planes, k).view(_UWORD[k])
    b = base.view(_UWORD[k])
    if m == DELTA_XOR:
        new = d ^ b
    else:
        # -(d & 1) on an unsigned array wraps: 0 -> 0, 1 -> all ones.
        s = (d >> 1) ^ -(d & 1)
        new = b + s  # wraps mod 2**bits
    if out is None:
        return new.view(np.uint8)
    out = check_out(out, base.size, *planes, base)
    out[:] = new.view(np.uint8)
    return out


def check_row_pair(a: object, b: object) -> tuple[np.ndarray, np.ndarray]:
    """Two C-contiguous 2-D uint8 arrays of the same shape (else ValueError)."""
    for name, x in (("a", a), ("b", b)):
        if not isinstance(x, np.ndarray) or x.ndim != 2 or x.dtype != np.uint8:
            raise ValueError(
                f"{name} must be a 2-D uint8 numpy array, got {type(x).__name__} "
                f"{getattr(x, 'dtype', None)} {getattr(x, 'shape', None)}"
            )
    assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
    if a.shape != b.shape:
        raise ValueError(f"a and b differ in shape: {a.shape} vs {b.shape}")
    return np.ascontiguousarray(a), np.ascontiguousarray(b)


def rows_equal(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Which rows are byte-for-byte identical.

    Parameters
    ----------
    a, b : np.ndarray
        2-D uint8 arrays of the same shape (N, row_bytes).

    Returns
    -------
    np.ndarray
        bool (N,), ``out[i] = all(a[i, j] == b[i, j] for j < row_bytes)``
        (True for row_bytes 0).  Bytes, not floats, are compared, so -0.0 vs
        +0.0 or two NaNs with different payloads are *different* rows.
    """
    a, b = check_row_pair(a, b)
    # "no byte differs" (an empty row has no differing byte).
    return ~np.any(a != b, axis=1)


# ---------------------------------------------------------------------------
# Row statistics of a pair of matrices (row i of a vs row i of b).
#
# Element types by their spec codes (the same codes as embfmt.canonical.dtype, repeated
# here because the kernels never import embfmt): (itemsize, is_float).
# bfloat16 is the upper 16 bits of a float32.
#
# Summation order is normative so that every backend agrees bit for bit:
# sequential over columns j = 0..D-1, one float64 add (or multiply) at a time,
# no FMA, no pairwise/tree sums.  Every NaN *result* is written as the one
# canonical quiet NaN 0x7FF8000000000000: which NaN operand an x86 add or max
# propagates depends on operand order, which a compiler may legally commute,
# so NaN payloads/signs are not part of the definition.
# ---------------------------------------------------------------------------

DTYPE_FLOAT64 = 1
DTYPE_FLOAT32 = 2
DTYPE_FLOAT16 = 3
DTYPE_BFLOAT16 = 4
DTYPE_INT8 = 5
DTYPE_UINT8 = 6
ROW_STATS_DTYPES = (DTYPE_FLOAT64, DTYPE_FLOAT32, DTYPE_FLOAT16, DTYPE_BFLOAT16, DTYPE_INT8, DTYPE_UINT8)
ROW_STATS_ITEMSIZE = {
    DTYPE_FLOAT64: 8,
    DTYPE_FLOAT32: 4,
    DTYPE_FLOAT16: 2,
    DTYPE_BFLOAT16: 2,
    DTYPE_INT8: 1,
    DTYPE_UINT8: 1,
}
# max_ulp for a pair with a NaN whose bit patterns differ.
ULP_NAN = MASK64
# The canonical NaN every NaN statistic is written as.
CANONICAL_NAN_BITS = 0x7FF8000000000000


def check_dtype_code(code: object) -> int:
    """Validate a row-stats element type code, 1..6 (else ValueError)."""
    return _check_choice(code, ROW_STATS_DTYPES, "dtype_code")


def check_row_stats_args(a: object, b: object, dtype_code: object) -> tuple[np.ndarray, np.ndarray, int]:
    """(a, b, code): same-shape C-contiguous 2-D uint8 rows of whole elements (else ValueError)."""
    code = check_dtype_code(dtype_code)
    a, b = check_row_pair(a, b)
    k = ROW_STATS_ITEMSIZE[code]
    if a.shape[1] % k:
        raise ValueError(f"row_bytes {a.shape[1]} is not a multiple of the itemsize {k} of dtype_code {code}")
    return a, b, code


def _row_words(rows: np.ndarray, k: int) -> np.ndarray:
    """The little-endian k-byte words of every row as uint64 (N, D)."""
    return rows.view(_UWORD[k]).astype(np.uint64)


def decode_values(rows: np.ndarray, dtype_code: int) -> np.ndarray:
    """Canonical rows (N, row_bytes) -> their element values as float64 (N, D), exactly.

    float64/32/16 and int8/uint8 through numpy's own (exact) widening casts;
    bfloat16 as ``float32(bits << 16)``.
    """
    code = check_dtype_code(dtype_code)
    if code == DTYPE_BFLOAT16:
        values = (rows.view("<u2").astype(np.uint32) << np.uint32(16)).view(np.float32)
    else:
        np_type = {
            DTYPE_FLOAT64: "<f8",
            DTYPE_FLOAT32: "<f4",
            DTYPE_FLOAT16: "<f2",
            DTYPE_INT8: "i1",
            DTYPE_UINT8: "u1",
        }[code]
        values = rows.view(np_type)
    # Widening a signalling NaN raises the "invalid" flag (numpy warns); the
    # value is still a NaN, which is all the statistics look at.
    with np.errstate(invalid="ignore"):
        return values.astype(np.float64)


def ulp_keys(rows: np.ndarray, dtype_code: int) -> tuple[np.ndarray, np.ndarray]:
    """(key, is_nan) of every element, both (N, D): the biased keys max_ulp subtracts.

    Floats, w = 8 * itemsize bits: ``SIGN = 1 << (w-1)``, ``m = bits & (SIGN-1)``,
    ``key = SIGN - m`` if the sign bit is set else ``SIGN + m``; the keys are
    monotone in the value and ``-0.0``, ``+0.0`` share the key SIGN.  NaN
    means exponent all ones and mantissa != 0, i.e. ``m > bits(+inf)``.
    int8: ``key = value + 128`` (the bits with the sign bit flipped); uint8:
    ``key = value``; never NaN.
    """
    code = check_dtype_code(dtype_code)
    k = ROW_STATS_ITEMSIZE[code]
    bits = _row_words(rows, k)
    if code == DTYPE_INT8:
        return bits ^ np.uint64(0x80), np.zeros(bits.shape, dtype=bool)
    if code == DTYPE_UINT8:
        return bits, np.zeros(bits.shape, dtype=bool)
    w = 8 * k
    sign = np.uint64(1 << (w - 1))
    inf_bits = {DTYPE_FLOAT64: 0x7FF0000000000000, DTYPE_FLOAT32: 0x7F800000,
                DTYPE_FLOAT16: 0x7C00, DTYPE_BFLOAT16: 0x7F80}[code]
    m = bits & (sign - np.uint64(1))
    key = np.where((bits & sign) != 0, sign - m, sign + m)
    return key, m > np.uint64(inf_bits)


def _canonical_nan(x: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(x), np.uint64(CANONICAL_NAN_BITS).view(np.float64), x)


def row_stats(a: np.ndarray, b: np.ndarray, dtype_code: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-row comparison statistics of two matrices given as canonical bytes.

    Parameters
    ----------
    a, b : np.ndarray
        2-D uint8 arrays of the same shape (N, row_bytes): the little-endian
        rows of two matrices with element type ``dtype_code``;
        ``D = row_bytes / itemsize`` (N = 0 and D = 0 are allowed).
    dtype_code : int
        1 float64, 2 float32, 3 float16, 4 bfloat16, 5 int8, 6 uint8; anything
        else raises ValueError (as do mismatched shapes and partial elements).

    Returns
    -------
    (l2, cosine, max_abs, max_ulp)
        float64 (N,), float64 (N,), float64 (N,), uint64 (N,).  With x = row i
        of a and y = row i of b decoded exactly to float64, and every sum taken
        sequentially over j = 0..D-1 starting from +0.0:

        * ``l2 = sqrt(sum (y_j - x_j)**2)``;
        * ``cosine``: ``dot = sum x_j*y_j``, ``nx = sqrt(sum x_j**2)``,
          ``ny = sqrt(sum y_j**2)``; NaN if any of dot, nx, ny is NaN (so any
          NaN input, and e.g. inf*0 in the dot), else 1.0 if nx == ny == 0,
          else 0.0 if nx == 0 or ny == 0, else ``dot / (nx * ny)`` clipped into
          [-1, 1] (NaN, e.g. inf/inf, stays NaN);
        * ``max_abs = max |y_j - x_j|`` (0.0 for D = 0), NaN if any difference is NaN;
        * ``max_ulp = max ulp(x_j, y_j)`` (0 for D = 0) on the bit patterns:
          ``|key(x_j) - key(y_j)|`` (see :func:`ulp_keys`), or, if either is
          NaN, 0 for identical bit patterns and 2**64 - 1 otherwise.  int8 /
          uint8: ``|y_j - x_j|``.

        Every NaN statistic is the canonical quiet NaN (bits 0x7FF8000000000000).
    """
    a, b, code = check_row_stats_args(a, b, dtype_code)
    n = a.shape[0]
    # Column-major copies, so that column j is a contiguous vector over rows.
    x = np.ascontiguousarray(decode_values(a, code).T)
    y = np.ascontiguousarray(decode_values(b, code).T)
    d_cols = x.shape[0]

    s2 = np.zeros(n)
    dot = np.zeros(n)
    sx = np.zeros(n)
    sy = np.zeros(n)
    max_abs = np.zeros(n)
    with np.errstate(all="ignore"):  # overflow to inf and inf - inf are part of the definition
        for j in range(d_cols):  # normative order: column by column, left to right
            xj, yj = x[j], y[j]
            diff = yj - xj
            s2 += diff * diff
            dot += xj * yj
            sx += xj * xj
            sy += yj * yj
            max_abs = np.maximum(max_abs, np.abs(diff))  # np.maximum propagates NaN
        l2 = np.sqrt(s2)
        nx = np.sqrt(sx)
        ny = np.sqrt(sy)
        nan = np.isnan(dot) | np.isnan(nx) | np.isnan(ny)
        both_zero = (nx == 0) & (ny == 0)
        one_zero = (nx == 0) | (ny == 0)
        # nx, ny > 0 here means nx * ny >= 2**-1074 (sum x_j**2 >= 2**-1074), never 0.
        ratio = dot / np.where(one_zero, 1.0, nx * ny)
        # Explicit comparisons rather than np.clip so that NaN (inf / inf) stays NaN.
        ratio = np.where(ratio > 1.0, 1.0, np.where(ratio < -1.0, -1.0, ratio))
        cosine = np.where(nan, np.nan, np.where(both_zero, 1.0, np.where(one_zero, 0.0, ratio)))

    kx, nan_x = ulp_keys(a, code)
    ky, nan_y = ulp_keys(b, code)
    ulp = np.where(kx >= ky, kx - ky, ky - kx)
    # Identical bit patterns <=> identical keys here: only +-0.0 share a key, and they are not NaN.
    ulp = np.where(nan_x | nan_y, np.where(kx == ky, np.uint64(0), np.uint64(ULP_NAN)), ulp)
    max_ulp = ulp.max(axis=1, initial=0).astype(np.uint64)

    return _canonical_nan(l2), _canonical_nan(cosine), _canonical_nan(max_abs), max_ulp
