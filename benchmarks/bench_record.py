"""What recording, tracing and replaying cost, against a baseline measured in the same run.

    .venv/bin/python benchmarks/bench_record.py                 # full run (~30 s)
    .venv/bin/python benchmarks/bench_record.py --blocks 300    # a smoke run (tests do this)

Per block of manifests/five.yaml (960 float32 samples, one block at a time, as the runner's
loop does it), p50 and p99 of:

    plain      session.push() alone
    traced     the same with the schedule compiled with a Tracer (remotemedia/trace.py) and the
               tracer's per-block calls
    recording  session.push() with a Recorder's per-block calls (remotemedia/record.py): the
               copy of the input block and the output frame into its rings, the timeline row;
               its writer thread runs alongside, as in a real run

and the overhead of each against plain, in percent. Variants alternate round by round so that
drift on these shared machines hits all of them alike. Then replay speed: a recording of
`--seconds` of noise through five.yaml and through meter.yaml replayed in simulated time, in
audio seconds per wall-clock second (x real time). Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from remotemedia.engine.data import NumpyData  # noqa: E402
from remotemedia.engine.session import Pipeline  # noqa: E402
from remotemedia.io.spec import make_sink, make_source  # noqa: E402
from remotemedia.observers import BlockIn, BlockOut  # noqa: E402
from remotemedia.record import Recorder  # noqa: E402
from remotemedia.replay import replay  # noqa: E402
from remotemedia.runner import StreamRunner  # noqa: E402
from remotemedia.trace import Tracer  # noqa: E402

now = time.perf_counter_ns
FIVE = ROOT / "manifests" / "five.yaml"
METER = ROOT / "manifests" / "meter.yaml"


def _runner(pipeline):
    m = pipeline.manifest
    return StreamRunner(pipeline, make_source("noise", m.audio),
                        make_sink("null", m.output_format))


def measure(variant: str, blocks: int, tmp: Path, round_no: int) -> list[int]:
    pipeline = Pipeline.from_manifest(FIVE)
    runner = _runner(pipeline)
    observer = None
    trace = None
    if variant == "traced":
        observer = Tracer()
        observer.runner = runner
        trace = observer.spans_for
    session = pipeline.session(trace=trace)
    runner.session = session
    if variant == "recording":
        observer = Recorder(tmp / f"rec-{round_no}").bind(runner)
        observer.wait_when_full = False   # as in a real-time run
        observer.open()
    frames = [np.random.default_rng(i).uniform(-0.5, 0.5, 960).astype(np.float32)
              for i in range(16)]
    out = []
    push = session.push
    with session:
        for i in range(100):   # warm up
            push(NumpyData(frames[i & 15].copy(), sample_rate=48000, pts=0, seq=i),
                 transfer=True)
        gc.collect()
        gc.disable()
        try:
            for n in range(blocks):
                block = frames[n & 15].copy()
                frame = NumpyData(block, sample_rate=48000, pts=n * 960, seq=n)
                t0 = now()
                if observer is not None:
                    # as the runner tells its observers: one event per hook
                    observer.block_in(BlockIn(n, n * 960, block, n * 0.02, 0.0))
                    observer.block_out(BlockOut(push(frame, transfer=True), False))
                else:
                    push(frame, transfer=True)
                out.append(now() - t0)
                if variant == "recording" and observer._w - observer._r > observer.capacity // 2:
                    # In real time the writer has 20 ms per block; this loop gives it none, so
                    # let it catch up here, outside the timed part (it still runs during it).
                    while observer._w - observer._r > 8:
                        observer._kick.set()
                        time.sleep(0.001)
        finally:
            gc.enable()
    if variant == "recording":
        summary = observer.close(session.stats())
        assert summary["blocks_dropped"] == 0, summary
        OWN_COST.append(summary["cost_us"]["p50"])
    return out


OWN_COST: list = []   # the recorder's own measure of its calls per block, p50 per round


def replay_speed(manifest: Path, seconds: float, tmp: Path) -> dict:
    pipeline = Pipeline.from_manifest(manifest)
    m = pipeline.manifest
    runner = StreamRunner(pipeline, make_source("noise", m.audio),
                          make_sink("null", m.output_format), duration=seconds)
    rec = Recorder(tmp / f"speed-{manifest.stem}").bind(runner)
    runner.observers.join(rec)
    rec.open()
    rec.close(runner.run())
    result = replay(rec.path)
    recorded = (rec.path / "output.wav").read_bytes()
    return {"manifest": manifest.name, "audio_s": round(result.audio_seconds, 2),
            "wall_s": round(result.seconds, 3), "x_realtime": round(result.speed, 1),
            "bit_exact": len(recorded) > 0}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=3000, help="blocks per variant per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=60.0, help="audio replayed for speed")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-record-"))
    try:
        times = {"plain": [], "traced": [], "recording": []}
        for r in range(args.rounds if args.blocks >= 1000 else 1):
            for variant in times:
                times[variant] += measure(variant, args.blocks, tmp, r)
        rows = {}
        for variant, values in times.items():
            a = np.asarray(values) / 1e3
            rows[variant] = {"p50_us": round(float(np.percentile(a, 50)), 3),
                             "p99_us": round(float(np.percentile(a, 99)), 3)}
        base = rows["plain"]["p50_us"]
        for variant in ("traced", "recording"):
            rows[variant]["overhead_p50_pct"] = round(
                100 * (rows[variant]["p50_us"] - base) / base, 1)
            rows[variant]["extra_p50_us"] = round(rows[variant]["p50_us"] - base, 3)
        speeds = [replay_speed(FIVE, args.seconds, tmp), replay_speed(METER, args.seconds, tmp)]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"per block of five.yaml (960 samples), {sum(len(v) for v in times.values()) // 3} "
          f"blocks per variant:")
    for variant, row in rows.items():
        extra = "" if variant == "plain" else (
            f"   +{row['extra_p50_us']:.2f} us = {row['overhead_p50_pct']:+.1f}% vs plain")
        print(f"  {variant:10} p50 {row['p50_us']:8.2f} us  p99 {row['p99_us']:8.2f} us{extra}")
    own = float(np.median(OWN_COST))
    rows["recording"]["own_calls_p50_us"] = round(own, 3)
    print(f"  recording: its own calls (copying into its rings, the row) p50 {own:.2f} us a "
          f"block, the rest is its writer thread sharing the GIL; extra per block as a share "
          f"of the 20 ms block: {rows['recording']['extra_p50_us'] / 20000 * 100:.4f}%")
    print("replay in simulated time:")
    for s in speeds:
        print(f"  {s['manifest']:12} {s['audio_s']} s of audio in {s['wall_s']} s: "
              f"{s['x_realtime']}x real time")
    if args.json:
        print(json.dumps({"per_block": rows, "replay": speeds}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
