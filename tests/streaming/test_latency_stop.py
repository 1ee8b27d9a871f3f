"""`remotemedia latency` stopped by SIGINT or SIGTERM: the clicks played until then are
measured (none counted missing or as a pop for being cut short), exit 130 / 143."""

from __future__ import annotations

import os

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from remotemedia.latency import TAIL_S, _before_stop, analyse, click_train
from tests.signal_support import CliRun, each_signal
from tests.streaming.device_support import jack_connections_polled
from tests.streaming.device_support import jack_device  # noqa: F401 (fixture)

RATE, BLOCK = 48000, 960


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 4000), st.floats(0.2, 5.0))
def test_a_train_stopped_anywhere_measures_the_clicks_that_came_back_and_no_more(delay,
                                                                               stop_s):
    signal, pos, val = click_train(5.0, RATE, 3)
    end = int(stop_s * RATE)
    capture = np.zeros(end, np.float32)          # what came back before the stop
    back = signal[:max(end - delay, 0)]
    capture[delay:delay + back.size] = back
    played, values, cut = _before_stop(capture, pos, val, end, RATE, BLOCK)
    assert np.array_equal(played, pos[pos + int(TAIL_S * RATE) <= end])
    r = analyse(capture[:cut], played, values, RATE, BLOCK)
    assert r["clicks"] == played.size
    assert r["clicks_found"] == played.size and r["clicks_missing"] == 0
    assert r["spurious_peaks"] == 0 and r["repeated_blocks"] == 0
    if played.size:
        assert r["round_trip_samples"]["min"] == r["round_trip_samples"]["max"] == delay


def _looped(client: str) -> bool:
    """The latency stream's output port is connected to its own input (--jack-loopback)."""
    return any(p.startswith(f"{client}:") and any(q.startswith(f"{client}:") for q in peers)
               for p, peers in jack_connections_polled().items())


@each_signal
def test_a_signal_stops_latency_with_what_it_measured(jack_device, sig, code, reason):
    client = f"rm-latency-stop-{os.getpid()}-{sig}"
    env = {**os.environ, "REMOTEMEDIA_AUDIO_SERVER": "jack", "REMOTEMEDIA_JACK_CLIENT": client}
    with CliRun(["latency", "-i", jack_device.index, "-o", jack_device.index,
                 "--jack-loopback", "--duration", "120", "--json"], env=env) as run:
        run.wait_ready(lambda: _looped(client), "the loopback connected")
        done = run.stop(sig)
    done.assert_clean_stop(sig)
    r = done.report()
    assert r["stop_reason"] == reason and 0 <= r["stopped_after_s"] < 120
    # every click measured came back, at the loopback's round trip; none is a pop
    assert r["clicks_found"] == r["clicks"] and r["clicks_missing"] == 0
    assert r["spurious_peaks"] == 0
    if r["clicks"]:
        assert r["round_trip_samples"]["min"] == r["round_trip_samples"]["max"] == 1920
