"""benchmarks/bench_health.py still runs and reports its baselines (tiny size; no time is
asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_health.py"


def test_health_benchmark_reports_the_chain_against_its_baselines():
    proc = subprocess.run([sys.executable, str(BENCH), "--seconds", "5", "--json"],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(proc.stdout.strip().splitlines()[-1])
    cases = {(r["case"], r["block"]) for r in rows}
    for block in (4000, 320):
        assert ("PassThrough (engine only)", block) in cases
        assert ("LevelMeter (native)", block) in cases
        assert ("stream-health chain (9 nodes)", block) in cases
    chain = [r for r in rows if r["case"].startswith("stream")]
    assert all(r["errors"] == 0 and r["events"] > 0 for r in chain)
    assert set(chain[0]["nodes_p50_us"]) == {"audio_level", "silence", "clipping", "balance",
                                             "speech", "timing", "session", "correlator",
                                             "health"}
    assert "streams per core" in proc.stdout
