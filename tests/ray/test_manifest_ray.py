"""What a manifest may say about Ray nodes, checked before any actor starts (no Ray needed)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from remotemedia import ManifestError, Pipeline, RuntimeData
from remotemedia.engine.serialization import SerializationWatch
from remotemedia.ray.actor import NodeActor, pack, unpack
from remotemedia.ray.proxy import actor_options

from .conftest import manifest


def test_executor_ray_with_restart_and_resources_loads():
    m = manifest("PassThrough", on_error="restart", resources={"num_gpus": 1, "num_cpus": 0.5,
                                                                "accelerator_x": 2})
    (spec,) = Pipeline.from_manifest(m).manifest.nodes
    assert (spec.executor, spec.on_error) == ("ray", "restart")
    assert dict(spec.resources) == {"num_gpus": 1, "num_cpus": 0.5, "accelerator_x": 2}
    assert actor_options(spec.resources) == {"max_restarts": 0, "max_concurrency": 1,
                                             "num_gpus": 1, "num_cpus": 0.5,
                                             "resources": {"accelerator_x": 2}}


@pytest.mark.parametrize("keys,message", [
    ({"executor": "process", "resources": {"num_gpus": 1}}, "'resources' needs 'executor: ray'"),
    ({"resources": [1]}, "'resources' must be a mapping"),
    ({"resources": {"num_gpus": -1}}, "'resources.num_gpus' must be a non-negative number"),
    ({"resources": {"num_gpus": True}}, "'resources.num_gpus' must be a non-negative number"),
    ({"resources": {"num_gpus": float("nan")}}, "must be a non-negative number"),
])
def test_bad_resources_are_refused_naming_the_node(keys, message):
    with pytest.raises(ManifestError, match=f"'remote'.*{message}"):
        Pipeline.from_manifest(manifest("PassThrough", **keys))


def test_fan_in_nodes_cannot_run_in_an_actor():
    m = {"version": "v1",
         "nodes": [{"id": "mix", "node_type": "Mix", "executor": "ray"}],
         "connections": [{"from": "input", "to": "mix", "input": "a"},
                         {"from": "input", "to": "mix", "input": "b"},
                         {"from": "mix", "to": "output"}]}
    with pytest.raises(ManifestError, match="'mix'.*several inputs.*executor: ray"):
        Pipeline.from_manifest(m)


def test_what_crosses_keeps_every_field_and_its_pickle_is_counted():
    frame = RuntimeData.Numpy(np.arange(960, dtype=np.int16), sample_rate=16000, pts=960,
                              seq=1, metadata={"k": [1, 2]})
    items = [frame, RuntimeData.Json({"type": "x"}, pts=5), RuntimeData.Text("t"),
             RuntimeData.Binary(b"b"), RuntimeData.Control("flush")]
    with SerializationWatch() as watch:
        back = unpack(pack(items))
    assert watch.events == 1                                   # the one array
    assert back[0].array.dtype == np.int16 and not back[0].array.flags.writeable
    np.testing.assert_array_equal(back[0].array, frame.array)
    assert (back[0].sample_rate, back[0].pts, back[0].seq, dict(back[0].metadata)) == \
        (16000, 960, 1, {"k": [1, 2]})
    assert back[1:] == items[1:] and back[1].pts == 5
    with pytest.raises(TypeError, match="must be RuntimeData, not dict"):
        pack([{"a": 1}])


def test_the_actor_answers_a_node_error_instead_of_raising():
    actor = NodeActor({"node_class": "tests.ray.nodes:Raiser", "node_id": "r",
                       "params": {"at": 0}, "format": {"sample_rate": 48000, "channels": 1,
                                                       "block_size": 960}})
    status, kind, message = actor.call(pack([RuntimeData.Numpy(np.zeros(960), seq=0)]))
    assert (status, kind, message) == ("error", "ValueError", "refusing frame 0")
    status, payload, arrays = actor.call(pack([RuntimeData.Numpy(np.zeros(960), seq=1)]))
    assert status == "ok" and arrays == 1 and unpack(payload)[0].seq == 1


numeric_dtypes = st.sampled_from(["int8", "uint8", "int16", "int32", "int64", "uint16",
                                  "float16", "float32", "float64", "complex64"])


@settings(max_examples=60, deadline=None)
@given(data=st.data(), dtype=numeric_dtypes)
def test_any_numeric_frame_crosses_with_dtype_shape_and_values(data, dtype):
    shape = data.draw(st.sampled_from([(960,), (960, 2), (7, 3, 2), (0,), ()]))
    array = data.draw(arrays(dtype, shape))
    if array.ndim == 2 and data.draw(st.booleans()):
        array = array[:, 1]                                   # a non-contiguous view
    frame = RuntimeData.Numpy(array, sample_rate=48000, pts=0, seq=3)
    (back,) = unpack(pack([frame]))
    assert back.array.dtype == array.dtype and back.array.shape == array.shape
    np.testing.assert_array_equal(back.array, array)          # NaN compares equal here
    assert (back.sample_rate, back.pts, back.seq) == (48000, 0, 3)


def test_cpu_and_gpu_as_a_manifest_writes_them_are_rays_num_cpus_and_num_gpus():
    # Ray refuses CPU and GPU under `resources`; `resources: {GPU: 1}` is how a manifest asks
    # for a GPU machine for its model
    options = actor_options({"GPU": 1, "CPU": 2, "accelerator_type:T4": 1})
    assert options["num_gpus"] == 1 and options["num_cpus"] == 2
    assert options["resources"] == {"accelerator_type:T4": 1}
