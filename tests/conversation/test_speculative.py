"""Speculative transcription: the VAD's speech_pause, and Transcribe using or discarding what
it transcribed at the pause."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from remotemedia.engine.data import JsonData, NumpyData
from remotemedia.nodes.vad import SpeechGate

W = 512


def _run(gate, pattern):
    events = []
    for i, active in enumerate(pattern):
        hit = gate.step(active, not active, i * W, W)
        if hit:
            events.append(hit)
    return events


def test_a_pause_names_the_edge_speech_end_will_have():
    gate = SpeechGate(min_speech=4 * W, min_silence=10 * W, pad=100, pauses=True)
    events = _run(gate, [True] * 8 + [False] * 12)
    assert [e[0] for e in events] == ["speech_start", "speech_pause", "speech_end"]
    assert events[1][1] == events[2][1] == 8 * W + 100


def test_without_pauses_the_gate_is_unchanged():
    gate = SpeechGate(min_speech=4 * W, min_silence=10 * W, pad=100)
    assert [e[0] for e in _run(gate, [True] * 8 + [False] * 12)] == ["speech_start",
                                                                      "speech_end"]


@given(st.lists(st.booleans(), min_size=1, max_size=120))
def test_every_end_is_the_edge_of_the_pause_before_it(pattern):
    """Whatever the speech: each speech_end follows a pause at the same pts, and pauses come
    only while speaking (between a start and its end)."""
    gate = SpeechGate(min_speech=3 * W, min_silence=5 * W, pad=64, pauses=True)
    events = _run(gate, pattern + [False] * 6)
    speaking, last_pause = False, None
    for kind, pts, edge in events:
        # the unpadded edge: the pad moves starts back and ends on, never past the floor
        assert (edge - pts if kind == "speech_start" else pts - edge) in range(0, 65)
        if kind == "speech_start":
            speaking, last_pause = True, None
        elif kind == "speech_pause":
            assert speaking
            last_pause = pts
        else:
            assert speaking and last_pause == pts
            speaking = False


@pytest.mark.slow
def test_transcribe_uses_the_pause_result_or_discards_it():
    from remotemedia.conversation import ConversationRun as Conversation
    from remotemedia.engine.node import AudioFormat, NodeContext
    from remotemedia.nodes.transcribe import Transcribe
    voice = Conversation("manifests/assistant.yaml", {"turns": [{"say": "Hello there."}]}
                         )._voices(16000, 320)[0]
    node = Transcribe("stt", **Transcribe.check_params({"speculative": True,
                                                         "beam_size": 1}))
    node.bind(NodeContext("stt", AudioFormat(16000, 1, 320)))
    node.setup()
    node.process(NumpyData(voice, sample_rate=16000, pts=0))

    def event(kind, pts):
        return JsonData({"type": kind, "pts": pts, "sample_rate": 16000})

    end = voice.shape[0] - 100
    assert node.process(event("speech_start", 0)) == []
    assert node.process(event("speech_pause", end // 2)) is None   # the user went on
    assert node.process(event("speech_pause", end)) is None
    out = node.process(event("speech_end", end))
    assert node.speculative_runs == 2 and node.speculative_discarded == 1
    assert node.speculative_used == 1 and node.runs == 2            # no third Whisper run
    assert "hello" in out[0].value["text"].lower()
