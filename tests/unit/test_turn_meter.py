"""TurnMeter's bookkeeping as properties: quantiles, which turn a transcript or a barge-in
belongs to, and the interruption count against each turn's `interrupted`."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from remotemedia.turns import TurnMeter, _quantiles


def test_the_median_of_two_is_their_mean():
    assert _quantiles([358.0, 406.0])["p50"] == pytest.approx(382.0)


@given(st.lists(st.floats(0, 1e5, allow_nan=False), min_size=1, max_size=40))
def test_quantiles_are_numpys(values):
    got = _quantiles(sorted(values))
    assert got["p50"] == pytest.approx(float(np.median(values)), abs=1e-3)
    assert got["p90"] == pytest.approx(float(np.quantile(values, 0.9)), abs=1e-3)
    assert got["max"] == max(values)


@given(st.lists(st.tuples(st.floats(0.3, 5), st.integers(0, 3)), min_size=1, max_size=8),
       st.data())
def test_each_transcript_goes_to_the_utterance_its_audio_is_in(utterances, data):
    """Utterances one after another; each is transcribed in `pieces` parts, the first ones
    before its endpoint (a long utterance), the last after it."""
    meter, t = TurnMeter(), 0.0
    for k, (length, early) in enumerate(utterances):
        start, end = t + 0.5, t + 0.5 + length
        meter.speech_start(start + 0.1, start)
        for j in range(early):                   # pieces that come before the endpoint
            meter.transcript(start + (j + 1) * length / (early + 1), f"u{k}p{j}", "stt",
                             start + j * length / (early + 1))
        meter.speech_end(end + 0.3, end, "vad")
        last = start + early * length / (early + 1)
        meter.transcript(end + 0.5, f"u{k}last", "stt", last)
        t = end + 0.3
    for k, turn in enumerate(meter.turns):
        assert turn.transcript.split() == [f"u{k}p{j}" for j in range(utterances[k][1])] + \
            [f"u{k}last"]
        # timed by the transcript after its endpoint
        assert turn.transcript_s == pytest.approx(turn.end_media_s + 0.5)


@given(st.lists(st.sampled_from(["start", "end", "interrupt", "stop"]), max_size=40))
def test_the_interruption_count_is_the_turns_marked_interrupted(script):
    meter, t = TurnMeter(), 0.0
    for op in script:
        t += 0.1
        if op == "start":
            meter.speech_start(t, t - 0.05)
        elif op == "end":
            meter.speech_end(t, t - 0.2, "vad")
        elif op == "interrupt":
            meter.interrupted(t)
        else:
            meter.stopped(t)
    summary = meter.summary()
    assert summary["interruptions"] == sum(t.interrupted_s is not None for t in meter.turns)
    # a barge-in stop is on the turn that barged in, never on the one interrupted
    stops = [r["barge_in_stop_ms"] for r in summary["turns"] if r["barge_in_stop_ms"] is not None]
    barged = [u.barged.barge_in_stop_ms() for u in meter.turns if u.barged is not None]
    assert sorted(stops) == sorted(v for v in barged if v is not None)


def test_a_barge_in_before_any_turn_is_not_counted():
    meter = TurnMeter()
    meter.speech_start(0.3, 0.1)
    assert meter.interrupted(0.3) is None
    meter.speech_end(2.0, 1.8, "vad")
    assert meter.summary()["interruptions"] == 0
