"""engine.levels.finite_block: the one-reduction finiteness check every health path uses.

It must agree with an element-wise check for any layout the engine hands it (1-D, interleaved
frames x channels, a channel's strided view, half/single/double precision) and never print
numpy's RuntimeWarning: +Inf beside -Inf sums to NaN, and a huge sample's square overflows,
which is the answer, not a fault (CI printed one for a stereo block with +-Inf).
"""

from __future__ import annotations

import warnings

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from remotemedia.engine.levels import count_non_finite, finite_block

SPECIALS = [np.inf, -np.inf, np.nan, 1e38, -1e38, 65504.0]


@st.composite
def blocks(draw):
    dtype = draw(st.sampled_from([np.float16, np.float32, np.float64]))
    frames = draw(st.integers(1, 64))
    channels = draw(st.integers(1, 3))
    block = np.asarray(draw(st.lists(st.floats(-1, 1), min_size=frames * channels,
                                     max_size=frames * channels)), dtype=dtype)
    block = block.reshape(frames, channels) if channels > 1 else block
    flat = block.reshape(-1)
    for index, value in draw(st.lists(st.tuples(st.integers(0, flat.size - 1),
                                                st.sampled_from(SPECIALS)), max_size=4)):
        with np.errstate(over="ignore"):
            flat[index] = value
    layout = draw(st.sampled_from(["as is", "one channel", "reversed"]))
    if layout == "one channel" and block.ndim == 2:
        block = block[:, 0]                      # strided, not contiguous
    elif layout == "reversed":
        block = block[::-1]
    return block


@settings(max_examples=300, deadline=None)
@given(blocks())
def test_finite_block_agrees_with_an_elementwise_check_and_warns_nothing(block):
    with warnings.catch_warnings(record=True) as caught:
        clean = finite_block(block)
        count = count_non_finite(block)
    # True is a promise; False may also mean "huge values overflowed the quick test", after which
    # the count is exact
    if clean:
        assert np.isfinite(block).all()
    assert count == int(block.size - np.isfinite(block).sum())
    assert [str(w.message) for w in caught] == []


def test_inf_beside_minus_inf_in_a_stereo_block_is_reported_without_a_warning():
    block = np.zeros((960, 2), dtype=np.float32)
    block[3, 0], block[3, 1] = np.inf, -np.inf
    with warnings.catch_warnings(record=True) as caught:
        assert not finite_block(block)
        assert not finite_block(block.T)         # Fortran order: the reduction path
        assert count_non_finite(block) == 2
    assert [str(w.message) for w in caught] == []
