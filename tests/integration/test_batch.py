"""`remotemedia batch` on a local process pool: reports, summary, bad inputs, resume, SIGINT."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from remotemedia.testing import chain as harness_chain, to_yaml
from remotemedia.batch import expand_inputs, input_key, strict_json
from remotemedia.engine.errors import UsageError
from tests.signal_support import CliRun, each_signal

ROOT = Path(__file__).resolve().parents[2]
MONITOR = ROOT / "manifests" / "monitor.yaml"

NODES = textwrap.dedent('''
    """Test nodes for batch runs, imported only through --allow-import."""
    import os
    import time

    import numpy as np

    from remotemedia.engine.node import Node, Param


    class FailOnLoud(Node):
        node_type = "FailOnLoud"

        def process(self, frame):
            if np.max(np.abs(frame.array)) > 0.9:
                raise ValueError(f"too loud at pts {frame.pts}")
            return frame


    class DieOnLoud(Node):
        node_type = "DieOnLoud"

        def process(self, frame):
            if np.max(np.abs(frame.array)) > 0.9:
                os._exit(3)
            return frame


    class Slow(Node):
        node_type = "Slow"
        params = (Param("ms", float, 2.0),)

        def process(self, frame):
            time.sleep(self.ms / 1000)
            return frame
''')


def strict_loads(text: str):
    """json.loads that refuses NaN and Infinity, as RFC 8259 does."""
    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")
    return json.loads(text, parse_constant=refuse)


def write_wav(path: Path, seconds: float, *, clip_at: float | None = None,
              silence: tuple[float, float] | None = None, rate: int = 48000,
              seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    x = (0.05 * rng.standard_normal(int(seconds * rate))).astype(np.float32)
    if clip_at is not None:
        i = int(clip_at * rate)
        x[i:i + 50] = 1.0
    if silence is not None:
        x[int(silence[0] * rate):int(silence[1] * rate)] = 0.0
    sf.write(path, x, rate, subtype="FLOAT")
    return path


@pytest.fixture
def recordings(tmp_path) -> list[Path]:
    d = tmp_path / "in"
    d.mkdir()
    return [write_wav(d / "quiet.wav", 6, seed=1),
            write_wav(d / "clipped.wav", 6, clip_at=2.0, seed=2),
            write_wav(d / "gap.wav", 8, silence=(2.0, 5.0), seed=3)]


@pytest.fixture
def env(tmp_path) -> dict:
    (tmp_path / "rm_batch_nodes.py").write_text(NODES)
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path), e.get("PYTHONPATH", "")]))
    e.pop("RAY_ADDRESS", None)
    return e


def batch(env, *args, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "remotemedia", "batch", *map(str, args)],
                          env=env, capture_output=True, text=True, timeout=timeout)


def chain(tmp_path: Path, *node_types: str) -> Path:
    path = tmp_path / "chain.yaml"
    path.write_text(to_yaml(harness_chain(*((f"n{i}", t) for i, t in enumerate(node_types)))))
    return path


def report(out: Path, wav: Path) -> dict:
    return strict_loads((out / "reports" / f"{input_key(wav)}.json").read_text())


def test_a_batch_writes_a_report_and_events_per_input_and_a_summary(env, recordings, tmp_path):
    out = tmp_path / "out"
    done = batch(env, "--manifest", MONITOR, *recordings, "--out", out, "--workers", 2,
                 "--json")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    summary = strict_loads(done.stdout.splitlines()[-1])
    assert summary == strict_loads((out / "summary.json").read_text())
    assert (summary["inputs"], summary["ok"], summary["failed"]) == (3, 3, 0)
    assert summary["executor"] == "pool" and summary["interrupted"] is False
    assert summary["audio_s"] == pytest.approx(20.0)
    assert summary["audio_hours_per_wall_hour"] > 0
    assert summary["alerts"]["clipping"] == {"count": 1, "inputs": 1}
    assert summary["alerts"]["silence_start"]["inputs"] == 1
    assert "level" not in summary["alerts"]          # readings are not alerts
    clipped = report(out, recordings[1])
    assert clipped["status"] == "ok" and clipped["audio_s"] == pytest.approx(6.0)
    assert clipped["alerts"] == {"clipping": 1}
    assert clipped["events_by_type"]["level"] == 6   # one reading a second
    assert clipped["stats"]["frames_in"] == 300 and clipped["stats"]["errors"] == 0
    events = [strict_loads(line) for line in
              (out / clipped["events_file"]).read_text().splitlines()]
    assert len(events) == clipped["events"]
    clip = [e for e in events if e["type"] == "clipping"]
    assert clip[0]["pts"] == 2 * 48000
    # the table on stderr, and the last progress line
    assert "clipping" in done.stderr and "audio h per wall h" in done.stderr
    assert "batch: 3/3 inputs (0 failed)" in done.stderr
    assert not list(out.rglob("*.tmp"))


def test_bad_inputs_are_their_own_failures_with_one_line_reasons(env, recordings, tmp_path):
    bad = tmp_path / "in"
    (bad / "not_audio.wav").write_text("this is text")
    write_wav(bad / "at16k.wav", 1, rate=16000)
    out = tmp_path / "out"
    # --exact-format: a file at another rate is refused, not converted (test_format_conversion)
    done = batch(env, "--manifest", MONITOR, *recordings, bad / "not_audio.wav",
                 bad / "at16k.wav", bad / "missing.wav", "--out", out, "--exact-format")
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    summary = strict_loads((out / "summary.json").read_text())
    assert (summary["ok"], summary["failed"]) == (3, 3)
    reasons = {Path(f["input"]).name: f["reason"] for f in summary["failures"]}
    assert "cannot read" in reasons["not_audio.wav"] and "not_audio.wav" in reasons["not_audio.wav"]
    assert "16000 Hz" in reasons["at16k.wav"] and "48000 Hz" in reasons["at16k.wav"]
    assert "not found" in reasons["missing.wav"]
    assert all("\n" not in r for r in reasons.values())
    for name, reason in reasons.items():
        assert f"{name}: {reason}" in done.stderr
        assert report(out, bad / name)["status"] == "failed"


def test_a_node_that_fails_fails_that_input_only(env, recordings, tmp_path):
    manifest = chain(tmp_path, "rm_batch_nodes:FailOnLoud", "LevelMeter")
    out = tmp_path / "out"
    done = batch(env, "--manifest", manifest, "--allow-import", "rm_batch_nodes", *recordings,
                 "--out", out)
    assert done.returncode == 1, done.stderr
    failed = report(out, recordings[1])
    assert failed["status"] == "failed"
    assert "'n0'" in failed["reason"] and "too loud at pts 96000" in failed["reason"]
    # what ran before the failure is kept: the readings up to it
    assert failed["stats"]["frames_in"] == 101 and failed["events"] == 100
    assert [report(out, r)["status"] for r in (recordings[0], recordings[2])] == ["ok", "ok"]


def test_a_worker_process_that_dies_fails_its_input_and_the_rest_go_on(env, recordings,
                                                                      tmp_path):
    manifest = chain(tmp_path, "rm_batch_nodes:DieOnLoud")
    out = tmp_path / "out"
    more = [write_wav(tmp_path / "in" / f"more{i}.wav", 2, seed=10 + i) for i in range(4)]
    inputs = [recordings[0], more[0], recordings[1], more[1], recordings[2], *more[2:]]
    done = batch(env, "--manifest", manifest, "--allow-import", "rm_batch_nodes", *inputs,
                 "--out", out, "--workers", 2)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "worker process died" in report(out, recordings[1])["reason"]
    # inputs running beside it when it broke the pool are run again, and finish
    assert [report(out, r)["status"] for r in inputs if r != recordings[1]] == ["ok"] * 6


def test_a_rerun_skips_inputs_done_and_retries_failed_ones(env, recordings, tmp_path):
    out = tmp_path / "out"
    late = tmp_path / "in" / "late.wav"
    late.write_text("not yet audio")
    first = batch(env, "--manifest", MONITOR, *recordings, late, "--out", out)
    assert first.returncode == 1
    reports = {r: (out / "reports" / f"{input_key(r)}.json") for r in recordings}
    before = {r: p.stat().st_mtime_ns for r, p in reports.items()}
    write_wav(late, 2)   # fixed since
    second = batch(env, "--manifest", MONITOR, *recordings, late, "--out", out, "--json")
    assert second.returncode == 0, second.stderr
    summary = strict_loads(second.stdout.splitlines()[-1])
    assert (summary["ok"], summary["failed"], summary["resumed"]) == (4, 0, 3)
    assert summary["audio_s"] == pytest.approx(22.0)        # resumed inputs count in totals
    assert {r: p.stat().st_mtime_ns for r, p in reports.items()} == before
    assert report(out, late)["status"] == "ok"


@each_signal
def test_a_signal_stops_cleanly_keeping_finished_inputs_and_a_rerun_finishes(env, tmp_path,
                                                                            sig, code, reason):
    d = tmp_path / "many"
    d.mkdir()
    wavs = [write_wav(d / f"r{i:02d}.wav", 1, seed=i) for i in range(12)]
    # 50 blocks x 2 ms: 0.1 s an input
    manifest = chain(tmp_path, "rm_batch_nodes:Slow", "LevelMeter")
    out = tmp_path / "out"
    with CliRun(["batch", "--manifest", manifest, "--allow-import", "rm_batch_nodes", d,
                 "--out", out, "--workers", "1"], env=env) as run:
        run.wait_ready(lambda: any((out / "reports").glob("*.json")), "a finished input",
                       timeout=60)
        done = run.stop(sig)
    done.assert_clean_stop(sig)
    stderr = done.stderr
    summary = strict_loads((out / "summary.json").read_text())
    assert summary["interrupted"] is True
    assert summary["ok"] >= 1 and summary["not_run"] >= 1
    assert summary["ok"] + summary["not_run"] == 12 and summary["failed"] == 0
    kept = list((out / "reports").glob("*.json"))
    assert len(kept) == summary["ok"]
    assert all(strict_loads(p.read_text())["status"] == "ok" for p in kept)
    assert not list(out.rglob("*.tmp"))
    assert "run the same command again to resume" in stderr
    rerun = batch(env, "--manifest", manifest, "--allow-import", "rm_batch_nodes", d,
                  "--out", out, "--workers", 2)
    assert rerun.returncode == 0, rerun.stderr
    final = strict_loads((out / "summary.json").read_text())
    assert (final["ok"], final["resumed"]) == (12, summary["ok"])
    assert {p.stem for p in (out / "reports").glob("*.json")} == {input_key(w) for w in wavs}


@pytest.mark.parametrize("args,message", [
    (["{m}", "{d}/nothing*.wav"], "input pattern '{d}/nothing*.wav' matches no file"),
    (["{m}", "@{d}/absent.txt"], "cannot read list file {d}/absent.txt"),
    (["{d}/absent.yaml", "{d}/x.wav"], "{d}/absent.yaml: file not found"),
    (["{m}", "{d}/x.wav", "--workers", "0"], "expected a positive whole number"),
])
def test_bad_usage_is_one_line_and_exit_2(env, tmp_path, args, message):
    filled = [a.format(m=MONITOR, d=tmp_path) for a in args]
    done = batch(env, "--manifest", *filled, "--out", tmp_path / "out")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message.format(d=tmp_path) in lines[0]


def test_inputs_expand_from_lists_directories_and_globs_once_each(tmp_path, monkeypatch):
    a = write_wav(tmp_path / "a.wav", 0.1)
    sub = tmp_path / "sub"
    sub.mkdir()
    b = write_wav(sub / "a.wav", 0.1)        # the same stem in another folder
    (sub / "notes.md").write_text("not audio")
    (tmp_path / "list.txt").write_text("# calls of the day\na.wav\n\nsub/*.wav\n")
    monkeypatch.chdir(tmp_path)
    got = expand_inputs(["@list.txt", "sub", str(a), "*.wav"])
    assert [p.resolve() for p in got] == [a.resolve(), b.resolve()]
    assert input_key(a) != input_key(b) and input_key(a).startswith("a-")
    assert expand_inputs(["list.txt"]) == expand_inputs(["@list.txt"])
    with pytest.raises(UsageError, match="holds no audio file"):
        (tmp_path / "empty").mkdir()
        expand_inputs(["empty"])


def test_strict_json_writes_non_finite_numbers_as_null():
    text = strict_json({"a": float("nan"), "b": [1.0, float("-inf")], "c": np.float32(0.5)})
    assert strict_loads(text) == {"a": None, "b": [1.0, None], "c": 0.5,
                                  "non_finite": ["a", "b[1]"]}
