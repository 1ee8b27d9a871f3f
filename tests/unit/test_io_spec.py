"""SPEC strings: each kind parses to the right source or sink; every bad one is a UsageError."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

import remotemedia.io.spec as spec_module
from remotemedia.engine.errors import UsageError
from remotemedia.engine.node import AudioFormat
from remotemedia.io.files import WavSink, WavSource
from remotemedia.io.raw import RawSink, RawSource
from remotemedia.io.spec import make_sink, make_source, resolve_default
from remotemedia.io.synth import ChirpSource, NoiseSource, SilenceSource, SineSource
from remotemedia.io.virtual import NullSink, VirtualSink, VirtualSource

FMT = AudioFormat(48000, 1, 960)


@pytest.fixture
def fresh_announcement(monkeypatch):
    monkeypatch.setattr(spec_module, "_announced", False)
    # A machine without sound devices, whatever this one has (io/devices.py tests the others).
    monkeypatch.setattr("remotemedia.io.devices.default_device",
                        lambda kind: (None, "PortAudio finds no sound device"))


def test_generators():
    s = make_source("sine:1000:0.25", FMT)
    assert isinstance(s, SineSource) and (s.freq, s.amplitude) == (1000.0, 0.25)
    assert make_source("sine", FMT).freq == 440.0
    c = make_source("chirp:100:2000:2", FMT)
    assert isinstance(c, ChirpSource) and (c.f0, c.f1, c.seconds) == (100.0, 2000.0, 2.0)
    assert isinstance(make_source("noise:0.1", FMT), NoiseSource)
    assert isinstance(make_source("silence", FMT), SilenceSource)
    for spec in ("sine:440", "chirp", "noise", "silence"):
        src = make_source(spec, FMT)
        assert not src.realtime and not src.clocked


def test_default_is_the_virtual_device_and_says_so_once(fresh_announcement, capsys):
    src = make_source("default", FMT)
    sink = make_sink("default", FMT)
    assert isinstance(src, VirtualSource) and isinstance(sink, VirtualSink)
    assert src.realtime and sink.realtime
    assert not np.any(src.read())                            # silence unless told otherwise
    err = capsys.readouterr().err
    assert err.count("virtual device") == 1 and err.count("\n") == 1
    assert resolve_default("input") == "virtual"


def test_virtual_device_can_play_a_generator():
    src = make_source("virtual:sine:440", FMT)
    assert isinstance(src, VirtualSource) and isinstance(src.signal, SineSource)
    assert src.realtime and np.max(np.abs(src.read())) > 0.4


def test_files_and_subtypes(tmp_path):
    wav = tmp_path / "in.wav"
    sf.write(wav, np.zeros(960, np.float32), 48000)
    assert isinstance(make_source(f"file:{wav}", FMT), WavSource)
    out = make_sink(f"file:{tmp_path}/out.wav", FMT)
    assert isinstance(out, WavSink) and out.subtype == "FLOAT"
    assert make_sink(f"file:{tmp_path}/o16.wav:pcm_16", FMT).subtype == "PCM_16"


def test_raw_and_null(tmp_path):
    assert isinstance(make_source("raw:-", FMT), RawSource)
    sink = make_sink("raw:-", FMT)
    assert isinstance(sink, RawSink) and sink.uses_stdout
    assert isinstance(make_sink(f"raw:{tmp_path}/x.f32", FMT), RawSink)
    null = make_sink("null", FMT)
    assert isinstance(null, NullSink) and not null.realtime


@pytest.mark.parametrize("spec,match", [
    ("", "empty input SPEC"),
    ("bogus", "unknown input SPEC 'bogus'"),
    ("sin:440", "did you mean 'sine'"),
    ("sine:abc", "frequency must be a number"),
    ("sine:0", "above 0"),
    ("sine:24000", "below 24000"),
    ("sine:440:2", "amplitude must be between 0 and 1"),
    ("sine:440:0.5:9", "too many fields"),
    ("sine:nan", "finite"),
    ("chirp:100:90000", "below 24000"),
    ("chirp:100:200:0", "positive number of seconds"),
    ("silence:3", "no arguments"),
    ("null", "null is an output"),
    ("file:", "needs a path"),
    ("file:/no/such/file.wav", "not found"),
    ("raw:", "raw: needs '-'"),
    ("virtual:file:x.wav", "plays a generator"),
    ("device:", "device: needs a name or an index"),  # device lookup: test_devices_*
])
def test_bad_input_specs(spec, match):
    with pytest.raises(UsageError, match=match) as info:
        make_source(spec, FMT)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("spec,match", [
    ("speakers", "unknown output SPEC"),
    ("sine:440", "sine is an input"),
    ("null:x", "no arguments"),
    ("virtual:sine", "no arguments"),
    ("file:out.xyz", r"\*\.wav"),
    ("file:out.flac:FLOAT", "FLAC cannot hold subtype .FLOAT."),
    ("file:out.wav:WHAT", "cannot hold subtype"),
    ("file:/no/such/dir/out.wav", "directory does not exist"),
    ("device: ", "device: needs a name or an index"),
])
def test_bad_output_specs(spec, match):
    with pytest.raises(UsageError, match=match) as info:
        make_sink(spec, FMT)
    assert "\n" not in str(info.value)


def test_wav_mismatch_is_reported_at_parse_time(tmp_path):
    wav = tmp_path / "cd.wav"
    sf.write(wav, np.zeros(441, np.float32), 44100)
    with pytest.raises(UsageError, match="44100 Hz"):
        make_source(f"file:{wav}", FMT)
