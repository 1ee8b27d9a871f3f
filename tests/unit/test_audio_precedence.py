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


# Every layer that can name an audio value is held to the same limits (engine/node.AUDIO_LIMITS):
# before, a manifest's `audio: {channels: 100000}` ran (800 MB), `block_size: 100000000` ran
# (440 MB) and a WAV header's 10 MHz rate decided the run's rate; only --block-size was bounded.
from remotemedia.engine.errors import ManifestError  # noqa: E402
from remotemedia.engine.manifest import validate_manifest  # noqa: E402
from remotemedia.engine.node import AUDIO_LIMITS  # noqa: E402

GAIN = {"version": "v1", "nodes": [{"id": "g", "node_type": "Gain"}],
        "connections": [{"from": "input", "to": "g"}, {"from": "g", "to": "output"}]}
UPSTREAM_KEY = {"sample_rate": "sample_rate", "channels": "channels", "block_size": "chunk_size"}


def _validate(layer: str, key: str, value):
    if layer == "audio block":
        return validate_manifest({**GAIN, "audio": {key: value}}, source="m.yaml")
    if layer == "cli_defaults":
        doc = upstream_vad({UPSTREAM_KEY[key]: value})
        return validate_manifest(doc, source="m.json")
    if layer == "command line":
        return validate_manifest(GAIN, source="m.yaml", audio_overrides={key: value})
    return validate_manifest(GAIN, source="m.yaml", input_format={key: value})


@settings(max_examples=150, deadline=None)
@given(layer=st.sampled_from(["audio block", "cli_defaults", "command line", "input file"]),
       key=st.sampled_from(KEYS), over=st.integers(1, 10**9),
       kind=st.sampled_from(["above", "zero or less", "not a whole number"]))
def test_an_audio_value_beyond_its_limit_is_refused_in_one_line_naming_it(layer, key, over,
                                                                          kind):
    if layer == "input file" and key == "block_size":
        key = "sample_rate"                  # a file header has no block size
    value = {"above": AUDIO_LIMITS[key] + over, "zero or less": 1 - over,
             "not a whole number": over + 0.5}[kind]
    with pytest.raises(ManifestError) as refused:
        _validate(layer, key, value)
    message = str(refused.value)
    assert "\n" not in message and str(AUDIO_LIMITS[key]) in message
    assert (UPSTREAM_KEY[key] if layer == "cli_defaults" else key) in message


# a file header has no block size; the upstream VAD's resampler declares its own 48 kHz input
@pytest.mark.parametrize("layer,key", [
    (layer, key) for layer in ("audio block", "cli_defaults", "command line", "input file")
    for key in KEYS
    if (layer, key) not in {("input file", "block_size"), ("cli_defaults", "sample_rate")}])
def test_an_audio_value_at_its_limit_is_accepted(layer, key):
    manifest = _validate(layer, key, AUDIO_LIMITS[key])
    assert getattr(manifest.audio, key) == AUDIO_LIMITS[key]
