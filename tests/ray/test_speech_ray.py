"""Transcribe on `executor: ray` (an actor on the local Ray cluster, `resources` as a GPU
machine would ask for CPU here): the same words as on its default thread, and the Ray path
counts its serialization at the node."""

from __future__ import annotations

import pytest

from tests.speech.executor_speech import transcribe_on
from tests.speech.speech_audio import needs_model

pytestmark = pytest.mark.usefixtures("ray_cluster")


@needs_model
def test_transcribe_in_a_ray_actor_hears_the_phrase():
    found, stats = transcribe_on("ray", resources={"CPU": 1})
    text = " ".join(t["text"] for t in found if t["final"]).lower()
    assert "fox" in text and "dog" in text, found
    assert stats["serialization_events"] > 0          # counted at the node, as DESIGN says
    assert stats["copies"]["engine"] == 0
