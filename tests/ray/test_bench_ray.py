"""The Ray benchmark still runs and reports every row (tiny sizes; no time is asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_ray.py"


@pytest.mark.slow
def test_bench_ray_reports_pool_ray_and_both_hops(ray_cluster):
    env = dict(os.environ, RAY_ADDRESS=ray_cluster.get_runtime_context().gcs_address)
    proc = subprocess.run([sys.executable, str(BENCH), "--files", "2", "--seconds", "2",
                           "--frames", "150", "--rounds", "1", "--json"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    for runner in ("in-process", "pool", "ray"):
        assert report["batch"][runner]["audio_h_per_wall_h"] > 0
    hops = report["hops"]
    assert hops["inline"]["serialization_events_per_block"] == 0
    assert hops["ray"]["serialization_events_per_block"] == 2
    assert hops["ray"]["node_round_trip_us"]["p50"] > 0
    assert "p50_us" in hops["process"] or "skipped" in hops["process"]
    assert "audio h/wall h" in proc.stdout and "p99 / 20 ms" in proc.stdout
