"""EchoCancel's double-talk detector: whether the user talks over the bot in a block, so that the
linear canceller's output (the near end whole, less its echo estimate; nodes/echo_linear.py)
goes on in place of AEC3's, whose suppressor turns the user's words down while the far end
plays.

Two routes to near speech, one for each kind of room:

- Little echo (an adaptive-threshold Geigel detector, in power over blocks, checked by the
  normalized cross-correlation detector's test): the microphone far louder than the far end can
  explain. Geigel's detector (D. L. Duttweiler, "A twelve-channel digital echo canceler", IEEE
  Trans. Commun. 1978) calls double talk where the microphone exceeds the loudest far end of
  the echo path's span times the path's gain, assumed (-6 dB). Here the gain is measured: the
  echo path's gain is the upper envelope of (microphone - the room's noise) / held far end (the
  far end's loudest block mean square over the last FAR_HOLD blocks: the room's delay and
  tail) over blocks where the far end is loud (above PATH_FAR and within PATH_TOP of its
  loudest), rising at once, falling PATH_FALL_DB a block; the room's noise is the microphone's
  mean square where no echo can be (the far end quiet for FAR_HOLD blocks). A block is clear
  when the microphone is CLEAR_DB above path * held + noise and FLOOR_DB above its own floor,
  once the path was learned over LEARN loud blocks, and the linear canceller explains little
  of it (the microphone no more than CLEAR_RATIO_DB above the linear output: the NCC
  detector's test, J. Benesty, D. R. Morgan, J. H. Cho, "A new class of doubletalk detectors
  based on cross-correlation", IEEE Trans. Speech Audio Process. 2000, with the linear filter's
  echo estimate for the cross-correlation). TRIGGER clear blocks in a row start a hold (a
  burst of babble is one or two). What the user says must not teach the path, or the route
  locks itself out: a block teaches it PENDING blocks later, and not at all when a clear block
  came since (the user's first syllable, not CLEAR_DB above yet) or during a hold. What the bot
  says must not be locked in as the user: a path learned too low fails the NCC test once the
  linear filter has grown. Measured (tests/echo/double_talk.py's room, -120 to +20 dB of echo,
  babble or none, seeds 1, 3, 7): the envelope is within 1 dB of the room's gain 15 blocks
  after the far end starts and single-talk blocks sit 0-4 dB above it after; the user at the
  nominal speech level is 8-30 dB above it where the echo is 20 dB or more below the far end;
  no single-talk hold on this route in any of those rooms.
- Loud echo (the echo about as loud as the user: the issue's -6 dB room): the level cannot tell
  them apart, the cancellers can once grown. Evidence in a block, each a sign of something
  neither canceller explains: the microphone > FLOOR_DB above its floor; the linear output no
  more than DROP_DB above the microphone, DROP_DB more than its ERLE predicts and within
  NEAR_RATIO_DB of the microphone; AEC3's output > FLOOR_DB above its floor, less than
  BELOW_MIC_DB below the microphone and AEC_LEAK_DB above what its single-talk ERLE leaves;
  and both filters grown (the linear ERLE >= NEED_DB, AEC3's >= AEC_NEED_DB); and the
  microphone FLOOR_DB above the room's noise and above NEAR_MIN (without these two, a babble
  burst over a faint echo, or an echo's tail in a silent room, held the linear output on for
  20-115 blocks of the bot alone in rooms of -40, -20 and -6 dB). Near speech
  starts after TRIGGER blocks of evidence in a row, while the far end has been active ONSET
  blocks (a reply's onset after a pause leaks through both cancellers for a few blocks).

Either way near speech goes on while the evidence does and the far end is active, and HANG
blocks after, but never into a new onset of the far end (after 5 quiet blocks). A hold begun
over a reply under way goes on when the reply stops (the user's barge-in): AEC3's suppressor,
still set for the echo, turns the user down for 4-8 blocks after the far end stops. Single
talk stays AEC3's (deep suppression, so the bot never hears itself).

Per block: a few float operations and a FAR_HOLD-long max; `mix` works in buffers made once.
"""

from __future__ import annotations

import math

import numpy as np

#: near speech: the microphone this far above its floor (dB) ...
FLOOR_DB = 10.0
#: ... and no more than this below the microphone (a quiet room has no floor to speak of:
#: AEC3's single talk sits 30-50 dB below the microphone, its double talk 10-20 dB)
BELOW_MIC_DB = 25.0
#: ... and AEC3 passing this much more than in single talk (dB)
AEC_LEAK_DB = 10.0
DROP_DB = 3.0
#: ... and the linear output within this of the microphone (the user's voice, about as loud
#: as the echo, is in it whole: 0-11 dB below the microphone in 80% of double-talk blocks)
NEAR_RATIO_DB = 12.0
NEED_DB = 10.0
#: ... and AEC3's to reach this (dB): before, AEC3 leaks the echo itself, which reads as near
#: speech
AEC_NEED_DB = 20.0
TRIGGER = 3
ONSET = 15
HANG = 20
#: far end active: reference above this mean square (-50 dBFS)
FAR_ACTIVE = 1e-5
#: the quietest near speech (mean square, -60 dBFS: EchoPath's near_speech threshold)
NEAR_MIN = 1e-6
#: Little echo: blocks of the far end held (the room's delay and tail: 320 ms at 20 ms a block)
FAR_HOLD = 16
#: the path is learned where the held far end is above this mean square (-30 dBFS) ...
PATH_FAR = 1e-3
#: ... and within 6 dB of its loudest (falling 0.02 dB a block): the microphone's noise over
#: the far end's quieter parts would read as a louder path
PATH_TOP = 0.25
#: the path's envelope falls this much a block (dB): 1 dB a second, a room that changes
PATH_FALL_DB = 0.02
#: blocks of loud far end the path is learned over before the route opens: more than
#: FAR_HOLD, so an echo as late as the held span is in it
LEARN = 20
#: the microphone this far above the path's prediction is the user (dB)
CLEAR_DB = 6.0
#: ... and no more than this above the linear canceller's output (dB): the linear filter
#: explains little of it (a normalized cross-correlation detector's test, with the filter's
#: echo estimate for the cross-correlation)
CLEAR_RATIO_DB = 3.0
#: blocks a block waits before it teaches the path: the user's first syllable, not yet
#: CLEAR_DB above, would otherwise teach it the user's level
PENDING = 5


def _gain(db: float) -> float:
    return 10.0 ** (db / 10.0)


_FLOOR = _gain(FLOOR_DB)
_CLEAR = _gain(CLEAR_DB)
_FALL = _gain(-PATH_FALL_DB)
_NONE = [-1.0] * PENDING
_CLEAR_RATIO = _gain(CLEAR_RATIO_DB)


class DoubleTalk:
    """Which output goes on (module docstring): `decide(n, mic, lin, aec, far)` per block,
    powers as sums of squares over the block's n samples (the microphone, the linear output,
    AEC3's output, the far end), returns True while near speech is taken to be there; `mix`
    then puts the chosen output into AEC3's output array. `block`: the longest block, samples.
    """

    def __init__(self, block: int):
        self.ramp = np.linspace(0.0, 1.0, block, dtype=np.float32)
        self._tmp = np.zeros(block, np.float32)
        self.far_hist = [0.0] * FAR_HOLD
        self.pending = [-1.0] * PENDING
        self.reset()

    def reset(self) -> None:
        """Forgets everything (a new canceller)."""
        self.erle_lin = 0.0          # the linear canceller's ERLE in single talk (dB)
        self.erle_aec = 0.0          # AEC3's, likewise
        self.mic_floor = 1.0         # mean square
        self.aec_floor = 1.0
        self.far_peak = 0.0          # mean square, decaying 1 dB a block
        self.far_run = 0             # blocks the far end has been active
        self.far_quiet = 0           # blocks it has been quiet
        self.streak = 0
        self.left = 0                # blocks of near speech left (HANG after the last)
        self.linear = False          # the linear output went on last block
        self.far_hist[:] = [0.0] * FAR_HOLD
        self.far_i = 0
        self.far_top = 0.0           # the held far end's loudest, falling slowly
        self.path = 0.0              # the echo path's gain (mean-square ratio), envelope
        self.path_n = 0              # loud far-end blocks it was learned over
        self.little = False          # the hold under way began on the little-echo route
        self.over = False            # ... or over a reply under way, the far end quiet since
        self.clear_run = 0           # blocks in a row the little-echo route found clear
        self.noise = None            # the room's noise at the microphone (mean square)
        self.pending[:] = _NONE      # what the last PENDING blocks will teach the path (-1: none)
        self.pend_i = 0

    def decide(self, n: int, mic: float, lin: float, aec: float, far: float) -> bool:
        """Whether near speech is taken to be there this block (updates the state)."""
        mic_ms, lin_ms, aec_ms = mic / n + 1e-12, lin / n + 1e-12, aec / n + 1e-12
        far_ms = far / n
        self.mic_floor = mic_ms if mic_ms < self.mic_floor else self.mic_floor * 1.005
        self.aec_floor = aec_ms if aec_ms < self.aec_floor else self.aec_floor * 1.005
        self.far_peak = max(0.8 * self.far_peak, far_ms)      # the far end, held a little
        active = self.far_peak > FAR_ACTIVE
        if far_ms > FAR_ACTIVE:
            self.far_run += 1
            self.far_quiet = 0
        else:
            self.far_quiet += 1
            if self.far_quiet >= 5:
                self.far_run = 0
        hist = self.far_hist
        hist[self.far_i] = far_ms
        self.far_i = (self.far_i + 1) % FAR_HOLD
        held = max(hist)
        above_floor = mic_ms > self.mic_floor * _FLOOR
        clear = self._little(mic_ms, lin_ms, held, above_floor)
        self.clear_run = self.clear_run + 1 if clear else 0
        # a hold starts on a run of clear blocks (a burst of babble is one or two), goes on
        # with each one
        little = clear and (self.clear_run >= TRIGGER or self.left > 0)
        ratio = 10.0 * math.log10(mic_ms / lin_ms)
        raw = (above_floor
               and ratio > -DROP_DB
               and aec_ms > self.aec_floor * _FLOOR
               and aec_ms > mic_ms * 10.0 ** (-min(BELOW_MIC_DB, self.erle_aec - AEC_LEAK_DB)
                                             / 10.0)
               and ratio < min(self.erle_lin - DROP_DB, NEAR_RATIO_DB)
               and self.erle_lin >= NEED_DB and self.erle_aec >= AEC_NEED_DB)
        # ... and the microphone FLOOR_DB above the room's noise (a babble burst over a faint
        # echo reads as evidence) and above NEAR_MIN (an echo's tail in a silent room does);
        # not a gate on what the ERLEs learn from (that moves them, and with them the route)
        noise = self.mic_floor if self.noise is None else max(self.noise, self.mic_floor)
        heard = raw and mic_ms > _FLOOR * noise and mic_ms > NEAR_MIN
        self.streak = self.streak + 1 if heard and self.far_run >= ONSET else 0
        near = active and (little or self.streak >= TRIGGER or (self.left > 0 and heard))
        # the ERLEs learn from the bot alone: only where its echo can be (the held far end
        # active). The user's turn between replies pulled them down to the ratio of a block
        # with no echo, 0 dB (live: the linear ERLE from 8.7 to 0.4 dB, AEC3's from 59 to
        # 0.6), and each reply began with the route shut: a self-lockout.
        if held > FAR_ACTIVE and not raw and not little and not self.left \
                and mic_ms > 20.0 * 2.0 * self.mic_floor:
            self.erle_lin += (0.2 if ratio > self.erle_lin else 0.05) * (ratio - self.erle_lin)
            r = 10.0 * math.log10(mic_ms / aec_ms)
            self.erle_aec += (0.2 if r > self.erle_aec else 0.05) * (r - self.erle_aec)
        self.left = HANG if near else max(0, self.left - 1)
        self.little = (little or self.little) and self.left > 0
        # a hold over a reply under way outlives the reply's stop (the user's barge-in): AEC3's
        # suppressor goes on turning the user down for 4-8 blocks after the far end stops
        self.over = (self.over or (near and self.far_run >= ONSET)) and self.left > 0 \
            and (self.far_run >= ONSET or self.far_quiet > 0)
        # only over a reply under way: where the far end starts again (after a pause, or the
        # next reply) AEC3's output goes on, whatever was left of the hold; a hold the level
        # began goes on (the far end explains none of it)
        return self.left > 0 and (self.far_run >= ONSET or self.little or self.over)

    def _little(self, mic_ms: float, lin_ms: float, held: float, above_floor: bool) -> bool:
        # the little-echo route (module docstring): the microphone far above what the path
        # predicts from the held far end, over the room's noise
        self.far_top = max(self.far_top * 0.995, held)
        noise = self.noise
        if held <= FAR_ACTIVE:
            if not above_floor:           # no echo can be there: the room's noise
                self.noise = mic_ms if noise is None else noise + 0.05 * (mic_ms - noise)
            return False
        noise = self.mic_floor if noise is None else max(noise, self.mic_floor)
        learned = self.path_n >= LEARN
        # ... and the linear canceller explains little of it (its echo estimate is well below
        # the microphone): a path learned too low is not locked in once the filter has grown
        taken = (learned and above_floor and mic_ms < _CLEAR_RATIO * lin_ms
                 and mic_ms > _CLEAR * (self.path * held + noise))
        ring, i = self.pending, self.pend_i
        if taken:
            # the blocks before it may have been the user's onset, below CLEAR_DB yet: they
            # teach nothing, nor does it, nor the rest of the hold (the user's quieter sounds)
            ring[:] = _NONE
            r = -1.0
        elif not self.little and held > PATH_FAR and held > self.far_top * PATH_TOP:
            r = max(mic_ms - noise, 0.0) / held
        else:
            r = -1.0
        # a block teaches the path PENDING blocks later, if no block was taken since
        old = ring[i]
        ring[i] = r
        self.pend_i = (i + 1) % PENDING
        self.path *= _FALL
        if old >= 0.0:
            self.path = max(old, self.path)
            self.path_n += 1
        return taken

    def mix(self, talk: bool, lin: np.ndarray, aec: np.ndarray) -> None:
        """`aec` becomes the output: the linear output while `talk`, crossfaded over the
        block where it changes."""
        n = aec.shape[0]
        if talk == self.linear:
            if talk:
                aec[:] = lin[:n]
            return
        self.linear = talk
        ramp, tmp = self.ramp[:n], self._tmp[:n]
        # talk: aec*(1-ramp) + lin*ramp; back: lin*(1-ramp) + aec*ramp
        np.subtract(lin[:n], aec, out=tmp)
        if talk:
            np.multiply(tmp, ramp, out=tmp)
        else:
            np.multiply(tmp, ramp[::-1], out=tmp)
        np.add(aec, tmp, out=aec)


__all__ = ["DoubleTalk"]
