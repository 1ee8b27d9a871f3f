"""A run (closures.runs_of: one-input steps, each the only consumer of the one before, taken
through in one generated function) does exactly what its steps do one by one. Tracing compiles
no runs, so a traced session is the step-by-step reference: outputs, copies, drops, errors and
every node's calls must match, over random chains of every kind of member (taken as it comes,
a requirement checked by dtype and adapted when the dtype misses it, a node that fails and is
skipped, one that buffers and releases on events, one that retains, a linear node between
runs), blocks of several dtypes, shared and handed over, and events."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings, strategies as st

import remotemedia as rm
from remotemedia.engine.closures import MAX_RUN
from remotemedia.engine.data import ControlData, NumpyData
from remotemedia.engine.node import InputRequirement, Node, Param
from remotemedia.testing import isolated_registry

REGISTRY = isolated_registry()


class Halve(Node):
    """A writing node the engine cannot fuse: float input (integer PCM adapted, an engine
    copy), halved in place where it may."""
    node_type = "TestHalve"
    requires = InputRequirement(dtype="floating")

    def process(self, frame):
        out = frame.writable()
        out *= 0.5
        return frame.with_array(out)


class Flaky(Node):
    """Fails on every `every`-th block (with on_error: skip, the block is dropped)."""
    node_type = "TestFlaky"
    params = (Param("every", int, 3, "fail every n-th block", min=1),)

    def setup(self):
        self.seen = 0

    def process(self, frame):
        self.seen += 1
        if self.seen % self.every == 0:
            raise RuntimeError("flaky")
        return frame


REGISTRY.register(Halve)
REGISTRY.register(Flaky)

MEMBERS = {
    "PassThrough": ("PassThrough", {}, {}),
    "Halve": ("TestHalve", {}, {}),
    "Flaky": ("TestFlaky", {"every": 3}, {"on_error": "skip"}),
    "Delay": ("Delay", {"samples": 5}, {}),
    "Reframe": ("Reframe", {"size": 480}, {}),
    "Gain": ("Gain", {"linear": 2.0}, {}),
}


def chain(kinds: list[str]) -> dict:
    nodes = []
    for i, kind in enumerate(kinds):
        node_type, params, extra = MEMBERS[kind]
        nodes.append({"id": f"n{i}", "node_type": node_type, "params": params, **extra})
    ids = ["input"] + [n["id"] for n in nodes] + ["output"]
    return {"version": "v1", "nodes": nodes,
            "connections": [{"from": a, "to": b} for a, b in zip(ids, ids[1:])]}


def run(manifest: dict, traced: bool, blocks: list, fuse: bool):
    spans: dict = {}
    trace = (lambda node_id: spans.setdefault(node_id, [])) if traced else None
    outs = []
    with rm.Pipeline.from_manifest(manifest, registry=REGISTRY).session(
            trace=trace, fuse=fuse) as s:
        for block, transfer, event in blocks:
            outs.append(s.push(block.copy(), transfer=transfer))
            if event:
                outs.append(s.push(ControlData(event)))
        outs.append(s.end_of_stream())
        stats = s.stats()
        runs = s.schedule.steps[0].receive_numpy.__code__.co_filename
    flat = [(type(o).__name__, o.array.tolist() if isinstance(o, NumpyData) else str(o))
            for out in outs for o in out]
    calls = {k: (v["calls"], v["errors"]) for k, v in stats["nodes"].items()}
    return flat, calls, stats["copies"], stats["drops"], stats["errors"], runs


BLOCK = st.tuples(
    st.sampled_from(["float32", "float64", "int16"]),
    st.booleans(),                                   # handed over
    st.sampled_from([None, None, "flush", "reset", "discontinuity"]))


@settings(max_examples=40, deadline=None)
@given(kinds=st.lists(st.sampled_from(sorted(MEMBERS)), min_size=2, max_size=12),
       blocks=st.lists(BLOCK, min_size=1, max_size=8), fuse=st.booleans())
def test_a_run_does_what_its_steps_do_one_by_one(kinds, blocks, fuse):
    rng = np.random.default_rng(len(kinds))
    made = [((rng.standard_normal(960) * 1000).astype(dtype), transfer, event)
            for dtype, transfer, event in blocks]
    manifest = chain(kinds)
    steps = run(manifest, True, made, fuse)
    together = run(manifest, False, made, fuse)
    assert together[:5] == steps[:5]


def test_a_chain_of_plain_nodes_is_taken_through_in_runs():
    manifest = chain(["PassThrough", "Halve", "PassThrough", "Gain", "PassThrough",
                      "PassThrough"])
    with rm.Pipeline.from_manifest(manifest, registry=REGISTRY).session() as s:
        first, after_gain = s.schedule.steps[0], s.schedule.steps[4]
        assert "KIND=run" in first.receive_numpy.__code__.co_filename
        assert "KIND=run" in after_gain.receive_numpy.__code__.co_filename
        out = s.push(np.ones(960, np.float32))
        np.testing.assert_array_equal(out[0].array, np.ones(960, np.float32))
        assert [st["calls"] for st in s.stats()["nodes"].values()] == [1] * 6
        s.reset_stats()
        assert [st["calls"] for st in s.stats()["nodes"].values()] == [0] * 6


def test_a_long_chain_is_several_runs():
    manifest = chain(["PassThrough"] * (2 * MAX_RUN + 1))
    with rm.Pipeline.from_manifest(manifest, registry=REGISTRY).session() as s:
        heads = [i for i, step in enumerate(s.schedule.steps)
                 if "KIND=run" in step.receive_numpy.__code__.co_filename]
        assert heads == [0, MAX_RUN]
        assert len(s.push(np.zeros(960, np.float32))) == 1
