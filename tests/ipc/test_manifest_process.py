"""What a manifest may say about process nodes, checked before any worker starts."""

from __future__ import annotations

import numpy as np
import pytest

from remotemedia import ManifestError, Pipeline, RuntimeData
from remotemedia.engine.data import NumpyData

from .conftest import manifest

ALLOW = ["tests.ipc.nodes"]


def test_restart_needs_the_process_executor():
    m = manifest("PassThrough", on_error="restart")
    del m["nodes"][0]["executor"]
    with pytest.raises(ManifestError, match="'proc'.*restart.*executor: process"):
        Pipeline.from_manifest(m)


def test_a_manifest_wide_restart_applies_to_process_nodes_only():
    m = {"version": "v1", "on_error": "restart",
         "nodes": [{"id": "a", "node_type": "PassThrough"},
                   {"id": "b", "node_type": "PassThrough", "executor": "process"}],
         "connections": [{"from": "input", "to": "a"}, {"from": "a", "to": "b"},
                         {"from": "b", "to": "output"}]}
    specs = {s.id: s for s in Pipeline.from_manifest(m).manifest.nodes}
    assert (specs["a"].on_error, specs["b"].on_error) == ("fail", "restart")


def test_fan_in_nodes_cannot_run_in_a_process():
    m = {"version": "v1",
         "nodes": [{"id": "mix", "node_type": "Mix", "executor": "process"}],
         "connections": [{"from": "input", "to": "mix", "input": "a"},
                         {"from": "input", "to": "mix", "input": "b"},
                         {"from": "mix", "to": "output"}]}
    with pytest.raises(ManifestError, match="'mix'.*several inputs"):
        Pipeline.from_manifest(m)


def test_an_unknown_executor_is_still_refused():
    with pytest.raises(ManifestError, match="'executor' must be one of inline, process"):
        Pipeline.from_manifest(manifest("PassThrough", executor="gpu"))


def test_two_process_nodes_in_a_row_cost_four_io_copies_per_frame():
    m = {"version": "v1",
         "nodes": [{"id": "a", "node_type": "PassThrough", "executor": "process"},
                   {"id": "b", "node_type": "tests.ipc.nodes:Affine", "executor": "process"}],
         "connections": [{"from": "input", "to": "a"}, {"from": "a", "to": "b"},
                         {"from": "b", "to": "output"}]}
    frames = [RuntimeData.Numpy(np.full((960, 2), i, dtype=np.float32), seq=i)
              for i in range(200)]
    seen = []
    with Pipeline.from_manifest(m, allow_import=ALLOW).session() as s:
        assert s.node("a").pid != s.node("b").pid
        for f in frames + [RuntimeData.Control("end_of_stream")]:
            # Checked and let go as they come: outputs kept by the caller hold shared memory,
            # and past REP_BORROW of them the engine copies instead (a counted io copy).
            for o in s.push(f):
                if isinstance(o, NumpyData):
                    np.testing.assert_array_equal(o.array, frames[o.seq].array * 3 + 1)
                    seen.append(o.seq)
        stats = s.stats()
    assert seen == list(range(200))
    assert stats["copies"]["io"] == 4 * 200 and stats["serialization_events"] == 0
