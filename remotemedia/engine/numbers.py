"""Numbers from documents (manifests, scripts, recordings), checked without raising.

YAML and JSON integers are unbounded: `math.isfinite(10**400)` and `float(10**400)` raise
OverflowError, which turned a long run of zeros in a manifest into a traceback. Every check of
a document's number goes through here."""

from __future__ import annotations

import math


def finite_number(value) -> bool:
    """True for an int (not a bool: every int is finite, however long) or a finite float."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value)


def as_float(value) -> float | None:
    """`value` as a finite float, or None when it is not a number, not finite, or an int too
    large for a float (beyond 1.8e308)."""
    if not finite_number(value):
        return None
    try:
        return float(value)
    except OverflowError:
        return None


def shown(value, limit: int = 40) -> str:
    """repr(value) for a one-line message, cut to `limit` characters (a 400-digit integer is
    'an integer of 401 digits')."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"an integer of {len(str(abs(value)))} digits"
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."
