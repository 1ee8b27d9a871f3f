"""The TUI's pure parts: number formats, meter geometry and ballistics, the graph text, the
manifest listing, and the snapshot taken from a runner."""

from __future__ import annotations

import numpy as np
import pytest

from remotemedia.engine.session import Pipeline
from remotemedia.io.base import Sink, Source
from remotemedia.io.clock import SimulatedClock
from remotemedia.nodes.analysis import SILENCE_DBFS
from remotemedia.runner import FINISHED, IDLE, StreamRunner
from remotemedia.tui.meters import (FALL_DB_PER_S, HOLD_S, LevelMeters, PeakHold, fraction,
                                    meter_bar, scale_line)
from remotemedia.tui.screens import list_manifests
from remotemedia.tui.snapshot import SPARK_FRAMES, capture
from remotemedia.tui.widgets import (CounterPanel, StateLine, edge_text, fmt_clock, fmt_count,
                                     fmt_us)

from .conftest import MANIFESTS


@pytest.mark.parametrize("n, text", [(0, "0"), (9999, "9999"), (10_000, "10.0k"),
                                     (99_999, "99.9k"), (100_000, "100k"), (999_999, "999k"),
                                     (1_000_000, "1.00M"), (9_999_999, "9.99M"),
                                     (99_999_999, "99.9M"), (123_456_789, "123M")])
def test_counts_fit_five_characters(n, text):
    assert fmt_count(n) == text and len(text) <= 5


def test_latencies_and_clock_read_like_an_engineer_writes_them():
    assert fmt_us(None) == "—"
    assert fmt_us(41.25) == "41.2µs"
    assert fmt_us(1580.0) == "1.58ms"
    assert fmt_us(100_012.0) == "100.0ms"
    assert fmt_clock(61.5) == "01:01.500"
    assert fmt_clock(3723.25) == "1:02:03.250"


def test_peak_hold_holds_then_falls_and_clip_latches():
    hold = PeakHold()
    assert hold.level(0.0) == SILENCE_DBFS and not hold.clipped
    hold.update(-6.0, False, t=10.0)
    hold.update(-20.0, False, t=10.5)                  # lower peaks do not move the hold
    assert hold.level(10.0 + HOLD_S) == -6.0
    assert hold.level(10.0 + HOLD_S + 0.5) == pytest.approx(-6.0 - 0.5 * FALL_DB_PER_S)
    hold.update(-3.0, True, t=20.0)                    # a higher peak takes over at once
    assert hold.level(20.0) == -3.0 and hold.clipped
    hold.update(-40.0, False, t=60.0)
    assert hold.clipped                                # latched until reset
    hold.reset()
    assert not hold.clipped and hold.level(60.0) == SILENCE_DBFS


def test_meter_bar_lights_cells_up_to_the_level_and_marks_the_hold():
    width = 60                                         # one cell per dB
    assert fraction(-60.0) == 0.0 and fraction(0.0) == 1.0 and fraction(6.0) == 1.0
    bar = meter_bar(rms_dbfs=-30.0, peak_dbfs=-20.0, hold_dbfs=-10.0, width=width).plain
    assert len(bar) == width
    assert bar[:30] == "█" * 30                        # solid to the RMS level
    assert bar[30:40] == "█" * 10                      # the (dim) band up to the peak
    assert bar[50] == "▌"                              # the held peak
    assert set(bar[41:50]) == {"·"} and set(bar[51:]) == {"·"}
    silent = meter_bar(SILENCE_DBFS, SILENCE_DBFS, SILENCE_DBFS, width).plain
    assert set(silent) == {"·"}


def test_scale_marks_sit_under_their_levels():
    line = scale_line(60).plain
    assert len(line) == 60
    assert line.startswith("-60") and line.rstrip().endswith("0")
    assert line.index("-24") == 36 - 1            # -24 dBFS is 36 cells in; the label's
    assert line.index("-12") == 48 - 1            # middle character sits on it


def test_edges_print_chains_fan_out_and_fan_in_once_each():
    mix = Pipeline.from_manifest(MANIFESTS / "mix.yaml")
    assert edge_text(mix.edges()).plain.splitlines() == [
        "input ─▶ left, right", "left ─▶ mix", "right ─▶ mix", "mix ─▶ output"]
    five = Pipeline.from_manifest(MANIFESTS / "five.yaml")
    assert edge_text(five.edges()).plain == "input ─▶ a ─▶ b ─▶ c ─▶ d ─▶ e ─▶ output"


def test_counter_panel_flags_trouble_in_colour():
    stats = {"copies": {"engine": 2, "cow": 5, "io": 0}, "drops": 3, "errors": 0,
             "xruns": {"input_overflow": 0, "output_underflow": 1}}
    line = CounterPanel.line(stats)
    assert line.plain == ("copies engine 2 cow 5 io 0 │ xruns in 0 out 1 │ "
                          "faults drops 3 errors 0")
    styles = {line.plain[s.start:s.end]: str(s.style) for s in line.spans}
    assert "#ff4d4d" in styles["3"] and "#ff4d4d" in styles["1"]     # drops, xrun out
    assert "#f2c94c" in styles["2"]                                  # engine copies
    assert "#ff4d4d" not in styles["5"]                              # cow copies are normal


def test_state_line_says_why():
    text = StateLine.line("failed", "node 'x' failed: ValueError: nope", None, 0.02, True).plain
    assert "FAILED" in text and "BYPASS" in text and "node 'x' failed" in text
    text = StateLine.line("running", None, {"frames_in": 3000, "realtime_factor": 1.0},
                          0.02, False).plain
    assert "RUNNING" in text and "01:00.000" in text and "×1.00" in text


def test_manifest_listing_reads_names_and_flags_broken_files(tmp_path):
    entries = {e.path.name: e for e in list_manifests(MANIFESTS)}
    assert entries["meter.yaml"].name == "gain-and-meter"
    assert "LevelMeter" in entries["meter.yaml"].description
    (tmp_path / "bad.yaml").write_text("version: [\n")
    (tmp_path / "notes.txt").write_text("not a manifest")
    listed = list_manifests(tmp_path)
    assert [e.path.name for e in listed] == ["bad.yaml"] and listed[0].problem
    assert list_manifests(tmp_path / "missing") == []


class CountingSource(Source):
    def __init__(self, fmt, frames):
        super().__init__(fmt)
        self.left = frames

    def read(self):
        if self.left == 0:
            return None
        self.left -= 1
        return np.full(self.format.block_size, 0.25, np.float32)


class KeepSink(Sink):
    def write(self, frame):
        pass


def test_capture_reads_a_runner_before_during_and_after_a_run():
    pipeline = Pipeline.from_manifest(MANIFESTS / "gain.yaml")
    fmt = pipeline.manifest.audio
    runner = StreamRunner(pipeline, CountingSource(fmt, 400), KeepSink(fmt),
                          clock=SimulatedClock(0.02), measure_levels=True)
    before = capture(runner, t=1.0)
    assert before.state == IDLE and before.stats is None and before.engine_us == ()
    runner.run()
    after = capture(runner, t=2.0)
    assert after.state == FINISHED and after.reason == "end of input"
    assert after.stats["frames_in"] == 400 == after.stats["frames_out"]
    assert len(after.engine_us) == SPARK_FRAMES and all(v > 0 for v in after.engine_us)
    assert after.end_to_end_us is None
    assert after.levels.input_rms_dbfs == pytest.approx(-12.04, abs=0.01)
    assert after.levels.output_rms_dbfs == pytest.approx(-18.04, abs=0.01)  # 6 dB down
    runner.levels.input_rms_dbfs = 0.0                  # the snapshot holds a copy
    assert after.levels.input_rms_dbfs != 0.0


class OneLoudBlock(Source):
    """Quiet blocks, one of them (the third of ten) at full scale."""

    def __init__(self, fmt):
        super().__init__(fmt)
        self.n = 0

    def read(self):
        self.n += 1
        if self.n > 10:
            return None
        level = 1.0 if self.n == 3 else 0.01
        return np.full(self.format.block_size, level, np.float32)


def test_a_single_loud_block_between_polls_reaches_the_meter():
    pipeline = Pipeline.from_manifest(MANIFESTS / "passthrough.yaml")
    fmt = pipeline.manifest.audio
    runner = StreamRunner(pipeline, OneLoudBlock(fmt), KeepSink(fmt),
                          clock=SimulatedClock(0.02), measure_levels=True)
    runner.run()
    snap = capture(runner, t=5.0)
    assert snap.levels.input_peak_dbfs == -40.0               # the last block is quiet...
    assert snap.levels.input_peak_max_dbfs == 0.0             # ...the loud one is not lost
    assert (snap.levels.input_clips, snap.levels.output_clips) == (1, 1)
    assert runner.levels.input_peak_max_dbfs == SILENCE_DBFS  # the next poll starts over
    meters = LevelMeters()
    meters.show(snap.levels, snap.t)
    assert meters.clip_lit("input") and meters.clip_lit("output")
    assert meters.held_dbfs("input") == 0.0
    meters.reset()                                            # key r
    meters.show(capture(runner, t=5.1).levels, 5.1)           # no new clip: no light
    assert not meters.clip_lit("input") and meters.held_dbfs("input") == -40.0
    meters.reset(new_run=True)                                # a new run counts from 0 again
    meters.show(snap.levels, 6.0)
    assert meters.clip_lit("input")
