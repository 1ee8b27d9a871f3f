"""Feedback connections: an edge into a node's declared feedback input that closes a cycle (an
echo canceller's reference from the node that feeds the output) is taken out of the order, its
blocks reach the node through feedback(), and the fan-in does not wait for it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import remotemedia as rm
from remotemedia.engine.errors import ManifestError
from remotemedia.engine.node import Node
from remotemedia.testing.registry import isolated_registry

ROOT = Path(__file__).resolve().parents[2]


class Loop(Node):
    """Fan-in: `x` forward, `ref` feedback; passes `x` on and records what came back."""

    node_type = "Loop"
    inputs = "many"
    feedback_inputs = ("ref",)

    def setup(self):
        self.calls = []       # the input names each process() call got
        self.fed = []         # (name, pts, first sample) of each feedback() call

    def process(self, frames):
        self.calls.append(sorted(frames))
        return frames["x"]

    def feedback(self, name, frame):
        self.fed.append((name, frame.pts, float(frame.array[0])))


def registry():
    reg = isolated_registry()
    reg.register(Loop, "Loop")
    return reg


def loop_manifest(rate=None, ref_input="ref") -> dict:
    loop = {"id": "loop", "node_type": "Loop"}
    gain = {"id": "g", "node_type": "Gain", "params": {"db": 20.0}}
    nodes = [loop, gain]
    conns = [{"from": "input", "to": "loop", "input": "x"}, {"from": "loop", "to": "g"},
             {"from": "g", "to": "output"}, {"from": "g", "to": "loop", "input": ref_input}]
    if rate:
        nodes.append({"id": "rs", "node_type": "Resample", "params": {"rate": rate}})
        conns[-1] = {"from": "g", "to": "rs"}
        conns.append({"from": "rs", "to": "loop", "input": ref_input})
    return {"version": "v1", "audio": {"sample_rate": 48000, "block_size": 960,
                                       "channels": 1},
            "nodes": nodes, "connections": conns}


def test_the_edge_that_closes_the_loop_is_feedback_and_out_of_the_order():
    m = rm.Pipeline.from_manifest(loop_manifest(), registry=registry()).manifest
    feedback = [c for c in m.connections if c.feedback]
    assert [(c.source, c.target, c.input) for c in feedback] == [("g", "loop", "ref")]
    assert m.order == ("loop", "g")


def test_blocks_go_round_the_loop_through_feedback_and_the_fan_in_does_not_wait():
    pipe = rm.Pipeline.from_manifest(loop_manifest(), registry=registry())
    with pipe.session() as s:
        outs = []
        for k in range(3):
            block = np.full(960, 0.01 * (k + 1), dtype=np.float32)
            outs += s.push(rm.RuntimeData.Numpy(block, sample_rate=48000, pts=k * 960, seq=k))
        loop = s.schedule.step_by_id["loop"].node
        st = s.stats()
    assert loop.calls == [["x"], ["x"], ["x"]]
    # what g sent (10x the input) came back, in order, with its pts
    assert [(n, p) for n, p, _ in loop.fed] == [("ref", 0), ("ref", 960), ("ref", 1920)]
    assert np.allclose([v for _, _, v in loop.fed], [0.1, 0.2, 0.3], rtol=1e-5)
    assert len(outs) == 3 and st["frames_out"] == 3 and st["frames_in"] == 3
    assert st["copies"]["engine"] == 0 and st["serialization_events"] == 0


def test_a_cycle_into_an_input_not_declared_feedback_is_still_refused():
    with pytest.raises(ManifestError, match="cycle"):
        rm.Pipeline.from_manifest(loop_manifest(ref_input="other"), registry=registry())


def test_a_feedback_connection_at_another_rate_is_refused():
    with pytest.raises(ManifestError, match=r"feedback connection rs -> loop carries 16000 Hz "
                                            r"into a node that runs at 48000 Hz"):
        rm.Pipeline.from_manifest(loop_manifest(rate=16000), registry=registry())


def test_assistant_aec_takes_its_reference_from_the_node_that_feeds_the_output():
    m = rm.Pipeline.from_manifest(ROOT / "manifests" / "assistant-aec.yaml").manifest
    [ref] = [c for c in m.connections if c.input == "reference"]
    assert ref.feedback and ref.target == "aec"
    assert (ref.source, "output") in {(c.source, c.target) for c in m.connections}
    assert m.order[0] == "aec"
