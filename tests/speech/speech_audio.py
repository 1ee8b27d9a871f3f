"""Speech for the speech tests: espeak-ng phrases, the human recordings alsa-utils ships, a WAV
of two phrases in silence with their true edges, and the word error rate (jiwer).

Sources:
- espeak-ng (Debian, installed by run_test.sh), voice en-us at 130 words/min, made at test
  time; where it is missing, the two phrases in tests/data (espeak-ng 1.51, `-s 150`, 16 kHz
  int16) stand in and the tests that need more skip.
- /usr/share/sounds/alsa/*.wav (Debian alsa-utils, installed by run_test.sh): a human voice
  saying the eight speaker positions ("Front left", ...) at 48 kHz, and Noise.wav.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from remotemedia.nodes import whisper

DATA = Path(__file__).resolve().parent.parent / "data"
UPSTREAM = DATA / "upstream-speech"
ALSA = Path("/usr/share/sounds/alsa")
RATE = 16000

#: common English sentences, spelled the way Whisper writes them (no numbers)
SENTENCES = ["Hello, how are you today?", "Please open the door and turn on the light.",
             "The weather is very nice this morning.", "We will meet again next week.",
             "Thank you for calling, have a good day.", "My name is John and I live in London."]
FILE_PHRASES = {"fox": "The quick brown fox jumps over the lazy dog",
                "voice": "Voice activity detection finds speech"}
ALSA_WORDS = {"Front_Center": "front center", "Front_Left": "front left",
              "Front_Right": "front right", "Rear_Center": "rear center",
              "Rear_Left": "rear left", "Rear_Right": "rear right", "Side_Left": "side left",
              "Side_Right": "side right"}


def _skip_reason() -> str | None:
    try:
        whisper.default_model_dir()
    except whisper.ModelNotInstalled as exc:
        return str(exc)
    return None


MODEL_SKIP = _skip_reason()
needs_model = pytest.mark.skipif(MODEL_SKIP is not None, reason=MODEL_SKIP or "")
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                  reason="espeak-ng is not installed (run_test.sh installs it)")
needs_alsa = pytest.mark.skipif(not (ALSA / "Front_Left.wav").is_file(),
                                reason="alsa-utils' recordings are not installed "
                                       "(run_test.sh installs alsa-utils)")


def espeak(text: str, rate: int = RATE, speed: int = 130) -> np.ndarray:
    """`text` spoken by espeak-ng (en-us), float32 mono at `rate`."""
    wav = subprocess.run(["espeak-ng", "-v", "en-us", "-s", str(speed), "--stdout", text],
                         capture_output=True, check=True, timeout=60).stdout
    x, r = sf.read(io.BytesIO(wav), dtype="float32")
    return soxr.resample(x, r, rate).astype(np.float32) if r != rate else x


def file_phrase(name: str) -> np.ndarray:
    """One of the two phrases in tests/data, float32 at 16 kHz."""
    x, r = sf.read(DATA / f"speech_{name}_16k.wav", dtype="float32")
    assert r == RATE
    return x


def silence(seconds: float, rate: int = RATE) -> np.ndarray:
    return np.zeros(int(seconds * rate), dtype=np.float32)


def in_silence(pieces, rate: int = RATE, gap_s: float = 1.0):
    """The pieces joined with `gap_s` of exact silence around each: (signal, [(start_s,
    end_s)] true edges: first and last sample above 1% of the piece's peak)."""
    parts, edges, pos = [silence(gap_s, rate)], [], int(gap_s * rate)
    for piece in pieces:
        loud = np.flatnonzero(np.abs(piece) > 0.01 * np.abs(piece).max())
        edges.append(((pos + loud[0]) / rate, (pos + loud[-1] + 1) / rate))
        parts += [piece, silence(gap_s, rate)]
        pos += piece.shape[0] + int(gap_s * rate)
    return np.concatenate(parts), edges


def two_phrases_wav(path: Path, rate: int = 48000, channels: int = 2):
    """The two tests/data phrases in silence as a WAV at `rate` with `channels` (the second
    at half level): returns their true edges in seconds."""
    signal, edges = in_silence([file_phrase("fox"), file_phrase("voice")], RATE, 1.0)
    x = soxr.resample(signal, RATE, rate).astype(np.float32) if rate != RATE else signal
    if channels > 1:
        x = np.stack([x] + [0.5 * x] * (channels - 1), axis=1)
    sf.write(path, x, rate, subtype="PCM_16")
    return edges


def wer(references: list[str], hypotheses: list[str]) -> float:
    """Word error rate over all the pairs (jiwer), case and punctuation ignored."""
    import jiwer
    norm = jiwer.Compose([jiwer.ToLowerCase(), jiwer.RemovePunctuation(),
                          jiwer.RemoveMultipleSpaces(), jiwer.Strip(),
                          jiwer.ReduceToListOfListOfWords()])
    return jiwer.wer(references, hypotheses, reference_transform=norm,
                     hypothesis_transform=norm)
