"""benchmarks/bench_record_disk.py still runs and reports time to disk (no time asserted)."""

from __future__ import annotations

import json

from tests.integration.test_benchmarks_run import bench


def test_record_disk_benchmark_reports_time_to_disk_of_events_and_rows():
    out = bench("bench_record_disk.py", "--seconds", "1", "--json")
    doc = json.loads(out.strip().splitlines()[-1])
    for name in ("events.jsonl", "timeline.csv"):
        assert doc[name]["blocks"] > 0
        assert doc[name]["max_ms"] >= doc[name]["p50_ms"] >= 0
    assert "time to disk" in out
