"""DoubleTalk's little-echo route on block powers (nodes/echo_talk.py), the kind of its two
faults as properties: the bot alone, however loud its echo path, is never taken for the user
(a path learned too low must not lock in), and the user well above the echo is taken however
they start (their first syllables must not teach the path their own level and lock them out).
Powers are sums of squares over a 960-sample block; the linear canceller is taken to explain
nothing (its output is the microphone), the worst case for the route."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from remotemedia.nodes.echo_talk import FAR_HOLD, DoubleTalk

N = 960


def _far(rng: np.random.Generator, blocks: int) -> np.ndarray:
    # speech-like: words of 5-30 blocks at -25 to -12 dBFS, pauses of 2-15 blocks
    far = np.zeros(blocks)
    k = 2
    while k < blocks:
        w = int(rng.integers(5, 30))
        far[k:k + w] = 10.0 ** (rng.uniform(-25.0, -12.0, size=min(w, blocks - k)) / 10.0)
        k += w + int(rng.integers(2, 15))
    return far


def _echo(far: np.ndarray, gain_db: float, delay: int, rng) -> np.ndarray:
    # the echo of each block `delay` blocks later, at the path's gain, +-2 dB from block to
    # block (the spectrum the path colours), under the held far end's bound
    echo = np.zeros_like(far)
    echo[delay:] = far[:far.shape[0] - delay] * 10.0 ** ((gain_db + rng.uniform(
        -2.0, 2.0, size=far.shape[0] - delay)) / 10.0)
    return echo


def _run(far, mic) -> list[bool]:
    talk = DoubleTalk(N)
    return [talk.decide(N, m * N, m * N, m * N * 1e-3, f * N) for f, m in zip(far, mic)]


@settings(max_examples=40, deadline=None, derandomize=True)
@given(gain_db=st.floats(-60.0, 20.0), delay=st.integers(0, FAR_HOLD - 3),
       noise_db=st.floats(-90.0, -40.0), seed=st.integers(0, 2 ** 16))
def test_the_bot_alone_is_never_taken_whatever_its_echo_path(gain_db, delay, noise_db, seed):
    rng = np.random.default_rng(seed)
    far = _far(rng, 400)
    noise = 10.0 ** ((noise_db + rng.uniform(-3.0, 3.0, size=far.shape[0])) / 10.0)
    taken = _run(far, _echo(far, gain_db, delay, rng) + noise)
    assert not any(taken), (gain_db, delay, noise_db, [i for i, t in enumerate(taken) if t])


@settings(max_examples=40, deadline=None, derandomize=True)
@given(gain_db=st.floats(-60.0, -20.0), delay=st.integers(0, FAR_HOLD - 3),
       onset=st.integers(1, 8), start=st.integers(60, 200), seed=st.integers(0, 2 ** 16))
def test_the_user_well_above_the_echo_is_taken_however_they_start(gain_db, delay, onset,
                                                                    start, seed):
    # the user at -26 dBFS (a sentence of 60 blocks) over a bot whose echo is 20 dB or more
    # below it, rising to their level over `onset` blocks from 20 dB under it
    rng = np.random.default_rng(seed)
    far = _far(rng, start + 100)
    far[start - 20:start + 80] = 10.0 ** (-15.0 / 10.0)       # the bot talks on throughout
    user = np.zeros_like(far)
    user[start:start + 60] = 10.0 ** (-26.0 / 10.0)
    user[start:start + onset] *= 10.0 ** (np.linspace(-20.0, 0.0, onset) / 10.0)
    mic = _echo(far, gain_db, delay, rng) + user + 1e-7
    taken = _run(far, mic)
    assert not any(taken[:start]), (gain_db, delay, onset)
    assert sum(taken[start:start + 60]) >= 60 - onset - 3, (gain_db, delay, onset, start)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(erle_db=st.floats(4.0, 15.0), user_dbfs=st.floats(-45.0, -10.0),
       blocks=st.integers(20, 200), seed=st.integers(0, 2 ** 16))
def test_the_users_turn_between_replies_teaches_the_erles_nothing(erle_db, user_dbfs, blocks,
                                                                  seed):
    """The user's turn while the bot is quiet (the far end silent beyond the echo path's span)
    carries no echo: replayed live, its blocks (the linear output the microphone itself, 0 dB)
    pulled the linear ERLE from 8.7 to 0.4 dB and AEC3's from 59 to 0.6 before each reply."""
    rng = np.random.default_rng(seed)
    far = _far(rng, 300)
    echo = _echo(far, -6.0, 2, rng) + 1e-7
    talk = DoubleTalk(N)
    for f, e in zip(far, echo):
        talk.decide(N, e * N, e * 10.0 ** (-erle_db / 10.0) * N, e * 1e-4 * N, f * N)
    for _ in range(FAR_HOLD):                             # the echo's tail dies away
        talk.decide(N, 1e-7 * N, 1e-7 * N, 1e-7 * N, 0.0)
    lin_before, aec_before = talk.erle_lin, talk.erle_aec
    assert lin_before > erle_db - 2.0 and aec_before > 20.0
    user = 10.0 ** ((user_dbfs + rng.uniform(-6.0, 6.0, size=blocks)) / 10.0) + 1e-7
    for u in user:
        talk.decide(N, u * N, u * N, u * N, 0.0)          # neither canceller has echo to take
    assert (talk.erle_lin, talk.erle_aec) == (lin_before, aec_before)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(gain_db=st.floats(-6.0, 6.0), delay=st.integers(0, 5), stop=st.integers(8, 20),
       start=st.integers(60, 200), seed=st.integers(0, 2 ** 16))
def test_a_barge_in_keeps_the_linear_output_after_the_bot_stops(gain_db, delay, stop, start,
                                                                 seed):
    """Loud echo (about as loud as the user): the user talks over a reply and the bot stops
    `stop` blocks later (the barge-in); the user goes on. Before, the hold handed back to AEC3
    five blocks after the far end stopped, and AEC3's suppressor, still set for the echo,
    turned the user's next 4-8 blocks down (tests/echo/double_talk.py's sentence, 4 s into the
    reply, the bot stopping 0.4 s after the user began: "Please help me ..." for "Please tell
    me ..."). Now the linear output stays on for the hold's evidence and its hang, 400 ms at
    least past the bot's stop; the next reply's onset is AEC3's again. The cancellers as
    grown: the linear one takes 15 dB off the echo, AEC3 40 dB, and AEC3 turns the user down
    10 dB while the echo lasts."""
    rng = np.random.default_rng(seed)
    far = _far(rng, start + 160)
    far[start - 30:start + stop] = 10.0 ** (-15.0 / 10.0)     # the reply under way ...
    far[start + stop:start + 100] = 0.0                        # ... stopped by the barge-in
    far[start + 100:] = 10.0 ** (-15.0 / 10.0)                 # the next reply
    echo = _echo(far, gain_db, delay, rng)
    user = np.zeros_like(far)
    user[start:start + 60] = 10.0 ** (-20.0 / 10.0)
    noise = 1e-8
    mic, lin = echo + user + noise, echo * 10.0 ** -1.5 + user + noise
    aec = echo * 1e-4 + np.where(echo > 1e-6, 0.1, 1.0) * user + noise
    talk = DoubleTalk(N)
    taken = [talk.decide(N, m * N, l * N, a * N, f * N)
             for f, m, l, a in zip(far, mic, lin, aec)]
    assert not any(taken[:start]), (gain_db, [i for i, t in enumerate(taken[:start]) if t])
    end = start + stop + 20
    assert all(taken[start + 3:end]), (stop, [i - start for i, t in enumerate(taken)
                                              if not t and start <= i < end])
    assert not any(taken[start + 100:]), (stop, gain_db)       # the next reply: AEC3's
