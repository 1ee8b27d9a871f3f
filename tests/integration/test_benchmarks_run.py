"""The benchmark scripts still run and report (tiny sizes; no time is asserted here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def bench(script: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def system_gstreamer() -> bool:
    """True where the system Python has GStreamer's bindings (run_test.sh installs them)."""
    probe = ("import gi; gi.require_version('Gst', '1.0'); from gi.repository import Gst; "
             "Gst.init(None); assert Gst.ElementFactory.find('volume')")
    try:
        return subprocess.run(["/usr/bin/python3", "-c", probe], capture_output=True,
                              timeout=60).returncode == 0
    except OSError:
        return False


def test_engine_benchmark_reports_ratios_against_its_baselines():
    out = bench("bench_engine.py", "--frames", "300", "--seconds", "1", "--json")
    for case in ("bare calls N=5", "asyncio.Queue per stage N=5", "engine PassThrough N=5",
                 "engine PassThrough N=20", "engine PassThrough N=1 96000-smp",
                 "numpy multiply x20 (bare)", "engine Gain N=20 fused", "engine Gain N=20 unfused",
                 "engine Gain via process() N=20", "engine Mix chain N=20"):
        assert case in out
    assert "asyncio/engine p50" in out and "96000 vs 960 samples" in out
    report = json.loads(out.strip().splitlines()[-1])
    streams = {(r["manifest"], r["transfer"]): r for r in report["streams"]}
    assert set(streams) == {(m, t) for m in ("five.yaml", "voice.yaml") for t in (True, False)}
    assert all(r["streams_per_core"] > 0 and r["serialization_events"] == 0
               for r in streams.values())
    # handed over, five.yaml's gains write in place; shared, the first writer copies each block
    assert streams[("five.yaml", True)]["cow"] == 0
    assert streams[("five.yaml", False)]["cow"] == streams[("five.yaml", False)]["blocks"]
    # the fused run says so; the unfused one does not
    assert report["rows"]["Gain 20"]["fused"] == 20 and report["rows"]["Gain unfused 20"][
        "fused"] == 0
    if system_gstreamer():
        for n in (1, 5, 20):
            assert f"GStreamer volume N={n}" in out and f"GStreamer identity N={n}" in out
            assert report["rows"][f"gst volume {n}"]["p50"] > 0
    else:   # skipped, with a note saying why
        assert report["gstreamer"] and not any(k.startswith("gst ") for k in report["rows"])


def test_nodes_benchmark_covers_every_audio_node_and_voice():
    out = bench("bench_nodes.py", "--frames", "30", "--json")
    rows = json.loads(out.strip().splitlines()[-1])
    text = json.dumps(rows)
    for name in ("Resample", "VAD", "EnergyVAD", "FormatConvert", "ClippingDetector",
                 "SilenceDetector", "DCOffset", "voice.yaml"):
        assert name in text


def test_ipc_benchmark_runs_both_transports_without_pickling_frames():
    pytest.importorskip("iceoryx2")
    out = bench("bench_ipc.py", "--frames", "200", "--rounds", "1")
    assert "iceoryx2" in out and "mp_queue" in out
    assert "'serialization_events': 0" in out


def test_executors_benchmark_puts_the_thread_hop_beside_inline_with_nothing_copied():
    out = bench("bench_executors.py", "--frames", "300", "--rounds", "1", "--json")
    (row,) = json.loads(out.strip().splitlines()[-1])["rounds"]
    assert row["thread_round_trip_vs_inline"] > 0 and row["thread_pipelined_vs_inline"] > 0
    assert row["serialization_events"] == 0
    assert row["copies"] == {"engine": 0, "cow": 0, "io": 0}


def test_integrity_benchmark_reports_before_and_after_in_one_run():
    out = bench("bench_integrity.py", "--calls", "200", "--rounds", "2", "--json")
    report = json.loads(out.strip().splitlines()[-1])
    for row in ("meter, before", "meter, now", "boundary float, now", "boundary clip, now",
                "sink FLOAT, before", "sink FLOAT, now", "LevelMeter node"):
        assert report["us_per_block"][row] > 0
    assert set(report["ratios"]) >= {"meter now/before", "sink FLOAT now/before"}


def test_engine_benchmark_cases_are_independent():
    # A figure must not depend on what else the run measured: each case runs in a process of
    # its own, forked before any case ran, and does exactly the same (copies, fused nodes,
    # calls, frames out) alone, after every other case, or run again in one process.
    sys.path.insert(0, str(BENCH.parent))
    from benchmarks import bench_engine as b

    def poke():
        b.POKED = getattr(b, "POKED", 0) + 1     # state a case leaves behind
        return [b.POKED, __import__("os").getpid()]
    first, second = b.isolated(poke), b.isolated(poke)
    assert first[0] == second[0] == 1 and first[1] != second[1]
    assert not hasattr(b, "POKED")

    cases = [c for c in b.engine_cases((1, 5, 20), 120) if c[2] is b.bench_case]
    alone = {key: b.isolated(fn, *args)["did"] for key, _label, fn, args in cases}
    rows, independent = b.run_rounds(cases, 2)
    assert independent and {key: row["did"] for key, row in rows.items()} == alone
    # and in one process, one after the other (what the engine itself must guarantee: a
    # session's path does not depend on the sessions before it)
    assert {key: fn(*args)["did"] for key, _label, fn, args in cases} == alone
    assert alone[("Gain", 20)]["fused"] == 20 and alone[("Gain unfused", 20)]["fused"] == 0
