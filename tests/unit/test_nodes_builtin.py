"""The built-in nodes, each against numpy's own result."""

from __future__ import annotations

import numpy as np
import pytest

import remotemedia as rm
from remotemedia import RuntimeData


def run(node_type, frames, params=None, channels=1, flush=True):
    p = rm.Pipeline.from_manifest({
        "version": "v1", "audio": {"channels": channels},
        "nodes": [{"id": "n", "node_type": node_type, "params": params or {}}],
        "connections": [{"from": "input", "to": "n"}, {"from": "n", "to": "output"}]})
    out = []
    with p.session() as s:
        for f in frames:
            out += s.push(f)
        if flush:
            out += [o for o in s.end_of_stream() if o.kind != "control"]
        stats = s.stats()
    return out, stats


def frame(array, i=0, **kw):
    return RuntimeData.Numpy(array, sample_rate=48000, pts=i * len(array), seq=i, **kw)


def test_gain_db_and_linear_match_numpy():
    x = np.linspace(-1, 1, 960, dtype=np.float32)
    (out,), _ = run("Gain", [x], {"db": -6.0})
    np.testing.assert_array_equal(out.array, x * np.float32(10 ** (-6 / 20)))
    (out,), _ = run("Gain", [x], {"linear": 0.25})
    np.testing.assert_array_equal(out.array, x * np.float32(0.25))


def test_gain_writes_in_place_when_it_owns_the_buffer():
    x = np.ones(960, np.float32)
    p = rm.Pipeline.from_manifest("manifests/gain.yaml")
    with p.session() as s:
        (out,) = s.push(x, transfer=True)
        assert s.stats()["copies"]["cow"] == 0
    assert np.shares_memory(out.array, x)


def test_unity_gain_passes_the_same_view():
    x = np.ones(960, np.float32)
    (out,), st = run("Gain", [x], {"db": 0.0})
    assert np.shares_memory(out.array, x) and st["copies"]["cow"] == 0


def test_mix_weights_and_shape_check():
    p = rm.Pipeline.from_manifest({
        "version": "v1",
        "nodes": [{"id": "a", "node_type": "PassThrough"}, {"id": "b", "node_type": "Gain",
                                                             "params": {"linear": 2.0}},
                  {"id": "mix", "node_type": "Mix", "params": {"weights": {"a": 0.5}}}],
        "connections": [{"from": "input", "to": "a"}, {"from": "input", "to": "b"},
                        {"from": "a", "to": "mix"}, {"from": "b", "to": "mix"},
                        {"from": "mix", "to": "output"}]})
    x = np.full(960, 0.25, np.float32)
    with p.session() as s:
        (out,) = s.push(x)
    np.testing.assert_allclose(out.array, 0.5 * x + 2.0 * x)
    assert x[0] == 0.25   # the caller's buffer is never written


def test_channel_select_is_a_view_and_downmix_averages():
    stereo = np.stack([np.arange(960, dtype=np.float32), -np.ones(960, np.float32)], axis=1)
    (sel,), st = run("ChannelSelect", [stereo], {"channel": 1}, channels=2)
    assert np.shares_memory(sel.array, stereo) and st["copies"]["cow"] == 0
    np.testing.assert_array_equal(sel.array, stereo[:, 1])
    (mono,), _ = run("Downmix", [stereo], channels=2)
    np.testing.assert_array_equal(mono.array, stereo.mean(axis=1))


def test_level_meter_reports_dbfs_and_clipping():
    half = np.full(960, 0.5, np.float32)
    outs, _ = run("LevelMeter", [half, np.full(960, 1.0, np.float32), np.zeros(960, np.float32)])
    readings = [o.value for o in outs if o.kind == "json"]
    assert [o.kind for o in outs[:2]] == ["numpy", "json"]
    assert readings[0]["rms_dbfs"] == pytest.approx(-6.02, abs=0.01)
    assert readings[0]["peak_dbfs"] == pytest.approx(-6.02, abs=0.01)
    assert readings[0]["clipped"] is False and readings[1]["clipped"] is True
    assert readings[2]["rms_dbfs"] == -120.0
    ints, _ = run("LevelMeter", [np.full(960, 16384, np.int16)])
    assert ints[1].value["peak_dbfs"] == pytest.approx(-6.02, abs=0.01)


def test_reframe_reblocks_and_carries_pts():
    x = np.arange(960 * 3, dtype=np.float32)
    frames = [frame(x[i * 960:(i + 1) * 960], i) for i in range(3)]
    outs, _ = run("Reframe", frames, {"size": 512})
    sizes = [o.array.shape[0] for o in outs]
    assert sizes == [512] * 5 + [2880 - 5 * 512]       # the tail comes out at end of stream
    assert [o.pts for o in outs] == [i * 512 for i in range(6)]
    np.testing.assert_array_equal(np.concatenate([o.array for o in outs]), x)
    padded, _ = run("Reframe", frames, {"size": 512, "pad": True})
    assert padded[-1].array.shape[0] == 512 and padded[-1].array[-1] == 0


def test_reframe_of_aligned_blocks_passes_views():
    x = np.arange(960, dtype=np.float32)
    (out,), _ = run("Reframe", [frame(x)], {"size": 960}, flush=False)
    assert np.shares_memory(out.array, x)


def test_delay_shifts_by_n_samples_and_releases_the_tail():
    x = np.arange(1, 961, dtype=np.float32)
    outs, _ = run("Delay", [frame(x[:480], 0), frame(x[480:], 1)], {"samples": 100})
    y = np.concatenate([o.array for o in outs])
    np.testing.assert_array_equal(y[:100], 0)
    np.testing.assert_array_equal(y[100:], x)


@pytest.mark.parametrize("node_type, params", [
    ("PassThrough", {}), ("Gain", {"db": -3.0}), ("LevelMeter", {}), ("Reframe", {"size": 960}),
    ("Delay", {"samples": 10}), ("Downmix", {}), ("ChannelSelect", {"channel": 0}),
])
def test_metadata_survives_every_node_that_passes_frames(node_type, params):
    x = np.ones(960, np.float32)
    f = RuntimeData.Numpy(x, sample_rate=48000, pts=0, seq=0, metadata={"speaker": "ada"})
    outs, _ = run(node_type, [f], params, flush=False)
    audio = [o for o in outs if o.kind == "numpy"]
    assert audio and all(o.metadata == {"speaker": "ada"} for o in audio)
    assert all(o.sample_rate == 48000 for o in audio)


def test_nodes_describe_themselves():
    types = rm.registry.types()
    for name in ("PassThrough", "Gain", "Mix", "ChannelSelect", "Downmix", "LevelMeter",
                 "Reframe", "Delay"):
        d = types[name].describe()
        assert d["node_type"] == name and d["description"]
    gain = types["Gain"].describe()
    assert [p["name"] for p in gain["params"]] == ["db", "linear"]
    assert gain["params"][0]["type"] == "float"
