"""Full scale, dBFS and non-finite samples: the one definition every part of remotemedia uses.

Full scale (0 dBFS) by dtype, the usual PCM convention (AES17; libsndfile's and soxr's scaling):

- floating point: +-1.0, as the values are;
- signed integers of `bits` bits: 2**(bits - 1), so int16 -32768 is exactly -1.0 and 32767 is
  1 - 2**-15;
- unsigned integers: centred on their midpoint 2**(bits - 1), with that same half range as full
  scale (uint8 128 is 0.0, 0 is -1.0).

`unit = (x - offset) / full_scale` maps any PCM sample to units of full scale. The engine's
adaptation of integer blocks for float-only nodes, every meter, detector and converter, the
runner's level meters and every output boundary go through the functions here.

Non-finite samples (NaN, +-Inf) are measured separately: levels are taken over the finite
samples and the count of the others is reported beside them. The quick test that a block is
clean (the sum of squares is finite) costs one reduction; the slower path runs only when it fails.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

# The quick finiteness test below overflows or makes NaN exactly when a block is not clean, and
# numpy reports that as a RuntimeWarning on stderr; here it is the answer, not a fault. A filter
# for this module only costs nothing per block (np.errstate would cost 3 us on every one).
warnings.filterwarnings("ignore", category=RuntimeWarning, module=__name__,
                        message=r"(overflow|invalid value) encountered in (dot|reduce)")

#: the level reported for digital silence (and anything below -120 dBFS)
SILENCE_DBFS = -120.0
_SILENCE_AMPLITUDE = 10.0 ** (SILENCE_DBFS / 20.0)
#: the bounds of a node param that is an absolute level in dBFS (Param(..., **LEVEL_RANGE))
LEVEL_RANGE = {"min": SILENCE_DBFS, "max": 0.0,
               "range_reason": "levels run from the -120 dBFS silence floor to full scale"}


def pcm_scale(dtype) -> tuple[float, float]:
    """(full_scale, offset) of a sample dtype, so that unit = (x - offset) / full_scale.

    Raises ValueError for a dtype that is not numeric PCM (bool, complex, object, ...)."""
    dtype = np.dtype(dtype)
    kind = dtype.kind
    if kind == "f":
        return 1.0, 0.0
    if kind == "i":
        return float(2 ** (dtype.itemsize * 8 - 1)), 0.0
    if kind == "u":
        half = float(2 ** (dtype.itemsize * 8 - 1))
        return half, half
    raise ValueError(f"{dtype} samples are not PCM audio (expected a float, signed or "
                     f"unsigned integer dtype)")


def full_scale(dtype) -> float:
    """The sample magnitude that is 0 dBFS for this dtype (see the module docstring)."""
    return pcm_scale(dtype)[0]


def to_unit_float(array: np.ndarray, dtype=np.float32) -> np.ndarray:
    """A new float array of `array`'s shape with samples in units of full scale.

    Floats are copied as they are (cast to `dtype` if wider is not asked for); integers are
    scaled, unsigned ones centred. Always a fresh array: the caller owns it."""
    src = array.dtype
    if src.kind == "f":
        return np.array(array, dtype=np.result_type(src, dtype), copy=True)
    scale, offset = pcm_scale(src)
    # float32 holds int16 exactly; wider integers need float64 to keep their bits.
    work = np.float64 if src.itemsize > 2 or np.dtype(dtype) == np.float64 else np.float32
    out = np.empty(array.shape, dtype=work)
    if offset:
        np.subtract(array, offset, out=out, casting="unsafe")
        out *= 1.0 / scale
    else:
        np.multiply(array, 1.0 / scale, out=out, casting="unsafe")
    return out


def from_unit_float(array: np.ndarray, dtype) -> np.ndarray:
    """Float samples in units of full scale to PCM of `dtype`: scaled by full scale, rounded to
    the nearest integer (ties to even), clipped to the type's range (+1.0 is the largest code,
    never a wrap to the most negative), NaN as 0. A float target gets NaN as 0 and +-Inf clipped
    to +-1.0, finite values as they are. Returns a new array."""
    target = np.dtype(dtype)
    if target.kind == "f":
        out = np.array(array, dtype=target, copy=True)
        if not finite_block(out):
            np.nan_to_num(out, copy=False, nan=0.0, posinf=1.0, neginf=-1.0)
        return out
    scale, offset = pcm_scale(target)
    info = np.iinfo(target)
    wide = target.itemsize > 2 or array.dtype.itemsize > 4
    work = np.empty(array.shape, dtype=np.float64 if wide else np.float32)
    np.multiply(array, scale, out=work, casting="unsafe")
    if offset:
        work += offset
    np.rint(work, out=work)
    np.clip(work, info.min, info.max, out=work)
    # Clipping leaves only NaN non-finite; NaN poisons a sum, so one pass finds it.
    if math.isnan(float(work.sum())):
        np.nan_to_num(work, copy=False, nan=offset)
    out = np.empty(array.shape, dtype=target)
    np.copyto(out, work, casting="unsafe")
    return out


def finite_block(array: np.ndarray) -> bool:
    """True when every sample of a float block is finite (integers always are). One reduction:
    the sum (of squares) is finite exactly when no sample is NaN or Inf, barring overflow of
    huge values, which only sends the caller to its careful path."""
    if array.dtype.kind != "f" or array.size == 0:
        return True
    if array.flags.c_contiguous and array.dtype.itemsize >= 4:
        flat = array.reshape(-1)                             # a view: the block is contiguous
        return math.isfinite(float(np.dot(flat, flat)))      # BLAS: the cheapest full pass
    return math.isfinite(float(np.add.reduce(array, axis=None)))


def count_non_finite(array: np.ndarray) -> int:
    """Samples (all channels) that are NaN or +-Inf; 0 for integer blocks."""
    if finite_block(array):
        return 0
    return int(array.size - np.count_nonzero(np.isfinite(array)))


def finite_or_zero(array: np.ndarray) -> tuple[np.ndarray, int]:
    """(`array` itself, 0) when every sample is finite; otherwise (a copy with NaN and +-Inf as
    0, the count of such samples). For nodes whose state one NaN would poison for the rest of a
    stream (filters, models, running averages) and detectors that must not read a broken sample
    as signal at the rail."""
    if finite_block(array):
        return array, 0
    bad = int(array.size - np.count_nonzero(np.isfinite(array)))
    if bad == 0:
        return array, 0
    return np.nan_to_num(array, copy=True, nan=0.0, posinf=0.0, neginf=0.0), bad


def measure(array: np.ndarray) -> tuple[float, float, int]:
    """(rms, peak, non_finite) of a block over all channels.

    `rms` and `peak` are in units of full scale, over the finite samples only (0.0 when there are
    none); `non_finite` counts NaN and +-Inf samples. Shapes: (samples,) or (samples, channels),
    any PCM dtype."""
    n = array.size
    if n == 0:
        return 0.0, 0.0, 0
    kind = array.dtype.kind
    if kind == "f":
        if array.ndim == 1 and array.flags.c_contiguous and array.dtype.itemsize >= 4:
            energy = float(np.dot(array, array))
        else:
            energy = float(np.vdot(array, array)) if array.flags.c_contiguous else float(
                np.sum(np.square(array, dtype=np.float64)))
        if math.isfinite(energy):
            peak = max(float(array.max()), -float(array.min()))
            return math.sqrt(energy / n), peak, 0
        finite = np.isfinite(array)
        good = int(np.count_nonzero(finite))
        bad = n - good
        if good == 0:
            return 0.0, 0.0, bad
        # Also reached when every sample is finite but float32 squares overflowed: float64.
        values = np.abs(array[finite], dtype=np.float64)
        return math.sqrt(float(np.dot(values, values)) / good), float(values.max()), bad
    scale, offset = pcm_scale(array.dtype)
    centred = array.astype(np.float64)
    if offset:
        centred -= offset
    peak = float(np.max(np.abs(centred)))
    rms = math.sqrt(float(np.vdot(centred, centred)) / n)
    return rms / scale, peak / scale, 0


def to_dbfs(value: float) -> float:
    """An amplitude in units of full scale as dBFS, rounded to 0.01 dB; SILENCE_DBFS (-120) for
    anything at or below -120 dBFS. Never NaN or Inf: JSON must stay strict."""
    if not value > _SILENCE_AMPLITUDE:   # also catches NaN
        return SILENCE_DBFS
    return round(20.0 * math.log10(min(value, 1e300)), 2)


def db_to_gain(db: float) -> float:
    """A relative level in dB as a linear amplitude factor: 10 ** (db / 20)."""
    return 10.0 ** (db / 20.0)


def repair_for_output(array: np.ndarray, clip: bool) -> tuple[np.ndarray, int, int]:
    """(block, non_finite, clipped) for an output boundary.

    A clean float block comes back as itself: for a sink that keeps floats (`clip` False)
    after one reduction (the sum of squares is finite), for one that clips after two (max and
    min, which propagate NaN, so it fails both comparisons). Otherwise the samples are counted,
    NaN/+-Inf (`non_finite`) and, with `clip`, finite samples beyond +-1.0 (`clipped`), and a
    copy repairs them: NaN as 0, +-Inf as +-1.0, over-range clipped to +-1.0. A float sink
    keeps finite over-range samples as they are. Integer blocks are returned as they are."""
    if array.dtype.kind != "f" or array.size == 0:
        return array, 0, 0
    if not clip:
        if finite_block(array):
            return array, 0, 0
    elif float(array.max()) <= 1.0 and float(array.min()) >= -1.0:
        return array, 0, 0
    finite = np.isfinite(array)
    bad = int(array.size - np.count_nonzero(finite))
    over = 0
    if clip:
        over = int(np.count_nonzero(np.abs(array, where=finite,
                                           out=np.zeros(array.shape, array.dtype)) > 1.0))
    if bad == 0 and over == 0:
        return array, 0, 0
    out = np.nan_to_num(array, copy=True, nan=0.0, posinf=1.0, neginf=-1.0)
    if clip:
        np.clip(out, -1.0, 1.0, out=out)
    return out, bad, over


def repair_in_place(array: np.ndarray) -> tuple[int, int]:
    """Repair a float block where it lies (a device's own output buffer): NaN as 0, +-Inf and
    finite samples beyond +-1.0 clipped to +-1.0. Returns (non_finite, clipped). For the rare
    broken block only: it allocates the masks it counts with."""
    finite = np.isfinite(array)
    bad = int(array.size - np.count_nonzero(finite))
    clipped = int(np.count_nonzero(np.abs(array, where=finite,
                                          out=np.zeros(array.shape, array.dtype)) > 1.0))
    np.nan_to_num(array, copy=False, nan=0.0, posinf=1.0, neginf=-1.0)
    np.clip(array, -1.0, 1.0, out=array)
    return bad, clipped
