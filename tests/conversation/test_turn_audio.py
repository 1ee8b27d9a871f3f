"""Voice-to-voice from the audio alone, the same way live and simulated (so the benchmark's
live/simulated ratio compares like with like), and Whisper run once at load (so neither
run's first turn pays for the model's first run)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from remotemedia.conversation import ConversationRun
from remotemedia.converse import load_script
from remotemedia.converse_live import LiveConversation, _User, _graph_row, _graph_turns
from remotemedia.turns import SOUND, last_sound, onset

from .test_conversation import ASSISTANT, TWO_TURNS


@pytest.fixture(scope="module")
def two():
    run = ConversationRun(ASSISTANT, yaml.safe_load(TWO_TURNS))
    run.run()
    return run


def _as_live_recording(run: ConversationRun):
    """The simulated run as the live user's stream would have captured it: its voices played
    from the spans' starts, the bot's output recorded sample by sample on the same clock."""
    rate, block = 48000, 960
    frames = int(round(run.report["simulated_s"] * rate)) + rate
    user = _User(run.voices, rate, block, frames, seed=0)
    for start, b in run.sim.played:
        at = int(round(start * rate))
        user.rec[at:at + b.shape[0]] = b[:max(0, frames - at)]
    for i, (start, end) in enumerate(run.spans):
        user.starts[i] = int(round(start * rate))
        user.ends[i] = int(round(end * rate))
    user.k = frames // block
    return user


def test_simulated_turns_are_measured_from_the_audio_as_live_ones(two):
    """The same audio gives the same voice-to-voice through the live measurement
    (LiveConversation._report on a captured recording) and the simulated one the benchmark
    compares it with (audio_voice_to_voice); the report's own figure, from the VAD's edge,
    is another measure (the benchmark compared it with the live one before)."""
    audio = two.audio_voice_to_voice()
    assert len(audio) == 2 and all(v is not None and v > 0 for v in audio), audio
    user = _as_live_recording(two)
    fake = SimpleNamespace(turns=load_script(yaml.safe_load(TWO_TURNS)), manifest_name="m",
                           script_name="s", seed=0, loopback=False)
    live = LiveConversation._report(fake, user, [], [], None, {}, 0.0)
    assert [t["voice_to_voice_ms"] for t in live["turns"]] == pytest.approx(audio, abs=0.03)
    # each is the voice's last loud sample -> the bot's first loud sample after it
    for i, (start, _) in enumerate(two.spans):
        end = int(round(start * 48000)) + last_sound(two.voices[i])
        first = onset(np.abs(user.rec) > SOUND, end, user.rec.shape[0], 9600)
        assert audio[i] == pytest.approx((first - end) / 48, abs=0.03)
    vad = [t["voice_to_voice_ms"] for t in two.report["turns"]]
    assert any(abs(a - v) > 1.0 for a, v in zip(audio, vad)), (audio, vad)


def test_transcribe_keeps_its_model_run_times(two):
    """Each Whisper run's wall time is kept (what the model cost as it ran), one per run."""
    stt = two.sim.nodes["stt"]
    assert stt.runs >= 2 and len(stt.run_ms) == stt.runs, (stt.runs, list(stt.run_ms))
    assert all(ms > 0 for ms in stt.run_ms)
    # each was charged to the simulated clock within the call that ran it
    assert max(stt.run_ms) <= max(two.costs.charged["stt"]) * 1e3 + 1e-3


def test_audio_voice_to_voice_needs_a_finished_run():
    run = ConversationRun(ASSISTANT, yaml.safe_load(TWO_TURNS))
    with pytest.raises(RuntimeError, match="finished run"):
        run.audio_voice_to_voice()


def test_the_graph_turns_map_onto_the_users_clock():
    """A graph block captured in JACK period g is the user's period g - graph_tick0: the
    graph's turn ends land on the user's samples, and each user turn takes the last answered
    graph turn of its own span."""
    rate, block = 48000, 960
    user = _User([np.zeros(10, np.float32)] * 2, rate, block, rate * 20, seed=0)
    size = 4096
    graph = SimpleNamespace(seq_tag=np.full(size, -1, np.int64),
                            seq_capture_tick=np.zeros(size, np.int64), last_read=-1, ticks=0)
    for seq in range(600):                 # the graph began capturing at its period 7
        graph.seq_tag[seq] = seq
        graph.seq_capture_tick[seq] = seq + 7
    graph.last_read = 599
    user.graph, user.graph_tick0 = graph, 57   # the user's first period was the graph's 57th
    rows = [{"end_s": 2.5 + 100 / rate, "voice_to_voice_ms": None, "breakdown_ms": None},
            {"end_s": 3.0 + 100 / rate, "voice_to_voice_ms": 700.0,
             "breakdown_ms": {"endpoint": 350.0}},
            {"end_s": 9.0, "voice_to_voice_ms": 650.0, "breakdown_ms": {"endpoint": 330.0}}]
    mapped = _graph_turns({"turns": {"turns": rows}}, user)
    # 3.0 s is graph block 150, captured in graph period 157 = the user's period 100
    assert mapped[1][0] == 100 * block + 100
    assert mapped[0][0] == (125 + 7 - 57) * block + 100
    row = _graph_row(mapped, 0, 6 * rate, 100 * block, rate)
    assert row == {"voice_to_voice_ms": 700.0, "breakdown_ms": {"endpoint": 350.0},
                   "vad_end_after_audio_ms": pytest.approx(100 / 48, abs=1e-3)}
    # clocks not tied (no graph stream, or a block its tables no longer hold): no mapping
    user.graph_tick0 = -1
    assert all(u is None for u, _ in _graph_turns({"turns": {"turns": rows}}, user))
    assert _graph_row(_graph_turns({"turns": {"turns": rows}}, user), 0, 6 * rate, 0,
                      rate) is None


def test_whisper_runs_once_when_it_loads(monkeypatch):
    """The model's first run (slower than the next: buffers, kernels) happens in setup, on
    silence through the decoder and the word alignment, not on the first utterance."""
    import faster_whisper
    from remotemedia.nodes import whisper
    calls = []
    aligned = []
    transcribe = faster_whisper.WhisperModel.transcribe
    align = faster_whisper.WhisperModel.add_word_timestamps

    def counting(self, audio, *args, **kwargs):
        calls.append(audio.shape)
        return transcribe(self, audio, *args, **kwargs)

    def counting_align(self, *args, **kwargs):
        aligned.append(1)
        return align(self, *args, **kwargs)
    monkeypatch.setattr(faster_whisper.WhisperModel, "transcribe", counting)
    monkeypatch.setattr(faster_whisper.WhisperModel, "add_word_timestamps", counting_align)
    monkeypatch.setattr(whisper, "_models", {})        # a load of its own, not the cached one
    monkeypatch.setattr(whisper, "warmups", {})
    model = whisper.load_model(whisper.resolve_model(None), threads=1)
    assert calls == [(int(whisper.RATE * whisper.WARMUP_S),)] and aligned, (calls, aligned)
    assert list(whisper.warmups.values())[0] > 0
    # cached: the next node of the process neither loads nor warms it again
    assert whisper.load_model(whisper.resolve_model(None), threads=1) is model
    assert len(calls) == 1


# -- the kind: one measurement, whoever makes it -------------------------------------------------
RATE, BLOCK = 48000, 960


@st.composite
def _conversations(draw):
    """Voices (a loud stretch between quiet edges) and the bot's played blocks: each reply a
    run of blocks from a block boundary, loud from some sample on, sometimes still playing
    when the next voice ends, sometimes never loud."""
    n = draw(st.integers(1, 4))
    voices, spans, played = [], [], []
    t = draw(st.integers(0, 20)) * BLOCK
    for _ in range(n):
        lead = draw(st.integers(0, 2000))
        body = draw(st.integers(100, 20000))
        tail = draw(st.integers(0, 3000))
        v = np.zeros(lead + body + tail, np.float32)
        v[lead:lead + body] = 0.2
        v[lead + body - 1] = 0.01          # the last loud sample, just above SOUND
        voices.append(v)
        end = t + v.shape[0]
        spans.append([t / RATE, end / RATE])
        start = (end // BLOCK + draw(st.integers(-3, 40))) * BLOCK   # may overlap the voice
        blocks = draw(st.integers(1, 30))
        quiet = draw(st.integers(0, 3 * BLOCK))
        loud = draw(st.booleans())
        for k in range(blocks):
            b = np.zeros(BLOCK, np.float32)
            first = quiet - k * BLOCK
            if loud and first < BLOCK:
                b[max(first, 0):] = 0.05
            played.append((max(start, 0) + k * BLOCK, b))
        t = max(end, max(start, 0) + blocks * BLOCK) + draw(st.integers(0, 40)) * BLOCK
    total = t + 20 * BLOCK
    played.sort(key=lambda p: p[0])
    # one block plays at a time: a later block replaces what an earlier one would have played
    keep = {}
    for at, b in played:
        keep[at] = b
    return voices, spans, sorted(keep.items()), total


@settings(max_examples=150, deadline=None)
@given(_conversations())
def test_live_and_simulated_measure_any_conversation_alike(case):
    """Whatever the voices and wherever the bot's replies fall (before the voice ends, still
    playing, quiet at first, never loud), the simulated run's audio figure is the live run's
    for the same audio, turn by turn."""
    voices, spans, played, total = case
    sim = SimpleNamespace(
        report={"simulated_s": total / RATE}, spans=spans, voices=voices,
        turns=[None] * len(voices),
        sim=SimpleNamespace(out_rate=RATE, played=[(at / RATE, b) for at, b in played]),
        pipeline=SimpleNamespace(manifest=SimpleNamespace(
            audio=SimpleNamespace(sample_rate=RATE))))
    simulated = ConversationRun.audio_voice_to_voice(sim)
    user = _User(voices, RATE, BLOCK, total, seed=0)
    for at, b in played:
        user.rec[at:at + BLOCK] = b[:max(0, total - at)]
    for i, (s, e) in enumerate(spans):
        user.starts[i], user.ends[i] = round(s * RATE), round(e * RATE)
    user.k = total // BLOCK
    fake = SimpleNamespace(turns=[SimpleNamespace(say=None, label=str(i), expect={},
                                                  barge_in_after_ms=None)
                                  for i in range(len(voices))],
                           manifest_name="m", script_name="s", seed=0, loopback=False)
    live = [t["voice_to_voice_ms"] for t in
            LiveConversation._report(fake, user, [], [], None, {}, 0.0)["turns"]]
    assert live == pytest.approx(simulated, abs=0.03), (live, simulated)
