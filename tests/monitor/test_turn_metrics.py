"""The turn metrics on /metrics' collector fire with the run's turns: voice-to-voice and its
stages, barge-in stop time, interruptions (a real run: StreamRunner, a WAV, EnergyVAD and
the block-exact stand-in speech nodes)."""

from __future__ import annotations

import pytest

from remotemedia.monitor.server import Monitor
from remotemedia.prometheus import TURN_BUCKETS_S, RunCollector

from ..unit.turn_nodes import manifest, run, speech_wav


def _families(runner) -> dict:
    return {f.name: f for f in RunCollector(runner, Monitor(runner)).collect()}


def _value(family, sample: str, **labels) -> float:
    return next(s.value for s in family.samples
                if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()))


def test_turn_histograms_and_interruptions_fire(tmp_path):
    # two turns; the user speaks over the first reply (2 s long) at 2.2 s
    wav = speech_wav(tmp_path / "in.wav", [(0.5, 1.2), (2.2, 3.0)], 6.0)
    stats, observer, _ = run(manifest(heard_delay=2, reply_blocks=100), wav)
    families = _families(observer.runner)
    rows = stats["turns"]["turns"]
    assert _value(families["remotemedia_turns"], "remotemedia_turns_total") == 2
    assert _value(families["remotemedia_interruptions"],
                  "remotemedia_interruptions_total") == 1
    v2v = families["remotemedia_voice_to_voice_seconds"]
    assert _value(v2v, "remotemedia_voice_to_voice_seconds_count") == 2
    assert _value(v2v, "remotemedia_voice_to_voice_seconds_sum") == pytest.approx(
        sum(r["voice_to_voice_ms"] for r in rows) / 1e3)
    first = rows[0]["voice_to_voice_ms"] / 1e3
    le = next(b for b in TURN_BUCKETS_S if b >= first)
    assert _value(v2v, "remotemedia_voice_to_voice_seconds_bucket", le=repr(le)) >= 1
    stages = families["remotemedia_turn_stage_seconds"]
    for stage in ("endpoint", "stt", "llm", "tts", "output"):
        assert _value(stages, "remotemedia_turn_stage_seconds_count", node=stage) == 2
    assert _value(stages, "remotemedia_turn_stage_seconds_sum", node="stt") == pytest.approx(
        sum(r["breakdown_ms"]["stt"] for r in rows) / 1e3)
    stop = families["remotemedia_barge_in_stop_seconds"]
    assert _value(stop, "remotemedia_barge_in_stop_seconds_count") == 1
    assert _value(stop, "remotemedia_barge_in_stop_seconds_sum") == pytest.approx(
        rows[1]["barge_in_stop_ms"] / 1e3)   # on the turn that barged in


def test_no_vad_no_turn_metrics(tmp_path):
    doc = manifest()
    doc["nodes"] = [{"id": "g", "node_type": "Gain", "params": {"db": -6}}]
    doc["connections"] = [{"from": "input", "to": "g"}, {"from": "g", "to": "output"}]
    seen = {}
    run(doc, speech_wav(tmp_path / "in.wav", [(0.2, 0.5)], 1.0),
        before_run=lambda runner: seen.setdefault("runner", runner))
    names = set(_families(seen["runner"]))
    assert "remotemedia_voice_to_voice_seconds" not in names
    assert "remotemedia_frames_in" in names
