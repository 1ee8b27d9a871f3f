"""EchoCancel's double-talk stage: a linear echo canceller beside AEC3, and the output of that
linear canceller in place of AEC3's while the user talks over the bot.

Why: AEC3's suppressor (not configurable through pywebrtc-audio) turns the near end down by up
to 35 dB while the far end is active and its filter is young, so the user's words spoken over
the bot's reply reach the recognizer mangled. A linear canceller only subtracts its estimate of
the echo: the near end passes whole, with a residual echo 7 dB (after 3 s of the bot) to 20 dB
(after 12 s) below the echo. Measured in the issue's room (benchmarks/bench_echo.py,
double_talk): Whisper reads the sentence over the bot from the linear output as well as alone,
from AEC3's with a WER of 0.45-0.82 after 5 s of the bot.

The linear canceller is Speex's MDF (multidelay block frequency-domain adaptive filter, with
its own double-talk-robust step control) from libspeexdsp (Xiph, BSD; Debian libspeexdsp1),
loaded with ctypes: its int16 frames go through buffers made once, so a block allocates
nothing. 10 ms frames, a 300 ms filter.

DoubleTalk decides per block which output goes on (float32, the same near end, powers summed
over the block):
- mic, lin, aec: the powers of the microphone, the linear output and AEC3's output;
- AEC3's output floor (a minimum tracker rising 0.02 dB per block): AEC3 holds single talk near
  that floor once it has converged;
- the linear canceller's ERLE (mic / lin, dB), tracked over single-talk blocks with echo well
  above the microphone's floor (fast up, slow down: the filter's steady state);
- evidence in a block, each a sign of something neither canceller explains: the microphone
  > FLOOR_DB above its floor; the linear output no more than DROP_DB above the microphone (a
  filter that adds its own error explains nothing), DROP_DB more than its ERLE predicts and
  within NEAR_RATIO_DB of the microphone; AEC3's output > FLOOR_DB above its floor, less
  than BELOW_MIC_DB below the microphone and AEC_LEAK_DB above what its single-talk ERLE
  leaves; and both filters grown (the linear ERLE >= NEED_DB, AEC3's >= AEC_NEED_DB);
- near speech starts after TRIGGER blocks of evidence in a row, while the far end is active
  and has been for ONSET blocks (a reply's onset after a pause leaks through both cancellers
  for a few blocks); it goes on while the evidence does and the far end is active, and HANG
  blocks after, but never into a new onset of the far end (after 5 quiet blocks);
- then the linear output goes on; switching crossfades over one block.
Single talk stays AEC3's (deep suppression, so the bot never hears itself); an onset missed
leaves AEC3's output, a false start passes the linear residual for HANG blocks.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math

import numpy as np

#: the linear filter's length (s): the room's delay and the louder part of its tail
FILTER_S = 0.3
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
_ECHO_SET_SAMPLING_RATE = 24
_SCALE_IN = np.float32(32768.0)
_SCALE_OUT = np.float32(1.0 / 32768.0)
_lib = None


def speex_library():
    """libspeexdsp (Debian libspeexdsp1) through ctypes. ValueError naming the package when it
    is missing."""
    global _lib
    if _lib is not None:
        return _lib
    path = ctypes.util.find_library("speexdsp") or "libspeexdsp.so.1"
    try:
        lib = ctypes.CDLL(path)
    except OSError as exc:
        raise ValueError("EchoCancel's double_talk: linear needs libspeexdsp (Debian: apt-get "
                         "install libspeexdsp1; or set double_talk: off)") from exc
    lib.speex_echo_state_init.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.speex_echo_state_init.restype = ctypes.c_void_p
    lib.speex_echo_state_destroy.argtypes = [ctypes.c_void_p]
    lib.speex_echo_state_destroy.restype = None
    lib.speex_echo_ctl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
    lib.speex_echo_ctl.restype = ctypes.c_int
    lib.speex_echo_cancellation.argtypes = [ctypes.c_void_p] * 4
    lib.speex_echo_cancellation.restype = None
    _lib = lib
    return lib


class LinearEcho:
    """Speex MDF at `rate` Hz: `process(near, far, out)` on float32 (n,) arrays, n a whole
    number of 10 ms frames and at most `block`; writes the linear canceller's output into
    `out` (float32 (n,)). Nothing allocated per call. `close()` frees the state."""

    def __init__(self, rate: int, block: int):
        self._lib = lib = speex_library()
        self.frame = rate // 100
        self._st = lib.speex_echo_state_init(self.frame, int(FILTER_S * rate))
        r = ctypes.c_int(rate)
        lib.speex_echo_ctl(self._st, _ECHO_SET_SAMPLING_RATE, ctypes.byref(r))
        self._near = np.zeros(block, np.int16)
        self._far = np.zeros(block, np.int16)
        self._out = np.zeros(block, np.int16)
        self._scratch = np.zeros(block, np.float32)
        self._ptr = [(self._near.ctypes.data + 2 * i, self._far.ctypes.data + 2 * i,
                      self._out.ctypes.data + 2 * i) for i in range(0, block, self.frame)]

    def _to_int16(self, x: np.ndarray, dst: np.ndarray) -> None:
        s = self._scratch[:x.shape[0]]
        np.multiply(x, _SCALE_IN, out=s)
        np.clip(s, -32768.0, 32767.0, out=s)
        np.copyto(dst[:x.shape[0]], s, casting="unsafe")

    def process(self, near: np.ndarray, far: np.ndarray, out: np.ndarray) -> None:
        """The linear canceller on one block (class docstring)."""
        n = near.shape[0]
        self._to_int16(near, self._near)
        self._to_int16(far, self._far)
        run, st = self._lib.speex_echo_cancellation, self._st
        for a, b, c in self._ptr[:n // self.frame]:
            run(st, a, b, c)
        # a plain cast, then a float32 scale: a mixed-type ufunc would allocate cast buffers
        np.copyto(out[:n], self._out[:n], casting="unsafe")
        np.multiply(out[:n], _SCALE_OUT, out=out[:n])

    def close(self) -> None:
        """Frees the Speex state (idempotent)."""
        if self._st:
            self._lib.speex_echo_state_destroy(self._st)
            self._st = None


class DoubleTalk:
    """Which output goes on (module docstring): `choose(mic, lin, aec, far_power, out)` per
    block, powers as sums of squares over the block's n samples; mixes into `out` (AEC3's
    output array, modified in place) and returns True while near speech is taken to be
    there. `ramp` is a float32 (block,) array 0 -> 1 made once."""

    def __init__(self, block: int):
        self.ramp = np.linspace(0.0, 1.0, block, dtype=np.float32)
        self._tmp = np.zeros(block, np.float32)
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

    def decide(self, n: int, mic: float, lin: float, aec: float, far: float) -> bool:
        """Whether near speech is taken to be there this block (updates the state)."""
        mic_ms, lin_ms, aec_ms = mic / n + 1e-12, lin / n + 1e-12, aec / n + 1e-12
        self.mic_floor = mic_ms if mic_ms < self.mic_floor else self.mic_floor * 1.005
        self.aec_floor = aec_ms if aec_ms < self.aec_floor else self.aec_floor * 1.005
        self.far_peak = max(0.8 * self.far_peak, far / n)      # the far end, held a little
        active = self.far_peak > FAR_ACTIVE
        if far / n > FAR_ACTIVE:
            self.far_run += 1
            self.far_quiet = 0
        else:
            self.far_quiet += 1
            if self.far_quiet >= 5:
                self.far_run = 0
        ratio = 10.0 * math.log10(mic_ms / lin_ms)
        raw = (mic_ms > self.mic_floor * 10.0 ** (FLOOR_DB / 10.0)
               and ratio > -DROP_DB
               and aec_ms > self.aec_floor * 10.0 ** (FLOOR_DB / 10.0)
               and aec_ms > mic_ms * 10.0 ** (-min(BELOW_MIC_DB, self.erle_aec - AEC_LEAK_DB)
                                             / 10.0)
               and ratio < min(self.erle_lin - DROP_DB, NEAR_RATIO_DB)
               and self.erle_lin >= NEED_DB and self.erle_aec >= AEC_NEED_DB)
        self.streak = self.streak + 1 if raw and self.far_run >= ONSET else 0
        near = active and (self.streak >= TRIGGER or (self.left > 0 and raw))
        if not raw and not self.left and mic_ms > 20.0 * 2.0 * self.mic_floor:
            self.erle_lin += (0.2 if ratio > self.erle_lin else 0.05) * (ratio - self.erle_lin)
            r = 10.0 * math.log10(mic_ms / aec_ms)
            self.erle_aec += (0.2 if r > self.erle_aec else 0.05) * (r - self.erle_aec)
        self.left = HANG if near else max(0, self.left - 1)
        # only over a reply under way: where the far end starts again (after a pause, or the
        # next reply) AEC3's output goes on, whatever was left of the hold
        return self.left > 0 and self.far_run >= ONSET

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


class EchoEstimateWindow:
    """ERLE as echo power in over residual echo power out, measured without ground truth: the
    linear canceller's estimate of the echo at the microphone (microphone - linear output) is
    the echo in, and the residual echo is the part of the node's output that this estimate
    explains (remotemedia.echo_measure.echo_erle_db: per STFT bin, a least-squares fit over a
    few frame lags, the share noise alone would fit taken out), so the noise the canceller
    passes and the user's voice are left out, unlike near/out power. Measured on the issue's
    room with babble at 20 dB SNR: the estimate's power within 0.1 dB of the true echo's,
    window figures 0-8 dB below the ground truth's (at 16 kHz, where it runs: 2 ms a window
    instead of 11 at 48 kHz).

    `add(near, lin, out)` per block (float32 (n,) each; copied into buffers made here, up to
    `samples`); `measure()` -> ERLE in dB over what was added since the last call (None when
    too few frames had echo), then starts over."""

    RATE = 16000

    def __init__(self, rate: int, samples: int):
        self.rate = rate
        self._echo = np.zeros(samples, np.float32)
        self._out = np.zeros(samples, np.float32)
        self._n = 0

    def add(self, near: np.ndarray, lin: np.ndarray, out: np.ndarray) -> None:
        """One block's microphone, linear output and node output."""
        i, n = self._n, min(near.shape[0], self._echo.shape[0] - self._n)
        if n <= 0:
            return
        np.subtract(near[:n], lin[:n], out=self._echo[i:i + n])
        self._out[i:i + n] = out[:n]
        self._n = i + n

    def clear(self) -> None:
        """Drops what was added (a new canceller)."""
        self._n = 0

    def measure(self) -> float | None:
        """ERLE (dB) of the window, or None; the window starts over."""
        n, self._n = self._n, 0
        if n < self.rate // 10:
            return None
        import soxr
        from ..echo_measure import echo_erle_db
        echo, out = self._echo[:n], self._out[:n]
        if self.rate != self.RATE:
            echo = soxr.resample(echo, self.rate, self.RATE)
            out = soxr.resample(out, self.rate, self.RATE)
        return echo_erle_db(echo, out, n_fft=512, hop=256)["erle_db"]


__all__ = ["DoubleTalk", "EchoEstimateWindow", "LinearEcho", "speex_library"]
