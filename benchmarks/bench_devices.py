"""Live device latency and audio-thread cost, per mode, against a running audio server.

    jackd --no-realtime -d dummy -r 48000 -p 960 &      # if none runs (jack_wait -c)
    .venv/bin/python benchmarks/bench_devices.py [--seconds 20] [--manifest manifests/five.yaml]
                                                 [--device system] [--json] [--no-loopback]

For each mode (queued, callback) it runs the manifest from the device's input to its output
through the StreamRunner and prints: end-to-end latency (ADC of the captured block to DAC of the
callback that plays it, PortAudio's clock), the latency the device's own timestamps give a block
that goes straight through (its "reported" latency) and the difference, the engine's time per
frame, the time spent inside our audio callback, and the counters that must stay zero.

With JACK it also measures the round trip of an impulse through the stream's own output port
connected straight to its input port (jack_connect), next to the latency PortAudio reports for
the stream and the ADC -> DAC span of its callback timestamps.

Absolute figures drift on these shared 2-core machines; compare the two modes within one run.
Nothing here asserts a time: the tests in tests/streaming/test_devices_*.py assert counts and
generous bounds.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from remotemedia.engine.data import NumpyData  # noqa: E402
from remotemedia.engine.session import Pipeline  # noqa: E402
from remotemedia.io.devices import DeviceSink, DeviceSource, MODES  # noqa: E402
from remotemedia.runner import StreamRunner  # noqa: E402


def run_mode(manifest: Path, device: str, mode: str, seconds: float) -> dict:
    pipeline = Pipeline.from_manifest(manifest)
    m = pipeline.manifest
    source = DeviceSource(m.audio, device, mode=mode)
    sink = DeviceSink(m.output_format, device)
    stats = StreamRunner(pipeline, source, sink, duration=seconds).run()
    dev = stats["device"]
    e2e = stats["latency_us"]["end_to_end"]
    reported = dev["timestamp_latency_us"]
    return {
        "mode": mode,
        "frames": stats["frames_in"],
        "e2e_ms": {k: round(v / 1000, 3) for k, v in e2e.items()},
        "reported_ms": round(reported / 1000, 3),
        "e2e_minus_reported_ms": round((e2e["p50"] - reported) / 1000, 3),
        "stream_latency_ms": {k: round(v * 1000, 3) for k, v in dev["latency_s"].items()},
        "engine_us": stats["latency_us"]["engine"],
        "callback_us": dev["callback_us"],
        "xruns": stats["xruns"],
        "drops": stats["drops"],
        "serialization_events": stats["serialization_events"],
        "copies": stats["copies"],
        "in_flight": stats["in_flight"],
    }


def _ports() -> set[str]:
    out = subprocess.run(["jack_lsp"], capture_output=True, text=True, check=True).stdout
    return {line.strip() for line in out.splitlines() if line.strip()}


def loopback(device: str, blocks: int = 40) -> dict:
    """An impulse out of the stream's output port, straight into its input port."""
    pipeline = Pipeline.from_manifest(ROOT / "manifests" / "passthrough.yaml")
    fmt = pipeline.manifest.audio
    block = fmt.block_size
    session = pipeline.session()
    source, sink = DeviceSource(fmt, device), DeviceSink(fmt, device)
    source.attach(session)
    sink.attach(session)
    signal = np.zeros(blocks * block, np.float32)
    at = 10 * block + 123
    signal[at] = 0.5
    before = _ports()
    captured = []
    with session, source, sink:
        stream = source.stream
        deadline = time.monotonic() + 5
        while True:
            new = _ports() - before
            ins = sorted(p for p in new if p.split(":")[-1].startswith("in_"))
            outs = sorted(p for p in new if p.split(":")[-1].startswith("out_"))
            if ins and outs:
                break
            if time.monotonic() > deadline:
                raise SystemExit("the stream's JACK ports did not appear")
            time.sleep(0.05)
        subprocess.run(["jack_disconnect", "system:capture_1", ins[0]], capture_output=True)
        subprocess.run(["jack_disconnect", outs[0], "system:playback_1"], capture_output=True)
        subprocess.run(["jack_connect", outs[0], ins[0]], check=True)
        for n in range(blocks):
            captured.append(source.read().copy())
            frame = NumpyData(signal[n * block:(n + 1) * block], sample_rate=fmt.sample_rate,
                              pts=n * block, seq=n)
            sink.write(session.push(frame)[0])
        reported = sum(stream.latency)
    hit = int(np.flatnonzero(np.concatenate(captured))[0])
    written = int(stream.play_tick[10]) * block + int(stream.play_offset[10]) + 123
    read = int(stream.seq_capture_tick[0]) * block + hit
    rate = fmt.sample_rate
    return {"round_trip_samples": read - written,
            "round_trip_ms": round((read - written) / rate * 1000, 3),
            "stream_latency_ms": round(reported * 1000, 3),
            "timestamp_adc_to_dac_ms": round(stream.timestamp_latency_s * 1000, 3)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--manifest", type=Path, default=ROOT / "manifests" / "five.yaml")
    ap.add_argument("--device", default="system", help="name or index (default: system)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--no-loopback", action="store_true", help="skip the JACK loopback")
    args = ap.parse_args(argv)
    results = [run_mode(args.manifest, args.device, mode, args.seconds) for mode in MODES]
    loop = None
    if not args.no_loopback and shutil.which("jack_connect") and \
            results[0]["e2e_ms"] is not None:
        loop = loopback(args.device)
    if args.json:
        print(json.dumps({"modes": results, "loopback": loop}, indent=2))
        return 0
    print(f"{args.manifest.name}, device {args.device}, {args.seconds:g} s per mode")
    print(f"{'mode':9} {'e2e p50':>8} {'p99':>8} {'max':>8} {'reported':>9} {'extra':>7} "
          f"{'engine p50/p99 us':>18} {'callback p50/p99/max us':>24} {'xruns':>6} {'drops':>6}")
    for r in results:
        e, c, g = r["e2e_ms"], r["callback_us"], r["engine_us"]
        xruns = r["xruns"]["input_overflow"] + r["xruns"]["output_underflow"]
        print(f"{r['mode']:9} {e['p50']:8.2f} {e['p99']:8.2f} {e['max']:8.2f} "
              f"{r['reported_ms']:9.2f} {r['e2e_minus_reported_ms']:7.2f} "
              f"{g['p50']:8.1f}/{g['p99']:<9.1f} {c['p50']:8.1f}/{c['p99']:.1f}/{c['max']:<8.1f} "
              f"{xruns:6d} {r['drops']:6d}")
    print("latencies in ms; 'reported' = outputBufferDacTime - inputBufferAdcTime of one "
          "callback; 'extra' = e2e p50 - reported (queued: one block by design)")
    if loop is not None:
        print(f"loopback (out port -> in port): round trip {loop['round_trip_samples']} samples "
              f"= {loop['round_trip_ms']:.2f} ms; PortAudio stream latency (in + out) "
              f"{loop['stream_latency_ms']:.2f} ms; callback timestamps ADC -> DAC "
              f"{loop['timestamp_adc_to_dac_ms']:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
