"""The voice loop end to end in simulated time: Whisper, espeak-ng, the VAD, Respond."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import yaml

from remotemedia.testing import Conversation

from .llm_server import ChatServer

pytestmark = pytest.mark.slow
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ASSISTANT = os.path.join(ROOT, "manifests", "assistant.yaml")

# the first two turns (what the recording and loopback tests script too), then a barge-in
TWO_TURNS = """\
turns:
  - say: "Hello there."
    expect: {heard: "hello", reply: "help"}
  - say: "What is the weather like today?"
    after_ms: 400
    expect: {heard: "weather", reply: "sunny"}
"""
BARGE_IN = """\
  - say: "What time is it?"
    barge_in_after_ms: 500
"""
#: the shipped example (conversations/hello.yaml): the same two turns, then the barge-in
with open(os.path.join(ROOT, "conversations", "hello.yaml")) as _f:
    THREE_TURNS = _f.read()


def assistant(**llm) -> dict:
    with open(ASSISTANT) as f:
        doc = yaml.safe_load(f)
    for node in doc["nodes"]:
        if node["id"] == "llm" and llm:
            node["params"] = llm
    return doc


def converse(*args, cwd):
    r = subprocess.run([sys.executable, "-m", "remotemedia", "converse", "-m", ASSISTANT,
                        *args], capture_output=True, text=True, cwd=cwd, timeout=600)
    return r, (json.loads(r.stdout.strip().splitlines()[-1]) if r.stdout.strip() else None)


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    """The 3-turn script run once measured (saving its costs) and twice from the cost file."""
    d = tmp_path_factory.mktemp("conv")
    (d / "s.yaml").write_text(THREE_TURNS)
    first, measured = converse("-s", "s.yaml", "--json", "--save-timing", "cost.json", cwd=d)
    assert first.returncode == 0, first.stderr
    runs = [converse("-s", "s.yaml", "--json", "--timing", "cost.json", cwd=d)
            for _ in range(2)]
    return d, measured, runs


def test_three_turns_with_a_barge_in_pass_in_simulated_time(three):
    _, report, _ = three
    assert report["passed"] and report["timing"] == "measured"
    turns = report["turns"]
    assert [t["wer"] for t in turns] == [0.0, 0.0, 0.0]
    # The third turn barged in on the second reply: that reply was cut, the bot stopped.
    assert turns[1]["interrupted"] and not turns[0]["interrupted"]
    assert turns[2]["barge_in_stop_ms"] is not None and turns[0]["barge_in_stop_ms"] is None
    # the turns list and stats.turns agree on which turn carries it, and on `interrupted`
    rows = report["stats"]["turns"]["turns"]
    assert [r["barge_in_stop_ms"] for r in rows] == [t["barge_in_stop_ms"] for t in turns]
    assert [r["interrupted"] for r in rows] == [t["interrupted"] for t in turns]
    assert report["stats"]["interrupts"] == 1 == report["stats"]["turns"]["interruptions"]
    for t in turns:
        assert set(t["breakdown_ms"]) == {"endpoint", "stt", "llm", "tts", "output"}
        assert abs(sum(t["breakdown_ms"].values()) - t["voice_to_voice_ms"]) < 0.01
        assert t["breakdown_ms"]["endpoint"] >= 300       # the VAD's min_silence_ms
    assert report["simulated_s"] > 8
    # Whisper ran at each pause, and every turn's result came from it (assistant.yaml
    # transcribes speculatively).
    spec = report["stats"]["nodes"]["stt"]["speculative"]
    assert spec["used"] >= 3 and spec["runs"] >= spec["used"]


def test_two_runs_from_a_cost_file_give_identical_json(three):
    d, _, runs = three
    (r1, a), (r2, b) = runs
    assert r1.returncode == r2.returncode == 0, r1.stderr + r2.stderr
    assert a["timing"] == "cost.json"
    a.pop("wall_s"), b.pop("wall_s")
    assert a == b
    saved = json.loads((d / "cost.json").read_text())
    assert saved["version"] == 1 and {"vad", "stt", "llm", "tts"} <= set(saved["nodes"])


def test_an_expectation_that_cannot_hold_exits_1_and_says_why(three):
    d, _, _ = three
    (d / "bad.yaml").write_text('turns:\n  - say: "Hello there."\n'
                                '    expect: {reply: "zebra", within_ms: 1}\n')
    r, report = converse("-s", "bad.yaml", "--json", "--timing", "cost.json", cwd=d)
    assert r.returncode == 1 and report["passed"] is False
    assert "turn 1 (Hello there.): reply 'Hello! How can I help?' does not match /zebra/" \
        in r.stderr
    assert "voice-to-voice" in r.stderr and "> 1 ms" in r.stderr
    whys = [e["why"] for e in report["turns"][0]["expect"]]
    assert all(whys) and len(whys) == 2


def test_a_slow_http_responder_shows_in_the_breakdown_under_respond():
    script = {"turns": [{"say": "Hello there."}]}
    with ChatServer(reply="Hi. Nice to meet you.", delay_s=0.0) as fast:
        quick = Conversation(assistant(engine="http", base_url=fast.base_url), script).run()
    with ChatServer(reply="Hi. Nice to meet you.", delay_s=0.6) as slow:
        late = Conversation(assistant(engine="http", base_url=slow.base_url), script).run()
    q, s = quick["turns"][0], late["turns"][0]
    assert q["reply"] == s["reply"] == "Hi. Nice to meet you."
    assert s["breakdown_ms"]["llm"] >= 600 > q["breakdown_ms"]["llm"]


def test_a_failing_http_responder_says_the_fallback():
    with ChatServer(status=503) as srv:
        report = Conversation(assistant(engine="http", base_url=srv.base_url,
                                        fallback="Sorry, try again."),
                              {"turns": [{"say": "Hello there."}]}).run()
    assert report["turns"][0]["reply"] == "Sorry, try again."
    assert report["turns"][0]["voice_to_voice_ms"] is not None


def _burst(tmp_path, text, seconds):
    """espeak-ng saying `text`, cut to `seconds`, as a WAV file."""
    conv = Conversation(ASSISTANT, {"turns": [{"say": text}]})
    audio = conv._voices(48000, 960)[0]
    start = int(np.argmax(np.abs(audio) > 0.01))
    path = tmp_path / f"burst{seconds}.wav"
    soundfile.write(path, audio[start:start + int(seconds * 48000)], 48000)
    return path.name


def test_mm_hmm_shorter_than_min_speech_does_not_interrupt(tmp_path):
    long_text = "I would like to hear about the weather and about the time of day."
    _burst(tmp_path, "mm hmm", 0.15)
    _burst(tmp_path, "yes yes I see what you mean", 1.0)
    results = {}
    for name in ("burst0.15.wav", "burst1.0.wav"):
        script = {"turns": [{"say": long_text},
                            {"play": name, "barge_in_after_ms": 800}]}
        (tmp_path / "s.yaml").write_text(yaml.safe_dump(script))
        results[name] = Conversation(assistant(engine="echo"), str(tmp_path / "s.yaml")).run()
    short, long_ = results["burst0.15.wav"], results["burst1.0.wav"]
    assert short["stats"]["interrupts"] == 0 and not short["turns"][0]["interrupted"]
    assert short["turns"][1]["barge_in_stop_ms"] is None
    # The same moment with speech longer than min_speech_ms does interrupt: the gate is what
    # kept the mm-hmm from cutting the bot off, not the timing.
    assert long_["stats"]["interrupts"] == 1 and long_["turns"][0]["interrupted"]
    assert long_["turns"][1]["barge_in_stop_ms"] is not None
    # Not cut: the whole echoed reply played (espeak says it in about 3.5 s).
    assert short["stats"]["bot_speech_s"] > 3.0




def test_upstream_voice_assistant_runs_with_ollama_llm_as_respond():
    """The upstream's voice-assistant.yaml (a copy in the test, edited only to point its
    OllamaLLM at a local OpenAI-compatible server): heard, answered, spoken at 48 kHz."""
    doc = yaml.safe_load(VA_YAML)
    from remotemedia.engine.session import Pipeline
    assert Pipeline.from_manifest(doc).manifest.formats["speaker_output"].sample_rate == 48000
    with ChatServer(reply="Hi! I am here.") as srv:
        for node in doc["nodes"]:
            if node["node_type"] == "OllamaLLM":
                node["params"]["host"] = srv.base_url.rsplit("/v1", 1)[0]
        report = Conversation(doc, {"turns": [{"say": "Hello there.",
                                               "expect": {"heard": "hello",
                                                          "reply": "here"}}]}).run()
        assert srv.requests[0]["body"]["model"] == "llama3.2:1b"
    turn = report["turns"][0]
    assert report["passed"], turn["expect"]
    assert set(turn["breakdown_ms"]) == {"endpoint", "whisper", "llm", "tts", "output"}


# The upstream's voice-assistant.yaml as it is (../shared/upstream-speech/), comments dropped.
VA_YAML = """
version: v1
metadata: {name: voice-assistant, description: Full voice assistant with VAD, STT, LLM, and TTS}
nodes:
  - {id: mic_input, node_type: MicInput, params: {sample_rate: 16000, channels: 1}}
  - id: vad
    node_type: SileroVADNode
    params: {threshold: 0.5, min_speech_duration_ms: 250, min_silence_duration_ms: 500,
             pre_speech_pad_ms: 300}
  - {id: whisper, node_type: HFWhisperNode, params: {model: base.en, language: en,
                                                     task: transcribe}}
  - id: llm
    node_type: OllamaLLM
    params: {model: "llama3.2:1b", system_prompt: "You are a helpful voice assistant.",
             max_tokens: 150, temperature: 0.7}
  - {id: tts, node_type: KokoroTTSNode, params: {voice: af_bella, speed: 1.0,
                                                 sample_rate: 24000}}
  - {id: resample, node_type: FastResampleNode, params: {target_sample_rate: 48000,
                                                         quality: Medium}}
  - {id: speaker_output, node_type: SpeakerOutput, params: {sample_rate: 48000, channels: 1}}
connections:
  - {from: mic_input, to: vad}
  - {from: vad, to: whisper}
  - {from: whisper, to: llm}
  - {from: llm, to: tts}
  - {from: tts, to: resample}
  - {from: resample, to: speaker_output}
"""
