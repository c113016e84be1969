"""Random identifiers so tests share one database without stepping on each other."""

from __future__ import annotations

import uuid


def unique(prefix: str) -> str:
    """`prefix-` plus 10 random hex digits, upper-cased so it is also a valid SKU."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}".upper()
