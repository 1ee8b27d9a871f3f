"""ERLE of the echo alone (remotemedia.echo_measure): the residual the known echo explains, the
noise the canceller passes left out; in the issue's room with babble at 20 dB SNR, AEC3 takes
the echo >= 30 dB down after convergence although the output's noise floor holds the node's
own figure (microphone over output) under 30 dB."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remotemedia.echo_measure import echo_erle_db

from .room_audio import RATE, bot_speech, needs_echo, room_manifest, run_room, settled, stereo


def speechlike(seconds: float, seed: int) -> np.ndarray:
    """Noise under a slow on/off envelope (bursts and pauses), float64."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    env = np.repeat(rng.random(n // 4800 + 1) > 0.3, 4800)[:n]
    return rng.standard_normal(n) * 0.05 * env


@settings(max_examples=15, deadline=None)
@given(gain_db=st.floats(-40.0, -5.0), above_db=st.floats(-20.0, 15.0),
       shift=st.integers(-200, 400), seed=st.integers(0, 2**16))
def test_a_known_residual_reads_its_erle_whatever_the_noise_over_it(gain_db, above_db, shift,
                                                                    seed):
    """out = the echo times gain_db, a little early or late, plus white noise up to 15 dB above
    that residual: the measured ERLE is -gain_db within 2 dB."""
    echo = speechlike(6.0, seed)
    residual = 10 ** (gain_db / 20) * np.roll(echo, shift)
    rms = np.sqrt(np.mean(residual ** 2))
    noise = np.random.default_rng(seed + 1).standard_normal(echo.shape[0]) * rms * \
        10 ** (above_db / 20)
    got = echo_erle_db(echo, residual + noise)
    assert got["erle_db"] == pytest.approx(-gain_db, abs=2.0), got


def test_noise_alone_at_the_output_is_not_counted_as_echo():
    echo = speechlike(6.0, 3)
    noise = np.random.default_rng(4).standard_normal(echo.shape[0]) * 0.005   # -46 dBFS
    got = echo_erle_db(echo, noise)
    power_ratio = 10 * np.log10(np.mean(echo ** 2) / np.mean(noise ** 2))
    assert power_ratio < 25 and got["erle_db"] > power_ratio + 15, got


def test_no_audible_echo_gives_no_figure_and_a_short_output_is_refused():
    quiet = np.zeros(RATE * 2)
    assert echo_erle_db(quiet, quiet)["erle_db"] is None
    with pytest.raises(ValueError, match="out has 10 samples"):
        echo_erle_db(quiet, quiet[:10])


@settings(max_examples=25, deadline=None, derandomize=True)
@given(samples=st.integers(0, 3 * 1024))
def test_any_length_even_under_one_analysis_frame_gives_a_figure_or_none(samples):
    # under one 1,024-sample frame it raised IndexError (the live room's guard hid it)
    echo = speechlike(1.0, 5)[:samples]
    got = echo_erle_db(echo, echo * 0.01)
    assert got["frames"] >= 0
    if samples < 1024:
        assert got == {"erle_db": None, "residual_echo_dbfs": None, "output_dbfs": None,
                       "frames": 0}


@needs_echo
def test_in_babble_at_20_db_snr_aec3_takes_the_echo_itself_30_db_down():
    from benchmarks.bench_echo import echo_alone
    far = bot_speech()
    events, res = run_room(room_manifest(noise="babble", snr_db=20.0), stereo(far))
    out = res.audio if res.audio.ndim == 1 else res.audio[:, 0]
    echo = echo_alone(far)[:out.shape[0]]
    got = echo_erle_db(echo, out, start=3 * RATE)
    assert got["frames"] > 500
    # the node's own figure counts the babble it passes: under 30 dB in this room
    assert np.median(settled(events, 3.0)) < 30.0
    # the echo itself: >= 30 dB down, below the output's noise
    assert got["erle_db"] >= 30.0 and got["residual_echo_dbfs"] < got["output_dbfs"] - 10, got
