"""Real time against the monotonic clock: the right number of frames, and no drift.

Bounds are generous (the machines are shared and noisy); a drifting clock still fails them,
because its error grows with every frame while scheduling noise does not."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time

from remotemedia.engine.session import Pipeline
from remotemedia.io.virtual import VirtualSink, VirtualSource
from remotemedia.runner import StreamRunner

PERIOD = 0.02


class ArrivalSink(VirtualSink):
    """The virtual output, noting when each frame arrives."""

    def __init__(self, fmt):
        super().__init__(fmt)
        self.arrivals: list[float] = []

    def write(self, frame) -> None:
        self.arrivals.append(time.monotonic())
        super().write(frame)


def test_three_seconds_in_real_time_without_drift(manifests_dir):
    pipeline = Pipeline.from_manifest(manifests_dir / "passthrough.yaml")
    audio = pipeline.manifest.audio
    sink = ArrivalSink(audio)
    runner = StreamRunner(pipeline, VirtualSource(audio), sink, duration=3.0)
    t0 = time.monotonic()
    stats = runner.run()
    wall = time.monotonic() - t0
    assert 149 <= runner.frames_released <= 151
    assert abs(stats["frames_out"] - 150) <= 1
    assert 2.9 < wall < 6.0
    # Offset of each frame from its due time on one timeline: with no drift the offsets at the
    # end match the ones at the start; a clock that drifted by 1% would be 30 ms off by then.
    offsets = [t - sink.arrivals[0] - n * PERIOD for n, t in enumerate(sink.arrivals)]
    drift = statistics.median(offsets[-20:]) - statistics.median(offsets[:20])
    assert abs(drift) < PERIOD, f"drifted {drift * 1000:.1f} ms over 3 s"
    last_frame_due = (len(sink.arrivals) - 1) * PERIOD
    assert sink.arrivals[-1] - sink.arrivals[0] >= last_frame_due - 0.002   # never early


def test_default_device_streams_in_real_time_from_the_cli(remotemedia_cmd, manifests_dir):
    t0 = time.monotonic()
    proc = subprocess.run(remotemedia_cmd + [
        "stream", "--manifest", str(manifests_dir / "passthrough.yaml"), "--duration", "3",
        "--json"], capture_output=True, text=True, timeout=60,
        # the virtual device even where a sound device (or the test JACK server) exists
        env={**os.environ, "REMOTEMEDIA_DEFAULT_DEVICE": "virtual"})
    wall = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr
    stats = json.loads(proc.stdout.strip().splitlines()[-1])
    assert abs(stats["frames_in"] - 150) <= 1
    assert 0.8 < stats["realtime_factor"] < 1.2
    assert wall > 2.9
    assert "virtual device" in proc.stderr and "real time" in proc.stderr


def test_realtime_flag_paces_a_file_input(remotemedia_cmd, manifests_dir, tmp_path):
    import numpy as np
    import soundfile as sf
    wav = tmp_path / "one.wav"
    sf.write(wav, np.zeros(48000, np.float32), 48000)
    t0 = time.monotonic()
    proc = subprocess.run(remotemedia_cmd + [
        "stream", "--manifest", str(manifests_dir / "passthrough.yaml"), "--input",
        f"file:{wav}", "--output", "null", "--realtime", "--json"],
        capture_output=True, text=True, timeout=60)
    wall = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1])["frames_out"] == 50
    assert wall > 0.95
