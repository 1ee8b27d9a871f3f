"""Snapshot tests: the main screen and the help screen, from frozen data.

No runner moves here: `FrozenApp` shows one fixed Snapshot (counters, latencies, levels) of the
meter manifest, so the picture is the same on every machine. Update the pictures after a
deliberate change with `pytest tests/tui --snapshot-update` and look at them before committing.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from remotemedia.app import RemoteMediaApp
from remotemedia.runner import FAILED, RUNNING, Levels
from remotemedia.tui.snapshot import Snapshot

HERE = Path(__file__).resolve().parent

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


E2E_US = tuple(round(40_000 + 250 * math.sin(i / 5) + (900 if i % 29 == 3 else 0), 1)
               for i in range(150))

DEVICE_SNAPSHOT = Snapshot(
    state=RUNNING, reason=None,
    stats={**frozen_stats(),
           "latency_us": {"engine": {"p50": 52.0, "p95": 80.1, "p99": 131.9, "max": 655.0},
                          "end_to_end": {"p50": 40012.5, "p95": 40231.0, "p99": 40790.2,
                                         "max": 41210.7}},
           "copies": {"engine": 0, "cow": 0, "io": 3000},
           "xruns": {"input_overflow": 1, "output_underflow": 0},
           "device": {"mode": "queued", "host_api": "JACK Audio Connection Kit",
                      "input": "system", "output": "system"}},
    levels=Levels(input_rms_dbfs=-21.5, input_peak_dbfs=-14.2, output_rms_dbfs=-27.5,
                  output_peak_dbfs=-20.2),
    engine_us=ENGINE_US, end_to_end_us=E2E_US, t=100.0)


class FrozenApp(RemoteMediaApp):
    """The real app, showing a fixed snapshot and never starting a runner."""

    def __init__(self, snapshot: Snapshot, input_spec: str = "sine:440",
                 output_spec: str = "null", **kwargs):
        super().__init__("manifests/meter.yaml", input_spec, output_spec, autostart=False,
                         manifests_dir=HERE / "manifests", **kwargs)
        self.frozen = snapshot

    def take_snapshot(self) -> Snapshot:
        return self.frozen


@pytest.fixture
def in_repo(monkeypatch):
    # The title shows the manifest path as given; a relative one keeps the picture the same
    # wherever the repository is checked out. The manifest is a copy kept beside these tests,
    # so editing the shipped manifests/meter.yaml does not change the pictures.
    monkeypatch.chdir(HERE)


def test_main_screen(snap_compare, in_repo):
    assert snap_compare(FrozenApp(RUNNING_SNAPSHOT), terminal_size=SIZE)


def test_main_screen_failed_with_bypass(snap_compare, in_repo):
    app = FrozenApp(FAILED_SNAPSHOT)

    async def bypass_on(pilot):
        app.bypass = True
        app.poll()
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=bypass_on)


def test_main_screen_with_devices_at_both_ends(snap_compare, in_repo):
    """A device run: end-to-end latency appears under the engine's, the mode line names the
    device mode and host API, io copies and an xrun show in the counters."""
    assert snap_compare(FrozenApp(DEVICE_SNAPSHOT, "device:0", "device:0"), terminal_size=SIZE)


def test_help_screen(snap_compare, in_repo):
    assert snap_compare(FrozenApp(RUNNING_SNAPSHOT), press=["question_mark"],
                        terminal_size=SIZE)


def test_main_screen_at_80_by_24(snap_compare, in_repo):
    assert snap_compare(FrozenApp(RUNNING_SNAPSHOT), terminal_size=(80, 24))
