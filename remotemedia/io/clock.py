"""Clocks that pace a stream: real time against a monotonic clock, or simulated time.

Frame N is due at start + N x period. Computing each deadline from the start, never from the
last wake-up, keeps long runs from drifting: a late wake-up shortens the next wait.
"""

from __future__ import annotations

import time


class Clock:
    """`start()`, then `wait_for_frame(n)` before releasing frame n; `now()` is seconds since
    start on this clock."""

    def __init__(self, period_s: float):
        if period_s <= 0:
            raise ValueError("period must be positive")
        self.period_s = period_s

    def start(self) -> None:
        """Set time zero: now() counts from here. Called once by the runner before the first
        block."""
        raise NotImplementedError

    def now(self) -> float:
        """Seconds since start() on this clock (real or simulated)."""
        raise NotImplementedError

    def wait_for_frame(self, n: int) -> float:
        """Block until frame n is due; return how late it is released, in seconds (>= 0)."""
        raise NotImplementedError


class RealtimeClock(Clock):
    """Paces against time.monotonic(); sleeps most of the wait, then yields briefly."""

    def start(self) -> None:
        """Time zero is time.monotonic() now."""
        self._t0 = time.monotonic()

    def now(self) -> float:
        """Monotonic seconds since start()."""
        return time.monotonic() - self._t0

    def wait_for_frame(self, n: int) -> float:
        """Sleep until block n is due (n x period after start), sleeping most of the wait and
        yielding for the last half millisecond; returns how late it is released, in seconds."""
        due = n * self.period_s
        while True:
            remaining = due - self.now()
            if remaining <= 0:
                return -remaining
            # Sleep granularity on Linux is ~50-100 us; wake slightly early, then finish.
            time.sleep(remaining - 0.0005 if remaining > 0.002 else remaining)


class SimulatedClock(Clock):
    """Time that advances by one period per frame and never sleeps: deterministic and fast."""

    def start(self) -> None:
        """Simulated time zero."""
        self._now = 0.0

    def now(self) -> float:
        """Simulated seconds: the due time of the last block waited for."""
        return self._now

    def wait_for_frame(self, n: int) -> float:
        """Jump to block n's due time at once (never sleeps); returns 0.0."""
        self._now = max(self._now, n * self.period_s)
        return 0.0
