"""`--trace` shows a run's turns: a "turn N" span per turn on the turns track holding one
span per breakdown stage, in order, and a "barge-in" span from the user's speech over the
reply to the bot's last sample; the file stays a valid trace (a real run with the stand-in
speech nodes)."""

from __future__ import annotations

import json

import pytest

from remotemedia.trace import TURNS_TID, Tracer, validate_trace

from .turn_nodes import manifest, run, speech_wav


def traced(tmp_path, wav, **params):
    made = {}
    stats, _, _ = run(manifest(**params), wav,
                      before_run=lambda runner: made.setdefault("t", Tracer().bind(runner)))
    path = tmp_path / "trace.json"
    made["t"].write(path)
    return stats, json.loads(path.read_text())


def test_turns_are_spans_holding_their_stages(tmp_path):
    wav = speech_wav(tmp_path / "in.wav", [(0.5, 1.2), (2.2, 3.0)], 6.0)
    stats, doc = traced(tmp_path, wav, heard_delay=3, reply_blocks=100)
    assert validate_trace(doc) == []
    events = doc["traceEvents"]
    rows = stats["turns"]["turns"]
    turns = [e for e in events if e["ph"] == "X" and e["name"].startswith("turn ")]
    assert [e["name"] for e in turns] == ["turn 1", "turn 2"]
    assert all(e["tid"] >= TURNS_TID and e["cat"] == "turn" for e in turns)
    for span, row in zip(turns, rows):
        assert span["args"]["voice_to_voice_ms"] == row["voice_to_voice_ms"]
        assert span["args"]["heard"] == row["heard"]
        inside = [e for e in events if e["ph"] == "X" and e["tid"] == span["tid"]
                  and span["ts"] <= e["ts"] and e["ts"] + e["dur"] <= span["ts"] + span["dur"]
                  + 1e-3 and e is not span]
        by_name = {e["name"]: e for e in inside if e["name"] != "barge-in"}
        assert sorted(by_name) == sorted(row["breakdown_ms"])
        stages = [by_name[name] for name in row["breakdown_ms"]]   # in the breakdown's order
        assert [e["args"]["ms"] for e in stages] == list(row["breakdown_ms"].values())
        # each span is its figure (media time), not the wall time between the pushes
        for e in stages:
            assert e["dur"] == pytest.approx(e["args"]["ms"] * 1e3, abs=0.01)
        assert span["dur"] == pytest.approx(row["voice_to_voice_ms"] * 1e3, abs=0.01)
        # consecutive: each stage starts where the one before ended
        for a, b in zip(stages, stages[1:]):
            assert b["ts"] == pytest.approx(a["ts"] + a["dur"], abs=1e-2)
    # the user spoke over the first reply: a barge-in span as long as its stop time (the
    # second turn's figure), on the first turn's track
    barge = [e for e in events if e["name"] == "barge-in"]
    assert len(barge) == 1 and barge[0]["args"]["barge_in_stop_ms"] == rows[1]["barge_in_stop_ms"]
    assert rows[1]["barge_in_stop_ms"] is not None and barge[0]["tid"] == turns[0]["tid"]
    assert barge[0]["dur"] == pytest.approx(rows[1]["barge_in_stop_ms"] * 1e3, abs=0.01)
    names = {e["args"]["name"] for e in events if e["ph"] == "M" and e["tid"] >= TURNS_TID}
    assert "turns" in names


def test_no_vad_no_turns_track(tmp_path):
    doc = manifest()
    doc["nodes"] = [{"id": "g", "node_type": "Gain", "params": {"db": -6}}]
    doc["connections"] = [{"from": "input", "to": "g"}, {"from": "g", "to": "output"}]
    made = {}
    run(doc, speech_wav(tmp_path / "in.wav", [(0.2, 0.5)], 1.0),
        before_run=lambda runner: made.setdefault("t", Tracer().bind(runner)))
    events = made["t"].events()
    assert not [e for e in events if e.get("tid", 0) >= TURNS_TID]
