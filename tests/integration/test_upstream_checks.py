"""The upstream's eight integration checks, done properly: each asserts what it claims."""

from __future__ import annotations

import time

import numpy as np
import pytest

import remotemedia as rm
from remotemedia.upstream_api import (execute_pipeline, execute_pipeline_with_input,
                                 get_runtime_version, is_available)

PASSTHROUGH = {"version": "v1", "nodes": [{"id": "p", "node_type": "PassThrough"}],
               "connections": [{"from": "input", "to": "p"}, {"from": "p", "to": "output"}]}


def data_pointer(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def test_1_availability():
    assert is_available() is True
    assert get_runtime_version() == rm.__version__


async def test_2_passthrough_returns_the_same_memory():
    a = np.random.default_rng(0).standard_normal(960).astype(np.float32)
    (out,) = await execute_pipeline_with_input(PASSTHROUGH, [a])
    assert data_pointer(out) == data_pointer(a)
    assert np.shares_memory(out, a)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16, np.int32, np.uint8,
                                   np.complex64, np.bool_])
async def test_3_dtypes_survive_unchanged(dtype):
    a = (np.arange(960) % 5).astype(dtype)
    (out,) = await execute_pipeline_with_input(PASSTHROUGH, [a])
    assert out.dtype == a.dtype and np.shares_memory(out, a)
    np.testing.assert_array_equal(out, a)


@pytest.mark.parametrize("make", [
    lambda: np.zeros((960, 2), np.float32),
    lambda: np.asfortranarray(np.ones((960, 2), np.float32)),
], ids=["stereo-C", "stereo-F"])
async def test_4_multichannel_and_fortran_keep_shape_and_strides(make):
    a = make()
    (out,) = await execute_pipeline_with_input(PASSTHROUGH, [a])
    assert out.shape == a.shape and out.strides == a.strides
    assert out.flags.f_contiguous == a.flags.f_contiguous
    assert np.shares_memory(out, a)


async def test_5_ndarray_and_upstream_dict_inputs_agree():
    a = np.linspace(-1, 1, 960, dtype=np.float32)
    as_dict = {"type": "audio", "samples": a, "sample_rate": 48000, "channels": 1}
    out_arr, out_dict = await execute_pipeline_with_input(PASSTHROUGH, [a, as_dict])
    np.testing.assert_array_equal(out_arr, out_dict)
    assert np.shares_memory(out_dict, a)


async def test_6_auto_detection_of_inputs():
    inputs = [np.zeros(4, np.float32), memoryview(bytearray(8)), "text", b"raw", {"k": 1}]
    outs = await execute_pipeline_with_input(PASSTHROUGH, inputs)
    assert isinstance(outs[0], np.ndarray) and isinstance(outs[1], np.ndarray)
    assert outs[2:] == ["text", b"raw", {"k": 1}]


def test_7_ten_real_time_frames_with_no_serialization():
    pipeline = rm.Pipeline.from_manifest("manifests/passthrough.yaml")
    frames = [np.full(960, i, np.float32) for i in range(10)]
    with pipeline.session() as s:
        start = time.monotonic()
        for i, f in enumerate(frames):
            due = start + i * 0.020
            time.sleep(max(0.0, due - time.monotonic()))
            (out,) = s.push(rm.RuntimeData.Numpy(f, sample_rate=48000, pts=960 * i, seq=i))
            assert out.seq == i and np.shares_memory(out.array, f)
        elapsed = time.monotonic() - start
        st = s.stats()
    assert st["serialization_events"] == 0
    assert st["frames_in"] == st["frames_out"] == 10
    assert st["copies"] == {"engine": 0, "cow": 0, "io": 0}
    assert 0.17 <= elapsed < 2.0   # paced at 20 ms: nine intervals, generous upper bound


@pytest.mark.parametrize("manifest", ["passthrough", "gain", "meter", "five", "mix"])
def test_8_metadata_preserved_through_every_builtin_manifest(manifest):
    pipeline = rm.Pipeline.from_manifest(f"manifests/{manifest}.yaml")
    f = rm.RuntimeData.Numpy(np.ones(960, np.float32), sample_rate=48000, pts=4800, seq=5,
                             metadata={"session": "abc", "channel": "mic"})
    with pipeline.session() as s:
        audio = [o for o in s.push(f) if o.kind == "numpy"]
    assert audio
    for out in audio:
        assert out.metadata == {"session": "abc", "channel": "mic"}
        assert (out.sample_rate, out.pts, out.seq) == (48000, 4800, 5)


async def test_execute_pipeline_without_input_returns_nothing():
    assert await execute_pipeline(PASSTHROUGH) == []


async def test_execute_pipeline_with_input_processes_every_input_in_one_session():
    outs = await execute_pipeline_with_input("manifests/gain.yaml",
                                             [np.ones(960, np.float32) for _ in range(7)])
    assert len(outs) == 7
    for o in outs:
        np.testing.assert_allclose(o, 10 ** (-6 / 20), rtol=1e-6)
