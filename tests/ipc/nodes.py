"""Nodes the ipc tests run in worker processes (imported there as `tests.ipc.nodes`)."""

from __future__ import annotations

import os
import pickle
import signal
import time

import numpy as np

from remotemedia.engine.data import JsonData, TextData
from remotemedia.engine.node import Node, Param

ANY = frozenset({"numpy", "text", "json", "binary"})


class Affine(Node):
    """y = x * 3 + 1 in the input's own dtype (integers wrap the same way in any process)."""

    node_type = "tests.ipc.nodes:Affine"

    def process(self, frame):
        a = frame.array
        return frame.with_array(a * a.dtype.type(3) + a.dtype.type(1),
                                metadata={**frame.metadata, "affine": True})


class Sleepy(Node):
    """Sleeps `delay_ms` per frame; from frame seq `hang_at` on it never answers."""

    node_type = "tests.ipc.nodes:Sleepy"
    params = (Param("delay_ms", float, 0.0), Param("hang_at", int, -1))

    def process(self, frame):
        if frame.seq == self.hang_at:
            time.sleep(3600)
        if self.delay_ms:
            time.sleep(self.delay_ms / 1000)
        return frame


class Raiser(Node):
    """Raises ValueError on frame seq `at`."""

    node_type = "tests.ipc.nodes:Raiser"
    params = (Param("at", int, 0),)

    def process(self, frame):
        if frame.seq == self.at:
            raise ValueError(f"refusing frame {frame.seq}")
        return frame


class SelfKill(Node):
    """SIGKILLs its own process on frame seq `at`."""

    node_type = "tests.ipc.nodes:SelfKill"
    params = (Param("at", int, 0),)

    def process(self, frame):
        if frame.seq == self.at:
            os.kill(os.getpid(), signal.SIGKILL)
        return frame


class Inspect(Node):
    """Reports how the frame looks inside the worker: a Json event per frame, then the frame."""

    node_type = "tests.ipc.nodes:Inspect"
    accepts = ANY

    def process(self, frame):
        if not hasattr(frame, "array"):
            return [TextData(f"saw {frame.kind}"), frame]
        a = frame.array
        base = a
        while isinstance(base, np.ndarray) and base.base is not None:
            base = base.base
        return [JsonData({"pid": os.getpid(), "writeable": bool(a.flags.writeable),
                          "base": type(base).__name__, "strides": list(a.strides),
                          "metadata": dict(frame.metadata)}), frame]


class Hold(Node):
    """Keeps every frame until a flush or end of stream, then releases them all."""

    node_type = "tests.ipc.nodes:Hold"
    retains_input = True

    def setup(self):
        self.held = []

    def process(self, frame):
        self.held.append(frame)

    def on_control(self, event):
        held, self.held = self.held, []
        return held


class Pickler(Node):
    """Pickles each array inside the worker: a serialization event the engine must see."""

    node_type = "tests.ipc.nodes:Pickler"

    def process(self, frame):
        pickle.dumps(frame.array)
        return frame


class BadSetup(Node):
    node_type = "tests.ipc.nodes:BadSetup"

    def setup(self):
        raise RuntimeError("no model file here")

    def process(self, frame):
        return frame


class Unsendable(Node):
    """Answers frame seq `at` with an object array, which cannot cross a process boundary."""

    node_type = "tests.ipc.nodes:Unsendable"
    params = (Param("at", int, 0),)

    def process(self, frame):
        if frame.seq == self.at:
            return frame.with_array(np.array([object()] * 3, dtype=object))
        return frame
