"""FormatConvert: exact round trips, full-scale clipping, rounding to nearest with ties to even."""

from __future__ import annotations

import numpy as np
import pytest

import remotemedia as rm
from remotemedia.engine.data import NumpyData
from remotemedia.engine.errors import ManifestError
from remotemedia.nodes.convert import FormatConvert

I16_MAX, I16_MIN = 32767, -32768
I32_MAX, I32_MIN = 2**31 - 1, -2**31


def convert(array, dtype):
    node = FormatConvert("fc", dtype=dtype)
    node.setup()
    return node.process(NumpyData(array, sample_rate=48000, pts=0)).array


def test_int16_float32_int16_round_trip_is_exact_for_every_code():
    codes = np.arange(I16_MIN, I16_MAX + 1, dtype=np.int16)
    as_float = convert(codes, "float32")
    assert as_float.dtype == np.float32
    assert as_float[0] == -1.0 and as_float[-1] == np.float32(1 - 2**-15)
    assert as_float[codes.tolist().index(0)] == 0.0
    assert np.array_equal(convert(as_float, "int16"), codes)


def test_int32_float64_int32_round_trip_is_exact():
    rng = np.random.default_rng(0)
    codes = np.concatenate([rng.integers(I32_MIN, I32_MAX, 10000, endpoint=True),
                            [I32_MIN, I32_MAX, 0, 1, -1]]).astype(np.int32)
    as_float = convert(codes, "float64")
    assert as_float.dtype == np.float64
    assert np.array_equal(convert(as_float, "int32"), codes)
    # float32 holds 24 bits: the round trip through it is within half of float32's step.
    back = convert(convert(codes, "float32"), "int32").astype(np.int64)
    assert np.max(np.abs(back - codes)) <= 128


def test_float_to_int16_clips_at_full_scale_and_never_wraps():
    x = np.array([1.0, -1.0, 1.5, -1.5, 1e9, -1e9, np.inf, -np.inf, np.nan,
                  0.99998, 32766.5 / 32768], dtype=np.float32)
    y = convert(x, "int16")
    assert y.dtype == np.int16
    assert y.tolist() == [I16_MAX, I16_MIN, I16_MAX, I16_MIN, I16_MAX, I16_MIN, I16_MAX, I16_MIN,
                          0, I16_MAX, 32766]


def test_float_to_int32_clips_at_full_scale_and_never_wraps():
    # 1.0 * 2**31 is one past int32's largest value; in float32 the clip bound itself rounds up
    # to 2**31, which would wrap to -2**31 on the cast: the node must work in float64 here.
    x = np.array([1.0, -1.0, 2.0, -2.0, np.nan, 0.5], dtype=np.float32)
    assert convert(x, "int32").tolist() == [I32_MAX, I32_MIN, I32_MAX, I32_MIN, 0, 2**30]


def test_rounding_is_to_nearest_with_ties_to_even():
    lsb = 1.0 / 32768
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 0.49, 0.51, -0.51, 100.25, 100.75],
                 dtype=np.float64) * lsb
    assert convert(x, "int16").tolist() == [0, 2, 2, 0, -2, 0, 1, -1, 100, 101]
    # float32 in, same rule.
    assert convert(x.astype(np.float32), "int16").tolist() == [0, 2, 2, 0, -2, 0, 1, -1, 100,
                                                               101]


def test_float_to_int16_error_is_at_most_half_a_step():
    x = np.random.default_rng(1).uniform(-1, 1, 100000).astype(np.float32)
    y = convert(x, "int16").astype(np.float64) / 32768
    assert np.max(np.abs(y - x)) <= 0.5 / 32768 + 1e-12


def test_integer_to_integer_scales_by_the_bit_difference():
    codes = np.array([I16_MIN, -1, 0, 1, I16_MAX], dtype=np.int16)
    wide = convert(codes, "int32")
    assert wide.tolist() == [c * 65536 for c in codes.tolist()]
    assert np.array_equal(convert(wide, "int16"), codes)
    # Narrowing rounds (ties to even) and clips.
    narrow = np.array([32768, 3 * 32768, 32769, I32_MAX, I32_MIN, -32769], dtype=np.int32)
    assert convert(narrow, "int16").tolist() == [0, 2, 1, I16_MAX, I16_MIN, -1]


def test_unsigned_8_bit_is_centred():
    u8 = np.array([0, 64, 128, 192, 255], dtype=np.uint8)
    assert convert(u8, "float32").tolist() == [-1.0, -0.5, 0.0, 0.5, 127 / 128]
    assert convert(u8, "int16").tolist() == [I16_MIN, -16384, 0, 16384, 127 * 256]


def test_same_dtype_passes_the_same_view_and_floats_convert_exactly():
    x = np.linspace(-1, 1, 960, dtype=np.float32)
    node = FormatConvert("fc", dtype="float32")
    node.setup()
    frame = NumpyData(x, sample_rate=48000, pts=0)
    assert node.process(frame) is frame
    wide = convert(x, "float64")
    assert wide.dtype == np.float64 and np.array_equal(wide, x.astype(np.float64))


def test_shape_and_layout_are_kept_for_multichannel_and_strided_input():
    stereo = np.asfortranarray(np.random.default_rng(2).uniform(-1, 1, (960, 2)))
    y = convert(stereo, "int16")
    assert y.shape == (960, 2)
    assert np.array_equal(y, np.clip(np.rint(stereo * 32768), I16_MIN, I16_MAX))
    strided = stereo[::2, 1]
    assert np.array_equal(convert(strided, "int16"), y[::2, 1])


def test_in_a_pipeline_frames_keep_timing_and_nothing_is_copied_by_the_engine():
    m = {"version": "v1", "audio": {"sample_rate": 48000, "channels": 1, "block_size": 960},
         "nodes": [{"id": "to16", "node_type": "FormatConvert", "params": {"dtype": "int16"}},
                   {"id": "back", "node_type": "FormatConvert", "params": {"dtype": "float32"}}],
         "connections": [{"from": "input", "to": "to16"}, {"from": "to16", "to": "back"},
                         {"from": "back", "to": "output"}]}
    x = (np.random.default_rng(3).integers(I16_MIN, I16_MAX, 960 * 5) / 32768).astype(np.float32)
    with rm.Pipeline.from_manifest(m).session() as s:
        outs = []
        for i in range(0, x.shape[0], 960):
            outs += s.push(NumpyData(x[i:i + 960], sample_rate=48000, pts=i, seq=i // 960))
        stats = s.stats()
    assert [(o.pts, o.seq, o.sample_rate) for o in outs] == [(i * 960, i, 48000) for i in range(5)]
    assert np.array_equal(np.concatenate([o.array for o in outs]), x)   # exact on int16 codes
    assert stats["copies"]["engine"] == 0 and stats["copies"]["cow"] == 0
    with pytest.raises(ManifestError, match="dtype"):
        rm.Pipeline.from_manifest({**m, "nodes": [{"id": "to16", "node_type": "FormatConvert",
                                                   "params": {"dtype": "int8"}}],
                                   "connections": [{"from": "input", "to": "to16"},
                                                   {"from": "to16", "to": "output"}]})
