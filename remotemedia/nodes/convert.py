"""Sample format conversion: float <-> integer PCM with the scaling, rounding and clipping
everyone means by it.

Scaling is by a power of two, the usual convention (and libsndfile's, and soxr's): integer
`x` with `bits` bits is `x / 2**(bits - 1)` as float, so int16 -32768 is exactly -1.0 and 32767
is 1 - 2**-15. Going to an integer, values are scaled by `2**(bits - 1)`, rounded to the nearest
integer (ties to even, so no bias either way), and clipped to the type's range: +1.0 becomes the
largest code (32767), never wraps to -32768. NaN becomes 0. Unsigned 8-bit PCM is centred on 128.

The arithmetic is engine/levels.py's, shared with every meter, sink and the engine's own
adaptation, so a sample means the same thing everywhere.
"""

from __future__ import annotations

import numpy as np

from ..engine.levels import from_unit_float, to_unit_float
from ..engine.node import Node, Param, register_node

TARGETS = ("float32", "float64", "int16", "int32")


@register_node
class FormatConvert(Node):
    """Converts samples to `dtype` (float32, float64, int16 or int32) as the module docstring
    says: integers scaled by 2**(bits-1) to float, floats scaled, rounded half to even,
    clipped and NaN as 0 to integers (engine/levels.py). Shape kept; a block already in
    `dtype` passes as the same view, any other is one new buffer."""

    node_type = "FormatConvert"
    description = "Convert samples between float32/64 and int16/int32 PCM: scaled, rounded, clipped."
    params = (Param("dtype", str, "float32", "output sample type", choices=TARGETS),)

    def setup(self):
        """The target numpy dtype."""
        self._target = np.dtype(self.dtype)

    def process(self, frame):
        """The block in the target dtype, same shape, same pts and metadata."""
        array = frame.array
        src = array.dtype
        target = self._target
        if src == target:
            return frame
        if target.kind == "f":
            if src.kind == "f":
                return frame.with_array(array.astype(target))
            out = to_unit_float(array, target)
            return frame.with_array(out if out.dtype == target else out.astype(target))
        # To an integer target: scale in float, round, clip, NaN as 0 (engine/levels.py).
        unit = array if src.kind == "f" else to_unit_float(array, np.float64)
        return frame.with_array(from_unit_float(unit, target))
