"""The command line with sound devices: `default` and `device:` SPECs, --mode, `devices`, and the
errors a user sees, against the JACK dummy server (and against no server at all)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.signal_support import CliRun, each_signal
from tests.streaming.device_support import (JACK_PERIOD, assert_clean_under_load,  # noqa: F401
                                            jack_device)

pytestmark = pytest.mark.device

BLOCK_US = JACK_PERIOD / 48000 * 1e6


def run(cmd: list[str], env: dict | None = None, timeout: float = 60):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def no_server_env() -> dict:
    # libjack looks for this server name, which nobody runs: PortAudio then sees no device,
    # exactly as on a machine without a sound card, while the test server keeps running.
    return {"JACK_DEFAULT_SERVER": f"remotemedia-none-{os.getpid()}",
            "REMOTEMEDIA_DEFAULT_DEVICE": ""}


def last_json(proc) -> dict:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_meter_default_to_default_reports_end_to_end_and_no_xruns(jack_device, remotemedia_cmd,
                                                                    manifests_dir):
    proc = run(remotemedia_cmd + ["stream", "--manifest", str(manifests_dir / "meter.yaml"),
                                  "--input", "default", "--output", "default", "--duration",
                                  "3", "--json"], env={"REMOTEMEDIA_DEFAULT_DEVICE": ""})
    stats = last_json(proc)
    assert_clean_under_load(stats, 150)
    e2e = stats["latency_us"]["end_to_end"]
    assert e2e is not None and e2e["p50"] > 0
    device = stats["device"]
    assert device["input"] == device["output"] == jack_device.name
    assert device["mode"] == "queued"  # the default
    assert abs(e2e["p50"] - (device["timestamp_latency_us"] + BLOCK_US)) < BLOCK_US / 2
    assert "virtual device" not in proc.stderr  # a real default device was there
    assert f"device {jack_device.name}" in proc.stderr
    assert "end-to-end latency p50" in proc.stderr
    assert "Jack" not in proc.stderr and "Traceback" not in proc.stderr


def test_callback_mode_from_the_cli_plays_in_the_capturing_callback(jack_device, remotemedia_cmd,
                                                                     manifests_dir):
    proc = run(remotemedia_cmd + ["stream", "-m", str(manifests_dir / "five.yaml"), "--input",
                                  f"device:{jack_device.index}", "--output",
                                  f"device:{jack_device.name}", "--mode", "callback",
                                  "--duration", "2", "--json"])
    stats = last_json(proc)
    assert stats["device"]["mode"] == "callback"
    assert stats["frames_in"] == stats["frames_out"] == 100
    e2e = stats["latency_us"]["end_to_end"]
    assert abs(e2e["p50"] - stats["device"]["timestamp_latency_us"]) < BLOCK_US / 2


def test_a_bad_device_name_exits_2_with_one_line_listing_devices(jack_device, remotemedia_cmd,
                                                                 manifests_dir):
    proc = run(remotemedia_cmd + ["stream", "-m", str(manifests_dir / "passthrough.yaml"),
                                  "--input", "device:no-such-card", "--duration", "1"])
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("remotemedia: error: no input device matches 'no-such-card'")
    assert f"{jack_device.index} '{jack_device.name}'" in lines[0]
    assert proc.stdout == ""


def test_callback_mode_needs_a_device_input(remotemedia_cmd, manifests_dir):
    proc = run(remotemedia_cmd + ["stream", "-m", str(manifests_dir / "passthrough.yaml"),
                                  "--input", "sine", "--output", "null", "--mode", "callback",
                                  "--duration", "1"])
    assert proc.returncode == 2
    assert "--mode callback runs the graph in the input device's audio callback" in proc.stderr


def test_devices_lists_host_apis_and_devices_marking_defaults(jack_device, remotemedia_cmd):
    proc = run(remotemedia_cmd + ["devices"])
    assert proc.returncode == 0, proc.stderr
    assert "JACK Audio Connection Kit" in proc.stdout
    mark = "*" if jack_device.default_input and jack_device.default_output else \
        ">" if jack_device.default_input else "<" if jack_device.default_output else " "
    assert f"{mark} {jack_device.index:2d}  {jack_device.name}  (JACK" in proc.stdout
    assert "2 in, 2 out, 48000 Hz" in proc.stdout
    listed = json.loads(run(remotemedia_cmd + ["devices", "--json"]).stdout)
    system = next(d for d in listed if d["index"] == jack_device.index)
    assert system["inputs"] == jack_device.max_input_channels
    assert system["default_samplerate"] == 48000.0


def test_without_any_device_default_falls_back_to_the_virtual_device_and_says_so(
        jack_device, remotemedia_cmd, manifests_dir):
    proc = run(remotemedia_cmd + ["stream", "-m", str(manifests_dir / "passthrough.yaml"),
                                  "--duration", "0.5", "--json"], env=no_server_env())
    stats = last_json(proc)
    assert stats["frames_out"] == 25
    assert stats["latency_us"]["end_to_end"] is None and "device" not in stats
    notes = [line for line in proc.stderr.splitlines() if "virtual device" in line
             and "'default'" in line]
    assert len(notes) == 1 and "PortAudio finds no sound device" in notes[0]
    assert "Jack" not in proc.stderr and "jack server" not in proc.stderr.lower()


def test_without_any_device_an_explicit_device_is_exit_2(jack_device, remotemedia_cmd,
                                                         manifests_dir):
    proc = run(remotemedia_cmd + ["stream", "-m", str(manifests_dir / "passthrough.yaml"),
                                  "--output", "device:system", "--duration", "0.5"],
               env=no_server_env())
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert errors == ["remotemedia: error: no output device matches 'system'; there are no "
                      "output devices (run `remotemedia devices` to check)"], proc.stderr


def test_resolve_default_names_the_server_device(jack_device, monkeypatch):
    from remotemedia.io.spec import resolve_default
    monkeypatch.delenv("REMOTEMEDIA_DEFAULT_DEVICE", raising=False)
    if jack_device.default_input:
        assert resolve_default("input") == f"device:{jack_device.index}"
    if jack_device.default_output:
        assert resolve_default("output") == f"device:{jack_device.index}"


def test_fast_makes_default_the_virtual_device_and_refuses_a_sound_device(
        jack_device, remotemedia_cmd, manifests_dir):
    fast = run(remotemedia_cmd + ["stream", "-m", str(manifests_dir / "passthrough.yaml"),
                                  "--duration", "5", "--fast", "--json"],
               env={"REMOTEMEDIA_DEFAULT_DEVICE": ""})
    stats = last_json(fast)
    assert stats["frames_out"] == 250 and "device" not in stats
    assert stats["duration_s"] < 2.5  # simulated time, not the device's
    proc = run(remotemedia_cmd + ["stream", "-m", str(manifests_dir / "passthrough.yaml"),
                                  "--input", f"device:{jack_device.index}", "--output", "null",
                                  "--duration", "5", "--fast"])
    assert proc.returncode == 2
    assert "--fast cannot hurry a sound device" in proc.stderr


@pytest.mark.parametrize("mode", ["queued", "callback"])
@each_signal
def test_a_signal_stops_a_device_stream_cleanly_with_every_frame_accounted(
        jack_device, manifests_dir, mode, tmp_path, sig, code, reason):
    sock = tmp_path / "run.sock"
    with CliRun(["stream", "-m", manifests_dir / "five.yaml", "--input",
                 f"device:{jack_device.index}", "--output", f"device:{jack_device.index}",
                 "--mode", mode, "--json", "--monitor", sock]) as run:
        run.wait_monitor_frames(sock, 21)
        done = run.stop(sig)
    done.assert_clean_stop(sig)
    stats = done.report()
    assert stats["stop_reason"] == reason
    assert stats["frames_out"] > 20
    assert stats["frames_in"] == stats["frames_out"] + stats["drops"] + stats["in_flight"]
    assert stats["device"]["unplayed_at_stop"] == 0


@pytest.mark.parametrize("mode", ["queued", "callback"])
def test_the_device_output_clips_and_counts_what_no_converter_can_play(jack_device, tmp_path,
                                                                       remotemedia_cmd, mode):
    # +60 dB on a half-scale tone: almost every sample is beyond full scale. The output
    # callback clips them (a converter would wrap or clip them silently) and the report says
    # how many, per sink; a clean run says 0.
    (tmp_path / "loud.yaml").write_text(
        "version: v1\naudio: {sample_rate: 48000, block_size: 960, channels: 1}\nnodes:\n"
        "  - {id: g, node_type: Gain, params: {db: 60}}\nconnections:\n"
        "  - {from: input, to: g}\n  - {from: g, to: output}\n")
    spec = f"device:{jack_device.index}"
    inp = spec if mode == "callback" else "sine:440"
    proc = run(remotemedia_cmd + ["stream", "-m", str(tmp_path / "loud.yaml"), "-i", inp,
                                  "-o", spec, "--duration", "1", "--json", "--mode", mode]
               if mode == "callback" else
               remotemedia_cmd + ["stream", "-m", str(tmp_path / "loud.yaml"), "-i", inp,
                                  "-o", spec, "--duration", "1", "--json"])
    stats = last_json(proc)
    (repairs,) = stats["sinks"].values()
    if mode == "queued":
        assert repairs["clipped"] > 40000 and repairs["non_finite"] == 0
    else:
        # The capture of a silent server is zeros: nothing to clip; the count stays exact.
        assert repairs == {"non_finite": 0, "clipped": 0}
