"""TurnMeter: voice-to-voice and its breakdown, from a turn's marks."""

from __future__ import annotations

from hypothesis import given, strategies as st

from remotemedia.turns import TurnMeter


def _turn(meter, times):
    end, endpoint, tr, text, audio, out = times
    meter.speech_end(endpoint, end, "vad")
    meter.transcript(tr, "hello", "stt")
    meter.reply_text(text, "Hi.", "llm")
    meter.reply_audio(audio, "tts")
    meter.played(out)
    meter.played(out + 0.02)        # only the first sample out counts
    return meter.current


@given(st.lists(st.floats(0.0, 5.0), min_size=6, max_size=6))
def test_breakdown_sums_to_voice_to_voice_whatever_the_times(gaps):
    times, t = [], 10.0
    for g in gaps:
        t += g
        times.append(t)
    turn = _turn(TurnMeter(), times)
    parts = turn.breakdown_ms()
    assert list(parts) == ["endpoint", "stt", "llm", "tts", "output"]
    assert abs(sum(parts.values()) - turn.voice_to_voice_ms()) < 1e-6
    assert abs(turn.voice_to_voice_ms() - (times[-1] - times[0]) * 1e3) < 0.01


def test_no_reply_played_means_no_voice_to_voice():
    meter = TurnMeter()
    meter.speech_end(1.3, 1.0, "vad")
    meter.transcript(1.8, "hi", "stt")
    assert meter.current.voice_to_voice_ms() is None
    assert meter.summary()["voice_to_voice_ms"]["p50"] is None


def test_interruption_is_counted_and_stop_time_measured():
    meter = TurnMeter()
    _turn(meter, [1.0, 1.3, 1.8, 1.81, 1.85, 1.86])
    meter.speech_start(3.25, 3.0)
    turn = meter.interrupted(3.25)
    meter.stopped(3.26)
    assert meter.interruptions == 1 and turn.barge_media_s == 3.0
    # from the user's speech start (3.0 s), not from the VAD's decision (3.25 s)
    assert turn.barge_in_stop_ms() == 260.0
    meter.speech_end(4.3, 4.0, "vad")              # the turn that barged in carries it
    summary = meter.summary()
    assert summary["interruptions"] == 1 and summary["barge_in_stop_ms"]["max"] == 260.0
    assert [r["barge_in_stop_ms"] for r in summary["turns"]] == [None, 260.0]
    assert [r["interrupted"] for r in summary["turns"]] == [True, False]


def test_reply_before_transcript_is_not_taken_for_this_turn():
    meter = TurnMeter()
    meter.speech_end(1.3, 1.0, "vad")
    meter.reply_text(1.4, "stale", "llm")     # the previous turn's late reply
    assert meter.current.reply_text_s is None


def test_the_users_own_audio_at_the_output_is_not_the_bot():
    """converse on a graph that plays the user's audio beside the bot's reply: only the reply
    is the bot speaking (no barge-in when the user speaks after it), and the speech ends at its
    last sound, not the VAD's pad_ms later."""
    import os

    from remotemedia.conversation import ConversationRun
    from remotemedia.converse import UserTurn
    from remotemedia.engine.node import registry

    from ..unit.turn_nodes import BLOCK, RATE, Heard, Reply, Synth
    for cls in (Heard, Reply, Synth):
        if cls.node_type not in registry.names():
            registry.register(cls)
    wav = os.path.join(os.path.dirname(__file__), "..", "data", "speech_fox_16k.wav")
    doc = {"version": "v1", "audio": {"sample_rate": RATE, "block_size": BLOCK, "channels": 1},
           "nodes": [{"id": "vad", "node_type": "EnergyVAD", "params": {"pad_ms": 300}},
                     {"id": "stt", "node_type": "TestHeard", "params": {"delay": 0}},
                     {"id": "llm", "node_type": "TestReply"},
                     {"id": "tts", "node_type": "TestSynth", "params": {"blocks": 10}}],
           "connections": [{"from": "input", "to": "vad"}, {"from": "vad", "to": "stt"},
                           {"from": "stt", "to": "llm"}, {"from": "llm", "to": "tts"},
                           {"from": "tts", "to": "output"}, {"from": "vad", "to": "output"}]}
    report = ConversationRun(doc, [UserTurn(play=wav), UserTurn(play=wav, after_ms=200)],
                             timing="measured").run()
    turns = report["stats"]["turns"]
    assert turns["count"] == 2 and turns["replied"] == 2
    assert turns["interruptions"] == 0 and report["stats"]["interrupts"] == 0
    assert not any(t["interrupted"] for t in report["turns"])
    # the speech ends at its last sound (2.88 s into the file), not 300 ms later
    first = turns["turns"][0]["end_s"] - report["turns"][0]["start_s"]
    assert 2.85 <= first <= 2.98, first


@given(stop=st.floats(0.0, 20.0), start=st.floats(0.0, 20.0), decide_after=st.floats(0.0, 1.0))
def test_a_barge_in_stop_is_never_negative(stop, start, decide_after):
    """An interrupt that drops a reply before it sounded stops nothing: the bot's last sample
    left before the user began (a room run reported -644 ms). Then there is no stop time;
    otherwise the stop time is last sample out - speech start, from 0 up."""
    meter = TurnMeter()
    _turn(meter, [0.0, 0.1, 0.2, 0.21, 0.22, 0.23])
    meter.speech_start(start + decide_after, start)
    turn = meter.interrupted(start + decide_after)
    meter.stopped(stop)
    value, decided = turn.barge_in_stop_ms(), turn.decided_stop_ms()
    assert value is None if stop < start else value == round((stop - start) * 1e3, 3)
    assert decided is None if stop < start + decide_after else decided >= 0
    assert all(v is None or v >= 0 for v in (value, decided))


@given(reply_end=st.floats(0.3, 10.0), start=st.floats(0.3, 10.0), length=st.floats(0.1, 3.0),
       words=st.booleans())
def test_a_change_of_speaker_is_a_gap_or_an_overlap_never_both(reply_end, start, length,
                                                                  words):
    """The bot's audio ends at `reply_end` (its 20 ms blocks as they played); the user then
    speaks from `start` for `length` s, barging in when the bot still speaks. Either a gap
    (silence between them) or an overlap (both at once, up to the user's end), each >= 0; a
    barge-in with no words is a false one."""
    meter = TurnMeter()
    _turn(meter, [0.0, 0.1, 0.2, 0.21, 0.22, 0.23])     # its reply starts playing at 0.23 s
    t = 0.23
    while t + 0.02 <= reply_end:
        meter.played(t, 0.02)
        t += 0.02
    bot_end = max(0.25, t)                                # _turn's blocks are at 0.23, 0.25
    meter.speech_start(start + 0.25, start)
    barged = start < bot_end
    if barged:
        assert meter.interrupted(start + 0.25) is not None
        meter.stopped(min(bot_end, start + 0.27))
        bot_end = min(bot_end, start + 0.27)
    meter.speech_end(start + length + 0.3, start + length, "vad")
    if words:
        meter.transcript(start + length + 0.6, "hello", "stt", start)
    row = meter.summary()["turns"][-1]
    gap, overlap = row["gap_ms"], row["overlap_ms"]
    assert (gap is None) != (overlap is None)
    if gap is not None:
        assert abs(gap - (start - bot_end) * 1e3) < 1e-3 and gap >= 0
    else:
        assert abs(overlap - (min(bot_end, start + length) - start) * 1e3) < 1e-3
        assert overlap > 0
    assert row["false_barge_in"] == (barged and not words)
    assert meter.summary()["false_barge_ins"] == int(barged and not words)


def test_dead_air_is_voice_to_voice_or_the_wait_for_the_next_turn_when_the_bot_was_silent():
    meter = TurnMeter()
    _turn(meter, [1.0, 1.3, 1.8, 1.81, 1.85, 1.86])       # answered: 860 ms after speaking
    meter.speech_start(4.2, 4.0)
    meter.speech_end(5.3, 5.0, "vad")                     # never answered
    meter.speech_start(8.7, 8.5)
    meter.speech_end(9.3, 9.0, "vad")                     # the last: not answered yet
    summary = meter.summary()
    assert [r["dead_air_ms"] for r in summary["turns"]] == [860.0, 3500.0, None]
    assert summary["dead_air_ms"] == {"total": 4360.0, "max": 3500.0}


def test_a_turn_the_stream_ended_has_no_voice_to_voice():
    """A file that ends while the user speaks: the VAD closes the utterance at the end of the
    stream (`closed_by`), no endpoint was decided, so the turn is heard and answered but its
    voice-to-voice (it read 244 ms, less than the 300 ms endpoint itself) is not measured."""
    meter = TurnMeter()
    meter.speech_end(1.3, 1.0, "vad", "end_of_stream")
    meter.transcript(1.8, "hello", "stt")
    meter.reply_text(1.81, "Hi.", "llm")
    meter.reply_audio(1.85, "tts")
    meter.played(1.86, 0.02)
    turn = meter.current
    assert turn.voice_to_voice_ms() is None and turn.breakdown_ms() is None
    summary = meter.summary()
    assert summary["turns"][0]["closed_by"] == "end_of_stream"
    assert summary["turns"][0]["heard"] == "hello" and summary["voice_to_voice_ms"]["p50"] is None
