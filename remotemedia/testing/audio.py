"""Assertions audio people need: closeness in dB of SNR, alignment by cross-correlation, and
golden files with an update switch.

SNR here is the signal-to-noise ratio of `actual` against `expected` taken as the reference:
10 log10(sum(expected^2) / sum((actual - expected)^2)) dB (the usual definition, e.g. ITU-T
P.10 "signal-to-noise ratio"); identical signals have an infinite SNR.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..engine import strictjson

UPDATE_ENV = "REMOTEMEDIA_UPDATE_GOLDEN"


def snr_db(actual: np.ndarray, expected: np.ndarray) -> float:
    """SNR of `actual` against `expected` (same shape), in dB; math.inf when identical.
    Raises ValueError when the shapes differ."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape:
        raise ValueError(f"shapes differ: actual {a.shape}, expected {e.shape}")
    noise = float(np.sum((a - e) ** 2))
    signal = float(np.sum(e ** 2))
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


def align(actual: np.ndarray, expected: np.ndarray, max_lag: int | None = None) -> int:
    """The lag in samples (>= 0: `actual` is late) that best lines `actual` up with
    `expected`, from the peak of their cross-correlation (computed by FFT over the first
    channel). `max_lag` bounds the search."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    a = a[:, 0] if a.ndim == 2 else a
    e = e[:, 0] if e.ndim == 2 else e
    n = a.shape[0] + e.shape[0] - 1
    size = 1 << max(1, (n - 1).bit_length())
    xc = np.fft.irfft(np.fft.rfft(a, size) * np.conj(np.fft.rfft(e, size)), size)
    # xc[k] for k >= 0 is actual lagging by k; negative lags sit at the end.
    lags = np.concatenate((np.arange(0, a.shape[0]), np.arange(-(e.shape[0] - 1), 0)))
    values = np.concatenate((xc[:a.shape[0]], xc[size - (e.shape[0] - 1):]))
    if max_lag is not None:
        keep = np.abs(lags) <= max_lag
        lags, values = lags[keep], values[keep]
    return int(lags[int(np.argmax(values))])


def assert_audio_close(actual: np.ndarray, expected: np.ndarray, *, snr_db_min: float = 60.0,
                       align_max_lag: int | None = None, msg: str = "") -> float:
    """Assert `actual` matches `expected` to at least `snr_db_min` dB of SNR. With
    `align_max_lag`, `actual` is first shifted by the lag found by `align()` (within that many
    samples) and both are cut to their overlap. Returns the SNR. Raises AssertionError saying
    the SNR, the lag, the peak difference and the first differing sample."""
    a = np.asarray(actual)
    e = np.asarray(expected)
    lag = 0
    if align_max_lag is not None:
        lag = align(a, e, align_max_lag)
        a = a[lag:] if lag >= 0 else np.concatenate((np.zeros((-lag,) + a.shape[1:], a.dtype),
                                                     a))
    n = min(a.shape[0], e.shape[0])
    if align_max_lag is None and a.shape != e.shape:
        raise AssertionError(f"{msg + ': ' if msg else ''}shapes differ: actual {a.shape}, "
                             f"expected {e.shape}")
    a, e = a[:n], e[:n]
    value = snr_db(a, e)
    if value < snr_db_min:
        diff = np.abs(a.astype(np.float64) - e.astype(np.float64))
        first = int(np.flatnonzero(diff.reshape(n, -1).max(axis=1) > 0)[0])
        raise AssertionError(f"{msg + ': ' if msg else ''}SNR {value:.1f} dB < {snr_db_min} dB "
                             f"(lag {lag}, peak difference {diff.max():.3g}, first differing "
                             f"sample {first})")
    return value


class Golden:
    """Golden files under `directory`: `check_json(name, value)` and
    `check_audio(name, samples, rate)` compare with the stored file and fail saying how they
    differ; with `update` (or REMOTEMEDIA_UPDATE_GOLDEN=1, or pytest --update-golden through
    the plugin) they write the file instead. A missing golden file fails, naming the switch."""

    def __init__(self, directory: str | os.PathLike, update: bool | None = None):
        self.directory = Path(directory)
        self.update = bool(os.environ.get(UPDATE_ENV)) if update is None else update

    def _missing(self, path: Path):
        raise AssertionError(f"no golden file {path}; run with --update-golden (or "
                             f"{UPDATE_ENV}=1) to write it")

    def check_json(self, name: str, value: Any) -> None:
        """Compares `value` with golden/<name>.json as parsed JSON (strict RFC 8259); writes it
        instead when updating. AssertionError naming the file when it differs or is missing."""
        path = self.directory / f"{name}.json"
        text = strictjson.dumps(value, indent=2, sort_keys=True) + "\n"
        if self.update:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            return
        if not path.exists():
            self._missing(path)
        stored = json.loads(path.read_text(encoding="utf-8"))
        fresh = json.loads(text)
        if stored != fresh:
            raise AssertionError(f"{path} differs from the value: stored {stored!r}, "
                                 f"now {fresh!r}")

    def check_audio(self, name: str, samples: np.ndarray, rate: int, *,
                    snr_db_min: float = math.inf) -> None:
        """Compares float32 `samples` ((samples,) or (samples, channels)) at `rate` Hz with
        golden/<name>.wav: exactly by default, or to an SNR of at least `snr_db_min` dB
        (assert_audio_close). Writes a 32-bit float WAV instead when updating. AssertionError
        naming the file when it differs, has another rate, or is missing."""
        import soundfile as sf
        path = self.directory / f"{name}.wav"
        if self.update:
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, samples, rate, subtype="FLOAT")
            return
        if not path.exists():
            self._missing(path)
        stored, stored_rate = sf.read(path, dtype="float32", always_2d=np.ndim(samples) == 2)
        if stored_rate != rate:
            raise AssertionError(f"{path} is {stored_rate} Hz, the audio {rate} Hz")
        if math.isinf(snr_db_min):
            if stored.shape != np.shape(samples) or not np.array_equal(
                    stored, np.asarray(samples, np.float32)):
                assert_audio_close(samples, stored, snr_db_min=1e9, msg=str(path))
        else:
            assert_audio_close(samples, stored, snr_db_min=snr_db_min, msg=str(path))
