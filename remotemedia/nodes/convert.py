"""Sample format conversion: float <-> integer PCM with the scaling, rounding and clipping
everyone means by it.

Scaling is by a power of two, the usual convention (and libsndfile's, and soxr's): integer
`x` with `bits` bits is `x / 2**(bits - 1)` as float, so int16 -32768 is exactly -1.0 and 32767
is 1 - 2**-15. Going to an integer, values are scaled by `2**(bits - 1)`, rounded to the nearest
integer (ties to even, so no bias either way), and clipped to the type's range: +1.0 becomes the
largest code (32767), never wraps to -32768. NaN becomes 0. Unsigned 8-bit PCM is centred on 128.

Every path to an integer goes through one float work buffer kept between frames: float64 where
float32 would lose bits (an int32 target or source, float64 input), float32 otherwise.
"""

from __future__ import annotations

import math

import numpy as np

from ..engine.node import Node, Param, register_node

TARGETS = ("float32", "float64", "int16", "int32")


def pcm_scale(dtype: np.dtype) -> tuple[float, float]:
    """(full scale, offset) of a dtype: float = (x - offset) / full scale."""
    if dtype.kind == "f":
        return 1.0, 0.0
    if dtype.kind == "i":
        return float(2 ** (dtype.itemsize * 8 - 1)), 0.0
    if dtype.kind == "u":
        half = float(2 ** (dtype.itemsize * 8 - 1))
        return half, half
    raise ValueError(f"cannot convert {dtype} samples: not a numeric PCM type")


@register_node
class FormatConvert(Node):
    node_type = "FormatConvert"
    description = "Convert samples between float32/64 and int16/int32 PCM: scaled, rounded, clipped."
    params = (Param("dtype", str, "float32", "output sample type", choices=TARGETS),)

    def setup(self):
        self._target = np.dtype(self.dtype)
        self._work: np.ndarray | None = None

    def _work_buffer(self, shape, dtype) -> np.ndarray:
        work = self._work
        if work is None or work.shape != shape or work.dtype != dtype:
            work = self._work = np.empty(shape, dtype=dtype)
        return work

    def process(self, frame):
        array = frame.array
        src = array.dtype
        target = self._target
        if src == target:
            return frame
        src_scale, offset = pcm_scale(src)
        if target.kind == "f":
            if src.kind == "f":
                return frame.with_array(array.astype(target))
            out = np.empty(array.shape, dtype=target)
            if offset:
                np.subtract(array, offset, out=out, casting="unsafe")
                out *= 1.0 / src_scale
            else:
                np.multiply(array, 1.0 / src_scale, out=out, casting="unsafe")
            return frame.with_array(out)
        # To an integer target: scale in float, round, clip, then cast.
        info = np.iinfo(target)
        wide = target.itemsize > 2 or src.itemsize > 4 or (src.kind != "f" and src.itemsize > 2)
        work = self._work_buffer(array.shape, np.float64 if wide else np.float32)
        factor = (info.max + 1.0) / src_scale
        if offset:
            np.subtract(array, offset, out=work, casting="unsafe")
            work *= factor
        else:
            np.multiply(array, factor, out=work, casting="unsafe")
        np.rint(work, out=work)
        np.clip(work, info.min, info.max, out=work)
        # Clipping leaves only NaN non-finite, and NaN poisons a sum: one cheap pass to find
        # out, the costly repair only when there is one.
        if src.kind == "f" and math.isnan(work.sum()):
            np.nan_to_num(work, copy=False, nan=0.0)
        out = np.empty(array.shape, dtype=target)
        np.copyto(out, work, casting="unsafe")
        return frame.with_array(out)
