"""What signal integrity costs on clean audio: the meters' non-finite handling and the output
boundary's repair check, per 960-sample float32 block, against the code without them, measured
in the same run (absolute times drift between runs on these shared machines).

Rows (each the median of several rounds of N calls, in microseconds per block):

    meter, before        RMS and peak the old way (dot product, max, min): no NaN handling
    meter, now           engine.levels.measure: the same plus a finiteness check of the sum
    boundary, before     nothing (the sink wrote what it was given)
    boundary float, now  engine.levels.repair_for_output for a float sink (one dot product)
    boundary clip, now   the same for a clipping sink: integer/companded files, devices (max, min)
    sink FLOAT, before   soundfile writing the block to a WAV in memory, unchecked
    sink FLOAT, now      WavSink.repair() then the same write
    LevelMeter node      a one-node session with LevelMeter, vs PassThrough in the same run

    .venv/bin/python benchmarks/bench_integrity.py [--calls N] [--rounds R] [--json]

Measures and prints; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import remotemedia as rm  # noqa: E402
from remotemedia.engine.levels import measure, repair_for_output  # noqa: E402
from remotemedia.engine.node import AudioFormat  # noqa: E402
from remotemedia.io.base import Sink  # noqa: E402

BLOCK = 960


def old_rms_and_peak(array):
    """The meter before this change (nodes/analysis.py at 46f3152), float fast path."""
    peak = float(max(array.max(), -array.min()))
    return math.sqrt(float(np.dot(array, array)) / array.size), peak


def per_call_us(fn, arg, calls: int, rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn(arg)
        samples.append((time.perf_counter() - t0) / calls * 1e6)
    return statistics.median(samples)


def session_us(node_type: str, block, calls: int, rounds: int) -> float:
    manifest = {"version": "v1", "audio": {"sample_rate": 48000, "channels": 1,
                                          "block_size": BLOCK},
                "nodes": [{"id": "n", "node_type": node_type}],
                "connections": [{"from": "input", "to": "n"}, {"from": "n", "to": "output"}]}
    with rm.Pipeline.from_manifest(manifest).session() as s:
        return per_call_us(s.push, block, calls, rounds)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    t = np.arange(BLOCK) / 48000
    block = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    n, r = args.calls, args.rounds

    sink = Sink(AudioFormat(48000, 1, BLOCK))
    sink.clips_to_full_scale = False

    def write_us(checked: bool) -> float:
        # A fresh in-memory file each round, the two variants interleaved, so neither pays
        # for a buffer the other grew.
        samples = []
        for _ in range(r):
            wav = sf.SoundFile(io.BytesIO(), "w", samplerate=48000, channels=1,
                               subtype="FLOAT", format="WAV")
            write = wav.write
            repair = sink.repair
            t0 = time.perf_counter()
            if checked:
                for _ in range(n // 4):
                    write(repair(block))
            else:
                for _ in range(n // 4):
                    write(block)
            samples.append((time.perf_counter() - t0) / (n // 4) * 1e6)
            wav.close()
        return statistics.median(samples)

    rows = {
        "meter, before": per_call_us(old_rms_and_peak, block, n, r),
        "meter, now": per_call_us(measure, block, n, r),
        "boundary, before": per_call_us(lambda x: x, block, n, r),
        "boundary float, now": per_call_us(lambda x: repair_for_output(x, False), block, n, r),
        "boundary clip, now": per_call_us(lambda x: repair_for_output(x, True), block, n, r),
        "sink FLOAT, before": write_us(False),
        "sink FLOAT, now": write_us(True),
        "PassThrough node": session_us("PassThrough", block, n // 2, r),
        "LevelMeter node": session_us("LevelMeter", block, n // 2, r),
    }
    ratios = {
        "meter now/before": rows["meter, now"] / rows["meter, before"],
        "float check added (us)": rows["boundary float, now"] - rows["boundary, before"],
        "clip check added (us)": rows["boundary clip, now"] - rows["boundary, before"],
        "sink FLOAT now/before": rows["sink FLOAT, now"] / rows["sink FLOAT, before"],
        "LevelMeter/PassThrough": rows["LevelMeter node"] / rows["PassThrough node"],
    }
    if args.json:
        print(json.dumps({"us_per_block": rows, "ratios": ratios}))
        return
    print(f"per 960-sample float32 block, clean audio; median of {r} rounds")
    for name, us in rows.items():
        print(f"  {name:22s} {us:8.3f} us")
    for name, value in ratios.items():
        print(f"  {name:26s} {value:8.3f}")


if __name__ == "__main__":
    main()
