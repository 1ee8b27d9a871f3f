"""Every manifest shipped in manifests/ loads and runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import remotemedia as rm

MANIFESTS = sorted((Path(__file__).resolve().parents[2] / "manifests").glob("*.y*ml")) + \
    sorted((Path(__file__).resolve().parents[2] / "manifests").glob("*.json"))


def test_there_are_manifests():
    names = {p.stem for p in MANIFESTS}
    assert {"passthrough", "gain", "meter", "mix", "five"} <= names


def _takes_text(manifest) -> bool:
    # A text-to-speech manifest (speak.yaml): what `input` feeds takes text, not audio.
    fed = [manifest.node(c.target) for c in manifest.connections
           if c.source == "input" and c.target != "output"]
    return bool(fed) and all("text" in s.node_class.accepts and "numpy" not in
                             s.node_class.accepts for s in fed)


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_loads_and_runs(path):
    pipeline = rm.Pipeline.from_manifest(path)
    if _takes_text(pipeline.manifest):
        return _text_manifest_runs(pipeline)
    audio = pipeline.manifest.audio
    shape = (audio.block_size,) if audio.channels == 1 else (audio.block_size, audio.channels)
    rng = np.random.default_rng(1)
    with pipeline.session() as s:
        outs = []
        for i in range(10):
            block = (0.1 * rng.standard_normal(shape)).astype(np.float32)
            outs += s.push(rm.RuntimeData.Numpy(block, sample_rate=audio.sample_rate,
                                                pts=i * audio.block_size, seq=i))
        outs += s.end_of_stream()
        st = s.stats()
    assert st["frames_in"] == 10
    assert st["errors"] == 0 and st["serialization_events"] == 0
    assert st["copies"]["engine"] <= 10 * len(pipeline.manifest.nodes)
    # every node that takes audio ran; one that takes only text (a responder, a synthesizer
    # after a transcriber) runs when speech was heard, which noise is not
    takes_audio = {spec.id for spec in pipeline.manifest.nodes
                   if "numpy" in spec.node_class.accepts}
    assert takes_audio and all(st["nodes"][i]["calls"] > 0 for i in takes_audio)


def _text_manifest_runs(pipeline):
    with pipeline.session() as s:
        outs = s.push(rm.RuntimeData.Text("Hello there. How are you?")) + s.end_of_stream()
        st = s.stats()
    audio = [o for o in outs if o.kind == "numpy"]
    assert audio and st["frames_out"] == len(audio)
    assert st["errors"] == 0 and st["serialization_events"] == 0
    assert st["copies"]["engine"] == 0
    assert all(n["calls"] > 0 for n in st["nodes"].values())
