"""The GStreamer baseline of bench_engine.py: 960-sample float32 blocks through a C element chain.

Runs under the *system* Python (Debian's python3-gst-1.0 lives there, not in the project's
.venv); bench_engine.py starts it in a subprocess and reads one JSON line per case from stdout:

    /usr/bin/python3 benchmarks/gst_chain.py --frames 20000 --case identity:5 --case volume:20

Each case is `appsrc ! ELEMENT x N ! appsink` (N = 0 is appsrc straight into appsink, the cost
of driving GStreamer from Python at all). Per block: a new Gst.Buffer of 960 float32 samples is
pushed (`push-buffer`) and the processed sample pulled (`pull-sample`), one block in flight,
timed with time.perf_counter_ns; `volume` runs at 0.944 (-0.5 dB), so its orc kernel writes
every sample, as Gain's multiply does. Prints {"case", "n", "p50", "p99", "fps"} per case (us,
blocks per second). Exit code 3 with a one-line message on stderr when GStreamer is missing.
Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

try:
    import gi
    gi.require_version("Gst", "1.0")
    from gi.repository import Gst
except (ImportError, ValueError) as exc:
    print(f"gst_chain: GStreamer for Python is not available ({exc}); "
          f"apt-get install python3-gst-1.0 gstreamer1.0-plugins-base", file=sys.stderr)
    sys.exit(3)

SAMPLES = 960
RATE = 48000
CAPS = f"audio/x-raw,format=F32LE,rate={RATE},channels=1,layout=interleaved"
ELEMENTS = {"identity": "identity", "volume": "volume volume=0.944"}


def percentile(sorted_values: list, q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def run(element: str, n: int, frames: int) -> dict:
    chain = "".join(f" ! {ELEMENTS[element]}" for _ in range(n))
    pipeline = Gst.parse_launch(
        f"appsrc name=src format=time is-live=false caps={CAPS}{chain}"
        f" ! appsink name=sink sync=false max-buffers=4")
    src = pipeline.get_by_name("src")
    sink = pipeline.get_by_name("sink")
    pipeline.set_state(Gst.State.PLAYING)
    payload = bytes(SAMPLES * 4)       # zeros; the kernels' cost does not depend on the values
    duration = Gst.SECOND * SAMPLES // RATE
    push = src.emit
    pull = sink.emit
    new_buffer = Gst.Buffer.new_wrapped
    now = time.perf_counter_ns
    lat = []
    pts = 0
    for i in range(frames + 200):      # the first 200 warm up caps negotiation and caches
        buf = new_buffer(payload)
        buf.pts = pts
        buf.duration = duration
        pts += duration
        t0 = now()
        push("push-buffer", buf)
        sample = pull("pull-sample")
        t1 = now()
        if sample is None:
            raise RuntimeError(f"{element} x {n}: the pipeline stopped")
        if i >= 200:
            lat.append(t1 - t0)
    # throughput: a burst of pushes, then the pulls (appsrc queues; appsink holds max-buffers)
    t0 = now()
    for _ in range(frames):
        buf = new_buffer(payload)
        buf.pts = pts
        buf.duration = duration
        pts += duration
        push("push-buffer", buf)
        pull("pull-sample")
    fps = frames / ((now() - t0) / 1e9)
    src.emit("end-of-stream")
    pipeline.set_state(Gst.State.NULL)
    lat.sort()
    return {"case": element, "n": n, "p50": percentile(lat, 0.5) / 1e3,
            "p99": percentile(lat, 0.99) / 1e3, "fps": fps}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=20000, help="blocks per case (at least 10)")
    ap.add_argument("--case", action="append", default=[],
                    help="ELEMENT:N, ELEMENT one of identity, volume (repeatable)")
    args = ap.parse_args()
    if args.frames < 10:
        ap.error(f"--frames {args.frames}: at least 10 blocks per case")
    Gst.init(None)
    print(json.dumps({"gstreamer": Gst.version_string(),
                      "python": sys.version.split()[0]}), flush=True)
    for case in args.case or ["identity:5", "volume:5"]:
        element, _, n = case.partition(":")
        if element not in ELEMENTS or not n.isdigit():
            print(f"gst_chain: bad --case {case!r} (ELEMENT:N, ELEMENT one of "
                  f"{', '.join(ELEMENTS)})", file=sys.stderr)
            return 2
        print(json.dumps(run(element, int(n), args.frames)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
