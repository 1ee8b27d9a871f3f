"""The upstream's full stream-health chain on 16 kHz mono: per-block cost, real-time factor on
one core, and how many such streams one core carries.

The chain (UPSTREAM.md Part B §3, full_stream_health): AudioLevelNode, SilenceDetectorNode,
ClippingDetectorNode, ChannelBalanceNode, SpeechPresenceNode and TimingDriftNode take every block;
their events feed SessionHealthNode, EventCorrelatorNode and HealthEmitterNode. It runs in the
upstream shape (connections never name input or output) in 4000-sample blocks (250 ms, the
upstream's chunk) and, for comparison, in 320-sample (20 ms) blocks.

Baselines measured in the same run, on the same blocks: the engine alone (one PassThrough), and
LevelMeter, the native meter whose RMS/peak code the analyzers share. Each row is also a ratio
to the PassThrough row (absolute times drift between runs on these shared machines).

Time is simulated: blocks are pushed back to back, each stamped with its arrival on a simulated
clock (its media time), as the runner does for files. The process is pinned to one CPU and CPU
time (time.process_time) is what is counted, so "streams per core" = audio seconds per CPU
second: how many real-time 16 kHz streams one core could analyse.

    .venv/bin/python benchmarks/bench_health.py [--seconds S] [--json]

Measures and prints; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import remotemedia as rm  # noqa: E402
from remotemedia.engine.data import NumpyData  # noqa: E402

RATE = 16000

CHAIN = {
    "version": "1.0",
    "metadata": {"name": "stream-health chain", "cli_defaults": {"sample_rate": RATE,
                                                                 "channels": 1}},
    "nodes": [
        {"id": "audio_level", "node_type": "AudioLevelNode"},
        {"id": "silence", "node_type": "SilenceDetectorNode"},
        {"id": "clipping", "node_type": "ClippingDetectorNode"},
        {"id": "balance", "node_type": "ChannelBalanceNode"},
        {"id": "speech", "node_type": "SpeechPresenceNode"},
        {"id": "timing", "node_type": "TimingDriftNode"},
        {"id": "session", "node_type": "SessionHealthNode"},
        {"id": "correlator", "node_type": "EventCorrelatorNode"},
        {"id": "health", "node_type": "HealthEmitterNode"},
    ],
    "connections": [{"from": a, "to": b}
                    for a in ("audio_level", "silence", "clipping", "balance", "speech",
                              "timing")
                    for b in ("session", "correlator")]
                   + [{"from": a, "to": "health"}
                      for a in ("audio_level", "silence", "clipping", "balance", "session")],
}


def native(node_type: str) -> dict:
    return {"version": "v1", "audio": {"sample_rate": RATE, "channels": 1},
            "nodes": [{"id": "n", "node_type": node_type}],
            "connections": [{"from": "input", "to": "n"}, {"from": "n", "to": "output"}]}


def program(seconds: float) -> np.ndarray:
    """Speech with pauses (tests/data, espeak-ng), a 2 s silence, a clipped burst, looped."""
    pieces = []
    for name in ("fox", "voice"):
        x, sr = sf.read(ROOT / "tests" / "data" / f"speech_{name}_16k.wav", dtype="float32")
        assert sr == RATE
        pieces += [x, np.zeros(RATE // 2, np.float32)]
    t = np.arange(RATE) / RATE
    pieces += [np.zeros(2 * RATE, np.float32),
               np.clip(1.5 * np.sin(2 * np.pi * 440 * t), -1, 1).astype(np.float32)]
    one = np.concatenate(pieces)
    reps = int(np.ceil(seconds * RATE / one.shape[0]))
    return np.tile(one, reps)[: int(seconds * RATE)]


def measure(manifest: dict, signal: np.ndarray, block: int, stamp: bool) -> dict:
    """CPU time per block over the whole signal, and what came out."""
    m = rm.load_manifest(manifest, audio_overrides={"block_size": block})
    blocks = [signal[i:i + block] for i in range(0, signal.shape[0] - block + 1, block)]
    frames = []
    for n, b in enumerate(blocks):
        pts = n * block
        meta = {"arrival_us": pts * 1_000_000 // RATE} if stamp else None
        frames.append(NumpyData(b, sample_rate=RATE, pts=pts, metadata=meta))
    events = 0
    with rm.Pipeline(m).session() as s:
        push = s.push
        for f in frames[:20]:                      # warm-up: first-call costs, caches
            push(f)
        s.reset_stats()
    with rm.Pipeline(m).session() as s:
        push = s.push
        gc.collect()
        gc.disable()
        try:
            c0, w0 = time.process_time(), time.perf_counter()
            for f in frames:
                events += len(push(f))
            events += len(s.end_of_stream()) - 1
            cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        finally:
            gc.enable()
        stats = s.stats()
    audio_s = len(frames) * block / RATE
    return {"blocks": len(frames), "block": block, "audio_s": round(audio_s, 3),
            "cpu_s": round(cpu, 4), "wall_s": round(wall, 4),
            "per_block_us": round(cpu / len(frames) * 1e6, 2),
            "realtime_factor": round(audio_s / cpu, 1) if cpu > 0 else float("inf"),
            "engine_p50_us": stats["latency_us"]["engine"]["p50"],
            "engine_p99_us": stats["latency_us"]["engine"]["p99"],
            "events": events, "errors": stats["errors"],
            "nodes_p50_us": {k: v["latency_us"]["p50"] for k, v in stats["nodes"].items()}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=600.0, help="audio per case (simulated)")
    ap.add_argument("--json", action="store_true", help="also print the rows as one JSON line")
    args = ap.parse_args(argv)
    pinned = None
    if hasattr(os, "sched_setaffinity"):
        cpu = sorted(os.sched_getaffinity(0))[0]
        os.sched_setaffinity(0, {cpu})
        pinned = cpu
    signal = program(args.seconds)
    rows = []
    for block in (4000, 320):
        base = measure(native("PassThrough"), signal, block, stamp=False)
        meter = measure(native("LevelMeter"), signal, block, stamp=False)
        chain = measure(CHAIN, signal, block, stamp=True)
        for name, r in (("PassThrough (engine only)", base), ("LevelMeter (native)", meter),
                        ("stream-health chain (9 nodes)", chain)):
            r["case"] = name
            r["vs_passthrough"] = round(r["per_block_us"] / base["per_block_us"], 1)
            rows.append(r)
    print(f"stream-health chain on {args.seconds:g} s of 16 kHz mono (speech, silence, "
          f"clipping), simulated time, CPU {pinned if pinned is not None else '?'} only")
    print(f"{'case':32} {'block':>6} {'per block us':>13} {'x PassThrough':>14} "
          f"{'RT factor':>10} {'streams/core':>13} {'outputs':>8}")
    for r in rows:
        print(f"{r['case']:32} {r['block']:>6} {r['per_block_us']:>13.2f} "
              f"{r['vs_passthrough']:>14.1f} {r['realtime_factor']:>10.1f} "
              f"{int(r['realtime_factor']):>13d} {r['events']:>8d}")
    print("per node in the chain, 4000-sample blocks (p50 us): " + ", ".join(
        f"{k} {v}" for k, v in rows[2]["nodes_p50_us"].items()))
    for block in (4000, 320):
        chain = next(r for r in rows if r["block"] == block and r["case"].startswith("stream"))
        print(f"chain, {block}-sample blocks: {chain['per_block_us']:.1f} us a block "
              f"({block / RATE * 1000:g} ms of audio), {chain['realtime_factor']:.0f}x real "
              f"time on one core, about {int(chain['realtime_factor'])} streams per core")
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
