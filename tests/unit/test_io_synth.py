"""Generated sources: the right signal, the right layout, fresh buffers, deterministic."""

from __future__ import annotations

import numpy as np
import pytest

from remotemedia.engine.node import AudioFormat
from remotemedia.io.synth import ChirpSource, NoiseSource, SilenceSource, SineSource

MONO = AudioFormat(48000, 1, 960)
STEREO = AudioFormat(48000, 2, 960)


def take(source, blocks: int) -> np.ndarray:
    return np.concatenate([source.read() for _ in range(blocks)])


def test_sine_matches_the_formula_across_block_boundaries():
    x = take(SineSource(MONO, 1000.0, 0.5), 50)
    t = np.arange(x.shape[0]) / 48000
    expected = 0.5 * np.sin(2 * np.pi * 1000.0 * t)
    assert x.dtype == np.float32 and x.shape == (48000,)
    np.testing.assert_allclose(x, expected, atol=1e-6)


def test_sine_frequency_is_where_the_spectrum_peaks():
    x = take(SineSource(MONO, 440.0), 50)           # 1 s: 1 Hz per FFT bin
    assert int(np.argmax(np.abs(np.fft.rfft(x)))) == 440


def test_sine_phase_stays_clean_after_an_hour():
    source = SineSource(MONO, 997.0, 0.5)
    for _ in range(180_000):                         # 3600 s of 20 ms blocks, phase only
        source._phase = np.fmod(source._phase + source._step * 960, 2 * np.pi)
    block = source.read()
    n0 = 180_000 * 960
    t = (n0 + np.arange(960)) / 48000
    np.testing.assert_allclose(block, 0.5 * np.sin(2 * np.pi * 997.0 * t), atol=2e-4)


@pytest.mark.parametrize("cls", [SineSource, ChirpSource, NoiseSource, SilenceSource])
def test_layout_and_fresh_buffers(cls):
    mono, stereo = cls(MONO), cls(STEREO)
    a, b = mono.read(), mono.read()
    assert a.shape == (960,) and a.dtype == np.float32
    # Each block is handed over to the engine, which may write it: never reuse a buffer.
    assert not np.shares_memory(a, b)
    s = stereo.read()
    assert s.shape == (960, 2)
    if cls is not NoiseSource:
        np.testing.assert_array_equal(s[:, 0], s[:, 1])
    assert a.flags.writeable and s.flags.writeable


def zero_crossings(seg: np.ndarray) -> int:
    return int(np.sum(np.signbit(seg[1:]) != np.signbit(seg[:-1])))


def test_chirp_sweeps_upward_and_repeats():
    fmt = AudioFormat(8000, 1, 800)
    x = take(ChirpSource(fmt, 100.0, 3000.0, seconds=1.0), 20)   # two sweeps
    assert np.max(np.abs(x)) <= 0.5 + 1e-6
    first, last = x[:800], x[7200:8000]
    assert zero_crossings(last) > 5 * zero_crossings(first)
    np.testing.assert_array_equal(x[8000:16000], x[:8000])


def test_noise_channels_are_uncorrelated():
    s = NoiseSource(STEREO).read()
    assert abs(np.corrcoef(s[:, 0], s[:, 1])[0, 1]) < 0.2


def test_noise_is_bounded_and_repeatable():
    a = take(NoiseSource(MONO, 0.25, seed=3), 10)
    b = take(NoiseSource(MONO, 0.25, seed=3), 10)
    c = take(NoiseSource(MONO, 0.25, seed=4), 10)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.max(np.abs(a)) <= 0.25 and 0.1 < np.std(a) < 0.2


def test_silence_is_zeros():
    assert not np.any(take(SilenceSource(STEREO), 3))
