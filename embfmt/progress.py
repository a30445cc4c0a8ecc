"""Progress bars for long operations, shown only where a person is watching.

The library is silent by default. The command-line tool turns bars on with :func:`enable` when
standard error is a terminal and ``--quiet`` was not given, so piped output, CI logs and
``--json`` consumers never see control characters.

Examples
--------
>>> from embfmt import progress
>>> with progress.bar(100, "demo") as b:   # disabled: a no-op object
...     b.update(100)
"""

from __future__ import annotations

import shutil
import sys
from typing import Any

__all__ = ["bar", "enable", "enabled", "watch_kernel_compiles", "COMPILE_NOTICE"]

_enabled = False
_watching = False

# What the first compile of a process says. The figure is a first `embfmt demo` on the
# project's 2-core VM: ~6 s of CPU time (benchmarks/README.md, "First run"); a command
# compiles only the kernels it calls, most of them less, and none once the cache holds them.
COMPILE_NOTICE = "embfmt: compiling kernels for this machine (once, ~10 s)..."


def enable(on: bool = True) -> None:
    """Turn progress bars on or off for this process (the CLI's switch)."""
    global _enabled
    _enabled = bool(on)


def enabled() -> bool:
    """Whether :func:`bar` draws anything."""
    return _enabled


def watch_kernel_compiles() -> None:
    """Say once, on standard error, when Numba starts compiling a kernel, if bars are on.

    Called where embfmt loads its Numba kernels (Numba is imported by then). Numba compiles a
    kernel on its first call and keeps the machine code in its on-disk cache; its
    ``numba:compile`` event fires only when that cache has no entry, so the notice appears on a
    machine's first use (or after an upgrade, or with an empty ``NUMBA_CACHE_DIR``), not when
    the kernels load from the cache.
    """
    global _watching
    if _watching or not _enabled:
        return
    _watching = True
    from numba.core import event

    class _Notice(event.Listener):
        said = False

        def on_start(self, ev: event.Event) -> None:
            if not self.said and _enabled:
                self.said = True
                if "tqdm" in sys.modules:  # a bar may be on screen: tqdm clears and redraws it
                    from tqdm import tqdm

                    tqdm.write(COMPILE_NOTICE, file=sys.stderr)
                else:
                    sys.stderr.write(COMPILE_NOTICE + "\n")
                sys.stderr.flush()

        def on_end(self, ev: event.Event) -> None:
            pass

    event.register("numba:compile", _Notice())


class _NoBar:
    """Stands in for a tqdm bar when bars are off: accepts the same calls, does nothing."""

    def update(self, n: float = 1) -> None:
        pass

    def set_postfix_str(self, s: str) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


_MIB = 1 << 20
# Byte bars count in MiB and MiB/s, the binary units the CLI prints sizes in: tqdm's own byte
# scaling writes "MB" and "kB" over 1024-based values, or "kiB" with unit "iB".
_BYTE_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} MiB [{elapsed}<{remaining}, {rate_noinv_fmt}]"
_BYTE_FORMAT_OPEN = "{desc}: {n:.1f} MiB [{elapsed}, {rate_noinv_fmt}]"  # no total known


class _ByteBar:
    """A tqdm bar fed in bytes, drawn in MiB."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def update(self, n: float = 1) -> None:
        self._inner.update(n / _MIB)

    def set_postfix_str(self, s: str) -> None:
        self._inner.set_postfix_str(s)

    def close(self) -> None:
        self._inner.close()

    def __enter__(self) -> _ByteBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def bar(total: float | None, desc: str, *, unit: str = "B") -> Any:
    """A tqdm bar on standard error when bars are enabled, else a no-op with the same methods.

    ``unit="B"``: fed in bytes, drawn in MiB with a MiB/s rate. The bar is removed when it
    closes (``leave=False``): the command's own summary line is what stays on the screen.
    """
    if not enabled():
        return _NoBar()
    from tqdm import tqdm

    # shutil falls back to $COLUMNS/$LINES or 80x24 where the terminal reports a 0 x 0 size
    # (fresh ptys, some CI consoles); tqdm's own probe takes 0 rows as "no room" and draws nothing.
    size = shutil.get_terminal_size()
    common = dict(desc=desc, leave=False, file=sys.stderr, ncols=size.columns, nrows=size.lines,
                  mininterval=0.25)
    if unit == "B":
        return _ByteBar(tqdm(total=None if total is None else total / _MIB, unit="MiB",
                             bar_format=_BYTE_FORMAT if total is not None else _BYTE_FORMAT_OPEN,
                             **common))
    return tqdm(total=total, unit=unit, **common)
