"""Nodes the executor tests run on a worker thread, process or Ray actor (importable there as
`tests.executors.nodes`)."""

from __future__ import annotations

import time

from remotemedia.engine.data import JsonData
from remotemedia.engine.node import Node, Param


class Slow(Node):
    """Sleeps `delay_ms` per block, as inference would take, then passes the block on."""

    node_type = "tests.executors.nodes:Slow"
    params = (Param("delay_ms", float, 0.0),)

    def process(self, frame):
        if self.delay_ms:
            time.sleep(self.delay_ms / 1000)
        return frame


class Raiser(Node):
    """Raises ValueError on the block with seq `at`."""

    node_type = "tests.executors.nodes:Raiser"
    params = (Param("at", int, 0),)

    def process(self, frame):
        if frame.seq == self.at:
            raise ValueError(f"refusing frame {frame.seq}")
        return frame


class Exits(Node):
    """Raises SystemExit on the block with seq `at`: the thread, process or actor running it
    ends, which is a crash wherever it runs."""

    node_type = "tests.executors.nodes:Exits"
    params = (Param("at", int, 0),)

    def process(self, frame):
        if frame.seq == self.at:
            raise SystemExit(f"exiting at frame {frame.seq}")
        return frame


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


class Holds(Node):
    """Keeps every block until flush or end of stream (declares retains_input)."""

    node_type = "tests.executors.nodes:Holds"
    retains_input = True

    def setup(self):
        self.held = []

    def process(self, frame):
        self.held.append(frame)
        return None

    def on_control(self, event):
        held, self.held = self.held, []
        return held


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
