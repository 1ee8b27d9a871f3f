"""`remotemedia tui --attach PID` in a real terminal (tmux) over a headless stream in its own
process: the screen shows the run's frames advancing and its events, q detaches with exit code
0, the run goes on, and a second attach stops it with space. Read off the screen like a person
would (the helpers of test_terminal.py)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time

import pytest

from remotemedia.monitor.client import MonitorClient

from .conftest import ROOT
from .test_terminal import HEIGHT, TMUX, WIDTH, Tmux, read_big_counter, wait_for

pytestmark = pytest.mark.skipif(TMUX is None, reason="needs tmux (run_test.sh installs it)")

MANIFEST = """\
version: v1
metadata: {name: watched-from-afar}
audio: {sample_rate: 48000, block_size: 960, channels: 1}
nodes:
  - {id: meter, node_type: LevelMeter, params: {every: 10}}
connections:
  - {from: input, to: meter}
  - {from: meter, to: output}
"""


def test_attach_in_a_terminal_detach_and_stop(tmp_path):
    manifest = tmp_path / "watched.yaml"
    manifest.write_text(MANIFEST)
    env = {**os.environ, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
           "XDG_RUNTIME_DIR": str(tmp_path)}
    env.pop("TMUX", None)
    stream = subprocess.Popen([sys.executable, "-m", "remotemedia", "stream", "-m",
                               str(manifest), "-i", "sine", "-o", "null", "--realtime",
                               "--duration", "120", "--json", "--events", os.devnull,
                               "--monitor"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=env, cwd=tmp_path)
    tmux = Tmux()
    try:
        while b"monitor: " not in (line := stream.stderr.readline()):
            assert line, stream.stderr.read()
        for round_ in (1, 2):
            rc_file = tmp_path / f"exit_code_{round_}"
            command = (f"cd {shlex.quote(str(ROOT))} && {shlex.quote(sys.executable)} -m "
                       f"remotemedia tui --attach {stream.pid}; "
                       f"echo $? > {shlex.quote(str(rc_file))}")
            tmux("kill-server", check=False)
            subprocess.run([TMUX, "-L", tmux.socket, "-f", "/dev/null", "-u", "new-session",
                            "-d", "-s", "tui", "-x", str(WIDTH), "-y", str(HEIGHT), command],
                           check=True, env=env, timeout=20)
            first = wait_for(lambda: read_big_counter(tmux.screen(), "frames in"),
                             "the run's frame counter on screen", screen=tmux.screen)
            second = wait_for(lambda: (n := read_big_counter(tmux.screen(), "frames in"))
                              and n > first and n, "the counter to advance",
                              screen=tmux.screen)
            assert second > first
            text = "\n".join(wait_for(lambda: (s := tmux.screen()) and "level" in "\n".join(s)
                                      and s, "events in the log", screen=tmux.screen))
            assert f"attached to PID {stream.pid}" in text and "watched-from-afar" in text
            assert "RUNNING" in text
            if round_ == 1:
                tmux("send-keys", "-t", "tui", "q")
                wait_for(rc_file.exists, "the TUI to detach after q", timeout=15,
                         screen=tmux.screen)
                assert rc_file.read_text().strip() == "0"
                assert stream.poll() is None, "detaching stopped the run"
            else:
                tmux("send-keys", "-t", "tui", "space")
                wait_for(lambda: stream.poll() is not None, "the run to stop after space",
                         timeout=15, screen=tmux.screen)
                tmux("send-keys", "-t", "tui", "q")
                wait_for(rc_file.exists, "the TUI to exit after q", timeout=15,
                         screen=tmux.screen)
                assert rc_file.read_text().strip() == "0"
        out, err = stream.communicate(timeout=20)
        assert stream.returncode == 0, err
        report = json.loads(out.decode().strip().splitlines()[-1])
        assert report["stop_reason"] == "stopped" and report["monitor"]["clients_total"] == 2
    finally:
        tmux("kill-server", check=False)
        if stream.poll() is None:
            stream.kill()
            stream.wait()


def test_spawn_runs_the_stream_in_a_child_that_outlives_a_crash(tmp_path):
    """`tui --spawn`: the stream runs in a child process; killing the TUI (a crash) leaves it
    running, and a second spawned TUI's q stops its own run."""
    manifest = tmp_path / "watched.yaml"
    manifest.write_text(MANIFEST)
    env = {**os.environ, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
           "XDG_RUNTIME_DIR": str(tmp_path)}
    env.pop("TMUX", None)
    tmux = Tmux()

    def live_pids() -> list[int]:
        r = subprocess.run([sys.executable, "-m", "remotemedia", "ps", "--json"], env=env,
                           capture_output=True, text=True, timeout=30)
        return [run["pid"] for run in json.loads(r.stdout)]

    def start(rc_file) -> None:
        command = (f"cd {shlex.quote(str(ROOT))} && {shlex.quote(sys.executable)} -m "
                   f"remotemedia tui --spawn -m {shlex.quote(str(manifest))} -i sine -o null; "
                   f"echo $? > {shlex.quote(str(rc_file))}")
        tmux("kill-server", check=False)
        subprocess.run([TMUX, "-L", tmux.socket, "-f", "/dev/null", "-u", "new-session", "-d",
                        "-s", "tui", "-x", str(WIDTH), "-y", str(HEIGHT), command],
                       check=True, env=env, timeout=20)
        first = wait_for(lambda: read_big_counter(tmux.screen(), "frames in"),
                         "the child's frame counter on screen", screen=tmux.screen)
        wait_for(lambda: (n := read_big_counter(tmux.screen(), "frames in")) and n > first,
                 "the counter to advance", screen=tmux.screen)

    survivors: list[int] = []
    try:
        start(tmp_path / "rc1")
        (child,) = live_pids()
        assert f"attached to PID {child}" in "\n".join(tmux.screen())
        tmux("kill-server")                         # the terminal and the TUI die
        time.sleep(0.5)
        assert live_pids() == [child], "the run died with its TUI"
        survivors.append(child)
        with MonitorClient.attach(str(tmp_path / "remotemedia" / f"{child}.sock")) as client:
            assert client.request("stop")["ok"]
        wait_for(lambda: live_pids() == [], "the survivor to stop")
        survivors.clear()
        start(tmp_path / "rc2")
        (child,) = live_pids()
        text = "\n".join(tmux.screen())
        assert "stops the run" in text
        tmux("send-keys", "-t", "tui", "q")
        wait_for((tmp_path / "rc2").exists, "the TUI to exit after q", timeout=20,
                 screen=tmux.screen)
        logs = list((tmp_path / "remotemedia").glob("spawned-*.log"))
        assert (tmp_path / "rc2").read_text().strip() == "0", \
            "\n".join(log.read_text() for log in logs)
        assert live_pids() == []
        assert any('"stop_reason": "stopped"' in log.read_text() for log in logs)
    finally:
        tmux("kill-server", check=False)
        for pid in survivors + live_pids():
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
