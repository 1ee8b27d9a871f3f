"""Latency histograms for Prometheus, folded from the engine's latency rings by the monitor
thread (monitor/server.py; prometheus.py serves them)."""

from __future__ import annotations

import numpy as np

from ..engine.counters import RING_SIZE

#: Prometheus-style bucket bounds, in seconds. Engine and per-node latencies start at 1 us: a
#: Gain runs in about 2 us, a pass-through in under 1 us, and a lowest bucket of 10 us said
#: nothing about either. A 1-2-5 series up to one block period and beyond (20 ms at 48 kHz).
ENGINE_BUCKETS_S = (1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3,
                    1e-2, 2e-2, 5e-2, 1e-1)
NODE_BUCKETS_S = ENGINE_BUCKETS_S
E2E_BUCKETS_S = (0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0)


class LatencyHistogram:
    """Cumulative buckets over every latency a LatencyRing has seen, folded from the ring by
    the monitor thread (never by the audio thread). Values older than the ring's RING_SIZE when
    a fold comes are lost and counted in `missed` (at 20 folds a second and 50 blocks a second
    that never happens)."""

    def __init__(self, bounds_s: tuple[float, ...]):
        self.bounds_s = bounds_s
        self._bounds_ns = np.asarray(bounds_s) * 1e9
        self.counts = np.zeros(len(bounds_s) + 1, np.int64)   # per bucket, last is +Inf
        self.sum_s = 0.0
        self.missed = 0
        self._seen = 0

    def fold(self, ring) -> None:
        """Add the latency ring's values written since the last fold (us) to the buckets."""
        count = ring.count
        if count < self._seen:          # the stats were reset: start again from the ring
            self._seen = 0
        new = count - self._seen
        if new <= 0:
            return
        if new > RING_SIZE:
            self.missed += new - RING_SIZE
            new = RING_SIZE
        values = ring.last_ns(new)       # only the new slots (a tick's worth)
        self.counts += np.bincount(np.searchsorted(self._bounds_ns, values, side="left"),
                                   minlength=len(self.counts))
        self.sum_s += float(values.sum()) / 1e9
        self._seen = count

    def cumulative(self) -> list[tuple[str, int]]:
        """Cumulative counts per bucket upper bound (Prometheus `le`), the last for +Inf."""
        running = np.cumsum(self.counts)
        return [(repr(b), int(c)) for b, c in zip(self.bounds_s, running[:-1])] + \
            [("+Inf", int(running[-1]))]

    @property
    def total(self) -> int:
        """How many values were folded (their sum is `sum_s`)."""
        return int(self.counts.sum())


class StepRing:
    """A schedule step's latency ring (seconds, scaled by its fused share) seen as a
    LatencyRing for LatencyHistogram.fold: `count` and `last_ns(n)`. Read on the monitor
    thread; the engine writes the ring, never waits for this."""

    __slots__ = ("_step",)

    def __init__(self, step):
        self._step = step

    @property
    def count(self) -> int:
        """Latencies the step has recorded (completed calls)."""
        return self._step.latency_state()[0]

    def last_ns(self, n: int) -> np.ndarray:
        """The last `n` latencies in ns, oldest first (its share of a fused group's time)."""
        step = self._step
        count = step.latency_state()[0]
        n = min(count, n, RING_SIZE)
        values, mask, scale = step.latency_values, RING_SIZE - 1, 1e9 * step.share
        return np.array([values[i & mask] * scale for i in range(count - n, count)],
                        dtype=np.float64)


class NodeHistograms:
    """One LatencyHistogram per node of a session's schedule (NODE_BUCKETS_S), folded by the
    monitor thread; a new session (a restart) starts them again."""

    def __init__(self):
        self.session = None
        self.by_node: dict[str, tuple[str, StepRing, LatencyHistogram]] = {}

    def fold(self, session) -> None:
        """Fold each node's new latencies (`session` a Session; None does nothing)."""
        if session is None:
            return
        if session is not self.session:
            self.session = session
            self.by_node = {step.node_id: (step.node_type, StepRing(step),
                                           LatencyHistogram(NODE_BUCKETS_S))
                            for step in session.schedule.steps}
        for _, ring, hist in self.by_node.values():
            hist.fold(ring)
