"""Opening matrices stored in files (kept for compatibility: see :mod:`embfmt.formats`)."""

from __future__ import annotations

from .formats import FORMATS, detect_format, open_matrix, read, read_safetensors_header

__all__ = ["FORMATS", "detect_format", "open_matrix", "read", "read_safetensors_header"]
