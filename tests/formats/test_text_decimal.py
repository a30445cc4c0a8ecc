"""The vectorized shortest-decimal text of word2vec/GloVe output equals its definition
(search_precisions: the smallest p whose "%.{p}g" reads back to the same bits) on every dtype,
every special value and the boundary cases, and reads back bit-exactly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embfmt.canonical.dtype import dtype_from_name
from embfmt.errors import ErrorKind, InputError
from embfmt.formats._decimal import precisions, search_precisions
from embfmt.formats.word2vec import format_rows, parse_values

from ._util import npdtype

FLOATS = ("float64", "float32", "float16", "bfloat16")
BITS = {"float64": 64, "float32": 32, "float16": 16, "bfloat16": 16}


def _check(dtype: str, bits: np.ndarray) -> None:
    """precisions == the definition, and the formatted text reads back to the same bits."""
    dt = dtype_from_name(dtype)
    x = bits.astype(dt.bits).view(npdtype(dtype)).reshape(-1, 1) if bits.ndim == 1 else bits.view(npdtype(dtype))
    flat_bits = x.view(dt.bits).reshape(-1)
    with np.errstate(invalid="ignore"):
        wide = x.astype(np.float64).reshape(-1)
    fast = precisions(x, dt).reshape(-1)
    want = search_precisions(wide, flat_bits, dt)
    bad = np.nonzero(fast != want)[0]
    assert not len(bad), [(hex(int(flat_bits[i])), int(fast[i]), int(want[i])) for i in bad[:5]]
    keep = want > 0  # a NaN with a payload has no text (refused by the writer)
    if not keep.any():
        return
    y = x.reshape(-1)[keep].reshape(-1, 1)
    text = format_rows(y, dt, "t", 0)
    # byte for byte what the definition writes: "%.{p}g" of the float64 value
    assert text == [f"%.{int(q)}g" % v for q, v in zip(want[keep], wide[keep])]
    back = parse_values(text, dt).view(dt.bits)
    assert (back == flat_bits[keep]).all()


def _boundaries(dtype: str) -> np.ndarray:
    """Powers of ten and two, their float neighbours, the smallest subnormal, the largest
    finite value, zeros, infinities and NaNs (canonical, payload, signalling, negative)."""
    npdt = npdtype(dtype)
    ub = np.dtype(f"u{npdt.itemsize}")
    with np.errstate(over="ignore"):
        vals = np.array([10.0 ** e for e in range(-45, 39)] + [2.0 ** e for e in range(-149, 128)])
        base = vals.astype(npdt)
    b = base.view(ub)
    one = np.array(1, ub)
    cand = np.concatenate([b, b + one, b - one])
    nbits = 8 * npdt.itemsize
    top = np.array(1 << (nbits - 1), dtype=np.uint64).astype(ub)
    cand = np.concatenate([cand, cand | top])  # negatives too
    info = np.finfo(np.float32) if dtype == "bfloat16" else np.finfo(npdt)
    extra = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, float(info.max) if dtype != "bfloat16" else 3.3e38],
                     dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        cand = np.concatenate([cand, extra.astype(npdt).view(ub), np.arange(1, 9, dtype=ub)])
    return np.unique(cand)


@pytest.mark.parametrize("dtype", FLOATS)
def test_boundaries_and_specials(dtype: str) -> None:
    _check(dtype, _boundaries(dtype))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_every_16_bit_pattern(dtype: str) -> None:
    _check(dtype, np.arange(1 << 16, dtype=np.uint16))


@pytest.mark.parametrize("dtype", FLOATS)
def test_seeded_bit_patterns_and_embedding_like_values(dtype: str) -> None:
    rng = np.random.default_rng(11)
    nbits = BITS[dtype]
    raw = rng.integers(0, 1 << min(nbits, 63), 20000, dtype=np.uint64, endpoint=False)
    if nbits == 64:
        raw |= rng.integers(0, 2, 20000, dtype=np.uint64) << np.uint64(63)
    _check(dtype, raw)
    with np.errstate(over="ignore"):
        emb = (rng.standard_normal(20000) * 10.0 ** rng.integers(-9, 6, 20000)).astype(npdtype(dtype))
    _check(dtype, emb.view(f"u{npdtype(dtype).itemsize}"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dtype=st.sampled_from(FLOATS), data=st.data())
def test_hypothesis_bit_patterns(dtype: str, data: st.DataObject) -> None:
    nbits = BITS[dtype]
    vals = data.draw(st.lists(st.integers(0, (1 << nbits) - 1), min_size=1, max_size=64))
    _check(dtype, np.array(vals, dtype=np.uint64))


@settings(max_examples=200, deadline=None)
@given(dtype=st.sampled_from(FLOATS), data=st.data())
def test_hypothesis_floats(dtype: str, data: st.DataObject) -> None:
    width = {"float64": 64, "float32": 32, "float16": 16, "bfloat16": 32}[dtype]
    vals = data.draw(st.lists(st.floats(width=width, allow_nan=False), min_size=1, max_size=64))
    with np.errstate(over="ignore"):
        x = np.array(vals, dtype=np.float64).astype(npdtype(dtype))
    _check(dtype, x.view(f"u{x.dtype.itemsize}"))


def test_payload_nan_refused_naming_row_and_column() -> None:
    dt = dtype_from_name("float32")
    x = np.zeros((5, 3), np.float32)
    x.view(np.uint32)[3, 2] = 0x7FC00042
    with pytest.raises(InputError) as ei:
        format_rows(x, dt, "out.vec", 100)
    assert ei.value.kind == ErrorKind.UNSUPPORTED_DTYPE
    assert "row 103 column 2" in ei.value.message and "0x7fc00042" in ei.value.message


def test_integers_are_decimal() -> None:
    x = np.array([[-128, 0, 127]], np.int8)
    assert format_rows(x, dtype_from_name("int8"), "t", 0) == ["-128 0 127"]


def test_reader_names_the_line_at_fault_in_line_order(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Values are parsed many lines at a time; errors still name their line, first one first."""
    from embfmt import formats
    from embfmt.errors import FormatError

    good = [f"w{i} {i}.5 -0 inf" for i in range(3000)]
    cases = {
        "value": (good[:1500] + ["bad 1 x 2"] + good[1500:], FormatError, "line 1502"),
        "overflow": (good[:2500] + ["big 1 1e39 2"] + good[2500:], InputError, "line 2502"),
        "value_then_short": (good[:10] + ["bad 1 x 2"] + good[10:20] + ["short 1"], FormatError, "line 12"),
    }
    for name, (lines, err, where) in cases.items():
        p = tmp_path / f"{name}.vec"
        p.write_text(f"{len(lines)} 3\n" + "\n".join(lines) + "\n")
        with pytest.raises(err) as ei:
            with formats.read(p):
                pass
        assert where in ei.value.message and str(p) in ei.value.message, (name, ei.value.message)
    p = tmp_path / "ok.vec"
    p.write_text(f"{len(good)} 3\n" + "\n".join(good) + "\n")
    with formats.read(p) as src:
        x = np.asarray(src.matrix.rows(0, 3000)).view(np.float32)
    assert x[2999].tolist() == [2999.5, 0.0, float("inf")] and np.signbit(x[:, 1]).all()
