"""The TUI in a real terminal (tmux) when its audio server dies (issue 17): the state line and a
notification say so at once, the app stays responsive, the run goes on when the server is back
(reconnect, the default) or restarts with space (--no-reconnect), and q quits with exit code 0:
no PortAudio abort, whatever died first."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time

import pytest

from remotemedia.testing import wait_until

from tests.streaming.jack_server import JackServer, require_jackd

from .conftest import ROOT
from .test_terminal import HEIGHT, TMUX, WIDTH, Tmux, read_big_counter

pytestmark = [pytest.mark.device,
              pytest.mark.skipif(TMUX is None, reason="needs tmux (run_test.sh installs it)")]

#: generous: the screen measured showing the loss about 0.1 s after the server died
SHOW_BOUND_S = 10.0


def poll(predicate, what: str, tmux: Tmux, timeout: float = 20.0):
    return wait_until(predicate, what, timeout, poll_s=0.05,
                      context=lambda: "\n".join(tmux.screen()))


def start_tui(tmux: Tmux, server: JackServer, rc_file, *flags: str) -> None:
    command = (f"cd {shlex.quote(str(ROOT))} && {shlex.quote(sys.executable)} -m remotemedia "
               f"tui --manifest manifests/meter.yaml --input default --output default "
               f"{' '.join(flags)}; echo $? > {shlex.quote(str(rc_file))}; echo TUI-EXITED; "
               f"sleep 60")
    env = server.env({**os.environ, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"})
    env.pop("TMUX", None)
    subprocess.run([TMUX, "-L", tmux.socket, "-f", "/dev/null", "-u", "new-session", "-d",
                    "-s", "tui", "-x", str(WIDTH), "-y", str(HEIGHT), command],
                   check=True, env=env, timeout=20)


def text(tmux: Tmux) -> str:
    return "\n".join(tmux.screen())


def frames_in(tmux: Tmux) -> int:
    return read_big_counter(tmux.screen(), "frames in") or 0


def quit_cleanly(tmux: Tmux, rc_file) -> None:
    tmux("send-keys", "-t", "tui", "q")
    poll(rc_file.exists, "the app to exit after q", tmux, timeout=15)
    assert rc_file.read_text().strip() == "0", text(tmux)
    after = poll(lambda: "TUI-EXITED" in text(tmux) and text(tmux), "the shell again", tmux)
    assert "Assertion" not in after and "Traceback" not in after, after
    assert "RUNNING" not in after   # the terminal left the app's screen


def test_the_tui_shows_a_lost_server_and_goes_on_when_it_is_back(tmp_path):
    require_jackd()
    rc_file = tmp_path / "exit_code"
    tmux = Tmux()
    try:
        with JackServer("tui-back") as server:
            start_tui(tmux, server, rc_file)
            poll(lambda: "RUNNING" in text(tmux) and frames_in(tmux) > 25, "a running count",
                 tmux)
            killed_at = server.kill(signal.SIGKILL)
            shown = poll(lambda: "DEVICE LOST" in text(tmux) and text(tmux), "DEVICE LOST",
                         tmux)
            assert time.monotonic() - killed_at < SHOW_BOUND_S
            state_line = next(row for row in shown.splitlines() if "DEVICE LOST" in row)
            assert "device 'system' (JACK Audio Connection Kit) stopped delivering audio: " \
                   "the audio server" in state_line, shown   # the line is cut at 120 columns
            # and the event log (a notification titled "device lost") says it whole
            poll(lambda: "device lost" in text(tmux) and "server went away;" in text(tmux),
                 "the device-lost notification", tmux, timeout=SHOW_BOUND_S)
            stalled_at = frames_in(tmux)
            # still answering keys while the device is away
            tmux("send-keys", "-t", "tui", "b")
            poll(lambda: "BYPASS" in text(tmux), "the bypass badge", tmux)
            tmux("send-keys", "-t", "tui", "b")
            poll(lambda: "BYPASS" not in text(tmux), "bypass off again", tmux)
            server.start()
            poll(lambda: "RUNNING" in text(tmux) and frames_in(tmux) > stalled_at + 25,
                 "the count going on after the server came back", tmux)
            assert "the device is back" in text(tmux)
            quit_cleanly(tmux, rc_file)
    finally:
        tmux("kill-server", check=False)


def test_without_reconnect_the_run_fails_and_space_starts_it_again(tmp_path):
    require_jackd()
    rc_file = tmp_path / "exit_code"
    tmux = Tmux()
    try:
        with JackServer("tui-restart") as server:
            start_tui(tmux, server, rc_file, "--no-reconnect")
            poll(lambda: "RUNNING" in text(tmux) and frames_in(tmux) > 25, "a running count",
                 tmux)
            killed_at = server.kill(signal.SIGKILL)
            shown = poll(lambda: "FAILED" in text(tmux) and text(tmux), "FAILED", tmux)
            assert time.monotonic() - killed_at < SHOW_BOUND_S
            state_line = next(row for row in shown.splitlines() if "FAILED" in row)
            assert "stopped delivering audio: the audio server" in state_line, shown
            server.start()
            # the device picker finds the server that came back (a fresh PortAudio instance)
            tmux("send-keys", "-t", "tui", "d")
            poll(lambda: re.search(r"system \(JACK[^)]*, \d+ ch\)", text(tmux)),
                 "the JACK device listed in the picker", tmux)
            tmux("send-keys", "-t", "tui", "Escape")
            poll(lambda: "or type an input SPEC" not in text(tmux), "the picker closed", tmux)
            tmux("send-keys", "-t", "tui", "space")
            poll(lambda: "RUNNING" in text(tmux), "RUNNING after space", tmux)
            # the new run counts on the restarted server
            first = poll(lambda: frames_in(tmux), "the new run's count", tmux)
            poll(lambda: frames_in(tmux) > first + 25, "the new run's count going on", tmux)
            quit_cleanly(tmux, rc_file)
    finally:
        tmux("kill-server", check=False)
