"""Speech in noise for the Denoise tests and the benchmark: six espeak-ng sentences with gaps,
the user's voice on channel 1 of a stereo input, and a graph EchoPath -> [Denoise] ->
Transcribe that adds the noise at a given SNR (the room's echo off)."""

from __future__ import annotations

import numpy as np

from ..speech.speech_audio import SENTENCES, espeak, wer
from .room_audio import BLOCK, RATE, level

SPEECH_DBFS = -26.0


def sentences_signal() -> np.ndarray:
    """SENTENCES spoken by espeak-ng (130 wpm) with 0.5 s gaps, at SPEECH_DBFS overall, as a
    stereo (samples, 2) float32 input whose channel 1 is the user and channel 0 silence."""
    gap = np.zeros(RATE // 2, np.float32)
    parts = []
    for s in SENTENCES:
        parts += [gap, espeak(s, RATE, 130)]
    sig = level(np.concatenate(parts + [gap, gap]), SPEECH_DBFS)
    sig = sig[:sig.shape[0] // BLOCK * BLOCK]
    x = np.zeros((sig.shape[0], 2), np.float32)
    x[:, 1] = sig
    return x


def noisy_graph(noise: str, snr_db: float, denoise: str | None, tail: str | None = "stt"
                ) -> dict:
    """input -> EchoPath (no echo; `noise` at `snr_db` below SPEECH_DBFS) -> [Denoise(engine
    `denoise`)] -> `tail` -> output. tail: "stt" (Transcribe), "vad" (Resample to 16 kHz and
    Silero's VAD, audio passed on) or None."""
    nodes = [{"id": "far", "node_type": "ChannelSelect", "params": {"channel": 0}},
             {"id": "near", "node_type": "ChannelSelect", "params": {"channel": 1}},
             {"id": "room", "node_type": "EchoPath",
              "params": {"gain_db": -120.0, "rt60_ms": 0.0, "noise": noise, "snr_db": snr_db,
                         "speech_dbfs": SPEECH_DBFS, "seed": 1}}]
    conns = [{"from": "input", "to": "far"}, {"from": "input", "to": "near"},
             {"from": "far", "to": "room", "input": "far"},
             {"from": "near", "to": "room", "input": "near"}]
    chain = ["room"]
    if denoise:
        nodes.append({"id": "dn", "node_type": "Denoise", "params": {"engine": denoise}})
        chain.append("dn")
    if tail == "stt":
        nodes.append({"id": "stt", "node_type": "Transcribe", "params": {"beam_size": 1}})
        chain.append("stt")
    elif tail == "vad":
        nodes += [{"id": "rs", "node_type": "Resample", "params": {"rate": 16000}},
                  {"id": "vad", "node_type": "VAD", "params": {"pass_audio": True}}]
        chain += ["rs", "vad"]
    conns += [{"from": a, "to": b} for a, b in zip(chain, chain[1:])]
    conns.append({"from": chain[-1], "to": "output"})
    return {"version": "v1", "audio": {"sample_rate": RATE, "block_size": BLOCK, "channels": 2},
            "nodes": nodes, "connections": conns}


def word_error_rate(result) -> tuple[float, list[str]]:
    """WER of a run's final transcripts against SENTENCES (joined), and the texts."""
    texts = [e.value["text"] for e in result.events if e.kind == "json"
             and e.value.get("type") == "transcript" and e.value.get("final")]
    return wer([" ".join(SENTENCES)], [" ".join(texts)]), texts
