"""A recording keeps what it took, whatever ends the run: SIGKILL, a crash (a node that aborts
the process), a full disk (a 2 MiB tmpfs) and a file-size limit (RLIMIT_FSIZE). Every block in
timeline.csv has its input, its events and its output on disk; a full disk or a size limit is
one line naming the file and the OS's reason; `replay` says where the recording was cut and
finds no difference in what was kept.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import soundfile as sf

from remotemedia.recording import Recording
from remotemedia.testing import wait_until

RM = [sys.executable, "-m", "remotemedia"]
#: one event every block, so that a lost event shows
METERED = textwrap.dedent("""
    version: v1
    metadata: {name: metered}
    audio: {sample_rate: 48000, block_size: 960, channels: 1}
    nodes:
      - {id: gain, node_type: Gain, params: {db: -6.0}}
      - {id: meter, node_type: LevelMeter, params: {every: 1}}
    connections:
      - {from: input, to: gain}
      - {from: gain, to: meter}
      - {from: meter, to: output}
""")
CRASH_NODES = textwrap.dedent('''
    import os
    from remotemedia.engine.node import Node, Param

    class AbortAt(Node):
        """Passes frames on; aborts the whole process (SIGABRT, as a crash) at call `at`."""
        node_type = "AbortAt"
        params = (Param("at", int, 30),)

        def process(self, frame):
            self.calls = getattr(self, "calls", 0) + 1
            if self.calls == self.at:
                os.abort()
            return frame
''')


@pytest.fixture
def metered(tmp_path) -> Path:
    path = tmp_path / "metered.yaml"
    path.write_text(METERED)
    return path


def rows(rec: Path) -> list[list[str]]:
    path = rec / "timeline.csv"
    if not path.exists():
        return []
    lines = path.read_text().split("\n")[1:-1]   # header; only whole lines
    return [line.split(",") for line in lines]


def check_consistent(rec: Path) -> int:
    """Every block in the timeline has its input samples in input.wav, its event in
    events.jsonl and its output in output.wav; returns the last block's seq."""
    timeline = rows(rec)
    assert timeline, "no block reached timeline.csv"
    seqs = [int(r[0]) for r in timeline]
    samples = sum(int(r[2]) for r in timeline)
    assert sf.info(str(rec / "input.wav")).frames >= samples
    assert sf.info(str(rec / "output.wav")).frames >= samples
    lines = (rec / "events.jsonl").read_text().split("\n")[:-1]
    evented = {json.loads(line)["seq"] for line in lines}
    missing = sorted(set(seqs) - evented)
    assert not missing, f"blocks in the timeline without their event: {missing[:10]}"
    return seqs[-1]


def replay(rec: Path, *extra) -> tuple[dict, str]:
    out = subprocess.run([*RM, "replay", str(rec), "--json", *map(str, extra)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1]), out.stderr


def assert_cut_and_identical(rec: Path, last_seq: int, *extra) -> None:
    result, said = replay(rec, *extra)
    assert result["cut"]["last_seq"] == last_seq
    assert "the recording was cut" in said and f"after block {last_seq}" in said
    vs = result["vs_recording"]
    assert vs["output"]["identical"] or vs["output"]["first_difference"] is None, vs["output"]
    assert vs["output"]["frames"][0] > 0
    assert vs["events"]["count"] == 0, vs["events"]["first"]
    assert vs["events"]["events"][0] == Recording(rec).blocks


def test_a_sigkilled_realtime_recording_keeps_every_block_it_indexed(tmp_path, metered):
    rec = tmp_path / "rec"
    proc = subprocess.Popen([*RM, "stream", "-m", str(metered), "-i", "sine", "-o", "null",
                             "--realtime", "-d", "60", "--record", str(rec)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: len(rows(rec)) >= 60, "60 blocks in timeline.csv", timeout=60)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not (rec / "report.json").exists()
    last = check_consistent(rec)
    assert last >= 59
    assert_cut_and_identical(rec, last)


def test_a_crashed_run_keeps_its_recording(tmp_path, metered):
    (tmp_path / "rm_crash_nodes.py").write_text(CRASH_NODES)
    manifest = tmp_path / "crash.yaml"
    manifest.write_text(METERED.replace(
        "  - {id: meter,", "  - {id: crash, node_type: 'rm_crash_nodes:AbortAt', "
        "params: {at: 80}}\n  - {id: meter,").replace(
        "{from: gain, to: meter}", "{from: gain, to: crash}\n  - {from: crash, to: meter}"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))}
    rec = tmp_path / "rec"
    out = subprocess.run([*RM, "stream", "-m", str(manifest), "--allow-import",
                          "rm_crash_nodes", "-i", "sine", "-o", "null", "--realtime", "-d",
                          "10", "--record", str(rec)], capture_output=True, timeout=120,
                         env=env)
    assert out.returncode == -signal.SIGABRT, out.stderr
    last = check_consistent(rec)
    assert last >= 40   # 80 blocks ran; what the last writer tick took may be gone
    # the same graph without the node that crashes: the same output and events
    assert_cut_and_identical(rec, last, "--manifest", metered)


@pytest.fixture
def tiny_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _limit_file_size():
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))


@pytest.mark.parametrize("end", ["full disk", "file-size limit"])
@pytest.mark.parametrize("pace", ["fast", "realtime"])
def test_a_full_disk_or_a_size_limit_is_one_line_and_keeps_what_was_written(
        tmp_path, metered, end, pace, request):
    if end == "full disk":
        rec, limit, cause = request.getfixturevalue("tiny_disk") / "rec", None, \
            "No space left on device (ENOSPC)"
    else:
        rec, limit, cause = tmp_path / "rec", _limit_file_size, "File too large (EFBIG)"
    seconds = "8" if pace == "realtime" else "30"
    out = subprocess.run([*RM, "stream", "-m", str(metered), "-i", "sine", "-o", "null",
                          "-d", seconds, "--record", str(rec)]
                         + (["--realtime"] if pace == "realtime" else []),
                         capture_output=True, text=True, timeout=120, preexec_fn=limit)
    assert out.returncode == 1, out.stderr
    errors = [line for line in out.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "Traceback" not in out.stderr, out.stderr
    assert cause in errors[0] and "failed" in errors[0], errors[0]
    assert any(f"writing {name} failed" in errors[0] for name in ("input.wav", "output.wav",
                                                                   "events.jsonl",
                                                                   "timeline.csv")), errors[0]
    assert "System error" not in out.stderr
    last = check_consistent(rec)
    assert last >= 10
    for name in ("output.wav", "events.jsonl"):
        assert (rec / name).stat().st_size > 1000, f"{name} was left (nearly) empty"
    if end == "full disk":
        # the replay must read it where it lies: copy it off the full disk first
        import shutil
        copy = tmp_path / "copy"
        shutil.copytree(rec, copy)
        rec = copy
    assert_cut_and_identical(rec, last)
