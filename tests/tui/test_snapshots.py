"""Snapshot tests: the main screen and the help screen, from frozen data.

No runner moves here: `FrozenApp` shows one fixed Snapshot (counters, latencies, levels) of the
meter manifest, so the picture is the same on every machine. Update the pictures after a
deliberate change with `pytest tests/tui --snapshot-update` and look at them before committing.
"""

from __future__ import annotations

import math

import pytest

from remotemedia.app import RemoteMediaApp
from remotemedia.runner import FAILED, RUNNING, Levels
from remotemedia.tui.snapshot import Snapshot

from .conftest import ROOT

SIZE = (120, 36)


def frozen_stats(frames: int = 3000, serialization: int = 0) -> dict:
    """A stats report of the meter manifest a minute into a run."""
    return {
        "frames_in": frames, "frames_out": frames, "events_out": frames,
        "duration_s": 60.0, "realtime_factor": 1.0,
        "serialization_events": serialization,
        "copies": {"engine": 0, "cow": 0, "io": 0},
        "drops": 0, "errors": 0,
        "xruns": {"input_overflow": 0, "output_underflow": 0},
        "latency_us": {"engine": {"p50": 41.2, "p95": 63.8, "p99": 88.5, "max": 412.0},
                       "end_to_end": None},
        "nodes": {
            "gain": {"type": "Gain", "calls": frames, "errors": 0,
                     "latency_us": {"p50": 9.8, "p99": 21.4, "max": 96.1}},
            "meter": {"type": "LevelMeter", "calls": frames, "errors": 0,
                      "latency_us": {"p50": 17.5, "p99": 39.9, "max": 180.3}},
        },
        "stop_reason": None,
    }


# A repeatable latency trace: a steady floor with a few scheduler hiccups.
ENGINE_US = tuple(round(40 + 6 * math.sin(i / 3) + (300 if i % 37 == 11 else 0), 1)
                  for i in range(150))

RUNNING_SNAPSHOT = Snapshot(
    state=RUNNING, reason=None, stats=frozen_stats(),
    levels=Levels(input_rms_dbfs=-9.0, input_peak_dbfs=-6.0, output_rms_dbfs=-15.0,
                  output_peak_dbfs=-12.0),
    engine_us=ENGINE_US, end_to_end_us=None, t=100.0)

FAILED_SNAPSHOT = Snapshot(
    state=FAILED, reason="node 'gain' failed: RuntimeError: exploded at frame 3000",
    stats={**frozen_stats(serialization=2), "errors": 1}, engine_us=ENGINE_US, t=100.0)


class FrozenApp(RemoteMediaApp):
    """The real app, showing a fixed snapshot and never starting a runner."""

    def __init__(self, snapshot: Snapshot, **kwargs):
        super().__init__("manifests/meter.yaml", "sine:440", "null", autostart=False,
                         manifests_dir=ROOT / "manifests", **kwargs)
        self.frozen = snapshot

    def take_snapshot(self) -> Snapshot:
        return self.frozen


@pytest.fixture
def in_repo(monkeypatch):
    # The title shows the manifest path as given; a relative one keeps the picture the same
    # wherever the repository is checked out.
    monkeypatch.chdir(ROOT)


def test_main_screen(snap_compare, in_repo):
    assert snap_compare(FrozenApp(RUNNING_SNAPSHOT), terminal_size=SIZE)


def test_main_screen_failed_with_bypass(snap_compare, in_repo):
    app = FrozenApp(FAILED_SNAPSHOT)

    async def bypass_on(pilot):
        app.bypass = True
        app.poll()
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=bypass_on)


def test_help_screen(snap_compare, in_repo):
    assert snap_compare(FrozenApp(RUNNING_SNAPSHOT), press=["question_mark"],
                        terminal_size=SIZE)


def test_main_screen_at_80_by_24(snap_compare, in_repo):
    assert snap_compare(FrozenApp(RUNNING_SNAPSHOT), terminal_size=(80, 24))
