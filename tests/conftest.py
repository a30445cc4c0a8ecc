"""Shared fixtures: spec paths, the vector generator, and a backend fixture over every backend."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]
SPEC_DIR = REPO / "spec"
VECTOR_DIR = SPEC_DIR / "vectors" / "v1"


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("embfmt_generate_vectors",
                                                  SPEC_DIR / "tools" / "generate_vectors.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


GEN = _load_generator()


def _gpu_ok() -> tuple[bool, str]:
    from embfmt.backend import gpu_status

    return gpu_status()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    ok, why = _gpu_ok()
    if ok:
        return
    skip = pytest.mark.skip(reason=f"gpu test: {why}")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(params=["reference", "cpu", pytest.param("gpu", marks=pytest.mark.gpu)])
def backend(request: pytest.FixtureRequest) -> str:
    """Every backend by name; the gpu one skips visibly where CuPy or a device is missing."""
    return str(request.param)


@pytest.fixture
def gen() -> ModuleType:
    """spec/tools/generate_vectors.py, imported as a module."""
    return GEN


@pytest.fixture(autouse=True)
def _no_backend_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's EMBFMT_BACKEND must not change what the tests exercise.
    if "EMBFMT_BACKEND" in os.environ:
        monkeypatch.delenv("EMBFMT_BACKEND")


# ---- a real S3-compatible server on loopback (tests/s3server.py) ----------------------------
@pytest.fixture(scope="session")
def s3_server():  # type: ignore[no-untyped-def]
    """moto's S3 server as a child process on a free 127.0.0.1 port, for the whole session.
    Skips (visibly) only where moto[server] is not installed; the test extra installs it."""
    for mod in ("moto", "werkzeug", "flask"):
        if importlib.util.find_spec(mod) is None:
            pytest.skip(f"the S3 test server needs moto[server] ({mod} is missing): pip install -e '.[test]'")
    from tests.s3server import S3Server

    srv = S3Server()
    yield srv
    srv.close()


@pytest.fixture
def s3_bucket(s3_server):  # type: ignore[no-untyped-def]
    """A fresh bucket on the session's S3 server; emptied and removed after the test."""
    import uuid

    name = f"t-{uuid.uuid4().hex[:20]}"
    s3_server.create_bucket(name)
    yield name
    s3_server.remove_bucket(name)


@pytest.fixture
def s3_url(s3_bucket: str) -> str:
    """``s3://<fresh bucket>/repo``: open it with ``storage_options=s3_options``."""
    return f"s3://{s3_bucket}/repo"


@pytest.fixture
def s3_options(s3_server) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The session server's endpoint and (dummy) credentials as ``storage_options``."""
    return s3_server.client_options()


@pytest.fixture(params=["s3", "memory"])
def cas_store(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """An ObjectStore with compare-and-swap, once on the S3 server and once on memory://."""
    import uuid

    from embfmt.store import ObjectStore

    if request.param == "memory":
        return ObjectStore(f"memory://cas-{uuid.uuid4().hex}")
    return ObjectStore(request.getfixturevalue("s3_url"), request.getfixturevalue("s3_options"))
