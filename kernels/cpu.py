"""Numba CPU kernels: XXH3-64 row fingerprints and BLAKE3 chunk digests.

Same functions and meanings as :mod:`.reference` (the numpy oracle):

* ``rowprints(rows)`` -- XXH3-64 (seed 0, default secret) of every row,
  parallel over rows;
* ``rowprints_into(rows, out)`` -- the same, single-threaded and GIL-free,
  for callers that run their own thread pool;
* ``chunk_digests(rows, chunk_rows)`` -- BLAKE3-256 per run of rows, using the
  official ``blake3`` package;
* ``shuffle`` / ``unshuffle`` (byte planes), ``delta_encode`` /
  ``delta_decode`` (XOR and subtract-zigzag deltas fused with the shuffle),
  single-threaded and GIL-free, and ``rows_equal`` (bit-exact, parallel over
  rows for large inputs); see the section at the end of this module.

Determinism: every row is hashed independently by a pure function of its
bytes, so the result does not depend on thread count or scheduling; there are
no parallel reductions.  No ``fastmath`` anywhere (it is all integer code, but
the flag is banned so nobody later relies on reassociation).

Performance notes (why the code looks like this):

* Unaligned 8-byte loads.  Rows of e.g. 3 x float32 = 12 bytes start at any
  byte offset, so a ``uint64`` view of the matrix is impossible in general.
  ``_load_u64`` is a tiny LLVM intrinsic that emits a single ``load i64,
  align 1`` (a plain ``mov`` on x86; unaligned loads are legal and full speed
  there).  Byte-by-byte assembly would be correct too but relies on LLVM's
  load-combining to become one load, which it does not do reliably once the
  SLP vectorizer is involved.
* 128-bit multiply.  ``_mul128_fold64`` zero-extends to ``i128`` and lets LLVM
  emit one ``mul`` (64x64->128) instead of four 32-bit partial products.
* The long-input (>240 bytes) stripe loop is emitted by ``_emit_xxh3_long`` as LLVM IR on
  an explicit ``<8 x i64>`` vector (the eight accumulators, one per lane), so
  the codegen does not depend on auto-vectorizer heuristics.  Scalar Numba code
  with eight accumulator locals was tried first: LLVM's loop vectorizer
  treated them as eight sum-reductions over stripes and vectorized *across*
  stripes with strided gathers (2.3 GB/s for 512-byte rows vs 8+ GB/s now).
* The per-row helpers are inlined at the Numba IR level
  (``inline="always"``).  Otherwise each row pays two out-of-line calls with
  Numba's status-returning convention and array structs passed on the stack,
  which cost ~40% for 512-byte rows.

The intrinsics do native-endian loads; XXH3 is defined on little-endian words,
so the module refuses to import on a big-endian host (see the assert below)
rather than silently producing different fingerprints.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Sequence
from typing import Any, Callable, TypeAlias

import blake3 as _blake3
import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.typing.templates import Signature
from numba.extending import intrinsic

from . import reference as _ref

__all__ = [
    "rowprints",
    "rowprints_into",
    "chunk_digests",
    "shuffle",
    "unshuffle",
    "delta_encode",
    "delta_decode",
    "rows_equal",
    "row_stats",
]

# _load_u64/_load_u32 reinterpret memory in host byte order; XXH3 reads
# little-endian words.  All supported platforms (x86-64, aarch64) are
# little-endian; fail loudly anywhere else instead of hashing differently.
assert sys.byteorder == "little", "embfmt CPU kernels require a little-endian host"

# ---------------------------------------------------------------------------
# Constants, all as np.uint64 so Numba types every operation as uint64
# (mixing uint64 with a Python int would promote to float64).
# Values and derivations: see reference.py.
# ---------------------------------------------------------------------------
_U = np.uint64
PRIME32_1 = _U(_ref.PRIME32_1)
PRIME64_1 = _U(_ref.PRIME64_1)
PRIME64_2 = _U(_ref.PRIME64_2)
PRIME64_3 = _U(_ref.PRIME64_3)
PRIME_MX1 = _U(_ref.PRIME_MX1)
PRIME_MX2 = _U(_ref.PRIME_MX2)
MASK32 = _U(_ref.MASK32)
S8 = _U(8)
S16 = _U(16)
S24 = _U(24)
S28 = _U(28)
S29 = _U(29)
S32 = _U(32)
S33 = _U(33)
S35 = _U(35)
S37 = _U(37)

# The secret as a read-only uint8 array; Numba freezes a global array into the
# compiled code as a constant, so reads of it are plain loads from .rodata.
SECRET = np.frombuffer(_ref.K_SECRET, dtype=np.uint8).copy()
SECRET.flags.writeable = False

# Length-only constants precomputed in Python (exact integer math), so the
# kernel does not have to evaluate them per row.
# 0-byte input: XXH64_avalanche(readLE64(secret+56) ^ readLE64(secret+64)).
XXH3_LEN0 = _U(int(_ref.rowprints(np.zeros((1, 0), dtype=np.uint8))[0]))
# 1..3 bytes: bitflip = readLE32(secret) ^ readLE32(secret + 4).
BITFLIP_1TO3 = _U(_ref._secret32(0) ^ _ref._secret32(4))
# 4..8 bytes: bitflip = readLE64(secret + 8) ^ readLE64(secret + 16).
BITFLIP_4TO8 = _U(int(_ref._secret64(8) ^ _ref._secret64(16)))
# 9..16 bytes: bitflip1 = s[24] ^ s[32], bitflip2 = s[40] ^ s[48] (LE64 words).
BITFLIP_9TO16_LO = _U(int(_ref._secret64(24) ^ _ref._secret64(32)))
BITFLIP_9TO16_HI = _U(int(_ref._secret64(40) ^ _ref._secret64(48)))

STRIPE_LEN = _ref.STRIPE_LEN  # 64
BLOCK_LEN = _ref.BLOCK_LEN  # 1024 = 16 stripes
NB_STRIPES_PER_BLOCK = _ref.NB_STRIPES_PER_BLOCK  # 16
SCRAMBLE_SECRET_OFFSET = _ref.SCRAMBLE_SECRET_OFFSET  # 192 - 64 = 128
LAST_STRIPE_SECRET_OFFSET = _ref.LAST_STRIPE_SECRET_OFFSET  # 192 - 64 - 7 = 121
MERGE_ACCS_SECRET_OFFSET = _ref.MERGE_ACCS_SECRET_OFFSET  # 11
MIDSIZE_STARTOFFSET = _ref.MIDSIZE_STARTOFFSET  # 3
MIDSIZE_LAST_SECRET_OFFSET = _ref.MIDSIZE_LAST_SECRET_OFFSET  # 136 - 17 = 119

_NJIT = dict(cache=True, nogil=True, fastmath=False, boundscheck=False)

# What a Numba @intrinsic typing function returns: (signature, codegen), or
# None to decline the argument types.
_Intrinsic: TypeAlias = "tuple[Signature, Callable[..., ir.Value]] | None"

# ---------------------------------------------------------------------------
# LLVM intrinsics.
# ---------------------------------------------------------------------------


def _is_c_byte_array(arr: types.Type) -> bool:
    return isinstance(arr, types.Array) and arr.dtype == types.uint8 and arr.layout == "C"


@intrinsic
def _load_u64(typingctx: Any, arr: types.Type, byte_index: types.Type) -> _Intrinsic:
    """Native-endian u64 at ``arr.data + byte_index`` (any alignment).

    ``arr`` is a C-contiguous uint8 array of any dimension, ``byte_index`` a
    flat byte offset.  No bounds check: callers guarantee
    ``byte_index + 8 <= arr.size``.
    """
    if not (_is_c_byte_array(arr) and isinstance(byte_index, types.Integer)):
        return None
    sig = types.uint64(arr, byte_index)

    def codegen(context: Any, builder: ir.IRBuilder, signature: Signature, args: list[ir.Value]) -> ir.Value:
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        idx = context.cast(builder, args[1], signature.args[1], types.intp)
        ptr = builder.gep(ary.data, [idx], inbounds=True)
        ptr64 = builder.bitcast(ptr, ir.IntType(64).as_pointer())
        return builder.load(ptr64, align=1)

    return sig, codegen


@intrinsic
def _load_u32(typingctx: Any, arr: types.Type, byte_index: types.Type) -> _Intrinsic:
    """Native-endian u32 at ``arr.data + byte_index`` (any alignment), widened to u64."""
    if not (_is_c_byte_array(arr) and isinstance(byte_index, types.Integer)):
        return None
    sig = types.uint64(arr, byte_index)

    def codegen(context: Any, builder: ir.IRBuilder, signature: Signature, args: list[ir.Value]) -> ir.Value:
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        idx = context.cast(builder, args[1], signature.args[1], types.intp)
        ptr = builder.gep(ary.data, [idx], inbounds=True)
        ptr32 = builder.bitcast(ptr, ir.IntType(32).as_pointer())
        val = builder.load(ptr32, align=1)
        return builder.zext(val, ir.IntType(64))

    return sig, codegen


@intrinsic
def _load_u8(typingctx: Any, arr: types.Type, byte_index: types.Type) -> _Intrinsic:
    """The byte at ``arr.data + byte_index``, widened to u64."""
    if not (_is_c_byte_array(arr) and isinstance(byte_index, types.Integer)):
        return None
    sig = types.uint64(arr, byte_index)

    def codegen(context: Any, builder: ir.IRBuilder, signature: Signature, args: list[ir.Value]) -> ir.Value:
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        idx = context.cast(builder, args[1], signature.args[1], types.intp)
        ptr = builder.gep(ary.data, [idx], inbounds=True)
        return builder.zext(builder.load(ptr), ir.IntType(64))

    return sig, codegen


@intrinsic
def _mul128_fold64(typingctx: Any, a: types.Type, b: types.Type) -> _Intrinsic:
    """XXH3_mul128_fold64: ``lo64(a*b) ^ hi64(a*b)`` of the exact 128-bit product."""
    if not (a == types.uint64 and b == types.uint64):
        return None
    sig = types.uint64(types.uint64, types.uint64)

    def codegen(context: Any, builder: ir.IRBuilder, signature: Signature, args: list[ir.Value]) -> ir.Value:
        i64 = ir.IntType(64)
        i128 = ir.IntType(128)
        prod = builder.mul(builder.zext(args[0], i128), builder.zext(args[1], i128))
        lo = builder.trunc(prod, i64)
        hi = builder.trunc(builder.lshr(prod, ir.Constant(i128, 64)), i64)
        return builder.xor(lo, hi)

    return sig, codegen


@intrinsic
def _bswap64(typingctx: Any, x: types.Type) -> _Intrinsic:
    """Byte-reverse a u64 (llvm.bswap.i64: one ``bswap`` instruction)."""
    if x != types.uint64:
        return None
    sig = types.uint64(types.uint64)

    def codegen(context: Any, builder: ir.IRBuilder, signature: Signature, args: list[ir.Value]) -> ir.Value:
        return builder.bswap(args[0])

    return sig, codegen


# ---------------------------------------------------------------------------
# XXH3 primitives (spec names; exact math in reference.py docstrings).
# ---------------------------------------------------------------------------


@numba.njit(**_NJIT)
def _rotl64(x: np.uint64, r: np.uint64) -> np.uint64:
    return (x << r) | (x >> (_U(64) - r))


@numba.njit(**_NJIT)
def _xxh64_avalanche(h: np.uint64) -> np.uint64:
    h ^= h >> S33
    h *= PRIME64_2
    h ^= h >> S29
    h *= PRIME64_3
    h ^= h >> S32
    return h


@numba.njit(**_NJIT)
def _xxh3_avalanche(h: np.uint64) -> np.uint64:
    h ^= h >> S37
    h *= PRIME_MX1
    h ^= h >> S32
    return h


@numba.njit(**_NJIT)
def _rrmxmx(h: np.uint64, length: np.uint64) -> np.uint64:
    h ^= _rotl64(h, _U(49)) ^ _rotl64(h, _U(24))
    h *= PRIME_MX2
    h ^= (h >> S35) + length
    h *= PRIME_MX2
    h ^= h >> S28
    return h


@numba.njit(**_NJIT)
def _mix16b(buf: np.ndarray, p: int, soff: int) -> np.uint64:
    """XXH3_mix16B, seed 0: input at flat byte offset p, secret at soff."""
    lo = _load_u64(buf, p) ^ _load_u64(SECRET, soff)
    hi = _load_u64(buf, p + 8) ^ _load_u64(SECRET, soff + 8)
    return _mul128_fold64(lo, hi)


# inline="always" on the three per-row functions: see the module docstring.
@numba.njit(inline="always", **_NJIT)
def _xxh3_17to240(buf: np.ndarray, p: int, n: int) -> np.uint64:
    """XXH3-64 of buf[p:p+n] for 17 <= n <= 240 (see reference)."""
    h = _U(n) * PRIME64_1
    if n <= 128:
        if n > 32:
            if n > 64:
                if n > 96:
                    h += _mix16b(buf, p + 48, 96)
                    h += _mix16b(buf, p + n - 64, 112)
                h += _mix16b(buf, p + 32, 64)
                h += _mix16b(buf, p + n - 48, 80)
            h += _mix16b(buf, p + 16, 32)
            h += _mix16b(buf, p + n - 32, 48)
        h += _mix16b(buf, p, 0)
        h += _mix16b(buf, p + n - 16, 16)
        return _xxh3_avalanche(h)
    for i in range(8):
        h += _mix16b(buf, p + 16 * i, 16 * i)
    h = _xxh3_avalanche(h)
    for i in range(8, n // 16):
        h += _mix16b(buf, p + 16 * i, 16 * (i - 8) + MIDSIZE_STARTOFFSET)
    h += _mix16b(buf, p + n - 16, MIDSIZE_LAST_SECRET_OFFSET)
    return _xxh3_avalanche(h)


@numba.njit(inline="always", **_NJIT)
def _xxh3_0to16(buf: np.ndarray, p: int, n: int) -> np.uint64:
    """XXH3-64 of buf[p:p+n] for 0 <= n <= 16 (see reference)."""
    if n > 8:
        lo = _load_u64(buf, p) ^ BITFLIP_9TO16_LO
        hi = _load_u64(buf, p + n - 8) ^ BITFLIP_9TO16_HI
        acc = _U(n) + _bswap64(lo) + hi + _mul128_fold64(lo, hi)
        return _xxh3_avalanche(acc)
    if n >= 4:
        input1 = _load_u32(buf, p)
        input2 = _load_u32(buf, p + n - 4)
        return _rrmxmx((input2 + (input1 << S32)) ^ BITFLIP_4TO8, _U(n))
    if n > 0:
        c1 = _load_u8(buf, p)
        c2 = _load_u8(buf, p + (n >> 1))
        c3 = _load_u8(buf, p + n - 1)
        combined = (c1 << S16) | (c2 << S24) | c3 | (_U(n) << S8)
        return _xxh64_avalanche(combined ^ BITFLIP_1TO3)
    return XXH3_LEN0


@numba.njit(inline="always", **_NJIT)
def _xxh3_upto240(buf: np.ndarray, p: int, n: int) -> np.uint64:
    """XXH3-64 (seed 0) of the n <= 240 bytes at flat offset p of C-contiguous uint8 ``buf``
    (longer rows: :func:`_rowprints_long`)."""
    if n <= 16:
        return _xxh3_0to16(buf, p, n)
    return _xxh3_17to240(buf, p, n)


# Rows hashed per call of _xxh3_long_rows in the row loops: two independent
# accumulator sets give the out-of-order core parallel work (measured 512-byte
# rows, Cascade Lake: 1 row 19, 2 rows 22, 4 rows 19 GB/s hot in L2).
_ROW_INTERLEAVE = 2
_UNROLL_IDX = tuple(range(_ROW_INTERLEAVE))


def _emit_xxh3_long(
    context: Any, builder: ir.IRBuilder, data: ir.Value, offsets: list[ir.Value], n: ir.Value
) -> list[ir.Value]:
    """Emit XXH3-64 (seed 0) of the ``n``-byte inputs (n > 240) at each of ``offsets``.

    ``data`` is an ``i8*``, ``offsets`` and ``n`` are ``intp`` values.  All inputs
    share the length, so one loop nest serves them all and the accumulator
    vectors of the different rows are independent work for the out-of-order
    core.  Returns one ``i64`` hash per offset.
    """
    i32 = ir.IntType(32)
    i64 = ir.IntType(64)
    i128 = ir.IntType(128)
    vec = ir.VectorType(i64, 8)
    intp = n.type

    def splat(value: int) -> ir.Constant:
        return ir.Constant(vec, [ir.Constant(i64, value)] * 8)

    def c(value: int) -> ir.Constant:
        return ir.Constant(intp, value)

    secret_ary = context.make_constant_array(builder, types.Array(types.uint8, 1, "C"), SECRET)
    secret = context.make_array(types.Array(types.uint8, 1, "C"))(context, builder, secret_ary).data
    swap = ir.Constant(ir.VectorType(i32, 8), [ir.Constant(i32, i ^ 1) for i in range(8)])
    mask32 = splat(0xFFFFFFFF)
    sh32 = splat(32)

    def load_vec(base: ir.Value, off: ir.Value) -> ir.Value:
        ptr = builder.bitcast(builder.gep(base, [off], inbounds=True), vec.as_pointer())
        return builder.load(ptr, align=1)

    def step(acc: ir.Value, d: ir.Value, k: ir.Value) -> ir.Value:
        dk = builder.xor(d, k)
        swapped = builder.shuffle_vector(d, d, swap)
        product = builder.mul(builder.and_(dk, mask32), builder.lshr(dk, sh32))
        return builder.add(builder.add(acc, swapped), product)

    init = ir.Constant(vec, [ir.Constant(i64, int(v)) for v in _ref.INIT_ACC])
    slots = [cgutils.alloca_once_value(builder, init) for _ in offsets]
    nm1 = builder.sub(n, c(1))
    nb_blocks = builder.udiv(nm1, c(BLOCK_LEN))
    with cgutils.for_range(builder, nb_blocks, intp=intp) as loop:
        base = builder.mul(loop.index, c(BLOCK_LEN))
        accs = [builder.load(s) for s in slots]
        for s in range(NB_STRIPES_PER_BLOCK):
            k = load_vec(secret, c(8 * s))
            for r, off in enumerate(offsets):
                d = load_vec(data, builder.add(off, builder.add(base, c(STRIPE_LEN * s))))
                accs[r] = step(accs[r], d, k)
        ks = load_vec(secret, c(SCRAMBLE_SECRET_OFFSET))
        for r in range(len(offsets)):
            a = accs[r]
            a = builder.xor(a, builder.lshr(a, splat(47)))
            a = builder.xor(a, ks)
            a = builder.mul(a, splat(int(PRIME32_1)))
            builder.store(a, slots[r])
    tail = builder.mul(nb_blocks, c(BLOCK_LEN))
    nb_stripes = builder.udiv(builder.sub(nm1, tail), c(STRIPE_LEN))
    # The tail stripes (0..15 of them) as a fully unrolled fall-through
    # switch ("Duff's device"): the stripe sum is a sum of wrapping adds, so
    # running stripes s-1, ..., 0 in reverse is exact.  Every stripe then has
    # constant data and secret offsets, and the switch is perfectly predicted
    # because all rows share one length.
    fn = builder.function
    done = fn.append_basic_block("xxh3_tail_done")
    cases = [fn.append_basic_block(f"xxh3_tail_{s}") for s in range(NB_STRIPES_PER_BLOCK)]
    sw = builder.switch(nb_stripes, done)
    for s in range(1, NB_STRIPES_PER_BLOCK):
        sw.add_case(ir.Constant(intp, s), cases[s])
    builder.position_at_end(cases[0])
    builder.branch(done)
    for s in range(1, NB_STRIPES_PER_BLOCK):
        builder.position_at_end(cases[s])
        k = load_vec(secret, c(8 * (s - 1)))
        for r, off in enumerate(offsets):
            d = load_vec(data, builder.add(off, builder.add(tail, c(STRIPE_LEN * (s - 1)))))
            builder.store(step(builder.load(slots[r]), d, k), slots[r])
        builder.branch(cases[s - 1])
    builder.position_at_end(done)
    k_last = load_vec(secret, c(LAST_STRIPE_SECRET_OFFSET))
    k_merge = load_vec(secret, c(MERGE_ACCS_SECRET_OFFSET))
    h0 = builder.mul(builder.zext(n, i64) if intp.width < 64 else n, ir.Constant(i64, int(PRIME64_1)))
    out = []
    last_off = builder.sub(n, c(STRIPE_LEN))
    for r, off in enumerate(offsets):
        a = step(builder.load(slots[r]), load_vec(data, builder.add(off, last_off)), k_last)
        a = builder.xor(a, k_merge)
        h = h0
        for j in range(4):
            lo = builder.zext(builder.extract_element(a, ir.Constant(i32, 2 * j)), i128)
            hi = builder.zext(builder.extract_element(a, ir.Constant(i32, 2 * j + 1)), i128)
            prod = builder.mul(lo, hi)
            folded = builder.xor(
                builder.trunc(prod, i64), builder.trunc(builder.lshr(prod, ir.Constant(i128, 64)), i64)
            )
            h = builder.add(h, folded)
        h = builder.xor(h, builder.lshr(h, ir.Constant(i64, 37)))
        h = builder.mul(h, ir.Constant(i64, int(PRIME_MX1)))
        h = builder.xor(h, builder.lshr(h, ir.Constant(i64, 32)))
        out.append(h)
    return out


@intrinsic
def _xxh3_long_rows(
    typingctx: Any, buf: types.Type, p: types.Type, stride: types.Type, n: types.Type, k: types.Type
) -> _Intrinsic:
    """XXH3-64 of the ``k`` (literal) n-byte inputs at p, p + stride, ... (n > 240)."""
    if not (
        _is_c_byte_array(buf)
        and all(isinstance(t, types.Integer) for t in (p, stride, n))
        and isinstance(k, types.IntegerLiteral)
    ):
        return None
    count = k.literal_value
    ret = types.UniTuple(types.uint64, count)
    sig = ret(buf, p, stride, n, k)

    def codegen(context: Any, builder: ir.IRBuilder, signature: Signature, args: list[ir.Value]) -> ir.Value:
        buf_t, p_t, st_t, n_t, _ = signature.args
        data = context.make_array(buf_t)(context, builder, args[0]).data
        p_i = context.cast(builder, args[1], p_t, types.intp)
        st_i = context.cast(builder, args[2], st_t, types.intp)
        n_i = context.cast(builder, args[3], n_t, types.intp)
        offs = [p_i]
        for _ in range(count - 1):
            offs.append(builder.add(offs[-1], st_i))
        hs = _emit_xxh3_long(context, builder, data, offs, n_i)
        return context.make_tuple(builder, ret, hs)

    return sig, codegen


@numba.njit(inline="always", **_NJIT)
def _rowprints_long(rows: np.ndarray, out: np.ndarray, lo: int, hi: int, length: int) -> None:
    """out[i] = XXH3-64(rows[i]) for lo <= i < hi, rows longer than 240 bytes."""
    i = lo
    while i + _ROW_INTERLEAVE <= hi:
        hs = _xxh3_long_rows(rows, i * length, length, length, _ROW_INTERLEAVE)
        for j in numba.literal_unroll(_UNROLL_IDX):
            out[i + j] = hs[j]
        i += _ROW_INTERLEAVE
    while i < hi:
        (h0,) = _xxh3_long_rows(rows, i * length, length, length, 1)
        out[i] = h0
        i += 1


# Rows per prange task on the long path (> 240 bytes per row).
_PAR_CHUNK = 256

# ---------------------------------------------------------------------------
# Entry points.  Compiled on first use (or loaded from the on-disk cache then),
# not at import: a command compiles only the kernels it calls, for the one
# itemsize (and delta mode, dtype) it meets, instead of every specialization up
# front (issue 13: a first `embfmt demo` spent ~70 s compiling all of them).
# The wrappers hand every kernel read-only C-contiguous inputs (a view, never a
# copy, of writable ones) and writable outputs, so each kernel has exactly one
# specialization: both writable and read-only inputs (np.memmap(mode="r"),
# np.frombuffer(bytes)) are accepted without compiling twice.
# ---------------------------------------------------------------------------
_ROWS_RO = types.Array(types.uint8, 2, "C", readonly=True)
_OUT = types.Array(types.uint64, 1, "C")


# One kernel per row-length regime: rows of at most 240 bytes and longer rows take disjoint
# code (the short-input paths vs the interleaved stripe loop), and a table has one row
# length, so a command compiles only the half it uses (the long half is most of the
# compile time).
@numba.njit(parallel=True, **_NJIT)
def _rowprints_parallel_long(rows: np.ndarray, out: np.ndarray) -> None:
    n, length = rows.shape
    n_chunks = (n + _PAR_CHUNK - 1) // _PAR_CHUNK
    for c in numba.prange(n_chunks):
        _rowprints_long(rows, out, c * _PAR_CHUNK, min(n, (c + 1) * _PAR_CHUNK), length)


@numba.njit(parallel=True, **_NJIT)
def _rowprints_parallel_short(rows: np.ndarray, out: np.ndarray) -> None:
    n, length = rows.shape
    for i in numba.prange(n):
        out[i] = _xxh3_upto240(rows, i * length, length)


@numba.njit(**_NJIT)
def _rowprints_serial_long(rows: np.ndarray, out: np.ndarray) -> None:
    _rowprints_long(rows, out, 0, rows.shape[0], rows.shape[1])


@numba.njit(**_NJIT)
def _rowprints_serial_short(rows: np.ndarray, out: np.ndarray) -> None:
    n, length = rows.shape
    for i in range(n):
        out[i] = _xxh3_upto240(rows, i * length, length)


def _rowprints_parallel(rows: np.ndarray) -> np.ndarray:
    out = np.empty(rows.shape[0], dtype=np.uint64)
    (_rowprints_parallel_long if rows.shape[1] > 240 else _rowprints_parallel_short)(rows, out)
    return out


def _rowprints_serial(rows: np.ndarray, out: np.ndarray) -> None:
    (_rowprints_serial_long if rows.shape[1] > 240 else _rowprints_serial_short)(rows, out)


def _check_rows(rows: np.ndarray) -> np.ndarray:
    if not isinstance(rows, np.ndarray) or rows.ndim != 2 or rows.dtype != np.uint8:
        raise ValueError(
            f"rows must be a 2-D uint8 numpy array, got {type(rows).__name__} "
            f"{getattr(rows, 'dtype', None)} {getattr(rows, 'shape', None)}"
        )
    # A copy only if the caller passed a strided view.
    return _readonly_view(np.ascontiguousarray(rows))


def rowprints(rows: np.ndarray) -> np.ndarray:
    """XXH3-64 (seed 0, default secret) of every row, in parallel over rows.

    Parameters
    ----------
    rows : np.ndarray
        2-D uint8 array of shape (N, row_bytes), N >= 0, row_bytes >= 0.

    Returns
    -------
    np.ndarray
        uint64 array of shape (N,), ``out[i] == xxhash.xxh3_64_intdigest(rows[i].tobytes())``.
        Identical for any thread count: rows are hashed independently.
    """
    return _rowprints_parallel(_check_rows(rows))


def rowprints_into(rows: np.ndarray, out: np.ndarray) -> None:
    """Single-threaded, GIL-releasing :func:`rowprints` writing into ``out``.

    Parameters
    ----------
    rows : np.ndarray
        2-D uint8 array of shape (N, row_bytes).
    out : np.ndarray
        Writable C-contiguous uint64 array of shape (N,); ``out[i]`` receives
        XXH3-64(rows[i]).
    """
    rows = _check_rows(rows)
    _check_rowprints_out(out, rows.shape[0])
    _rowprints_serial(rows, out)


def _check_rowprints_out(out: object, n: int) -> None:
    if (not isinstance(out, np.ndarray) or out.dtype != np.uint64 or out.shape != (n,)
            or not out.flags.c_contiguous or not out.flags.writeable):
        raise ValueError(f"out must be a writable contiguous uint64 array of shape ({n},)")


# Bytes per BLAKE3 ``update`` in :func:`fingerprint_chunk_into`.  The rowprints of a
# piece are computed right after BLAKE3 has read it, while it is still in the core's L2
# (1 MiB per core on the Xeon measured, so a whole 1 MiB chunk no longer fits next to
# everything else).  Measured with the CpuBackend's two threads on 1 GiB (2M x 512-byte
# rows), GB/s interleaved in one run, three runs: whole chunks 4.98/5.72/5.03,
# 512 KiB 5.31/6.29/5.27, 256 KiB 5.11/6.05/5.04, 64 KiB 3.6 (per-call overhead).
# Hashing the rowprints first was slower (BLAKE3 streams memory better than the row
# kernel).  A power of two so that BLAKE3's 1 KiB chunks never straddle two updates when
# the row size is a power of two (correct either way; only a little slower otherwise).
SUB_BLOCK_BYTES = 1 << 19


def fingerprint_chunk_into(rows: np.ndarray, out: np.ndarray) -> bytes:
    """BLAKE3-256 of ``rows`` (one chunk) and the XXH3-64 of each row into ``out``.

    Single-threaded and GIL-free (both ``blake3`` and the row kernel release the GIL), for
    callers running their own pool: the same results as ``chunk_digests(rows, len(rows))[0]``
    and ``rowprints(rows)``, in one pass over memory.

    Parameters
    ----------
    rows : np.ndarray
        C-contiguous 2-D uint8 array of shape (n, row_bytes).
    out : np.ndarray
        Writable C-contiguous uint64 array of shape (n,).

    Returns
    -------
    bytes
        The 32-byte BLAKE3 digest of ``rows.tobytes()``.
    """
    rows = _check_rows(rows)
    n, length = rows.shape
    _check_rowprints_out(out, n)
    h = _blake3.blake3()
    step = max(1, SUB_BLOCK_BYTES // max(1, length))
    for s in range(0, n, step):
        blk = rows[s:s + step]
        h.update(blk.reshape(-1))
        _rowprints_serial(blk, out[s:s + step])
    return h.digest()


def chunk_digests(rows: np.ndarray, chunk_rows: int) -> np.ndarray:
    """BLAKE3-256 of each run of ``chunk_rows`` consecutive rows.

    Parameters
    ----------
    rows : np.ndarray
        2-D uint8 array of shape (N, row_bytes).
    chunk_rows : int
        Rows per chunk, >= 1; the last chunk may be shorter.

    Returns
    -------
    np.ndarray
        uint8 array of shape (ceil(N / chunk_rows), 32),
        ``out[c] = BLAKE3(rows[c*chunk_rows:(c+1)*chunk_rows].tobytes())``.
        Uses the official ``blake3`` package (which releases the GIL), one
        independent hash per chunk.
    """
    rows = _check_rows(rows)
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    n = rows.shape[0]
    n_chunks = -(-n // chunk_rows)
    out = np.empty((n_chunks, 32), dtype=np.uint8)
    for c in range(n_chunks):
        # A flat 1-D uint8 view: its memoryview is already format "B" and,
        # unlike memoryview.cast, also works for zero-size chunks.
        chunk = rows[c * chunk_rows : (c + 1) * chunk_rows].reshape(-1)
        out[c] = np.frombuffer(_blake3.blake3(memoryview(chunk)).digest(), dtype=np.uint8)
    return out


# ---------------------------------------------------------------------------
# Byte-plane shuffle, dense deltas (chunk codecs 1-3) and row equality.
# Exact math: see the reference.py docstrings of the same names.
#
# Why explicit vector IR again: the shuffle is a transpose of an (n, k) byte
# matrix, i.e. k stride-k byte gathers or scatters.  Written as scalar Numba
# loops, whether LLVM turns them into byte shuffles (pshufb/vpermb) or into k
# single-byte loads/stores per word depends on its interleaved-access cost
# model.  So each block of _BLOCK_WORDS words is one intrinsic: a plain
# vector load, the word arithmetic on <B x iW> lanes, one ``shufflevector``
# per plane, and plain vector stores; only the < _BLOCK_WORDS tail words go
# through a scalar loop.  The word arithmetic is done on native (= little-
# endian, asserted above) lanes, so a lane's bytes are the canonical bytes.
# ---------------------------------------------------------------------------

# Words per block: each plane is stored as one 32-byte vector.  16, 32 and 64
# measured the same within noise on 1 MiB inputs (Cascade Lake, AVX-512), 32
# marginally best for itemsize 4; larger blocks only lengthen the scalar tail.
_BLOCK_WORDS = 32

DELTA_XOR = _ref.DELTA_XOR  # 2
DELTA_SUB_ZIGZAG = _ref.DELTA_SUB_ZIGZAG  # 3

_I8 = ir.IntType(8)
_I32 = ir.IntType(32)


def _is_literal_in(x: types.Type, allowed: tuple[int, ...]) -> bool:
    return isinstance(x, types.IntegerLiteral) and x.literal_value in allowed


def _byte_ptr(context: Any, builder: ir.IRBuilder, arrty: types.Type, arr: ir.Value, index: ir.Value) -> ir.Value:
    """``i8*`` to ``arr.data + index`` (index already intp)."""
    ary = context.make_array(arrty)(context, builder, arr)
    return builder.gep(ary.data, [index], inbounds=True)


def _load_vec(builder: ir.IRBuilder, ptr: ir.Value, vty: ir.VectorType) -> ir.Value:
    # align=1: words of a canonical buffer start at any address.
    return builder.load(builder.bitcast(ptr, vty.as_pointer()), align=1)


def _store_vec(builder: ir.IRBuilder, value: ir.Value, ptr: ir.Value) -> None:
    builder.store(value, builder.bitcast(ptr, value.type.as_pointer()), align=1)


def _mask(indices: list[int]) -> ir.Constant:
    return ir.Constant(ir.VectorType(_I32, len(indices)), indices)


def _store_planes(
    builder: ir.IRBuilder, block: ir.Value, dst_base: ir.Value, i0: ir.Value, n: ir.Value, k: int
) -> None:
    """Scatter ``block`` = the bytes of words i0..i0+B-1 (<B*k x i8>) into the k planes.

    Plane p gets lanes p, p+k, p+2k, ... (byte p of each word), stored at
    ``dst_base + p*n + i0``.
    """
    B = _BLOCK_WORDS
    for p in range(k):
        plane = builder.shuffle_vector(block, ir.Constant(block.type, None), _mask([p + k * j for j in range(B)]))
        off = builder.add(builder.mul(ir.Constant(n.type, p), n), i0)
        _store_vec(builder, plane, builder.gep(dst_base, [off], inbounds=True))


def _load_planes(builder: ir.IRBuilder, src_base: ir.Value, i0: ir.Value, n: ir.Value, k: int) -> ir.Value:
    """Gather words i0..i0+B-1 from the k planes at ``src_base``: <B*k x i8> in word order."""
    B = _BLOCK_WORDS
    vty = ir.VectorType(_I8, B)
    parts = []
    for p in range(k):
        off = builder.add(builder.mul(ir.Constant(n.type, p), n), i0)
        parts.append(_load_vec(builder, builder.gep(src_base, [off], inbounds=True), vty))
    # Concatenate the planes pairwise (shufflevector needs equal-width operands):
    # cat[p*B + j] = plane p, word j.
    while len(parts) > 1:
        width = parts[0].type.count
        concat = _mask(list(range(2 * width)))
        parts = [builder.shuffle_vector(parts[q], parts[q + 1], concat) for q in range(0, len(parts), 2)]
    cat = parts[0]
    if k == 1:
        return cat
    # out[j*k + p] = cat[p*B + j]: byte p of word j.
    interleave = _mask([p * B + j for j in range(B) for p in range(k)])
    return builder.shuffle_vector(cat, ir.Constant(cat.type, None), interleave)


def _splat(vty: ir.VectorType, value: int) -> ir.Constant:
    return ir.Constant(vty, [value] * vty.count)


@intrinsic
def _shuffle_block(
    typingctx: Any, src: types.Type, dst: types.Type, i0: types.Type, n: types.Type, k: types.Type
) -> _Intrinsic:
    """Shuffle words i0..i0+B-1 of ``src`` into the planes of ``dst`` (n words in all).

    ``k`` (itemsize) must be a compile-time literal.  No bounds checks:
    callers guarantee ``i0 + B <= n``.
    """
    if not (
        _is_c_byte_array(src)
        and _is_c_byte_array(dst)
        and isinstance(i0, types.Integer)
        and isinstance(n, types.Integer)
        and _is_literal_in(k, (1, 2, 4, 8))
    ):
        return None
    kk = k.literal_value
    sig = types.void(src, dst, i0, n, k)

    def codegen(context: Any, builder: ir.IRBuilder, signature: Signature, args: list[ir.Value]) -> None:
        i0v = context.cast(builder, args[2], signature.args[2], types.intp)
        nv = context.cast(builder, args[3], signature.args[3], types.intp)
        first = builder.mul(i0v, ir.Constant(i0v.type, kk))
        block = _load_vec(builder, _byte_ptr(context, builder, signature.args[0], args[0], first),
                          ir.VectorType(_I8, _BLOCK_WORDS * kk))
        dst_base = _byte_ptr(context, builder, signature.args[1], args[1], ir.Constant(i0v.type, 0))
        _store_planes(builder, block, dst_base, i0v, nv, kk)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _unshuffle_block(
    typingctx: Any, src: types.Type, dst: types.Type, i0: types.Type, n: types.Type, k: types.Type
) -> _Intrinsic:
    """Inverse of :func:`_shuffle_block`: words i0..i0+B-1 from the planes of ``src`` into ``dst``."""
    if not (
        _is_c_byte_array(src)
        and _is_c_byte_array(dst)
        and isinstance(i0, types.Integer)
        and isinstance(n, types.Integer)
        and _is_literal_in(k, (1, 2, 4, 8))
    ):
        return None
    kk = k.literal_value
    sig = types.void(src, dst, i0, n, k)

    def codegen(context: Any, builder: ir.IRBuilder, signature: Signature, args: list[ir.Value]) -> None:
        i0v = context.cast(builder, args[2], signature.args[2], types.intp)
        nv = context.cast(builder, args[3], signature.args[3], types.intp)
        src_base = _byte_ptr(context, builder, signature.args[0], args[0], ir.Constant(i0v.type, 0))
        block = _load_planes(builder, src_base, i0v, nv, kk)
        first = builder.mul(i0v, ir.Constant(i0v.type, kk))
        _store_vec(builder, block, _byte_ptr(context, builder, signature.args[1], args[1], first))
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _delta_encode_block(
    typingctx: Any,
    new: types.Type,
    base: types.Type,
    dst: types.Type,
    i0: types.Type,
    n: types.Type,
    k: types.Type,
    mode: types.Type,
) -> _Intrinsic:
    """Delta of words i0..i0+B-1 (``k``, ``mode`` literals), scattered into the planes of ``dst``.

    Lanes are <B x iW>, W = 8k: mode 2 ``d = a ^ b``; mode 3 ``s = a - b``
    (wrapping), ``d = (s << 1) ^ ashr(s, W-1)``.
    """
    if not (
        _is_c_byte_array(new)
        and _is_c_byte_array(base)
        and _is_c_byte_array(dst)
        and isinstance(i0, types.Integer)
        and isinstance(n, types.Integer)
        and _is_literal_in(k, (1, 2, 4, 8))
        and _is_literal_in(mode, (DELTA_XOR, DELTA_SUB_ZIGZAG))
    ):
        return None
    kk, mm = k.literal_value, mode.literal_value
    sig = types.void(new, base, dst, i0, n, k, mode)

    def codegen(context: Any, builder: ir.IRBuilder, signature: Signature, args: list[ir.Value]) -> None:
        i0v = context.cast(builder, args[3], signature.args[3], types.intp)
        nv = context.cast(builder, args[4], signature.args[4], types.intp)
        first = builder.mul(i0v, ir.Constant(i0v.type, kk))
        wty = ir.VectorType(ir.IntType(8 * kk), _BLOCK_WORDS)
        a = _load_vec(builder, _byte_ptr(context, builder, signature.args[0], args[0], first), wty)
        b = _load_vec(builder, _byte_ptr(context, builder, signature.args[1], args[1], first), wty)
        if mm == DELTA_XOR:
            d = builder.xor(a, b)
        else:
            s = builder.sub(a, b)
            d = builder.xor(builder.shl(s, _splat(wty, 1)), builder.ashr(s, _splat(wty, 8 * kk - 1)))
        block = builder.bitcast(d, ir.VectorType(_I8, _BLOCK_WORDS * kk))
        dst_base = _byte_ptr(context, builder, signature.args[2], args[2], ir.Constant(i0v.type, 0))
        _store_planes(builder, block, dst_base, i0v, nv, kk)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _delta_decode_block(
    typingctx: Any,
    src: types.Type,
    base: types.Type,
    dst: types.Type,
    i0: types.Type,
    n: types.Type,
    k: types.Type,
    mode: types.Type,
) -> _Intrinsic:
    """Inverse of :func:`_delta_encode_block` for words i0..i0+B-1, written to ``dst`` in word order.

    mode 2 ``new = d ^ b``; mode 3 ``s = lshr(d, 1) ^ (0 - (d & 1))``, ``new = b + s``.
    """
    if not (
        _is_c_byte_array(src)
        and _is_c_byte_array(base)
        and _is_c_byte_array(dst)
        and isinstance(i0, types.Integer)
        and isinstance(n, types.Integer)
        and _is_literal_in(k, (1, 2, 4, 8))
        and _is_literal_in(mode, (DELTA_XOR, DELTA_SUB_ZIGZAG))
    ):
        return None
    kk, mm = k.literal_value, mode.literal_value
    sig = types.void(src, base, dst, i0, n, k, mode)

    def codegen(context: Any, builder: ir.IRBuilder, signature: Signature, args: list[ir.Value]) -> None:
        i0v = context.cast(builder, args[3], signature.args[3], types.intp)
        nv = context.cast(builder, args[4], signature.args[4], types.intp)
        first = builder.mul(i0v, ir.Constant(i0v.type, kk))
        wty = ir.VectorType(ir.IntType(8 * kk), _BLOCK_WORDS)
        src_base = _byte_ptr(context, builder, signature.args[0], args[0], ir.Constant(i0v.type, 0))
        d = builder.bitcast(_load_planes(builder, src_base, i0v, nv, kk), wty)
        b = _load_vec(builder, _byte_ptr(context, builder, signature.args[1], args[1], first), wty)
        if mm == DELTA_XOR:
            new = builder.xor(d, b)
        else:
            one = _splat(wty, 1)
            s = builder.xor(builder.lshr(d, one), builder.sub(_splat(wty, 0), builder.and_(d, one)))
            new = builder.add(b, s)
        _store_vec(builder, new, _byte_ptr(context, builder, signature.args[2], args[2], first))
        return context.get_dummy_value()

    return sig, codegen


# Scalar helpers for the < _BLOCK_WORDS tail words (and the whole input when it
# is shorter than one block).  Words live in uint64 masked to ``bits``.
_ALL_ONES = _U(0xFFFFFFFFFFFFFFFF)
_ONE = _U(1)
_ZERO = _U(0)


@numba.njit(inline="always", **_NJIT)
def _word_mask(k: int) -> np.uint64:
    """2**bits - 1 for bits = 8k (no ``1 << 64``: shifting by the width is undefined)."""
    return _ALL_ONES >> _U(64 - 8 * k)


@numba.njit(inline="always", **_NJIT)
def _encode_word(a: np.uint64, b: np.uint64, k: int, mode: int) -> np.uint64:
    mask = _word_mask(k)
    if mode == DELTA_XOR:
        return a ^ b
    s = (a - b) & mask
    # The bits-wide arithmetic shift s >> (bits-1): all ones iff the sign bit is set.
    neg = (_ZERO - ((s >> _U(8 * k - 1)) & _ONE)) & mask
    return ((s << _ONE) ^ neg) & mask


@numba.njit(inline="always", **_NJIT)
def _decode_word(d: np.uint64, b: np.uint64, k: int, mode: int) -> np.uint64:
    mask = _word_mask(k)
    if mode == DELTA_XOR:
        return d ^ b
    s = (d >> _ONE) ^ ((_ZERO - (d & _ONE)) & mask)
    return (b + s) & mask


@numba.njit(inline="always", **_NJIT)
def _get_word(buf: np.ndarray, first: int, stride: int, k: int) -> np.uint64:
    """Little-endian word from bytes buf[first + p*stride], p < k."""
    w = _ZERO
    for p in range(k):
        w |= _U(buf[first + p * stride]) << _U(8 * p)
    return w


@numba.njit(inline="always", **_NJIT)
def _put_word(buf: np.ndarray, first: int, stride: int, k: int, w: np.uint64) -> None:
    """Store word ``w`` little-endian as bytes buf[first + p*stride], p < k."""
    for p in range(k):
        buf[first + p * stride] = np.uint8((w >> _U(8 * p)) & _U(0xFF))


_BYTES_RO = types.Array(types.uint8, 1, "C", readonly=True)


# One kernel per itemsize (and delta mode), built and compiled on first use: the block
# intrinsics need both as literals, and a closure's integer free variables are literals to
# Numba. A single kernel taking k and mode at run time would hold all eight (k, mode) block
# loops and compile them all on the first call, whatever table it is given. The on-disk
# cache keys a closure by its free variables' values, so each one is cached on its own.
@functools.cache
def _shuffle_kernel(k: int) -> Any:
    @numba.njit(**_NJIT)
    def shuffle_k(src: np.ndarray, dst: np.ndarray) -> None:
        n = src.size // k
        # words done in whole blocks; k == 1 is a copy, done by the caller (this scalar path
        # stays correct anyway)
        nb = n - n % _BLOCK_WORDS if k > 1 else 0
        for i in range(0, nb, _BLOCK_WORDS):
            _shuffle_block(src, dst, i, n, k)
        for i in range(nb, n):
            _put_word(dst, i, n, k, _get_word(src, i * k, 1, k))

    return shuffle_k


@functools.cache
def _unshuffle_kernel(k: int) -> Any:
    @numba.njit(**_NJIT)
    def unshuffle_k(src: np.ndarray, dst: np.ndarray) -> None:
        n = src.size // k
        nb = n - n % _BLOCK_WORDS if k > 1 else 0
        for i in range(0, nb, _BLOCK_WORDS):
            _unshuffle_block(src, dst, i, n, k)
        for i in range(nb, n):
            _put_word(dst, i * k, 1, k, _get_word(src, i, n, k))

    return unshuffle_k


@functools.cache
def _delta_encode_kernel(k: int, mode: int) -> Any:
    @numba.njit(**_NJIT)
    def delta_encode_k(new: np.ndarray, base: np.ndarray, dst: np.ndarray) -> None:
        n = new.size // k
        nb = n - n % _BLOCK_WORDS
        for i in range(0, nb, _BLOCK_WORDS):
            _delta_encode_block(new, base, dst, i, n, k, mode)
        for i in range(nb, n):
            d = _encode_word(_get_word(new, i * k, 1, k), _get_word(base, i * k, 1, k), k, mode)
            _put_word(dst, i, n, k, d)

    return delta_encode_k


@functools.cache
def _delta_decode_kernel(k: int, mode: int) -> Any:
    @numba.njit(**_NJIT)
    def delta_decode_k(src: np.ndarray, base: np.ndarray, dst: np.ndarray) -> None:
        n = src.size // k
        nb = n - n % _BLOCK_WORDS
        for i in range(0, nb, _BLOCK_WORDS):
            _delta_decode_block(src, base, dst, i, n, k, mode)
        for i in range(nb, n):
            w = _decode_word(_get_word(src, i, n, k), _get_word(base, i * k, 1, k), k, mode)
            _put_word(dst, i * k, 1, k, w)

    return delta_decode_k


# --- Separate planes ---------------------------------------------------------------------------
# A chunk object's planes lie apart: raw planes inside the object's bytes, decompressed ones in
# their own buffers. These kernels read plane p from its own array, so a decoder need not copy
# the planes next to each other first (that copy was ~0.5 ms of the ~3.4 ms a three-deep chain
# took to decode per 1 MiB chunk). Plain loops over whole words: LLVM vectorizes the
# widen-shift-or and, measured on 1 MiB, they run at the speed of the block intrinsics above.


_ONE16, _ZERO16 = np.uint16(1), np.uint16(0)
_ONE32, _ZERO32 = np.uint32(1), np.uint32(0)


@numba.njit(inline="always", **_NJIT)
def _unzz16(d: np.uint16, b: np.uint16) -> np.uint16:
    """``b + unzigzag(d)`` mod 2**16 (spec §13.3, codec 3)."""
    return b + ((d >> _ONE16) ^ (_ZERO16 - (d & _ONE16)))


@numba.njit(inline="always", **_NJIT)
def _unzz32(d: np.uint32, b: np.uint32) -> np.uint32:
    return b + ((d >> _ONE32) ^ (_ZERO32 - (d & _ONE32)))


@numba.njit(inline="always", **_NJIT)
def _unzz64(d: np.uint64, b: np.uint64) -> np.uint64:
    return b + ((d >> _ONE) ^ (_ZERO - (d & _ONE)))


@numba.njit(**_NJIT)
def _unshuffle_planes2(p0: np.ndarray, p1: np.ndarray, out: np.ndarray) -> None:
    for i in range(out.size):
        out[i] = np.uint16(p0[i]) | (np.uint16(p1[i]) << np.uint16(8))


@numba.njit(**_NJIT)
def _unshuffle_planes4(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, p3: np.ndarray,
                       out: np.ndarray) -> None:
    for i in range(out.size):
        out[i] = (np.uint32(p0[i]) | (np.uint32(p1[i]) << np.uint32(8))
                  | (np.uint32(p2[i]) << np.uint32(16)) | (np.uint32(p3[i]) << np.uint32(24)))


@numba.njit(inline="always", **_NJIT)
def _word8(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, p3: np.ndarray, p4: np.ndarray,
           p5: np.ndarray, p6: np.ndarray, p7: np.ndarray, i: int) -> np.uint64:
    return (_U(p0[i]) | (_U(p1[i]) << S8) | (_U(p2[i]) << S16) | (_U(p3[i]) << S24)
            | (_U(p4[i]) << S32) | (_U(p5[i]) << _U(40)) | (_U(p6[i]) << _U(48))
            | (_U(p7[i]) << _U(56)))


@numba.njit(**_NJIT)
def _unshuffle_planes8(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, p3: np.ndarray,
                       p4: np.ndarray, p5: np.ndarray, p6: np.ndarray, p7: np.ndarray,
                       out: np.ndarray) -> None:
    for i in range(out.size):
        out[i] = _word8(p0, p1, p2, p3, p4, p5, p6, p7, i)


@numba.njit(**_NJIT)
def _delta_decode_planes2(p0: np.ndarray, p1: np.ndarray, base: np.ndarray, out: np.ndarray,
                          mode: int) -> None:
    if mode == DELTA_XOR:
        for i in range(out.size):
            out[i] = (np.uint16(p0[i]) | (np.uint16(p1[i]) << np.uint16(8))) ^ base[i]
    else:
        for i in range(out.size):
            out[i] = _unzz16(np.uint16(p0[i]) | (np.uint16(p1[i]) << np.uint16(8)), base[i])


@numba.njit(**_NJIT)
def _delta_decode_planes4(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, p3: np.ndarray,
                          base: np.ndarray, out: np.ndarray, mode: int) -> None:
    # One loop per mode: the mode test stays out of the vectorized loop body.
    if mode == DELTA_XOR:
        for i in range(out.size):
            d = (np.uint32(p0[i]) | (np.uint32(p1[i]) << np.uint32(8))
                 | (np.uint32(p2[i]) << np.uint32(16)) | (np.uint32(p3[i]) << np.uint32(24)))
            out[i] = d ^ base[i]
    else:
        for i in range(out.size):
            d = (np.uint32(p0[i]) | (np.uint32(p1[i]) << np.uint32(8))
                 | (np.uint32(p2[i]) << np.uint32(16)) | (np.uint32(p3[i]) << np.uint32(24)))
            out[i] = _unzz32(d, base[i])


@numba.njit(**_NJIT)
def _delta_decode_planes8(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, p3: np.ndarray,
                          p4: np.ndarray, p5: np.ndarray, p6: np.ndarray, p7: np.ndarray,
                          base: np.ndarray, out: np.ndarray, mode: int) -> None:
    if mode == DELTA_XOR:
        for i in range(out.size):
            out[i] = _word8(p0, p1, p2, p3, p4, p5, p6, p7, i) ^ base[i]
    else:
        for i in range(out.size):
            out[i] = _unzz64(_word8(p0, p1, p2, p3, p4, p5, p6, p7, i), base[i])


_WORD = {2: np.uint16, 4: np.uint32, 8: np.uint64}
# The kernel per itemsize (itemsize 1 needs none: its one plane is the bytes themselves).
_UNSHUFFLE_PLANES = {2: _unshuffle_planes2, 4: _unshuffle_planes4, 8: _unshuffle_planes8}
_DELTA_DECODE_PLANES = {2: _delta_decode_planes2, 4: _delta_decode_planes4, 8: _delta_decode_planes8}


def _readonly_view(x: np.ndarray) -> np.ndarray:
    """A read-only view (one Numba signature per kernel instead of one per mix of flags)."""
    if not x.flags.writeable:
        return x
    view = x.view()
    view.flags.writeable = False
    return view


def _word_view(a: np.ndarray, k: int) -> np.ndarray | None:
    """``a`` (1-D uint8) viewed as k-byte words, or None when it is not k-byte aligned."""
    w = a.view(_WORD[k])
    return w if w.flags.aligned else None


def shuffle(data: np.ndarray, itemsize: int) -> np.ndarray:
    """Byte-plane shuffle, ``out[p*n + i] = data[i*itemsize + p]`` (see :func:`.reference.shuffle`).

    Parameters
    ----------
    data : np.ndarray
        1-D uint8 array of length ``n * itemsize`` (read-only views are fine).
    itemsize : int
        1, 2, 4 or 8; anything else raises ValueError.

    Returns
    -------
    np.ndarray
        A fresh 1-D uint8 array of the same length (a copy for itemsize 1).
        Single-threaded and GIL-free.
    """
    k = _ref.check_itemsize(itemsize)
    data = _ref.check_canonical(data, k)
    if k == 1:
        return data.copy()
    out = np.empty(data.size, dtype=np.uint8)
    _shuffle_kernel(k)(_readonly_view(data), out)
    return out


def unshuffle(data: np.ndarray | Sequence[np.ndarray], itemsize: int,
              out: np.ndarray | None = None) -> np.ndarray:
    """Inverse of :func:`shuffle`, ``out[i*itemsize + p] = data[p*n + i]``.

    Parameters
    ----------
    data : np.ndarray or sequence of np.ndarray
        1-D uint8 array of length ``n * itemsize`` (read-only views are fine), or its
        ``itemsize`` planes of n bytes as separate arrays, which are read where they lie
        (see :func:`.reference.check_planes`).
    itemsize : int
        1, 2, 4 or 8; anything else raises ValueError.
    out : np.ndarray, optional
        Writable C-contiguous 1-D uint8 array of the same length, not overlapping ``data``,
        to write the result into (saves an allocation in decode loops).

    Returns
    -------
    np.ndarray
        ``out``, or a fresh 1-D uint8 array of the same length.
    """
    k = _ref.check_itemsize(itemsize)
    if isinstance(data, np.ndarray):
        data = _ref.check_canonical(data, k)
        out = _ref.check_out(out, data.size, data)
        if k == 1:
            out[:] = data
        else:
            _unshuffle_kernel(k)(_readonly_view(data), out)
        return out
    planes = [_readonly_view(x) for x in _ref.check_planes(data, k)]
    out = _ref.check_out(out, planes[0].size * k, *planes)
    w = _word_view(out, k) if k > 1 else None
    if k == 1:
        out[:] = planes[0]
    elif w is None:  # an unaligned ``out``: join the planes and take the one-buffer path
        _unshuffle_kernel(k)(_readonly_view(np.concatenate(planes)), out)
    else:
        _UNSHUFFLE_PLANES[k](*planes, w)
    return out


def delta_encode(new: np.ndarray, base: np.ndarray, itemsize: int, mode: int) -> np.ndarray:
    """Fused ``shuffle(delta(new, base))`` in one pass (no temporary delta array).

    Parameters
    ----------
    new, base : np.ndarray
        1-D uint8 arrays of the same length ``n * itemsize``.
    itemsize : int
        1, 2, 4 or 8 (bits = 8 * itemsize).
    mode : int
        2 (XOR: ``d = new ^ base``) or 3 (SUB-ZIGZAG:
        ``s = new - base mod 2**bits`` as signed, ``d = (s << 1) ^ (s >> (bits-1))``).

    Returns
    -------
    np.ndarray
        Fresh 1-D uint8, ``shuffle(d, itemsize)``; equals :func:`.reference.delta_encode`.
    """
    k = _ref.check_itemsize(itemsize)
    m = _ref.check_mode(mode)
    new, base = _ref.check_pair(new, base, k)
    out = np.empty(new.size, dtype=np.uint8)
    _delta_encode_kernel(k, m)(_readonly_view(new), _readonly_view(base), out)
    return out


def delta_decode(shuffled: np.ndarray | Sequence[np.ndarray], base: np.ndarray, itemsize: int,
                 mode: int, out: np.ndarray | None = None) -> np.ndarray:
    """Fused inverse of :func:`delta_encode`: unshuffle and undo the delta in one pass.

    Parameters
    ----------
    shuffled : np.ndarray or sequence of np.ndarray
        1-D uint8, a :func:`delta_encode` result, or its ``itemsize`` planes as separate
        arrays, read where they lie (see :func:`.reference.check_planes`).
    base : np.ndarray
        1-D uint8, the same length.
    itemsize : int
        1, 2, 4 or 8 (bits = 8 * itemsize).
    mode : int
        2 (``new = d ^ base``) or 3 (``s = (d >> 1) ^ -(d & 1)``, ``new = base + s mod 2**bits``).
    out : np.ndarray, optional
        Writable C-contiguous 1-D uint8 array of the same length, overlapping neither input.

    Returns
    -------
    np.ndarray
        ``out`` or a fresh 1-D uint8 array: the new canonical bytes.
    """
    k = _ref.check_itemsize(itemsize)
    m = _ref.check_mode(mode)
    if isinstance(shuffled, np.ndarray) or k == 1:
        if not isinstance(shuffled, np.ndarray):  # one plane is the shuffled bytes themselves
            shuffled = _ref.check_planes(shuffled, 1, "shuffled")[0]
        shuffled, base = _ref.check_pair(shuffled, base, k, ("shuffled", "base"))
        out = _ref.check_out(out, shuffled.size, shuffled, base)
        _delta_decode_kernel(k, m)(_readonly_view(shuffled), _readonly_view(base), out)
        return out
    planes = [_readonly_view(x) for x in _ref.check_planes(shuffled, k, "shuffled")]
    base = _ref.check_canonical(base, k, "base")
    if base.size != planes[0].size * k:
        raise ValueError(f"shuffled has {planes[0].size * k} bytes but base has {base.size}")
    out = _ref.check_out(out, base.size, *planes, base)
    w, bw = _word_view(out, k), _word_view(base, k)
    if w is None or bw is None:  # unaligned: join the planes and take the one-buffer path
        _delta_decode_kernel(k, m)(_readonly_view(np.concatenate(planes)), _readonly_view(base), out)
    else:
        _DELTA_DECODE_PLANES[k](*planes, _readonly_view(bw), w, m)
    return out


# rows_equal: below this many bytes per input the thread fork/join of the
# parallel version costs more than the comparison itself (~20 GB/s per thread).
_ROWS_EQUAL_PARALLEL_MIN_BYTES = 1 << 20


# Rows per parallel task: enough work (>= ~1.5 KiB even for 6-byte rows) to
# amortise the per-task cost, small enough to balance 1536-byte rows.
_ROWS_EQUAL_TASK_ROWS = 256


@numba.njit(inline="always", **_NJIT)
def _rows_equal_range(a: np.ndarray, b: np.ndarray, out: np.ndarray, start: int, stop: int) -> None:
    """``out[i]`` = whether rows i of ``a`` and ``b`` are identical, for start <= i < stop.

    One helper call per *range* of rows and a single exit, on purpose: an
    inlined per-row helper that takes the arrays and returns early made Numba
    emit an NRT_incref/NRT_decref pair per row that its refcount pruning could
    not remove (~25 ns per row: 0.4 GB/s on 12-byte rows).
    """
    length = a.shape[1]
    for i in range(start, stop):
        p = i * length
        eq = True
        j = 0
        # 32 bytes per step, one branch each: the OR of four XORs is zero iff
        # all four words are equal.  Stops at the first differing block.
        while j + 32 <= length:
            q = p + j
            d = (
                (_load_u64(a, q) ^ _load_u64(b, q))
                | (_load_u64(a, q + 8) ^ _load_u64(b, q + 8))
                | (_load_u64(a, q + 16) ^ _load_u64(b, q + 16))
                | (_load_u64(a, q + 24) ^ _load_u64(b, q + 24))
            )
            if d != _ZERO:
                eq = False
                break
            j += 32
        while eq and j + 8 <= length:
            eq = _load_u64(a, p + j) == _load_u64(b, p + j)
            j += 8
        if eq and j < length:
            # 1..7 bytes left.  Re-reading bytes already found equal is
            # harmless, so finish with loads that end at the row's end rather
            # than a byte loop (short rows, e.g. 3 x float32 = 12 bytes, would
            # otherwise be dominated by it).
            if length >= 8:
                q = p + length - 8
                eq = _load_u64(a, q) == _load_u64(b, q)
            elif length >= 4:  # a 4..7-byte row: two overlapping 4-byte loads
                q = p + length - 4
                eq = (_load_u32(a, p) == _load_u32(b, p)) & (_load_u32(a, q) == _load_u32(b, q))
            else:  # a 1..3-byte row
                while eq and j < length:
                    eq = _load_u8(a, p + j) == _load_u8(b, p + j)
                    j += 1
        out[i] = eq


@numba.njit(**_NJIT)
def _rows_equal_serial(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    _rows_equal_range(a, b, out, 0, a.shape[0])


@numba.njit(parallel=True, **_NJIT)
def _rows_equal_parallel(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    n = a.shape[0]
    n_tasks = (n + _ROWS_EQUAL_TASK_ROWS - 1) // _ROWS_EQUAL_TASK_ROWS
    # Each task writes its own rows' out[i], each a function of row i only:
    # no reduction, so the result is independent of thread count.
    for t in numba.prange(n_tasks):
        start = t * _ROWS_EQUAL_TASK_ROWS
        _rows_equal_range(a, b, out, start, min(n, start + _ROWS_EQUAL_TASK_ROWS))


def rows_equal(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bit-exact row equality, ``out[i] = (a[i].tobytes() == b[i].tobytes())``.

    Parameters
    ----------
    a, b : np.ndarray
        2-D uint8 arrays of the same shape (N, row_bytes), N >= 0.

    Returns
    -------
    np.ndarray
        bool (N,); True for row_bytes 0.  Bytes are compared, not floats
        (-0.0 != +0.0, NaN payloads matter).  Parallel over rows for inputs of
        1 MiB or more, single-threaded below.
    """
    a, b = (_readonly_view(x) for x in _ref.check_row_pair(a, b))
    out = np.empty(a.shape[0], dtype=np.bool_)
    if a.size >= _ROWS_EQUAL_PARALLEL_MIN_BYTES and a.shape[0] > 1:
        _rows_equal_parallel(a, b, out)
    else:
        _rows_equal_serial(a, b, out)
    return out


def rows_equal_into(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """Single-threaded, GIL-releasing :func:`rows_equal` writing into ``out`` (bool[N]), for
    callers that run their own thread pool (a Numba parallel region started from several pool
    threads at once would only contend for the same cores)."""
    a, b = _ref.check_row_pair(a, b)
    if (not isinstance(out, np.ndarray) or out.dtype != np.bool_ or out.shape != (a.shape[0],)
            or not out.flags.c_contiguous or not out.flags.writeable):
        raise ValueError(f"out must be a writable contiguous bool array of shape ({a.shape[0]},)")
    _rows_equal_serial(_readonly_view(a), _readonly_view(b), out)


# ---------------------------------------------------------------------------
# row_stats: l2 / cosine / max_abs / max_ulp of row pairs (definition and
# normative summation order: reference.row_stats).
#
# Per row, two passes over its columns (the second re-reads the row from L1):
#
# * the float pass: the four sums, sequential float64 adds in the normative
#   column order, and the running max |y - x|.  No fastmath, so LLVM neither
#   reassociates nor vectorizes these sums, and no FMA contraction (Numba
#   emits plain fmul/fadd without the ``contract`` flag).  Its speed is bound
#   by the 4-cycle latency of each add chain, not by the instruction count.
# * the integer pass: the max ULP distance on bit patterns.  An unsigned
#   integer max is associative, so LLVM's loop vectorizer does vectorize it;
#   keeping it out of the float pass is what lets it (a fused loop stays
#   scalar because of the float sums: measured ~2x slower in total).
#
# max_abs needs no NaN flag of its own: the sum of squares is NaN iff some
# difference is NaN (squares are >= 0 or NaN, so inf - inf cannot occur in
# that sum).  Rows are independent, so the parallel version (prange over row
# ranges) gives the same bits for any thread count.
#
# The small per-element helpers are plain njit functions: LLVM inlines them
# and folds their ``code`` branches (checked in the assembly: branch-free
# scalar float loop, AVX-512 ``vpmaxuq`` ULP loop).  Only the row loop is
# IR-inlined, once per dtype, with literal (code, itemsize).
# ---------------------------------------------------------------------------

_RS_FLOAT64 = _ref.DTYPE_FLOAT64
_RS_FLOAT32 = _ref.DTYPE_FLOAT32
_RS_FLOAT16 = _ref.DTYPE_FLOAT16
_RS_BFLOAT16 = _ref.DTYPE_BFLOAT16
_RS_INT8 = _ref.DTYPE_INT8

# Sign bits and +inf bit patterns per float width (NaN <=> magnitude > +inf).
_SIGN64 = _U(1 << 63)
_SIGN32 = _U(1 << 31)
_SIGN16 = _U(1 << 15)
_INF64 = _U(0x7FF0000000000000)
_INF32 = _U(0x7F800000)
_INF16 = _U(0x7C00)
_INFBF16 = _U(0x7F80)
_ULP_NAN = _U(_ref.ULP_NAN)
_CANONICAL_NAN_BITS = _U(_ref.CANONICAL_NAN_BITS)
# float16 -> float64 rebias factor, see _f64_from_f16_bits (exactly representable).
_F16_SCALE = 2.0**1008

# Below this many bytes per input the fork/join of the parallel version costs
# more than the work.
_ROW_STATS_PARALLEL_MIN_BYTES = 1 << 16
# Rows per parallel task (per-row work is uniform; this only bounds the
# per-task overhead for tiny rows).
_ROW_STATS_TASK_ROWS = 64


@intrinsic
def _load_u16(typingctx: Any, arr: types.Type, byte_index: types.Type) -> _Intrinsic:
    """Native-endian u16 at ``arr.data + byte_index`` (any alignment), widened to u64."""
    if not (_is_c_byte_array(arr) and isinstance(byte_index, types.Integer)):
        return None
    sig = types.uint64(arr, byte_index)

    def codegen(context: Any, builder: ir.IRBuilder, signature: Signature, args: list[ir.Value]) -> ir.Value:
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        idx = context.cast(builder, args[1], signature.args[1], types.intp)
        ptr = builder.gep(ary.data, [idx], inbounds=True)
        ptr16 = builder.bitcast(ptr, ir.IntType(16).as_pointer())
        return builder.zext(builder.load(ptr16, align=1), ir.IntType(64))

    return sig, codegen


@intrinsic
def _f64_from_bits(typingctx: Any, bits: types.Type) -> _Intrinsic:
    """The float64 whose bit pattern is the u64 ``bits`` (a bitcast, payloads kept)."""
    if bits != types.uint64:
        return None
    sig = types.float64(types.uint64)

    def codegen(context: Any, builder: ir.IRBuilder, signature: Signature, args: list[ir.Value]) -> ir.Value:
        return builder.bitcast(args[0], ir.DoubleType())

    return sig, codegen


@intrinsic
def _f64_from_f32_bits(typingctx: Any, bits: types.Type) -> _Intrinsic:
    """float64(the float32 whose bit pattern is the low 32 bits of ``bits``): exact (fpext)."""
    if bits != types.uint64:
        return None
    sig = types.float64(types.uint64)

    def codegen(context: Any, builder: ir.IRBuilder, signature: Signature, args: list[ir.Value]) -> ir.Value:
        f32 = builder.bitcast(builder.trunc(args[0], ir.IntType(32)), ir.FloatType())
        return builder.fpext(f32, ir.DoubleType())

    return sig, codegen


@numba.njit(**_NJIT)
def _f64_from_f16_bits(h: np.uint64) -> float:
    """float64 value of the IEEE binary16 bit pattern ``h`` (< 2**16), exactly, without branches.

    No half-precision type is involved (LLVM may lower one to a runtime-library
    call the JIT cannot resolve).  The 15 magnitude bits shifted left by 42
    sit at the bottom of the float64 exponent field and the top of its
    mantissa, which reads as exactly ``value * 2**-1008`` for normal *and*
    subnormal halves (exponent e in 1..30 -> 2**(e-1023) (1.m) vs
    2**(e-15) (1.m); e = 0 -> m 2**-1032 vs m 2**-24); the product with
    2**1008 is then exact.  inf/NaN (e = 31) get the all-ones float64 exponent
    and their mantissa; the sign is applied last (so -0.0 stays -0.0).
    """
    mag = h & _U(0x7FFF)
    v = _f64_from_bits(mag << _U(42)) * _F16_SCALE
    special = _f64_from_bits(_INF64 | ((mag & _U(0x3FF)) << _U(42)))
    v = special if mag >= _INF16 else v
    return -v if (h & _SIGN16) != _ZERO else v


@numba.njit(**_NJIT)
def _rs_value(buf: np.ndarray, q: int, code: int) -> float:
    """The element at flat byte offset ``q`` of type ``code``, exactly as float64."""
    if code == _RS_FLOAT64:
        return _f64_from_bits(_load_u64(buf, q))
    if code == _RS_FLOAT32:
        return _f64_from_f32_bits(_load_u32(buf, q))
    if code == _RS_FLOAT16:
        return _f64_from_f16_bits(_load_u16(buf, q))
    if code == _RS_BFLOAT16:
        return _f64_from_f32_bits(_load_u16(buf, q) << S16)
    bits = _load_u8(buf, q)
    if code == _RS_INT8:
        # Two's complement: flipping the sign bit gives value + 128.
        return float(np.int64(bits ^ _U(0x80)) - np.int64(128))
    return float(bits)  # uint8


@numba.njit(**_NJIT)
def _float_ulp(bx: np.uint64, by: np.uint64, sign: np.uint64, inf: np.uint64) -> np.uint64:
    """ULP distance of two w-bit float patterns (sign = 1 << (w-1), inf = bits of +inf).

    Keys ``SIGN - m`` (sign bit set) / ``SIGN + m`` with m the magnitude bits;
    written with selects only, so the column loop around it vectorizes.
    """
    mx = bx & (sign - _ONE)
    my = by & (sign - _ONE)
    kx = sign - mx if (bx & sign) != _ZERO else sign + mx
    ky = sign - my if (by & sign) != _ZERO else sign + my
    u = kx - ky if kx >= ky else ky - kx
    either_nan = (mx > inf) | (my > inf)
    nan_u = _ZERO if bx == by else _ULP_NAN
    return nan_u if either_nan else u


@numba.njit(**_NJIT)
def _rs_ulp(a: np.ndarray, b: np.ndarray, q: int, code: int) -> np.uint64:
    """ulp(x, y) of the elements at flat byte offset ``q`` of ``a`` and ``b``."""
    if code == _RS_FLOAT64:
        return _float_ulp(_load_u64(a, q), _load_u64(b, q), _SIGN64, _INF64)
    if code == _RS_FLOAT32:
        return _float_ulp(_load_u32(a, q), _load_u32(b, q), _SIGN32, _INF32)
    if code == _RS_FLOAT16:
        return _float_ulp(_load_u16(a, q), _load_u16(b, q), _SIGN16, _INF16)
    if code == _RS_BFLOAT16:
        return _float_ulp(_load_u16(a, q), _load_u16(b, q), _SIGN16, _INFBF16)
    bx = _load_u8(a, q)
    by = _load_u8(b, q)
    if code == _RS_INT8:  # compare value + 128 (sign bit flipped)
        bx ^= _U(0x80)
        by ^= _U(0x80)
    return bx - by if bx >= by else by - bx


@numba.njit(**_NJIT)
def _canonical_nan(x: float) -> float:
    return _f64_from_bits(_CANONICAL_NAN_BITS) if x != x else x


@numba.njit(inline="always", **_NJIT)
def _row_stats_range(
    a: np.ndarray,
    b: np.ndarray,
    code: int,
    k: int,
    l2: np.ndarray,
    cosine: np.ndarray,
    max_abs: np.ndarray,
    max_ulp: np.ndarray,
    start: int,
    stop: int,
) -> None:
    """The four statistics of rows start <= i < stop (one helper call per range: see _rows_equal_range)."""
    length = a.shape[1]
    n_cols = length // k
    for i in range(start, stop):
        p = i * length
        s2 = 0.0
        dot = 0.0
        sx = 0.0
        sy = 0.0
        mabs = 0.0
        for j in range(n_cols):  # normative order: j = 0, 1, ..., D-1
            x = _rs_value(a, p + j * k, code)
            y = _rs_value(b, p + j * k, code)
            diff = y - x
            s2 += diff * diff
            dot += x * y
            sx += x * x
            sy += y * y
            ad = abs(diff)
            mabs = ad if ad > mabs else mabs  # a NaN ad is skipped here; s2 records it
        umax = _ZERO
        for j in range(n_cols):
            u = _rs_ulp(a, b, p + j * k, code)
            umax = u if u > umax else umax
        nx = np.sqrt(sx)
        ny = np.sqrt(sy)
        if dot != dot or nx != nx or ny != ny:
            c = _f64_from_bits(_CANONICAL_NAN_BITS)
        elif nx == 0.0 and ny == 0.0:
            c = 1.0
        elif nx == 0.0 or ny == 0.0:
            c = 0.0
        else:
            c = dot / (nx * ny)
            if c > 1.0:
                c = 1.0
            elif c < -1.0:
                c = -1.0
        l2[i] = _canonical_nan(np.sqrt(s2))
        cosine[i] = _canonical_nan(c)
        max_abs[i] = _f64_from_bits(_CANONICAL_NAN_BITS) if s2 != s2 else mabs
        max_ulp[i] = umax


# The row loop is IR-inlined with literal (code, itemsize), one specialization per dtype,
# compiled on first use: a kernel taking the dtype at run time held six copies of the loop
# and compiled them all on the first diff of any table. The parallel kernel calls
# _row_stats_rows (not an inlined copy) per task: inlining six row loops into the parfor made
# the first compile of this section take ~15 minutes instead of ~10 seconds, and the call
# lets the serial and the parallel kernel share one compiled row loop.
@numba.njit(**_NJIT)
def _row_stats_rows(
    a: np.ndarray,
    b: np.ndarray,
    code: int,
    k: int,
    l2: np.ndarray,
    cosine: np.ndarray,
    max_abs: np.ndarray,
    max_ulp: np.ndarray,
    start: int,
    stop: int,
) -> None:
    """Rows start <= i < stop, single-threaded; ``code`` and ``k`` are literals (one
    specialization per dtype, cached on disk like any other)."""
    numba.literally(code)
    numba.literally(k)
    _row_stats_range(a, b, code, k, l2, cosine, max_abs, max_ulp, start, stop)


@functools.cache
def _row_stats_kernels(code: int) -> tuple[Any, Any]:
    """The serial and parallel row_stats kernels of one dtype (see _shuffle_kernel)."""
    k = _ref.ROW_STATS_ITEMSIZE[code]

    @numba.njit(**_NJIT)
    def rows_k(a: np.ndarray, b: np.ndarray, l2: np.ndarray, cosine: np.ndarray, max_abs: np.ndarray,
               max_ulp: np.ndarray) -> None:
        _row_stats_rows(a, b, code, k, l2, cosine, max_abs, max_ulp, 0, a.shape[0])

    @numba.njit(parallel=True, **_NJIT)
    def parallel_k(a: np.ndarray, b: np.ndarray, l2: np.ndarray, cosine: np.ndarray, max_abs: np.ndarray,
                   max_ulp: np.ndarray) -> None:
        n = a.shape[0]
        n_tasks = (n + _ROW_STATS_TASK_ROWS - 1) // _ROW_STATS_TASK_ROWS
        # Each task writes only its own rows' outputs, each a function of row i
        # alone: no reduction, so the bits do not depend on the thread count.
        for t in numba.prange(n_tasks):
            start = t * _ROW_STATS_TASK_ROWS
            _row_stats_rows(a, b, code, k, l2, cosine, max_abs, max_ulp, start,
                            min(n, start + _ROW_STATS_TASK_ROWS))

    return rows_k, parallel_k


def row_stats(a: np.ndarray, b: np.ndarray, dtype_code: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-row l2, cosine, max_abs, max_ulp of row i of ``a`` vs row i of ``b``.

    Parameters
    ----------
    a, b : np.ndarray
        2-D uint8 arrays of the same shape (N, row_bytes), canonical
        little-endian bytes (read-only views are fine).
    dtype_code : int
        1 float64, 2 float32, 3 float16, 4 bfloat16, 5 int8, 6 uint8; anything
        else, mismatched shapes or a partial element raise ValueError.

    Returns
    -------
    (l2, cosine, max_abs, max_ulp)
        float64 (N,) x 3 and uint64 (N,), bit-for-bit equal to
        :func:`.reference.row_stats` (which defines them, including the
        summation order and the canonical NaN).  Parallel over rows for inputs
        of 64 KiB or more, single-threaded below.
    """
    a, b, code = _ref.check_row_stats_args(a, b, dtype_code)
    n = a.shape[0]
    l2 = np.empty(n, dtype=np.float64)
    cosine = np.empty(n, dtype=np.float64)
    max_abs = np.empty(n, dtype=np.float64)
    max_ulp = np.empty(n, dtype=np.uint64)
    a, b = _readonly_view(a), _readonly_view(b)
    serial, parallel = _row_stats_kernels(code)
    if a.size >= _ROW_STATS_PARALLEL_MIN_BYTES and n > 1:
        parallel(a, b, l2, cosine, max_abs, max_ulp)
    else:
        serial(a, b, l2, cosine, max_abs, max_ulp)
    return l2, cosine, max_abs, max_ulp
