"""The element types embfmt accepts, with their stable codes (spec §3).

Each dtype is handled through the unsigned integer type of the same width: embfmt never does
float arithmetic on stored values, so NaN payloads, signalling NaNs and -0.0 are kept as the
bit patterns they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ErrorKind, InputError

__all__ = ["DType", "DTYPES", "dtype_from_code", "dtype_from_name", "dtype_of"]


@dataclass(frozen=True, slots=True)
class DType:
    """One supported element type."""

    name: str
    """Canonical name, e.g. ``"float32"``."""
    code: int
    """Stable one-byte code written into descriptors and objects (spec §3)."""
    itemsize: int
    """Bytes per element."""
    bits: np.dtype
    """The little-endian unsigned integer dtype of the same width (the bit-pattern view)."""
    is_float: bool
    """Whether values are IEEE-754-style floats (ULP distances apply)."""
    _numpy: list[np.dtype] = field(default_factory=list, repr=False, compare=False)

    @property
    def numpy(self) -> np.dtype:
        """The little-endian numpy dtype of the canonical form.

        Resolved on first use: numpy has no bfloat16, and importing ``ml_dtypes`` for it costs
        ~1 s (measured with ``python -X importtime``), which commands that never touch values
        (``--help``, ``log``, ``show``) must not pay.
        """
        if not self._numpy:
            self._numpy.append(_numpy_dtype(self.name))
        return self._numpy[0]


def _numpy_dtype(name: str) -> np.dtype:
    if name == "bfloat16":
        import ml_dtypes

        bf16: np.dtype = np.dtype(ml_dtypes.bfloat16)
        return bf16
    little: np.dtype = np.dtype(name).newbyteorder("<")
    return little


def _mk(name: str, code: int, itemsize: int, is_float: bool) -> DType:
    return DType(name, code, itemsize, np.dtype(f"<u{itemsize}"), is_float)


# Codes are append-only; 0 is never a valid code so that a zeroed field is always an error.
DTYPES: tuple[DType, ...] = (
    _mk("float64", 1, 8, True),
    _mk("float32", 2, 4, True),
    _mk("float16", 3, 2, True),
    _mk("bfloat16", 4, 2, True),
    _mk("int8", 5, 1, False),
    _mk("uint8", 6, 1, False),
)
_BY_CODE = {d.code: d for d in DTYPES}
_BY_NAME = {d.name: d for d in DTYPES}
ACCEPTED = ", ".join(d.name for d in DTYPES)


def dtype_from_code(code: int) -> DType:
    """Return the dtype with spec code ``code``; raises :class:`InputError` if unknown."""
    try:
        return _BY_CODE[code]
    except KeyError:
        raise InputError(f"unknown dtype code {code}; known codes: "
                          + ", ".join(f"{d.code}={d.name}" for d in DTYPES),
                          ErrorKind.UNSUPPORTED_DTYPE) from None


def dtype_from_name(name: str) -> DType:
    """Return the dtype called ``name`` (``"float32"``, ``"bfloat16"``, ...)."""
    try:
        return _BY_NAME[str(name)]
    except KeyError:
        raise InputError(f"unsupported dtype {name!r}; accepted: {ACCEPTED}",
                         ErrorKind.UNSUPPORTED_DTYPE) from None


def dtype_of(dt: object) -> DType:
    """Map a numpy dtype (any byte order), a dtype name or a :class:`DType` to a :class:`DType`.

    Examples
    --------
    >>> import numpy as np
    >>> dtype_of(np.dtype(">f4")).name
    'float32'
    """
    if isinstance(dt, DType):
        return dt
    if isinstance(dt, str) and dt in _BY_NAME:
        return _BY_NAME[dt]
    try:
        npdt = np.dtype(dt)  # type: ignore[call-overload]
    except TypeError:
        raise InputError(f"unsupported dtype {dt!r}; accepted: {ACCEPTED}",
                         ErrorKind.UNSUPPORTED_DTYPE) from None
    if npdt.name == "bfloat16":
        return _BY_NAME["bfloat16"]
    if npdt.kind in "fiu" and npdt.fields is None:
        name = np.dtype(npdt.str.replace(">", "<")).name
        if name in _BY_NAME:
            return _BY_NAME[name]
    raise InputError(f"unsupported dtype {npdt} ({npdt.kind!r} kind); accepted: {ACCEPTED}",
                     ErrorKind.UNSUPPORTED_DTYPE)
