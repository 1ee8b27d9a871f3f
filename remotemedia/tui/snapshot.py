"""What the TUI shows, captured in one frozen record that the app polls from a runner.

The runner's thread never waits for the UI: the app reads plain attributes and the session's
counters from its own thread, a few tens of times a second, and every widget renders from the
resulting `Snapshot`. A test can build a Snapshot by hand to pin the look of the screen.

    runner thread:  source.read() -> session.push() -> sink.write()     (never blocks on the UI)
    UI thread:      every 1/POLL_HZ s: capture(runner) -> Snapshot -> widgets
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from ..engine.levels import SILENCE_DBFS

from ..runner import IDLE, RUNNING, Levels, StreamRunner, describe_reason

#: a running run whose sound device went away and is awaited (reconnect)
DEVICE_LOST = "device lost"

#: how many recent frames the latency sparklines show (3 s of 20 ms blocks)
SPARK_FRAMES = 150

@dataclass(frozen=True)
class Snapshot:
    """One poll of a run, in the form the widgets want.

    state:          idle, running, stopped, finished or failed; or DEVICE_LOST: running, with
                    its sound device gone and awaited (reason says which and why)
    reason:         one line saying why it stopped or failed, or None
    stats:          the stats report (Session.stats()), None before anything ran
    levels:         the most recent block levels at input and output, in dBFS
    engine_us:      recent engine latencies in microseconds, oldest first
    end_to_end_us:  recent ADC-to-DAC latencies in microseconds, or None without a device
    t:              monotonic time of the poll, in seconds (drives peak-hold decay)
    """

    state: str = IDLE
    reason: str | None = None
    stats: Mapping[str, Any] | None = None
    levels: Levels = field(default_factory=Levels)
    engine_us: Sequence[float] = ()
    end_to_end_us: Sequence[float] | None = None
    t: float = 0.0

    @property
    def running(self) -> bool:
        """The run is RUNNING (not idle, stopped, finished, failed, or running with its device
        lost); the level meters show live levels only then."""
        return self.state == RUNNING


def device_problem(runner: StreamRunner) -> str | None:
    """One line when a device end of a running run has lost its device and waits for it."""
    for end in (runner.source, runner.sink):
        problem = getattr(end, "problem", None)
        if problem:
            return problem
    return None


def capture(runner: StreamRunner, *, t: float,
            stats_override: Mapping[str, Any] | None = None) -> Snapshot:
    """Read a runner without stopping it. Safe while its thread runs: attribute reads and the
    session's own report, which computes percentiles on this (the UI's) thread.

    The one write: the highest-peak-since-last-read fields of `runner.levels` start over, so
    each poll sees the loudest block since the previous one. (A block measured between the copy
    and the reset is not lost from the meter's RMS or clip count, only from that maximum.)"""
    state = runner.state
    session = runner.session
    stats = None
    engine_us: Sequence[float] = ()
    e2e_us = None
    if session is not None:
        stats = stats_override if stats_override is not None else runner.stats()
        engine_us = tuple((session.engine_latency.last_ns(SPARK_FRAMES) / 1e3).tolist())
        if stats.get("latency_us", {}).get("end_to_end") is not None:
            e2e_us = tuple((session.end_to_end_latency.last_ns(SPARK_FRAMES) / 1e3).tolist())
    live = runner.levels
    levels = dataclasses.replace(live)
    live.input_peak_max_dbfs = live.output_peak_max_dbfs = SILENCE_DBFS
    reason = describe_reason(runner)
    if state == RUNNING:
        problem = device_problem(runner)
        if problem is not None:
            state, reason = DEVICE_LOST, problem
    return Snapshot(state=state, reason=reason, stats=stats, levels=levels,
                    engine_us=engine_us, end_to_end_us=e2e_us, t=t)
