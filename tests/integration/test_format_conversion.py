"""Files at another rate or channel count than the manifest, through the CLI as users run it:
converted on the way in (soxr, a declared channel mix) with one note, or refused with
--exact-format; `batch` the same; `replay` replays the recorded input exactly."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import sine

NOTE = "converted"


def run(cmd, cwd, timeout=120):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd)


def peak_hz(x: np.ndarray, rate: int) -> float:
    x = x if x.ndim == 1 else x.mean(axis=1)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum)) * rate / len(x)


@pytest.fixture
def takes(tmp_path):
    # espeak-ng's rate, mono, 16-bit; and a phone's: 44.1 kHz stereo
    sf.write(tmp_path / "espeak.wav", sine(440.0, 1.5, 22050), 22050, subtype="PCM_16")
    sf.write(tmp_path / "phone.wav", sine(1000.0, 2.0, 44100, channels=2), 44100,
             subtype="PCM_16")
    sf.write(tmp_path / "mono48.wav", sine(700.0, 1.0, 48000), 48000)
    return tmp_path


@pytest.mark.parametrize("name,seconds,freq", [("espeak.wav", 1.5, 440.0),
                                                ("phone.wav", 2.0, 1000.0)])
def test_stream_converts_a_file_at_another_rate_or_channel_count(
        remotemedia_cmd, manifests_dir, takes, name, seconds, freq):
    proc = run(remotemedia_cmd + ["stream", "-m", str(manifests_dir / "passthrough.yaml"),
                                  "-i", name, "-o", "out.wav", "--json"], cwd=takes)
    assert proc.returncode == 0, proc.stderr
    notes = [line for line in proc.stderr.splitlines() if NOTE in line]
    assert len(notes) == 1, proc.stderr
    assert name in notes[0] and "48000 Hz (soxr" in notes[0] and "--exact-format" in notes[0]
    if name == "phone.wav":
        assert "2 ch -> 1 (mean)" in notes[0]
    out, rate = sf.read(takes / "out.wav", dtype="float32")
    src, src_rate = sf.read(takes / name, dtype="float32")
    assert rate == 48000 and out.ndim == 1
    # the length is the input's duration at the new rate (soxr's own count, to a sample)
    assert abs(len(out) - len(src) * 48000 / src_rate) <= 1
    assert len(out) == round(seconds * 48000)
    assert peak_hz(out, 48000) == pytest.approx(freq, abs=1.0)
    # the level is kept: a full-band resampler and a mean of equal channels change nothing
    middle = slice(len(out) // 4, 3 * len(out) // 4)
    assert np.max(np.abs(out[middle])) == pytest.approx(0.5, abs=0.01)
    stats = json.loads(proc.stdout.splitlines()[-1])
    # new arrays at the source boundary are io copies, never engine or cow copies
    assert stats["copies"]["io"] >= stats["frames_in"] > 0
    assert stats["copies"]["engine"] == 0 and stats["copies"]["cow"] == 0


def test_mono_to_stereo_is_copies(remotemedia_cmd, takes):
    manifest = takes / "stereo.yaml"
    manifest.write_text("version: v1\naudio: {sample_rate: 48000, channels: 2, block_size: 960}"
                        "\nnodes: [{id: p, node_type: PassThrough}]\nconnections:\n"
                        "  - {from: input, to: p}\n  - {from: p, to: output}\n")
    proc = run(remotemedia_cmd + ["stream", "-m", str(manifest), "-i", "mono48.wav",
                                  "-o", "out.wav"], cwd=takes)
    assert proc.returncode == 0, proc.stderr
    assert "1 ch -> 2 (copies)" in proc.stderr and "soxr" not in proc.stderr
    out, _ = sf.read(takes / "out.wav", dtype="float32")
    src, _ = sf.read(takes / "mono48.wav", dtype="float32")
    assert out.shape == (len(src), 2)
    assert np.array_equal(out[:, 0], src) and np.array_equal(out[:, 1], src)


@pytest.mark.parametrize("name,words", [("espeak.wav", ["22050 Hz", "48000 Hz"]),
                                        ("phone.wav", ["44100 Hz", "48000 Hz"])])
def test_exact_format_refuses_as_before(remotemedia_cmd, manifests_dir, takes, name, words):
    proc = run(remotemedia_cmd + ["stream", "-m", str(manifests_dir / "passthrough.yaml"),
                                  "-i", name, "-o", "out.wav", "--exact-format"], cwd=takes)
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("remotemedia: error: "), proc.stderr
    assert all(w in lines[0] for w in words)
    assert not (takes / "out.wav").exists()


def test_batch_converts_and_says_so_once(remotemedia_cmd, manifests_dir, takes):
    proc = run(remotemedia_cmd + ["batch", "-m", str(manifests_dir / "passthrough.yaml"),
                                  "espeak.wav", "phone.wav", "mono48.wav", "--out", "b",
                                  "--workers", "1", "--json"], cwd=takes)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.splitlines()[-1])
    assert summary["ok"] == 3 and summary["converted"] == 2
    assert [line for line in proc.stderr.splitlines() if "converted" in line] \
        == [line for line in proc.stderr.splitlines() if "2 input(s)" in line]
    reports = [json.loads(p.read_text()) for p in (takes / "b" / "reports").glob("*.json")]
    by_name = {r["input"].rsplit("/", 1)[-1]: r for r in reports}
    assert by_name["phone.wav"]["converted"].startswith("44100 Hz -> 48000 Hz")
    assert by_name["mono48.wav"]["converted"] is None
    assert by_name["espeak.wav"]["audio_s"] == pytest.approx(1.5)


def test_batch_exact_format_fails_those_inputs(remotemedia_cmd, manifests_dir, takes):
    proc = run(remotemedia_cmd + ["batch", "-m", str(manifests_dir / "passthrough.yaml"),
                                  "espeak.wav", "mono48.wav", "--out", "b", "--workers", "1",
                                  "--json", "--exact-format"], cwd=takes)
    assert proc.returncode == 1
    summary = json.loads(proc.stdout.splitlines()[-1])
    assert summary["ok"] == 1 and summary["failed"] == 1
    assert "22050 Hz" in summary["failures"][0]["reason"]
