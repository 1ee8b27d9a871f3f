"""media_time: the one conversion from an event's time fields (seconds, microseconds, pts at
a rate, its block's seq, end of stream) to media time in seconds, and from a block's seq to
its start on a recording's time base (which need not start at seq 0, and may miss blocks)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remotemedia.media_time import TimeBase, event_time

RATES = st.sampled_from([8000, 16000, 22050, 44100, 48000, 96000])


def base_of(rate, block, first_seq, n, missing=()):
    seq = np.array([s for s in range(first_seq, first_seq + n) if s not in missing],
                   dtype=np.int64)
    return TimeBase(rate=rate, seq=seq, pts=seq * block, samples=np.full(seq.size, block),
                    block_size=block)


@settings(max_examples=200, deadline=None)
@given(rate=RATES, event_rate=RATES, pts=st.integers(0, 10**9),
       block=st.sampled_from([160, 320, 480, 512, 960, 1024]),
       first_seq=st.integers(0, 10**5), n=st.integers(1, 50), k=st.integers(0, 49))
def test_every_form_of_the_same_instant_gives_the_same_media_time(rate, event_rate, pts, block,
                                                                  first_seq, n, k):
    base = base_of(rate, block, first_seq, n)
    t = pts / event_rate
    seq = first_seq + min(k, n - 1)
    for event, field in (({"time_s": t}, "time_s"), ({"start_s": t}, "start_s"),
                         ({"timestamp_us": t * 1e6}, "timestamp_us"),
                         ({"pts": pts, "sample_rate": event_rate}, "pts")):
        got, source = event_time({"type": "x", **event}, seq, base)
        assert source == field
        assert got == pytest.approx(t, rel=1e-12, abs=1e-9)
    # a pts without its rate is at some node's rate, unknown: the block it came out of
    got, source = event_time({"type": "level", "pts": pts}, seq, base)
    assert source == "seq" and got == seq * block / rate
    # no time at all: the block; sent at end of stream: the end of the last block
    assert event_time("text", seq, base) == (seq * block / rate, "seq")
    assert event_time({"type": "x"}, None, base) == ((first_seq + n) * block / rate,
                                                      "end_of_stream")


@settings(max_examples=200, deadline=None)
@given(rate=RATES, block=st.sampled_from([256, 960]), first_seq=st.integers(0, 10**6),
       n=st.integers(2, 40), data=st.data())
def test_a_blocks_start_is_found_by_its_seq_not_its_row(rate, block, first_seq, n, data):
    """A recording started mid-run (first seq > 0) or missing blocks the recorder dropped:
    block `seq` starts at seq * block / rate all the same (rows are not seqs)."""
    missing = set(data.draw(st.lists(st.integers(first_seq + 1, first_seq + n - 1),
                                     max_size=n // 2)))
    base = base_of(rate, block, first_seq, n, missing)
    for seq in range(max(0, first_seq - 3), first_seq + n + 3):
        assert base.seq_start_s(seq) == pytest.approx(seq * block / rate, rel=1e-12)
    assert base.start_s == first_seq * block / rate


def test_times_that_are_not_times_are_not_read():
    base = base_of(16000, 320, 10, 5)
    for bad in ({"time_s": "soon"}, {"time_s": math.nan}, {"time_s": -1.0},
                {"time_s": True}, {"timestamp_us": math.inf},
                {"pts": 100, "sample_rate": 0}, {"pts": None, "sample_rate": 16000}):
        assert event_time(bad, 12, base) == (12 * 320 / 16000, "seq")
