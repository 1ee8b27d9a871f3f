"""benchmarks/bench_monitor.py still runs and reports its phases (tiny size; no time asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_monitor.py"


def test_monitor_benchmark_reports_each_phase_against_the_headless_baseline():
    proc = subprocess.run([sys.executable, str(BENCH), "--seconds", "1", "--device", "virtual",
                           "--no-tui", "--manifest", str(BENCH.parents[1] / "manifests"
                                                         / "meter.yaml"), "--json"],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [r["phase"] for r in rows] == ["headless", "monitor 20 Hz", "headless again"]
    monitored = rows[1]
    assert monitored["frames"] == rows[0]["frames"] == 50
    assert monitored["snapshots_sent"] > 0 and monitored["client_received"]["snapshot"] > 0
    assert "p99_ratio" in monitored and "monitor_share_of_wall" in monitored
