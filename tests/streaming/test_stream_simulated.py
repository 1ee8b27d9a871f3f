"""Minutes of audio in simulated time: counts exact, no copies, no serialization, seconds."""

from __future__ import annotations

import json
import subprocess
import time

from remotemedia.engine.session import Pipeline
from remotemedia.io.clock import SimulatedClock
from remotemedia.io.spec import make_source
from remotemedia.io.virtual import VirtualSink, VirtualSource
from remotemedia.runner import FINISHED, StreamRunner

FIVE_MINUTES = 300.0
FRAMES = 15000                      # 300 s of 20 ms blocks


def test_five_minutes_through_meter_in_simulated_time(manifests_dir):
    pipeline = Pipeline.from_manifest(manifests_dir / "meter.yaml")
    audio = pipeline.manifest.audio
    source = VirtualSource(audio, make_source("sine:440", audio))
    sink = VirtualSink(audio)
    clock = SimulatedClock(audio.block_size / audio.sample_rate)
    runner = StreamRunner(pipeline, source, sink, clock=clock, duration=FIVE_MINUTES)
    assert runner.realtime                              # a device end: paced, by this clock
    t0 = time.monotonic()
    stats = runner.run()
    wall = time.monotonic() - t0
    assert stats["frames_in"] == stats["frames_out"] == FRAMES
    assert sink.frames == FRAMES and sink.samples == FRAMES * 960
    assert stats["serialization_events"] == 0
    assert stats["copies"]["engine"] == 0
    assert stats["drops"] == 0 and stats["errors"] == 0
    assert stats["nodes"]["meter"]["calls"] == FRAMES
    assert clock.now() == (FRAMES - 1) * 0.02            # simulated time did advance
    assert runner.state == FINISHED and stats["stop_reason"] == "duration"
    # Not paced: five minutes of audio must not take five minutes (how fast it goes is for
    # benchmarks/bench_engine.py to say, not for a pass/fail test on a shared machine).
    assert wall < 300.0, f"5 minutes of audio took {wall:.1f} s of wall time: it was paced"


def test_fast_flag_runs_the_virtual_device_in_simulated_time(remotemedia_cmd, manifests_dir):
    t0 = time.monotonic()
    proc = subprocess.run(remotemedia_cmd + [
        "stream", "--manifest", str(manifests_dir / "meter.yaml"), "--duration", "300",
        "--fast", "--json"], capture_output=True, text=True, timeout=120)
    wall = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    # a level reading every 5 blocks, then the report
    assert len(lines) == FRAMES // 5 + 1
    assert all(json.loads(line)["type"] == "level" for line in lines[:-1])
    stats = json.loads(lines[-1])
    assert stats["frames_in"] == stats["frames_out"] == FRAMES
    assert stats["serialization_events"] == 0 and stats["copies"]["engine"] == 0
    assert wall < 90.0
    assert "virtual device" in proc.stderr and "as fast as possible" in proc.stderr
