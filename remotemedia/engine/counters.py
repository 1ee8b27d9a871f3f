"""Counters and latency rings: cheap to update on the hot path, summarized on demand.

The hot path only increments ints and writes an int into a preallocated list slot; percentiles are
computed when someone asks (`stats()`), off the audio path.
"""

from __future__ import annotations

from dataclasses import dataclass, asdict
from typing import Any, Mapping

import numpy as np

RING_SIZE = 4096  # a power of two: the index wraps with a mask


class Counters:
    """Session-wide counts. Plain int attributes: `counters.drops += 1` is the whole cost."""

    __slots__ = ("frames_in", "frames_out", "events_out", "cow", "engine_copies", "io",
                 "drops", "errors", "input_overflow", "output_underflow")

    def __init__(self):
        self.reset()

    def reset(self):
        """Sets every count to 0 (frames, events, copies, drops, errors, xruns)."""
        self.frames_in = 0
        self.frames_out = 0
        self.events_out = 0
        self.cow = 0
        self.engine_copies = 0
        self.io = 0
        self.drops = 0
        self.errors = 0
        self.input_overflow = 0
        self.output_underflow = 0


class LatencyRing:
    """The last RING_SIZE latencies in nanoseconds, plus the all-time count and max."""

    __slots__ = ("values", "count", "max_ns")

    def __init__(self):
        self.values = [0] * RING_SIZE
        self.reset()

    def reset(self):
        """Forgets every latency: count and max to 0 (old values are overwritten as new ones
        come)."""
        self.count = 0
        self.max_ns = 0

    def add(self, ns: int) -> None:
        """Records one latency in ns: O(1), no allocation, safe only from one writer thread."""
        count = self.count
        self.values[count & (RING_SIZE - 1)] = ns   # the next slot follows from the count
        self.count = count + 1
        if ns > self.max_ns:
            self.max_ns = ns

    def last_ns(self, n: int) -> np.ndarray:
        """The last `n` latencies (fewer before n were recorded) in ns, oldest first, read
        straight from their slots: cheap enough for a UI's poll, unlike the whole window."""
        count = self.count
        n = min(count, n, RING_SIZE)
        values, mask = self.values, RING_SIZE - 1
        return np.array([values[i & mask] for i in range(count - n, count)], dtype=np.float64)

    def recent_ns(self) -> np.ndarray:
        """The recorded window in arrival order (oldest first)."""
        return window(self.values, self.count).astype(np.int64, copy=False)

    def summary_us(self) -> "LatencySummary | None":
        """p50/p95/p99 over the last RING_SIZE values and the all-time max, in us; None if empty."""
        return summarize(self.values, self.count, self.max_ns, 1e-3)


def window(values: list, count: int) -> np.ndarray:
    """The filled part of a ring whose next write goes to `count & (RING_SIZE - 1)`, in
    arrival order (oldest first)."""
    array = np.asarray(values)
    if count <= RING_SIZE:
        return array[:count]
    return np.roll(array, -(count & (RING_SIZE - 1)))


def summarize(values: list, count: int, max_value, to_us: float) -> "LatencySummary | None":
    """Percentiles of a ring's window and its all-time max, converted to microseconds."""
    if count == 0:
        return None
    p50, p95, p99 = np.percentile(window(values, count), (50, 95, 99)) * to_us
    return LatencySummary(p50=round(float(p50), 3), p95=round(float(p95), 3),
                          p99=round(float(p99), 3), max=round(float(max_value) * to_us, 3))


@dataclass(frozen=True)
class LatencySummary:
    """Percentiles over the recent window (RING_SIZE frames) and the all-time maximum, in us."""

    p50: float
    p95: float
    p99: float
    max: float

    def as_dict(self) -> dict:
        """The four figures as a dict of floats in us (p50, p95, p99, max)."""
        return asdict(self)


@dataclass(frozen=True)
class NodeStatistics:
    """One node's record, as the TUI and the report read it."""

    node_id: str
    node_type: str
    calls: int
    errors: int
    latency_us: LatencySummary | None
    #: an executor node's own figures (a Ray node's round trip per block), merged into the report
    executor: Mapping[str, Any] | None = None
    #: the ids of the linear nodes fused with this one into one multiply (this one included),
    #: or None; a fused node's latency is its share of the group's
    fused: tuple[str, ...] | None = None

    def as_dict(self) -> dict:
        """The node's entry in the stats report: type, calls, errors, latency_us {p50, p99, max}
        (zeros before the first call), the executor's own figures if any, and for a fused node
        `fused`: {"group": [ids], "share": the fraction of the group's time counted here}."""
        lat = self.latency_us
        out = {
            "type": self.node_type,
            "calls": self.calls,
            "errors": self.errors,
            "latency_us": ({"p50": lat.p50, "p99": lat.p99, "max": lat.max} if lat else
                           {"p50": 0.0, "p99": 0.0, "max": 0.0}),
        }
        if self.executor:
            out.update(self.executor)
        if self.fused:
            out["fused"] = {"group": list(self.fused), "share": round(1 / len(self.fused), 6)}
        return out
