"""Non-audio outputs (RuntimeData.Json, Text, Control, Binary) as JSON records: the one shape
`stream` writes as JSON lines, recordings keep, replays compare and batch reports count.

A Json value that is a dict (a meter's reading, a detector's event) is the record itself;
anything else is wrapped with its kind and pts. Arrays inside an event are encoded as lists,
and each such encode is counted as a serialization event (engine/serialization.py). Write the
records with `remotemedia.engine.strictjson.dumps(record, default=json_default)`.

`EventQueue` hands outputs from the thread that runs the pipeline to the one that shows or
sends them (the TUI's event log, the monitor), bounded and without a lock.
"""

from __future__ import annotations

import collections
import time
from typing import Any, Iterator

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


class EventQueue:
    """Bounded hand-over of non-audio outputs from the thread that runs the pipeline to the
    thread that shows or sends them, without a lock. `post(data)` queues (epoch seconds, data)
    with one deque append (atomic under the GIL), or, when `capacity` are already waiting,
    drops it and counts it in `dropped`; it never blocks and never formats. `take()` removes
    and yields what is queued, oldest first. `posted` counts what was queued."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._waiting: collections.deque = collections.deque()
        self.posted = 0
        self.dropped = 0

    def post(self, data) -> None:
        """Queue one output with its wall-clock time, or count it in `dropped` when full."""
        waiting = self._waiting
        if len(waiting) >= self.capacity:
            self.dropped += 1
            return
        waiting.append((time.time(), data))
        self.posted += 1

    def take(self) -> Iterator[tuple[float, Any]]:
        """(epoch seconds, output) of each queued output, oldest first, each removed as it is
        taken (outputs posted meanwhile included)."""
        waiting = self._waiting
        while waiting:
            yield waiting.popleft()
