"""io/convert.py: a file input converted at the source boundary, whatever the blocking."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import soxr
from hypothesis import given, settings
from hypothesis import strategies as st

from remotemedia.engine.errors import UsageError
from remotemedia.engine.node import AudioFormat
from remotemedia.io.convert import Converter, UnsupportedMix, channel_mix
from remotemedia.io.files import WavSource


def run(conv: Converter, x: np.ndarray, chunk: int) -> list[np.ndarray]:
    out = []
    for i in range(0, len(x), chunk):
        out.extend(conv.push(x[i:i + chunk]))
    out.extend(conv.finish())
    return out


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 5000), chunk=st.integers(1, 2000), block=st.integers(1, 1500),
       rates=st.sampled_from([(22050, 48000), (44100, 48000), (48000, 16000), (8000, 8000)]),
       channels=st.sampled_from([(1, 1), (2, 1), (1, 2), (1, 6), (2, 2)]))
def test_blocks_are_whole_and_equal_one_shot_soxr(n, chunk, block, rates, channels):
    (src_rate, dst_rate), (src_ch, dst_ch) = rates, channels
    rng = np.random.default_rng(n)
    x = rng.uniform(-1, 1, (n, src_ch)).astype(np.float32)
    if src_ch == 1:
        x = x[:, 0]
    conv = Converter(src_rate, src_ch, dst_rate, dst_ch, block)
    blocks = run(conv, x, chunk)
    assert all(b.shape[0] == block for b in blocks[:-1])
    assert all(b.dtype == np.float32 and b.flags.c_contiguous and b.flags.writeable
               for b in blocks)
    assert all(b.ndim == (1 if dst_ch == 1 else 2) for b in blocks)
    # what one mix and one soxr resample of the whole input gives, sample for sample
    mono = x.mean(axis=1, dtype=np.float32) if (src_ch, dst_ch) == (2, 1) else x
    want = mono if src_rate == dst_rate else soxr.resample(mono, src_rate, dst_rate, "HQ")
    if dst_ch > src_ch:
        want = np.repeat(want[:, None], dst_ch, axis=1)
    got = np.concatenate(blocks) if blocks else want[:0]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-6)
    # every block handed out is an array of its own, counted
    assert conv.copies >= len(blocks)
    assert len({id(b) for b in blocks}) == len(blocks)


@pytest.mark.parametrize("src,dst", [(3, 1), (6, 2), (2, 6), (4, 2)])
def test_undeclared_mixes_are_refused_naming_the_layouts(src, dst):
    with pytest.raises(UnsupportedMix, match=f"from {src} to {dst} channels"):
        channel_mix(src, dst)


def test_source_counts_the_conversion_as_io_copies(tmp_path):
    path = tmp_path / "cd.wav"
    sf.write(path, np.zeros((44100, 2), np.float32), 44100)

    class Counters:
        io = 0

    class Session:
        counters = Counters()

    source = WavSource(path).conform(AudioFormat(48000, 1, 960), exact=False)
    assert source.conversion == "44100 Hz -> 48000 Hz (soxr HQ), 2 ch -> 1 (mean)"
    source.attach(Session)
    with source:
        blocks = []
        while (b := source.read()) is not None:
            blocks.append(b)
    assert sum(len(b) for b in blocks) == 48000 and len(blocks) == 50
    assert Session.counters.io >= 50
    with pytest.raises(UsageError, match="44100 Hz"):
        WavSource(path).conform(AudioFormat(48000, 1, 960))   # exact: the default
