"""Nodes that measure audio and report what they see, passing the audio on untouched."""

from __future__ import annotations

import math

import numpy as np

from ..engine.data import JsonData
from ..engine.node import Node, Param, register_node

SILENCE_DBFS = -120.0


def full_scale(dtype: np.dtype) -> float:
    """The value that means 0 dBFS for this dtype."""
    if dtype.kind in "iu":
        return float(np.iinfo(dtype).max) + 1.0
    return 1.0


def to_dbfs(value: float) -> float:
    return round(20.0 * math.log10(value), 2) if value > 1e-6 else SILENCE_DBFS


def rms_and_peak(array: np.ndarray) -> tuple[float, float]:
    """RMS and peak of all samples (all channels), in units of full scale."""
    if array.size == 0:
        return 0.0, 0.0
    scale = full_scale(array.dtype)
    if array.dtype.kind == "u":  # unsigned PCM is centred on half scale
        centred = array.astype(np.float64) - scale / 2
        scale /= 2
    elif array.dtype.kind == "f" and array.ndim == 1 and array.flags.c_contiguous:
        flat = array
        peak = float(max(flat.max(), -flat.min()))
        return math.sqrt(float(np.dot(flat, flat)) / flat.size) / scale, peak / scale
    else:
        centred = array.astype(np.float64, copy=False)
    peak = float(np.max(np.abs(centred)))
    rms = math.sqrt(float(np.mean(np.square(centred))))
    return rms / scale, peak / scale


@register_node
class LevelMeter(Node):
    node_type = "LevelMeter"
    description = "Measure RMS and peak in dBFS; emit a Json reading, pass the audio on."
    params = (
        Param("every", int, 1, "emit one reading every N frames", min=1),
        Param("clip_dbfs", float, -0.01, "a peak at or above this counts as clipped"),
    )

    def setup(self):
        self._count = 0
        self._clip_level = 10 ** (self.clip_dbfs / 20.0)

    def process(self, frame):
        self._count += 1
        if self._count < self.every:
            return frame
        self._count = 0
        rms, peak = rms_and_peak(frame.array)
        reading = JsonData({
            "type": "level", "node": self.node_id, "pts": frame.pts, "seq": frame.seq,
            "rms_dbfs": to_dbfs(rms), "peak_dbfs": to_dbfs(peak),
            "clipped": peak >= self._clip_level,
        }, pts=frame.pts)
        return (frame, reading)
