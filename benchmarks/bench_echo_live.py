"""EchoCancel live on the JACK dummy server: the graph's output looped back into its input
(jack_connect, port to port), the canceller's reference what the graph plays (a feedback
connection), as tests/streaming/test_echo_device.py runs it. Per device mode (queued, callback)
and per alignment (the device clocks, `align: auto`; the reference by its pts only, `align:
pts`, the baseline: what a live run did before the device clocks reached the canceller):
the delay the canceller used and its source, ERLE after 4 s (median, min), when it converged,
and what the run dropped. Real time: each run takes --seconds.

Measures and prints; asserts nothing. Needs a JACK server (REMOTEMEDIA_AUDIO_SERVER=jack).

    REMOTEMEDIA_AUDIO_SERVER=jack .venv/bin/python benchmarks/bench_echo_live.py \\
        [--seconds 10] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.args import at_least  # noqa: E402

SETTLED_S = 4.0


def one_run(device, align: str, mode: str, seconds: float) -> dict:
    import tests.streaming.test_echo_device as live
    live.SECONDS = seconds
    events, stats = live.run_looped(device, align, mode)
    erle = [e["erle_db"] for e in events if e["time_s"] > SETTLED_S and e["erle_db"] is not None]
    delays = [e["delay_ms"] for e in events if e["delay_ms"] is not None]
    return {
        "delay_source": events[-1]["delay_source"] if events else None,
        "delay_ms": {"min": min(delays), "max": max(delays)} if delays else None,
        "median_erle_db_after_4s": round(statistics.median(erle), 1) if erle else None,
        "min_erle_db_after_4s": min(erle) if erle else None,
        "converged_at_s": events[-1]["converged_at_s"] if events else None,
        "reference_missing_per_window": (events[-2]["reference_missing"]
                                         if len(events) > 1 else None),
        "drops": stats["drops"], "xruns": stats["xruns"],
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=at_least(5), default=10, help="length of each run")
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = ap.parse_args(argv)
    from tests.streaming.device_support import require_jack
    require_jack()
    from remotemedia.io import devices
    device = next(d for d in devices.list_devices() if d.host_api.startswith("JACK"))
    report = {}
    for align, mode in (("auto", "queued"), ("auto", "callback"), ("pts", "queued")):
        report[f"{align} {mode}"] = one_run(device, align, mode, float(args.seconds))
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"EchoCancel on a JACK loopback, {args.seconds} s per run")
    for name, row in report.items():
        print(f"  align {name:16s} {row['delay_source']}: delay {row['delay_ms']} ms; ERLE after "
              f"{SETTLED_S:g} s median {row['median_erle_db_after_4s']} dB, min "
              f"{row['min_erle_db_after_4s']}; converged at {row['converged_at_s']} s; "
              f"reference missing per window {row['reference_missing_per_window']}; drops "
              f"{row['drops']}, xruns {row['xruns']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
