"""The environment recorded with every commit: library versions, OS, CPU, GPU when used."""

from __future__ import annotations

import platform
import sys
from importlib import metadata
from typing import Any

from ._version import __version__

__all__ = ["capture_environment", "cpu_model"]


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what :mod:`platform` knows of it: the
    ``cpu`` entry of :func:`capture_environment`, also printed by ``benchmarks/bench_peers.py``.

    Examples
    --------
    >>> cpu_model() == capture_environment()["cpu"] != ""
    True
    """
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def capture_environment(backend: str | None = None) -> dict[str, Any]:
    """What produced a commit, so results can be traced to where they came from.

    Examples
    --------
    >>> env = capture_environment("cpu")
    >>> sorted(env)[:3]
    ['backend', 'blake3', 'byteorder']
    """
    env: dict[str, Any] = {
        "embfmt": __version__,
        "python": platform.python_version(),
        "numpy": _version("numpy"),
        "numba": _version("numba"),
        "blake3": _version("blake3"),
        "zstandard": _version("zstandard"),
        "os": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "byteorder": sys.byteorder,
        "backend": backend,
    }
    if backend == "gpu":  # only probe the GPU when it was actually used
        try:
            import cupy

            props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
            env["gpu"] = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
            env["cuda_driver"] = cupy.cuda.runtime.driverGetVersion()
            env["cupy"] = cupy.__version__
        except Exception as e:  # recording must not fail a commit; say why it is missing
            env["gpu"] = f"unavailable ({type(e).__name__})"
    return env
