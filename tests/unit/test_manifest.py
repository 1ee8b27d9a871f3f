"""Manifest validation: every failure is one line naming the file, the node and the problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import remotemedia as rm
from remotemedia import ManifestError
from remotemedia.engine.manifest import load_manifest


def base(nodes=None, connections=None, **extra) -> dict:
    doc = {
        "version": "v1",
        "nodes": nodes if nodes is not None else [{"id": "gain", "node_type": "Gain"}],
        "connections": connections if connections is not None else [
            {"from": "input", "to": "gain"}, {"from": "gain", "to": "output"}],
    }
    doc.update(extra)
    return doc


def error_for(doc, tmp_path: Path) -> ManifestError:
    path = tmp_path / "bad.yaml"
    path.write_text(json.dumps(doc))  # JSON is YAML
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    assert info.value.exit_code == 2
    return info.value


def test_loads_yaml_json_dict_and_json_string(manifests_dir, tmp_path):
    from_yaml = load_manifest(manifests_dir / "meter.yaml")
    doc = {"version": "v1", "nodes": [{"id": "g", "node_type": "Gain", "params": {"db": -3}}],
           "connections": [{"from": "input", "to": "g"}, {"from": "g", "to": "output"}]}
    (tmp_path / "m.json").write_text(json.dumps(doc))
    for src in (tmp_path / "m.json", str(tmp_path / "m.json"), doc, json.dumps(doc)):
        m = load_manifest(src)
        assert m.order == ("g",)
        assert m.node("g").params["db"] == -3.0
    assert from_yaml.order == ("gain", "meter")
    assert from_yaml.audio.sample_rate == 48000 and from_yaml.audio.block_size == 960


@pytest.mark.parametrize("doc, node_id, fragment", [
    (base(version="v9"), None, "unsupported version 'v9'"),
    ({k: v for k, v in base().items() if k != "version"}, None, "missing 'version'"),
    (base(nodes=[{"id": "gain", "node_type": "Gain"}, {"id": "gain", "node_type": "Gain"}]),
     "gain", "duplicate node id"),
    (base(nodes=[{"id": "gain", "node_type": "Gian"}]), "gain",
     "unknown node type 'Gian' (did you mean 'Gain'?)"),
    (base(nodes=[{"id": "gain", "node_type": "Gain", "params": {"bd": 3}}]), "gain",
     "unknown param 'bd' for Gain (did you mean 'db'?)"),
    (base(nodes=[{"id": "gain", "node_type": "Gain", "params": {"db": "loud"}}]), "gain",
     "param 'db' must be float, got str 'loud'"),
    (base(nodes=[{"id": "gain", "node_type": "Gain", "params": {"db": 1, "linear": 2}}]),
     "gain", "give 'db' or 'linear', not both"),
    (base(connections=[{"from": "input", "to": "gain"}, {"from": "gain", "to": "outptu"}]),
     "outptu", "names no node (did you mean 'output'?)"),
    (base(connections=[{"from": "input", "to": "gain"}, {"from": "output", "to": "gain"}]),
     None, "'output' is the session's end"),
    (base(nodes=[{"id": "a", "node_type": "PassThrough"}, {"id": "b", "node_type": "PassThrough"}],
          connections=[{"from": "input", "to": "a"}, {"from": "a", "to": "b"},
                       {"from": "b", "to": "a", "input": "loop"}, {"from": "b", "to": "output"}]),
     None, "cycle"),
    (base(nodes=[{"id": "gain", "node_type": "Gain"}, {"id": "lost", "node_type": "Gain"}]),
     "lost", "unreachable from 'input'"),
    (base(nodes=[{"id": "a", "node_type": "Gain"}, {"id": "b", "node_type": "Gain"},
                 {"id": "c", "node_type": "Gain"}],
          connections=[{"from": "input", "to": "a"}, {"from": "input", "to": "b"},
                       {"from": "a", "to": "c"}, {"from": "b", "to": "c"},
                       {"from": "c", "to": "output"}]),
     "c", "Gain takes one input but 2 connections lead into it"),
    (base(nodes=[{"id": "sel", "node_type": "ChannelSelect", "params": {"channel": 3}}],
          connections=[{"from": "input", "to": "sel"}, {"from": "sel", "to": "output"}],
          audio={"channels": 2}),
     "sel", "channel 3 does not exist in a 2-channel stream"),
    (base(audio={"sample_rate": -5}), None, "'audio.sample_rate' must be a whole number from 1 to 768000 Hz"),
    (base(nodes=[{"id": "input", "node_type": "Gain"}]), "input", "reserved"),
    (base(nodes=[{"id": "gain", "node_type": "Gain", "on_error": "explode"}]), "gain",
     "'on_error' must be one of fail, skip"),
    (base(nodes=[{"id": "gain", "node_type": "Gain", "colour": "red"}]), "gain",
     "unknown key 'colour'"),
    (base(nodes=[]), None, "'nodes' must be a non-empty list"),
], ids=["version", "no-version", "duplicate", "unknown-type", "unknown-param", "ill-typed",
        "param-conflict", "dangling", "output-as-source", "cycle", "unreachable", "fan-in",
        "channel-mismatch", "bad-audio", "reserved-id", "on-error", "unknown-key", "no-nodes"])
def test_validation_failures_name_file_node_and_problem(doc, node_id, fragment, tmp_path):
    err = error_for(doc, tmp_path)
    assert fragment in str(err)
    if node_id is not None:
        assert f"node '{node_id}'" in str(err)
        assert err.node_id == node_id


def test_sample_rate_mismatch_between_fan_in_inputs(tmp_path):
    from remotemedia.engine.node import Node

    class HalfRate(Node):
        node_type = "HalfRate"

        def output_format(self, fmt):
            return fmt.replace(sample_rate=fmt.sample_rate // 2)

        def process(self, frame):
            return frame

    rm.registry.register(HalfRate)
    doc = base(nodes=[{"id": "slow", "node_type": "HalfRate"},
                      {"id": "fast", "node_type": "PassThrough"},
                      {"id": "mix", "node_type": "Mix"}],
               connections=[{"from": "input", "to": "slow"}, {"from": "input", "to": "fast"},
                            {"from": "slow", "to": "mix"}, {"from": "fast", "to": "mix"},
                            {"from": "mix", "to": "output"}])
    err = error_for(doc, tmp_path)
    assert "node 'mix'" in str(err)
    assert "inputs disagree on sample rate: slow=24000, fast=48000" in str(err)


def test_syntax_errors_and_missing_files(tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("version: v1\nnodes: [\n")
    with pytest.raises(ManifestError, match=r"broken.yaml: invalid YAML at line \d+"):
        load_manifest(bad)
    badjson = tmp_path / "broken.json"
    badjson.write_text('{"version": "v1",')
    with pytest.raises(ManifestError, match=r"broken.json: invalid JSON at line 1"):
        load_manifest(badjson)
    with pytest.raises(ManifestError, match=r"nope.yaml: file not found"):
        load_manifest(tmp_path / "nope.yaml")
    listy = tmp_path / "list.yaml"
    listy.write_text("- a\n- b\n")
    with pytest.raises(ManifestError, match="top level must be a mapping, got list"):
        load_manifest(listy)


def test_import_path_needs_permission(tmp_path):
    doc = base(nodes=[{"id": "gain", "node_type": "remotemedia.nodes.audio:Gain"}])
    err = error_for(doc, tmp_path)
    assert "--allow-import remotemedia.nodes.audio" in str(err)
    m = load_manifest(doc, allow_import=["remotemedia.nodes"])
    assert m.node("gain").node_class is rm.registry.resolve("Gain")


def test_topological_order_is_stable_in_manifest_order(manifests_dir):
    m = load_manifest(manifests_dir / "mix.yaml")
    assert m.order == ("left", "right", "mix")
    five = load_manifest(manifests_dir / "five.yaml")
    assert five.order == ("a", "b", "c", "d", "e")


def test_branches_playing_at_output_must_agree_on_rate(tmp_path):
    doc = base(nodes=[{"id": "down", "node_type": "Resample", "params": {"rate": 16000}}],
               connections=[{"from": "input", "to": "down"}, {"from": "input", "to": "output"},
                            {"from": "down", "to": "output"}])
    err = error_for(doc, tmp_path)
    assert "node 'down': sends 16000 Hz audio to 'output', which also receives 48000 Hz from " \
           "'input'" in str(err)


def test_a_branch_that_sends_only_events_may_have_another_rate(manifests_dir):
    voice = load_manifest(manifests_dir / "voice.yaml")
    assert voice.output_format.sample_rate == 48000
    assert voice.formats["vad"].carries_audio is False
