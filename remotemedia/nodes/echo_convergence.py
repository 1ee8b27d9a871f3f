"""EchoCancel's convergence bookkeeping: whether the canceller has the echo, when it first had
it, when it lost it and when it had it back, from one report window's ERLE at a time."""

from __future__ import annotations


class ConvergenceTracker:
    """Whether the canceller has the echo, one report window's ERLE at a time.

    `update(erle_db, time_s)`: erle_db the window's ERLE (dB; None when the far end was too
    little active to measure: the bot quiet), time_s the window's end (media time, s). Then:
    - converged: the first window at or above `converged_db` sets `converged_at_s`.
    - lost: once converged, a window below the floor (`converged_db`, or `dip_db` below the
      running average it had settled at) sets `lost_at_s` and `converged` false, at once.
      When the next window has no far end (the reply ended or was cut: its quiet end, or a
      barge-in's double talk, read low), that loss is taken back: the previous state returns,
      as if the low window had not been; a silent reference is no loss.
    - recovered: after a loss, a window back above the floor, or two in a row at or above
      `converged_db` within SETTLE_DB of each other (settled at a new level: the room
      changed; that level becomes the one it settled at), set `recovered_at_s` and
      `converged`."""

    SETTLE_DB = 3.0

    __slots__ = ("converged_db", "dip_db", "converged", "converged_at_s", "lost_at_s",
                 "recovered_at_s", "steady", "withdrawn", "_before", "_last")

    def __init__(self, converged_db: float, dip_db: float):
        self.converged_db = converged_db
        self.dip_db = dip_db
        self.converged = False
        self.converged_at_s: float | None = None
        self.lost_at_s: float | None = None
        self.recovered_at_s: float | None = None
        self.steady: float | None = None    # the ERLE it settled at (running average)
        #: losses taken back (a low window the far end's silence followed)
        self.withdrawn = 0
        # (lost_at_s, recovered_at_s) before a loss one window old: what a withdrawal restores
        self._before: tuple | None = None
        self._last: float | None = None     # the previous window's ERLE

    def floor(self) -> float:
        """Below this a window is low (dB)."""
        return self.converged_db if self.steady is None else max(
            self.converged_db, self.steady - self.dip_db)

    def update(self, erle_db: float | None, time_s: float) -> None:
        """Take one window (the class docstring says how)."""
        last, self._last = self._last, erle_db
        before, self._before = self._before, None
        if erle_db is None:
            if before is not None:           # the low window was the end of the far end
                self.lost_at_s, self.recovered_at_s = before
                self.converged = True
                self.withdrawn += 1
            return
        time_s = round(time_s, 3)
        if erle_db >= self.floor():
            if not self.converged:
                if self.converged_at_s is None:
                    self.converged_at_s = time_s
                else:
                    self.recovered_at_s = time_s
                self.converged = True
            self.steady = erle_db if self.steady is None else 0.8 * self.steady + 0.2 * erle_db
        elif self.converged:
            self._before = (self.lost_at_s, self.recovered_at_s)
            self.converged = False
            self.lost_at_s = time_s
            self.recovered_at_s = None
        elif (self.lost_at_s is not None and last is not None
              and min(erle_db, last) >= self.converged_db
              and abs(erle_db - last) <= self.SETTLE_DB):
            self.converged = True
            self.recovered_at_s = time_s
            self.steady = 0.5 * (erle_db + last)


__all__ = ["ConvergenceTracker"]
