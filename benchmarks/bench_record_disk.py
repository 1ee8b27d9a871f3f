"""Time to disk of a live recording: how long after a block is done its event and its timeline
row can be read from the files (what a SIGKILL or a crash at that moment would leave).

    .venv/bin/python benchmarks/bench_record_disk.py               # 10 s live run
    .venv/bin/python benchmarks/bench_record_disk.py --seconds 2   # a smoke run (tests do this)

A real-time run (sine -> Gain -> LevelMeter every block -> null, 960-sample blocks at 48 kHz,
20 ms) records into a temporary folder. The recorder stamps each block when the runner has
handed it its outputs; a watcher thread reads events.jsonl and timeline.csv as another process
would (plain reads of what the kernel holds) every millisecond and stamps each block when its
event and its row appear. Reported: p50, p99 and max of that delay in ms and in block periods
(the baseline: one block's duration in the same run), against the bound the recorder states
(1 s). Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from remotemedia.engine.session import Pipeline  # noqa: E402
from remotemedia.io.spec import make_sink, make_source  # noqa: E402
from remotemedia.record import WRITER_PERIOD_S, Recorder  # noqa: E402
from remotemedia.runner import StreamRunner  # noqa: E402

METERED = {"version": "v1", "metadata": {"name": "metered"},
           "audio": {"sample_rate": 48000, "block_size": 960, "channels": 1},
           "nodes": [{"id": "gain", "node_type": "Gain", "params": {"db": -6.0}},
                     {"id": "meter", "node_type": "LevelMeter", "params": {"every": 1}}],
           "connections": [{"from": "input", "to": "gain"}, {"from": "gain", "to": "meter"},
                           {"from": "meter", "to": "output"}]}
BOUND_S = 1.0


class Stamped(Recorder):
    """A Recorder that notes when each block's outputs were handed to it (monotonic ns)."""

    def __init__(self, *a, blocks: int, **kw):
        super().__init__(*a, **kw)
        self.done_at = np.zeros(blocks, dtype=np.int64)

    def outputs(self, outputs, final) -> None:
        super().outputs(outputs, final)
        if not final and 0 <= self._seq < self.done_at.size:
            self.done_at[self._seq] = time.monotonic_ns()


class Watcher(threading.Thread):
    """Reads a growing file's whole lines as another process would; stamps each seq seen."""

    def __init__(self, path: Path, seq_of, blocks: int, skip_header: bool):
        super().__init__(daemon=True)
        self.path, self.seq_of, self.skip = path, seq_of, skip_header
        self.seen_at = np.zeros(blocks, dtype=np.int64)
        self.stop = threading.Event()

    def run(self) -> None:
        pos, tail = 0, b""
        while True:
            stopping = self.stop.is_set()
            try:
                with open(self.path, "rb") as f:
                    f.seek(pos)
                    chunk = f.read()
            except FileNotFoundError:
                chunk = b""
            t = time.monotonic_ns()
            pos += len(chunk)
            lines = (tail + chunk).split(b"\n")
            tail = lines.pop()
            for line in lines:
                if self.skip:
                    self.skip = False
                    continue
                seq = self.seq_of(line)
                if seq is not None and 0 <= seq < self.seen_at.size and not self.seen_at[seq]:
                    self.seen_at[seq] = t
            if stopping:
                return
            self.stop.wait(0.001)


def _event_seq(line: bytes):
    seq = json.loads(line).get("seq")
    return seq if isinstance(seq, int) else None


def _row_seq(line: bytes):
    return int(line.split(b",", 1)[0])


def run(seconds: float) -> dict:
    pipeline = Pipeline.from_manifest(METERED)
    m = pipeline.manifest
    period = m.audio.block_size / m.audio.sample_rate
    blocks = int(seconds / period) + 8
    runner = StreamRunner(pipeline, make_source("sine", m.audio),
                          make_sink("null", m.output_format), realtime=True, duration=seconds)
    tmp = Path(tempfile.mkdtemp(prefix="rm-bench-disk-"))
    try:
        rec = Stamped(tmp / "rec", blocks=blocks).bind(runner)
        runner.observers.join(rec)
        rec.open()
        watchers = {"events.jsonl": Watcher(tmp / "rec" / "events.jsonl", _event_seq, blocks,
                                            False),
                    "timeline.csv": Watcher(tmp / "rec" / "timeline.csv", _row_seq, blocks,
                                            True)}
        for w in watchers.values():
            w.start()
        runner.run()
        time.sleep(0.5)   # the watchers see the last ticks before the files close
        for w in watchers.values():
            w.stop.set()
            w.join()
        rec.close()
        out = {"seconds": seconds, "block_ms": period * 1e3,
               "writer_period_ms": WRITER_PERIOD_S * 1e3, "bound_ms": BOUND_S * 1e3}
        for name, w in watchers.items():
            done = rec.done_at[:blocks]
            ok = (done > 0) & (w.seen_at > 0)
            lag_ms = (w.seen_at[ok] - done[ok]) / 1e6
            p50, p99 = np.percentile(lag_ms, (50, 99))
            out[name] = {"blocks": int(ok.sum()), "p50_ms": round(float(p50), 2),
                         "p99_ms": round(float(p99), 2), "max_ms": round(float(lag_ms.max()), 2),
                         "max_blocks": round(float(lag_ms.max()) / (period * 1e3), 2)}
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--json", action="store_true", help="also print the result as JSON")
    args = ap.parse_args(argv)
    result = run(args.seconds)
    print(f"time to disk of a live recording ({args.seconds:g} s, "
          f"{result['block_ms']:.0f} ms blocks, writer tick {result['writer_period_ms']:.0f} ms,"
          f" stated bound {result['bound_ms']:.0f} ms):")
    for name in ("events.jsonl", "timeline.csv"):
        r = result[name]
        print(f"  {name:13} {r['blocks']} blocks: p50 {r['p50_ms']:.1f} ms, p99 "
              f"{r['p99_ms']:.1f} ms, max {r['max_ms']:.1f} ms ({r['max_blocks']:.1f} blocks)")
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
