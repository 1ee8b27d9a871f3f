"""Health monitors: each fires on a signal made to trigger it, stays quiet on clean audio, and
passes the audio on untouched."""

from __future__ import annotations

import numpy as np
import pytest

import remotemedia as rm
from remotemedia.engine.data import NumpyData

RATE = 48000
BLOCK = 960


def run(node_type, x, params=None, block=BLOCK, pts0=0, channels=1):
    m = {"version": "v1", "audio": {"sample_rate": RATE, "channels": channels,
                                    "block_size": block},
         "nodes": [{"id": "mon", "node_type": node_type, "params": params or {}}],
         "connections": [{"from": "input", "to": "mon"}, {"from": "mon", "to": "output"}]}
    frames, audio, events = [], [], []
    with rm.Pipeline.from_manifest(m).session() as s:
        for i in range(0, x.shape[0], block):
            frame = NumpyData(x[i:i + block], sample_rate=RATE, pts=pts0 + i)
            frames.append(frame)
            for out in s.push(frame):
                (audio if out.kind == "numpy" else events).append(out)
        events += [o for o in s.end_of_stream() if o.kind == "json"]
        stats = s.stats()
    # Untouched: the same buffers, in order, and the engine copied nothing.
    assert len(audio) == len(frames)
    for a, f in zip(audio, frames):
        assert np.shares_memory(a.array, f.array) and a.pts == f.pts
    assert stats["copies"] == {"engine": 0, "cow": 0, "io": 0}
    return [e.value for e in events]


def sine(seconds=3.0, freq=1000.0, amplitude=0.5, phase=0.3):
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)


def clean_program(seconds=3.0):
    """Clean, varied audio: two tones, a little noise, a slow level change."""
    t = np.arange(int(seconds * RATE)) / RATE
    rng = np.random.default_rng(7)
    x = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 1234.5 * t)) \
        * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t)) + 1e-3 * rng.standard_normal(t.size)
    return x.astype(np.float32)


CLEAN = {
    "program": clean_program,
    "full-scale sine": lambda: sine(amplitude=1.0, phase=0.0),   # touches +-1.0 exactly
    "440 Hz sine": lambda: sine(freq=440.0),
    "loud 20 Hz bass": lambda: sine(freq=20.0, amplitude=0.9),
}


@pytest.mark.parametrize("node_type", ["ClippingDetector", "SilenceDetector", "DCOffset"])
@pytest.mark.parametrize("signal", list(CLEAN))
def test_quiet_on_clean_audio(node_type, signal):
    assert run(node_type, CLEAN[signal]()) == []


def test_every_node_has_a_trigger_that_fires():
    """The quiet test above could pass with nodes that never speak: check each one can."""
    clipped = np.clip(sine(amplitude=2.0), -1.0, 1.0)
    assert run("ClippingDetector", clipped)
    gapped = sine().copy()
    gapped[50000:50960] = 0.0
    assert run("SilenceDetector", gapped)
    assert run("DCOffset", sine() + np.float32(0.05))


# -- ClippingDetector ------------------------------------------------------------------------------

def expected_clipped(x, level, min_run):
    """Clipped samples counted independently: runs of |x| >= level of min_run or more."""
    mask = np.abs(x.astype(np.float64)) >= level
    count, runs, run = 0, 0, 0
    for m in np.append(mask, False):
        if m:
            run += 1
        else:
            if run >= min_run:
                count += run
                runs += 1
            run = 0
    return count, runs


def test_clipping_counts_every_clipped_sample_once():
    x = np.clip(sine(amplitude=1.5), -1.0, 1.0)
    events = run("ClippingDetector", x)
    count, runs = expected_clipped(x, 10 ** (-0.01 / 20), 3)
    assert count > 0
    assert all(e["type"] == "clipping" and e["node"] == "mon" for e in events)
    assert sum(e["samples"] for e in events) == count
    assert sum(e["runs"] for e in events) == runs
    assert events[0]["peak_dbfs"] == 0.0
    first = int(np.flatnonzero(np.abs(x) >= 10 ** (-0.01 / 20))[0])
    assert events[0]["pts"] == first


def test_clipping_run_across_a_frame_boundary_counts_once():
    x = np.zeros(3 * BLOCK, np.float32)
    x[BLOCK - 2:BLOCK + 3] = 1.0                 # 5 samples at the rail, split 2 + 3
    x[2 * BLOCK - 1:2 * BLOCK + 1] = -1.0        # 2 samples: below min_run, not clipping
    events = run("ClippingDetector", x)
    assert [(e["pts"], e["samples"], e["runs"]) for e in events] == [(BLOCK - 2, 5, 1)]


def test_clipping_in_int16_including_the_negative_rail():
    x = np.clip(np.round(sine(amplitude=1.5).astype(np.float64) * 32768), -32768, 32767) \
        .astype(np.int16)
    events = run("ClippingDetector", x)
    count, runs = expected_clipped(x.astype(np.float64) / 32768, 10 ** (-0.01 / 20), 3)
    assert sum(e["samples"] for e in events) == count and count > 0
    neg_only = np.where(x < 0, x, 0).astype(np.int16)
    assert sum(e["samples"] for e in run("ClippingDetector", neg_only)) == \
        expected_clipped(neg_only.astype(np.float64) / 32768, 10 ** (-0.01 / 20), 3)[0]


def test_clipping_stereo_reports_either_channel():
    left = sine()
    right = np.clip(sine(amplitude=3.0), -1.0, 1.0)
    stereo = np.stack([left, right], axis=1)
    events = run("ClippingDetector", stereo, channels=2)
    assert sum(e["samples"] for e in events) == expected_clipped(right, 10 ** (-0.01 / 20), 3)[0]


# -- SilenceDetector -------------------------------------------------------------------------------

def test_dropout_inside_a_frame_and_across_frames_is_reported_with_its_position():
    x = sine().copy()
    x[10000:10480] = 0.0                          # 10 ms, inside frame 10
    x[30500:31500] = 0.0                          # 1000 samples across a frame boundary
    events = run("SilenceDetector", x)
    assert [(e["type"], e["pts"], e["samples"]) for e in events] == [
        ("dropout", 10000, 480), ("dropout", 30500, 1000)]
    assert events[0]["duration_ms"] == 10.0


def test_dropout_of_whole_frames_in_int16():
    x = np.round(sine() * 32767).astype(np.int16)
    x[4 * BLOCK:6 * BLOCK] = 0                    # two frames lost, as an underrun writes them
    events = run("SilenceDetector", x)
    assert [(e["type"], e["pts"], e["samples"]) for e in events] == [("dropout", 4 * BLOCK,
                                                                      2 * BLOCK)]


def test_short_zero_runs_and_leading_silence_are_not_dropouts():
    x = sine().copy()
    x[:4800] = 0.0                                 # the stream starts silent: not a dropout
    x[20000:20050] = 0.0                           # ~1 ms: under dropout_ms
    assert run("SilenceDetector", x) == []
    assert [e["pts"] for e in run("SilenceDetector", x, {"dropout_ms": 0.5})] == [20000]


def test_sustained_silence_is_reported_once_with_its_start_and_end():
    x = np.concatenate([sine(1.0), np.zeros(3 * RATE, np.float32), sine(1.0)])
    events = run("SilenceDetector", x, {"silence_ms": 2000})
    assert [(e["type"], e["pts"]) for e in events] == [("silence_start", RATE),
                                                      ("silence_end", 4 * RATE)]
    assert events[1]["duration_s"] == 3.0
    # Shorter than silence_ms: a long dropout instead, never both.
    short = np.concatenate([sine(1.0), np.zeros(RATE, np.float32), sine(1.0)])
    events = run("SilenceDetector", short, {"silence_ms": 2000})
    assert [(e["type"], e["pts"], e["samples"]) for e in events] == [("dropout", RATE, RATE)]


def test_quiet_but_live_signal_is_silence_not_dropout_and_end_of_stream_closes_it():
    quiet = (1e-4 * np.random.default_rng(9).standard_normal(3 * RATE)).astype(np.float32)
    x = np.concatenate([sine(1.0), quiet])
    events = run("SilenceDetector", x, {"silence_ms": 1000})
    assert [(e["type"], e["pts"]) for e in events] == [("silence_start", RATE),
                                                      ("silence_end", 4 * RATE)]


# -- DCOffset --------------------------------------------------------------------------------------

def test_dc_offset_is_reported_and_cleared():
    x = np.concatenate([sine(1.0), sine(2.0) + np.float32(0.05), sine(3.0)])
    events = run("DCOffset", x)
    assert [e["type"] for e in events] == ["dc_offset", "dc_offset_cleared"]
    on, off = events
    # Two 500 ms stages: an offset 5x the threshold is seen in about 0.4 s, and its end once
    # the average falls to half the threshold, about 2 s later.
    assert RATE < on["pts"] < RATE + int(0.6 * RATE)
    assert 0.01 <= on["offset"] <= 0.05
    assert 3 * RATE < off["pts"] < 3 * RATE + int(2.5 * RATE)
    assert on["offset_dbfs"] == pytest.approx(20 * np.log10(on["offset"]), abs=0.01)


def test_dc_offset_negative_int16_and_per_channel():
    x = (np.round(sine() * 16000) - 1000).astype(np.int16)     # -1000 / 32768 = -30 dBFS
    events = run("DCOffset", x)
    assert [e["type"] for e in events] == ["dc_offset"] and events[0]["offset"] < 0
    stereo = np.stack([sine(), sine() + np.float32(0.03)], axis=1)
    events = run("DCOffset", stereo, channels=2)
    assert [(e["type"], e["channel"]) for e in events] == [("dc_offset", 1)]


def test_dc_threshold_is_a_parameter():
    x = sine() + np.float32(0.005)                 # -46 dBFS of offset
    assert run("DCOffset", x) == []
    assert [e["type"] for e in run("DCOffset", x, {"threshold_dbfs": -50})] == ["dc_offset"]


def test_run_finder_matches_a_plain_loop():
    from remotemedia.nodes.health import _runs
    rng = np.random.default_rng(11)
    masks = [np.ones(5, bool), np.zeros(5, bool), np.array([True]), np.array([False])]
    masks += [rng.random(int(rng.integers(1, 60))) < rng.random() for _ in range(300)]
    for mask in masks:
        expected, start = [], None
        for i, m in enumerate(list(mask) + [False]):
            if m and start is None:
                start = i
            elif not m and start is not None:
                expected.append((start, i))
                start = None
        starts, ends = _runs(mask)
        assert list(zip(starts.tolist(), ends.tolist())) == expected
