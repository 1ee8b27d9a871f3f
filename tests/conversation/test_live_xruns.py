"""A live conversation's xruns after its setup, and the GIL wait of its JACK callbacks
(converse_live._while_conversing), from the streams' own tables."""

from __future__ import annotations

import numpy as np
import pytest

from remotemedia.converse_live import _User, _while_conversing

BLOCK = 960


def _user(first_voice_sample: int, waits_ms: list[float], tick0: int = 10) -> _User:
    user = _User([np.ones(BLOCK, np.float32)], 48000, BLOCK, BLOCK * 100, 0)
    user.starts[0] = first_voice_sample
    user.graph_tick0 = tick0
    user.k = len(waits_ms)
    user.wait[:len(waits_ms)] = np.asarray(waits_ms) / 1e3
    return user


def test_xruns_after_the_first_voice_sample_count_and_those_of_the_setup_do_not():
    # the user's first voice sample in its block 5 = the graph's tick 15; flagged callbacks at
    # ticks 3 and 12 (ports being connected, the click) and 15 and 40 (conversing)
    user = _user(5 * BLOCK + 100, [0.1] * 50)
    got = _while_conversing(user, {"device": {"flagged_callbacks": [3, 12, 15, 40]}})
    assert got["xruns_conversing"] == 2


def test_the_callback_wait_is_taken_over_the_conversation():
    # a callback kept 80 ms from the GIL while conversing; the setup's (block 0) not counted
    waits = [500.0] + [0.05] * 98 + [80.0]
    got = _while_conversing(_user(BLOCK, waits), {"device": {"flagged_callbacks": []}})
    assert got["xruns_conversing"] == 0
    assert got["callback_wait_ms"]["max"] == pytest.approx(80.0)
    assert got["callback_wait_ms"]["p50"] == pytest.approx(0.05)


def test_without_a_voice_or_tied_clocks_there_is_nothing_to_count():
    user = _user(-1, [])
    assert _while_conversing(user, {"device": {"flagged_callbacks": [1]}}) == {
        "xruns_conversing": None, "callback_wait_ms": None}
    user = _user(BLOCK, [0.1] * 3, tick0=-1)
    assert _while_conversing(user, {})["xruns_conversing"] is None
