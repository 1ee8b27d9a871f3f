"""`tui` and `tui --spawn` in a real terminal (tmux), stopped by SIGINT or SIGTERM sent to the
TUI: it quits as q does (the run stopped and its recording finished; a spawned run asked to stop
and its report written), exit 130 / 143."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys

import pytest

from tests.signal_support import each_signal

from .conftest import ROOT
from .test_terminal import HEIGHT, TMUX, WIDTH, Tmux, read_big_counter, wait_for

pytestmark = pytest.mark.skipif(TMUX is None, reason="needs tmux (run_test.sh installs it)")


def _start(cwd, args: str, rc_file, **env_extra) -> Tmux:
    """`remotemedia ARGS` in a detached tmux session run from `cwd`, its exit code written to
    `rc_file` when it ends."""
    env = {**os.environ, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", **env_extra}
    env.pop("TMUX", None)
    command = (f"cd {shlex.quote(str(cwd))} && {shlex.quote(sys.executable)} -m remotemedia "
               f"{args}; echo $? > {shlex.quote(str(rc_file))}")
    tmux = Tmux()
    subprocess.run([TMUX, "-L", tmux.socket, "-f", "/dev/null", "-u", "new-session", "-d",
                    "-s", "tui", "-x", str(WIDTH), "-y", str(HEIGHT), command],
                   check=True, env=env, timeout=20)
    return tmux


@each_signal
def test_a_signal_quits_a_spawned_tui_and_stops_its_run(tmp_path, sig, code, reason):
    rc_file = tmp_path / "rc"
    tmux = _start(ROOT, "tui --spawn -m manifests/meter.yaml -i sine -o null", rc_file,
                  XDG_RUNTIME_DIR=str(tmp_path))
    folder = tmp_path / "remotemedia"
    child = None
    try:
        first = wait_for(lambda: read_big_counter(tmux.screen(), "frames in"),
                         "the child's frame counter on screen", screen=tmux.screen)
        wait_for(lambda: (n := read_big_counter(tmux.screen(), "frames in")) and n > first,
                 "the counter to advance", screen=tmux.screen)
        (log,) = folder.glob("spawned-*.log")          # spawned-<the TUI's pid>.log
        (sock,) = folder.glob("*.sock")                 # <the run's pid>.sock
        tui_pid, child = int(log.stem.split("-")[1]), int(sock.stem)
        os.kill(tui_pid, sig)
        wait_for(rc_file.exists, "the TUI to exit", timeout=30, screen=tmux.screen)
        text = log.read_text()
        assert rc_file.read_text().strip() == str(code), text
        # the run was stopped (not left behind), and wrote its whole report
        assert not _running(child)
        assert "Traceback" not in text
        report = json.loads(text.strip().splitlines()[-1])
        assert report["stop_reason"] == "stopped" and report["frames_out"] >= first
    finally:
        tmux("kill-server", check=False)
        if child is not None and _running(child):   # a run left behind must not outlive us
            os.kill(child, 9)


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _pane_child(tmux: Tmux) -> int:
    """The process the tmux pane's shell runs (the TUI)."""
    shell = int(tmux("display-message", "-p", "-t", "tui", "#{pane_pid}").stdout.strip())
    with open(f"/proc/{shell}/task/{shell}/children") as f:
        (child,) = f.read().split()
    return int(child)


@each_signal
def test_a_signal_quits_the_tui_finishing_its_recording(tmp_path, sig, code, reason):
    rc_file = tmp_path / "rc"
    tmux = _start(tmp_path, f"tui --manifest {shlex.quote(str(ROOT / 'manifests/meter.yaml'))} "
                  "-i sine -o null", rc_file)
    try:
        wait_for(lambda: read_big_counter(tmux.screen(), "frames in"),
                 "the frame counter on screen", screen=tmux.screen)
        tmux("send-keys", "-t", "tui", "R")             # record into the current folder
        wait_for(lambda: list(tmp_path.glob("*/timeline.csv")), "a recording under way",
                 screen=tmux.screen)
        os.kill(_pane_child(tmux), sig)
        wait_for(rc_file.exists, "the TUI to exit", timeout=30, screen=tmux.screen)
        assert rc_file.read_text().strip() == str(code)
    finally:
        tmux("kill-server", check=False)
    # the recording was finished as q finishes it: its report written, and its output replays
    # bit for bit (its meter's readings may not: the meter counted its 5 blocks from the run's
    # start, before the recording joined; the exit code says which)
    (folder,) = [p.parent for p in tmp_path.glob("*/timeline.csv")]
    saved = json.loads((folder / "report.json").read_text())
    assert saved["recording"]["blocks_recorded"] > 0
    again = subprocess.run([sys.executable, "-m", "remotemedia", "replay", str(folder),
                            "--json"], capture_output=True, text=True, timeout=120)
    result = json.loads(again.stdout.splitlines()[-1])
    assert result["vs_recording"]["output"]["identical"] is True, again.stderr
    assert again.returncode == (0 if result["identical"] else 1), again.stderr
