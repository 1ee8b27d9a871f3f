"""Record, replay, trace and measure against the JACK dummy server (real PortAudio streams):

- a run recorded from the JACK server (a jack_metro client feeding its input) replays in
  simulated time to the same output, bit for bit, and the same events; the recording holds the
  device's ADC and DAC times per block; the trace has the device's callbacks on their own track;
- `remotemedia latency` with the stream's output looped back to its input finds the round trip
  the loopback really has (1920 samples: measured by hand with a duplex callback stream, see
  /work/shared/DESIGN.md), and reports it beside what PortAudio claims.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import numpy as np
import pytest
import soundfile as sf
import yaml

from remotemedia.record import Recording
from remotemedia.replay import replay
from remotemedia.trace import DEVICE_TID, validate_trace
from tests.streaming.device_support import (_unavailable, jack_cmd,  # noqa: F401
                                            load_allowance,
                                            jack_device, jack_ports, new_ports)
from tests.unit.test_record_replay_sim import METERED

pytestmark = pytest.mark.device


@pytest.fixture
def metronome(jack_device):
    """A jack_metro client clicking 10 times a second; yields its output port."""
    if shutil.which("jack_metro") is None:
        _unavailable("jack_metro is not installed (Debian: jackd2 ships it)")
    name = f"rmmetro{os.getpid()}"
    proc = subprocess.Popen(["jack_metro", "-n", name, "-b", "600", "-f", "1000", "-A", "0.5",
                             "-D", "20"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            ports = [p for p in jack_ports() if p.startswith(name + ":")]
            if ports:
                break
            assert proc.poll() is None, "jack_metro exited"
            assert time.monotonic() < deadline, "jack_metro registered no port"
            time.sleep(0.05)
        yield ports[0]
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_run_recorded_from_jack_replays_bit_for_bit(jack_device, metronome, tmp_path,
                                                      remotemedia_cmd):
    manifest = tmp_path / "metered.yaml"
    manifest.write_text(yaml.safe_dump(METERED))
    rec_dir, trace = tmp_path / "rec", tmp_path / "trace.json"
    before = jack_ports()
    proc = subprocess.Popen(remotemedia_cmd + [
        "stream", "-m", str(manifest), "-i", f"device:{jack_device.index}", "-o",
        f"device:{jack_device.index}", "-d", "3", "--record", str(rec_dir), "--trace",
        str(trace), "--json", "--events", str(tmp_path / "events.jsonl")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    in_port, _ = new_ports(before, timeout=20)
    jack_cmd("jack_connect", metronome, in_port)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    stats = json.loads(out.strip().splitlines()[-1])
    assert stats["device"]["host_api"].startswith("JACK")

    rec = Recording(rec_dir)
    t = rec.timeline
    # every block the graph got is recorded (a loaded machine may make the device drop some)
    assert rec.blocks == stats["frames_in"] - stats["drops"] - stats["in_flight"] >= 140
    assert stats["recording"]["blocks_dropped"] == 0
    # real time, from PortAudio's clock
    assert np.isfinite(t["adc_time"]).all()
    assert np.all(np.diff(t["adc_time"]) > 0)
    played = np.isfinite(t["dac_time"])
    assert played.sum() >= rec.blocks - 2 - stats["drops"]
    assert np.all(t["dac_time"][played] > t["adc_time"][played])
    assert np.all(np.diff(t["arrival_us"]) >= 0) and t["arrival_us"][-1] > 2.5e6
    assert np.all(np.diff(t["capture_tick"]) >= 1)
    # PortAudio's flags of each block's capture callback: known (>= 0) for every block, and
    # none flagged unless the run counted an xrun
    assert (t["status"] >= 0).all()
    if stats["xruns"]["input_overflow"] == 0:
        assert not (t["status"] & 2).any()
    data, _ = sf.read(rec_dir / "input.wav", dtype="float32")
    assert np.abs(data).max() > 0.1, "the metronome's clicks reached the recorded input"

    result = replay(rec)
    recorded, rate = rec.output()
    assert rate == result.rate
    assert result.output.shape == recorded.shape
    assert result.output.tobytes() == recorded.tobytes(), "bit for bit"
    assert result.events == rec.events and len(rec.events) == stats["events_out"] >= 28
    assert result.stats["xruns"] == stats["xruns"]
    assert result.stats["frames_out"] == stats["frames_out"] == rec.blocks
    assert result.speed > 1.0

    doc = json.loads(trace.read_text())
    assert validate_trace(doc) == []
    callbacks = [e for e in doc["traceEvents"] if e["ph"] == "X" and e["tid"] == DEVICE_TID]
    assert len(callbacks) >= rec.blocks - 5
    assert sum(e["ph"] == "X" and e["cat"] == "block" for e in doc["traceEvents"]) == rec.blocks


def test_latency_finds_the_loopback_round_trip(jack_device, remotemedia_cmd):
    proc = subprocess.run(remotemedia_cmd + [
        "latency", "--input", str(jack_device.index), "--output", str(jack_device.index),
        "--jack-loopback", "--duration", "3", "--json"],
        capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    s = r["round_trip_samples"]
    if r["callbacks_flagged"] == 0:
        # no xrun: every click back, at exactly the loop's 1920 samples (JACK's two periods)
        assert r["clicks_found"] == r["clicks"] >= 8
        assert s["min"] == s["max"] == 1920 and s["jitter"] == 0
        assert r["round_trip_ms"]["mean"] == 40.0
        assert r["dropped_samples"] == r["added_samples"] == r["spurious_peaks"] == 0
    else:
        # a busy machine's xruns (each flagged) may cost a click or shift one by a period;
        # the loop's own round trip is still among those measured
        allowance = load_allowance(r["clicks"])
        assert r["callbacks_flagged"] <= load_allowance(150)
        assert r["clicks_missing"] <= allowance and r["clicks_found"] >= r["clicks"] - allowance
        assert s is not None and s["min"] <= 1920 <= s["max"], s
    assert r["reported"]["portaudio_latency_samples"] > 0
    assert r["reported"]["timestamps_samples"] > 0


def test_latency_without_a_loopback_finds_nothing_and_exits_1(jack_device, remotemedia_cmd):
    # the dummy server's capture ports are silent: no click comes back
    proc = subprocess.run(remotemedia_cmd + [
        "latency", "--input", str(jack_device.index), "--output", str(jack_device.index),
        "--duration", "1"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert "no click came back" in proc.stdout
