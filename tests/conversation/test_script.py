"""Conversation scripts and cost files: bad input is one line naming the file and turn, exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, strategies as st

from remotemedia.converse import Costs, ScriptError, load_script

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ASSISTANT = os.path.join(ROOT, "manifests", "assistant.yaml")


def test_a_script_loads_with_defaults_play_relative_to_the_script(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"")
    (tmp_path / "s.yaml").write_text("turns:\n  - {say: hi}\n  - {play: a.wav, "
                                     "barge_in_after_ms: 300, expect: {heard: x, "
                                     "within_ms: 9}}\n")
    turns = load_script(str(tmp_path / "s.yaml"))
    assert turns[1].play == str(tmp_path / "a.wav")
    assert turns[0].say == "hi" and turns[0].after_ms == 500.0
    assert turns[1].barge_in_after_ms == 300.0


@pytest.mark.parametrize("turn, says", [
    ({"say": "a", "play": "b.wav"}, "give one of say"),
    ({}, "give one of say"),
    ({"say": "a", "color": 1}, "unknown key(s) color"),
    ({"say": "a", "after_ms": -1}, "after_ms must be a number >= 0"),
    ({"say": "a", "after_ms": float("nan")}, "after_ms must be a number >= 0"),
    ({"say": "a", "expect": {"heard": "("}}, "expect.heard is not a regex"),
    ({"say": "a", "expect": {"nope": 1}}, "expect: takes"),
    ({"play": "missing.wav"}, "no such file"),
    ({"say": "  "}, "non-empty text"),
])
def test_bad_turns_are_refused_naming_the_turn(turn, says):
    with pytest.raises(ScriptError, match="turns\\[1\\]") as info:
        load_script({"turns": [{"say": "fine"}, turn]})
    assert says in str(info.value)


@pytest.mark.parametrize("doc", [None, {}, {"turns": []}, {"turns": [{"say": "a"}], "x": 1}])
def test_bad_scripts_are_refused(doc):
    with pytest.raises(ScriptError):
        load_script(doc)


@pytest.mark.parametrize("text", ["", "{", '{"version": 2, "nodes": {}}',
                                  '{"version": 1, "nodes": {"a": [-1]}}', "[]"])
def test_bad_cost_files_are_refused(tmp_path, text):
    path = tmp_path / "c.json"
    path.write_text(text)
    with pytest.raises(ScriptError, match="c.json"):
        Costs.load(str(path))


def test_cost_file_round_trip_replays_in_order_then_the_median(tmp_path):
    measured = Costs()
    for spent in (0.001, 0.003, 0.002):
        measured.charge("stt", spent)
    measured.save(str(tmp_path / "c.json"))
    replay = Costs.load(str(tmp_path / "c.json"))
    assert [replay.charge("stt", 9.0) for _ in range(4)] == [0.001, 0.003, 0.002, 0.002]
    assert replay.charge("other", 5.0) == 0.0


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "remotemedia", "converse", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


def test_cli_bad_script_is_one_line_exit_2(tmp_path):
    (tmp_path / "s.yaml").write_text("turns:\n  - {say: hi, after_ms: -5}\n")
    r = _cli("-m", ASSISTANT, "-s", "s.yaml", cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "s.yaml: turns[0]: after_ms" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_cli_save_timing_through_a_link_is_refused_before_running(tmp_path):
    (tmp_path / "s.yaml").write_text("turns:\n  - {say: hi}\n")
    os.symlink(tmp_path / "elsewhere.json", tmp_path / "link.json")
    r = _cli("-m", ASSISTANT, "-s", "s.yaml", "--save-timing", "link.json", cwd=tmp_path)
    assert r.returncode == 2 and "symbolic link" in r.stderr
    assert not (tmp_path / "elsewhere.json").exists()


def test_cli_bad_cost_file_exit_2(tmp_path):
    (tmp_path / "s.yaml").write_text("turns:\n  - {say: hi}\n")
    (tmp_path / "c.json").write_text(json.dumps({"version": 1, "nodes": {"a": ["x"]}}))
    r = _cli("-m", ASSISTANT, "-s", "s.yaml", "--timing", "c.json", cwd=tmp_path)
    assert r.returncode == 2 and "c.json: not a cost file" in r.stderr


@given(st.lists(st.floats(0, 10, allow_nan=False), min_size=1, max_size=20))
def test_a_call_past_the_cost_file_costs_the_median(costs):
    replay = Costs({"n": costs})
    for _ in costs:
        replay.charge("n", 0.0)
    assert replay.charge("n", 0.0) == pytest.approx(float(np.median(costs)))
