"""A node on `executor: thread` whose process() is a generator hands its outputs back item by
item as it makes them (Speak's blocks, Respond's sentences), not all at the end."""

from __future__ import annotations

import threading

import numpy as np

import remotemedia as rm
from remotemedia.engine.data import NumpyData, TextData
from remotemedia.testing import isolated_registry, wait_until

RELEASE = threading.Event()


class TwoParts(rm.Node):
    """Emits 'first' at once, then 'second' only once RELEASE is set."""

    node_type = "TwoPartsForThreadTests"
    description = "a generator that waits between its two outputs"

    def process(self, frame):
        yield TextData("first")
        RELEASE.wait(30)
        yield TextData("second")


def test_a_generators_items_leave_as_they_are_made():
    reg = isolated_registry()
    reg.register(TwoParts)
    m = {"version": "v1", "audio": {"sample_rate": 48000, "block_size": 960},
         "nodes": [{"id": "g", "node_type": "TwoPartsForThreadTests", "executor": "thread"}],
         "connections": [{"from": "input", "to": "g"}, {"from": "g", "to": "output"}]}
    RELEASE.clear()
    with rm.Pipeline.from_manifest(m, registry=reg).session() as s:
        outs = s.push(NumpyData(np.zeros(960, np.float32)))
        got: list = [o.text for o in outs if o.kind == "text"]
        # the worker has handed back its first item while it waits before the second
        transport = s.node("g").transport
        wait_until(lambda: transport._done, "the first item handed back", timeout=30)
        got += [o.text for o in s.push(NumpyData(np.zeros(960, np.float32)))
                if o.kind == "text"]
        assert got == ["first"]
        assert "second" not in got
        RELEASE.set()
        got.extend(o.text for o in s.end_of_stream() if o.kind == "text")
    assert got.count("first") >= 1 and got.count("second") >= 1
    assert got.index("first") < got.index("second")
