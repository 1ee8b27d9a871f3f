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

Which output goes on in a block is DoubleTalk's decision (nodes/echo_talk.py).
"""

from __future__ import annotations

import ctypes
import ctypes.util

import numpy as np

#: the linear filter's length (s): the room's delay and the louder part of its tail
FILTER_S = 0.3
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


__all__ = ["EchoEstimateWindow", "LinearEcho", "speex_library"]
