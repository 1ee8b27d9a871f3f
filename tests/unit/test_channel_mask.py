"""What an input says about itself is kept: a WAVE_FORMAT_EXTENSIBLE channel mask (a 5.1 file with
side surrounds, 0x60F, came out as 0x3F) and text tags, through a graph that leaves the format as
it found it. Input headers are written here by hand and output masks read back by hand, from the
RIFF layout (Microsoft's WAVEFORMATEXTENSIBLE), so libsndfile is not its own judge."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from remotemedia.engine.node import AudioFormat
from remotemedia.io.files import WavSink, WavSource, carry_input_facts


RATE = 48000
PCM_GUID = bytes.fromhex("0100000000001000800000aa00389b71")
#: the 18 speaker positions of WAVEFORMATEXTENSIBLE (SPEAKER_FRONT_LEFT .. SPEAKER_TOP_BACK_RIGHT)
SPEAKERS = [1 << i for i in range(18)]


def extensible_wav(path: Path, samples: np.ndarray, mask: int) -> None:
    """16-bit PCM in WAVE_FORMAT_EXTENSIBLE with `mask`, written byte by byte."""
    channels = samples.shape[1]
    pcm = (np.clip(samples, -1, 1 - 2**-15) * 32768).astype("<i2").tobytes()
    fmt = struct.pack("<HHIIHHHHI", 0xFFFE, channels, RATE, RATE * 2 * channels, 2 * channels,
                      16, 22, 16, mask) + PCM_GUID
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + \
        struct.pack("<I", len(pcm)) + pcm
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def mask_of(path: Path) -> int | None:
    """The channel mask of a WAV's fmt chunk, None when it is not WAVE_FORMAT_EXTENSIBLE."""
    data = path.read_bytes()
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        if cid == b"fmt ":
            tag = struct.unpack_from("<H", data, pos + 8)[0]
            return struct.unpack_from("<I", data, pos + 8 + 20)[0] if tag == 0xFFFE else None
        pos += 8 + size + (size & 1)
    raise AssertionError(f"no fmt chunk in {path}")


def through(src: Path, dst: Path, unchanged: bool = True) -> None:
    source = WavSource(src)
    fmt = AudioFormat(source.samplerate, source.channels, 960)
    source.conform(fmt)
    sink = WavSink(dst, fmt)
    carry_input_facts(source, sink, unchanged)
    source.open()
    sink.open()
    from remotemedia.engine.data import NumpyData
    while (block := source.read()) is not None:
        sink.write(NumpyData(block, sample_rate=RATE))
    source.close()
    sink.close()


@settings(max_examples=150, deadline=None)
@given(bits=st.sets(st.sampled_from(SPEAKERS), min_size=1, max_size=8),
       samples=st.integers(1, 3000))
def test_every_mask_of_named_speakers_comes_out_as_it_went_in(tmp_path_factory, bits, samples):
    d = tmp_path_factory.mktemp("mask")
    mask = sum(bits)
    x = np.random.default_rng(mask).uniform(-0.5, 0.5, (samples, len(bits))).astype(np.float32)
    extensible_wav(d / "in.wav", x, mask)
    through(d / "in.wav", d / "out.wav")
    assert mask_of(d / "out.wav") == mask
    got, _ = sf.read(d / "out.wav", dtype="float32")
    want, _ = sf.read(d / "in.wav", dtype="float32")
    np.testing.assert_array_equal(got.reshape(want.shape), want)


def test_a_graph_that_changes_the_format_does_not_claim_the_input_s_layout(tmp_path):
    extensible_wav(tmp_path / "in.wav", np.zeros((100, 2), np.float32), 0x600)  # SL SR
    through(tmp_path / "in.wav", tmp_path / "out.wav", unchanged=False)
    assert mask_of(tmp_path / "out.wav") in (None, 0x3)


def test_the_5_1_side_file_through_stream_keeps_0x60f_and_its_tags(tmp_path):
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (4800, 6)).astype(np.float32)
    extensible_wav(tmp_path / "plain.wav", x, 0x60F)
    with sf.SoundFile(tmp_path / "plain.wav") as f:      # add tags the way taggers do
        data = f.read(dtype="float32")
    with sf.SoundFile(tmp_path / "in.wav", "w", RATE, 6, "PCM_16", format="WAVEX") as f:
        layout = sf._ffi.new("int[]", [2, 3, 4, 11, 14, 15])   # L R C LFE SL SR
        assert sf._snd.sf_command(f._file, 0x1101, layout, sf._ffi.sizeof(layout)) == 1
        f.title, f.artist = "Take 3", "Ensemble"
        f.write(data)
    assert mask_of(tmp_path / "in.wav") == 0x60F
    manifest = tmp_path / "six.yaml"
    manifest.write_text("version: v1\nnodes: [{id: p, node_type: PassThrough}]\n"
                        "connections: [{from: input, to: p}, {from: p, to: output}]\n")
    out = tmp_path / "out.wav"
    done = subprocess.run([sys.executable, "-m", "remotemedia", "stream", "-m", manifest,
                           "-i", f"file:{tmp_path / 'in.wav'}", "-o", f"file:{out}"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert mask_of(out) == 0x60F
    with sf.SoundFile(out) as f:
        assert (f.title, f.artist, f.channels) == ("Take 3", "Ensemble", 6)

