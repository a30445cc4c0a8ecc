"""The ``embfmt`` command line.

Exit codes: 0 success; 1 a check found a difference or corruption; 2 usage or input error
(one line on stderr naming the file or object at fault, never a traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from .errors import EmbfmtError

__all__ = ["main"]

EXIT_OK, EXIT_DIFFERENT, EXIT_ERROR = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse would exit 2 with usage; keep one line
        self.exit(EXIT_ERROR, f"embfmt: error: {message}\n")


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def cmd_fingerprint(args: argparse.Namespace) -> int:
    from .fingerprint import fingerprint
    from .source import open_matrix

    t0 = time.perf_counter()
    with open_matrix(args.file, args.dataset, args.format) as m:
        fp = fingerprint(m, backend=args.backend)
    secs = time.perf_counter() - t0
    if args.json:
        d = fp.to_dict()
        d.update(file=args.file, seconds=round(secs, 6),
                 gb_per_s=round(fp.nbytes / secs / 1e9, 3) if secs > 0 else None)
        if args.dataset:
            d["dataset"] = args.dataset
        _print_json(d)
    else:
        print(fp.root)
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(args.dir, quiet=args.quiet)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="embfmt", description="Change tracking for embedding tables.")
    p.add_argument("--version", action="version", version=f"embfmt {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    f = sub.add_parser("fingerprint", help="print the canonical fingerprint of a matrix file",
                       description="Fingerprint a matrix stored in a .npy, HDF5 or .safetensors "
                                   "file (memory-mapped or read in blocks; never loaded whole).")
    f.add_argument("file")
    f.add_argument("--dataset", help="HDF5 dataset path or safetensors tensor name")
    f.add_argument("--format", choices=["npy", "hdf5", "h5", "safetensors"],
                   help="file format (default: by extension, then magic bytes)")
    f.add_argument("--backend", default="auto", choices=["auto", "cpu", "gpu", "reference"])
    f.add_argument("--json", action="store_true",
                   help="print rows, dim, dtype, chunk_rows, chunks, seconds and GB/s as JSON")
    f.set_defaults(func=cmd_fingerprint)

    d = sub.add_parser("demo", help="run the built-in end-to-end example")
    d.add_argument("dir", nargs="?", help="where to put the demo's files (default: a temp dir)")
    d.add_argument("--quiet", action="store_true")
    d.set_defaults(func=cmd_demo)
    return p


def _version() -> str:
    from . import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except EmbfmtError as e:
        sys.stderr.write(f"embfmt: error [{e.kind.value}]: {e}\n")
        return EXIT_ERROR
    except OSError as e:
        sys.stderr.write(f"embfmt: error [io]: {e.filename or ''}: {e.strerror or e}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("embfmt: interrupted\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
