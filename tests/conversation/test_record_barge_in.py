"""A recorded conversation with a barge-in (the shipped conversations/hello.yaml, and its
room) replays identical: the replay rebuilt the report from a stand-in run that lacked the
room, and crashed on every recording with a barged-in turn (AttributeError)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ASSISTANT = os.path.join(ROOT, "manifests", "assistant.yaml")

pytestmark = pytest.mark.slow


def rm(*args, cwd):
    return subprocess.run([sys.executable, "-m", "remotemedia", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=600)


@pytest.mark.parametrize("script", ["hello.yaml", "room.yaml"])
def test_a_recording_with_a_barge_in_replays_identical(tmp_path, script):
    path = os.path.join(ROOT, "conversations", script)
    r = rm("converse", "-m", ASSISTANT, "-s", path, "--json", "--record", "rec", cwd=tmp_path)
    assert r.returncode in (0, 1), r.stderr          # expectations are not the point here
    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert any(t["interrupted"] for t in report["turns"])
    # the user's barge-in stop is listed alike in the turns and in stats.turns, and in a room
    # the bot's self-interruptions give no turn a barge-in stop
    rows = [t["barge_in_stop_ms"] for t in report["turns"]]
    measured = [t["barge_in_stop_ms"] for t in report["stats"]["turns"]["turns"]]
    assert [v for v in rows if v is not None] == [v for v in measured if v is not None]
    assert all(v is None or v >= 0 for v in rows)
    room = report.get("room")
    if room is None:             # no echo: the scripted barge-in stopped the bot
        assert rows[-1] is not None, rows
    else:                        # only the user's barge-ins carry a stop time
        users = room["barge_ins"] - room["self_interruptions"]
        assert sum(v is not None for v in rows) <= users, (rows, room)
    again = rm("replay", "rec", "--json", cwd=tmp_path)
    assert again.returncode == 0 and "Traceback" not in again.stderr, again.stderr
    assert json.loads(again.stdout.strip().splitlines()[-1])["identical"] is True
