"""benchmarks/bench_tts.py still runs and reports every engine (tiny sizes; no time asserted)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_tts.py"


def test_tts_benchmark_reports_each_engine():
    proc = subprocess.run([sys.executable, str(BENCH), "--sentences", "2", "--long-seconds",
                           "3", "--json"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    engines = [r["engine"] for r in report["rows"]]
    assert engines == (["piper"] if importlib.util.find_spec("piper") else []) + ["espeak"]
    for row in report["rows"]:
        assert row["first_audio_ms_p50"] > 0 and row["rtf"] > 0 and row["audio_s"] > 1
        assert row["engine_rate"] == 22050 and row["peak_held_mib"] > 0
        assert row["long_text_s"] >= 3


def test_a_bad_size_is_one_line_exit_2():
    proc = subprocess.run([sys.executable, str(BENCH), "--sentences", "0"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and "below the minimum" in proc.stderr
