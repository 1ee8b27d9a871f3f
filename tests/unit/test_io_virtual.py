"""The virtual device: silence in, output consumed, real time by default, simulated on demand."""

from __future__ import annotations

import numpy as np

from remotemedia.engine.data import NumpyData
from remotemedia.engine.node import AudioFormat
from remotemedia.io.synth import SineSource
from remotemedia.io.virtual import NullSink, VirtualSink, VirtualSource

FMT = AudioFormat(48000, 2, 960)


def test_source_is_silence_in_fresh_blocks():
    source = VirtualSource(FMT)
    with source:
        a, b = source.read(), source.read()
    assert a.shape == (960, 2) and a.dtype == np.float32 and not np.any(a)
    assert not np.shares_memory(a, b)
    assert source.realtime and not source.clocked
    assert "virtual device" in source.description


def test_source_plays_what_it_is_given():
    source = VirtualSource(FMT, SineSource(FMT, 1000.0))
    reference = SineSource(FMT, 1000.0)
    np.testing.assert_array_equal(source.read(), reference.read())
    assert "sine" in source.description


def test_sinks_count_what_they_consume():
    virtual, null = VirtualSink(FMT), NullSink(FMT)
    for sink in (virtual, null):
        with sink:
            sink.write(NumpyData(np.zeros((960, 2), np.float32)))
            sink.write(NumpyData(np.zeros((100, 2), np.float32)))
        assert (sink.frames, sink.samples) == (2, 1060)
    assert virtual.realtime and not null.realtime
