"""Inputs that lie, as a user meets them: files shorter than their headers say, files cut while
they are read, FIFOs (one reader, no seeking), and upstream manifests whose nodes declare the
rate. The run reads what is there, says in one line what was missing, and never hangs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from remotemedia.engine.node import AudioFormat
from remotemedia.io.files import WavSource
from tests.conftest import MANIFESTS

RATE = 48000
TIMEOUT_S = 120         # a hang is what these tests catch: generous, never reached by a good run


def cli(*args, cwd, **kw):
    return subprocess.run([sys.executable, "-m", "remotemedia", *map(str, args)],
                          capture_output=True, text=True, timeout=TIMEOUT_S, cwd=cwd, **kw)


def tone(seconds: float, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    return x if channels == 1 else np.repeat(x[:, None], channels, axis=1)


def summary_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "missing" in line]


# -- shorter than the header says -----------------------------------------------------------------

CUT = [("WAV", "PCM_16", "wav"), ("WAV", "FLOAT", "wav"), ("WAVEX", "PCM_24", "wav"),
       ("FLAC", "PCM_16", "flac"), ("MP3", "MPEG_LAYER_III", "mp3")]


@pytest.mark.parametrize("fmt, subtype, ext", CUT, ids=[f"{c[0]}-{c[1]}" for c in CUT])
def test_a_truncated_file_runs_what_is_there_and_says_what_is_missing(tmp_path, fmt, subtype,
                                                                       ext):
    whole = tmp_path / f"whole.{ext}"
    sf.write(whole, tone(2.0), RATE, format=fmt, subtype=subtype)
    data = whole.read_bytes()
    cut = tmp_path / f"cut.{ext}"
    cut.write_bytes(data[:len(data) // 2])
    out = tmp_path / "out.wav"
    done = cli("stream", "-m", MANIFESTS / "passthrough.yaml", "-i", f"file:{cut}", "-o",
               f"file:{out}", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    [line] = summary_lines(done.stderr)
    report = json.loads(done.stdout.splitlines()[-1])["input"]
    got, _ = sf.read(out, dtype="float32")
    assert report["declared_samples"] == 2 * RATE and report["read_samples"] == got.shape[0]
    assert report["missing_samples"] == 2 * RATE - got.shape[0] > 0.3 * RATE
    assert f"{report['missing_samples']} samples ({report['missing_s']:.3f} s) missing" in line
    assert str(cut) in line
    # what was there, exactly as libsndfile decodes it in one go (up to its error, for FLAC)
    whole_decode, _ = sf.read(whole, dtype="float32")
    if fmt != "MP3":   # an MP3 cut mid-frame decodes its last frame differently
        np.testing.assert_array_equal(got, whole_decode[:got.shape[0]])


def test_a_file_cut_while_it_is_read(tmp_path):
    path = tmp_path / "growing_shorter.wav"
    sf.write(path, tone(2.0), RATE, subtype="PCM_16")
    source = WavSource(path, AudioFormat(RATE, 1, 960))
    source.open()
    blocks = [source.read() for _ in range(10)]
    os.truncate(path, 44 + 2 * 30_000)          # keep 30,000 samples of the 96,000
    while (block := source.read()) is not None:
        blocks.append(block)
    source.close()
    assert sum(b.shape[0] for b in blocks) == 30_000
    assert source.shortfall.endswith("30000 of the 96000 samples its header declares: 66000 "
                                     "samples (1.375 s) missing")
    report = {}
    source.extend_report(report)
    assert report["input"]["missing_samples"] == 66_000


def test_a_whole_file_says_nothing(tmp_path):
    path = tmp_path / "whole.flac"
    sf.write(path, tone(0.5), RATE, format="FLAC")
    done = cli("stream", "-m", MANIFESTS / "passthrough.yaml", "-i", f"file:{path}", "-o",
               "null", "--json", cwd=tmp_path)
    assert done.returncode == 0 and not summary_lines(done.stderr), done.stderr
    assert "input" not in json.loads(done.stdout.splitlines()[-1])


# -- FIFOs ----------------------------------------------------------------------------------------

WRITER = ("import sys, time\ndata = open(sys.argv[2], 'rb').read()\n"
          "n = int(sys.argv[3]) if len(sys.argv) > 3 else len(data)\n"
          "with open(sys.argv[1], 'wb') as f:\n"
          "    for i in range(0, n, 4096):\n"
          "        f.write(data[i:min(i + 4096, n)])\n")


def fifo_with_writer(tmp_path: Path, wav: Path, keep: int | None = None):
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    args = [sys.executable, "-c", WRITER, str(fifo), str(wav)]
    if keep is not None:
        args.append(str(keep))
    return fifo, subprocess.Popen(args, stderr=subprocess.PIPE)


@pytest.fixture
def wav(tmp_path):
    path = tmp_path / "tone.wav"
    sf.write(path, tone(1.5), RATE, subtype="FLOAT")
    return path


def test_stream_reads_a_fifo_written_by_another_process(tmp_path, wav):
    fifo, writer = fifo_with_writer(tmp_path, wav)
    out = tmp_path / "out.wav"
    done = cli("stream", "-m", MANIFESTS / "passthrough.yaml", "-i", f"file:{fifo}", "-o",
               f"file:{out}", cwd=tmp_path)
    assert writer.wait(TIMEOUT_S) == 0, writer.stderr.read()
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(sf.read(out, dtype="float32")[0],
                                  sf.read(wav, dtype="float32")[0])


def test_a_fifo_that_breaks_off_says_what_is_missing(tmp_path, wav):
    fifo, writer = fifo_with_writer(tmp_path, wav, keep=44 + 4 * 20_000 + 200)
    done = cli("stream", "-m", MANIFESTS / "passthrough.yaml", "-i", f"file:{fifo}", "-o",
               "null", cwd=tmp_path)
    writer.wait(TIMEOUT_S)
    assert done.returncode == 0, done.stderr
    header = sf.info(wav)
    [line] = summary_lines(done.stderr)
    assert f"of the {header.frames} samples its header declares" in line


def test_batch_reads_a_fifo(tmp_path, wav):
    fifo, writer = fifo_with_writer(tmp_path, wav)
    manifest = tmp_path / "meter.yaml"
    manifest.write_text("version: v1\naudio: {sample_rate: 48000, block_size: 960, channels: 1}\n"
                        "nodes: [{id: meter, node_type: LevelMeter}]\n"
                        "connections: [{from: input, to: meter}, {from: meter, to: output}]\n")
    done = cli("batch", "--manifest", manifest, fifo, "--out", tmp_path / "out", "--workers",
               "1", cwd=tmp_path)
    assert writer.wait(TIMEOUT_S) == 0
    assert done.returncode == 0, done.stderr
    [report] = [json.loads(p.read_text()) for p in (tmp_path / "out" / "reports").glob("*")]
    assert report["status"] == "ok" and report["audio_s"] == 1.5
    assert report["events"] == -(-int(1.5 * RATE) // 960)


# -- upstream manifests whose nodes declare the rate ----------------------------------------------

VAD_SHAPE = {
    "version": "v1", "metadata": {"name": "vad-bidirectional-shape"},
    "nodes": [{"id": "chunker", "node_type": "AudioChunkerNode", "params": {"chunkSize": 960}},
              {"id": "resample_down", "node_type": "FastResampleNode",
               "params": {"sourceRate": 48000, "targetRate": 16000, "quality": "Low",
                          "channels": 1}},
              {"id": "chunker_16k", "node_type": "AudioChunkerNode",
               "params": {"chunkSize": 320}},
              {"id": "resample_up", "node_type": "FastResampleNode",
               "params": {"sourceRate": 16000, "targetRate": 48000, "quality": "High"}}],
    "connections": [{"from": "chunker", "to": "resample_down"},
                    {"from": "resample_down", "to": "chunker_16k"},
                    {"from": "chunker_16k", "to": "resample_up"}]}


def test_an_upstream_manifest_declaring_48k_runs_on_a_48k_file(tmp_path, wav):
    manifest = tmp_path / "vad_shape.json"
    manifest.write_text(json.dumps(VAD_SHAPE))
    for args in (["validate", manifest],
                 ["stream", "-m", manifest, "-i", f"file:{wav}", "-o", "null"],
                 ["batch", "--manifest", manifest, wav, "--out", tmp_path / "out"]):
        done = cli(*args, cwd=tmp_path)
        assert done.returncode == 0, (args[0], done.stderr)
    at16k = tmp_path / "at16k.wav"
    sf.write(at16k, np.zeros(1600, np.float32), 16000)
    done = cli("stream", "-m", manifest, "-i", f"file:{at16k}", "-o", "null", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert "node 'resample_down'" in line and "16000 Hz from the input file" in line
