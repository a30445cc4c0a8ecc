"""GPU check (issue 5): run the GPU tests, then time the CuPy kernels against bandwidths measured
in the same run on the same buffers. One script for a machine with an NVIDIA GPU:

    python benchmarks/gpu_check.py              # 4 GiB table (default), prints a markdown table
    python benchmarks/gpu_check.py --gib 1 --skip-tests

Baselines (CUDA events, warm-up, median of --repeat):
- read bandwidth: a CuPy read-only reduction over the table (``cupy.sum`` of its
  uint64 words: every byte read once, almost nothing written);
- copy bandwidth: a device-to-device copy of the table (bytes of the table / time).

Targets (issue 5): rowprints >= 0.75x read; full fingerprint (rowprints + chunk digests + root,
as ``kernels/gpu.py`` ``fingerprint_device`` computes it) >= 0.4x read; changed-row detection between two tables >= 0.75x read counting both inputs; XOR
delta + byte-plane shuffle >= 0.7x copy, both counted in bytes moved (read + written). Exit
status 1 if a GPU test fails or is skipped, a result differs from the CPU's, or a target is
missed.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _time(cp: Any, fn: Callable[[], Any], repeat: int) -> float:
    """Median seconds of fn() on the current stream, by CUDA events, after two warm-up runs."""
    for _ in range(2):
        fn()
    cp.cuda.Device().synchronize()
    times = []
    for _ in range(repeat):
        start, stop = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, stop) / 1e3)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gib", type=float, default=4.0, help="table size in GiB (default 4)")
    ap.add_argument("--row-bytes", type=int, default=512, help="bytes per row (default 512: 128 float32)")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--skip-tests", action="store_true")
    ap.add_argument("--log", help="also write the GPU tests' whole output to this file")
    args = ap.parse_args(argv)

    status = 0
    if not args.skip_tests:
        proc = subprocess.run([sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-rs", "-p", "no:cacheprovider",
                               os.path.join(ROOT, "tests")], cwd=ROOT, capture_output=True, text=True)
        print(proc.stdout[-6000:], proc.stderr[-2000:], flush=True)
        if args.log:
            with open(args.log, "w", encoding="utf-8") as f:
                f.write(proc.stdout + "\n" + proc.stderr)
        # A GPU test skipped for want of CuPy or a device is a failure here (pytest exits 0 when
        # everything skips); tests skipped for another optional package (torch) are only listed.
        skipped = [ln for ln in proc.stdout.splitlines() if ln.startswith("SKIPPED") and "gpu test:" in ln]
        ok = proc.returncode == 0 and not skipped and bool(proc.stdout.strip())
        print(f"GPU tests: {'passed' if ok else 'FAILED (or skipped)'}", flush=True)
        status |= not ok

    import cupy as cp

    import embfmt
    from embfmt._kernels import cpu as cpu_k
    from embfmt._kernels import gpu
    from embfmt.canonical.fingerprint import chunk_rows_for
    from embfmt.canonical.dtype import dtype_of
    from embfmt.canonical.merkle import tree_hash

    rb = args.row_bytes
    n = int(args.gib * 2**30) // rb
    nbytes = n * rb
    x = cp.random.randint(0, 256, size=(n, rb), dtype=cp.uint8)
    y = x.copy()
    # About 1% of rows differ, each in one byte anywhere in the row (also across the 16-byte
    # words the comparison reads).
    changed = cp.arange(0, n, 97)
    y[changed, cp.random.randint(0, rb, changed.size)] ^= 1
    words = x.reshape(-1).view(cp.uint64)
    cr = chunk_rows_for(dtype_of("float32"), rb // 4)

    t_read = _time(cp, lambda: cp.sum(words), args.repeat)
    dst = cp.empty_like(x)
    t_copy = _time(cp, lambda: cp.copyto(dst, x), args.repeat)
    read_bw, copy_bw = nbytes / t_read, nbytes / t_copy

    t_rp = _time(cp, lambda: gpu.rowprints_device(x), args.repeat)
    # The whole fingerprint as embfmt computes it for a table in GPU memory: rowprints, BLAKE3
    # chunk digests and the Merkle root on the device, the root's bytes back.
    t_fp = _time(cp, lambda: gpu.fingerprint_device(x, cr), max(3, args.repeat // 2))
    t_eq = _time(cp, lambda: gpu.rows_equal_device(x, y), args.repeat)
    flat_x, flat_y = x.reshape(-1), y.reshape(-1)
    out = cp.empty_like(flat_x)

    def delta() -> None:
        n_words = flat_x.size // 4
        gpu._fn("emb_delta_encode")(gpu._grid(max(1, flat_x.size // 16)), (gpu._THREADS,),
                                    (flat_x, flat_y, np.uint64(n_words), np.int32(4), np.int32(2), out))

    t_dx = _time(cp, delta, args.repeat)

    # Information rows (no target): the parts, and variants of launch shape and source
    # (compile-time defines) timed on the same buffers, to choose defaults from.
    variants: list[tuple[str, float, int]] = []
    variants.append((f"rowprints, kernel chosen for these rows: {gpu._rowprint_kernel(x)}", t_rp, nbytes))
    for kernel in gpu.ROWPRINT_KERNELS:
        variants.append((f"rowprints, kernel {kernel}",
                         _time(cp, lambda kernel=kernel: gpu.rowprints_device(x, kernel=kernel), args.repeat), nbytes))
    few = max(3, args.repeat // 2)
    variant_dg: dict[str, Any] = {}
    for label, kw in [("BLAKE3 chunk digests alone", {}),
                      ("  variant: 1024 chunks per launch", {"_per_launch": 1024})]:
        variants.append((label, _time(cp, lambda kw=kw: gpu.chunk_digests_device(x, cr, **kw), few), nbytes))
        variant_dg[label] = gpu.chunk_digests_device(x, cr, **kw).get()
    dg_dev = gpu.chunk_digests_device(x, cr)
    variants.append((f"Merkle root of {dg_dev.shape[0]} digests on the device, bytes back",
                     _time(cp, lambda: gpu.tree_hash_device(dg_dev), args.repeat), nbytes))
    variants.append(("cupy.any(a != b, axis=1) (both inputs)", _time(cp, lambda: cp.any(x != y, axis=1), few),
                     2 * nbytes))
    variants.append(("embfmt.fingerprint(cupy array), end to end (rowprints stay on the device)",
                     _time(cp, lambda: embfmt.fingerprint(x.view(cp.float32)), few), nbytes))

    # Bit-exact against the CPU on the whole table: rowprints, chunk digests, tree hash,
    # changed rows; the delta on the first 256 MiB (the CPU kernel is single-threaded).
    host, host_y = x.get(), y.get()
    rp, dg, th = gpu.fingerprint_device(x, cr)
    want_rp, want_dg = cpu_k.rowprints(host), cpu_k.chunk_digests(host, cr)
    checks = {
        "rowprints": np.array_equal(rp.get(), want_rp),
        "chunk digests": np.array_equal(dg.get(), want_dg),
        "tree hash": th == tree_hash([bytes(d) for d in want_dg]),
        "changed rows": np.array_equal(gpu.rows_equal(x, y), cpu_k.rows_equal(host, host_y)),
        "root via embfmt.fingerprint": embfmt.fingerprint(x.view(cp.float32)).root
        == embfmt.fingerprint(host.view(np.float32), backend="cpu").root,
    }
    for kernel in gpu.ROWPRINT_KERNELS:
        checks[f"rowprints ({kernel})"] = np.array_equal(gpu.rowprints_device(x, kernel=kernel).get(), want_rp)
    k = min(nbytes, 256 << 20)
    delta()
    checks["XOR delta"] = np.array_equal(
        np.concatenate([out[p * (nbytes // 4):p * (nbytes // 4) + k // 4].get() for p in range(4)]),
        cpu_k.delta_encode(host.reshape(-1)[:k], host_y.reshape(-1)[:k], 4, 2))
    checks.update({f"digests of '{k.strip()}'": np.array_equal(v, want_dg) for k, v in variant_dg.items()})
    same = all(checks.values())
    status |= not same

    def row(what: str, t: float, base_name: str, base_bw: float, counted: int, target: float) -> list[str]:
        bw = counted / t
        r = bw / base_bw
        return [what, f"{bw / 1e9:.0f} GB/s", f"{base_name} {base_bw / 1e9:.0f} GB/s", f"{r:.2f}",
                f">= {target}", "ok" if r >= target else "MISSED"]

    rows = [
        row("rowprints (XXH3-64 per row)", t_rp, "read", read_bw, nbytes, 0.75),
        row("full fingerprint (rowprints + BLAKE3 chunks + root)", t_fp, "read", read_bw, nbytes, 0.4),
        row("changed-row detection (both inputs)", t_eq, "read", read_bw, 2 * nbytes, 0.75),
        # Bytes moved on both sides: the delta reads two tables and writes one, the copy
        # reads one and writes one.
        row("XOR delta + byte-plane shuffle (bytes moved)", t_dx, "copy (bytes moved)", 2 * copy_bw,
            3 * nbytes, 0.7),
    ]

    def info(what: str, t: float, counted: int) -> list[str]:
        bw = counted / t
        return [what, f"{bw / 1e9:.0f} GB/s ({t * 1e3:.2f} ms)", f"read {read_bw / 1e9:.0f} GB/s",
                f"{bw / read_bw:.2f}", "(info)", ""]

    infos = [info(what, t, counted) for what, t, counted in variants]
    dev = cp.cuda.Device()
    props = cp.cuda.runtime.getDeviceProperties(dev.id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    print(f"\n### GPU check, {nbytes / 2**30:.2f} GiB table ({n} rows x {rb} bytes), "
          f"{datetime.date.today().isoformat()}\n")
    print(f"card: {name}; driver {cp.cuda.runtime.driverGetVersion()}; runtime "
          f"{cp.cuda.runtime.runtimeGetVersion()}; CuPy {cp.__version__}; embfmt {embfmt.__version__}; "
          f"bit-exact vs CPU: " + ", ".join(f"{c} {'yes' if ok else 'NO'}" for c, ok in checks.items()) + "\n")
    print("| what | GPU | baseline (same run) | ratio | target | |")
    print("|---|---|---|---|---|---|")
    for r in rows + infos:
        print("| " + " | ".join(r) + " |")
    missed = [r[0] for r in rows if r[-1] != "ok"]
    if missed:
        print(f"\ntargets missed: {'; '.join(missed)}")
    return int(status or bool(missed))


if __name__ == "__main__":
    raise SystemExit(main())
