"""The TUI takes a file at another rate as `stream` does: converted at the boundary (with a
note), not refused; a file it cannot conform is refused with the app still up."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from tests.tui.conftest import make_app, wait_for
from tests.tui.test_app import SIZE, notified, press

DATA = Path(__file__).resolve().parents[1] / "data"


async def test_a_16khz_file_runs_converted_to_the_manifests_48khz(tmp_path):
    app = make_app(tmp_path, input_spec=str(DATA / "speech_fox_16k.wav"))   # meter.yaml, 48 kHz
    async with app.run_test(size=SIZE) as pilot:
        await notified(pilot, "converted")
        await wait_for(pilot, lambda: app.runner is not None and app.runner.session is not None
                       and app.runner.stats()["frames_in"] >= 10, "the file's blocks to flow")
        assert app.failure is None
        assert app.runner.pipeline.manifest.audio.sample_rate == 48000
        await press(pilot, "q")


async def test_a_file_that_cannot_be_conformed_is_refused_and_the_app_stays(tmp_path):
    wav = tmp_path / "six.wav"
    sf.write(wav, np.zeros((4800, 6), np.float32), 48000)   # 6 channels into a mono manifest
    app = make_app(tmp_path, input_spec=str(wav))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.failure is not None, "the refusal")
        assert "6" in app.failure and "\n" not in app.failure
        assert app.runner is None or not app.active
        await press(pilot, "q")
