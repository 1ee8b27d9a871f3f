"""Strict RFC 8259 JSON for everything remotemedia writes (events, reports, saved stats).

Python's `json` writes `NaN`, `Infinity` and `-Infinity` by default, which no strict parser
(JavaScript's JSON.parse, Go, Rust's serde_json, jq) accepts. Here a float that is not finite is
written as `null`, and the object holding it says so in a `"non_finite"` list naming the fields
(`"ratio"`, or `"values[3]"` for an item of a list), so a reader can tell a missing value from
a broken one. numpy scalars become plain numbers and arrays become lists (each counted as a
serialization by the caller's `default`, where one is given).
"""

from __future__ import annotations

import json
import math
from typing import Any, Callable

import numpy as np

FLAG = "non_finite"


def clean(value: Any) -> Any:
    """`value` with every non-finite float replaced by None and flagged (see the module)."""
    out, _ = _clean(value, "")
    return out


def _clean(value: Any, path: str) -> tuple[Any, list[str]]:
    if isinstance(value, float) or isinstance(value, np.floating):
        f = float(value)
        return (f, []) if math.isfinite(f) else (None, [path])
    if isinstance(value, dict):
        out: dict = {}
        flagged: list[str] = []
        for key, item in value.items():
            cleaned, bad = _clean(item, str(key))
            out[key] = cleaned
            flagged.extend(bad)
        if flagged:
            previous = out.get(FLAG)
            names = list(previous) if isinstance(previous, list) else []
            out[FLAG] = names + [f for f in flagged if f not in names]
        return out, []
    if isinstance(value, (list, tuple)):
        items = []
        flagged = []
        for i, item in enumerate(value):
            cleaned, bad = _clean(item, f"{path}[{i}]")
            items.append(cleaned)
            flagged.extend(bad)
        return items, flagged
    if isinstance(value, np.ndarray) and value.dtype.kind == "f" and value.size:
        return _clean(value.tolist(), path)
    return value, []


def dumps(value: Any, *, default: Callable[[Any], Any] | None = None, **kwargs) -> str:
    """json.dumps that never writes NaN or Infinity (raises ValueError if one slips through
    a `default` hook)."""
    def strict_default(obj):
        converted = default(obj) if default is not None else _numpy_default(obj)
        return clean(converted)
    return json.dumps(clean(value), default=strict_default, allow_nan=False, **kwargs)


def _numpy_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")
