"""The format's numbers and the kernels' numbers are the same numbers.

embfmt passes a chunk's codec id straight to the kernels as the delta ``mode``
(chunk.encode_dense: CODEC_XOR / CODEC_SUBZZ) and a table's dtype code as the row
statistics' ``dtype_code`` (diff, blame). The kernels cannot import embfmt (the dependency
points one way), so each kernel set restates those numbers: kernels/reference.py and
kernels/cpu.py as Python constants, kernels/gpu.py as literals in its argument checks, and the
CUDA sources as ``#define``s. This test reads every copy -- the GPU and CUDA ones from the source
text, so it runs without CuPy, a device or nvcc -- and fails if any one of them changes alone.

If you add a codec that the kernels implement or a dtype, add it on every side and to the
tables below in the same commit; the spec (§3 dtype codes, §13 codecs) is normative.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from embfmt import _layout as L
from embfmt._kernels import cpu, reference
from embfmt.canonical.dtype import DTYPES

KERNELS = Path(reference.__file__).resolve().parent
GPU_PY = KERNELS / "gpu.py"
CUDA_SOURCES = sorted((KERNELS / "cuda").glob("*.cu")) + sorted((KERNELS / "cuda").glob("*.cuh"))

# The embfmt side: codec ids the kernels implement as delta modes, and every dtype.
MODES = {"xor": L.CODEC_XOR, "sub-zigzag": L.CODEC_SUBZZ}
CODES = {d.name: d.code for d in DTYPES}
ITEMSIZE = {d.code: d.itemsize for d in DTYPES}

# How each kernel set spells those names.
REF_DTYPE = {"float64": "DTYPE_FLOAT64", "float32": "DTYPE_FLOAT32", "float16": "DTYPE_FLOAT16",
             "bfloat16": "DTYPE_BFLOAT16", "int8": "DTYPE_INT8", "uint8": "DTYPE_UINT8"}
# cpu.py has no name for uint8: it is the row statistics' fall-through branch.
CPU_DTYPE = {"float64": "_RS_FLOAT64", "float32": "_RS_FLOAT32", "float16": "_RS_FLOAT16",
             "bfloat16": "_RS_BFLOAT16", "int8": "_RS_INT8"}
CUDA_DTYPE = {"float64": "EMB_DT_F64", "float32": "EMB_DT_F32", "float16": "EMB_DT_F16",
              "bfloat16": "EMB_DT_BF16", "int8": "EMB_DT_I8", "uint8": "EMB_DT_U8"}
CUDA_MODE = {"xor": "EMB_DELTA_XOR", "sub-zigzag": "EMB_DELTA_SUB_ZIGZAG"}


def test_the_tables_cover_every_dtype() -> None:
    # A new dtype must be named for every kernel set here (and implemented there).
    assert set(REF_DTYPE) == set(CUDA_DTYPE) == set(CODES), sorted(CODES)
    assert set(CPU_DTYPE) == set(CODES) - {"uint8"}
    assert set(L.DELTA_CODECS) == {L.CODEC_XOR, L.CODEC_SUBZZ, L.CODEC_SPARSE}
    assert len(set(CODES.values())) == len(CODES)


# --- reference.py and cpu.py: imported (numpy / Numba only, nothing compiles at import) ---------

def test_reference_delta_modes_are_the_codec_ids() -> None:
    assert reference.DELTA_XOR == MODES["xor"]
    assert reference.DELTA_SUB_ZIGZAG == MODES["sub-zigzag"]
    assert set(reference.DELTA_MODES) == set(MODES.values())


def test_reference_dtype_codes_and_itemsizes() -> None:
    assert {name: getattr(reference, attr) for name, attr in REF_DTYPE.items()} == CODES
    assert set(reference.ROW_STATS_DTYPES) == set(CODES.values())
    assert dict(reference.ROW_STATS_ITEMSIZE) == ITEMSIZE


def test_cpu_delta_modes_and_dtype_codes() -> None:
    assert cpu.DELTA_XOR == MODES["xor"]
    assert cpu.DELTA_SUB_ZIGZAG == MODES["sub-zigzag"]
    assert {name: getattr(cpu, attr) for name, attr in CPU_DTYPE.items()} == {
        n: c for n, c in CODES.items() if n in CPU_DTYPE}


# --- gpu.py: parsed (importing it imports CuPy) ----------------------------------------------

def _not_in_literals(tree: ast.AST, name: str) -> list[set[int]]:
    """Every ``<name> not in (<int literals>)`` in the module, as sets of ints."""
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Compare) and isinstance(node.left, ast.Name) and node.left.id == name
                and len(node.ops) == 1 and isinstance(node.ops[0], ast.NotIn)
                and isinstance(node.comparators[0], (ast.Tuple, ast.Set))):
            found.append({ast.literal_eval(e) for e in node.comparators[0].elts})
    return found


def _dicts_indexed_by(tree: ast.AST, name: str) -> list[dict[int, int]]:
    """Every ``{<int>: <int>, ...}[<name>]`` in the module."""
    return [ast.literal_eval(node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Dict)
            and isinstance(node.slice, ast.Name) and node.slice.id == name]


@pytest.fixture(scope="module")
def gpu_tree() -> ast.Module:
    return ast.parse(GPU_PY.read_text(encoding="utf-8"), str(GPU_PY))


def test_gpu_py_delta_modes(gpu_tree: ast.Module) -> None:
    checks = _not_in_literals(gpu_tree, "mode")
    assert checks, "gpu.py no longer checks `mode not in (...)`: update this test to read its modes"
    for modes in checks:
        assert modes == set(MODES.values())


def test_gpu_py_dtype_codes_and_itemsizes(gpu_tree: ast.Module) -> None:
    checks = _not_in_literals(gpu_tree, "dtype_code")
    sizes = _dicts_indexed_by(gpu_tree, "dtype_code")
    assert checks and sizes, "gpu.py's dtype_code check or itemsize table moved: update this test"
    for codes in checks:
        assert codes == set(CODES.values())
    for table in sizes:
        assert table == ITEMSIZE


# --- CUDA sources: parsed ---------------------------------------------------------------------

def _cuda_defines() -> dict[str, int]:
    """Integer ``#define``s across kernels/cuda/*.cu, *.cuh; a name defined twice must agree."""
    out: dict[str, int] = {}
    pat = re.compile(r"^\s*#\s*define\s+(EMB_\w+)\s+(0[xX][0-9A-Fa-f]+|\d+)[uUlL]*\s*(?://.*)?$", re.M)
    for src in CUDA_SOURCES:
        for name, value in pat.findall(src.read_text(encoding="utf-8")):
            v = int(value, 0)
            assert out.setdefault(name, v) == v, f"{name} defined as {out[name]} and {v} ({src.name})"
    return out


def test_cuda_sources_found() -> None:
    assert {p.name for p in CUDA_SOURCES} >= {"embfmt_core.cuh", "embfmt_kernels.cu", "host_check.cu"}


def test_cuda_delta_modes() -> None:
    d = _cuda_defines()
    assert {name: d.get(macro) for name, macro in CUDA_MODE.items()} == MODES


def test_cuda_dtype_codes() -> None:
    d = _cuda_defines()
    assert {name: d.get(macro) for name, macro in CUDA_DTYPE.items()} == CODES


def _eval_c_ternary(expr: str, env: dict[str, int]) -> int:
    """Evaluate a C expression of ``==``, ``||``, ``&&``, ``?:``, parentheses and int literals."""
    expr = expr.strip()
    while expr.startswith("(") and _close(expr, 0) == len(expr) - 1:
        expr = expr[1:-1].strip()
    depth, q = 0, -1
    for i, ch in enumerate(expr):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "?" and depth == 0:
            q = i
            break
    if q < 0:
        py = re.sub(r"\b[A-Za-z_]\w*\b", lambda m: str(env[m.group(0)]), expr)
        py = py.replace("||", " or ").replace("&&", " and ")
        assert re.fullmatch(r"[\d\s()=!orand]*", py), f"unexpected C expression {expr!r}"
        return int(eval(py, {"__builtins__": {}}))  # noqa: S307 - digits, ==, and/or only
    nested, c = 0, -1
    for i in range(q + 1, len(expr)):
        ch = expr[i]
        nested += ch == "?"
        if ch == ":":
            if nested == 0:
                c = i
                break
            nested -= 1
    assert c > 0, f"unbalanced ?: in {expr!r}"
    cond, then, other = expr[:q], expr[q + 1:c], expr[c + 1:]
    return _eval_c_ternary(then if _eval_c_ternary(cond, env) else other, env)


def _close(s: str, i: int) -> int:
    depth = 0
    for j in range(i, len(s)):
        depth += s[j] == "("
        depth -= s[j] == ")"
        if depth == 0:
            return j
    return -1


def test_cuda_itemsize_of_each_dtype() -> None:
    core = (KERNELS / "cuda" / "embfmt_core.cuh").read_text(encoding="utf-8")
    m = re.search(r"emb_itemsize_of\s*\(\s*int\s+code\s*\)\s*\{\s*return\s+(.*?);\s*\}", core, re.S)
    assert m, "emb_itemsize_of(int code) not found in embfmt_core.cuh: update this test"
    d = _cuda_defines()
    assert {code: _eval_c_ternary(m.group(1), {**d, "code": code}) for code in ITEMSIZE} == ITEMSIZE
