"""A recording the TUI's R starts and stops mid-run keeps its own window: the block it joined
at, where its output starts, why it stopped and what it counted, not the run's totals; its
report draws input, output and events on that one time base."""

from __future__ import annotations

import pytest

from remotemedia.record import Recording
from tests.tui.conftest import make_app, wait_for
from tests.tui.test_app import SIZE, digits, notified, press


async def test_r_stopped_mid_run_keeps_its_own_window(tmp_path):
    app = make_app(tmp_path)   # meter.yaml: a gain, a meter reading every 5 blocks
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: digits(app, "frames-in") >= 20, "frames to flow")
        await press(pilot, "R")
        await notified(pilot, "recording to")
        recorder = app.recorder
        await wait_for(pilot, lambda: recorder._w >= 30, "30 blocks recorded")
        await press(pilot, "R")
        await wait_for(pilot, lambda: app.last_recording is not None, "the recording to close")
        await press(pilot, "q")
    rec = Recording(app.last_recording)
    first = int(rec.timeline["seq"][0])
    section = rec.report["recording"]
    assert first > 0 and section["first_seq"] == first
    assert section["first_pts"] == section["output_start_pts"] == first * 960
    assert section["stop_reason"] == "recording_stopped"
    assert rec.report["stop_reason"] is None          # the run went on
    # on a loaded machine the writer may fall a whole ring behind: the blocks it could not keep
    # are counted, never silently missing from the window
    kept = rec.blocks + rec.missing_blocks
    assert kept <= section["counts"]["frames_in"] <= kept + 3
    assert section["counts"]["frames_in"] < rec.report["frames_in"]
    assert section["counts"]["events_out"] == len(rec.events)

    pytest.importorskip("matplotlib")
    from remotemedia.report_figures import build_recording_figures, recording_counters
    figures = build_recording_figures(rec)
    levels = {line.get_gid(): line for line in figures["levels.png"][0].axes[0].lines}
    assert levels["levels:input"].get_xdata()[0] == levels["levels:output"].get_xdata()[0] \
        == first * 960 / 48000
    events = figures["events.png"][0].axes[0].lines
    assert [list(line.get_xdata()) for line in events] == \
        [[r["event"]["pts"] / 48000 for r in rec.events]]
    assert recording_counters(rec.report) == section["counts"]
    assert figures["counters.png"][1].startswith(
        f"counters: frames_in {section['counts']['frames_in']},")
