"""converse's graph check (converse.check_voice_graph): the node after the transcriber that
feeds the output must give it audio. Respond wired straight to the output ran a whole
conversation with nothing heard and passed its `reply:` expectations."""

from __future__ import annotations

import os

import pytest
import yaml

from remotemedia.converse import check_voice_graph
from remotemedia.engine.errors import UsageError
from remotemedia.engine.manifest import validate_manifest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def assistant(drop: str | None = None) -> dict:
    """manifests/assistant.yaml, without node `drop` (its input wired to its output's)."""
    with open(os.path.join(ROOT, "manifests", "assistant.yaml")) as f:
        doc = yaml.safe_load(f)
    if drop is not None:
        into = [c["from"] for c in doc["connections"] if c["to"] == drop]
        outof = [c["to"] for c in doc["connections"] if c["from"] == drop]
        doc["nodes"] = [n for n in doc["nodes"] if n["id"] != drop]
        doc["connections"] = [c for c in doc["connections"] if drop not in (c["from"], c["to"])]
        doc["connections"] += [{"from": a, "to": b} for a in into for b in outof]
    return doc


@pytest.mark.parametrize("drop,refused", [(None, False), ("tts", True)],
                         ids=["shipped", "respond-to-output"])
def test_only_a_graph_whose_reply_reaches_the_output_as_audio_holds_a_conversation(drop,
                                                                                  refused):
    manifest = validate_manifest(assistant(drop=drop), source="m.yaml")
    try:
        check_voice_graph(manifest, "m.yaml")
        problem = None
    except UsageError as exc:
        problem = str(exc)
    assert (problem is not None) is refused, problem
    if refused:
        assert "cannot hold a conversation" in problem and "Speak" in problem
        assert "\n" not in problem
