"""Speak: blocks at the graph's rate and size, pts continuous, sentence by sentence, the model
loaded once, deterministic, both engines, the espeak-ng fall-back said once, bad voices refused
at load, and nothing serialized or copied by the engine."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

import remotemedia as rm
from remotemedia import ManifestError
from remotemedia.engine.data import JsonData, TextData
from remotemedia.engine.errors import NodeError
from remotemedia.nodes import speak as speak_module
from remotemedia.nodes import tts_engines
from remotemedia.testing import chain

from .speak_helpers import make_speak, requires_piper, spoken

ENGINES = [pytest.param("piper", marks=requires_piper), "espeak"]
THREE = "Hello there. How are you today? This is the third sentence."


@pytest.fixture(scope="module", params=ENGINES)
def engine(request):
    return request.param


@pytest.mark.parametrize("rate, block, channels", [(48000, 960, 1), (16000, 4000, 1),
                                                    (44100, 512, 2)])
def test_blocks_have_the_graphs_rate_size_and_continuous_pts(engine, rate, block, channels):
    node = make_speak(engine, rate=rate, block=block, channels=channels)
    first = list(node.process(TextData("Good morning.")))
    second = list(node.process(TextData("Good night.")))
    blocks = first + second
    assert len(first) > 0 and len(second) > 0
    for i, b in enumerate(blocks):
        assert b.sample_rate == rate
        assert b.array.dtype == np.float32
        assert b.array.shape == ((block,) if channels == 1 else (block, channels))
        assert b.pts == i * block and b.seq == i
    audio = np.concatenate([b.array for b in blocks])
    assert np.all(np.isfinite(audio)) and np.max(np.abs(audio)) <= 1.0
    if channels == 2:
        assert np.array_equal(audio[:, 0], audio[:, 1])
    # about a second of speech per short sentence, whatever the rate
    seconds = len(audio) / rate
    assert 0.8 < seconds < 4.0, seconds


def test_same_speech_at_every_rate(engine):
    # soxr converts the engine's rate: the duration does not depend on the graph's rate
    low, high = spoken(make_speak(engine, rate=16000), THREE), \
        spoken(make_speak(engine, rate=48000), THREE)
    assert abs(len(low) / 16000 - len(high) / 48000) < 0.1


def test_first_audio_leaves_before_the_rest_is_synthesized(engine):
    node = make_speak(engine)
    calls = []
    real = node._engine.synthesize
    node._engine.synthesize = lambda text: calls.append(text) or real(text)
    blocks = node.process(TextData(THREE))
    first = next(blocks)
    assert first.pts == 0
    assert calls == ["Hello there."]           # only the first sentence so far
    rest = list(blocks)
    assert calls == ["Hello there.", "How are you today?", "This is the third sentence."]
    assert len(rest) > 10


def test_the_node_holds_one_sentence_not_the_text(engine):
    node = make_speak(engine, rate=16000)
    one = spoken(make_speak(engine, rate=16000), "This is the third sentence.")
    text = " ".join(["This is the third sentence."] * 20)
    total = sum(b.array.shape[0] for b in node.process(TextData(text)))
    assert total > 15 * len(one)
    # a sentence's audio plus less than a block, never the whole text
    assert node.peak_held_samples < len(one) + 2 * 960


def test_same_text_same_samples(engine):
    a = spoken(make_speak(engine), THREE)
    b = spoken(make_speak(engine), THREE)
    assert len(a) > 0 and np.array_equal(a, b)


def test_deterministic_when_synthesized_on_another_thread(engine):
    # Under `executor: thread` the node runs on a worker: the model, loaded on the thread that
    # set it up, must give the same samples there.
    expected = spoken(make_speak(engine), THREE)
    node = make_speak(engine)
    out = {}
    worker = threading.Thread(target=lambda: out.setdefault("audio", spoken(node, THREE)))
    worker.start()
    worker.join(60)
    assert np.array_equal(out["audio"], expected)


def test_the_model_loads_in_setup_once(engine, monkeypatch):
    loads = []
    for cls in (tts_engines.PiperEngine, tts_engines.EspeakEngine):
        real = cls.load
        monkeypatch.setattr(cls, "load", lambda self, real=real: loads.append(1) or real(self))
    node = make_speak(engine)
    assert loads == [1]
    for text in ("One.", "Two.", "Three."):
        assert spoken(node, text).size
    assert loads == [1]


def test_json_with_text_is_spoken_other_json_passes_on(engine):
    node = make_speak(engine)
    assert len(list(node.process(JsonData({"type": "reply", "text": "Yes."})))) > 0
    event = JsonData({"type": "speech_start"})
    assert node.process(event) is event


@pytest.mark.parametrize("text", ["", "   ", "\n\n", " . "])
def test_empty_text_says_nothing(text):
    node = make_speak("espeak")
    assert list(node.process(TextData(text))) == []
    assert node.process(TextData("Hi."))   # and the node still speaks after


def test_speed_changes_the_duration(engine):
    normal = spoken(make_speak(engine), THREE)
    fast = spoken(make_speak(engine, speed=2.0), THREE)
    assert len(fast) < 0.75 * len(normal)


@requires_piper
def test_default_engine_is_piper_when_the_extra_is_installed():
    assert make_speak().engine_name == "piper"


def test_without_piper_speak_uses_espeak_and_says_so_once(monkeypatch, capsys):
    monkeypatch.setattr(tts_engines, "piper_installed", lambda: False)
    monkeypatch.setattr(speak_module, "_said", set())
    nodes = [make_speak(), make_speak(engine="piper")]
    assert [n.engine_name for n in nodes] == ["espeak", "espeak"]
    err = capsys.readouterr().err
    assert err.count("Speak uses espeak-ng") == 1, err
    assert "pip install 'remotemedia[tts]'" in err
    assert spoken(nodes[0], "Hello.").size


def test_the_fallback_is_a_validate_warning(monkeypatch):
    monkeypatch.setattr(tts_engines, "piper_installed", lambda: False)
    m = rm.Pipeline.from_manifest(chain({"id": "s", "node_type": "Speak"})).manifest
    assert any("Speak uses espeak-ng" in w for w in m.warnings)


@pytest.mark.parametrize("params, fragment", [
    ({"engine": "espeak", "voice": "xx-nosuch"}, "espeak-ng voice 'xx-nosuch' does not exist"),
    ({"engine": "espeak", "voice": "--help"}, "espeak-ng voice '--help' does not exist"),
    pytest.param({"engine": "piper", "voice": "no_such_voice_pkg"},
                 "Piper voice 'no_such_voice_pkg' is not installed (pip install "
                 "no-such-voice-pkg", marks=requires_piper),
    pytest.param({"engine": "piper", "voice": "/nonexistent/v.onnx"},
                 "voice file '/nonexistent/v.onnx' not found", marks=requires_piper),
])
def test_a_missing_voice_is_refused_when_the_manifest_loads(params, fragment):
    with pytest.raises(ManifestError) as info:
        rm.Pipeline.from_manifest(chain({"id": "talk", "node_type": "Speak", "params": params}))
    assert fragment in str(info.value) and "node 'talk'" in str(info.value)
    assert info.value.exit_code == 2 and "\n" not in str(info.value)


def test_an_engine_failure_is_a_node_error(monkeypatch):
    node = make_speak("espeak")
    node._engine._argv = ["false"]
    with pytest.raises(NodeError, match="node 'speak'.*espeak-ng failed"):
        list(node.process(TextData("Hello.")))


@pytest.mark.parametrize("executor", ["inline", "thread"])
def test_no_serialization_and_no_engine_copies(engine, executor):
    pipeline = rm.Pipeline.from_manifest(chain(
        {"id": "s", "node_type": "Speak", "params": {"engine": engine}, "executor": executor},
        {"id": "g", "node_type": "Gain", "params": {"db": -6}}))
    with pipeline.session(strict_serialization=True) as s:
        outs = s.push(TextData(THREE)) + s.end_of_stream()
        st = s.stats()
    assert sum(o.kind == "numpy" for o in outs) == st["frames_out"] > 50
    assert st["serialization_events"] == 0
    assert st["copies"] == {"engine": 0, "cow": 0, "io": 0}
    assert st["errors"] == st["drops"] == 0
    json.dumps(st)


def test_the_serialization_counter_fires_on_spoken_audio(engine):
    # The counter above can fire: pickling a block Speak made is counted.
    import pickle
    pipeline = rm.Pipeline.from_manifest(chain(
        {"id": "s", "node_type": "Speak", "params": {"engine": engine}, "executor": "inline"}))
    with pipeline.session() as s:
        outs = s.push(TextData("Hi."))
        pickle.dumps(outs[0].array)
        assert s.stats()["serialization_events"] == 1


def test_the_report_carries_the_synthesis_the_node_latency_misses(engine):
    # Synthesis happens while the engine iterates the blocks, after process() returned: the
    # node's own figures say what it cost.
    pipeline = rm.Pipeline.from_manifest(chain(
        {"id": "s", "node_type": "Speak", "params": {"engine": engine}, "executor": "inline"}))
    with pipeline.session() as s:
        s.push(TextData(THREE))
        s.push(TextData("Again."))
        report = s.stats()
    speech = report["nodes"]["s"]["speech"]
    assert speech["engine"] == engine and speech["pieces"] == 4
    assert speech["synthesis_s"] > 0 and speech["audio_s"] > 2
    assert speech["rtf"] == pytest.approx(speech["synthesis_s"] / speech["audio_s"], rel=1e-3)
    assert 0 < speech["first_piece_ms"]["p50"] <= speech["first_piece_ms"]["max"]
    assert speech["peak_held_samples"] > 0
    json.dumps(report)


def test_speak_runs_on_the_thread_executor_by_default(engine):
    # Synthesis stays off the block path of a live run unless the manifest says otherwise.
    m = rm.Pipeline.from_manifest(chain(
        {"id": "s", "node_type": "Speak", "params": {"engine": engine}})).manifest
    assert m.node("s").executor == "thread"
    with rm.Pipeline(m).session() as s:
        outs = s.push(TextData(THREE)) + s.end_of_stream()
    audio = np.concatenate([o.array for o in outs if o.kind == "numpy"])
    assert np.array_equal(audio, spoken(make_speak(engine), THREE))
