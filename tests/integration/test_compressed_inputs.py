"""Compressed inputs through `stream`, `batch` and `replay`, as a user runs them: what reaches the
graph is libsndfile's one-shot decode of the file, sample for sample (an MP3 was silent after its
first 0.1 s, and a batch health check then called good recordings silent)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from remotemedia.engine.levels import measure, to_dbfs
from tests.conftest import MANIFESTS

RATE = 48000
FORMATS = [("MP3", "MPEG_LAYER_III", "mp3"), ("OGG", "OPUS", "opus"),
           ("OGG", "VORBIS", "ogg"), ("FLAC", "PCM_16", "flac")]


def cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "remotemedia", *map(str, args)],
                          capture_output=True, text=True, timeout=120, cwd=cwd)


@pytest.fixture(params=FORMATS, ids=[f[2] for f in FORMATS])
def compressed(request, tmp_path):
    """2.1 s of a tone in a compressed file (not a whole number of 960-sample blocks), and
    libsndfile's one-shot decode of it."""
    fmt, subtype, ext = request.param
    t = np.arange(int(2.1 * RATE)) / RATE
    path = tmp_path / f"tone.{ext}"
    sf.write(path, (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), RATE, format=fmt,
             subtype=subtype)
    reference, _ = sf.read(path, dtype="float32")
    return path, reference


def test_stream_and_replay_pass_the_decode_through_exactly(compressed, tmp_path):
    path, reference = compressed
    done = cli("stream", "-m", MANIFESTS / "passthrough.yaml", "-i", f"file:{path}",
               "-o", f"file:{tmp_path / 'out.wav'}", "--record", tmp_path / "rec", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out, _ = sf.read(tmp_path / "out.wav", dtype="float32")
    np.testing.assert_array_equal(out, reference)
    kept, _ = sf.read(tmp_path / "rec" / "input.wav", dtype="float32")
    np.testing.assert_array_equal(kept, reference)
    done = cli("replay", tmp_path / "rec", "--output", f"file:{tmp_path / 'again.wav'}",
               cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    again, _ = sf.read(tmp_path / "again.wav", dtype="float32")
    np.testing.assert_array_equal(again, reference)


def test_batch_measures_the_decode(compressed, tmp_path):
    path, reference = compressed
    manifest = tmp_path / "meter.yaml"
    manifest.write_text("version: v1\naudio: {sample_rate: 48000, block_size: 960, channels: 1}\n"
                        "nodes: [{id: meter, node_type: LevelMeter}]\n"
                        "connections: [{from: input, to: meter}, {from: meter, to: output}]\n")
    done = cli("batch", "--manifest", manifest, path, "--out", tmp_path / "out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    [events] = list((tmp_path / "out" / "events").glob("*.jsonl"))
    peaks = [json.loads(line)["peak_dbfs"] for line in events.read_text().splitlines()]
    blocks = [reference[i:i + 960] for i in range(0, reference.shape[0], 960)]
    assert peaks == [to_dbfs(measure(b)[1]) for b in blocks]
    assert min(peaks) > -7.0        # a 0.5 tone all the way: no silent block
