"""file -> manifest -> file: sample-exact for passthrough, numpy's own result for gain."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
import soundfile as sf

from remotemedia.engine.session import Pipeline
from remotemedia.io.spec import make_sink, make_source
from remotemedia.runner import StreamRunner
from tests.conftest import sine

GAIN_DB = -6.0


def run_files(manifest, src, dst, **runner_args) -> dict:
    pipeline = Pipeline.from_manifest(manifest)
    m = pipeline.manifest
    runner = StreamRunner(pipeline, make_source(f"file:{src}", m.audio),
                          make_sink(f"file:{dst}", m.output_format), **runner_args)
    return runner.run()


@pytest.fixture
def input_wav(tmp_path):
    # 2.5 s plus a partial block: the last block is passed on short.
    x = sine(440.0, seconds=2.5)[: 2 * 48000 + 1000] + sine(3000.0, seconds=2.5,
                                                             amplitude=0.2)[: 2 * 48000 + 1000]
    path = tmp_path / "in.wav"
    sf.write(path, x, 48000, subtype="FLOAT")
    return path, x


def assert_wav(path, rate, channels, frames):
    info = sf.info(path)
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (rate, channels,
                                                                         frames, "FLOAT")


def test_passthrough_is_sample_exact(manifests_dir, input_wav, tmp_path):
    src, x = input_wav
    out = tmp_path / "out.wav"
    stats = run_files(manifests_dir / "passthrough.yaml", src, out)
    assert_wav(out, 48000, 1, x.shape[0])
    y, _ = sf.read(out, dtype="float32")
    np.testing.assert_array_equal(y, x)
    assert stats["frames_in"] == stats["frames_out"] == 102      # 101 full blocks + 1 short
    assert stats["stop_reason"] == "end_of_input"
    assert stats["serialization_events"] == 0 and stats["copies"]["engine"] == 0


def test_gain_equals_numpys_own_result(manifests_dir, input_wav, tmp_path):
    src, x = input_wav
    out = tmp_path / "gain.wav"
    stats = run_files(manifests_dir / "gain.yaml", src, out)
    assert_wav(out, 48000, 1, x.shape[0])
    y, _ = sf.read(out, dtype="float32")
    expected = x * 10.0 ** (GAIN_DB / 20.0)                 # float32 stays float32 (NEP 50)
    assert expected.dtype == np.float32
    np.testing.assert_array_equal(y, expected)
    assert not np.array_equal(y, x)
    # The file source hands its blocks over, so the gain works in place: no copies at all.
    assert stats["copies"] == {"engine": 0, "cow": 0, "io": 0}


def test_stereo_round_trip_keeps_channels(tmp_path):
    manifest = {"version": "v1", "audio": {"sample_rate": 16000, "channels": 2,
                                           "block_size": 320},
                "nodes": [{"id": "p", "node_type": "PassThrough"}],
                "connections": [{"from": "input", "to": "p"}, {"from": "p", "to": "output"}]}
    x = sine(220.0, seconds=0.5, rate=16000, channels=2)
    x[:, 1] *= -1
    src, out = tmp_path / "st.wav", tmp_path / "st_out.wav"
    sf.write(src, x, 16000, subtype="FLOAT")
    run_files(manifest, src, out)
    assert_wav(out, 16000, 2, x.shape[0])
    np.testing.assert_array_equal(sf.read(out, dtype="float32")[0], x)


def test_output_file_takes_the_graphs_output_format(tmp_path):
    # Stereo in, Downmix to mono: the WAV written is mono, as the manifest's output declares.
    manifest = {"version": "v1", "audio": {"sample_rate": 48000, "channels": 2,
                                           "block_size": 960},
                "nodes": [{"id": "down", "node_type": "Downmix"}],
                "connections": [{"from": "input", "to": "down"},
                                {"from": "down", "to": "output"}]}
    x = sine(seconds=0.1, channels=2)
    x[:, 1] = 0.25
    src, out = tmp_path / "st.wav", tmp_path / "mono.wav"
    sf.write(src, x, 48000, subtype="FLOAT")
    run_files(manifest, src, out)
    assert_wav(out, 48000, 1, x.shape[0])
    np.testing.assert_array_equal(sf.read(out, dtype="float32")[0], x.mean(axis=1,
                                                                            dtype=np.float32))


def test_pcm16_output_when_the_spec_names_it(manifests_dir, input_wav, tmp_path):
    src, x = input_wav
    out = tmp_path / "o16.wav"
    pipeline = Pipeline.from_manifest(manifests_dir / "passthrough.yaml")
    a = pipeline.manifest.audio
    StreamRunner(pipeline, make_source(f"file:{src}", a), make_sink(f"file:{out}:PCM_16", a)).run()
    info = sf.info(out)
    assert info.subtype == "PCM_16" and info.frames == x.shape[0]
    np.testing.assert_allclose(sf.read(out, dtype="float32")[0], x, atol=1 / 32768)


def test_the_cli_does_the_same(remotemedia_cmd, manifests_dir, input_wav, tmp_path):
    src, x = input_wav
    out = tmp_path / "cli.wav"
    proc = subprocess.run(remotemedia_cmd + [
        "stream", "--manifest", str(manifests_dir / "gain.yaml"), "--input", f"file:{src}",
        "--output", f"file:{out}", "--json"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    stats = json.loads(proc.stdout.strip().splitlines()[-1])
    assert stats["frames_in"] == stats["frames_out"] == 102
    assert stats["realtime_factor"] > 1.0                   # files alone run as fast as they can
    y, _ = sf.read(out, dtype="float32")
    np.testing.assert_array_equal(y, x * 10.0 ** (GAIN_DB / 20.0))
    assert "virtual device" not in proc.stderr
