"""Transcribe runs on `executor: process` (its own process over iceoryx2) as it does on its
default thread: the same words, and the node's stats say where it ran (its blocks cross in
shared memory, so no array is serialized on either path)."""

from __future__ import annotations

from .executor_speech import transcribe_on
from .speech_audio import needs_model


@needs_model
def test_transcribe_in_its_own_process_hears_the_phrase():
    found, stats = transcribe_on("process")
    text = " ".join(t["text"] for t in found if t["final"]).lower()
    assert "fox" in text and "dog" in text, found
    node = stats["nodes"]["stt"]
    assert node["executor"] == "process" and node["drops"] == 0 and node["restarts"] == 0
    assert node["calls"] == stats["frames_in"]
    assert stats["copies"]["engine"] == 0


@needs_model
def test_on_its_default_thread_nothing_is_serialized():
    found, stats = transcribe_on("thread")
    assert "fox" in " ".join(t["text"] for t in found).lower()
    assert stats["serialization_events"] == 0 and stats["copies"]["engine"] == 0
