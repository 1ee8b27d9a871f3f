"""Transcribe runs on `executor: process` (its own process over iceoryx2) as it does on its
default thread: the same words, the node's stats say where it ran, and the process path counts
its own serialization (the thread path has none)."""

from __future__ import annotations

from .executor_speech import transcribe_on
from .speech_audio import needs_model


@needs_model
def test_transcribe_in_its_own_process_hears_the_phrase():
    found, stats = transcribe_on("process")
    text = " ".join(t["text"] for t in found if t["final"]).lower()
    assert "fox" in text and "dog" in text, found
    assert stats["nodes"]["stt"]["executor"]["executor"] == "process" \
        if isinstance(stats["nodes"]["stt"].get("executor"), dict) \
        else stats["nodes"]["stt"].get("executor") == "process"
    assert stats["copies"]["engine"] == 0


@needs_model
def test_on_its_default_thread_nothing_is_serialized():
    found, stats = transcribe_on("thread")
    assert "fox" in " ".join(t["text"] for t in found).lower()
    assert stats["serialization_events"] == 0 and stats["copies"]["engine"] == 0
