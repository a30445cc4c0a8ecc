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

__all__ = ["bar", "enable", "enabled"]

_enabled = False


def enable(on: bool = True) -> None:
    """Turn progress bars on or off for this process (the CLI's switch)."""
    global _enabled
    _enabled = bool(on)


def enabled() -> bool:
    """Whether :func:`bar` draws anything."""
    return _enabled


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


def bar(total: float | None, desc: str, *, unit: str = "B") -> Any:
    """A tqdm bar on standard error when bars are enabled, else a no-op with the same methods.

    ``unit="B"`` scales to KB/MB/GB. The bar is removed when it closes (``leave=False``): the
    command's own summary line is what stays on the screen.
    """
    if not enabled():
        return _NoBar()
    from tqdm import tqdm

    # shutil falls back to $COLUMNS/$LINES or 80x24 where the terminal reports a 0 x 0 size
    # (fresh ptys, some CI consoles); tqdm's own probe takes 0 rows as "no room" and draws nothing.
    size = shutil.get_terminal_size()
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=unit == "B", unit_divisor=1024,
                leave=False, file=sys.stderr, ncols=size.columns, nrows=size.lines, mininterval=0.25)
