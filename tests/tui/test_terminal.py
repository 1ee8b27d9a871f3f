"""One real run in a terminal: `python -m remotemedia tui --manifest manifests/meter.yaml` inside
tmux, read off the screen like a person would: the big frame counter (decoded from its 3x3
glyphs) advances between two looks, serialization stays 0, and q quits with exit code 0."""

from __future__ import annotations

import io
import os
import shlex
import shutil
import subprocess
import sys
import uuid

import pytest

from remotemedia.testing import wait_until
from rich.console import Console
from rich.style import Style
from textual.renderables.digits import Digits as DigitsRenderable

from .conftest import ROOT

TMUX = shutil.which("tmux")
WIDTH, HEIGHT = 120, 36

pytestmark = pytest.mark.skipif(TMUX is None, reason="needs tmux (run_test.sh installs it)")


def glyphs() -> dict[tuple[str, str, str], str]:
    """Each digit's 3x3 picture, as Textual draws bold Digits."""
    console = Console(width=80, record=True, file=io.StringIO(), color_system=None)
    console.print(DigitsRenderable("0123456789", Style(bold=True)))
    rows = [row.ljust(30) for row in console.export_text().splitlines()[:3]]
    return {tuple(row[3 * i:3 * i + 3] for row in rows): str(i) for i in range(10)}


GLYPHS = glyphs()


def read_big_counter(screen: list[str], title: str) -> int | None:
    """The number in the bordered Digits box titled `title`, or None if it is not readable.

    The box is `╭─ title ───╮`, then three rows `│ <pad> digits <pad> │`; the digits are
    right-aligned against one cell of padding."""
    for i, row in enumerate(screen[:-3]):
        at = row.find(f"─ {title} ─")
        if at < 0:
            continue
        left, right = row.rfind("╭", 0, at), row.find("╮", at)
        if left < 0 or right < 0:
            return None
        rows = [screen[i + k].ljust(WIDTH)[left + 2:right - 1] for k in (1, 2, 3)]
        digits = ""
        end = len(rows[0])
        while end >= 3:
            cell = tuple(r[end - 3:end] for r in rows)
            if all(not c.strip() for c in cell):
                break
            if cell not in GLYPHS:
                return None
            digits = GLYPHS[cell] + digits
            end -= 3
        return int(digits) if digits else None
    return None


class Tmux:
    def __init__(self):
        self.socket = f"remotemedia-test-{uuid.uuid4().hex[:10]}"

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([TMUX, "-L", self.socket, "-f", "/dev/null", *args], check=check,
                              capture_output=True, text=True, timeout=20)

    def screen(self) -> list[str]:
        """The pane's text, one string per row (empty once the session has ended)."""
        return self("capture-pane", "-p", "-t", "tui", check=False).stdout.splitlines()


def wait_for(predicate, what: str, timeout: float = 20.0, screen=None):
    return wait_until(predicate, what, timeout, poll_s=0.2,
                      context=(lambda: "\n".join(screen())) if screen is not None else None)


def test_tui_runs_in_a_terminal_counts_frames_and_quits_cleanly(tmp_path):
    rc_file = tmp_path / "exit_code"
    command = (f"cd {shlex.quote(str(ROOT))} && {shlex.quote(sys.executable)} -m remotemedia "
               f"tui --manifest manifests/meter.yaml; echo $? > {shlex.quote(str(rc_file))}")
    env = {**os.environ, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    env.pop("TMUX", None)
    tmux = Tmux()
    subprocess.run([TMUX, "-L", tmux.socket, "-f", "/dev/null", "-u", "new-session", "-d",
                    "-s", "tui", "-x", str(WIDTH), "-y", str(HEIGHT), command],
                   check=True, env=env, timeout=20)
    try:
        def counter():
            screen = tmux.screen()
            return read_big_counter(screen, "frames in")
        first = wait_for(counter, "the frame counter on screen", screen=tmux.screen)
        wait_for(lambda: (counter() or 0) > first, "the frame counter to move",
                 screen=tmux.screen)
        screen = tmux.screen()
        text = "\n".join(screen)
        assert "RUNNING" in text and "gain-and-meter" in text
        assert read_big_counter(screen, "serialization") == 0, text
        assert read_big_counter(screen, "frames out") > 0, text
        tmux("send-keys", "-t", "tui", "q")
        wait_for(rc_file.exists, "the app to exit after q", timeout=15, screen=tmux.screen)
        assert rc_file.read_text().strip() == "0"
    finally:
        tmux("kill-server", check=False)
