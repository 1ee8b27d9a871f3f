"""Stand-in speech nodes whose delays are whole blocks (a transcriber, a responder, a
synthesizer), a manifest of them behind EnergyVAD, noise-burst WAVs, and a StreamRunner run
with the turn observer: every turn figure is exact in media time."""

from __future__ import annotations

import numpy as np
import soundfile

import remotemedia as rm
from remotemedia.engine.data import JsonData, NumpyData, TextData
from remotemedia.engine.node import AudioFormat, Node, Param
from remotemedia.io.spec import make_sink, make_source
from remotemedia.runner import StreamRunner
from remotemedia.testing import isolated_registry
from remotemedia.turn_observer import TurnObserver

RATE, BLOCK = 48000, 960
PERIOD = BLOCK / RATE
FMT = AudioFormat(RATE, 1, BLOCK)
REGISTRY = isolated_registry()


class Heard(Node):
    """A transcriber stand-in: `delay` audio blocks after a speech_end, a final transcript
    (Json and Text) with `start_s` (where its audio begins, media time); with `piece_after`,
    also a final "piece" that many blocks into each utterance (a long utterance's first part,
    as Transcribe's max_utterance_s gives)."""
    node_type = "TestHeard"
    accepts = ("numpy", "json")
    emits_text = True
    params = (Param("delay", int, 5, "blocks from speech_end to the transcript", min=0),
              Param("piece_after", int, 0, "blocks into speech to a piece (0: none)", min=0))

    def setup(self):
        self.due = None
        self.turn = 0
        self.start_s = 0.0
        self.piece_due = None

    def process(self, data):
        if data.kind == "json":
            if data.value.get("type") == "speech_end":
                self.due = self.delay
                self.piece_due = None
            elif data.value.get("type") == "speech_start":
                self.start_s = data.value["pts"] / data.value["sample_rate"]
                self.piece_due = self.piece_after or None
            return None
        if self.piece_due is not None:
            self.piece_due -= 1
            if self.piece_due == 0:
                self.piece_due = None
                start, self.start_s = self.start_s, self.start_s + self.piece_after * PERIOD
                return [JsonData({"type": "transcript", "node": self.node_id, "text": "piece",
                                  "final": True, "start_s": start}), TextData("piece")]
        if self.due is None:
            return None
        if self.due > 0:
            self.due -= 1
            return None
        self.due = None
        self.turn += 1
        text = f"words {self.turn}"
        return [JsonData({"type": "transcript", "node": self.node_id, "text": text,
                          "final": True, "start_s": self.start_s}), TextData(text)]


class Reply(Node):
    """A responder stand-in: a Text reply and the closing `reply` event, at once."""
    node_type = "TestReply"
    accepts = ("text",)

    def process(self, data):
        reply = f"reply to {data.text}"
        return [TextData(reply), JsonData({"type": "reply", "node": self.node_id,
                                           "reply": reply, "error": None})]


class Synth(Node):
    """A synthesizer stand-in: `blocks` blocks of a tone for each Text."""
    node_type = "TestSynth"
    accepts = ("text",)
    params = (Param("blocks", int, 25, "blocks of audio per reply", min=1),)

    def setup(self):
        self.seq = 0          # frames numbered as Speak numbers them (a device finds them so)

    def process(self, data):
        tone = (0.1 * np.sin(np.arange(BLOCK) * 0.05)).astype(np.float32)
        self.seq += self.blocks
        return [NumpyData(tone.copy(), sample_rate=RATE, seq=self.seq - self.blocks + k)
                for k in range(self.blocks)]


for cls in (Heard, Reply, Synth):
    REGISTRY.register(cls)


def manifest(heard_delay: int = 5, reply_blocks: int = 25) -> dict:
    return {"version": "v1", "audio": {"sample_rate": RATE, "block_size": BLOCK, "channels": 1},
            "nodes": [{"id": "vad", "node_type": "EnergyVAD",
                       "params": {"threshold_dbfs": -30, "min_speech_ms": 100,
                                  "min_silence_ms": 200, "pad_ms": 0}},
                      {"id": "stt", "node_type": "TestHeard", "params": {"delay": heard_delay}},
                      {"id": "llm", "node_type": "TestReply"},
                      {"id": "tts", "node_type": "TestSynth",
                       "params": {"blocks": reply_blocks}}],
            "connections": [{"from": "input", "to": "vad"}, {"from": "vad", "to": "stt"},
                            {"from": "stt", "to": "llm"}, {"from": "llm", "to": "tts"},
                            {"from": "tts", "to": "output"}]}


def speech_wav(path, bursts, total_s: float) -> str:
    """A WAV of loud noise bursts [(start_s, end_s)] in silence, block-aligned."""
    x = np.zeros(int(total_s * RATE), dtype=np.float32)
    rng = np.random.default_rng(1)
    for a, b in bursts:
        i, j = int(a * RATE), int(b * RATE)
        x[i:j] = 0.3 * rng.standard_normal(j - i).astype(np.float32)
    soundfile.write(str(path), x, RATE, subtype="FLOAT")
    return str(path)


def run(doc, wav, *, attach=True, before_run=None):
    pipeline = rm.Pipeline.from_manifest(doc, registry=REGISTRY)
    events = []
    runner = StreamRunner(pipeline, make_source(wav, FMT),
                          make_sink("null", FMT), on_event=events.append)
    observer = TurnObserver.attach(runner) if attach else None
    if before_run is not None:
        before_run(runner)
    stats = runner.run()
    return stats, observer, [e.value for e in events if e.value.get("type") == "turn"]
