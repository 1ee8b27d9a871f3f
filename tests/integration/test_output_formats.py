"""Output files by extension, as users write them from the command line: every format and
subtype libsndfile writes here reads back (sample-exact where lossless), WAVs that sox and
ffprobe read without a word, and the input's sample format kept when the graph keeps the
samples."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from remotemedia.io.files import CONTAINERS, SequentialSoundFile, lossless, writable_subtypes

CMD = [sys.executable, "-m", "remotemedia"]
MANIFEST = """version: v1
audio: {{sample_rate: {rate}, channels: {channels}, block_size: 960}}
nodes: [{{id: p, node_type: PassThrough}}]
connections:
  - {{from: input, to: p}}
  - {{from: p, to: output}}
"""
GAIN = MANIFEST.replace("PassThrough", "Gain, params: {{db: -6}}")


def stream(cwd, *args):
    return subprocess.run(CMD + ["stream", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def read_all(path) -> np.ndarray:
    # front to back without seeking: soundfile's read() seeks after reading, which DWVW
    # cannot (libsndfile: "Internal psf_fseek() failed")
    with SequentialSoundFile(path) as f:
        return f.read(f.frames, dtype="float32", always_2d=True)


def take(tmp, name="in.wav", rate=48000, channels=1, subtype="FLOAT", seconds=0.3, seed=0):
    # samples on the 16-bit grid, within full scale: every PCM of 16 bits or more holds them
    rng = np.random.default_rng(seed)
    x = np.round(rng.uniform(-0.9, 0.9, (int(rate * seconds), channels)) * 32768) / 32768
    sf.write(tmp / name, x.astype(np.float32), rate, subtype=subtype)
    return x.astype(np.float32)


def manifest(tmp, rate=48000, channels=1, text=MANIFEST):
    path = tmp / f"m{rate}_{channels}.yaml"
    path.write_text(text.format(rate=rate, channels=channels))
    return str(path)


def combos():
    out = []
    for ext, (container, _) in CONTAINERS.items():
        for subtype in writable_subtypes(container, ext):
            out.append((ext, subtype))
    return out


COMBOS = combos()
RATES = {"OPUS": 48000}   # Opus takes 8-48 kHz in five steps; the others any rate here


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(combo=st.sampled_from(COMBOS), channels=st.sampled_from([1, 2]))
def test_every_format_and_subtype_round_trips(tmp_path_factory, combo, channels):
    ext, subtype = combo
    tmp = tmp_path_factory.mktemp("fmt")
    x = take(tmp, channels=channels)
    proc = stream(tmp, "-m", manifest(tmp, channels=channels), "-i", "in.wav",
                  "-o", f"out{ext}:{subtype}")
    if proc.returncode == 2 and "cannot hold" in proc.stderr:
        # a pair libsndfile refuses (2 channels of GSM, say): said in one line, nothing made
        assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp / f"out{ext}").exists()
        return
    assert proc.returncode == 0, proc.stderr
    info = sf.info(tmp / f"out{ext}")
    assert (info.samplerate, info.channels, info.subtype) == (48000, channels, subtype)
    got = read_all(tmp / f"out{ext}")
    if lossless(subtype) or subtype in ("ULAW", "ALAW"):
        # what libsndfile's own encoder makes of the same samples, to the sample
        sf.write(tmp / f"ref{ext}", x, 48000, subtype=subtype, format=CONTAINERS[ext][0])
        want = read_all(tmp / f"ref{ext}")
        assert np.array_equal(got, want)
    else:
        assert abs(len(got) - len(x)) <= 2048   # codecs pad to their frames
        assert np.sqrt(np.mean(got ** 2)) > 0.1  # the signal, not silence


def test_every_extension_is_registered_and_a_bad_one_names_them(tmp_path):
    take(tmp_path)
    proc = stream(tmp_path, "-m", manifest(tmp_path), "-i", "in.wav", "-o", "out.xyz")
    assert proc.returncode == 2
    line = proc.stderr.strip()
    assert "\n" not in line and "*.wav" in line and "*.flac" in line and "*.opus" in line
    proc = stream(tmp_path, "-m", manifest(tmp_path), "-i", "in.wav", "-o", "out.flac:FLOAT")
    assert proc.returncode == 2 and "FLAC cannot hold subtype 'FLOAT'" in proc.stderr
    assert "PCM_24" in proc.stderr and not (tmp_path / "out.flac").exists()
    take(tmp_path, "cd.wav", rate=44100)
    proc = stream(tmp_path, "-m", manifest(tmp_path, rate=44100), "-i", "cd.wav",
                  "-o", "out.opus")
    assert proc.returncode == 2 and "Opus cannot hold 1 channel(s) at 44100 Hz" in proc.stderr
    assert not (tmp_path / "out.opus").exists()


needs_tools = pytest.mark.skipif(not (shutil.which("sox") and shutil.which("ffprobe")),
                                 reason="needs Debian's sox and ffmpeg (run_test.sh installs "
                                        "them)")


@needs_tools
@pytest.mark.parametrize("channels", [1, 2, 6])
@pytest.mark.parametrize("subtype", ["FLOAT", "DOUBLE", "PCM_16", "PCM_24", "PCM_32", "PCM_U8",
                                     "ULAW", "ALAW"])
def test_sox_and_ffprobe_read_our_wav_without_a_warning(tmp_path, subtype, channels):
    x = take(tmp_path, channels=channels)
    proc = stream(tmp_path, "-m", manifest(tmp_path, channels=channels), "-i", "in.wav",
                  "-o", f"out.wav:{subtype}")
    assert proc.returncode == 0, proc.stderr
    sox = subprocess.run(["sox", "--i", "out.wav"], capture_output=True, text=True,
                         cwd=tmp_path)
    assert sox.returncode == 0 and sox.stderr == ""
    assert f"Channels       : {channels}" in sox.stdout
    assert f"{len(x)} samples" in sox.stdout
    # sox decodes it all, and ffprobe reads it, each without a word on stderr
    decode = subprocess.run(["sox", "out.wav", "-n"], capture_output=True, text=True,
                            cwd=tmp_path)
    assert decode.returncode == 0 and decode.stderr == ""
    probe = subprocess.run(["ffprobe", "-v", "warning", "-show_entries",
                            "stream=channels,sample_rate", "-of", "csv=p=0", "out.wav"],
                           capture_output=True, text=True, cwd=tmp_path)
    assert probe.returncode == 0 and probe.stderr == ""
    assert probe.stdout.split() == [f"48000,{channels}"]
    # and libsndfile still reads the samples it wrote, and the channel layout
    got, _ = sf.read(tmp_path / "out.wav", dtype="float32", always_2d=True)
    mem = io.BytesIO()
    sf.write(mem, x, 48000, subtype=subtype, format="WAV")
    mem.seek(0)
    assert np.array_equal(got, sf.read(mem, dtype="float32", always_2d=True)[0])


@pytest.mark.parametrize("text,spec,want", [
    (MANIFEST, "out.wav", "PCM_16"),            # passthrough: 16-bit in, 16-bit out
    (MANIFEST, "out.flac", "PCM_16"),           # any format that holds it
    (GAIN, "out.wav", "FLOAT"),                 # the graph changes the samples: float
    (MANIFEST, "out.wav:PCM_24", "PCM_24"),     # a named subtype wins
], ids=["passthrough-wav", "passthrough-flac", "gain", "named"])
def test_the_input_sample_format_is_kept_when_the_graph_keeps_the_samples(tmp_path, text, spec,
                                                                         want):
    x = take(tmp_path, subtype="PCM_16")
    proc = stream(tmp_path, "-m", manifest(tmp_path, text=text), "-i", "in.wav", "-o", spec)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / spec.split(":")[0]
    assert sf.info(out).subtype == want
    got, _ = sf.read(out, dtype="float32", always_2d=True)
    if text is MANIFEST:
        assert np.array_equal(got, x)          # the very samples read
    else:
        assert np.allclose(got, x * 10 ** (-6 / 20), atol=1e-6)


def test_a_converted_input_is_written_as_float(tmp_path):
    take(tmp_path, "cd.wav", rate=44100, subtype="PCM_16")
    proc = stream(tmp_path, "-m", manifest(tmp_path), "-i", "cd.wav", "-o", "out.wav")
    assert proc.returncode == 0, proc.stderr
    assert sf.info(tmp_path / "out.wav").subtype == "FLOAT"
