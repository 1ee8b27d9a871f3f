"""Nodes that measure audio and report what they see, passing the audio on untouched."""

from __future__ import annotations

import numpy as np

from ..engine.data import JsonData
from ..engine.node import Node, Param, register_node

# One definition of full scale and dBFS for the whole package (engine/levels.py); re-exported
# here for nodes written against this module.
from ..engine.levels import LEVEL_RANGE, SILENCE_DBFS, full_scale, measure, to_dbfs  # noqa: F401


def rms_and_peak(array: np.ndarray) -> tuple[float, float]:
    """RMS and peak of the finite samples (all channels), in units of full scale."""
    rms, peak, _ = measure(array)
    return rms, peak


@register_node
class LevelMeter(Node):
    """Measures RMS and peak over all channels (finite samples only, units of full scale) and
    emits {"type": "level", "node", "pts", "seq", "rms_dbfs", "peak_dbfs", "clipped", ...}
    every `every` blocks; levels are dBFS rounded to 0.01, floored at -120 (engine/levels.py).
    Any dtype, (samples,) or (samples, channels); the block passes on untouched."""

    node_type = "LevelMeter"
    description = "Measure RMS and peak in dBFS; emit a Json reading, pass the audio on."
    #: audio leaves as it came (a file output then keeps the input's sample format)
    keeps_samples = True
    params = (
        Param("every", int, 1, "emit one reading every N frames", min=1),
        Param("clip_dbfs", float, -0.01, "a peak at or above this counts as clipped",
              **LEVEL_RANGE),
    )

    def setup(self):
        """Resets the block count; `clip_dbfs` as a linear level."""
        self._count = 0
        self._clip_level = 10 ** (self.clip_dbfs / 20.0)

    def process(self, frame):
        """The block itself, and every `every` blocks a level reading (JsonData) after it."""
        self._count += 1
        if self._count < self.every:
            return frame
        self._count = 0
        rms, peak, non_finite = measure(frame.array)
        # Levels are over the finite samples; NaN or Inf beside them is counted, never read as
        # silence (nor as a level no JSON can hold).
        reading = JsonData({
            "type": "level", "node": self.node_id, "pts": frame.pts, "seq": frame.seq,
            "rms_dbfs": to_dbfs(rms), "peak_dbfs": to_dbfs(peak),
            "clipped": peak >= self._clip_level, "non_finite": non_finite,
        }, pts=frame.pts)
        return (frame, reading)
