"""benchmarks/bench_echo.py still runs and reports (few blocks, no WER; no time asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .room_audio import needs_echo

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_echo.py"


@needs_echo
def test_bench_echo_reports_costs_against_the_period_and_erle_over_time():
    proc = subprocess.run([sys.executable, str(BENCH), "--blocks", "20", "--repeat", "1",
                           "--no-wer", "--json"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    costs = report["cost_us"]
    for name in ("EchoCancel", "Denoise webrtc", "Denoise rnnoise", "EchoPath", "AEC3 bare"):
        assert costs[name]["p50"] > 0 and costs[name]["of_period"] > 0
    assert costs["EchoCancel"]["vs_bare"] > 0
    erle = report["erle"]
    assert set(erle) == {"quiet", "babble 20 dB", "white 20 dB", "jump +40 ms at 10 s",
                         "reference silent 8-12 s", "reference block 500 dropped"}
    assert erle["quiet"]["median_erle_db_after_3s"] >= 30.0
    # the echo alone, the noise left out, beside the node's noise-bound figure
    assert erle["babble 20 dB"]["echo_erle_after_3s"]["erle_db"] >= 30.0
    assert erle["reference block 500 dropped"]["reference_missing"] == 960
    assert all(r["serialization_events"] == 0 and r["engine_copies"] == 0
               for r in erle.values())
    assert "wer" not in report


def test_bench_echo_refuses_a_bad_size_in_one_line():
    proc = subprocess.run([sys.executable, str(BENCH), "--blocks", "0"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and "--blocks" in proc.stderr
