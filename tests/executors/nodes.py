"""Nodes the executor tests run on a worker thread (importable as `tests.executors.nodes`);
a slow node and a failing one are remotemedia.testing.executor_checks' CheckSlow and
CheckFails."""

from __future__ import annotations

import time

from remotemedia.engine.data import JsonData
from remotemedia.engine.node import Node, Param


class Hangs(Node):
    """Never answers the block with seq `at` (sleeps `hang_s`)."""

    node_type = "tests.executors.nodes:Hangs"
    params = (Param("at", int, 0), Param("hang_s", float, 3600.0))

    def process(self, frame):
        if frame.seq == self.at:
            time.sleep(self.hang_s)
        return frame


class Writer(Node):
    """Negates every block through frame.writable() (in place when it is the sole reader)."""

    node_type = "tests.executors.nodes:Writer"

    def process(self, frame):
        a = frame.writable()
        a *= -1
        return frame.with_array(a)


class Clocked(Node):
    """Emits the run's clock as it reads it for each block: {"type": "clock", "t": s}."""

    node_type = "tests.executors.nodes:Clocked"

    def process(self, frame):
        return [JsonData({"type": "clock", "t": self.context.clock(), "seq": frame.seq}),
                frame]


class BadSetup(Node):
    """setup() raises: a model that will not load."""

    node_type = "tests.executors.nodes:BadSetup"

    def setup(self):
        raise OSError("model file missing")


class Inference(Node):
    """A node that runs on a worker thread unless its manifest says otherwise."""

    node_type = "tests.executors.nodes:Inference"
    default_executor = "thread"

    def process(self, frame):
        import threading
        return [JsonData({"thread": threading.current_thread().name}), frame]


class Lifecycle(Node):
    """Records on which thread setup() and teardown() ran, in the class list `seen`."""

    node_type = "tests.executors.nodes:Lifecycle"
    seen: list = []

    def setup(self):
        import threading
        Lifecycle.seen.append(("setup", threading.current_thread().name))

    def teardown(self):
        import threading
        Lifecycle.seen.append(("teardown", threading.current_thread().name))


class Scripted(Node):
    """Sleeps as many ms as the block's first sample says; raises ValueError when it is < 0."""

    node_type = "tests.executors.nodes:Scripted"

    def process(self, frame):
        ms = float(frame.array[0])
        if ms < 0:
            raise ValueError(f"scripted failure at frame {frame.seq}")
        if ms:
            time.sleep(ms / 1000)
        return frame
