"""Audio and graphs for the echo tests: the bot's speech (espeak-ng, or the two phrases in
tests/data where it is missing), the room of the issue (manifests/echo-room.yaml), and a node
that tampers with the reference path (drops a block, or makes it silent)."""

from __future__ import annotations

import copy
import shutil
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
import soxr
import yaml

from remotemedia.engine.node import Node, Param
from remotemedia.testing import run_blocks
from remotemedia.testing.registry import isolated_registry

from ..speech.speech_audio import espeak, file_phrase

RATE = 48000
BLOCK = 960
ROOT = Path(__file__).resolve().parents[2]
ROOM_MANIFEST = ROOT / "manifests" / "echo-room.yaml"
BOT_LINES = ["Hello, how are you today? I am the assistant and I will read you the news.",
             "The weather is very nice this morning. Please open the door and turn on the light.",
             "We will meet again next week. Thank you for calling, have a good day."]
#: the bot's output level, dBFS RMS over the whole signal (pauses included)
BOT_DBFS = -20.0
_cache: dict = {}

needs_echo = pytest.mark.skipif(
    not (find_spec("pywebrtc_audio") and find_spec("pyrnnoise")),
    reason="the echo extra is not installed (pip install 'remotemedia[echo]')")


def level(x: np.ndarray, dbfs: float) -> np.ndarray:
    """`x` scaled to `dbfs` RMS, float32."""
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    return (x * (10.0 ** (dbfs / 20.0) / rms)).astype(np.float32)


def bot_speech(repeat: int = 1) -> np.ndarray:
    """The far end: BOT_LINES spoken by espeak-ng (or the tests/data phrases), at 48 kHz,
    BOT_DBFS, a whole number of blocks, float32."""
    if "bot" not in _cache:
        if shutil.which("espeak-ng"):
            x = np.concatenate([espeak(t, RATE, 150) for t in BOT_LINES])
        else:
            x = soxr.resample(np.concatenate([file_phrase("fox"), file_phrase("voice")] * 2),
                              16000, RATE)
        _cache["bot"] = level(x, BOT_DBFS)
    x = np.concatenate([_cache["bot"]] * repeat)
    return x[:x.shape[0] // BLOCK * BLOCK]


def stereo(far: np.ndarray, near: np.ndarray | None = None) -> np.ndarray:
    """(samples, 2) float32: channel 0 the far end, channel 1 the near end (or silence)."""
    x = np.zeros((far.shape[0], 2), dtype=np.float32)
    x[:, 0] = far
    if near is not None:
        x[:near.shape[0], 1] = near[:far.shape[0]]
    return x


def room_manifest(**room) -> dict:
    """manifests/echo-room.yaml with the room's params changed by `room`."""
    m = yaml.safe_load(ROOM_MANIFEST.read_text())
    m = copy.deepcopy(m)
    node = next(n for n in m["nodes"] if n["id"] == "room")
    node["params"].update(room)
    return m


class Tamper(Node):
    """The reference path's faults: drops block `drop` (it never arrives), or sends silence
    for blocks [silent_from, silent_to)."""

    node_type = "Tamper"
    params = (Param("drop", int, -1), Param("silent_from", int, -1),
              Param("silent_to", int, -1))

    def setup(self):
        self.k = 0

    def process(self, frame):
        k, self.k = self.k, self.k + 1
        if k == self.drop:
            return None
        if self.silent_from <= k < self.silent_to:
            return frame.with_array(np.zeros_like(frame.array))
        return frame


def with_tamper(m: dict, **params) -> dict:
    """`m` with Tamper(params) on the reference path (far -> tamper -> aec.reference)."""
    m = copy.deepcopy(m)
    m["nodes"].append({"id": "tamper", "node_type": "Tamper", "params": params})
    m["connections"] = [c for c in m["connections"] if c.get("input") != "reference"] + [
        {"from": "far", "to": "tamper"}, {"from": "tamper", "to": "aec", "input": "reference"}]
    return m


def run_room(m: dict, signal: np.ndarray):
    """Runs `m` over `signal` in simulated time (Tamper registered): (echo events, result)."""
    reg = isolated_registry()
    reg.register(Tamper, "Tamper")
    res = run_blocks(m, signal, registry=reg)
    events = [e.value for e in res.events if e.value.get("type") == "echo"]
    return events, res


def settled(events: list[dict], after_s: float) -> list[float]:
    """The window ERLEs (dB) after `after_s`, where the far end was active."""
    return [e["erle_db"] for e in events if e["time_s"] > after_s and e["erle_db"] is not None]
