"""Sample kernels the engine, nodes and ends share: scaling a block in place by one real factor,
what counts as such a factor (`as_gain`), and filling a block from queued pieces
(`fill_from_pending`, for re-blocking).

numpy's ufunc call dominates a 960-sample multiply: with a Python float as the factor it costs
about 0.65 us on these machines, with a 0-d array of the block's own dtype about 0.35 us, for
the same result. Under NEP 50 (numpy >= 2) a Python float is converted to the array's dtype
before multiplying, so `x * np.array(f, x.dtype)` is bit-identical to `x * f`; the 0-d array just
skips the per-call scalar conversion and type resolution.
"""

from __future__ import annotations

import math

import numpy as np

_multiply = np.multiply


class Scaler:
    """Multiplies float blocks in place by a factor, keeping one 0-d factor array per dtype.

    `scale(array, factor)`: `array` a writable ndarray of any shape (float, the fast case),
    `factor` a finite float; writes `array * factor` (rounded once to array's dtype, as `array *= factor` does)
    into `array` and returns None. The cache follows a changing factor: the 0-d array is rebuilt
    when the factor differs from the last one used for that dtype."""

    __slots__ = ("_cache",)

    def __init__(self):
        self._cache: dict = {}     # dtype -> (factor, 0-d array of it in that dtype)

    def scale(self, array: np.ndarray, factor: float) -> None:
        """Writes array * factor into array (see the class). An integer array is scaled in
        float64 and cast back (truncated), as `array *= factor` with unsafe casting does: a
        factor in its own integer dtype would be truncated first."""
        dtype = array.dtype
        if dtype.kind != "f":
            _multiply(array, factor, out=array, casting="unsafe")
            return
        entry = self._cache.get(dtype)
        if entry is None or entry[0] != factor:
            entry = self._cache[dtype] = (factor, np.array(factor, dtype=dtype))
        _multiply(array, entry[1], out=array)


def as_gain(value) -> float:
    """A linear gain as a Python float: `value` must be a real number (bool, int, float, a numpy
    real scalar or 0-d array) and finite. Raises TypeError for anything else (None, a string, a
    sequence, a complex number, an array of several values), ValueError for NaN or infinity.
    The engine checks every Node.linear_gain() result with it and fails the node on either."""
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "biuf":
        value = value.item()
    if not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"linear_gain() returned {type(value).__name__} {value!r}, "
                        f"not a real number")
    gain = float(value)
    if not math.isfinite(gain):
        raise ValueError(f"linear_gain() returned {value!r}, not a finite number")
    return gain


def fill_from_pending(block: np.ndarray, pending: list) -> int:
    """Copy into `block` (samples on axis 0) the samples at the front of `pending` (ndarrays,
    samples on axis 0, oldest first), removing what it copies: a piece used up is popped, a
    piece used in part is replaced by the view of its rest. A (samples,) piece goes into a
    (samples, channels) block on every channel. Returns the samples copied: len(block), or
    fewer when `pending` runs out. ValueError (numpy's) for shapes that do not broadcast."""
    n = block.shape[0]
    filled = 0
    while filled < n and pending:
        piece = pending[0]
        k = min(n - filled, piece.shape[0])
        part = piece[:k]
        block[filled:filled + k] = part[:, None] if part.ndim < block.ndim else part
        filled += k
        if k == piece.shape[0]:
            pending.pop(0)
        else:
            pending[0] = piece[k:]
    return filled
