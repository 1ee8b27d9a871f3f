"""Before and after: the engine's chains and streams per core, this tree against another one.

    git worktree add /tmp/base c53a920        # the tree to compare against (any commit)
    .venv/bin/python benchmarks/bench_compare.py --base /tmp/base [--rounds 3]
    git worktree remove /tmp/base

Each round runs every case once per tree in its own subprocess, alternating, on one pinned CPU,
so both trees see the same machine; each figure is the median over rounds. Within a tree's run
every case runs in a child forked before any case ran, so no case inherits another's state
(bench_engine.py's rule). Cases: PassThrough,
Gain (fused where the tree fuses; unfused, which a tree without fusion always is), and Mix chains at N = 1, 5
and 20 (push p50 in us, the block pushed shared), then streams per core for five.yaml and
voice.yaml (simulated time, CPU time, blocks handed over and shared; bench_engine.py's method).
The old tree is imported from its own directory (the editable install's finder is removed
from sys.meta_path). Prints a table with new/old ratios; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.args import at_least, seconds  # noqa: E402

CHILD = r'''
import gc, json, os, sys, time
sys.meta_path = [f for f in sys.meta_path if "editable" not in repr(f)]
tree = os.environ["RM_TREE"]
sys.path.insert(0, tree)
import numpy as np
import remotemedia as rm
from remotemedia.engine.data import NumpyData
cpu = sorted(os.sched_getaffinity(0))[-1]
os.sched_setaffinity(0, {cpu})
frames, seconds = int(os.environ["RM_FRAMES"]), float(os.environ["RM_SECONDS"])

def chain(node_type, n):
    params = {"db": -0.5} if node_type == "Gain" else {}
    nodes = [{"id": f"n{i}", "node_type": node_type, "params": params} for i in range(n)]
    ids = ["input"] + [f"n{i}" for i in range(n)] + ["output"]
    return {"version": "v1", "nodes": nodes,
            "connections": [{"from": a, "to": b} for a, b in zip(ids, ids[1:])]}

def mix(n):
    conns = []
    for i in range(n):
        conns.append({"from": "input" if i == 0 else f"m{i - 1}", "to": f"m{i}", "input": "prev"})
        conns.append({"from": "input", "to": f"m{i}", "input": "dry"})
    conns.append({"from": f"m{n - 1}", "to": "output"})
    return {"version": "v1", "nodes": [{"id": f"m{i}", "node_type": "Mix"} for i in range(n)],
            "connections": conns}

def session(m, **kw):
    try:
        return rm.Pipeline.from_manifest(m).session(**kw)
    except TypeError:          # a tree without that option: one that never fused
        return rm.Pipeline.from_manifest(m).session() if kw == {"fuse": False} else None

def isolated(fn, *args):
    # one case in a child forked before any case ran: nothing one case leaves behind (the
    # interpreter's specialised bytecode, the heap, numpy's caches) reaches the next
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            os.close(r)
            with os.fdopen(w, "w") as f:
                f.write(json.dumps(fn(*args)))
            status = 0
        finally:
            os._exit(status)
    os.close(w)
    with os.fdopen(r) as f:
        text = f.read()
    os.waitpid(pid, 0)
    return json.loads(text) if text else None

def chain_case(m, kw):
    s = session(m, **kw)
    if s is None:
        return None
    with s:
        push, block = s.push, np.zeros(960, np.float32)
        for _ in range(300):
            push(block)
        lat = []
        gc.collect(); gc.disable()
        for _ in range(frames):
            t0 = time.perf_counter_ns(); push(block); lat.append(time.perf_counter_ns() - t0)
        gc.enable()
    return float(np.percentile(lat, 50)) / 1e3

def streams_case(name, transfer):
    m = rm.load_manifest(os.path.join(tree, "manifests", name))
    rate, block = m.audio.sample_rate, m.audio.block_size
    count = max(50, int(seconds * rate / block))
    signal = (np.random.default_rng(1).standard_normal(count * block) * 0.1).astype(np.float32)
    blocks = [NumpyData(signal[i * block:(i + 1) * block], sample_rate=rate, pts=i * block,
                        seq=i) for i in range(count)]
    with rm.Pipeline(m).session() as s:
        for f in blocks[:50]:
            s.push(f.replace())
        gc.collect(); gc.disable()
        c0 = time.process_time()
        for f in blocks:
            s.push(f, transfer=transfer)
        cpu_s = time.process_time() - c0
        gc.enable()
    return count * block / rate / cpu_s

out = {}
for name, m, kw in [(f"{t} N={n}{label}", chain(t, n) if t != "Mix" else mix(n), kw)
                    for n in (1, 5, 20)
                    for t, label, kw in (("PassThrough", "", {}), ("Gain", "", {}),
                                         ("Gain", " unfused", {"fuse": False}),
                                         ("Mix", "", {}))]:
    value = isolated(chain_case, m, kw)
    if value is not None:
        out[name] = value
for name in ("five.yaml", "voice.yaml"):
    for transfer in (True, False):
        out[f"{name} {'handed over' if transfer else 'shared'} (streams/core)"] = \
            isolated(streams_case, name, transfer)
print(json.dumps({"file": rm.__file__, "rows": out}))
'''


def run_tree(tree: Path, frames: int, seconds: float) -> dict:
    env = {**os.environ, "RM_TREE": str(tree), "RM_FRAMES": str(frames),
           "RM_SECONDS": str(seconds)}
    proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env,
                          timeout=3600)
    if proc.returncode != 0:
        raise SystemExit(f"bench_compare: the run of {tree} failed:\n{proc.stderr[-2000:]}")
    doc = json.loads(proc.stdout.strip().splitlines()[-1])
    if not doc["file"].startswith(str(tree)):
        raise SystemExit(f"bench_compare: {tree} imported remotemedia from {doc['file']}")
    return doc["rows"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, type=Path, help="the other source tree (a "
                    "checkout of an older commit)")
    ap.add_argument("--rounds", type=at_least(1), default=3)
    ap.add_argument("--frames", type=at_least(50), default=20000, help="blocks per chain case")
    ap.add_argument("--seconds", type=seconds, default=60.0,
                    help="simulated audio per streams-per-core case")
    args = ap.parse_args()
    base = args.base.resolve()
    if not (base / "remotemedia" / "__init__.py").exists():
        print(f"bench_compare: {base} is not a remotemedia source tree", file=sys.stderr)
        return 2
    runs: dict[str, list] = {"old": [], "new": []}
    for _ in range(args.rounds):
        runs["old"].append(run_tree(base, args.frames, args.seconds))
        runs["new"].append(run_tree(ROOT, args.frames, args.seconds))
    print(f"{'case':42} {'old':>9} {'new':>9} {'new/old':>8}   (median of {args.rounds} rounds; "
          f"us p50, or streams per core)")
    for key in runs["new"][0]:
        new = statistics.median(r[key] for r in runs["new"])
        olds = [r[key] for r in runs["old"] if key in r]
        if not olds:
            print(f"{key:42} {'-':>9} {new:9.2f}")
            continue
        old = statistics.median(olds)
        print(f"{key:42} {old:9.2f} {new:9.2f} {new / old:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
