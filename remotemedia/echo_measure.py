"""ERLE on the echo alone, when a simulation knows the echo: the residual echo separated from
the noise the canceller passes.

EchoCancel's own `erle_db` is 10*log10(microphone power / output power): in a noisy room both
hold the noise, and the output's noise floor bounds the figure whatever happens to the echo
(babble 20 dB below the speech level holds it near 29 dB). The definition of ERLE is the echo's
power over the residual echo's power. A simulation knows the echo at the microphone (EchoPath
without noise, same seed), so the residual echo is measured as the part of the output that the
echo explains: per STFT bin, the least-squares fit of the output on the echo at a few frame
lags (a short convolutive transfer function, which covers a residual a little early or late),
over the frames where the echo is audible. Noise uncorrelated with the echo fits about
lags/frames of its power (about -24 dB with 5 lags over 10 s); that share is taken out of the
fit (as adjusted R^2 does), which leaves a floor a few dB lower: a residual much further below
the output's noise reads high but noisy.
"""

from __future__ import annotations

import math

import numpy as np

N_FFT = 1024
HOP = 512
LAGS = (-1, 0, 1, 2, 3)


def _stft(x: np.ndarray, n_fft: int = N_FFT, hop: int = HOP) -> np.ndarray:
    """(frames, n_fft // 2 + 1) complex128: Hann-windowed frames `hop` apart; no frames when
    `x` is shorter than one window."""
    if x.shape[0] < n_fft:
        return np.zeros((0, n_fft // 2 + 1), np.complex128)
    count = 1 + (x.shape[0] - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(count)[:, None]
    return np.fft.rfft(x.astype(np.float64)[idx] * np.hanning(n_fft), axis=1)


def echo_erle_db(echo: np.ndarray, out: np.ndarray, *, active_dbfs: float = -50.0,
                 start: int = 0, n_fft: int = N_FFT, hop: int = HOP) -> dict:
    """ERLE of the echo alone: `echo` is the echo at the microphone (float (samples,)), `out`
    what the canceller gave for that microphone, aligned sample for sample (same length or
    longer); frames from sample `start` on where the echo is above `active_dbfs` (dBFS RMS)
    count; STFT frames of `n_fft` samples, `hop` apart (1024 and 512: 21 and 11 ms at 48 kHz).
    Returns {"erle_db": echo power / residual echo power (dB, None without echo
    frames), "residual_echo_dbfs", "output_dbfs" (dBFS RMS over those frames), "frames"}.
    ValueError if `out` is shorter than `echo`."""
    if out.shape[0] < echo.shape[0]:
        raise ValueError(f"out has {out.shape[0]} samples, echo {echo.shape[0]}")
    D = _stft(echo[start:], n_fft, hop)
    O = _stft(out[start:echo.shape[0]], n_fft, hop)
    level = np.sum(np.abs(D) ** 2, axis=1) / (n_fft * np.sum(np.hanning(n_fft) ** 2) / 2)
    edge = max(LAGS) + 1
    keep = np.flatnonzero(level > 10.0 ** (active_dbfs / 10.0))
    keep = keep[(keep >= edge) & (keep < D.shape[0] - edge)]
    if keep.shape[0] < 4 * len(LAGS):
        return {"erle_db": None, "residual_echo_dbfs": None, "output_dbfs": None,
                "frames": int(keep.shape[0])}
    # regressors: the echo's spectrum at each lag, (frames, bins, lags)
    R = np.stack([D[keep - lag] for lag in LAGS], axis=2)
    Y = O[keep]
    A = np.einsum("tfl,tfm->flm", R.conj(), R)
    b = np.einsum("tfl,tf->fl", R.conj(), Y)
    A += np.eye(len(LAGS))[None] * (1e-12 + 1e-9 * np.trace(A, axis1=1, axis2=2).real
                                    [:, None, None] / len(LAGS))
    w = np.linalg.solve(A, b[..., None])[..., 0]
    fit = np.einsum("fl,flm,fm->f", w.conj(), A, w).real
    p_bins = np.sum(np.abs(Y) ** 2, axis=0)
    # Noise alone fits lags/frames of its power: taken out (the adjusted-R^2 correction),
    # kept above a thousandth of the raw fit so that the figure stays finite.
    share = len(LAGS) / keep.shape[0]
    fit = float(np.maximum((fit - share * (p_bins - fit)) / (1.0 - share), 1e-3 * fit).sum())
    p_echo = float(np.sum(np.abs(D[keep]) ** 2))
    p_out = float(p_bins.sum())
    norm = keep.shape[0] * n_fft * float(np.sum(np.hanning(n_fft) ** 2)) / 2
    return {"erle_db": round(10.0 * math.log10(p_echo / max(fit, 1e-30)), 2),
            "residual_echo_dbfs": round(10.0 * math.log10(max(fit / norm, 1e-20)), 2),
            "output_dbfs": round(10.0 * math.log10(max(p_out / norm, 1e-20)), 2),
            "frames": int(keep.shape[0])}


__all__ = ["echo_erle_db"]
