"""PyTorch files (``.pt``, ``.pth``, and ``.bin`` files that are torch zip archives), read only.

A torch file is a Python object serialization, and loading one freely can run any code, so it is opened only through
torch's own restricted loader, ``torch.load(..., weights_only=True, map_location="cpu")``, which
rebuilds tensors and plain containers and refuses every other object; torch is imported on
this path only. A file the safe loader refuses is an error, never a reason to load it some
other way. Zip-format files (what ``torch.save`` writes since 1.6) are memory-mapped.

The file may hold one tensor or nested dicts / lists of them (a ``state_dict``, or a
checkpoint such as ``{"model": state_dict, "epoch": 3}``): tensors are named by their keys
joined with ``.`` (``model.embeddings.word_embeddings.weight``), list items by their index.
``FILE:NAME`` (or ``--dataset``) picks one; it may be left out when the file holds exactly
one 2-D tensor.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import ErrorKind, FormatError, InputError, NotFoundError
from ._common import Source, named_matrix

NAME = "torch"
EXTENSIONS = (".pt", ".pth")
ZIP_MAGIC = b"PK\x03\x04"
DTYPES = ("float64", "float32", "float16", "bfloat16", "int8", "uint8")
# Containers nested deeper than this are refused: real checkpoints nest two or three levels,
# and the walk below must not recurse without bound on a crafted file.
MAX_DEPTH = 32
# Names listed in an error message, at most (a large model has thousands of tensors).
MAX_LISTED = 40


def _torch(path: str) -> Any:
    try:
        import torch
    except ImportError:
        raise InputError(f"{path}: reading a PyTorch file needs torch (it is opened with torch's "
                         "safe loader, weights_only=True); install it: pip install torch",
                         ErrorKind.MISSING_EXTRA) from None
    return torch


def _load(torch: Any, path: str) -> Any:
    with open(path, "rb") as fh:
        zipped = fh.read(4) == ZIP_MAGIC
    try:
        # torch warns about serialization protocols it did not write; the outcome is what matters.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # mmap needs the zip format; the legacy (pre-1.6) format is read into memory.
            return torch.load(path, weights_only=True, map_location="cpu", mmap=zipped)
    except Exception as e:  # noqa: BLE001 - sorted below
        if type(e).__name__ != "UnpicklingError":  # the safe loader's refusal (not imported here:
            raise _unreadable(path, e) from None   # the code base never imports a deserializer)
        raise FormatError(f"{path}: torch's safe loader (weights_only=True) refused it "
                          f"({_refusal(e)}); embfmt never loads a torch file any other way: save "
                          "plain tensors (torch.save(model.state_dict())) or .safetensors",
                          ErrorKind.BAD_FILE) from None


def _unreadable(path: str, e: BaseException) -> FormatError:
    # torch raises what the damaged bytes provoke (RuntimeError from the zip reader, EOFError,
    # ValueError, KeyError, ...): each means "not a readable torch file".
    msg = " ".join(str(e).split())[:300]
    return FormatError(f"{path}: not a readable PyTorch file ({type(e).__name__}: {msg})",
                       ErrorKind.BAD_FILE)


def _refusal(e: BaseException) -> str:
    """What torch's refusal says it refused. Its message opens with a paragraph on the
    weights_only default (advice to retry with weights_only=False, which we do not repeat)."""
    text = str(e)
    tail = text.split("WeightsUnpickler error:", 1)[1] if "WeightsUnpickler error:" in text else text
    for line in tail.splitlines():
        line = line.strip()
        if line and not line.startswith(("Weights only load failed", "Check the documentation",
                                         "Please file an issue")):
            return line[:300]
    return type(e).__name__


def _walk(torch: Any, path: str, obj: Any, prefix: str, depth: int, out: dict[str, Any]) -> None:
    if isinstance(obj, torch.Tensor):
        out[prefix] = obj
        return
    if depth > MAX_DEPTH:
        raise FormatError(f"{path}: containers nested deeper than {MAX_DEPTH} levels",
                          ErrorKind.BAD_FILE)
    if isinstance(obj, dict):
        items: Any = ((str(k), v) for k, v in obj.items())
    elif isinstance(obj, (list, tuple)):
        items = ((str(i), v) for i, v in enumerate(obj))
    else:
        return  # numbers, strings and the like: not tensors
    for k, v in items:
        _walk(torch, path, v, f"{prefix}.{k}" if prefix else k, depth + 1, out)


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:MAX_LISTED]) or "(none)"
    return shown + (f", ... ({len(names) - MAX_LISTED} more)" if len(names) > MAX_LISTED else "")


@contextmanager
def read(path: str, dataset: str | None = None, **opts: Any) -> Iterator[Source]:
    """Load ``path`` with torch's safe loader and serve tensor ``dataset`` (see module docstring)."""
    torch = _torch(path)
    tensors: dict[str, Any] = {}
    _walk(torch, path, _load(torch, path), "", 0, tensors)
    if dataset is None:
        two_d = sorted(k for k, t in tensors.items() if t.dim() == 2)
        if len(two_d) != 1:
            raise InputError(f"{path}: choose a tensor with FILE:NAME or --dataset; 2-D tensors: "
                             f"{_listed(two_d)}", ErrorKind.BAD_ARGUMENT)
        dataset = two_d[0]
    if dataset not in tensors:
        what = ("holds a single tensor; leave out :NAME" if list(tensors) == [""]
                else f"has no tensor named {dataset!r}; tensors: {_listed(sorted(tensors))}")
        raise NotFoundError(f"{path}: {what}")
    t = tensors[dataset]
    label = f" tensor {dataset!r}" if dataset else " its tensor"
    if t.layout != torch.strided:
        raise InputError(f"{path}:{label} is a {t.layout} tensor; expected a dense matrix",
                         ErrorKind.NOT_A_MATRIX)
    dtype = str(t.dtype).removeprefix("torch.")
    if dtype not in DTYPES:
        raise InputError(f"{path}:{label} has dtype {dtype}; accepted: {', '.join(DTYPES)}",
                         ErrorKind.UNSUPPORTED_DTYPE)
    yield Source(named_matrix(path, t.detach(), label), None, NAME, path, dataset or None)
