"""One precedence decides the run's audio format (engine/precedence.py): command line, audio
block, input file, nodes, cli_defaults, default; each key from the first layer that gives it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import remotemedia as rm
from remotemedia.engine.manifest import load_manifest
from remotemedia.engine.precedence import KEYS, LAYERS, decide

layer_values = st.fixed_dictionaries({}, optional={
    "sample_rate": st.sampled_from([8000, 16000, 44100, 48000]),
    "channels": st.integers(1, 6), "block_size": st.integers(1, 8192)})


@settings(max_examples=200, deadline=None)
@given(given_layers=st.dictionaries(st.sampled_from(LAYERS[:-1]), layer_values))
def test_each_key_comes_from_the_first_layer_that_gives_it(given_layers):
    layers = {**given_layers, "default": {"sample_rate": 48000, "channels": 1,
                                          "block_size": 960}}
    decision = decide(layers)
    for key in KEYS:
        first = next(name for name in LAYERS if key in (layers.get(name) or {}))
        assert decision.origin[key] == first
        assert getattr(decision.format, key) == layers[first][key]


def upstream_vad(cli_defaults=None) -> dict:
    """The shape of the upstream's vad_bidirectional.json: no audio block, a chunker, then a
    FastResampleNode that declares sourceRate 48000."""
    metadata = {"name": "vad"} if cli_defaults is None else {"cli_defaults": cli_defaults}
    return {
        "version": "v1", "metadata": metadata,
        "nodes": [{"id": "chunker", "node_type": "AudioChunkerNode",
                   "params": {"chunkSize": 960}},
                  {"id": "down", "node_type": "FastResampleNode",
                   "params": {"sourceRate": 48000, "targetRate": 16000, "quality": "Low"}},
                  {"id": "up", "node_type": "FastResampleNode",
                   "params": {"sourceRate": 16000, "targetRate": 48000}}],
        "connections": [{"from": "chunker", "to": "down"}, {"from": "down", "to": "up"}]}


def test_a_node_declaration_beats_the_upstream_default():
    m = load_manifest(upstream_vad())
    assert m.audio.sample_rate == 48000 and m.audio_origin["sample_rate"] == "nodes"
    assert m.audio.block_size == 4000 and m.audio_origin["block_size"] == "default"
    assert m.weak_audio == {"sample_rate", "channels"}


def test_a_file_at_the_declared_rate_runs_and_one_at_another_is_refused_naming_why():
    m = load_manifest(upstream_vad(), input_format={"sample_rate": 48000, "channels": 1})
    assert m.audio.sample_rate == 48000 and m.audio_origin["sample_rate"] == "input file"
    with pytest.raises(rm.ManifestError) as info:
        load_manifest(upstream_vad(), input_format={"sample_rate": 16000, "channels": 1})
    message = str(info.value)
    assert "node 'down'" in message and "sourceRate is 48000 Hz" in message
    assert "16000 Hz from the input file" in message and "\n" not in message


def test_the_audio_block_and_the_command_line_win():
    doc = {**upstream_vad(), "audio": {"sample_rate": 16000}}
    with pytest.raises(rm.ManifestError, match="16000 Hz from the audio block"):
        load_manifest(doc, input_format={"sample_rate": 48000})
    with pytest.raises(rm.ManifestError, match="22050 Hz from the command line"):
        load_manifest(upstream_vad(), audio_overrides={"sample_rate": 22050},
                      input_format={"sample_rate": 48000})
    m = load_manifest(upstream_vad(), audio_overrides={"block_size": 320},
                      input_format={"sample_rate": 48000})
    assert m.audio.block_size == 320 and m.audio_origin["block_size"] == "command line"


def test_nodes_that_disagree_decide_nothing():
    doc = upstream_vad()
    doc["nodes"].append({"id": "other", "node_type": "FastResampleNode",
                         "params": {"sourceRate": 44100, "targetRate": 48000}})
    with pytest.raises(rm.ManifestError, match="the run's input: 16000 Hz from the default"):
        load_manifest(doc)


def test_a_native_manifest_without_an_audio_block_takes_a_file_s_format():
    doc = {"version": "v1", "nodes": [{"id": "g", "node_type": "Gain"}],
           "connections": [{"from": "input", "to": "g"}, {"from": "g", "to": "output"}]}
    assert load_manifest(doc).audio.sample_rate == 48000
    m = load_manifest(doc, input_format={"sample_rate": 16000, "channels": 2})
    assert (m.audio.sample_rate, m.audio.channels) == (16000, 2)
    pinned = {**doc, "audio": {"sample_rate": 48000}}
    assert load_manifest(pinned, input_format={"sample_rate": 16000}).audio.sample_rate == 48000


def test_the_vad_declares_its_own_16k_mono():
    doc = {"version": "v1", "nodes": [{"id": "v", "node_type": "VAD"}],
           "connections": [{"from": "input", "to": "v"}, {"from": "v", "to": "output"}]}
    m = load_manifest(doc)
    assert (m.audio.sample_rate, m.audio.channels) == (16000, 1)
    assert m.audio_origin["sample_rate"] == "nodes"
