"""Generated sources: sine, chirp, noise and silence.

Each returns blocks of `block_size` samples, shaped (samples,) for mono and (samples, channels)
otherwise, with every channel the same signal (noise excepted: its channels are uncorrelated).
They never end (a run stops at --duration or a signal), are not clocked (the runner paces them
when a device is involved), and are deterministic: the same spec gives the same samples, so a
test can regenerate what a run played. Each block is a fresh buffer handed over to the engine,
which may write it in place.

A sine carries its phase wrapped to one cycle and a chirp computes its phase in closed form, so
neither loses precision over hours.
"""

from __future__ import annotations

import math

import numpy as np

from ..engine.node import AudioFormat
from .base import Source

DTYPE = np.float32


class _Generator(Source):
    realtime = False
    clocked = False
    #: never returns None; the CLI warns when such a run is neither paced nor bounded
    endless = True

    def __init__(self, fmt: AudioFormat):
        super().__init__(fmt)
        self.sample_rate = fmt.sample_rate
        self.block_size = fmt.block_size
        self.channels = fmt.channels or 1
        self._shape = (self.block_size,) if self.channels == 1 else (self.block_size,
                                                                     self.channels)

    def _spread(self, mono: np.ndarray) -> np.ndarray:
        # Mono signal into the block layout; the multichannel case needs one buffer of its own.
        if self.channels == 1:
            return mono
        out = np.empty(self._shape, dtype=DTYPE)
        out[:] = mono[:, None]
        return out


class SineSource(_Generator):
    """A sine at `freq` Hz and `amplitude` (linear, full scale = 1.0)."""

    def __init__(self, fmt: AudioFormat, freq: float = 440.0, amplitude: float = 0.5):
        super().__init__(fmt)
        self.freq = freq
        self.amplitude = amplitude
        self.description = f"sine {freq:g} Hz"
        self._step = 2.0 * math.pi * freq / self.sample_rate
        self._index = np.arange(self.block_size, dtype=np.float64)
        self._scratch = np.empty(self.block_size, dtype=np.float64)
        self._phase = 0.0

    def read(self) -> np.ndarray:
        """The next block of the sine, float32 (block_size,) or (block_size, channels), phase
        continuous across blocks; never ends."""
        phase = self._scratch
        np.multiply(self._index, self._step, out=phase)
        phase += self._phase
        np.sin(phase, out=phase)
        phase *= self.amplitude
        self._phase = math.fmod(self._phase + self._step * self.block_size, 2.0 * math.pi)
        return self._spread(phase.astype(DTYPE))


class ChirpSource(_Generator):
    """A logarithmic sweep from f0 to f1 Hz over `seconds`, then again from f0, each sweep
    starting at phase 0 (so the signal is periodic)."""

    def __init__(self, fmt: AudioFormat, f0: float = 20.0, f1: float | None = None,
                 seconds: float = 5.0, amplitude: float = 0.5):
        super().__init__(fmt)
        self.f0 = f0
        self.f1 = f1 if f1 is not None else min(20000.0, 0.45 * self.sample_rate)
        self.seconds = seconds
        self.amplitude = amplitude
        self.description = f"chirp {self.f0:g}-{self.f1:g} Hz / {seconds:g} s"
        self._period = max(1, int(round(seconds * self.sample_rate)))
        # f(t) = f0 * exp(k t / T); its phase has a closed form, so nothing accumulates.
        self._k = math.log(self.f1 / self.f0) or 1e-12
        self._scale = 2.0 * math.pi * self.f0 * seconds / self._k
        self._index = np.arange(self.block_size, dtype=np.float64)
        self._pos = 0

    def read(self) -> np.ndarray:
        """The next block of the logarithmic sweep (repeating every `seconds`), float32; never
        ends."""
        t = self._index + self._pos
        np.remainder(t, self._period, out=t)
        t *= self._k / self.sample_rate / self.seconds
        np.expm1(t, out=t)
        t *= self._scale
        np.sin(t, out=t)
        t *= self.amplitude
        self._pos = (self._pos + self.block_size) % self._period
        return self._spread(t.astype(DTYPE))


class NoiseSource(_Generator):
    """Uniform white noise in [-amplitude, amplitude), seeded so runs repeat; each channel
    gets its own (uncorrelated) noise."""

    def __init__(self, fmt: AudioFormat, amplitude: float = 0.25, seed: int = 0):
        super().__init__(fmt)
        self.amplitude = amplitude
        self.description = f"white noise {amplitude:g}"
        self._rng = np.random.default_rng(seed)

    def read(self) -> np.ndarray:
        """The next block of uniform white noise at the amplitude, float32 (seeded: runs
        repeat); never ends."""
        out = self._rng.random(self._shape, dtype=DTYPE)
        out *= 2.0 * self.amplitude
        out -= self.amplitude
        return out


class SilenceSource(_Generator):
    """Zeros."""

    description = "silence"

    def read(self) -> np.ndarray:
        """A block of zeros, float32; never ends."""
        return np.zeros(self._shape, dtype=DTYPE)
