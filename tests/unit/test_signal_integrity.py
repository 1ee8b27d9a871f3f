"""Integer PCM, NaN and Inf mean the same thing in every part that measures or converts samples.

The engine's adaptation, every meter and detector, FormatConvert and the output boundary share
engine/levels.py; these tests hold each of them to it, by example and by property.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import remotemedia as rm
from remotemedia.engine import levels, strictjson
from remotemedia.engine.node import InputRequirement, registry
from remotemedia.testing import chain
from remotemedia.testing.conformance import holds_non_finite

RATE = 48000
PCM_DTYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "float16",
              "float32", "float64"]


def events(outputs, node=None):
    return [o.value for o in outputs if o.kind == "json"
            and (node is None or o.value.get("node") == node)]


# -- 1. integer PCM ---------------------------------------------------------------------------------

def half_scale_sine_int16():
    t = np.arange(960) / RATE
    return np.round(0.5 * 32768 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)


def test_int16_through_gain_then_meter_is_scaled_not_taken_as_float():
    # The example: peak 16384 (0.5 full scale), Gain -6 dB: 0.25 peak and -12 dBFS,
    # not float samples peaking at 8211 read as +78 dBFS "clipped".
    p = rm.Pipeline.from_manifest(chain(
        {"id": "before", "node_type": "LevelMeter"},
        {"id": "gain", "node_type": "Gain", "params": {"db": -6}},
        {"id": "after", "node_type": "LevelMeter"}))
    with p.session() as s:
        outs = s.push(half_scale_sine_int16())
        copies = s.stats()["copies"]
    (audio,) = [o for o in outs if o.kind == "numpy"]
    assert audio.array.dtype == np.float32
    assert abs(float(np.abs(audio.array).max()) - 0.5 * 10 ** (-6 / 20)) < 1e-3
    (before,) = events(outs, "before")
    (after,) = events(outs, "after")
    assert before["peak_dbfs"] == pytest.approx(-6.02, abs=0.01)
    assert after["peak_dbfs"] == pytest.approx(before["peak_dbfs"] - 6.0, abs=0.01)
    assert after["clipped"] is False
    assert copies["engine"] == 1          # the adaptation is still one counted copy


@pytest.mark.parametrize("dtype", ["int8", "int16", "int32", "uint8", "uint16"])
def test_engine_adaptation_scales_every_integer_dtype_to_full_scale(dtype):
    scale, offset = levels.pcm_scale(np.dtype(dtype))
    info = np.iinfo(dtype)
    x = np.array([info.min, offset, info.max], dtype=dtype)
    out = InputRequirement(dtype="floating").adapt(x)
    assert out.dtype.kind == "f"
    np.testing.assert_allclose(out, [-1.0, 0.0, (info.max - offset) / scale], atol=1e-7)


def test_full_scale_definition():
    assert levels.pcm_scale(np.int16) == (32768.0, 0.0)
    assert levels.pcm_scale(np.int32) == (2.0 ** 31, 0.0)
    assert levels.pcm_scale(np.uint8) == (128.0, 128.0)
    assert levels.pcm_scale(np.float32) == (1.0, 0.0)
    with pytest.raises(ValueError, match="not PCM"):
        levels.pcm_scale(np.bool_)


@given(dtype=st.sampled_from(PCM_DTYPES), level=st.floats(0.01, 0.99))
@settings(max_examples=60, deadline=None)
def test_meters_agree_across_dtypes(dtype, level):
    # The same signal in any dtype reads the same dBFS (to the dtype's resolution).
    t = np.arange(960) / RATE
    unit = level * np.sin(2 * np.pi * 997 * t)
    dt = np.dtype(dtype)
    if dt.kind == "f":
        block = unit.astype(dt)
    else:
        scale, offset = levels.pcm_scale(dt)
        block = np.clip(np.round(unit * scale + offset), np.iinfo(dt).min,
                        np.iinfo(dt).max).astype(dt)
    rms, peak, bad = levels.measure(block)
    tol = 2.0 / levels.full_scale(dt) + (1e-3 if dt == np.float16 else 1e-6)
    assert bad == 0
    assert abs(peak - np.abs(unit).max()) <= tol + 1e-9
    assert abs(rms - math.sqrt(np.mean(unit ** 2))) <= tol + 1e-9


def test_format_convert_uses_the_one_definition():
    p = rm.Pipeline.from_manifest(chain({"id": "c", "node_type": "FormatConvert",
                                         "params": {"dtype": "int16"}}))
    x = np.array([0.5, -1.0, 1.0, 1.5, -2.0, np.nan, np.inf], np.float32)
    with p.session() as s:
        (out,) = s.push(x)
    assert out.array.tolist() == [16384, -32768, 32767, 32767, -32768, 0, 32767]
    back = rm.Pipeline.from_manifest(chain({"id": "c", "node_type": "FormatConvert",
                                            "params": {"dtype": "float32"}}))
    with back.session() as s:
        (out,) = s.push(np.array([0, 128, 255], np.uint8))
    np.testing.assert_allclose(out.array, [-1.0, 0.0, 127 / 128])


# -- 2. non-finite samples ----------------------------------------------------------------------------

def test_meter_measures_finite_samples_and_counts_the_others():
    t = np.arange(960) / RATE
    x = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    x[100] = np.nan
    p = rm.Pipeline.from_manifest(chain({"id": "m", "node_type": "LevelMeter"}))
    with p.session() as s:
        (reading,) = events(s.push(x))
        (clean,) = events(s.push(np.nan_to_num(x)))
    assert reading["non_finite"] == 1
    assert reading["peak_dbfs"] == pytest.approx(-6.02, abs=0.01)
    assert reading["rms_dbfs"] == pytest.approx(-9.03, abs=0.05)
    assert clean["non_finite"] == 0


@given(hnp.arrays(np.float32, st.integers(1, 2000),
                  elements=st.one_of(st.floats(-4, 4, width=32),
                                     st.sampled_from([np.nan, np.inf, -np.inf]))))
@settings(max_examples=200, deadline=None)
def test_measure_counts_exactly_and_reads_only_finite_samples(x):
    rms, peak, bad = levels.measure(x)
    finite = x[np.isfinite(x)].astype(np.float64)
    assert bad == x.size - finite.size
    assert math.isfinite(rms) and math.isfinite(peak)
    if finite.size:
        assert peak == pytest.approx(np.abs(finite).max(), rel=1e-6, abs=1e-12)
        assert rms == pytest.approx(math.sqrt(np.mean(finite ** 2)), rel=1e-4, abs=1e-9)
    for value in (levels.to_dbfs(rms), levels.to_dbfs(peak)):
        assert math.isfinite(value)


def nan_block(dtype="float32", channels=1):
    x = np.full((960, channels) if channels > 1 else 960, 0.25, dtype=dtype)
    x[10] = np.nan
    x[20] = np.inf
    return x


def clean_block(n, rate=RATE, channels=1):
    t = (np.arange(960) + n * 960) / rate
    x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    return x if channels == 1 else np.repeat(x[:, None], channels, axis=1)


def runnable_node_types():
    out = []
    for name, cls in registry.types().items():
        # Built-in types only: other tests register theirs in the same registry.
        if cls.inputs != "one" or not cls.__module__.startswith("remotemedia."):
            continue
        out.append(name)
    return out


PARAMS = {"Resample": {"rate": 16000}, "Reframe": {"size": 480}, "FormatConvert": {}}


@pytest.mark.parametrize("node_type", runnable_node_types())
def test_no_node_is_poisoned_by_one_bad_block(node_type):
    # A block with NaN and Inf, then clean audio: what comes out afterwards is finite, and a
    # meter after the node measures the clean audio as it is.
    cls = registry.resolve(node_type)
    rate = 16000 if node_type in ("VAD", "SileroVADNode") else RATE
    params = dict(PARAMS.get(node_type, {}))
    for p in cls.params:
        if p.required and p.name not in params:
            pytest.skip(f"{node_type} needs '{p.name}', which this generic test cannot invent")
    m = chain(("n", node_type, params), ("m", "LevelMeter"), audio={"sample_rate": rate})
    try:
        pipeline = rm.Pipeline.from_manifest(m)
    except rm.ManifestError as exc:
        pytest.skip(f"{node_type} does not take a mono float stream alone: {exc}")
    try:
        session = pipeline.session()
    except rm.NodeError as exc:  # a model that cannot load here
        pytest.skip(str(exc))
    with session as s:
        first = s.push(nan_block())
        for o in first:
            if o.kind == "json":
                json.loads(strictjson.dumps(o.value))     # strict JSON whatever it says
        later = []
        for n in range(1, 30):
            later += s.push(clean_block(n, rate))
        poisoned = [name for name, value in vars(s.node("n")).items() if holds_non_finite(value)]
        later += s.end_of_stream()
    # The node's own state (running means, model state, filter memory) holds no NaN/Inf.
    assert not poisoned, f"{node_type} keeps NaN/Inf in {poisoned}"
    audio = [o.array for o in later if o.kind == "numpy" and o.array.size]
    readings = [e for e in events(later, "m")]
    # Past the filter's memory (soxr's tail is well under 10 blocks) all is finite again.
    tail = audio[len(audio) // 2:]
    assert all(np.isfinite(a).all() for a in tail), f"{node_type} kept NaN/Inf in its state"
    assert all(r["non_finite"] == 0 for r in readings[len(readings) // 2:])
    if node_type not in ("Gain",) and readings:
        last = readings[-2] if len(readings) > 1 else readings[-1]
        assert last["peak_dbfs"] > -30, f"{node_type}: clean audio afterwards reads as silence"


def test_detectors_report_non_finite_input_instead_of_silence_or_nothing():
    p = rm.Pipeline.from_manifest(chain({"id": "clip", "node_type": "ClippingDetector"},
                                        {"id": "sil", "node_type": "SilenceDetector"},
                                        {"id": "dc", "node_type": "DCOffset"}))
    with p.session() as s:
        outs = s.push(nan_block())
        outs += s.push(clean_block(1))
        offset = s.node("dc").offset
    found = {e["node"]: e for e in events(outs) if e["type"] == "non_finite"}
    assert set(found) == {"clip", "sil", "dc"}
    assert all(e["samples"] == 2 for e in found.values())
    assert not [e for e in events(outs) if e["type"] == "clipping"]   # Inf is not clipping
    assert math.isfinite(offset)


def test_strict_json_never_writes_nan_or_infinity():
    text = strictjson.dumps({"a": float("nan"), "b": [1.0, float("inf")], "c": {"d": -np.inf},
                             "e": np.float32(0.5), "f": np.array([np.nan, 1.0])})
    doc = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict token {c}"))
    assert doc["a"] is None and doc["b"] == [1.0, None] and doc["c"]["d"] is None
    assert doc["non_finite"] == ["a", "b[1]", "f[0]"] and doc["c"]["non_finite"] == ["d"]
    assert doc["e"] == 0.5 and doc["f"] == [None, 1.0]


@given(st.recursive(st.one_of(st.floats(), st.integers(), st.text(max_size=3), st.none()),
                    lambda inner: st.one_of(st.lists(inner, max_size=3),
                                            st.dictionaries(st.text(max_size=3), inner,
                                                            max_size=3)), max_leaves=12))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_strict_json_is_rfc8259_for_any_value(value):
    text = strictjson.dumps(value)
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict token {c}"))


# -- output boundary ---------------------------------------------------------------------------------

@given(hnp.arrays(np.float32, st.integers(1, 500),
                  elements=st.one_of(st.floats(-3, 3, width=32),
                                     st.sampled_from([np.nan, np.inf, -np.inf, 1.5, -1.5,
                                                      1e-40, -1e-40]))),
       st.booleans())
@settings(max_examples=200, deadline=None)
def test_output_repair_counts_exactly(x, clip):
    out, bad, clipped = levels.repair_for_output(x, clip)
    finite = np.isfinite(x)
    over = int((np.abs(np.where(finite, x, 0)) > 1.0).sum())
    assert bad == int((~finite).sum())
    assert clipped == (over if clip else 0)
    assert np.isfinite(out).all()
    assert not np.shares_memory(out, x) or (bad == 0 and (over == 0 or not clip))
    if clip:
        assert np.abs(out).max() <= 1.0
    np.testing.assert_array_equal(out[~np.isnan(x) & finite & (np.abs(x) <= 1.0)],
                                  x[~np.isnan(x) & finite & (np.abs(x) <= 1.0)])
    assert (out[np.isnan(x)] == 0).all()
