"""The upstream's speech-path and misc nodes, and the aliases onto ours."""

from __future__ import annotations

import numpy as np
import pytest
import soxr

import remotemedia as rm
from remotemedia.engine.data import JsonData, NumpyData, TextData
from remotemedia.engine.manifest import load_manifest

from .test_nodes_vad import needs_model


def chain(*nodes, rate=48000, channels=1, block=960, input_format=None):
    """An upstream-shape chain: nodes connected in order."""
    ids = [f"n{i}" for i in range(len(nodes))]
    return rm.Pipeline.from_manifest(input_format=input_format, src={
        "version": "v1",
        "metadata": {"cli_defaults": {"sample_rate": rate, "channels": channels,
                                      "chunk_size": block}},
        "nodes": [{"id": i, "node_type": t, "params": p} for i, (t, p) in zip(ids, nodes)],
        "connections": [{"from": a, "to": b} for a, b in zip(ids, ids[1:])]})


def run(pipeline, items):
    out = []
    with pipeline.session() as s:
        for item in items:
            out += s.push(item)
        out += [o for o in s.end_of_stream() if o.kind != "control"]
    return out


def frames(x, rate, block):
    return [NumpyData(x[i:i + block], sample_rate=rate, pts=i) for i in range(0, len(x), block)]


def noise(n, seed=0):
    return (0.3 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


def test_fast_resample_is_resample_with_upstream_params():
    x = noise(48000)
    p = chain(("FastResampleNode", {"sourceRate": 48000, "targetRate": 16000,
                                    "quality": "High"}))
    out = run(p, frames(x, 48000, 960))
    y = np.concatenate([o.array for o in out])
    assert all(o.sample_rate == 16000 for o in out)
    # No zeros padded in: the whole stream equals soxr's one-shot conversion, tail included.
    np.testing.assert_allclose(y, soxr.resample(x, 48000, 16000, quality="HQ"), atol=1e-6)
    assert out[0].pts == 0 and [o.pts for o in out[1:]] == list(np.cumsum(
        [o.array.shape[0] for o in out])[:-1])


@pytest.mark.parametrize("params", [{}, {"targetRate": "auto"}, {"target_rate": 48000}])
def test_fast_resample_without_a_target_passes_through(params):
    x = noise(960)
    (out,) = run(chain(("FastResampleNode", params)), [NumpyData(x, sample_rate=48000)])
    assert np.shares_memory(out.array, x)


def test_fast_resample_bad_values_are_errors():
    with pytest.raises(rm.ManifestError, match="param 'quality' must be one of 'Low'"):
        chain(("FastResampleNode", {"targetRate": 16000, "quality": "Ultra"}))
    # a mono file decides the channels before the node's declaration does (precedence)
    with pytest.raises(rm.ManifestError, match="channels is 2 but the stream arriving has 1"):
        chain(("FastResampleNode", {"targetRate": 16000, "channels": 2}),
              input_format={"sample_rate": 48000, "channels": 1})
    # with nothing above it, the node's declaration beats metadata.cli_defaults' mono
    assert chain(("FastResampleNode", {"targetRate": 16000, "channels": 2})).manifest \
        .audio.channels == 2


def test_audio_chunker_is_reframe_and_releases_its_remainder():
    x = noise(1000)
    out = run(chain(("AudioChunkerNode", {"chunkSize": 320})), frames(x, 16000, 250))
    assert [o.array.shape[0] for o in out] == [320, 320, 320, 40]
    np.testing.assert_array_equal(np.concatenate([o.array for o in out]), x)
    m = load_manifest({"version": "v1", "nodes": [{"id": "c", "node_type": "AudioChunkerNode"}],
                       "connections": []})
    assert m.node("c").params["size"] == 512


def test_speculative_gate_forwards_audio_and_lets_events_pass():
    x = noise(320)
    out = run(chain(("SpeculativeVADGate", {"lookbackMs": 200})),
              [NumpyData(x, sample_rate=16000), JsonData({"has_speech": True})])
    assert np.shares_memory(out[0].array, x) and out[1].value == {"has_speech": True}


def test_speculative_gate_snake_case_param_is_named():
    m = load_manifest({"version": "v1", "nodes": [{"id": "g", "node_type": "SpeculativeVADGate",
                                                   "params": {"lookback_ms": 100}}],
                       "connections": []})
    assert any("unknown param 'lookback_ms'" in w and "lookbackMs" in w for w in m.warnings)


def accumulate(items, **params):
    return run(chain(("AudioBufferAccumulatorNode", params), rate=16000, block=320), items)


def test_accumulator_gathers_an_utterance_with_its_lead_in():
    x = 0.5 * np.ones(16000, np.float32)
    blocks = frames(x, 16000, 1600)                     # 100 ms each
    items = blocks[:7] + [JsonData({"is_speech_start": True})] + blocks[7:] + [
        JsonData({"type": "speech_end"})]
    (out,) = accumulate(items)
    # 500 ms of lead-in (blocks 2..6), then blocks 7..9: 800 ms, from pts 3200.
    assert out.array.shape[0] == 8 * 1600 and out.pts == 2 * 1600


def test_accumulator_drops_short_or_quiet_utterances_and_flushes_at_end():
    loud, quiet = 0.5 * np.ones(1600, np.float32), 0.01 * np.ones(8000, np.float32)
    assert accumulate([JsonData({"is_speech_start": True}), NumpyData(loud, sample_rate=16000),
                       JsonData({"is_speech_end": True})]) == []           # 100 ms < 250
    assert accumulate([JsonData({"is_speech_start": True}), NumpyData(quiet, sample_rate=16000),
                       JsonData({"is_speech_end": True})]) == []           # peak < 0.02
    (out,) = accumulate([JsonData({"is_speech_start": True}),
                         NumpyData(0.5 * np.ones(8000, np.float32), sample_rate=16000)])
    assert out.array.shape[0] == 8000                                   # released at the end


def test_accumulator_cuts_at_max_duration():
    items = [JsonData({"is_speech_start": True})] + frames(0.5 * np.ones(16000, np.float32),
                                                           16000, 1600)
    out = accumulate(items, maxUtteranceDurationMs=500)
    assert [o.array.shape[0] for o in out] == [8000, 8000]


def test_channel_splitter_streams_and_channels():
    segs = JsonData({"segments": [{"start": 0.0, "end": 0.5, "speaker": "0"},
                                  {"start": 0.5, "end": 1.0, "speaker": "1"},
                                  {"start": "bad"}], "num_speakers": 2})
    x = 0.5 * np.ones(16000, np.float32)
    before = run(chain(("AudioChannelSplitterNode", {}), rate=16000, block=16000),
                 [NumpyData(x, sample_rate=16000)])
    assert np.shares_memory(before[0].array, x)                 # no segments yet: unchanged
    out = run(chain(("AudioChannelSplitterNode", {"streamIdPrefix": "spk"}), rate=16000,
                    block=16000), [segs, NumpyData(x, sample_rate=16000)])
    assert [o.metadata["stream_id"] for o in out] == ["spk_0", "spk_1"]
    assert out[0].array[:8000].min() == 0.5 and out[0].array[8000:].max() == 0.0
    (both,) = run(chain(("AudioChannelSplitterNode", {"outputMode": "channels"}), rate=16000,
                        block=16000), [segs, NumpyData(x, sample_rate=16000)])
    assert both.array.shape == (16000, 2)


def test_text_collector_sentences_markers_and_end_of_stream():
    p = chain(("TextCollectorNode", {}))
    out = run(p, [TextData("Hello there. Ok"), TextData("! a. Second"),
                  TextData("part<|text_end|>"), TextData("tail without end")])
    assert [o.text for o in out] == ["Hello there.", "Ok!", "Secondpart", "<|text_end|>",
                                     "tail without end"]
    out = run(chain(("TextCollectorNode", {"splitPattern": "[,]+", "min_sentence_length": 1})),
              [TextData("a,b. c,"), TextData("\x00\x03asr raw")])
    assert [o.text for o in out] == ["a,", "b. c,", "\x00\x03asr raw"]


@needs_model
def test_silero_vad_node_is_vad_with_upstream_params():
    import soundfile as sf
    from .test_nodes_vad import DATA
    speech, rate = sf.read(DATA / "speech_fox_16k.wav", dtype="float32")
    assert rate == 16000
    x = np.concatenate([np.zeros(16000, np.float32), speech, np.zeros(16000, np.float32)])
    p = rm.Pipeline.from_manifest({
        "version": "v1", "metadata": {"cli_defaults": {"sample_rate": 16000, "chunk_size": 512}},
        "nodes": [{"id": "vad", "node_type": "SileroVADNode",
                   "params": {"threshold": 0.5, "negThreshold": 0.3,
                              "minSilenceDurationMs": 100, "speechPadMs": 30}}],
        "connections": []})
    out = run(p, frames(x, 16000, 512))
    events = [o.value["type"] for o in out if o.kind == "json"]
    assert events[:1] == ["speech_start"] and "speech_end" in events
    assert sum(o.kind == "numpy" for o in out) == len(frames(x, 16000, 512))
    with pytest.raises(rm.ManifestError, match="param 'sampling_rate' must be one of 16000"):
        load_manifest({"version": "v1", "nodes": [{"id": "v", "node_type": "SileroVADNode",
                                                   "params": {"samplingRate": 8000}}],
                       "connections": []})


def test_nodes_lists_upstream_names_and_aliases():
    described = {d["node_type"]: d for d in (c.describe() for c in rm.registry.types().values())}
    for name in ("AudioLevelNode", "SilenceDetectorNode", "ClippingDetectorNode",
                 "ChannelBalanceNode", "SpeechPresenceNode", "ConversationFlowNode",
                 "SessionHealthNode", "TimingDriftNode", "HealthEmitterNode",
                 "EventCorrelatorNode", "AudioEvidenceNode", "AudioChannelSplitterNode",
                 "AudioBufferAccumulatorNode", "TextCollectorNode", "SpeculativeVADGate",
                 "FastResampleNode", "AudioChunkerNode", "SileroVADNode", "PassThrough"):
        assert name in described
    assert described["FastResampleNode"]["alias_of"] == "Resample"
    assert described["AudioChunkerNode"]["param_aliases"] == {"chunkSize": "chunk_size"}
    assert described["SileroVADNode"]["alias_of"] == "VAD"
