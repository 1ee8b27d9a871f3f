"""WAV files in and out through soundfile: blocks, mismatches refused, headers finalized."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from remotemedia.engine.data import NumpyData
from remotemedia.engine.errors import RemoteMediaError, UsageError
from remotemedia.engine.node import AudioFormat
from remotemedia.io.files import WavSink, WavSource
from tests.conftest import sine

MONO = AudioFormat(48000, 1, 960)
STEREO = AudioFormat(48000, 2, 960)


def read_all(source) -> list[np.ndarray]:
    blocks = []
    with source:
        while (block := source.read()) is not None:
            blocks.append(block)
    return blocks


def test_reads_blocks_and_passes_the_last_one_short(tmp_path):
    x = sine(seconds=0.1)[:4000]                    # 4 blocks of 960 and one of 160
    path = tmp_path / "in.wav"
    sf.write(path, x, 48000, subtype="FLOAT")
    blocks = read_all(WavSource(path, MONO))
    assert [b.shape for b in blocks] == [(960,)] * 4 + [(160,)]
    assert all(b.dtype == np.float32 for b in blocks)
    np.testing.assert_array_equal(np.concatenate(blocks), x)


def test_reads_pcm16_and_stereo_as_float32(tmp_path):
    x = sine(seconds=0.05, channels=2)
    path = tmp_path / "in16.wav"
    sf.write(path, x, 48000, subtype="PCM_16")
    blocks = read_all(WavSource(path, STEREO))
    got = np.concatenate(blocks)
    assert got.shape == x.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, x, atol=1 / 32768)


@pytest.mark.parametrize("rate,channels,fmt,words", [
    (44100, 1, MONO, ["44100 Hz", "48000 Hz"]),
    (48000, 2, MONO, ["2 channel", "expects 1"]),
    (48000, 1, STEREO, ["1 channel", "expects 2"]),
])
def test_rate_or_channel_mismatch_is_refused(tmp_path, rate, channels, fmt, words):
    path = tmp_path / "other.wav"
    sf.write(path, np.zeros((100, channels), np.float32), rate)
    with pytest.raises(UsageError) as info:
        WavSource(path, fmt)
    message = str(info.value)
    assert "\n" not in message and all(w in message for w in words), message


def test_missing_directory_and_non_audio_inputs(tmp_path):
    with pytest.raises(UsageError, match="not found"):
        WavSource(tmp_path / "nope.wav", MONO)
    with pytest.raises(UsageError, match="directory"):
        WavSource(tmp_path, MONO)
    junk = tmp_path / "junk.wav"
    junk.write_text("not audio")
    with pytest.raises(UsageError, match="cannot read .* as audio"):
        WavSource(junk, MONO)


def test_sink_writes_float_by_default_and_is_exact(tmp_path):
    path = tmp_path / "out.wav"
    x = sine(seconds=0.03)
    with WavSink(path, MONO) as sink:
        sink.write(NumpyData(x[:960]))
        sink.write(NumpyData(x[960:]))
    info = sf.info(path)
    assert (info.samplerate, info.channels, info.subtype, info.frames) == (48000, 1, "FLOAT",
                                                                         x.shape[0])
    got, _ = sf.read(path, dtype="float32")
    np.testing.assert_array_equal(got, x)


def test_sink_subtype_and_stereo(tmp_path):
    path = tmp_path / "out16.wav"
    x = sine(seconds=0.02, channels=2)
    with WavSink(path, STEREO, subtype="PCM_16") as sink:
        sink.write(NumpyData(x))
    info = sf.info(path)
    assert (info.channels, info.subtype, info.frames) == (2, "PCM_16", 960)


def test_sink_close_twice_keeps_the_file(tmp_path):
    path = tmp_path / "twice.wav"
    sink = WavSink(path, MONO)
    sink.open()
    sink.write(NumpyData(np.ones(960, np.float32)))
    sink.close()
    sink.close()
    assert sf.info(path).frames == 960


def test_sink_refuses_a_frame_with_other_channels(tmp_path):
    with WavSink(tmp_path / "m.wav", MONO) as sink:
        with pytest.raises(RemoteMediaError, match="opened for 1 channel"):
            sink.write(NumpyData(np.zeros((960, 2), np.float32)))


def test_sink_counts_a_non_contiguous_frame_as_an_io_copy(tmp_path):
    class Session:
        from remotemedia.engine.counters import Counters
        counters = Counters()

    sink = WavSink(tmp_path / "s.wav", MONO)
    sink.attach(Session)
    with sink:
        sink.write(NumpyData(np.zeros((960, 2), np.float32)[:, 0]))
        sink.write(NumpyData(np.zeros(960, np.float32)))
    assert Session.counters.io == 1


@pytest.mark.parametrize("name,subtype,match", [
    ("out.xyz", "FLOAT", r"\*\.wav \(or \*\.flac"),
    ("out.flac", "FLOAT", "FLAC cannot hold subtype 'FLOAT'"),
    ("out.wav", "NOPE", "cannot hold subtype 'NOPE'"),
    ("missing/out.wav", "FLOAT", "directory does not exist"),
])
def test_sink_bad_targets(tmp_path, name, subtype, match):
    with pytest.raises(UsageError, match=match):
        WavSink(tmp_path / name, MONO, subtype)
