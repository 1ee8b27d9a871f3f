"""Timing loops the benchmarks share."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np


def loop_times(step: Callable, items: list, warmup: int, pace_s: float = 0.0) -> np.ndarray:
    """ns per `step(item)` over `items`, after dropping the first `warmup`. `pace_s` sleeps
    before each step, as a live stream's blocks arrive."""
    times = np.empty(len(items), dtype=np.int64)
    clock = time.perf_counter_ns
    for i, item in enumerate(items):
        if pace_s:
            time.sleep(pace_s)
        t0 = clock()
        step(item)
        times[i] = clock() - t0
    return times[warmup:]


def push_times(session, frames: list, warmup: int, pace_s: float = 0.0) -> np.ndarray:
    """ns per `session.push(frame)` (loop_times), each push required to return exactly one
    output: its own frame back, a hop measured end to end. SystemExit (one line) when a push
    returns another number of outputs."""
    def push(frame) -> None:
        out = session.push(frame)
        if len(out) != 1:
            raise SystemExit(f"a push returned {len(out)} outputs, not its own frame back")
    return loop_times(push, frames, warmup, pace_s)
