"""The upstream's manifests from the command line: validate, nodes, convert-manifest, stream
with HealthEvent lines, block sizes, a file's own format, and bad input."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

DATA = Path(__file__).resolve().parent.parent / "data" / "upstream"
HEALTH = DATA / "stream_health.yaml"
FULL = DATA / "full_stream_health.yaml"
HEALTH_TYPES = {"silence", "low_volume", "clipping", "channel_imbalance", "dropouts", "drift",
                "freeze", "cadence", "av_skew", "health"}


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)


def wav(tmp_path, x, rate=16000, name="in.wav"):
    path = tmp_path / name
    sf.write(path, x, rate, subtype="FLOAT")
    return path


def tone(seconds, rate=16000, amplitude=0.5, channels=1):
    t = np.arange(int(seconds * rate)) / rate
    x = (amplitude * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    return x if channels == 1 else np.stack([x] * channels, axis=1)


def test_validate_says_the_shape_and_lists_warnings(remotemedia_cmd):
    proc = run(remotemedia_cmd + ["validate", str(FULL)])
    assert proc.returncode == 0 and proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"{FULL}: ok: 'full_stream_health', 11 node(s), 16000 Hz, 1 ch, "
                               f"4000-sample blocks")
    assert lines[1].startswith("shape: upstream")
    warnings = [l for l in lines if l.startswith("warning: ")]
    assert any("node 'clipping_detector': unknown param 'clipping_threshold'" in w
               for w in warnings)
    assert any("node 'timing_drift': 'is_streaming' has no effect here" in w for w in warnings)
    assert len(warnings) == 11


def test_validate_native_says_native_and_no_warnings(remotemedia_cmd, manifests_dir):
    proc = run(remotemedia_cmd + ["validate", str(manifests_dir / "meter.yaml")])
    assert proc.returncode == 0
    assert proc.stdout.splitlines()[1] == "shape: native"
    assert "warning" not in proc.stdout


def test_a_typo_is_a_warning_and_a_bad_value_exits_2(remotemedia_cmd, tmp_path):
    typo = tmp_path / "typo.yaml"
    typo.write_text(HEALTH.read_text().replace("sustained_silence_ms", "sustained_silnce_ms"))
    proc = run(remotemedia_cmd + ["validate", str(typo)])
    assert proc.returncode == 0
    assert ("warning: node 'silence_detector': unknown param 'sustained_silnce_ms' for "
            "SilenceDetectorNode ignored (did you mean 'sustained_silence_ms'?)") in proc.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(HEALTH.read_text().replace("dropout_count_threshold: 3",
                                              "dropout_count_threshold: three"))
    for cmd in (["validate", str(bad)], ["stream", "-m", str(bad), "-i", "silence", "-o", "null",
                                         "-d", "1"]):
        proc = run(remotemedia_cmd + cmd)
        assert proc.returncode == 2 and proc.stdout == ""
        assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
        assert ("bad.yaml: node 'silence_detector': param 'dropout_count_threshold' must be "
                "int, got str 'three'") in proc.stderr


def test_nodes_shows_upstream_names_and_aliases(remotemedia_cmd):
    proc = run(remotemedia_cmd + ["nodes"])
    assert proc.returncode == 0
    out = proc.stdout
    assert re.search(r"^FastResampleNode: .*\[upstream name for Resample\]$", out, re.M)
    assert re.search(r"^Resample: .*\[upstream alias: (.*, )?FastResampleNode(, .*)?\]$", out,
                     re.M)   # AutoResampleNode too
    assert re.search(r"^Reframe: .*\[upstream alias: AudioChunkerNode\]$", out, re.M)
    assert re.search(r"^VAD: .*\[upstream alias: SileroVADNode\]$", out, re.M)
    assert re.search(r"^HealthEmitterNode: .*\[upstream node\]$", out, re.M)
    assert "    chunk_size (or chunkSize): int = 512" in out


def test_stream_prints_upstream_events_as_json_lines(remotemedia_cmd, tmp_path):
    path = wav(tmp_path, tone(2.0))
    proc = run(remotemedia_cmd + ["stream", "-m", str(HEALTH), "-i", f"file:{path}",
                                  "-o", "null", "--json"])
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(l) for l in proc.stdout.splitlines()]
    stats, events = lines[-1], lines[:-1]
    assert stats["frames_in"] == 8                     # 2 s in 4000-sample blocks
    schemas = [e.get("_schema") or e.get("type") for e in events]
    assert schemas.count("audio_level_event") == 8 and schemas.count("health") == 1
    assert [e["timestamp_us"] for e in events if e.get("_schema") == "clipping_event"] == [
        i * 250_000 for i in range(8)]


def test_event_format_health_writes_canonical_health_events(remotemedia_cmd, tmp_path):
    x = np.concatenate([tone(1.0), np.clip(3 * tone(1.0), -1, 1), np.zeros(16000, np.float32),
                        tone(1.0, amplitude=0.05)])
    path = wav(tmp_path, x)
    out = tmp_path / "events.jsonl"
    proc = run(remotemedia_cmd + ["stream", "-m", str(HEALTH), "-i", f"file:{path}",
                                  "-o", "null", "--event-format", "health", "--events",
                                  str(out)])
    assert proc.returncode == 0, proc.stderr
    lines = out.read_text().splitlines()
    records = [json.loads(l) for l in lines]
    assert {r["type"] for r in records} <= HEALTH_TYPES
    assert {"clipping", "silence", "low_volume", "health"} <= {r["type"] for r in records}
    for r in records:
        assert list(r)[:2] == ["type", "ts"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", r["ts"])
        assert "stream_id" not in r                  # none known: omitted, as upstream
    clip = next(r for r in records if r["type"] == "clipping")
    assert list(clip) == ["type", "ts", "saturation_ratio", "crest_factor_db"]


def test_block_size_and_its_upstream_alias(remotemedia_cmd, tmp_path):
    path = wav(tmp_path, tone(1.0))
    for flag in ("--block-size", "--chunk-size"):
        proc = run(remotemedia_cmd + ["stream", "-m", str(HEALTH), "-i", f"file:{path}",
                                      "-o", "null", "--json", flag, "320"])
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout.splitlines()[-1])["frames_in"] == 50
        assert "320-sample blocks" in proc.stderr
    proc = run(remotemedia_cmd + ["stream", "-m", str(HEALTH), "-i", f"file:{path}",
                                  "-o", "null", "--chunk-size", "0"])
    assert proc.returncode == 2 and "expected a positive whole number of samples" in proc.stderr


def test_a_file_sets_the_format_of_an_upstream_manifest(remotemedia_cmd, tmp_path):
    x = tone(1.0, rate=48000, channels=2)
    x[:, 1] = 0.0                                      # right channel dead
    path = wav(tmp_path, x, rate=48000)
    proc = run(remotemedia_cmd + ["stream", "-m", str(HEALTH), "-i", f"file:{path}",
                                  "-o", "null", "--event-format", "health"])
    assert proc.returncode == 0, proc.stderr
    assert "48000 Hz, 2 ch, 4000-sample blocks" in proc.stderr
    types = [json.loads(l)["type"] for l in proc.stdout.splitlines()]
    assert types.count("channel_imbalance") == 12      # ceil(48000 / 4000) blocks
    # A native manifest pins its format: the same file is converted to it (stereo to mono,
    # said once), and --exact-format refuses it as before.
    proc = run(remotemedia_cmd + ["stream", "-m", "manifests/meter.yaml", "-i", f"file:{path}",
                                  "-o", "null"])
    assert proc.returncode == 0 and "2 ch -> 1 (mean)" in proc.stderr, proc.stderr
    proc = run(remotemedia_cmd + ["stream", "-m", "manifests/meter.yaml", "-i", f"file:{path}",
                                  "-o", "null", "--exact-format"])
    assert proc.returncode == 2 and "has 2 channel(s)" in proc.stderr


def test_convert_manifest_writes_a_native_manifest_that_runs_the_same(remotemedia_cmd,
                                                                       tmp_path):
    out = tmp_path / "native.yaml"
    proc = run(remotemedia_cmd + ["convert-manifest", str(HEALTH), "-o", str(out)])
    assert proc.returncode == 0, proc.stderr
    assert "note: node 'health_emitter': unknown param 'health_emit_interval_ms'" in proc.stderr
    check = run(remotemedia_cmd + ["validate", str(out)])
    assert check.returncode == 0 and "shape: native" in check.stdout
    assert "warning" not in check.stdout
    path = wav(tmp_path, tone(1.5))
    runs = []
    for manifest in (HEALTH, out):
        proc = run(remotemedia_cmd + ["stream", "-m", str(manifest), "-i", f"file:{path}",
                                      "-o", "null"])
        assert proc.returncode == 0, proc.stderr
        runs.append(proc.stdout)
    assert runs[0] == runs[1] and runs[0].count("\n") == 6 * 4 + 1
    proc = run(remotemedia_cmd + ["convert-manifest", str(DATA / "nope.yaml")])
    assert proc.returncode == 2 and "nope.yaml: file not found" in proc.stderr


def test_fast_file_runs_raise_no_drift_through_the_cli(remotemedia_cmd, tmp_path):
    path = wav(tmp_path, tone(30.0))
    proc = run(remotemedia_cmd + ["stream", "-m", str(FULL), "-i", f"file:{path}",
                                  "-o", "null", "--json"])
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(l) for l in proc.stdout.splitlines()]
    stats, events = lines[-1], lines[:-1]
    assert stats["realtime_factor"] > 1.0              # far faster than real time
    reports = [e for e in events if e.get("event_type") == "timing.report"]
    assert len(reports) == 30 and all(r["lead_ms"] == 0 for r in reports)
    assert not any(e.get("type") in ("drift", "cadence") for e in events)
    assert all(e["alerts"] == [] for e in events if e.get("type") == "health")
