"""Double talk live: `converse --realtime --loopback` on the JACK server loops the bot's output
back into its microphone at unity gain, mixed with the user's voice; the user's third turn
barges in on the second reply. With manifests/assistant-aec.yaml the barge-in sentence, spoken
over the bot's voice, is heard as well as the same sentence alone (within 10 WER points), and
the bot interrupts itself no more than before (one interrupt: the user's)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.streaming.device_support import jack_device  # noqa: F401 (fixture)

from ..conversation.test_conversation import BARGE_IN, TWO_TURNS
from ..speech.speech_audio import needs_espeak, needs_model
from .room_audio import needs_echo

pytestmark = [pytest.mark.slow, pytest.mark.device, needs_echo, needs_model, needs_espeak]

AEC = Path(__file__).resolve().parents[2] / "manifests" / "assistant-aec.yaml"
ALONE = """\
turns:
  - say: "What time is it?"
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


#: live runs are not repeatable (the server's and the machine's scheduling move every block),
#: so the WER is judged as a majority: heard within 10 points in 2 of 3 conversations (one
#: run alone was heard right in 9 of 10 here, stop 29); every other figure holds in each run
RUNS, HEARD = 3, 2


def test_live_the_barge_in_sentence_over_the_bot_is_heard_as_well_as_alone(jack_device,
                                                                           tmp_path):
    alone = converse_live(ALONE, jack_device.index, tmp_path)["turns"][0]
    heard = []
    for _ in range(RUNS):
        report = converse_live(TWO_TURNS + BARGE_IN, jack_device.index, tmp_path)
        over = report["turns"][2]
        assert report["live"]["barge_in"]["interrupts"] == 1, report["live"]["barge_in"]
        assert report["turns"][1]["interrupted"]
        # the canceller took the double talk for what it was
        assert report["stats"]["nodes"]["aec"]["echo"]["double_talk_blocks"] > 0
        heard.append((over["wer"] <= alone["wer"] + 0.10, over["heard"]))
        if sum(ok for ok, _ in heard) >= HEARD or len(heard) - sum(ok for ok, _ in heard) \
                > RUNS - HEARD:
            break
    assert sum(ok for ok, _ in heard) >= HEARD, (heard, alone["heard"])
