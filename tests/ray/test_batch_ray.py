"""`remotemedia batch --ray` on a real Ray cluster gives the reports the local pool gives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from remotemedia.batch import input_key, run_batch

pytestmark = pytest.mark.usefixtures("ray_cluster")

MONITOR = Path(__file__).resolve().parents[2] / "manifests" / "monitor.yaml"
TIMING = ("wall_s",)
STATS_TIMING = ("duration_s", "realtime_factor", "latency_us")


def without_timing(report: dict) -> dict:
    """A report less what measures wall-clock time (which differs from run to run)."""
    report = {k: v for k, v in report.items() if k not in TIMING}
    stats = {k: v for k, v in report["stats"].items() if k not in STATS_TIMING}
    stats["nodes"] = {node_id: {k: v for k, v in node.items() if k != "latency_us"}
                      for node_id, node in stats["nodes"].items()}
    report["stats"] = stats
    return report


@pytest.fixture
def recordings(tmp_path) -> list[Path]:
    d = tmp_path / "in"
    d.mkdir()
    rng = np.random.default_rng(7)
    paths = []
    for i in range(4):
        x = (0.05 * rng.standard_normal(48000 * 5)).astype(np.float32)
        if i == 1:
            x[48000:48000 + 40] = -1.0                       # clipping at 1 s
        if i == 2:
            x[48000 * 1:48000 * 4] = 0.0                     # 3 s of silence
        if i == 3:
            x += 0.2                                         # a DC offset
        paths.append(d / f"take{i}.wav")
        sf.write(paths[-1], x, 48000, subtype="FLOAT")
    (d / "broken.wav").write_text("not audio")
    paths.append(d / "broken.wav")
    return paths


def test_ray_tasks_give_the_same_reports_as_the_local_pool(recordings, tmp_path):
    pool = run_batch(str(MONITOR), [str(p) for p in recordings], tmp_path / "pool",
                     workers=2, progress=None)
    ray = run_batch(str(MONITOR), [str(p) for p in recordings], tmp_path / "ray",
                    use_ray=True, progress=None)
    assert (pool.exit_code, ray.exit_code) == (1, 1)          # broken.wav, in both
    assert ray.summary["executor"] == "ray" and pool.summary["executor"] == "pool"
    assert ray.summary["ok"] == pool.summary["ok"] == 4
    assert ray.summary["alerts"] == pool.summary["alerts"]
    assert {"clipping", "silence_start", "silence_end", "dc_offset"} <= set(ray.summary["alerts"])
    for path in recordings:
        key = input_key(path)
        got = json.loads((tmp_path / "ray" / "reports" / f"{key}.json").read_text())
        want = json.loads((tmp_path / "pool" / "reports" / f"{key}.json").read_text())
        if want["status"] == "ok":
            assert without_timing(got) == without_timing(want)
        else:
            assert got["reason"] == want["reason"] and "broken.wav" in got["reason"]
        events = "events/" + key + ".jsonl"
        assert (tmp_path / "ray" / events).read_text() == \
            (tmp_path / "pool" / events).read_text()


def test_the_command_line_runs_a_batch_on_the_cluster_at_an_address(ray_cluster, recordings,
                                                                     tmp_path):
    address = ray_cluster.get_runtime_context().gcs_address
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    done = subprocess.run([sys.executable, "-m", "remotemedia", "batch", "--manifest",
                           str(MONITOR), *map(str, recordings[:2]), "--out",
                           str(tmp_path / "out"), "--ray", address, "--json"],
                          env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    summary = json.loads(done.stdout.splitlines()[-1])
    assert (summary["executor"], summary["ok"], summary["failed"]) == ("ray", 2, 0)


def test_an_unreachable_cluster_is_one_line_and_exit_1(recordings, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    done = subprocess.run([sys.executable, "-m", "remotemedia", "batch", "--manifest",
                           str(MONITOR), str(recordings[0]), "--out", str(tmp_path / "out"),
                           "--ray=127.0.0.1:1"],
                          env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "cannot reach a Ray cluster at 127.0.0.1:1" in done.stderr
