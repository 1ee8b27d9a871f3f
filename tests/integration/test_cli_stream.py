"""`remotemedia stream` as a user runs it: the report, events, raw pipes, status, failures."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import time

import pytest
import soundfile as sf

from tests.conftest import sine
from tests.signal_support import CliRun
from remotemedia.testing import chain, to_yaml

REPORT_KEYS = {"frames_in", "frames_out", "duration_s", "realtime_factor",
               "serialization_events", "copies", "drops", "errors", "xruns", "latency_us",
               "nodes"}


def run(cmd, **kw):
    kw.setdefault("timeout", 60)
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


@pytest.fixture
def ten_frames(tmp_path):
    path = tmp_path / "ten.wav"
    sf.write(path, sine(seconds=0.2), 48000, subtype="FLOAT")
    return path


def test_json_report_is_the_last_line_and_follows_the_contract(remotemedia_cmd, manifests_dir,
                                                               ten_frames):
    proc = run(remotemedia_cmd + ["stream", "--manifest", str(manifests_dir / "mix.yaml"),
                                  "--input", f"file:{ten_frames}", "--output", "null",
                                  "--json"])
    assert proc.returncode == 0, proc.stderr
    stats = json.loads(proc.stdout.splitlines()[-1])
    assert REPORT_KEYS <= set(stats)
    assert set(stats["copies"]) == {"engine", "cow", "io"}
    assert set(stats["xruns"]) == {"input_overflow", "output_underflow"}
    assert set(stats["latency_us"]["engine"]) == {"p50", "p95", "p99", "max"}
    assert stats["latency_us"]["end_to_end"] is None
    assert set(stats["nodes"]) == {"left", "right", "mix"}
    assert stats["frames_in"] == stats["frames_out"] == 10
    assert stats["stop_reason"] == "end_of_input"
    # The human summary is on stderr, not stdout.
    assert "10 frames in, 10 out" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_without_json_stdout_is_empty(remotemedia_cmd, manifests_dir, ten_frames):
    proc = run(remotemedia_cmd + ["stream", "--manifest", str(manifests_dir / "gain.yaml"),
                                  "--input", f"file:{ten_frames}", "--output", "null"])
    assert proc.returncode == 0 and proc.stdout == ""
    assert "engine latency p50" in proc.stderr


def test_events_go_to_stdout_before_the_report(remotemedia_cmd, ten_frames, tmp_path):
    manifest = tmp_path / "meter_out.yaml"
    manifest.write_text(to_yaml(chain(("meter", "LevelMeter"))))
    proc = run(remotemedia_cmd + ["stream", "--manifest", str(manifest), "--input",
                                  f"file:{ten_frames}", "--output", "null", "--json"])
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 11
    readings = [json.loads(line) for line in lines[:-1]]
    assert [r["type"] for r in readings] == ["level"] * 10
    assert [r["seq"] for r in readings] == list(range(10))
    assert all(-10.0 < r["rms_dbfs"] < -8.0 for r in readings)   # a 0.5 sine: -9.03 dBFS
    stats = json.loads(lines[-1])
    assert stats["events_out"] == 10 and stats["frames_out"] == 10


def test_events_file_keeps_stdout_for_the_report(remotemedia_cmd, ten_frames, tmp_path,
                                                 plugin_env):
    manifest = tmp_path / "talk.yaml"
    manifest.write_text(to_yaml(chain(("talk", "rm_test_nodes:Talker"))))
    events = tmp_path / "events.jsonl"
    proc = run(remotemedia_cmd + ["stream", "--manifest", str(manifest), "--input",
                                  f"file:{ten_frames}", "--output", "null", "--json",
                                  "--events", str(events), "--allow-import", "rm_test_nodes"],
               env=plugin_env)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 1
    records = [json.loads(line) for line in events.read_text().splitlines()]
    assert records[0] == {"type": "text", "pts": 0, "text": "frame 0"}
    assert [r["text"] for r in records] == [f"frame {i}" for i in range(10)]


def test_raw_stdin_to_raw_stdout_is_byte_exact(remotemedia_cmd, manifests_dir):
    x = sine(seconds=0.1)[:4321]                        # 4 full blocks and a short one
    proc = subprocess.run(remotemedia_cmd + [
        "stream", "--manifest", str(manifests_dir / "passthrough.yaml"), "--input", "raw:-",
        "--output", "raw:-"], input=x.astype("<f4").tobytes(), capture_output=True,
        timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == x.astype("<f4").tobytes()
    assert b"5 frames in, 5 out" in proc.stderr


def test_strict_fails_at_the_first_serialization(remotemedia_cmd, ten_frames, tmp_path,
                                                 plugin_env):
    manifest = tmp_path / "pickle.yaml"
    manifest.write_text(to_yaml(chain(("p", "rm_test_nodes:Pickler"))))
    base = remotemedia_cmd + ["stream", "--manifest", str(manifest), "--input",
                              f"file:{ten_frames}", "--output", "null", "--json",
                              "--allow-import", "rm_test_nodes"]
    counted = run(base, env=plugin_env)
    assert counted.returncode == 0, counted.stderr
    assert json.loads(counted.stdout.splitlines()[-1])["serialization_events"] == 10
    strict = run(base + ["--strict"], env=plugin_env)
    assert strict.returncode == 1
    errors = [line for line in strict.stderr.splitlines()
              if line.startswith("remotemedia: error")]
    assert len(errors) == 1 and "strict serialization" in errors[0]
    assert "Traceback" not in strict.stderr
    assert json.loads(strict.stdout.splitlines()[-1])["serialization_events"] == 1


def test_a_node_failing_mid_run_exits_1_and_keeps_what_was_written(remotemedia_cmd, tmp_path,
                                                                   ten_frames, plugin_env):
    manifest = tmp_path / "boom.yaml"
    manifest.write_text(to_yaml(chain(("boom", "rm_test_nodes:Boom", {"at": 5}))))
    out = tmp_path / "partial.wav"
    proc = run(remotemedia_cmd + ["stream", "--manifest", str(manifest), "--input",
                                  f"file:{ten_frames}", "--output", f"file:{out}", "--json",
                                  "--allow-import", "rm_test_nodes"], env=plugin_env)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "remotemedia: error: node 'boom' failed: RuntimeError: boom" in proc.stderr
    stats = json.loads(proc.stdout.splitlines()[-1])
    assert stats["frames_out"] == 4 and stats["stop_reason"] == "error"
    assert sf.info(out).frames == 4 * 960


def read_pty(master: int, proc: subprocess.Popen, timeout: float) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:                              # EIO: the child side is closed
                break
            if not chunk:
                break
            data += chunk
        elif proc.poll() is not None:
            break
    return data


def test_live_status_line_on_a_terminal_only(remotemedia_cmd, manifests_dir):
    cmd = remotemedia_cmd + ["stream", "--manifest", str(manifests_dir / "passthrough.yaml"),
                             "--input", "virtual", "--output", "virtual", "--duration", "1.5"]
    master, slave = os.openpty()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=slave)
    os.close(slave)
    try:
        tty_err = read_pty(master, proc, timeout=30).decode()
    finally:
        os.close(master)
    assert proc.wait(timeout=30) == 0
    redraws = [part for part in tty_err.split("\r") if "engine p50" in part]
    # Throttled: a few redraws a second over 1.5 s, never one per frame (75 frames).
    assert 2 <= len(redraws) <= 15, tty_err
    assert "frames" in redraws[-1] and "ser 0" in redraws[-1] and "drops 0" in redraws[-1]
    piped = run(cmd)
    assert piped.returncode == 0
    assert "\r" not in piped.stderr and "engine p50" not in piped.stderr


def test_fast_and_realtime_pick_the_pace(remotemedia_cmd, manifests_dir):
    t0 = time.monotonic()
    fast = run(remotemedia_cmd + ["stream", "--manifest", str(manifests_dir / "five.yaml"),
                                  "--duration", "20", "--fast", "--json"])
    wall = time.monotonic() - t0
    assert fast.returncode == 0, fast.stderr
    stats = json.loads(fast.stdout.splitlines()[-1])
    assert stats["frames_out"] == 1000 and wall < 15.0
    synth = run(remotemedia_cmd + ["stream", "--manifest", str(manifests_dir / "five.yaml"),
                                   "--input", "sine:440", "--output", "null", "--duration",
                                   "20", "--json"])
    assert "as fast as possible" in synth.stderr
    assert json.loads(synth.stdout.splitlines()[-1])["frames_out"] == 1000


def test_raw_stdout_keeps_events_off_it_and_says_so(remotemedia_cmd, ten_frames, tmp_path):
    manifest = tmp_path / "meter_out.yaml"
    manifest.write_text(to_yaml(chain(("meter", "LevelMeter"))))
    proc = subprocess.run(remotemedia_cmd + [
        "stream", "--manifest", str(manifest), "--input", f"file:{ten_frames}",
        "--output", "raw:-"], capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout) == 10 * 960 * 4                 # audio only
    assert proc.stderr.count(b"events are not written") == 1


def test_an_unbounded_fast_run_is_pointed_out(manifests_dir):
    with CliRun(["stream", "--manifest", manifests_dir / "passthrough.yaml", "--input", "sine",
                 "--output", "null"]) as run:
        run.wait_line("never ends")
        done = run.stop(signal.SIGINT)
    done.assert_clean_stop(signal.SIGINT)
    line = next(x for x in done.stderr.splitlines() if "never ends" in x)
    assert "--duration" in line and "ended: interrupted" in done.stderr
