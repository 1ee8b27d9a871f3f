"""RuntimeData: zero-copy conversion, exact dtype/shape/strides, immutability."""

from __future__ import annotations

import array as pyarray

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import remotemedia as rm
from remotemedia import RuntimeData, from_runtime_data, to_runtime_data

ALL_DTYPES = [np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
              np.uint64, np.float16, np.float32, np.float64, np.complex64, np.complex128]


def assert_same_view(original: np.ndarray, result: np.ndarray) -> None:
    assert result.dtype == original.dtype
    assert result.shape == original.shape
    assert result.strides == original.strides
    if original.size:
        assert np.shares_memory(original, result)
        assert result.__array_interface__["data"][0] == original.__array_interface__["data"][0]
    np.testing.assert_array_equal(result, original)


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=lambda d: np.dtype(d).name)
def test_every_dtype_round_trips_without_copy(dtype):
    original = (np.arange(960) % 7).astype(dtype)
    data = to_runtime_data(original)
    assert isinstance(data, RuntimeData.Numpy)
    assert_same_view(original, from_runtime_data(data))


@pytest.mark.parametrize("make", [
    lambda: np.arange(1920, dtype=np.float32).reshape(960, 2),                 # C order
    lambda: np.asfortranarray(np.arange(1920, dtype=np.float32).reshape(960, 2)),
    lambda: np.arange(4000, dtype=np.float64)[::4],                             # sliced
    lambda: np.arange(960, dtype=np.int16)[::-1],                               # negative
    lambda: np.arange(24, dtype=np.int32).reshape(2, 3, 4).transpose(2, 0, 1),  # 3-d permuted
    lambda: np.array(3.5, dtype=np.float32),                                    # 0-d
    lambda: np.empty((0, 2), dtype=np.float32),                                 # empty
], ids=["C", "F", "sliced", "negative", "3d-permuted", "0d", "empty"])
def test_layouts_are_preserved_exactly(make):
    original = make()
    assert_same_view(original, from_runtime_data(to_runtime_data(original)))


@settings(max_examples=150, deadline=None)
@given(
    arr=hnp.arrays(
        dtype=st.sampled_from(ALL_DTYPES),
        shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6),
    ),
    order=st.sampled_from(["C", "F"]),
    step=st.integers(min_value=-3, max_value=3).filter(lambda s: s != 0),
)
def test_property_round_trip_is_zero_copy(arr, order, step):
    base = np.asarray(arr, order=order)
    view = base[::step] if base.ndim else base
    data = to_runtime_data(view)
    assert isinstance(data, RuntimeData.Numpy)
    assert_same_view(view, from_runtime_data(data))
    # The frame's view is read-only; the caller's array is untouched and stays writable.
    assert not data.array.flags.writeable
    assert view.flags.writeable == base.flags.writeable


def test_numpy_holds_a_view_and_caller_array_stays_writable():
    original = np.zeros(960, np.float32)
    frame = RuntimeData.Numpy(original, sample_rate=48000, pts=960, seq=1, metadata={"k": "v"})
    assert frame.array is not original
    assert np.shares_memory(frame.array, original)
    assert not frame.array.flags.writeable
    with pytest.raises(ValueError):
        frame.array[0] = 1.0
    original[0] = 2.0                      # the caller may still write its own array
    assert frame.array[0] == 2.0           # and the frame sees it: it is a view, not a copy
    assert (frame.sample_rate, frame.pts, frame.seq) == (48000, 960, 1)


def test_frames_are_immutable():
    frame = RuntimeData.Numpy(np.zeros(4, np.float32), metadata={"a": 1})
    with pytest.raises(AttributeError):
        frame.array = np.ones(4)
    with pytest.raises(AttributeError):
        frame.pts = 5
    with pytest.raises(TypeError):
        frame.metadata["a"] = 2
    text = RuntimeData.Text("hi")
    with pytest.raises(AttributeError):
        text.text = "other"


def test_upstream_audio_dict_becomes_a_view_on_its_samples():
    samples = np.arange(1920, dtype=np.float32)
    data = to_runtime_data({"type": "audio", "samples": samples, "sample_rate": 48000,
                            "channels": 2, "language": "en"})
    assert isinstance(data, RuntimeData.Numpy)
    assert data.array.shape == (960, 2)
    assert np.shares_memory(data.array, samples)
    assert data.sample_rate == 48000
    assert data.metadata == {"language": "en"}


def test_detection_by_capability():
    mv = memoryview(bytearray(16))
    assert isinstance(to_runtime_data(mv), RuntimeData.Numpy)
    ba = bytearray(b"\x01\x02\x03")
    arr = from_runtime_data(to_runtime_data(ba))
    assert arr.dtype == np.uint8 and np.shares_memory(arr, np.frombuffer(ba, np.uint8))
    pa = pyarray.array("h", [1, 2, 3])
    out = from_runtime_data(to_runtime_data(pa))
    assert out.dtype == np.int16 and list(out) == [1, 2, 3]

    class Exposes:  # only the array interface, no numpy base class
        def __init__(self, a):
            self.a = a
            self.__array_interface__ = a.__array_interface__
    backing = np.arange(10, dtype=np.float64)
    out = from_runtime_data(to_runtime_data(Exposes(backing)))
    assert np.shares_memory(out, backing)


def test_other_python_values():
    assert to_runtime_data("hello") == RuntimeData.Text("hello")
    assert isinstance(to_runtime_data(b"\x00\x01"), RuntimeData.Binary)  # bytes before buffer
    assert from_runtime_data(to_runtime_data(b"ab")) == b"ab"
    assert from_runtime_data(to_runtime_data({"a": 1})) == {"a": 1}
    scalar = to_runtime_data(np.float32(1.5))
    assert isinstance(scalar, RuntimeData.Numpy) and scalar.array.shape == ()
    assert scalar.array.dtype == np.float32 and float(scalar.array) == 1.5
    with pytest.raises(TypeError, match="cannot convert object"):
        to_runtime_data(object())
    with pytest.raises(ValueError, match="unknown control event"):
        RuntimeData.Control("explode")


def test_with_array_shares_ownership_only_for_the_same_buffer():
    base = np.zeros((960, 2), np.float32)
    frame = RuntimeData.Numpy(base, owned=True)
    view = frame.with_array(frame.array[:, 0])
    assert view.ownership is frame.ownership          # a view of the same buffer
    fresh = frame.with_array(np.ones(960, np.float32))
    assert fresh.ownership is not frame.ownership and fresh.ownership.owned
    moved = frame.replace(pts=960, metadata={"x": 1})
    assert moved.pts == 960 and moved.metadata == {"x": 1} and moved.array is frame.array
    with pytest.raises(TypeError, match="unknown field"):
        frame.replace(colour="red")


def test_public_api_names_are_pinned():
    expected = {"Pipeline", "Session", "RuntimeData", "Node", "Param", "to_runtime_data",
                "from_runtime_data", "node_function", "register_node", "execute_pipeline",
                "execute_pipeline_with_input", "is_available", "get_runtime_version",
                "RemoteMediaError", "ManifestError", "NodeError", "SerializationError",
                "DeviceError", "PipelineClosed", "PipelineBroken"}
    assert expected <= set(rm.__all__)
    for name in rm.__all__:
        assert hasattr(rm, name), name


def test_every_exception_class_the_package_defines_is_in_one_tree():
    import importlib
    import pkgutil

    import remotemedia
    foreign = []
    for info in pkgutil.walk_packages(remotemedia.__path__, "remotemedia."):
        if info.name.endswith("__main__") or info.name.startswith(
                ("remotemedia.app", "remotemedia.tui", "remotemedia.testing")):
            continue
        try:
            module = importlib.import_module(info.name)
        except ImportError:
            continue           # an optional extra not installed here
        for name, obj in vars(module).items():
            if isinstance(obj, type) and issubclass(obj, BaseException) \
                    and obj.__module__ == info.name and not name.startswith("_"):
                if not issubclass(obj, rm.RemoteMediaError):
                    foreign.append(f"{info.name}.{name}")
    assert foreign == []
    assert issubclass(rm.UnknownNodeType, KeyError) and rm.UnknownNodeType.exit_code == 2
    assert issubclass(rm.CodecError, ValueError)
