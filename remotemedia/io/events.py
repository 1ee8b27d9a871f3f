"""Non-audio outputs (RuntimeData.Json, Text, Control, Binary) as JSON records: the one shape
`stream` writes as JSON lines, recordings keep, replays compare and batch reports count.

A Json value that is a dict (a meter's reading, a detector's event) is the record itself;
anything else is wrapped with its kind and pts. Arrays inside an event are encoded as lists,
and each such encode is counted as a serialization event (engine/serialization.py). Write the
records with `remotemedia.engine.strictjson.dumps(record, default=json_default)`.
"""

from __future__ import annotations

import numpy as np


def event_record(data) -> dict:
    """The JSON record of one non-audio output (see the module docstring)."""
    kind = data.kind
    pts = getattr(data, "pts", None)
    if kind == "json":
        if isinstance(data.value, dict):
            return data.value
        return {"type": "json", "pts": pts, "value": data.value}
    if kind == "text":
        return {"type": "text", "pts": pts, "text": data.text}
    if kind == "control":
        return {"type": "control", "pts": pts, "event": data.event}
    if kind == "binary":
        return {"type": "binary", "pts": pts, "bytes": len(data.data)}
    return {"type": kind, "pts": pts}


def json_default(value):
    """`default` hook for JSON encoders: numpy scalars as numbers, arrays as lists (counted
    as one serialization each), anything else as its str()."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        from .engine.serialization import record_encode
        record_encode(value, "json")  # an array in an event is a serialization: count it
        return value.tolist()
    return str(value)
