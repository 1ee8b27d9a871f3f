"""The room live: `converse --realtime --loopback` connects the graph's output back into its
input on the JACK server (a loudspeaker the microphone hears, at unity gain, mixed with the
user's voice). Without an echo canceller the bot hears itself and interrupts itself; with
manifests/assistant-aec.yaml (EchoCancel aligned by the device clocks) the only interruption
is the user's real barge-in, which still stops the bot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.streaming.device_support import jack_device  # noqa: F401 (fixture)

from .test_conversation import BARGE_IN, TWO_TURNS

pytestmark = [pytest.mark.slow, pytest.mark.device]

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"

# the third turn barges in on the second reply; what it is heard as under double talk is
# reported, not expected (AEC3 turns the user down while the far end is loud)
SCRIPT = TWO_TURNS + BARGE_IN


def converse_live(manifest: str, device: int, cwd: Path) -> dict:
    (cwd / "s.yaml").write_text(SCRIPT)
    dev = f"device:{device}"
    r = subprocess.run([sys.executable, "-m", "remotemedia", "converse",
                        "-m", str(MANIFESTS / manifest), "-s", "s.yaml", "--realtime",
                        "-i", dev, "-o", dev, "--loopback", "--json"],
                       capture_output=True, text=True, cwd=cwd, timeout=300,
                       env={**os.environ, "REMOTEMEDIA_AUDIO_SERVER": "jack"})
    assert r.returncode in (0, 1), r.stderr
    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert report["live"]["loopback"] is True
    return report


def test_without_a_canceller_the_bot_interrupts_itself(jack_device, tmp_path):
    report = converse_live("assistant.yaml", jack_device.index, tmp_path)
    # one barge-in was scripted; the bot's own voice, heard back, made the others
    assert report["live"]["barge_in"]["interrupts"] > 1, report["live"]["barge_in"]
    assert report["room"] is None                   # no canceller, so no echo figures


def test_with_the_canceller_only_the_user_interrupts_and_the_bot_still_stops(
        jack_device, tmp_path):
    report = converse_live("assistant-aec.yaml", jack_device.index, tmp_path)
    live, turns = report["live"], report["turns"]
    assert live["barge_in"]["interrupts"] == 1, live["barge_in"]     # zero self-interruptions
    assert [e["passed"] for t in turns[:2] for e in t["expect"]] == [True] * 4, turns[:2]
    assert turns[1]["interrupted"] and turns[2]["barge_in_stop_ms"] is not None
    assert turns[2]["barge_in_stop_ms"] < 1000, turns[2]     # generous: the bound is 150 ms
    # the canceller's own figures of the run, as the simulated room's report has them
    room = report["room"]
    assert room["canceller"] is True and room["erle_after_convergence_db"] > 0, room
