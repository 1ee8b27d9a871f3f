"""Ctrl-C and SIGTERM: a clean stop, a complete WAV, the report, and exit 130 / 143."""

from __future__ import annotations

import signal

import numpy as np
import soundfile as sf

from remotemedia.engine.node import AudioFormat
from remotemedia.io.synth import SineSource
from tests.signal_support import CliRun, each_signal


def audio_written(path, seconds: float) -> bool:
    """The WAV being written holds `seconds` of audio (so the run is well under way)."""
    return path.exists() and path.stat().st_size > 44 + int(seconds * 48000 * 4)


@each_signal
def test_signal_finalizes_the_wav_and_prints_the_report(manifests_dir, tmp_path, sig, code,
                                                        reason):
    out = tmp_path / "live.wav"
    with CliRun(["stream", "--manifest", manifests_dir / "passthrough.yaml", "--input",
                 "sine:440", "--output", f"file:{out}", "--realtime", "--json"]) as run:
        run.wait_ready(lambda: audio_written(out, 0.5), "0.5 s of audio written")
        done = run.stop(sig)
    done.assert_clean_stop(sig)
    stats = done.report()
    assert stats["stop_reason"] == reason
    frames = stats["frames_out"]
    assert frames >= 25 and stats["frames_in"] == frames
    # A valid WAV holding every processed frame, sample for sample.
    info = sf.info(out)
    assert (info.samplerate, info.channels, info.subtype) == (48000, 1, "FLOAT")
    assert info.frames == frames * 960
    written, _ = sf.read(out, dtype="float32")
    source = SineSource(AudioFormat(48000, 1, 960), 440.0, 0.5)
    expected = np.concatenate([source.read() for _ in range(frames)])
    np.testing.assert_array_equal(written, expected)
    assert f"ended: {reason}" in done.stderr


def test_signal_stops_a_run_waiting_on_stdin(manifests_dir, tmp_path):
    import subprocess
    out = tmp_path / "stdin.wav"
    sock = tmp_path / "run.sock"
    with CliRun(["stream", "--manifest", manifests_dir / "passthrough.yaml", "--input", "raw:-",
                 "--output", f"file:{out}", "--json", "--monitor", sock],
                stdin=subprocess.PIPE) as run:
        run.proc.stdin.write(np.zeros(960 * 3, "<f4").tobytes())   # three frames, then nothing
        run.proc.stdin.flush()
        run.wait_monitor_frames(sock, 3)
        done = run.stop(signal.SIGTERM)        # stdin stays open: the read must not hang
    done.assert_clean_stop(signal.SIGTERM)
    assert done.report()["frames_out"] == 3
    assert sf.info(out).frames == 3 * 960


@each_signal
def test_a_signal_keeps_the_recording_whole_and_it_replays_identical(manifests_dir, tmp_path,
                                                                     sig, code, reason):
    import json
    import subprocess
    import sys
    rec = tmp_path / "rec"
    with CliRun(["stream", "--manifest", manifests_dir / "meter.yaml", "--input", "noise",
                 "--output", "null", "--realtime", "--json", "--events", "/dev/null",
                 "--record", rec]) as run:
        run.wait_ready(lambda: audio_written(rec / "output.wav", 0.5), "0.5 s recorded")
        done = run.stop(sig)
    done.assert_clean_stop(sig)
    stats = done.report()
    saved = json.loads((rec / "report.json").read_text())
    assert saved["stop_reason"] == stats["stop_reason"] == reason
    # every block is in the recording or counted as one its writer could not keep (a busy
    # machine's disk may fall behind a real-time run)
    kept = saved["recording"]["blocks_recorded"]
    assert kept + saved["recording"]["blocks_dropped"] == stats["frames_in"] >= 25
    assert sf.info(rec / "input.wav").frames == kept * 960
    again = subprocess.run([sys.executable, "-m", "remotemedia", "replay", str(rec), "--json"],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout.splitlines()[-1])["identical"] is True
