"""Double talk live: `converse --realtime --loopback` on the JACK server loops the bot's output
back into its microphone at unity gain, mixed with the user's voice; the user's third turn
barges in on the second reply. With manifests/assistant-aec.yaml the barge-in sentence, spoken
over the bot's voice, is heard as well as the same sentence alone (within 10 WER points), and
the bot interrupts itself no more than before (one interrupt: the user's).

The sentence is the simulated double-talk measure's (tests/echo/double_talk.py: 11 words, one
word wrong is 9 points), so live and simulated figures are alike. A four-word one ("What time
is it?") made one word 25 points: the user's first 60-100 ms, which AEC3's suppressor turns
down before the double-talk detector takes the linear output (three blocks of evidence), cost
"What" ("Let's tie a bit.") in 3 live runs of 21 on an idle machine and 3 of 9 under two CPU
hogs, and failed those runs whole; the long sentence was heard whole in 7 of 8 under the hogs
(the eighth lost "right now" to 38 captured blocks refused while the engine was starved)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.streaming.device_support import jack_device  # noqa: F401 (fixture)

from ..conversation.test_conversation import TWO_TURNS
from ..speech.speech_audio import needs_espeak, needs_model
from .double_talk import SENTENCE
from .room_audio import needs_echo

pytestmark = [pytest.mark.slow, pytest.mark.device, needs_echo, needs_model, needs_espeak]

AEC = Path(__file__).resolve().parents[2] / "manifests" / "assistant-aec.yaml"
ALONE = f"""\
turns:
  - say: "{SENTENCE}"
"""
#: the third turn: the sentence, 500 ms into the bot's second reply
BARGE_IN = f"""\
  - say: "{SENTENCE}"
    barge_in_after_ms: 500
"""


def converse_live(script: str, device: int, cwd: Path) -> dict:
    (cwd / "s.yaml").write_text(script)
    dev = f"device:{device}"
    r = subprocess.run([sys.executable, "-m", "remotemedia", "converse", "-m", str(AEC),
                        "-s", "s.yaml", "--realtime", "-i", dev, "-o", dev, "--loopback",
                        "--json"], capture_output=True, text=True, cwd=cwd, timeout=300,
                       env={**os.environ, "REMOTEMEDIA_AUDIO_SERVER": "jack"})
    assert r.returncode in (0, 1), r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


#: live runs are not repeatable (the server's and the machine's scheduling move every block; a
#: loaded machine refuses captured blocks the engine fell 640 ms behind on, counted as drops),
#: so each conversation is judged whole and the verdict is a majority: 3 of 5 (a run that
#: fails 1 time in 8 fails the test 1 time in 60)
RUNS, HEARD = 5, 3


def _verdict(report: dict, alone: dict) -> tuple[bool, dict]:
    """Whether one conversation held everything, and what it measured (for the message)."""
    over = report["turns"][2]
    echo = report["stats"]["nodes"]["aec"]["echo"]
    seen = {"heard": over["heard"], "wer": over["wer"],
            "interrupts": report["live"]["barge_in"]["interrupts"],
            "interrupted": report["turns"][1]["interrupted"],
            "double_talk_blocks": echo["double_talk_blocks"],
            "xruns": report["live"]["xruns"], "drops": report["live"]["drops"],
            "round_trip_retaken": report["live"]["device"].get("round_trip_retaken")}
    held = (seen["interrupts"] == 1 and seen["interrupted"]
            # the canceller took the double talk for what it was
            and seen["double_talk_blocks"] > 0
            and over["wer"] <= alone["wer"] + 0.10)
    return held, seen


def test_live_the_barge_in_sentence_over_the_bot_is_heard_as_well_as_alone(jack_device,
                                                                           tmp_path):
    alone = converse_live(ALONE, jack_device.index, tmp_path)["turns"][0]
    runs = []
    while len(runs) < RUNS:
        runs.append(_verdict(converse_live(TWO_TURNS + BARGE_IN, jack_device.index, tmp_path),
                             alone))
        held = sum(ok for ok, _ in runs)
        if held >= HEARD or len(runs) - held > RUNS - HEARD:
            break
    assert sum(ok for ok, _ in runs) >= HEARD, (runs, alone["heard"])
