"""The TUI's record key: R starts a recording of the running pipeline and R stops it; the
recording replays to the same audio. With nothing running it says so."""

from __future__ import annotations

import numpy as np
import soundfile as sf

from remotemedia.record import Recording
from remotemedia.replay import replay
from tests.streaming.device_support import load_allowance
from tests.tui.conftest import make_app, wait_for
from tests.tui.test_app import SIZE, digits, notified, press


async def test_r_starts_and_stops_a_recording_that_replays(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: digits(app, "frames-in") >= 10, "frames to flow")
        await press(pilot, "R")
        await notified(pilot, "recording to")
        recorder = app.recorder
        assert recorder is not None and recorder.path.parent == tmp_path / "stats"
        await wait_for(pilot, lambda: recorder._w >= 30, "30 blocks recorded")
        await press(pilot, "R")
        await wait_for(pilot, lambda: app.last_recording is not None, "the recording to close")
        await notified(pilot, "recorded")
        assert app.recorder is None and len(app.runner.observers) == 0
        await press(pilot, "q")
    rec = Recording(app.last_recording)
    seq = rec.timeline["seq"]
    assert rec.blocks >= 30 and seq[0] > 0          # it started mid-run ...
    # ... and kept every block in order, or counted the few its writer could not keep (a
    # whole ring behind: at ten times real time a busy machine can stall it that long)
    assert rec.report is not None
    dropped = rec.report["recording"]["blocks_dropped"]
    assert np.all(np.diff(seq) >= 1)
    assert seq[-1] - seq[0] + 1 <= rec.blocks + dropped
    assert dropped <= load_allowance(rec.blocks + dropped)
    data, _ = sf.read(rec.path / "input.wav", dtype="float32")
    assert data.shape[0] == rec.blocks * 960
    assert np.abs(data).max() > 0.4                  # the sine
    # gain and meter hold no state: the replay's audio is the recorded audio
    out, _ = rec.output()
    assert replay(rec).output.tobytes() == out.tobytes()


async def test_r_with_nothing_running_says_so(tmp_path):
    app = make_app(tmp_path, autostart=False)
    async with app.run_test(size=SIZE) as pilot:
        await press(pilot, "R")
        await notified(pilot, "nothing is running to record")
        assert app.recorder is None
        await press(pilot, "q")


async def test_a_run_that_ends_while_recording_finishes_the_recording(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: digits(app, "frames-in") >= 5, "frames to flow")
        await press(pilot, "R")
        await wait_for(pilot, lambda: app.recorder is not None and app.recorder._w >= 5,
                       "blocks recorded")
        await press(pilot, "space")   # stop the run
        await wait_for(pilot, lambda: app.last_recording is not None, "the recording to close")
        await press(pilot, "q")
    assert Recording(app.last_recording).blocks >= 5
