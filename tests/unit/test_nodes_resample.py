"""Resample: soxr streaming equals soxr one-shot, keeps 60 dB through a round trip, times its
output correctly, and tells validation its output rate."""

from __future__ import annotations

import numpy as np
import pytest
import soxr

import remotemedia as rm
from remotemedia import testing
from remotemedia.engine.errors import ManifestError
from remotemedia.engine.data import NumpyData


def manifest(nodes, rate=48000, channels=1, block=960, chain=None):
    """input -> nodes in order (or along `chain`, a list of ids) -> output."""
    audio = {"sample_rate": rate, "channels": channels, "block_size": block}
    if chain is None:
        return testing.chain(*nodes, audio=audio)
    return testing.manifest(nodes, [{"from": a, "to": b} for a, b in zip(chain, chain[1:])],
                            audio=audio)


def stream(m, signal, block, rate, start_pts=0):
    """Push `signal` in blocks with pts; return (numpy outputs, session stats)."""
    with rm.Pipeline.from_manifest(m).session() as s:
        outs = []
        for i in range(0, signal.shape[0], block):
            outs += s.push(NumpyData(signal[i:i + block], sample_rate=rate, pts=start_pts + i))
        outs += s.end_of_stream()
        stats = s.stats()
    return [o for o in outs if o.kind == "numpy"], stats


def make_signal(seconds=2.0, rate=48000, channels=1, seed=1):
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    x = 0.4 * np.sin(2 * np.pi * 997 * t) + 0.05 * rng.standard_normal(n)
    x = x.astype(np.float32)
    if channels > 1:
        x = np.stack([x * (0.5 + 0.5 * c) for c in range(channels)], axis=1)
    return x


def snr_db(reference, test):
    noise = test - reference
    return 10 * np.log10(np.sum(reference.astype(np.float64) ** 2) /
                         np.sum(noise.astype(np.float64) ** 2))


# Far above any float32 rounding difference, far below the error of a filter restarted at each
# frame boundary (the click this test exists to catch; see test_tolerance_catches_restart_clicks).
STREAM_TOLERANCE = 1e-5


def test_round_trip_48k_16k_48k_keeps_60_db_snr():
    rate = 48000
    t = np.arange(2 * rate) / rate
    x = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    m = manifest([{"id": "down", "node_type": "Resample", "params": {"rate": 16000}},
                  {"id": "up", "node_type": "Resample", "params": {"rate": 48000}}])
    outs, stats = stream(m, x, 960, rate)
    y = np.concatenate([o.array for o in outs])
    assert y.shape == x.shape                  # delay compensated, tail released, no extra
    assert all(o.sample_rate == 48000 for o in outs)
    edge = rate // 50   # the abrupt start and end ring through the filters; judge the middle
    snr = snr_db(x[edge:-edge], y[edge:-edge])
    assert snr >= 60.0, f"round trip SNR {snr:.1f} dB"
    assert stats["copies"]["engine"] == 0      # contiguous float32 input: nothing adapted


@pytest.mark.parametrize("in_rate,out_rate,quality,channels", [
    (48000, 16000, "HQ", 1),
    (48000, 16000, "VHQ", 1),
    (48000, 16000, "QQ", 1),
    (44100, 16000, "HQ", 1),
    (16000, 48000, "MQ", 1),
    (48000, 44100, "HQ", 2),
])
def test_stream_in_960_sample_frames_equals_one_shot(in_rate, out_rate, quality, channels):
    x = make_signal(rate=in_rate, channels=channels)
    m = manifest([{"id": "rs", "node_type": "Resample",
                   "params": {"rate": out_rate, "quality": quality}}],
                 rate=in_rate, channels=channels)
    outs, _ = stream(m, x, 960, in_rate)
    y = np.concatenate([o.array for o in outs])
    one_shot = soxr.resample(x, in_rate, out_rate, quality)
    assert y.shape == one_shot.shape
    assert np.max(np.abs(y - one_shot)) <= STREAM_TOLERANCE


def test_tolerance_catches_restart_clicks():
    """The comparison above can fail: a resampler that starts afresh each frame (the classic
    frame-boundary bug) misses it by orders of magnitude."""
    x = make_signal()
    one_shot = soxr.resample(x, 48000, 16000, "HQ")
    naive = np.concatenate([soxr.resample(x[i:i + 960], 48000, 16000, "HQ")
                            for i in range(0, len(x), 960)])
    assert naive.shape == one_shot.shape
    assert np.max(np.abs(naive - one_shot)) > 100 * STREAM_TOLERANCE


def test_output_pts_advance_at_the_output_rate_and_match_the_signal():
    rate, start = 48000, 3 * 48000           # a stream that starts 3 s in
    t = (start + np.arange(rate)) / rate
    x = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    m = manifest([{"id": "rs", "node_type": "Resample", "params": {"rate": 16000}}])
    outs, _ = stream(m, x, 960, rate, start_pts=start)
    assert outs[0].pts == 3 * 16000
    for prev, cur in zip(outs, outs[1:]):
        assert cur.pts == prev.pts + prev.array.shape[0]
    assert [o.seq for o in outs] == list(range(len(outs)))
    assert sum(o.array.shape[0] for o in outs) == 16000
    # pts means time: sample k of the output is the input signal at (pts + k) / 16 kHz.
    y = np.concatenate([o.array for o in outs])
    k = outs[0].pts + np.arange(y.shape[0])
    expected = 0.5 * np.sin(2 * np.pi * 1000 * k / 16000)
    middle = slice(800, -800)
    assert np.max(np.abs(y[middle] - expected[middle])) < 1e-3


def test_flush_releases_the_tail_and_the_next_stream_starts_clean():
    x = make_signal(seconds=0.5)
    with rm.Pipeline.from_manifest(manifest(
            [{"id": "rs", "node_type": "Resample", "params": {"rate": 16000}}])).session() as s:
        held = []
        for i in range(0, len(x), 960):
            held += s.push(NumpyData(x[i:i + 960], sample_rate=48000, pts=i))
        held_samples = sum(o.array.shape[0] for o in held if o.kind == "numpy")
        assert held_samples < 8000              # soxr holds its filter delay back
        tail = [o for o in s.flush() if o.kind == "numpy"]
        assert len(tail) == 1
        assert held_samples + tail[0].array.shape[0] == 8000
        assert tail[0].pts == held[-1].pts + held[-1].array.shape[0]
        # After a flush the filter restarts: the same audio again gives the same output.
        again = []
        for i in range(0, len(x), 960):
            again += s.push(NumpyData(x[i:i + 960], sample_rate=48000, pts=24000 + i))
        again += s.end_of_stream()
    again = [o for o in again if o.kind == "numpy"]
    assert again[0].pts == 8000
    first = np.concatenate([o.array for o in held] + [tail[0].array])
    assert np.array_equal(np.concatenate([o.array for o in again]), first)


def test_declares_its_output_rate_for_validation():
    ok = manifest([{"id": "rs", "node_type": "Resample", "params": {"rate": 16000}},
                   {"id": "vad", "node_type": "EnergyVAD"},
                   {"id": "vad16", "node_type": "VAD"}])
    ok["connections"] = [{"from": "input", "to": "rs"}, {"from": "rs", "to": "vad"},
                         {"from": "rs", "to": "vad16"}, {"from": "vad", "to": "output"}]
    p = rm.Pipeline.from_manifest(ok)
    assert p.manifest.formats["rs"].sample_rate == 16000
    bad = manifest([{"id": "rs", "node_type": "Resample", "params": {"rate": 8000}},
                    {"id": "vad", "node_type": "VAD"}])
    with pytest.raises(ManifestError) as err:
        rm.Pipeline.from_manifest(bad)
    assert "vad" in str(err.value) and "16000" in str(err.value) and "8000" in str(err.value)


def test_input_rate_param_must_agree_with_the_stream():
    m = manifest([{"id": "rs", "node_type": "Resample",
                   "params": {"rate": 16000, "input_rate": 44100}}])
    with pytest.raises(ManifestError, match="44100"):
        rm.Pipeline.from_manifest(m)
    with pytest.raises(ManifestError, match="rate"):
        rm.Pipeline.from_manifest(manifest([{"id": "rs", "node_type": "Resample"}]))
    with pytest.raises(ManifestError, match="quality"):
        rm.Pipeline.from_manifest(manifest([{"id": "rs", "node_type": "Resample",
                                             "params": {"rate": 16000, "quality": "best"}}]))


def test_strided_input_is_adapted_once_by_the_engine_and_counted():
    """soxr needs C order; a channel picked out of a stereo frame is a strided view, which the
    engine copies once per frame (counted) instead of soxr's binding copying it silently."""
    stereo = make_signal(seconds=0.2, channels=2)
    m = manifest([{"id": "pick", "node_type": "ChannelSelect", "params": {"channel": 1}},
                  {"id": "rs", "node_type": "Resample", "params": {"rate": 16000}}],
                 channels=2)
    outs, stats = stream(m, stereo, 960, 48000)
    frames = stereo.shape[0] // 960
    assert stats["copies"]["engine"] == frames
    y = np.concatenate([o.array for o in outs])
    assert np.max(np.abs(y - soxr.resample(np.ascontiguousarray(stereo[:, 1]), 48000, 16000))) \
        <= STREAM_TOLERANCE


def test_int16_is_resampled_natively_without_conversion():
    x = (make_signal(seconds=0.5) * 32767).astype(np.int16)
    m = manifest([{"id": "rs", "node_type": "Resample", "params": {"rate": 16000}}])
    outs, stats = stream(m, x, 960, 48000)
    y = np.concatenate([o.array for o in outs])
    assert y.dtype == np.int16
    assert stats["copies"]["engine"] == 0
    # libsoxr dithers integer output, so two runs differ in their last bits: judge against the
    # exact float result, which dither (+-1 LSB) and rounding (1/2 LSB) keep within 2 LSB.
    reference = soxr.resample(x.astype(np.float64), 48000, 16000)
    assert y.shape == reference.shape
    assert np.max(np.abs(y - reference)) <= 2.0


def test_unsupported_dtype_is_a_clear_node_error():
    x = np.zeros(960, dtype=np.float16)
    with rm.Pipeline.from_manifest(manifest(
            [{"id": "rs", "node_type": "Resample", "params": {"rate": 16000}}])).session() as s:
        with pytest.raises(rm.RemoteMediaError, match="FormatConvert"):
            s.push(NumpyData(x, sample_rate=48000, pts=0))


def test_discontinuity_releases_the_tail_and_rebases_pts_on_the_next_frame():
    from remotemedia.engine.data import ControlData
    x = make_signal(seconds=0.2)
    with rm.Pipeline.from_manifest(manifest(
            [{"id": "rs", "node_type": "Resample", "params": {"rate": 16000}}])).session() as s:
        first = []
        for i in range(0, len(x), 960):
            first += s.push(NumpyData(x[i:i + 960], sample_rate=48000, pts=i))
        first += s.push(ControlData("discontinuity"))
        audio = [o for o in first if o.kind == "numpy"]
        assert sum(o.array.shape[0] for o in audio) == 3200      # everything, tail included
        second = []
        for i in range(0, len(x), 960):                          # resumes 10 s later
            second += s.push(NumpyData(x[i:i + 960], sample_rate=48000, pts=480000 + i))
        second += s.end_of_stream()
    second = [o for o in second if o.kind == "numpy"]
    assert second[0].pts == 160000
    assert np.array_equal(np.concatenate([o.array for o in second]),
                          np.concatenate([o.array for o in audio]))
