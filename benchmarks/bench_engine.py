"""Engine overhead: frames through N PassThrough or Gain nodes, against baselines measured in the
same run (a bare function-call chain and an asyncio.Queue per stage).

    .venv/bin/python benchmarks/bench_engine.py            # full run (~1 min)
    .venv/bin/python benchmarks/bench_engine.py --quick    # fewer frames
    .venv/bin/python benchmarks/bench_engine.py --frames 300   # a smoke run (tests do this)

Prints per-frame latency p50/p99 (one frame at a time), burst throughput (frames/s), and ratios.
Counters are on, as in every session. Nothing here asserts a time: these machines are shared.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time

import numpy as np

import remotemedia as rm

now = time.perf_counter_ns


def chain_manifest(node_type: str, n: int) -> dict:
    params = {"db": -0.5} if node_type == "Gain" else {}
    nodes = [{"id": f"n{i}", "node_type": node_type, "params": params} for i in range(n)]
    ids = ["input"] + [f"n{i}" for i in range(n)] + ["output"]
    conns = [{"from": a, "to": b} for a, b in zip(ids, ids[1:])]
    return {"version": "v1", "nodes": nodes, "connections": conns}


def percentiles(samples_ns: list[int]) -> tuple[float, float]:
    a = np.asarray(samples_ns) / 1e3
    return float(np.percentile(a, 50)), float(np.percentile(a, 99))


def bench_engine(node_type: str, n: int, frames: int, samples: int = 960,
                 transfer: bool = False) -> dict:
    pipeline = rm.Pipeline.from_manifest(chain_manifest(node_type, n))
    frame = np.zeros(samples, np.float32)
    with pipeline.session() as session:
        push = session.push
        for _ in range(200):
            push(frame)
        lat = []
        gc.disable()
        for _ in range(frames):
            if transfer:
                frame = np.zeros(samples, np.float32)
            t0 = now()
            push(frame, transfer=transfer)
            lat.append(now() - t0)
        t0 = now()
        for _ in range(frames):
            push(frame)
        burst = frames / ((now() - t0) / 1e9)
        gc.enable()
        stats = session.stats()
    p50, p99 = percentiles(lat)
    assert stats["serialization_events"] == 0 and stats["copies"]["engine"] == 0
    return {"p50": p50, "p99": p99, "fps": burst, "cow": stats["copies"]["cow"]}


def bench_bare(n: int, frames: int, samples: int = 960) -> dict:
    def stage(x):
        return x
    stages = [stage] * n
    frame = np.zeros(samples, np.float32)

    def run(x):
        for s in stages:
            x = s(x)
        return [x]
    lat = []
    for _ in range(frames):
        t0 = now()
        run(frame)
        lat.append(now() - t0)
    t0 = now()
    for _ in range(frames):
        run(frame)
    burst = frames / ((now() - t0) / 1e9)
    p50, p99 = percentiles(lat)
    return {"p50": p50, "p99": p99, "fps": burst}


def bench_asyncio(n: int, frames: int, samples: int = 960) -> dict:
    async def main():
        queues = [asyncio.Queue() for _ in range(n + 1)]

        async def stage(qin, qout):
            while True:
                x = await qin.get()
                await qout.put(x)
        tasks = [asyncio.create_task(stage(queues[i], queues[i + 1])) for i in range(n)]
        frame = np.zeros(samples, np.float32)
        lat = []
        for _ in range(frames):
            t0 = now()
            await queues[0].put(frame)
            await queues[-1].get()
            lat.append(now() - t0)
        t0 = now()
        for _ in range(frames):
            await queues[0].put(frame)
        for _ in range(frames):
            await queues[-1].get()
        burst = frames / ((now() - t0) / 1e9)
        for t in tasks:
            t.cancel()
        p50, p99 = percentiles(lat)
        return {"p50": p50, "p99": p99, "fps": burst}
    return asyncio.run(main())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="5000 frames per case")
    ap.add_argument("--frames", type=int, help="frames per case (default 30000)")
    args = ap.parse_args()
    frames = args.frames or (5000 if args.quick else 30000)
    rows = []
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, {frames} frames per case")
    print(f"{'case':32} {'p50 us':>8} {'p99 us':>8} {'frames/s':>11}")

    def show(name, r):
        rows.append((name, r))
        print(f"{name:32} {r['p50']:8.2f} {r['p99']:8.2f} {r['fps']:11.0f}")

    results = {}
    for n in (1, 5, 20):
        results[("bare", n)] = bare = bench_bare(n, frames)
        show(f"bare calls N={n}", bare)
        results[("async", n)] = aq = bench_asyncio(n, frames // 5)
        show(f"asyncio.Queue per stage N={n}", aq)
        for node_type in ("PassThrough", "Gain"):
            results[(node_type, n)] = r = bench_engine(node_type, n, frames)
            show(f"engine {node_type} N={n}", r)
    big = bench_engine("PassThrough", 1, frames, samples=96000)
    small = results[("PassThrough", 1)]
    show("engine PassThrough N=1 96000-smp", big)
    owned = bench_engine("Gain", 5, frames, transfer=True)
    show("engine Gain N=5 transferred", owned)

    print("\nratios (same run)")
    for n in (1, 5, 20):
        pt = results[("PassThrough", n)]
        print(f"  N={n:2}: engine/bare p50 {pt['p50'] / results[('bare', n)]['p50']:.1f}x; "
              f"asyncio/engine p50 {results[('async', n)]['p50'] / pt['p50']:.1f}x, "
              f"burst {pt['fps'] / results[('async', n)]['fps']:.1f}x")
    print(f"  96000 vs 960 samples (PassThrough N=1) p50: {big['p50'] / small['p50']:.2f}x")
    print(f"  Gain N=5 cow copies: pushed {results[('Gain', 5)]['cow']}, "
          f"transferred {owned['cow']} (in place)")
    print("\ntargets: N=5 PassThrough p50 <= 3 us and >= 8x faster than asyncio; "
          "N=20 <= 8 us; 96000-sample frames within 1.3x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
