"""Derived seeds: one user seed fans out into independent, named streams."""

from __future__ import annotations

import hashlib


def derive(seed: int, *purpose: object) -> int:
    """A 31-bit seed for ``purpose`` (e.g. ``("data",)`` or ``("reinit", 3)``) under ``seed``; stable across runs."""
    text = ":".join(str(p) for p in (int(seed), *purpose))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") & 0x7FFFFFFF
