"""Batch throughput on a local pool and on Ray, and the per-block round trip of a Ray node.

    .venv/bin/python benchmarks/bench_ray.py [--files 8] [--seconds 120] [--workers N]
                                             [--frames 2000] [--rounds 2] [--json]

Part 1, batch throughput: audio hours processed per wall-clock hour for manifests/monitor.yaml
(clipping, silence and dropout, DC offset detectors and a level reading once a second) over
`--files` generated WAVs of `--seconds` each, in simulated time:

- `in-process`: the baseline, one input after another in this process (one core, no workers).
- `pool`: `remotemedia.batch.run_batch` on a local process pool of `--workers` processes.
- `ray`: the same with each input a Ray task on the cluster `ray.init()` finds (the head that
  run_test.sh starts, `ray start --head --num-cpus 2`, or a new local one).

Part 2, per-block round trip: 960-sample float32 blocks one at a time through a PassThrough on
`executor: process` (iceoryx2 shared memory) and on `executor: ray` (an actor), beside the same
node inline, alternating for `--rounds` rounds. Timed around the whole `session.push`; the Ray
node's own `round_trip_us` from its stats is shown too. A 20 ms block leaves the budget for the
rest of the graph and the device; the last column says how much of it one hop takes.

Figures are ratios against the baseline of the same run: absolute times on these shared 2-core
machines drift from run to run (DESIGN.md).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from remotemedia import Pipeline, RuntimeData
from remotemedia.batch import run_batch, run_one
from remotemedia.engine.manifest import read_manifest_document

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.timing import push_times  # noqa: E402
MONITOR = ROOT / "manifests" / "monitor.yaml"
BLOCK_S = 0.020
WARMUP = 100


def make_inputs(folder: Path, files: int, seconds: float) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(files):
        x = (0.05 * rng.standard_normal(int(seconds * 48000))).astype(np.float32)
        x[48000 * (i % max(int(seconds), 1)):][:30] = 1.0     # one clipped spot each
        path = folder / f"call{i:03d}.wav"
        sf.write(path, x, 48000, subtype="FLOAT")
        paths.append(path)
    return paths


def batch_figures(paths: list[Path], workers: int, out: Path) -> dict:
    doc, name = read_manifest_document(str(MONITOR))
    audio_s = 0.0
    t0 = time.perf_counter()
    for path in paths:
        report = run_one(doc, name, str(path))["report"]
        assert report["status"] == "ok", report["reason"]
        audio_s += report["audio_s"]
    baseline_wall = time.perf_counter() - t0
    rows = {"in-process": {"audio_h": audio_s / 3600, "wall_s": baseline_wall,
                           "audio_h_per_wall_h": audio_s / baseline_wall}}
    pool = run_batch(str(MONITOR), [str(p) for p in paths], out / "pool", workers=workers,
                     progress=None)
    assert pool.exit_code == 0, pool.summary["failures"]
    rows["pool"] = _row(pool.summary, workers)
    try:
        from remotemedia.ray.cluster import connect
        t0 = time.perf_counter()
        ray = connect(os.environ.get("REMOTEMEDIA_RAY_ADDRESS") or None)
        connect_s = time.perf_counter() - t0
    except Exception as exc:   # no Ray here: the report says so instead of a figure
        rows["ray"] = {"skipped": str(exc)}
        return rows
    cpus = int(ray.cluster_resources().get("CPU", 0))
    result = run_batch(str(MONITOR), [str(p) for p in paths], out / "ray", use_ray=True,
                       progress=None)
    assert result.exit_code == 0, result.summary["failures"]
    rows["ray"] = _row(result.summary, cpus)
    rows["ray"]["connect_s"] = connect_s
    return rows


def _row(summary: dict, workers: int) -> dict:
    return {"audio_h": summary["audio_hours"], "wall_s": summary["wall_s"],
            "audio_h_per_wall_h": summary["audio_hours_per_wall_hour"], "workers": workers}


def _manifest(executor: str | None) -> dict:
    node = {"id": "hop", "node_type": "PassThrough"}
    if executor:
        node["executor"] = executor
    return {"version": "v1", "audio": {"sample_rate": 48000, "block_size": 960, "channels": 1},
            "nodes": [node],
            "connections": [{"from": "input", "to": "hop"}, {"from": "hop", "to": "output"}]}


def hop_figures(n_frames: int, rounds: int) -> dict:
    """Each executor in its own session per round: the serialization watch sees the whole
    process while a session is open, so sessions open together would count each other's.
    Each push waits for its own answer (up to 1 s instead of the default 10 ms), so a slow hop
    on a busy machine is measured, not left in flight for the next push."""
    os.environ.setdefault("REMOTEMEDIA_RAY_REPLY_WAIT_MS", "1000")
    os.environ.setdefault("REMOTEMEDIA_IPC_REPLY_WAIT_MS", "1000")
    rng = np.random.default_rng(1)
    frames = [RuntimeData.Numpy(rng.standard_normal(960).astype(np.float32),
                                sample_rate=48000, pts=i * 960, seq=i)
              for i in range(n_frames + WARMUP)]
    times: dict = {e: [] for e in ("inline", "process", "ray")}
    events: dict = {e: 0 for e in times}
    node_rt: dict = {}
    skipped: dict = {}
    for _ in range(rounds):
        for executor in times:
            if executor in skipped:
                continue
            try:
                session = Pipeline.from_manifest(
                    _manifest(None if executor == "inline" else executor)).session()
            except Exception as exc:   # iceoryx2 or Ray missing: say so in the report
                skipped[executor] = f"{type(exc).__name__}: {exc}"
                continue
            with session:
                times[executor].append(push_times(session, frames, WARMUP))
                stats = session.stats()
            events[executor] += stats["serialization_events"]
            if "round_trip_us" in stats["nodes"]["hop"]:
                node_rt[executor] = stats["nodes"]["hop"]["round_trip_us"]
    rows = {}
    for executor, chunks in times.items():
        if executor in skipped:
            rows[executor] = {"skipped": skipped[executor]}
            continue
        ns = np.concatenate(chunks)
        p50, p99 = np.percentile(ns, (50, 99)) / 1e3
        rows[executor] = {"p50_us": round(float(p50), 1), "p99_us": round(float(p99), 1),
                          "n": int(ns.size),
                          "serialization_events_per_block": events[executor] / (
                              rounds * len(frames)),
                          "budget_share_p99": round(float(p99) / (BLOCK_S * 1e6), 4)}
        if executor in node_rt:
            rows[executor]["node_round_trip_us"] = node_rt[executor]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    try:
        (folder / "in").mkdir()
        paths = make_inputs(folder / "in", args.files, args.seconds)
        batch = batch_figures(paths, args.workers, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    hops = hop_figures(args.frames, args.rounds)

    base = batch["in-process"]["audio_h_per_wall_h"]
    print(f"batch: manifests/monitor.yaml over {args.files} x {args.seconds:g} s WAVs "
          f"({args.files * args.seconds / 3600:.3f} audio h), {os.cpu_count()} CPUs here")
    print(f"{'runner':<12} {'workers':>7} {'wall s':>8} {'audio h/wall h':>15} "
          f"{'vs in-process':>14}")
    for name, row in batch.items():
        if "skipped" in row:
            print(f"{name:<12} skipped: {row['skipped']}")
            continue
        print(f"{name:<12} {row.get('workers', 1):>7} {row['wall_s']:>8.2f} "
              f"{row['audio_h_per_wall_h']:>15.0f} {row['audio_h_per_wall_h'] / base:>13.2f}x")
    if "connect_s" in batch.get("ray", {}):
        print(f"  (ray: connecting to the cluster took {batch['ray']['connect_s']:.2f} s, "
              f"not counted above)")
    print(f"\nper-block round trip, PassThrough, {args.frames} x 960 float32 blocks x "
          f"{args.rounds} rounds")
    print(f"{'executor':<10} {'p50 us':>9} {'p99 us':>9} {'vs process p50':>15} "
          f"{'p99 / 20 ms':>12} {'pickles/block':>14}")
    proc = hops.get("process", {}).get("p50_us")
    for name, row in hops.items():
        if "skipped" in row:
            print(f"{name:<10} skipped: {row['skipped']}")
            continue
        ratio = f"{row['p50_us'] / proc:.1f}x" if proc else "-"
        print(f"{name:<10} {row['p50_us']:>9.1f} {row['p99_us']:>9.1f} {ratio:>15} "
              f"{row['budget_share_p99'] * 100:>11.1f}% "
              f"{row['serialization_events_per_block']:>14.1f}")
    if "node_round_trip_us" in hops.get("ray", {}):
        rt = hops["ray"]["node_round_trip_us"]
        print(f"  ray node's own round_trip_us (last round): p50 {rt['p50']:.0f}, "
              f"p99 {rt['p99']:.0f}, "
              f"max {rt['max']:.0f}")
    if args.json:
        print(json.dumps({"batch": batch, "hops": hops}, allow_nan=False))


if __name__ == "__main__":
    sys.exit(main())
