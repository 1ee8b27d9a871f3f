"""benchmarks/bench_record.py still runs and reports its ratios (tiny sizes; no time asserted)."""

from __future__ import annotations

import json

from tests.integration.test_benchmarks_run import bench


def test_record_benchmark_reports_trace_and_recording_against_plain_and_replay_speed():
    out = bench("bench_record.py", "--blocks", "300", "--seconds", "2", "--json")
    doc = json.loads(out.strip().splitlines()[-1])
    assert set(doc["per_block"]) == {"plain", "traced", "recording"}
    assert "overhead_p50_pct" in doc["per_block"]["traced"]
    assert doc["per_block"]["recording"]["own_calls_p50_us"] > 0
    assert [r["manifest"] for r in doc["replay"]] == ["five.yaml", "meter.yaml"]
    assert all(r["x_realtime"] > 0 for r in doc["replay"])
    assert "vs plain" in out and "x real time" in out
