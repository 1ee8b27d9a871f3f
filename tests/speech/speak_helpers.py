"""The text-to-speech side of the TTS -> STT round trip, and what the Speak tests share.

`speak_to_wav(sentences, engine, path)` speaks each sentence with `Speak` (its own node, as a
manifest runs it) and writes one WAV (float32, mono, 16 kHz by default: what a transcriber
takes) with 0.5 s of silence between sentences, and returns the sentences' spans in it, so a
transcriber can be scored per sentence or as a whole. The Transcribe tests read these back
and compute the word error rate against ROUND_TRIP_SENTENCES.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from remotemedia.engine.data import TextData
from remotemedia.engine.node import AudioFormat, NodeContext
from remotemedia.nodes.speak import Speak

#: everyday sentences (no digits, no words a normalizer would split or join), for the WER
ROUND_TRIP_SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "The weather today is sunny with a light breeze from the west.",
    "We will meet at the library tomorrow afternoon.",
    "Turn left at the next corner and then walk along the river.",
    "A journey of a thousand miles begins with a single step.",
    "The meeting has been moved to Thursday morning.",
    "Open the window and let the fresh air into the room.",
    "My brother plays the piano every evening after dinner.",
    "The train leaves the station at noon.",
    "Could you please send me the report before lunch?",
    "The children are playing in the garden.",
)

GAP_S = 0.5

requires_piper = pytest.mark.skipif(importlib.util.find_spec("piper") is None,
                                    reason="piper-tts (the tts extra) is not installed")


def make_speak(engine: str | None = None, rate: int = 48000, block: int = 960,
               channels: int = 1, **params) -> Speak:
    """A Speak node set up as a session would set it up (bound to `rate`/`channels`/`block`)."""
    node = Speak("speak", engine=engine, **params)
    node.bind(NodeContext("speak", AudioFormat(rate, channels, block)))
    node.setup()
    return node


def spoken(node: Speak, text: str) -> np.ndarray:
    """All the samples `node` makes for `text`, joined."""
    blocks = [b.array for b in node.process(TextData(text))]
    return np.concatenate(blocks) if blocks else np.zeros(0, np.float32)


def speak_to_wav(sentences, engine: str, path: Path, rate: int = 16000
                 ) -> list[tuple[float, float]]:
    """Speak `sentences` with `engine` ('piper' or 'espeak') into the WAV at `path` (float32,
    mono, `rate` Hz), GAP_S of silence before, between and after them. Returns each
    sentence's (start_s, end_s) in the file."""
    node = make_speak(engine, rate=rate)
    gap = np.zeros(int(GAP_S * rate), np.float32)
    parts, spans, at = [gap], [], len(gap)
    for sentence in sentences:
        audio = spoken(node, sentence)
        spans.append((at / rate, (at + len(audio)) / rate))
        parts += [audio, gap]
        at += len(audio) + len(gap)
    node.teardown()
    sf.write(path, np.concatenate(parts), rate, subtype="FLOAT")
    return spans


def normalized_words(text: str) -> list[str]:
    """Lower case, letters and apostrophes only, split into words: how both sides of a WER are
    compared."""
    import re
    return re.sub(r"[^a-z' ]", " ", text.lower()).split()


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, by word-level Levenshtein
    distance over normalized_words (the standard WER; jiwer gives the same)."""
    ref, hyp = normalized_words(reference), normalized_words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1] / max(1, len(ref))
