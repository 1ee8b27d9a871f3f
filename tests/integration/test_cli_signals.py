"""Ctrl-C and SIGTERM: a clean stop, a complete WAV, the report, and exit 130 / 143."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import numpy as np
import pytest
import soundfile as sf

from remotemedia.engine.node import AudioFormat
from remotemedia.io.synth import SineSource


def wait_for_audio(path, proc, seconds_of_audio: float, timeout: float = 30.0) -> None:
    """Until the WAV being written holds some audio (so the run is well under way)."""
    deadline = time.monotonic() + timeout
    want_bytes = 44 + int(seconds_of_audio * 48000 * 4)
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        if path.exists() and path.stat().st_size > want_bytes:
            return
        time.sleep(0.05)
    pytest.fail("the stream did not start writing")


@pytest.mark.parametrize("sig,code,reason", [(signal.SIGINT, 130, "interrupted"),
                                              (signal.SIGTERM, 143, "terminated")])
def test_signal_finalizes_the_wav_and_prints_the_report(remotemedia_cmd, manifests_dir,
                                                        tmp_path, sig, code, reason):
    out = tmp_path / "live.wav"
    proc = subprocess.Popen(remotemedia_cmd + [
        "stream", "--manifest", str(manifests_dir / "passthrough.yaml"), "--input",
        "sine:440", "--output", f"file:{out}", "--realtime", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_audio(out, proc, seconds_of_audio=0.5)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr
    stats = json.loads(stdout.splitlines()[-1])
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
    assert f"ended: {reason}" in stderr


def test_signal_stops_a_run_waiting_on_stdin(remotemedia_cmd, manifests_dir, tmp_path):
    from remotemedia.monitor.client import MonitorClient
    from remotemedia.monitor.protocol import socket_listening
    from remotemedia.testing import wait_until
    out = tmp_path / "stdin.wav"
    sock = tmp_path / "run.sock"
    proc = subprocess.Popen(remotemedia_cmd + [
        "stream", "--manifest", str(manifests_dir / "passthrough.yaml"), "--input", "raw:-",
        "--output", f"file:{out}", "--json", "--monitor", str(sock)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        proc.stdin.write(np.zeros(960 * 3, "<f4").tobytes())   # three frames, then nothing
        proc.stdin.flush()
        # until the three frames are out (the monitor says so), however slow the machine
        wait_until(lambda: proc.poll() is not None or socket_listening(sock),
                   "the run's monitor socket", timeout=60)
        with MonitorClient.attach(str(sock)) as client:
            for msg in client.messages(timeout=60):
                if msg.get("type") == "snapshot" and (msg.get("stats") or {}).get(
                        "frames_out", 0) >= 3:
                    break
        proc.send_signal(signal.SIGTERM)        # stdin stays open: the read must not hang
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, stderr
    stats = json.loads(stdout.splitlines()[-1])
    assert stats["frames_out"] == 3
    assert sf.info(out).frames == 3 * 960
