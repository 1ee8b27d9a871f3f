"""The upstream manifest shape (UPSTREAM.md Part A): detection, and each rule it runs by."""

from __future__ import annotations

import json

import numpy as np
import pytest

import remotemedia as rm
from remotemedia import ManifestError
from remotemedia.engine.data import NumpyData
from remotemedia.engine.manifest import (NATIVE, UPSTREAM, load_manifest, manifest_shape,
                                         native_document)

from .upstream_signals import DATA, FULL, RATE, tone


def upstream(nodes, connections=(), **extra):
    return {"version": "v1", "metadata": {}, "nodes": nodes,
            "connections": list(connections), **extra}


def node(id_, type_="PassThrough", **extra):
    return {"id": id_, "node_type": type_, **extra}


def edges(m):
    return [(c.source, c.target) for c in m.connections]


# -- detection ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("connections, shape", [
    ([], UPSTREAM),
    ([{"from": "a", "to": "b"}], UPSTREAM),
    ([{"from": "input", "to": "a"}], NATIVE),
    ([{"from": "a", "to": "output"}], NATIVE),
    ([{"from": "a", "to": "b"}, {"from": "b", "to": "output"}], NATIVE),
    (None, NATIVE),
])
def test_shape_is_upstream_when_no_connection_names_input_or_output(connections, shape):
    doc = {"version": "v1", "nodes": []}
    if connections is not None:
        doc["connections"] = connections
    assert manifest_shape(doc) == shape


def test_native_manifests_do_not_change_meaning(manifests_dir):
    for path in sorted(manifests_dir.glob("*.yaml")):
        m = load_manifest(path, allow_import=["tests"])
        assert m.shape == NATIVE and m.warnings == ()
        raw = __import__("yaml").safe_load(path.read_text())
        assert edges(m) == [(c["from"], c["to"]) for c in raw["connections"]]
        assert m.weak_audio == frozenset()


def test_native_audio_fan_in_stays_an_error_and_version_1_0_is_refused():
    doc = {"version": "v1", "nodes": [node("a"), node("b"), node("c", "Gain")],
           "connections": [{"from": "input", "to": "a"}, {"from": "input", "to": "b"},
                           {"from": "a", "to": "c"}, {"from": "b", "to": "c"},
                           {"from": "c", "to": "output"}]}
    with pytest.raises(ManifestError, match="Gain takes one input but 2 connections"):
        load_manifest(doc)
    with pytest.raises(ManifestError, match="unsupported version '1.0'"):
        load_manifest({**doc, "version": "1.0"})


def test_native_events_may_fan_in_to_a_one_input_node():
    doc = {"version": "v1",
           "nodes": [node("lv", "AudioLevelNode"), node("cl", "ClippingDetectorNode"),
                     node("corr", "EventCorrelatorNode")],
           "connections": [{"from": "input", "to": "lv"}, {"from": "input", "to": "cl"},
                           {"from": "lv", "to": "corr"}, {"from": "cl", "to": "corr"},
                           {"from": "corr", "to": "output"}]}
    assert load_manifest(doc).warnings == ()


# -- the rules ---------------------------------------------------------------------------------------

def test_every_root_takes_the_input_and_every_terminal_node_reaches_output():
    m = load_manifest(upstream([node("a"), node("b"), node("c"), node("d")],
                               [{"from": "a", "to": "b"}, {"from": "c", "to": "b"}]))
    assert m.shape == UPSTREAM
    assert sorted(edges(m)) == sorted([("input", "a"), ("input", "c"), ("input", "d"),
                                       ("a", "b"), ("c", "b"), ("b", "output"),
                                       ("d", "output")])
    with rm.Pipeline(m).session() as s:
        x = np.ones(4, np.float32)
        out = s.push(x)
    # b receives a's and c's copy (interleaved, in arrival order); d echoes its own.
    assert len(out) == 3 and all(np.shares_memory(o.array, x) for o in out)


def test_is_output_node_also_reaches_output():
    m = load_manifest(upstream([node("a", is_output_node=True), node("b", "Gain",
                                                                     params={"db": -6})],
                               [{"from": "a", "to": "b"}]))
    assert ("a", "output") in edges(m) and ("b", "output") in edges(m)
    with rm.Pipeline(m).session() as s:
        outs = s.push(np.ones(4, np.float32))
    assert sorted(float(o.array[0]) for o in outs) == pytest.approx([10 ** (-6 / 20), 1.0])


def test_empty_connections_every_node_is_root_and_sink():
    m = load_manifest(DATA / "passthrough.json")
    assert m.version == "1.0" and edges(m) == [("input", "p"), ("p", "output")]


def test_fan_in_interleaves_in_arrival_order_and_audio_merge_warns():
    m = load_manifest(DATA / "vad_chain.json")
    (merge,) = [w for w in m.warnings if "audio streams merge" in w]
    assert "chunker_16k -> gate" in merge and "tap -> gate" in merge
    seen = []

    class Spy(rm.Node):
        node_type = "UpstreamFanInSpy"

        def process(self, frame):
            seen.append(frame.pts)
            return frame

    rm.registry.register(Spy)
    doc = json.loads((DATA / "vad_chain.json").read_text())
    for n in doc["nodes"]:
        if n["id"] == "gate":
            n["node_type"], n["params"] = "UpstreamFanInSpy", {}
    with rm.Pipeline.from_manifest(doc).session() as s:
        x = tone(0.2, freq=440, amplitude=0.3)
        for i in range(0, x.shape[0], 960):
            s.push(NumpyData(x[i:i + 960].copy(), sample_rate=48000, pts=i))
        stats = {n.node_id: n.calls for n in s.node_statistics()}
    # Each 16 kHz block arrives twice in a row: from the chunker, then through the tap.
    assert len(seen) == 2 * stats["tap"] > 0
    assert seen[0::2] == seen[1::2] and seen[0::2] == sorted(seen[0::2])


@pytest.mark.parametrize("version", ["v1", "1.0", 1.0])
def test_versions(version):
    assert load_manifest(upstream([node("p")], version=version)).shape == UPSTREAM


def test_other_versions_are_refused():
    with pytest.raises(ManifestError, match=r"unsupported version 'v2' \(supported: v1, 1.0\)"):
        load_manifest(upstream([node("p")], version="v2"))


def test_cli_defaults_are_weak_audio_defaults_and_block_size_4000():
    m = load_manifest(upstream([node("p")]))
    assert (m.audio.sample_rate, m.audio.channels, m.audio.block_size) == (16000, 1, 4000)
    assert m.weak_audio == {"sample_rate", "channels"}
    m = load_manifest(upstream([node("p")], metadata={
        "cli_defaults": {"sample_rate": 48000, "channels": 2, "chunk_size": 960, "stream": True},
        "category": "anything", "auto_negotiate": True}))
    assert (m.audio.sample_rate, m.audio.channels, m.audio.block_size) == (48000, 2, 960)
    m = load_manifest(upstream([node("p")]), audio_overrides={"block_size": 320,
                                                               "sample_rate": 8000})
    assert m.audio.block_size == 320 and m.weak_audio == {"channels"}
    native = load_manifest({"version": "v1", "audio": {"block_size": 480},
                            "nodes": [node("p")], "connections": [
                                {"from": "input", "to": "p"}, {"from": "p", "to": "output"}]})
    assert native.audio.block_size == 480


def test_an_audio_block_in_an_upstream_manifest_pins_its_keys():
    m = load_manifest(upstream([node("p")], audio={"sample_rate": 22050}))
    assert m.audio.sample_rate == 22050 and m.weak_audio == {"channels"}


@pytest.mark.parametrize("bad, fragment", [
    ({"metadata": {"cli_defaults": {"chunk_size": 0}}},
     "'metadata.cli_defaults.chunk_size' must be a whole number from 1 to 1048576 samples"),
    ({"metadata": {"cli_defaults": [1]}}, "'metadata.cli_defaults' must be a mapping"),
    ({"python_env": {"scope": "galaxy"}}, "'python_env.scope' must be one of"),
])
def test_bad_upstream_values_are_errors(bad, fragment):
    with pytest.raises(ManifestError, match=fragment):
        load_manifest(upstream([node("p")], **bad))


def test_upstream_node_keys_each_warn_once_and_bad_ones_fail():
    keys = {"is_streaming": True, "capabilities": {"gpu": {"type": "cuda"}},
            "media_capabilities": {"inputs": {}}, "host": "h:1", "runtime_hint": "cpython",
            "execution": {"placement": "x"}, "fast_path": True, "python_deps": ["numpy"],
            "docker": {"python_version": "3.11"}}
    m = load_manifest(upstream([node("p", **keys)], python_env={"scope": "global"}))
    for key in keys:
        assert sum(f"'{key}' has no effect here" in w for w in m.warnings) == 1
    assert any("'python_env' has no effect" in w for w in m.warnings)
    with pytest.raises(ManifestError, match="'runtime_hint' must be one of"):
        load_manifest(upstream([node("p", runtime_hint="gpu")]))
    with pytest.raises(ManifestError, match="'is_output_node' must be true or false"):
        load_manifest(upstream([node("p", is_output_node="yes")]))
    m = load_manifest(upstream([node("p", config={"a": 1})], extra_top=1))
    assert any("unknown key 'config' ignored" in w for w in m.warnings)
    assert any("top-level key 'extra_top'" in w for w in m.warnings)


def test_a_typo_in_an_upstream_param_is_a_warning_naming_it():
    m = load_manifest(upstream([node("lv", "AudioLevelNode",
                                     params={"silence_treshold_db": -50.0})]))
    (w,) = m.warnings
    assert "node 'lv'" in w and "unknown param 'silence_treshold_db'" in w
    assert "did you mean 'silence_threshold_db'" in w
    assert m.node("lv").params["silence_threshold_db"] == -60.0      # the default, said so


@pytest.mark.parametrize("params, fragment", [
    ({"silence_threshold_db": "loud"}, "param 'silence_threshold_db' must be float"),
    ({"dropout_count_threshold": 2.5}, "param 'dropout_count_threshold' must be int"),
])
def test_a_bad_value_for_a_known_upstream_param_is_an_error(params, fragment):
    with pytest.raises(ManifestError, match=fragment) as info:
        load_manifest(upstream([node("sd", "SilenceDetectorNode", params=params)]))
    assert info.value.exit_code == 2 and "node 'sd'" in str(info.value)


def test_camel_case_aliases_and_giving_both_is_an_error():
    m = load_manifest(upstream([node("c", "AudioChunkerNode", params={"chunkSize": 320})]))
    assert m.node("c").params["size"] == 320 and m.warnings == ()
    with pytest.raises(ManifestError, match="given twice"):
        load_manifest(upstream([node("c", "AudioChunkerNode",
                                     params={"chunkSize": 320, "chunk_size": 320})]))


def test_the_full_chain_loads_with_its_warnings():
    m = load_manifest(FULL)
    assert m.shape == UPSTREAM and m.version == "1.0"
    roots = {t for s, t in edges(m) if s == "input"}
    sinks = {s for s, t in edges(m) if t == "output"}
    assert roots == {"audio_level", "silence_detector", "clipping_detector", "channel_balance",
                     "speech_presence", "timing_drift", "drift_health"}
    assert sinks == {"conversation_flow", "timing_drift", "session_health", "event_correlator",
                     "health_emitter", "drift_health"}
    text = "\n".join(m.warnings)
    assert "unknown param 'clipping_threshold'" in text and "window_size_ms" in text
    assert not any(m.formats[s].carries_audio for s in sinks)     # events only


# -- convert-manifest --------------------------------------------------------------------------------

def test_native_document_runs_the_same_events():
    doc, notes = native_document(DATA / "stream_health.yaml")
    assert all(c["from"] != c["to"] for c in doc["connections"])
    assert {"input", "output"} <= {e for c in doc["connections"] for e in (c["from"], c["to"])}
    assert not any("is_streaming" in n for n in doc["nodes"])
    assert "health_emit_interval_ms" not in json.dumps(doc)
    native = load_manifest(doc)
    assert native.shape == NATIVE and native.warnings == ()
    x = tone(1.0)
    runs = []
    for m in (load_manifest(DATA / "stream_health.yaml"), native):
        with rm.Pipeline(m).session() as s:
            runs.append([o.value for i in range(0, RATE, 4000)
                         for o in s.push(NumpyData(x[i:i + 4000], sample_rate=RATE, pts=i))])
    assert runs[0] == runs[1] and len(runs[0]) == 4 * 4 + 1     # 4 analyzers a block, 1 health


def test_native_document_canonical_names():
    doc, notes = native_document(DATA / "vad_chain.json")
    types = {n["id"]: (n["node_type"], n.get("params")) for n in doc["nodes"]}
    assert types["chunker"] == ("Reframe", {"size": 960})
    assert types["resample_down"] == ("Resample", {"rate": 16000, "quality": "LQ",
                                                   "input_rate": 48000})
    assert types["gate"] == ("PassThrough", None)
    assert any("will not load" in n for n in notes)


def test_upstream_runtime_call_runs_upstream_manifests():
    from remotemedia.upstream_api import execute_pipeline_with_input
    import asyncio
    audio = {"type": "audio", "samples": np.zeros(4000, np.float32), "sample_rate": 16000,
             "channels": 1}
    out = asyncio.run(execute_pipeline_with_input(
        json.dumps(json.loads((DATA / "passthrough.json").read_text())), [audio]))
    assert len(out) == 1 and out[0].shape == (4000,)
    out = asyncio.run(execute_pipeline_with_input(str(DATA / "stream_health.yaml"),
                                                  [audio, audio]))
    schemas = [o.get("_schema") or o.get("type") for o in out]
    assert schemas.count("silence_event") == 2 and schemas.count("audio_level_event") == 2
    assert out[0]["is_silence"] is True
