"""The header codec and the wire format, in one process: a domain, a publisher, a subscriber."""

from __future__ import annotations

import numpy as np
import pytest

from remotemedia.engine.data import BinaryData, ControlData, JsonData, NumpyData, TextData
from remotemedia.engine.serialization import SerializationWatch
from remotemedia.ipc import channel, codec, wire


@pytest.fixture
def loopback():
    prefix, token = channel.new_prefix()
    node = channel.make_node(prefix)
    service = channel.pubsub(node, f"test/{token}/loop", buffer=8, borrow=8,
                             safe_overflow=False, create=True)
    pub = channel.publisher(service, 256, block=False)
    sub = service.subscriber_builder().buffer_size(8).create()
    borrowed = channel.Borrowed()

    def roundtrip(data, copy_out=False, **kw):
        wire.send_data(pub, data, 7, **kw)
        got = wire.receive(sub, borrowed, copy_out=copy_out)
        assert got is not None
        return got

    yield roundtrip, borrowed
    del pub, sub, service, node
    channel.remove_domain(prefix)


def _arrays():
    base = np.arange(4 * 960, dtype=np.float32).reshape(960, 4)
    return {
        "mono f32": np.linspace(-1, 1, 960, dtype=np.float32),
        "stereo f32": base[:, :2].copy(),
        "int16": np.arange(-480, 480, dtype=np.int16),
        "every other sample": np.arange(1920, dtype=np.float32)[::2],
        "one column": base[:, 1],
        "reversed": np.arange(960, dtype=np.float64)[::-1],
        "fortran": np.asfortranarray(base),
        "sparse column": np.arange(960 * 64, dtype=np.float32).reshape(960, 64)[:, 3],
        "0-d": np.array(3.5),
        "empty": np.zeros((0, 2), dtype=np.float32),
        "complex": np.arange(8, dtype=np.complex64),
        "bool": np.array([True, False, True]),
    }


@pytest.mark.parametrize("name", list(_arrays()))
def test_arrays_cross_with_dtype_shape_and_values(loopback, name):
    roundtrip, _ = loopback
    a = _arrays()[name]
    h, data, copied = roundtrip(NumpyData(a, sample_rate=48000, pts=960 * 5, seq=5,
                                          metadata={"k": "v", "n": [1, 2.5, None]}))
    assert h.kind == codec.NUMPY and h.request_id == 7 and not copied
    got = data.array
    assert got.dtype == a.dtype and got.shape == a.shape
    np.testing.assert_array_equal(got, a)
    assert not got.flags.writeable
    assert (data.sample_rate, data.pts, data.seq) == (48000, 4800, 5)
    assert dict(data.metadata) == {"k": "v", "n": [1, 2.5, None]}
    sparse = codec.array_span(a)[2]
    if a.size and not sparse:
        assert got.strides == a.strides        # strides cross exactly
    assert not np.shares_memory(got, a)       # it really is the other side's memory


def test_received_array_is_a_view_onto_the_sample_and_releases_it(loopback):
    roundtrip, borrowed = loopback
    _, data, _ = roundtrip(NumpyData(np.ones(960, dtype=np.float32)))
    assert type(data.array.base.base).__name__.startswith("c_ubyte_Array")
    assert borrowed.count() == 1
    del data
    assert borrowed.count() == 0


def test_copy_out_detaches_from_shared_memory(loopback):
    roundtrip, borrowed = loopback
    a = np.arange(8, dtype=np.float32)[::-2]
    _, data, copied = roundtrip(NumpyData(a), copy_out=True)
    assert copied and borrowed.count() == 0       # the sample went back at once
    base = data.array
    while base.base is not None:
        base = base.base
    assert isinstance(base, np.ndarray) and base.flags.owndata   # engine memory now
    assert data.array.strides == a.strides
    np.testing.assert_array_equal(data.array, a)


@pytest.mark.parametrize("data", [
    TextData("héllo", pts=3, metadata={"a": 1}),
    BinaryData(b"\x00\x01\xff"),
    JsonData({"x": [1, 2, {"y": None}], "big": 2 ** 70, "f": 0.25, "t": True}),
    ControlData("flush", pts=9),
])
def test_other_kinds_cross(loopback, data):
    roundtrip, _ = loopback
    _, got, _ = roundtrip(data)
    assert type(got) is type(data) and got == data
    assert got.pts == data.pts and dict(got.metadata) == dict(data.metadata)


def test_crossing_pickles_nothing_even_in_strict_mode(loopback):
    roundtrip, _ = loopback
    with SerializationWatch(strict=True) as watch:
        for i in range(100):
            roundtrip(NumpyData(np.full((960, 2), i, dtype=np.float32), seq=i,
                                metadata={"i": i}))
    assert watch.events == 0


def test_an_array_inside_metadata_is_a_counted_serialization():
    with SerializationWatch() as watch:
        encoded = codec.encode_value({"window": np.arange(4, dtype=np.int16)})
    assert watch.events == 1
    back = codec.decode_value_bytes(encoded)
    np.testing.assert_array_equal(back["window"], np.arange(4, dtype=np.int16))


def test_tagged_values_round_trip_and_refuse_what_they_cannot_carry():
    value = {"s": "ü", "i": -(2 ** 63), "I": 2 ** 64, "l": [1, [2, [3]]], "b": b"\x00",
             "m": {"n": None}, "np": np.float32(0.5), "t": (1, 2)}
    back = codec.decode_value_bytes(codec.encode_value(value))
    assert back == {**value, "np": 0.5, "t": [1, 2]}
    with pytest.raises(codec.CodecError, match="object"):
        codec.encode_value({"x": object()})
    with pytest.raises(codec.CodecError, match="keys must be str"):
        codec.encode_value({1: 2})


def test_header_layout_is_the_documented_one():
    buf = memoryview(bytearray(512))
    n = codec.encode_header(buf, codec.NUMPY, 0x0102030405060708, sample_rate=48000, pts=-5,
                            seq=9, shape=(960, 2), strides=(8, 4), data_offset=16,
                            dtype=b"<f4", payload_len=7680 + 16)
    assert codec.FIXED.size == 64 and n % 64 == 0 and n == 128
    assert bytes(buf[:4]) == b"RMX1" and buf[4] == 1 and buf[5] == codec.NUMPY
    assert int.from_bytes(buf[8:16], "little") == 0x0102030405060708
    h = codec.decode_header(memoryview(bytearray(buf[:n]) + bytearray(7680 + 16)))
    assert (h.shape, h.strides, h.data_offset, h.dtype) == ((960, 2), (8, 4), 16, "<f4")
    assert (h.sample_rate, h.pts, h.seq) == (48000, -5, 9)
    with pytest.raises(codec.CodecError, match="magic"):
        codec.decode_header(memoryview(bytearray(64)))


def test_object_and_structured_dtypes_are_refused(loopback):
    roundtrip, _ = loopback
    with pytest.raises(codec.CodecError, match="cannot cross"):
        roundtrip(NumpyData(np.array([object()], dtype=object)))
    with pytest.raises(codec.CodecError, match="cannot cross"):
        roundtrip(NumpyData(np.zeros(2, dtype=[("a", "<f4"), ("b", "<i2")])))
