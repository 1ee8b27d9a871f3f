"""The latency analyser on constructed captures: it finds the delay, and counts dropped and
added samples, missing clicks, pops and repeated blocks where they were put. The measurement
through the JACK server is tests/streaming/test_record_replay.py."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from remotemedia.latency import CLICK, analyse, click_train

RATE, BLOCK = 48000, 960


def capture_of(signal, delay, length=None):
    cap = np.zeros(length or signal.size + delay + RATE, np.float32)
    cap[delay:delay + signal.size] = signal
    return cap


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 4000), st.integers(0, 2 ** 16))
def test_finds_any_delay_exactly(delay, seed):
    signal, pos, val = click_train(2.0, RATE, seed)
    r = analyse(capture_of(signal, delay), pos, val, RATE, BLOCK)
    assert r["found"] and r["clicks_found"] == r["clicks"] == pos.size
    s = r["round_trip_samples"]
    assert s["min"] == s["max"] == delay and s["jitter"] == 0
    assert r["dropped_samples"] == r["added_samples"] == r["spurious_peaks"] == 0


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 200), st.booleans(), st.integers(2, 6))
def test_counts_samples_dropped_or_added_on_the_return_path(k, drop, after_click):
    signal, pos, val = click_train(3.0, RATE, 7)
    cap = capture_of(signal, 1920)
    cut = int(pos[after_click]) + 1920 + 100   # between two clicks
    if drop:
        cap = np.concatenate([cap[:cut], cap[cut + k:]])
    else:
        cap = np.concatenate([cap[:cut], np.zeros(k, np.float32), cap[cut:]])
    r = analyse(cap, pos, val, RATE, BLOCK)
    assert (r["dropped_samples"], r["added_samples"]) == ((k, 0) if drop else (0, k))
    assert r["clicks_found"] == pos.size


def test_counts_missing_clicks_pops_and_repeated_blocks():
    signal, pos, val = click_train(3.0, RATE, 3)
    cap = capture_of(signal, 1920)
    cap[pos[4] + 1920] = 0.0                             # a click lost
    pop = pos[6] + 1920 + 3000
    cap[pop] = 0.9                                        # a pop between clicks
    rep = pos[8] + 1920 + BLOCK                           # a block played twice
    cap[rep] = cap[pos[8] + 1920]
    r = analyse(cap, pos, val, RATE, BLOCK)
    assert r["clicks_missing"] == 1 and r["clicks_found"] == pos.size - 1
    assert r["spurious_peaks"] == 2 and r["repeated_blocks"] == 1
    assert r["round_trip_samples"]["mean"] == 1920


def test_silence_is_not_a_round_trip():
    signal, pos, val = click_train(1.0, RATE, 1)
    r = analyse(np.zeros(signal.size * 2, np.float32), pos, val, RATE, BLOCK)
    assert not r["found"] and r["clicks_missing"] == pos.size
    assert CLICK / 2 > 0


def test_the_duplex_callback_counts_flagged_callbacks_and_plays_the_train_once_armed():
    from remotemedia.latency import _Duplex

    class Times:
        inputBufferAdcTime, outputBufferDacTime = 1.0, 1.04

    class Flags:   # what sounddevice hands a callback after an xrun: a truthy status
        def __bool__(self):
            return True

    signal = np.arange(1, 2 * BLOCK + 1, dtype=np.float32)
    d = _Duplex(signal, capacity=8 * BLOCK)
    out = np.zeros((BLOCK, 1), np.float32)
    d.callback(np.ones((BLOCK, 1), np.float32), out, BLOCK, Times(), None)
    assert d.flags == 0 and not out.any()            # not armed: silence
    d.armed = True
    d.callback(np.ones((BLOCK, 1), np.float32), out, BLOCK, Times(), Flags())
    assert d.flags == 1 and d.start == BLOCK
    assert np.array_equal(out[:, 0], signal[:BLOCK])
    assert d.capture[:2 * BLOCK].sum() == 2 * BLOCK
    assert d.ts_latency[0] == np.float64(1.04) - np.float64(1.0)
