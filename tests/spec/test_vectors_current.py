"""The committed vectors must be exactly what the generator produces from the reference now."""

from __future__ import annotations

from ..conftest import GEN, VECTOR_DIR


def test_committed_vectors_are_current() -> None:
    stale = []
    for rel, obj in GEN.generate().items():
        path = VECTOR_DIR / rel
        if not path.exists() or path.read_text() != GEN.dumps(obj):
            stale.append(rel)
    assert not stale, (f"committed vectors differ from the generator: {stale}; "
                       "regenerate with `python spec/tools/generate_vectors.py` and commit them "
                       "together with the spec and code change that caused it")
