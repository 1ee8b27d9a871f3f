"""Conversation scripts and cost files: bad input is one line naming the file and turn, exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import math

import numpy as np
import pytest
import soundfile
from hypothesis import given, settings
from hypothesis import strategies as st

from remotemedia.conversation import _read_wav
from remotemedia.converse import MAX_SCRIPT_MS, Costs, ScriptError, load_script

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
    ({"say": "a", "after_ms": -1}, "after_ms must be a number of ms from 0 to 60000"),
    ({"say": "a", "after_ms": float("nan")}, "after_ms must be a number of ms from 0"),
    ({"say": "a", "after_ms": 100_000_000}, "after_ms must be a number of ms from 0 to 60000"),
    ({"say": "a", "barge_in_after_ms": 1e9}, "barge_in_after_ms must be a number of ms"),
    ({"say": "a", "expect": {"within_ms": -1}}, "expect.within_ms must be a number of ms"),
    ({"say": "a", "expect": {"within_ms": True}}, "expect.within_ms must be a number of ms"),
    ({"say": "a", "after_ms": 100, "barge_in_after_ms": 200}, "not both"),
    ({"say": "a", "expect": {"heard": "("}}, "expect.heard is not a regex"),
    ({"say": "a", "expect": {"nope": 1}}, "expect: takes"),
    ({"play": "missing.wav"}, "no such file"),
    ({"play": "."}, "is a directory"),
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


def test_barge_in_on_the_first_turn_is_refused():
    with pytest.raises(ScriptError, match=r"turns\[0\]: barge_in_after_ms on the first turn"):
        load_script({"turns": [{"say": "a", "barge_in_after_ms": 100}]})


@settings(max_examples=200, deadline=None)
@given(key=st.sampled_from(["after_ms", "barge_in_after_ms", "within_ms"]),
       value=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(),
                       st.booleans(), st.text(max_size=3), st.none()))
def test_every_script_time_is_a_number_of_ms_within_the_bound_or_refused(key, value):
    turn = {"say": "a"}
    if key == "within_ms":
        turn["expect"] = {"within_ms": value}
    else:
        turn[key] = value
    ok = value is None or (not isinstance(value, bool) and isinstance(value, (int, float))
                           and math.isfinite(value) and 0 <= value <= MAX_SCRIPT_MS)
    if value is None and key == "within_ms":
        ok = False                           # within_ms: null is not a number of ms
    try:
        turns = load_script({"turns": [{"say": "first"}, turn]})
    except ScriptError as exc:
        assert not ok, exc
        assert "turns[1]" in str(exc)
    else:
        assert ok
        t = turns[1]
        for got in (t.after_ms, t.barge_in_after_ms):
            assert got is None or 0 <= got <= MAX_SCRIPT_MS


def test_a_duplicate_key_in_a_script_file_is_refused_naming_it(tmp_path):
    (tmp_path / "s.yaml").write_text("turns:\n  - say: one\n    say: two\n")
    with pytest.raises(ScriptError, match=r"s.yaml.*duplicate key 'say'"):
        load_script(str(tmp_path / "s.yaml"))


def test_a_script_that_is_a_directory_says_so(tmp_path):
    with pytest.raises(ScriptError, match="is a directory"):
        load_script(str(tmp_path))


def _wav(path, data, rate=16000, subtype="FLOAT"):
    soundfile.write(str(path), data, rate, subtype=subtype)
    return str(path)


@pytest.mark.parametrize("data, says", [
    (np.zeros((1600, 6), np.float32), "no channel mix from 6 to 1"),
    (np.zeros((0, 1), np.float32), "has no samples"),
    (np.array([0.1, np.nan, 0.2, np.inf] * 400, np.float32), "800 NaN or infinite"),
])
def test_play_files_the_run_cannot_use_are_refused_naming_them(tmp_path, data, says):
    path = _wav(tmp_path / "bad.wav", data)
    with pytest.raises(ScriptError, match="bad.wav") as info:
        _read_wav(path, 16000)
    assert says in str(info.value)


def test_play_files_mono_and_stereo_are_read_as_stream_reads_them(tmp_path):
    stereo = np.stack([np.full(1600, 0.2, np.float32), np.full(1600, 0.4, np.float32)], 1)
    got = _read_wav(_wav(tmp_path / "st.wav", stereo), 16000)
    assert got.shape == (1600,) and np.allclose(got, 0.3)
    mono = _read_wav(_wav(tmp_path / "mo.wav", stereo[:, 0]), 16000)
    assert np.allclose(mono, 0.2)


def test_a_cost_file_for_other_nodes_is_refused_naming_them(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"version": 1, "nodes": {"vad": [1.0], "stt": [2.0],
                                                        "gone": [1.0]}}))
    costs = Costs.load(str(path))
    with pytest.raises(ScriptError, match=r"c.json.*no costs for node\(s\) llm, tts; costs "
                                          r"for node\(s\) gone the manifest does not have"):
        costs.expect_nodes(["vad", "stt", "llm", "tts"])
    Costs.load(str(path)).expect_nodes(["vad", "stt", "gone"])     # exactly its nodes: fine


def test_measured_costs_save_every_node_even_one_never_called(tmp_path):
    costs = Costs()
    costs.expect_nodes(["a", "b"])
    costs.charge("a", 0.001)
    costs.save(str(tmp_path / "c.json"))
    Costs.load(str(tmp_path / "c.json")).expect_nodes(["a", "b"])
    assert json.loads((tmp_path / "c.json").read_text())["nodes"]["b"] == []


@given(st.lists(st.floats(0, 10, allow_nan=False), min_size=1, max_size=20))
def test_a_call_past_the_cost_file_costs_the_median(costs):
    replay = Costs({"n": costs})
    for _ in costs:
        replay.charge("n", 0.0)
    assert replay.charge("n", 0.0) == pytest.approx(float(np.median(costs)))


@pytest.mark.parametrize("name", sorted(os.listdir(os.path.join(ROOT, "conversations"))))
def test_every_shipped_conversation_script_loads(name):
    """The README's examples (conversations/*.yaml) are scripts converse accepts."""
    import yaml
    from remotemedia.conversation_room import load_room
    path = os.path.join(ROOT, "conversations", name)
    turns = load_script(path)
    assert turns and all(t.say for t in turns)
    assert any(t.barge_in_after_ms is not None for t in turns)
    with open(path) as f:
        raw = yaml.safe_load(f).get("room")
    assert (load_room(raw, path) is not None) == (raw is not None)
