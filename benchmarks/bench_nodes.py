"""Per-frame cost of the voice and health nodes, and of manifests/voice.yaml, on 960-sample frames.

Each node runs alone in a one-node session (input -> node -> output), so a row is what the node
costs inside the engine; the PassThrough row is the engine's own share, measured in the same run,
and every row is also given as a ratio to it (absolute times drift between runs on shared
machines). "% RT" is the mean cost over the audio duration of one frame at that node's rate.
The signal is speech (tests/data, made with espeak-ng) with pauses, resampled as each node needs.

    .venv/bin/python benchmarks/bench_nodes.py [--frames N] [--json]

Measures and prints; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import remotemedia as rm  # noqa: E402
from remotemedia.engine.data import NumpyData  # noqa: E402
from remotemedia.nodes import vad as vad_module  # noqa: E402

BLOCK = 960


def speech_program(rate: int, seconds: float) -> np.ndarray:
    """Speech with pauses at `rate`, float32, looped to `seconds`."""
    pieces = []
    for name in ("fox", "voice"):
        path = ROOT / "tests" / "data" / f"speech_{name}_16k.wav"
        x, sr = sf.read(path, dtype="float32")
        pieces += [x, np.zeros(sr // 2, np.float32)]
    one = np.concatenate(pieces)
    one = soxr.resample(one, 16000, rate, "VHQ") if rate != 16000 else one
    reps = int(np.ceil(seconds * rate / one.shape[0]))
    return np.tile(one, reps)[: int(seconds * rate)].astype(np.float32)


def one_node(node_type: str, params: dict | None, rate: int) -> dict:
    return {"version": "v1", "audio": {"sample_rate": rate, "channels": 1, "block_size": BLOCK},
            "nodes": [{"id": "n", "node_type": node_type, "params": params or {}}],
            "connections": [{"from": "input", "to": "n"}, {"from": "n", "to": "output"}]}


def time_pushes(manifest, signal: np.ndarray, rate: int, frames: int, warmup: int = 50):
    """Per-push wall time in microseconds for `frames` frames after a warm-up."""
    blocks = signal.shape[0] // BLOCK
    times = np.empty(frames, dtype=np.float64)
    with rm.Pipeline.from_manifest(manifest).session() as s:
        push = s.push
        for i in range(warmup):
            j = i % blocks
            push(NumpyData(signal[j * BLOCK:(j + 1) * BLOCK], sample_rate=rate, pts=j * BLOCK))
        gc.collect()
        gc.disable()
        try:
            for i in range(frames):
                j = (warmup + i) % blocks
                frame = NumpyData(signal[j * BLOCK:(j + 1) * BLOCK], sample_rate=rate,
                                  pts=(warmup + i) * BLOCK)
                t0 = time.perf_counter_ns()
                push(frame)
                times[i] = (time.perf_counter_ns() - t0) / 1000.0
        finally:
            gc.enable()
        stats = s.stats()
    return times, stats


def row(name: str, rate: int, times: np.ndarray, baseline_p50: float | None, stats: dict):
    frame_us = BLOCK / rate * 1e6
    mean = float(times.mean())
    return {
        "name": name, "rate": rate, "frame_ms": round(frame_us / 1000, 1),
        "p50_us": round(float(np.percentile(times, 50)), 2),
        "p99_us": round(float(np.percentile(times, 99)), 2),
        "mean_us": round(mean, 2),
        "x_baseline": None if not baseline_p50 else round(float(np.percentile(times, 50))
                                                          / baseline_p50, 1),
        "pct_realtime": round(100.0 * mean / frame_us, 3),
        "copies": stats["copies"]["engine"] + stats["copies"]["cow"],
    }


def cases(model_ok: bool):
    yield "PassThrough (engine baseline)", "PassThrough", None, 48000
    yield "Resample 48k->16k HQ", "Resample", {"rate": 16000}, 48000
    yield "Resample 48k->16k QQ", "Resample", {"rate": 16000, "quality": "QQ"}, 48000
    yield "Resample 48k->16k VHQ", "Resample", {"rate": 16000, "quality": "VHQ"}, 48000
    yield "Resample 16k->48k HQ", "Resample", {"rate": 48000}, 16000
    yield "Resample 48k->44.1k HQ", "Resample", {"rate": 44100}, 48000
    if model_ok:
        yield "VAD (Silero ONNX) @16k", "VAD", None, 16000
    yield "EnergyVAD @48k", "EnergyVAD", None, 48000
    yield "FormatConvert f32->int16", "FormatConvert", {"dtype": "int16"}, 48000
    yield "FormatConvert f32->int32", "FormatConvert", {"dtype": "int32"}, 48000
    yield "FormatConvert int16->f32", "FormatConvert", {"dtype": "float32"}, "int16"
    yield "ClippingDetector", "ClippingDetector", None, 48000
    yield "ClippingDetector (clipping)", "ClippingDetector", None, "clipped"
    yield "SilenceDetector", "SilenceDetector", None, 48000
    yield "DCOffset", "DCOffset", None, 48000
    yield "LevelMeter (reference)", "LevelMeter", None, 48000


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=2000, help="timed frames per row")
    ap.add_argument("--json", action="store_true", help="also print the rows as one JSON line")
    args = ap.parse_args(argv)

    try:
        vad_module.load_silero_session()
        model_ok, model_note = True, ""
    except vad_module.ModelUnavailable as exc:
        model_ok, model_note = False, f"VAD row skipped: {exc}"

    signals = {rate: speech_program(rate, 30.0) for rate in (48000, 16000)}
    signals["int16"] = np.round(signals[48000] * 32767).astype(np.int16)
    signals["clipped"] = np.clip(signals[48000] * 8.0, -1.0, 1.0)

    rows, baseline = [], None
    for name, node_type, params, key in cases(model_ok):
        rate = key if isinstance(key, int) else 48000
        times, stats = time_pushes(one_node(node_type, params, rate), signals[key], rate,
                                   args.frames)
        r = row(name, rate, times, baseline, stats)
        if baseline is None:
            baseline = r["p50_us"]
            r["x_baseline"] = 1.0
        rows.append(r)

    voice_rows = []
    if model_ok:
        times, stats = time_pushes(str(ROOT / "manifests" / "voice.yaml"), signals[48000],
                                   48000, args.frames)
        v = row("voice.yaml (meter + Resample + VAD)", 48000, times, baseline, stats)
        v["nodes_p50_us"] = {k: n["latency_us"]["p50"] for k, n in stats["nodes"].items()}
        voice_rows.append(v)

    head = (f"{'node (960-sample frames)':34} {'rate':>6} {'frame':>7} {'p50 us':>9} "
            f"{'p99 us':>9} {'mean us':>9} {'x base':>7} {'% RT':>8} {'copies':>6}")
    print(head)
    print("-" * len(head))
    for r in rows + voice_rows:
        print(f"{r['name']:34} {r['rate']:>6} {r['frame_ms']:>5}ms {r['p50_us']:>9.2f} "
              f"{r['p99_us']:>9.2f} {r['mean_us']:>9.2f} {r['x_baseline']:>7.1f} "
              f"{r['pct_realtime']:>7.3f}% {r['copies']:>6}")
    for v in voice_rows:
        print(f"\nvoice.yaml per 20 ms frame: mean {v['mean_us']:.1f} us = "
              f"{v['pct_realtime'] / 100:.4f} of real time (p99 {v['p99_us']:.1f} us); "
              f"node p50s {v['nodes_p50_us']}")
    if model_note:
        print(f"\n{model_note}")
    print(f"\n{args.frames} timed frames per row; 'x base' is p50 over the PassThrough p50 of "
          f"this run; '% RT' is mean cost over one frame's audio duration at that rate.")
    if args.json:
        print(json.dumps({"frames": args.frames, "rows": rows, "voice": voice_rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
