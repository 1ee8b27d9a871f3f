"""What the speech-on-an-executor tests share: the fox phrase at 16 kHz in 320-sample blocks,
pushed through Transcribe on a given executor, with the session's report."""

from __future__ import annotations

import numpy as np
import soundfile as sf

import remotemedia as rm
from remotemedia.engine.data import NumpyData

from tests.conftest import DATA

RATE, BLOCK = 16000, 320


def transcribe_on(executor: str, **node_keys) -> tuple[list[dict], dict]:
    """(transcript events, stats) of the fox phrase (with a second of silence after it, so the
    node's own VAD ends the utterance) through Transcribe on `executor`."""
    speech, rate = sf.read(str(DATA / "speech_fox_16k.wav"), dtype="float32")
    assert rate == RATE
    signal = np.concatenate([np.zeros(RATE // 2, np.float32), speech,
                             np.zeros(RATE, np.float32)])
    m = {"version": "v1", "audio": {"sample_rate": RATE, "block_size": BLOCK, "channels": 1},
         "nodes": [{"id": "stt", "node_type": "Transcribe", "executor": executor,
                    **node_keys}],
         "connections": [{"from": "input", "to": "stt"}, {"from": "stt", "to": "output"}]}
    outs = []
    with rm.Pipeline.from_manifest(m).session() as s:
        for i in range(0, signal.shape[0], BLOCK):
            outs += s.push(NumpyData(signal[i:i + BLOCK], sample_rate=RATE, pts=i))
        outs += s.end_of_stream()
        stats = s.stats()
    found = [o.value for o in outs if o.kind == "json" and o.value.get("type") == "transcript"]
    return found, stats
