"""The turn observer on a real run (StreamRunner, a WAV file, EnergyVAD) with stand-in speech
nodes whose delays are whole blocks, so every figure is exact in media time; and the
session taps it stands on."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import remotemedia as rm
from remotemedia.engine.data import JsonData, TextData
from remotemedia.engine.node import Node, Param
from remotemedia.io.spec import make_sink, make_source
from remotemedia.runner import StreamRunner
from remotemedia.turn_observer import TurnObserver, find, turn_roles

from .turn_nodes import BLOCK, FMT, PERIOD, RATE, REGISTRY, manifest, run, speech_wav


def test_a_turn_is_measured_from_the_audio_and_its_breakdown_sums(tmp_path):
    wav = speech_wav(tmp_path / "in.wav", [(0.5, 1.5)], 4.0)
    stats, observer, turn_events = run(manifest(heard_delay=5), wav)
    section = stats["turns"]
    assert section["count"] == 1 and section["replied"] == 1 and section["clock"] == "media"
    (row,) = section["turns"]
    parts = row["breakdown_ms"]
    assert list(parts) == ["endpoint", "stt", "llm", "tts", "output"]
    # the transcript came 5 audio blocks after the endpoint's push; the rest in that push
    assert parts["stt"] == pytest.approx(6 * PERIOD * 1e3) and parts["llm"] == 0.0
    assert parts["tts"] == 0.0 and parts["output"] == 0.0
    # the endpoint is min_silence_ms (200) after the speech end, to the block
    assert 200.0 <= parts["endpoint"] <= 200.0 + 2 * PERIOD * 1e3
    assert row["voice_to_voice_ms"] == pytest.approx(sum(parts.values()))
    assert row["end_s"] == pytest.approx(1.5, abs=0.02)
    assert row["heard"] == "words 1" and row["reply"] == "reply to words 1"
    # one turn event, once the reply had played, with the same figures
    assert len(turn_events) == 1
    assert turn_events[0]["turn"] == 1 and turn_events[0]["node"] == "turns"
    assert turn_events[0]["voice_to_voice_ms"] == row["voice_to_voice_ms"]
    assert find(observer.runner) is observer
    json.dumps(stats, allow_nan=False)


def test_a_reply_behind_another_waits_for_it_on_the_output(tmp_path):
    # the first reply plays 3 s; the second turn's reply queues behind it: `output` shows it
    wav = speech_wav(tmp_path / "in.wav", [(0.5, 1.0), (1.6, 2.0)], 7.0)
    stats, _, _ = run(manifest(heard_delay=0, reply_blocks=150), wav)
    first, second = stats["turns"]["turns"]
    assert first["breakdown_ms"]["output"] == 0.0
    assert second["breakdown_ms"]["output"] > 1000.0
    assert second["voice_to_voice_ms"] == pytest.approx(sum(second["breakdown_ms"].values()))


def test_speech_over_the_bots_reply_is_an_interruption_with_its_stop_time(tmp_path):
    # the reply (2 s) is still playing when the user speaks again at 2.2 s
    wav = speech_wav(tmp_path / "in.wav", [(0.5, 1.2), (2.2, 3.0)], 6.0)
    stats, observer, turn_events = run(manifest(heard_delay=0, reply_blocks=100), wav)
    section = stats["turns"]
    assert section["interruptions"] == 1
    first = observer.meter.turns[0]
    assert first.interrupted_s is not None
    # nothing stops this bot: its last sample left when its reply ended on the output; the
    # stop is measured from the user's speech start (2.2 s), not from the VAD's decision
    end_of_reply = first.out_s + 100 * PERIOD
    assert first.barge_media_s == pytest.approx(2.2, abs=1e-6)
    assert first.interrupted_s > first.barge_media_s       # min_speech_ms later
    assert first.barge_in_stop_ms() == pytest.approx((end_of_reply - 2.2) * 1e3)
    assert section["barge_in_stop_ms"]["max"] == first.barge_in_stop_ms()
    assert [e["interrupted"] for e in turn_events] == [True, False]
    # the stop belongs to the user turn that barged in, in the report and in the events
    rows = section["turns"]
    assert [r["barge_in_stop_ms"] for r in rows] == [None, first.barge_in_stop_ms()]
    assert [e["barge_in_stop_ms"] for e in turn_events] == [None, first.barge_in_stop_ms()]
    assert rows[1]["barge_in_s"] == pytest.approx(2.2)


def test_speech_end_is_the_last_speech_sample_not_the_padded_edge(tmp_path):
    doc = manifest(heard_delay=0)
    doc["nodes"][0]["params"]["pad_ms"] = 300
    wav = speech_wav(tmp_path / "in.wav", [(0.5, 1.5)], 4.0)
    stats, _, _ = run(doc, wav)
    (row,) = stats["turns"]["turns"]
    assert row["end_s"] == pytest.approx(1.5, abs=1e-6)
    # voice-to-voice from there: the endpoint part holds the whole min_silence_ms wait
    assert row["breakdown_ms"]["endpoint"] >= 200.0


def test_a_graph_that_passes_the_users_audio_on_has_no_bot_and_no_interruptions(tmp_path):
    # the VAD and a meter only: what reaches the output is the user's own audio
    doc = manifest()
    doc["nodes"] = doc["nodes"][:1]
    doc["connections"] = [{"from": "input", "to": "vad"}, {"from": "vad", "to": "output"}]
    wav = speech_wav(tmp_path / "in.wav", [(0.5, 1.0), (1.4, 2.0), (2.4, 3.0)], 4.0)
    stats, observer, turn_events = run(doc, wav)
    section = stats["turns"]
    assert section["count"] == 3 and section["replied"] == 0
    assert section["interruptions"] == 0
    assert not any(e["interrupted"] for e in turn_events)
    # a bot that also plays the user's audio: only its reply is the bot speaking
    doc = manifest(heard_delay=0, reply_blocks=10)
    doc["connections"].append({"from": "vad", "to": "output"})
    wav = speech_wav(tmp_path / "two.wav", [(0.5, 1.0), (2.5, 3.0)], 5.0)
    stats, _, turn_events = run(doc, wav)
    section = stats["turns"]
    assert section["replied"] == 2 and section["interruptions"] == 0
    assert [e["interrupted"] for e in turn_events] == [False, False]


def test_a_run_without_a_vad_has_no_taps_no_observer_and_no_turns(tmp_path):
    doc = manifest()
    doc["nodes"] = [{"id": "g", "node_type": "Gain", "params": {"db": -6}}]
    doc["connections"] = [{"from": "input", "to": "g"}, {"from": "g", "to": "output"}]
    pipeline = rm.Pipeline.from_manifest(doc, registry=REGISTRY)
    assert turn_roles(pipeline.manifest) is None
    wav = speech_wav(tmp_path / "in.wav", [(0.5, 1.0)], 2.0)
    runner = StreamRunner(pipeline, make_source(wav, FMT),
                          make_sink("null", FMT))
    assert TurnObserver.attach(runner) is None
    assert runner.taps == {} and len(runner.observers) == 0
    assert "turns" not in runner.run()


def test_roles_follow_the_graph():
    pipeline = rm.Pipeline.from_manifest(manifest(), registry=REGISTRY)
    assert turn_roles(pipeline.manifest) == (["vad"], ["stt"], ["llm", "tts"])


# -- the session's taps ---------------------------------------------------------------------

class Burst(Node):
    """Passes each block on and, on every `every`-th, an event too (a list); on flush, an
    event (released by on_control)."""
    node_type = "TestBurst"
    params = (Param("every", int, 2, "an event every n blocks", min=1),)

    def setup(self):
        self.n = 0

    def process(self, frame):
        self.n += 1
        if self.n % self.every:
            return frame
        return (x for x in [frame, JsonData({"type": "tick", "n": self.n})])

    def on_control(self, event):
        if event.event == "flush":
            return JsonData({"type": "flushed"})
        return None


REGISTRY.register(Burst)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 4), st.integers(1, 12))
def test_a_tap_sees_exactly_what_its_node_made_before_its_consumer(every, blocks):
    doc = {"version": "v1", "audio": {"sample_rate": RATE, "block_size": BLOCK, "channels": 1},
           "nodes": [{"id": "a", "node_type": "TestBurst", "params": {"every": every}},
                     {"id": "b", "node_type": "PassThrough"}],
           "connections": [{"from": "input", "to": "a"}, {"from": "a", "to": "b"},
                           {"from": "b", "to": "output"}]}
    pipeline = rm.Pipeline.from_manifest(doc, registry=REGISTRY)
    seen, untapped = [], []
    with pipeline.session(taps={"a": seen.append}) as session, pipeline.session() as plain:
        outs = []
        for k in range(blocks):
            block = np.full(BLOCK, k, dtype=np.float32)
            outs += session.push(block)
            untapped += plain.push(block.copy())
        outs += session.flush()
        untapped += plain.flush()
    made = [o for o in outs if not (o.kind == "control")]
    assert [type(o) for o in seen] == [type(o) for o in made]
    assert all(s is o for s, o in zip(seen, made))          # the very objects, in order
    assert [getattr(o, "value", None) for o in outs] == \
        [getattr(o, "value", None) for o in untapped]       # a tap changes nothing


def test_no_taps_compiles_no_wrapper():
    pipeline = rm.Pipeline.from_manifest(manifest(), registry=REGISTRY)
    with pipeline.session() as plain, pipeline.session(taps={"stt": print}) as tapped:
        assert plain.schedule.step_by_id["stt"].process == plain.node("stt").process
        assert tapped.schedule.step_by_id["stt"].process != tapped.node("stt").process
        assert tapped.schedule.step_by_id["vad"].process == tapped.node("vad").process


@settings(max_examples=12, deadline=None)
@given(st.lists(st.tuples(st.floats(0.3, 1.2), st.floats(0.3, 2.0)), min_size=1, max_size=3),
       st.integers(0, 6), st.integers(5, 80))
def test_whatever_the_speech_every_turn_adds_up(tmp_path_factory, bursts, delay, reply_blocks):
    # bursts: (speech length, silence after it) in seconds
    spans, t = [], 0.3
    for speech, silence in bursts:
        spans.append((t, t + speech))
        t += speech + silence
    wav = speech_wav(tmp_path_factory.mktemp("w") / "in.wav", spans, t + 3.0)
    stats, observer, turn_events = run(manifest(heard_delay=delay, reply_blocks=reply_blocks),
                                       wav)
    section = stats["turns"]
    assert len(turn_events) == section["count"] == len(section["turns"])
    assert [e["turn"] for e in turn_events] == list(range(1, section["count"] + 1))
    for row, event in zip(section["turns"], turn_events):
        parts = row["breakdown_ms"]
        assert parts is not None and all(v >= 0 for v in parts.values())
        assert row["voice_to_voice_ms"] == pytest.approx(sum(parts.values()), abs=0.01)
        assert row["endpoint_s"] >= row["end_s"]
        assert event["voice_to_voice_ms"] == row["voice_to_voice_ms"]
    assert section["interruptions"] == sum(e["interrupted"] for e in turn_events)


class Later(Node):
    """Answers later, as a node on an executor does: process() keeps each block, poll()
    hands on what it kept (a list), or None when it has nothing."""
    node_type = "TestLater"

    def setup(self):
        self.kept = []

    def process(self, frame):
        self.kept.append(JsonData({"type": "later", "pts": frame.pts}))
        return None

    def poll(self, limit=None):
        out, self.kept = self.kept, []
        return out or None


REGISTRY.register(Later)


def test_a_tap_sees_what_a_node_hands_on_later_through_poll():
    doc = {"version": "v1", "audio": {"sample_rate": RATE, "block_size": BLOCK, "channels": 1},
           "nodes": [{"id": "a", "node_type": "TestLater"}],
           "connections": [{"from": "input", "to": "a"}, {"from": "a", "to": "output"}]}
    pipeline = rm.Pipeline.from_manifest(doc, registry=REGISTRY)
    seen = []
    with pipeline.session(taps={"a": seen.append}) as session:
        out = []
        for k in range(3):
            out += session.push(np.zeros(BLOCK, dtype=np.float32))
        # an engine that polls its executor nodes after each push has handed them on already
        handed = out + (session.node("a").poll() or [])
        assert session.node("a").poll() is None
    assert [o.value["type"] for o in handed] == ["later"] * 3
    assert len(seen) == 3 and all(s is h for s, h in zip(seen, handed))


def test_a_long_utterances_first_piece_is_its_own_not_the_turn_befores(tmp_path):
    # the second utterance (1.5-3.0 s) is transcribed in two parts, the first 0.8 s in, while
    # the first turn is still the latest one
    doc = manifest(heard_delay=2)
    doc["nodes"][1]["params"]["piece_after"] = 40
    wav = speech_wav(tmp_path / "in.wav", [(0.5, 1.0), (1.5, 3.0)], 5.0)
    stats, observer, turn_events = run(doc, wav)
    rows = stats["turns"]["turns"]
    assert [r["heard"] for r in rows] == ["words 1", "piece words 2"]
    assert [e["heard"] for e in turn_events] == ["words 1", "piece words 2"]
    # (the first utterance ends before its piece is due); each turn is timed by its transcript
    # after its endpoint, so the breakdown still sums
    second = observer.meter.turns[1]
    assert second.transcript_s >= second.endpoint_s
    assert rows[1]["voice_to_voice_ms"] == pytest.approx(sum(rows[1]["breakdown_ms"].values()))


class Thinking(Node):
    """A responder stand-in that thinks until the engine interrupts it (GATE, set by the
    test when the engine's barge-in fires): reply work in flight, with no audio played yet."""
    node_type = "TestThinking"
    accepts = ("text",)
    GATE = None

    def process(self, data):
        assert self.GATE.wait(30.0), "the engine never interrupted the thinking responder"
        return [TextData(f"reply to {data.text}"),
                JsonData({"type": "reply", "node": self.node_id, "reply": "late",
                          "error": None})]


REGISTRY.register(Thinking)


def test_an_engine_barge_in_on_reply_work_in_flight_is_an_interruption(tmp_path):
    # The user speaks again (2.0 s) while the responder still thinks on its thread: the engine
    # interrupts the bot (reply work in flight) though none of its audio has played, so the
    # turns section counts the interruption the barge_in section counts (the observer's own
    # timeline alone saw no bot audio and counted none).
    import threading
    Thinking.GATE = threading.Event()
    doc = manifest(heard_delay=0)
    doc["nodes"][2] = {"id": "llm", "node_type": "TestThinking", "executor": "thread"}
    wav = speech_wav(tmp_path / "in.wav", [(0.5, 1.0), (2.0, 2.8)], 4.0)

    def before_run(runner):
        def on_open():
            barge = runner.session.schedule.barge_in
            decide = barge.interrupt

            def interrupt():
                try:
                    return decide()
                finally:
                    Thinking.GATE.set()
            barge.interrupt = interrupt
        runner.on_open = on_open

    try:
        stats, observer, turn_events = run(doc, wav, before_run=before_run)
    finally:
        Thinking.GATE.set()
    assert stats["barge_in"]["interrupts"] == 1
    assert stats["turns"]["interruptions"] == 1
    first = observer.meter.turns[0]
    assert first.interrupted_s is not None and first.out_s is None
    assert first.barge_media_s == pytest.approx(2.0, abs=0.03)
    assert [e["interrupted"] for e in turn_events] == [True, False]
