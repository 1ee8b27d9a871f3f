"""A clock for tests: simulated time that a test moves by hand or lets run.

Modelled on trio's MockClock (trio/_core/_mock_clock.py): `rate` is how fast simulated time
runs against real time (0, the default, stands still between jumps: nothing ever sleeps), and
`jump(seconds)` moves it forward at once. With `autojump` (the default) a wait for a block that
is not due yet jumps straight to its due time, so a ten-minute stream runs in milliseconds and
every run is deterministic. It is a `remotemedia.io.clock.Clock`, so the runner takes it as is.
"""

from __future__ import annotations

import time

from ..engine.node import DEFAULT_BLOCK_SIZE, DEFAULT_SAMPLE_RATE

from ..io.clock import Clock


class MockClock(Clock):
    """Simulated seconds since `start()`.

    `period_s` is the block period the runner waits in; `rate` >= 0 the speed against real time;
    `autojump` makes `wait_for_frame` jump to the due time instead of waiting for it. Raises
    ValueError for a negative rate or jump."""

    def __init__(self, period_s: float = DEFAULT_BLOCK_SIZE / DEFAULT_SAMPLE_RATE, *, rate: float = 0.0, autojump: bool = True):
        super().__init__(period_s)
        if rate < 0:
            raise ValueError("rate must be >= 0")
        self._rate = float(rate)
        self.autojump = autojump
        self._base = 0.0                      # simulated seconds at the last rate change
        self._real0 = time.monotonic()
        self.jumps = 0

    @property
    def rate(self) -> float:
        """Simulated seconds per real second (0.0: time moves only by jump() and autojump)."""
        return self._rate

    @rate.setter
    def rate(self, value: float) -> None:
        """Changes the speed from now on, keeping now() continuous; ValueError if negative."""
        if value < 0:
            raise ValueError("rate must be >= 0")
        self._base = self.now()
        self._real0 = time.monotonic()
        self._rate = float(value)

    def start(self) -> None:
        """Time 0 is now; the run begins."""
        self._base = 0.0
        self._real0 = time.monotonic()

    def now(self) -> float:
        """Simulated seconds since start(): the base moved by jumps plus real time elapsed x
        rate."""
        return self._base + (time.monotonic() - self._real0) * self._rate

    def jump(self, seconds: float) -> None:
        """Move simulated time forward by `seconds` (>= 0) at once."""
        if seconds < 0:
            raise ValueError("time cannot jump backwards")
        self._base += seconds
        self.jumps += 1

    def wait_for_frame(self, n: int) -> float:
        """Until block n is due: jump there (autojump), or wait in real time at `rate`. Returns
        how late the block is released, in simulated seconds (>= 0)."""
        due = n * self.period_s
        now = self.now()
        if now >= due:
            return now - due
        if self.autojump or self._rate == 0:
            self._base += due - now
            return 0.0
        time.sleep((due - now) / self._rate)
        return max(0.0, self.now() - due)
