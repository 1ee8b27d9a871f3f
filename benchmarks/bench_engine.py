"""Engine overhead: blocks through chains of N nodes, against baselines measured in the same run.

    .venv/bin/python benchmarks/bench_engine.py            # full run (~2 min)
    .venv/bin/python benchmarks/bench_engine.py --quick    # fewer frames
    .venv/bin/python benchmarks/bench_engine.py --frames 300 --seconds 1   # a smoke run (tests)

The process (and the GStreamer subprocess, which inherits it) is pinned to one CPU. Rows, each
a 960-sample float32 block at a time, p50/p99 of the push in us and burst blocks per second:

- baselines: bare Python calls, an asyncio.Queue per stage, and the bare numpy operation a
  writing node performs (N in-place multiplies by a 0-d factor; N in-place adds for Mix);
- engine: PassThrough chains (the engine's own cost per node, from the N=5 to N=20 slope), Gain chains fused (the default:
  one multiply by the product of the gains) and unfused (`fuse=False`: each Gain its own
  multiply), a Gain that runs through process() (a writing node that does not declare itself
  linear: what any node that writes samples costs), and Mix chains (stage i sums stage i-1 and
  the input). The block is pushed shared (not transferred), so the first writer copies it once
  (cow) and the rest write in place, as GStreamer's volume does with a buffer it does not own;
- GStreamer (benchmarks/gst_chain.py, under the system Python where Debian's python3-gst-1.0
  is installed): appsrc ! identity or volume x N ! appsink, driven from Python the same way;
  skipped with a note where it is absent;
- the runner's block path (runner.BlockPath: frame, push, deliver to a null sink) with no
  observer and with one that does nothing: what watching a run costs per block;
- streams per core: manifests/five.yaml and voice.yaml in simulated time, blocks pushed back to
  back and CPU time (time.process_time) counted: audio seconds per CPU second, i.e. how many
  real-time 48 kHz streams one core carries. Handed over (transfer=True, as the runner does)
  and shared (a copy per block at the first writer).

One thing at a time: every case runs in its own process, forked from this one before any case
has run (`isolated`), so nothing one case leaves behind (the interpreter's specialised bytecode,
the heap's layout, numpy's caches, GC generations, a session's cached factors) reaches the next;
and the cases run `--rounds` times in alternating order (forward, then backward), each figure the
median over rounds, so a slow phase of the shared machine does not land on one case. Each case
also reports what its run did (copies, fused nodes, calls per node); those must agree in every
round (`independent` in the JSON).

Counters are on, as in every session. Prints ratios; `--json` adds one JSON line of every row.
Nothing here asserts a time: these machines are shared.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import remotemedia as rm  # noqa: E402
from benchmarks.args import at_least, seconds  # noqa: E402
from remotemedia.engine.data import NumpyData  # noqa: E402
from remotemedia.engine.node import registry  # noqa: E402
from remotemedia.nodes.audio import Gain  # noqa: E402

now = time.perf_counter_ns
BLOCK = 960
GAIN_DB = -0.5
SYSTEM_PYTHON = "/usr/bin/python3"


class ProcessGain(Gain):
    """Gain without the linear declaration: the engine calls its process() like any node's."""

    node_type = "BenchProcessGain"
    linear_elementwise = False


registry.register(ProcessGain)


def chain_manifest(node_type: str, n: int) -> dict:
    params = {"db": GAIN_DB} if "Gain" in node_type else {}
    nodes = [{"id": f"n{i}", "node_type": node_type, "params": params} for i in range(n)]
    ids = ["input"] + [f"n{i}" for i in range(n)] + ["output"]
    conns = [{"from": a, "to": b} for a, b in zip(ids, ids[1:])]
    return {"version": "v1", "nodes": nodes, "connections": conns}


def mix_manifest(n: int) -> dict:
    """Stage i mixes stage i-1 (the input for i = 0) with the input: n fan-in nodes in a row."""
    nodes = [{"id": f"m{i}", "node_type": "Mix"} for i in range(n)]
    conns = []
    for i in range(n):
        conns.append({"from": "input" if i == 0 else f"m{i - 1}", "to": f"m{i}",
                      "input": "prev"})
        conns.append({"from": "input", "to": f"m{i}", "input": "dry"})
    conns.append({"from": f"m{n - 1}", "to": "output"})
    return {"version": "v1", "nodes": nodes, "connections": conns}


def percentiles(samples_ns: list[int]) -> tuple[float, float]:
    a = np.asarray(samples_ns) / 1e3
    return float(np.percentile(a, 50)), float(np.percentile(a, 99))


def timed(call, frames: int, fresh=None) -> dict:
    """p50/p99 of `call(x)` one at a time, and the burst rate; `fresh()` makes each x (else
    one zero block is reused)."""
    block = np.zeros(BLOCK, np.float32)
    for _ in range(200):
        call(block)
    lat = []
    gc.collect()
    gc.disable()
    try:
        for _ in range(frames):
            x = fresh() if fresh is not None else block
            t0 = now()
            call(x)
            lat.append(now() - t0)
        t0 = now()
        for _ in range(frames):
            call(block)
        burst = frames / ((now() - t0) / 1e9)
    finally:
        gc.enable()
    p50, p99 = percentiles(lat)
    return {"p50": p50, "p99": p99, "fps": burst}


def bench_engine(manifest: dict, frames: int, *, fuse: bool = True, samples: int = BLOCK,
                 transfer: bool = False) -> dict:
    pipeline = rm.Pipeline.from_manifest(manifest)
    with pipeline.session(fuse=fuse) as session:
        push = session.schedule.push
        if samples != BLOCK:
            big = np.zeros(samples, np.float32)
            r = timed(lambda _x: push(big), frames)
        elif transfer:
            r = timed(lambda x: push(x, transfer=True), frames,
                      fresh=lambda: np.zeros(BLOCK, np.float32))
        else:
            r = timed(push, frames)
        stats = session.stats()
    assert stats["serialization_events"] == 0 and stats["copies"]["engine"] == 0
    r["cow"] = stats["copies"]["cow"]
    r["fused"] = sum(1 for node in stats["nodes"].values() if "fused" in node)
    # what the run did, which the same case must repeat exactly wherever it runs
    r["did"] = {"cow": r["cow"], "fused": r["fused"], "engine": stats["copies"]["engine"],
                "frames_out": stats["frames_out"],
                "calls": sorted({node["calls"] for node in stats["nodes"].values()})}
    return r


class QuietObserver:
    """An observer that does nothing: what telling one costs the runner's block path."""

    def block_in(self, event):
        pass

    def block_out(self, event):
        pass


def bench_block_path(observers: int, frames: int) -> dict:
    """The runner's per-block path (runner.BlockPath: frame, push handed over, deliver to a
    null sink) through PassThrough N=1, with `observers` QuietObservers joined."""
    from remotemedia.io.synth import SilenceSource
    from remotemedia.io.virtual import NullSink
    from remotemedia.runner import BlockPath, StreamRunner
    pipeline = rm.Pipeline.from_manifest(chain_manifest("PassThrough", 1))
    fmt = pipeline.manifest.audio
    runner = StreamRunner(pipeline, SilenceSource(fmt), NullSink(fmt))
    for _ in range(observers):
        runner.observers.join(QuietObserver())
    with pipeline.session() as session:
        runner.session = session
        path = BlockPath(runner, session)
        take, deliver = path.take, path.deliver
        seq = iter(range(1 << 62))

        def call(x):
            n = next(seq)
            deliver(take(x, n, n * BLOCK))
        return timed(call, frames)


def bench_bare(n: int, frames: int) -> dict:
    def stage(x):
        return x
    stages = [stage] * n

    def run(x):
        for s in stages:
            x = s(x)
        return [x]
    return timed(run, frames)


def bench_numpy(op: str, n: int, frames: int) -> dict:
    """The numpy a writing node does, bare: n in-place multiplies by a 0-d float32 factor (what
    Gain does), or n in-place adds of the input (what Mix does)."""
    factor = np.array(10 ** (GAIN_DB / 20), np.float32)
    work = np.zeros(BLOCK, np.float32)
    multiply, add = np.multiply, np.add
    if op == "multiply":
        def run(x):
            for _ in range(n):
                multiply(work, factor, work)
            return [work]
    else:
        def run(x):
            for _ in range(n):
                add(work, x, work)
            return [work]
    return timed(run, frames)


def bench_asyncio(n: int, frames: int) -> dict:
    async def main():
        queues = [asyncio.Queue() for _ in range(n + 1)]

        async def stage(qin, qout):
            while True:
                x = await qin.get()
                await qout.put(x)
        tasks = [asyncio.create_task(stage(queues[i], queues[i + 1])) for i in range(n)]
        frame = np.zeros(BLOCK, np.float32)
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


def bench_gstreamer(cases: list[str], frames: int) -> tuple[dict, str]:
    """{(element, n): row} from gst_chain.py under the system Python, and a note ('' when it
    ran, else why it did not)."""
    python = shutil.which(SYSTEM_PYTHON) or shutil.which("python3")
    if python is None:
        return {}, "no system python3"
    args = [python, str(Path(__file__).with_name("gst_chain.py")), "--frames", str(frames)]
    for case in cases:
        args += ["--case", case]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        why = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        return {}, why
    rows, version = {}, ""
    for line in proc.stdout.splitlines():
        row = json.loads(line)
        if "gstreamer" in row:
            version = row["gstreamer"]
        else:
            rows[(row["case"], row["n"])] = row
    return rows, version


def streams_per_core(manifest_path: Path, seconds: float, transfer: bool) -> dict:
    """Audio seconds per CPU second for a manifest, blocks pushed back to back (simulated
    time), each a distinct block of noise at -20 dBFS RMS made before timing."""
    m = rm.load_manifest(str(manifest_path))
    rate, block = m.audio.sample_rate, m.audio.block_size
    count = max(50, int(seconds * rate / block))
    rng = np.random.default_rng(1)
    signal = (rng.standard_normal(count * block) * 0.1).astype(np.float32)
    frames = [NumpyData(signal[i * block:(i + 1) * block], sample_rate=rate, pts=i * block,
                        seq=i) for i in range(count)]
    with rm.Pipeline(m).session() as s:
        push = s.schedule.push
        for f in frames[:50]:
            push(f.replace(), transfer=False)
        s.reset_stats()
        gc.collect()
        gc.disable()
        try:
            c0 = time.process_time()
            for f in frames:
                push(f, transfer=transfer)
            cpu = time.process_time() - c0
        finally:
            gc.enable()
        stats = s.stats()
    audio_s = count * block / rate
    did = {"cow": stats["copies"]["cow"], "engine": stats["copies"]["engine"],
           "frames_out": stats["frames_out"]}
    return {"did": did, "manifest": manifest_path.name, "transfer": transfer, "blocks": count,
            "per_block_us": cpu / count * 1e6, "streams_per_core": audio_s / cpu,
            "cow": stats["copies"]["cow"], "engine_copies": stats["copies"]["engine"],
            "serialization_events": stats["serialization_events"]}


def engine_cases(depths, frames: int) -> list[tuple]:
    """(key, label, function, args) of every in-process row, in the order they print."""
    cases = []
    for n in depths:
        cases += [
            (("bare", n), f"bare calls N={n}", bench_bare, (n, frames)),
            (("async", n), f"asyncio.Queue per stage N={n}", bench_asyncio, (n, frames // 5)),
            (("multiply", n), f"numpy multiply x{n} (bare)", bench_numpy,
             ("multiply", n, frames)),
            (("add", n), f"numpy add x{n} (bare)", bench_numpy, ("add", n, frames)),
            (("PassThrough", n), f"engine PassThrough N={n}", bench_case,
             (("PassThrough", n), frames, {})),
            (("Gain", n), f"engine Gain N={n} fused", bench_case, (("Gain", n), frames, {})),
            (("Gain unfused", n), f"engine Gain N={n} unfused", bench_case,
             (("Gain", n), frames, {"fuse": False})),
            (("ProcessGain", n), f"engine Gain via process() N={n}", bench_case,
             (("BenchProcessGain", n), frames, {})),
            (("Mix", n), f"engine Mix chain N={n}", bench_case, (("Mix", n), frames, {})),
        ]
    cases += [(("block path", k), f"runner block path, {k} observer{'s' * (k != 1)}",
               bench_block_path, (k, frames)) for k in (0, 1)]
    cases += [
        ("big", "engine PassThrough N=1 96000-smp", bench_case,
         (("PassThrough", 1), frames, {"samples": 96000})),
        ("owned", "engine Gain N=5 unfused, handed over", bench_case,
         (("Gain", 5), frames, {"fuse": False, "transfer": True})),
    ]
    return cases


def bench_case(graph: tuple, frames: int, options: dict) -> dict:
    """bench_engine over a chain (or, for Mix, a mix chain) named by (node type, N)."""
    node_type, n = graph
    manifest = mix_manifest(n) if node_type == "Mix" else chain_manifest(node_type, n)
    return bench_engine(manifest, frames, **options)


def isolated(fn, *args):
    """fn(*args) run in a child forked from this process, its result (JSON-able) sent back
    through a pipe: the case starts from this process's state (imports done, no case run),
    whatever ran before it, and leaves nothing behind. Inline where there is no fork."""
    if not hasattr(os, "fork"):
        return fn(*args)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:           # the child: run, send, and leave without running any cleanup
        status = 1
        try:
            os.close(r)
            with os.fdopen(w, "w") as out:
                out.write(json.dumps(fn(*args), default=str))
            status = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(status)
    os.close(w)
    with os.fdopen(r) as got:
        text = got.read()
    _, status = os.waitpid(pid, 0)
    if status != 0 or not text:
        raise SystemExit(f"bench_engine: the case {fn.__name__}{args!r} failed")
    return json.loads(text)


def run_rounds(cases: list[tuple], rounds: int) -> tuple[dict, bool]:
    """Every case `rounds` times, each in its own process, forward then backward in turn; per
    case the median of each figure, and whether every round of every case did the same."""
    runs: dict = {key: [] for key, *_ in cases}
    for i in range(rounds):
        for key, _label, fn, args in (cases if i % 2 == 0 else cases[::-1]):
            runs[key].append(isolated(fn, *args))
    rows, independent = {}, True
    for key, results in runs.items():
        row = dict(results[0])
        for field, value in results[0].items():
            if isinstance(value, float):
                row[field] = statistics.median(r[field] for r in results)
        independent = independent and all(r.get("did") == row.get("did") for r in results)
        rows[key] = row
    return rows, independent


def pin_to_one_cpu() -> int | None:
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = sorted(os.sched_getaffinity(0))[-1]
    os.sched_setaffinity(0, {cpu})
    return cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="5000 frames per case")
    ap.add_argument("--frames", type=at_least(50), help="frames per case (default 30000)")
    ap.add_argument("--seconds", type=seconds, default=120.0,
                    help="simulated audio per streams-per-core case (default 120)")
    ap.add_argument("--no-gstreamer", action="store_true", help="skip the GStreamer rows")
    ap.add_argument("--rounds", type=at_least(1), help="runs of every case, in alternating "
                    "order; each figure is the median (default 3, --quick 1)")
    ap.add_argument("--json", action="store_true", help="also print every row as one JSON line")
    args = ap.parse_args()
    frames = args.frames or (5000 if args.quick else 30000)
    args.rounds = args.rounds or (1 if args.quick else 3)
    cpu = pin_to_one_cpu()
    results: dict = {}
    registry.names()       # load the node types once, before any case forks from here
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, {frames} frames per case, "
          f"pinned to cpu {cpu}, each case in its own process, median of {args.rounds} "
          f"round(s) in alternating order")
    print(f"{'case':36} {'p50 us':>8} {'p99 us':>8} {'blocks/s':>11}")

    def show(key, name, r):
        results[key] = r
        print(f"{name:36} {r['p50']:8.2f} {r['p99']:8.2f} {r['fps']:11.0f}")

    depths = (1, 5, 20)
    cases = engine_cases(depths, frames)
    streams_cases = [(name, transfer) for name in ("five.yaml", "voice.yaml")
                     for transfer in (True, False)]
    rows, independent = run_rounds(cases, args.rounds)
    for key, name, _fn, _args in cases:
        show(key, name, rows[key])

    # Streams per core before GStreamer: seconds of its two busy threads on this CPU leave the
    # next few seconds here ~30% slower on these virtual machines (measured both ways round).
    stream_rows, streams_independent = run_rounds(
        [((m, t), m, streams_per_core, (ROOT / "manifests" / m, args.seconds, t))
         for m, t in streams_cases], args.rounds)
    streams = [stream_rows[key] for key in streams_cases]
    independent = independent and streams_independent

    gst, gst_note = {}, "skipped (--no-gstreamer)"
    if not args.no_gstreamer:
        cases = ["identity:0"] + [f"{e}:{n}" for n in depths for e in ("identity", "volume")]
        gst, gst_note = bench_gstreamer(cases, frames)
        for (element, n), r in sorted(gst.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            show(("gst", element, n), f"GStreamer {element} N={n}", r)
    print(f"GStreamer: {gst_note if not gst else gst_note + ', same CPU, subprocess'}")

    print(f"\nstreams per core (simulated time, {args.seconds:g} s of audio, CPU time)")
    for r in streams:
        print(f"  {r['manifest']:10} {'handed over' if r['transfer'] else 'shared':12} "
              f"{r['per_block_us']:8.2f} us a block  {r['streams_per_core']:8.0f} streams"
              f"  (cow {r['cow']}, engine copies {r['engine_copies']}, serialization "
              f"{r['serialization_events']})")

    def p50(key):
        return results[key]["p50"]

    def slope(key):
        # per node, from the N=5 and N=20 rows: the push's own cost (and a first writer's
        # copy) cancels, and the N=1 rows, the first of the run, carry the most warm-up noise
        return (p50((key, 20)) - p50((key, 5))) / 15

    print("\nratios and per-node costs (same run)")
    for n in depths:
        pt = results[("PassThrough", n)]
        print(f"  N={n:2}: engine PassThrough/bare calls p50 {pt['p50'] / p50(('bare', n)):.1f}x;"
              f" asyncio/engine p50 {p50(('async', n)) / pt['p50']:.1f}x, "
              f"burst {pt['fps'] / results[('async', n)]['fps']:.1f}x")
    bare_op = slope("multiply")
    for key, label in (("Gain unfused", "Gain (unfused)"), ("ProcessGain", "Gain via process()"),
                       ("Gain", "Gain (fused)"), ("PassThrough", "PassThrough"),
                       ("Mix", "Mix stage")):
        print(f"  per node, {label:20} {slope(key):6.3f} us")
    print(f"  per op, numpy multiply (bare)  {bare_op:6.3f} us; numpy add {slope('add'):6.3f} us")
    for element in ("volume", "identity"):
        if all((element, n) in gst for n in (5, 20)):
            # most of a GStreamer row is the appsrc -> appsink thread hand-off (its N=0 row)
            per = (gst[(element, 20)]["p50"] - gst[(element, 5)]["p50"]) / 15
            print(f"  per element, GStreamer {element:9} {per:6.3f} us (C; the hand-off from "
                  f"Python, N=0, {gst.get(('identity', 0), {}).get('p50', float('nan')):.2f} us)")
    print(f"  a writing node above its numpy op: Gain unfused "
          f"{slope('Gain unfused') - bare_op:+.3f} us, via process() "
          f"{slope('ProcessGain') - bare_op:+.3f} us (target <= +1.2 us)")
    print(f"  Mix stage above its numpy add: {slope('Mix') - slope('add'):+.3f} us")
    for n in depths:
        line = (f"  Gain N={n:2}: fused {p50(('Gain', n)):6.2f} us, unfused "
                f"{p50(('Gain unfused', n)):6.2f} us, via process() {p50(('ProcessGain', n)):6.2f}"
                f" us")
        if ("volume", n) in gst:
            line += (f"; GStreamer volume {gst[('volume', n)]['p50']:6.2f} us: fused "
                     f"{gst[('volume', n)]['p50'] / p50(('Gain', n)):.2f}x faster, unfused "
                     f"{gst[('volume', n)]['p50'] / p50(('Gain unfused', n)):.2f}x")
        print(line)
    for n in depths:
        if ("identity", n) in gst:
            print(f"  PassThrough N={n:2} {p50(('PassThrough', n)):6.2f} us vs GStreamer identity "
                  f"{gst[('identity', n)]['p50']:6.2f} us: "
                  f"{gst[('identity', n)]['p50'] / p50(('PassThrough', n)):.1f}x faster")
    quiet, watched = results[("block path", 0)], results[("block path", 1)]
    print(f"  runner block path (PassThrough N=1): {quiet['p50']:.2f} us alone, one observer "
          f"{watched['p50'] - quiet['p50']:+.2f} us")
    big, small = results["big"], results[("PassThrough", 1)]
    print(f"  96000 vs 960 samples (PassThrough N=1) p50: {big['p50'] / small['p50']:.2f}x")
    print(f"  cow copies: Gain N=5 unfused pushed shared {results[('Gain unfused', 5)]['cow']}, "
          f"handed over {results['owned']['cow']} (written in place)")
    print("\ntargets: a writing node <= +1.2 us above its numpy op; Gain N=20 unfused <= 25 us,"
          " fused < 16 us (GStreamer volume N=20 ~16.5 us); PassThrough N=5 <= 2.0 us;"
          " five.yaml >= 4,500 streams per core")
    print(f"cases independent (each did the same in every round): {independent}")
    if args.json:
        print(json.dumps({"rows": {" ".join(map(str, k)) if isinstance(k, tuple) else k: v
                                   for k, v in results.items()},
                          "gstreamer": gst_note, "streams": streams,
                          "independent": independent}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
