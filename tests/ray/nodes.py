"""Nodes the Ray tests run in actors (imported there as `tests.ray.nodes`)."""

from __future__ import annotations

import os
import time

from remotemedia.engine.data import JsonData, TextData
from remotemedia.engine.node import Node, Param


class Affine(Node):
    """y = x * 3 + 1 in the input's own dtype, with a metadata mark and a Json event."""

    node_type = "tests.ray.nodes:Affine"

    def process(self, frame):
        a = frame.array
        out = frame.with_array(a * a.dtype.type(3) + a.dtype.type(1),
                               metadata={**frame.metadata, "affine": True})
        return [out, JsonData({"type": "affine", "seq": frame.seq}, pts=frame.pts)]

    def on_control(self, event):
        return [TextData(f"saw {event.event}")]


class Sleepy(Node):
    """Sleeps `delay_ms` per frame; from frame seq `hang_at` on it never answers."""

    node_type = "tests.ray.nodes:Sleepy"
    params = (Param("delay_ms", float, 0.0), Param("hang_at", int, -1))

    def process(self, frame):
        if frame.seq == self.hang_at:
            time.sleep(3600)
        if self.delay_ms:
            time.sleep(self.delay_ms / 1000)
        return frame


class Raiser(Node):
    """Raises ValueError on frame seq `at`."""

    node_type = "tests.ray.nodes:Raiser"
    params = (Param("at", int, 0),)

    def process(self, frame):
        if frame.seq == self.at:
            raise ValueError(f"refusing frame {frame.seq}")
        return frame


class Where(Node):
    """Says where it runs: a Json event with its pid, then the frame."""

    node_type = "tests.ray.nodes:Where"

    def process(self, frame):
        return [JsonData({"pid": os.getpid()}), frame]
