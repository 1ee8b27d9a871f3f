"""The thread executor's hop beside inline: what `executor: thread` costs a block.

    .venv/bin/python benchmarks/bench_executors.py [--frames 3000] [--rounds 3] [--json]

One 960-sample float32 block at a time through a PassThrough, in the same run, rounds
alternating (these shared 2-core machines drift between two speed levels):

- `inline`: `session.push(block)`, the engine's direct call.
- `thread round trip`: the PassThrough on `executor: thread`, the push waiting for its own
  block to come back (REMOTEMEDIA_THREAD_REPLY_WAIT_MS=50): queue it, wake the worker, run the
  node there, wake the pusher, collect. What one block's hop costs in latency.
- `thread pipelined`: the default (reply wait 0): each push queues its block and collects what
  is done; the figure is the wall time of all pushes and the final end_of_stream, per block.
  What the pushing thread (the audio thread) pays per block when the worker keeps up.

Ratios are against inline's p50 in the same round. Both threads share the GIL here because
PassThrough holds it throughout; a model that releases it overlaps with the pushing thread.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.args import at_least  # noqa: E402
from benchmarks.timing import push_times  # noqa: E402

from remotemedia import Pipeline  # noqa: E402


def manifest(executor: str) -> dict:
    node = {"id": "pass", "node_type": "PassThrough"}
    if executor != "inline":
        node["executor"] = executor
    return {"version": "v1", "metadata": {"name": f"bench-{executor}"}, "nodes": [node],
            "connections": [{"from": "input", "to": "pass"}, {"from": "pass", "to": "output"}]}


def pipelined(session, frames: list) -> float:
    """ns per block: all pushes and the end_of_stream drain, divided by the blocks."""
    t0 = time.perf_counter_ns()
    n = 0
    for frame in frames:
        n += len(session.push(frame))
    n += sum(1 for o in session.end_of_stream() if o.kind == "numpy")
    if n != len(frames):
        raise SystemExit(f"{n} of {len(frames)} blocks came back")
    return (time.perf_counter_ns() - t0) / len(frames)


def open_session(executor: str, reply_wait_ms: float | None = None):
    if reply_wait_ms is None:
        os.environ.pop("REMOTEMEDIA_THREAD_REPLY_WAIT_MS", None)
    else:
        os.environ["REMOTEMEDIA_THREAD_REPLY_WAIT_MS"] = str(reply_wait_ms)
    return Pipeline.from_manifest(manifest(executor)).session()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=at_least(100), default=3000)
    parser.add_argument("--rounds", type=at_least(1), default=3)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    frames = [np.full(960, i % 7, np.float32) for i in range(args.frames)]
    rounds = []
    for _ in range(args.rounds):
        with open_session("inline") as s:
            inline = push_times(s, frames, len(frames) // 10)
        with open_session("thread", 50) as s:
            hop = push_times(s, frames, len(frames) // 10)
            stats = s.stats()
        with open_session("thread") as s:
            piped = pipelined(s, frames)
        base = float(np.percentile(inline, 50))
        hop50, hop99 = (float(v) for v in np.percentile(hop, (50, 99)))
        rounds.append({
            "inline_p50_us": round(base / 1e3, 2),
            "inline_p99_us": round(float(np.percentile(inline, 99)) / 1e3, 2),
            "thread_round_trip_p50_us": round(hop50 / 1e3, 1),
            "thread_round_trip_p99_us": round(hop99 / 1e3, 1),
            "thread_round_trip_vs_inline": round(hop50 / base, 1),
            "thread_pipelined_per_block_us": round(piped / 1e3, 2),
            "thread_pipelined_vs_inline": round(piped / base, 1),
            "serialization_events": stats["serialization_events"],
            "copies": stats["copies"],
        })
    if args.json:
        print(json.dumps({"frames": args.frames, "rounds": rounds}))
        return 0
    print(f"960-sample float32 blocks through a PassThrough, {args.frames} per round")
    print(f"{'round':>5} {'inline p50':>11} {'thread hop p50':>15} {'p99':>9} {'x inline':>9} "
          f"{'pipelined/block':>16} {'x inline':>9}")
    for i, r in enumerate(rounds, 1):
        print(f"{i:>5} {r['inline_p50_us']:>9.2f}us {r['thread_round_trip_p50_us']:>13.1f}us "
              f"{r['thread_round_trip_p99_us']:>7.1f}us {r['thread_round_trip_vs_inline']:>8.1f}x "
              f"{r['thread_pipelined_per_block_us']:>14.2f}us "
              f"{r['thread_pipelined_vs_inline']:>8.1f}x")
    last = rounds[-1]
    print(f"thread hop: {last['serialization_events']} serialization events, copies "
          f"{last['copies']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
