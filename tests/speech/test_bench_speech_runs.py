"""benchmarks/bench_speech.py still runs and reports (one short utterance; no time asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .speech_audio import needs_model

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_speech.py"


@needs_model
def test_bench_speech_reports_load_latency_rtf_and_memory():
    proc = subprocess.run([sys.executable, str(BENCH), "--lengths", "1", "--rounds", "1",
                           "--no-wer", "--json"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    stt = json.loads(proc.stdout)["stt"]
    assert set(stt["load"]) == {"import_s", "cold_load_s", "warm_load_s"}
    (u,) = stt["utterances"]
    assert u["seconds"] == 1.0 and u["latency_ms"] > 0 and u["rtf"] > 0 and u["direct_ms"] > 0
    assert stt["rss_mib_loaded"] > stt["rss_mib_before"]


def test_bench_speech_refuses_a_bad_length_in_one_line():
    proc = subprocess.run([sys.executable, str(BENCH), "--lengths", "0,40"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--lengths" in proc.stderr
