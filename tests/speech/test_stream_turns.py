"""`remotemedia stream -m manifests/assistant.yaml -i SPEECH.wav -o out.wav --json` measures
each turn from the audio: real speech (tests/data), Whisper tiny.en, espeak-ng, a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import yaml

from .speech_audio import DATA, needs_espeak, needs_model

pytestmark = [needs_model, needs_espeak, pytest.mark.slow]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ASSISTANT = os.path.join(ROOT, "manifests", "assistant.yaml")


def two_phrases(path) -> str:
    """The two recorded phrases, each followed by 2.5 s of silence (room for the reply)."""
    fox, rate = soundfile.read(str(DATA / "speech_fox_16k.wav"), dtype="float32")
    voice, _ = soundfile.read(str(DATA / "speech_voice_16k.wav"), dtype="float32")
    gap = np.zeros(int(2.5 * rate), dtype=np.float32)
    soundfile.write(str(path), np.concatenate([gap[:rate // 2], fox, gap, voice, gap]), rate)
    return str(path)


def stream(tmp_path, manifest: str, *extra) -> tuple[dict, list[dict]]:
    proc = subprocess.run([sys.executable, "-m", "remotemedia", "stream", "-m", manifest,
                           "-i", two_phrases(tmp_path / "in.wav"),
                           "-o", str(tmp_path / "out.wav"), "--json", *extra],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    return lines[-1], [e for e in lines[:-1] if e.get("type") == "turn"]


def test_assistant_run_from_a_file_reports_each_turn(tmp_path):
    # Respond and Speak inline: on `executor: thread` a node called once per turn hands its
    # answer on only at its next call (the next turn), which would time the wrong reply
    with open(ASSISTANT) as f:
        doc = yaml.safe_load(f)
    for node in doc["nodes"]:
        if node["id"] in ("llm", "tts"):
            node["executor"] = "inline"
    manifest = tmp_path / "assistant-inline.yaml"
    manifest.write_text(yaml.safe_dump(doc))
    report, turn_events = stream(tmp_path, str(manifest))
    turns = report["turns"]
    assert turns["count"] == 2 and turns["replied"] == 2 and turns["clock"] == "media"
    first, second = turns["turns"]
    assert "lazy dog" in first["heard"].lower() and "detection" in second["heard"].lower()
    assert first["reply"] == second["reply"] == "I heard you."
    for row in (first, second):
        parts = row["breakdown_ms"]
        assert list(parts) == ["endpoint", "stt", "llm", "tts", "output"]
        assert row["voice_to_voice_ms"] == pytest.approx(sum(parts.values()), abs=0.01)
        # the endpoint is the VAD's 300 ms of silence (pad 30 ms), to a block or two
        assert 250 <= parts["endpoint"] <= 400
    # fox ends at 0.5 + 3.29 s (its own trailing quiet included), voice at 9.29 s at most
    assert 2.5 < first["end_s"] < 3.8 < 6.3 < second["end_s"] < 9.3
    assert [e["turn"] for e in turn_events] == [1, 2]
    assert [e["voice_to_voice_ms"] for e in turn_events] == \
        [first["voice_to_voice_ms"], second["voice_to_voice_ms"]]


def test_shipped_assistant_manifest_reports_its_turns_as_they_come(tmp_path):
    report, turn_events = stream(tmp_path, ASSISTANT)
    turns = report["turns"]
    assert turns["count"] == 2 and len(turn_events) == 2
    heard = " ".join(row["heard"] for row in turns["turns"]).lower()
    assert "lazy dog" in heard and "detection" in heard
