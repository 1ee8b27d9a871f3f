"""Conversation scripts and cost files: bad input is one line naming the file and turn, exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys


import numpy as np
import pytest
import soundfile
from hypothesis import given, settings
from hypothesis import strategies as st

from remotemedia.conversation import _read_wav
from remotemedia.converse import (MAX_COST_S, MAX_SAY_CHARS, MAX_SCRIPT_MS, Costs, ScriptError,
                                 check_costs, load_script)

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
    assert r.returncode == 2 and "c.json: nodes.a[0] must be a cost from 0 to 60000 ms" in r.stderr


def test_barge_in_on_the_first_turn_is_refused():
    with pytest.raises(ScriptError, match=r"turns\[0\]: barge_in_after_ms on the first turn"):
        load_script({"turns": [{"say": "a", "barge_in_after_ms": 100}]})


@settings(max_examples=200, deadline=None)
@given(key=st.sampled_from(["after_ms", "barge_in_after_ms", "within_ms"]),
       value=st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                       st.integers(-10**400, 10**400),    # YAML's ints have no bound
                       st.booleans(), st.text(max_size=3), st.none()))
def test_every_script_time_is_a_number_of_ms_within_the_bound_or_refused(key, value):
    turn = {"say": "a"}
    if key == "within_ms":
        turn["expect"] = {"within_ms": value}
    else:
        turn[key] = value
    ok = value is None or (not isinstance(value, bool) and isinstance(value, (int, float))
                           and 0 <= value <= MAX_SCRIPT_MS)
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


# -- the kind: a cost (cost file in ms, recording in s) is a finite number from 0 to MAX_COST_S,
# never a bool; anything else is refused in one line naming the node and the call
_ANY_VALUE = st.one_of(st.none(), st.booleans(), st.integers(-10**400, 10**400),
                       st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=4),
                       st.lists(st.integers(0, 5), max_size=2))


@settings(max_examples=300, deadline=None)
@given(value=_ANY_VALUE, unit=st.sampled_from(["ms", "s"]))
def test_a_cost_is_a_finite_bounded_number_or_refused_naming_node_and_call(value, unit):
    div = 1e3 if unit == "ms" else 1.0
    valid = not isinstance(value, bool) and isinstance(value, (int, float)) and \
        0 <= value <= MAX_COST_S * div
    table = {"vad": [0.5, value]}
    if valid:
        assert check_costs(table, "f", unit) == {"vad": [0.5 / div, value / div]}
    else:
        with pytest.raises(ScriptError) as info:
            check_costs(table, "f", unit)
        assert str(info.value).startswith("f.vad[1] must be a cost from 0 to ")
        assert "\n" not in str(info.value)


@pytest.mark.parametrize("text", ['{"version": 1, "nodes": {"vad": [1e300]}}',
                                  '{"version": 1, "nodes": {"vad": [true]}}',
                                  '{"version": 1, "nodes": {"vad": [NaN]}}',
                                  '{"version": 1, "nodes": {"vad": [60000.001]}}',
                                  '{"version": 1, "nodes": {"vad": 5}}'])
def test_a_cost_file_with_an_unusable_cost_is_refused_naming_the_node(tmp_path, text):
    path = tmp_path / "c.json"
    path.write_text(text)
    with pytest.raises(ScriptError, match=r"c.json: nodes.vad"):
        Costs.load(str(path))


def test_a_cost_file_keeps_each_cost_exactly_as_before():
    # ms / 1e3, the division a saved cost was written for (not * 1e-3: a bit may differ)
    assert check_costs({"n": [0.1, 3, 123.456]}, "f", "ms") == {"n": [0.1 / 1e3, 3 / 1e3,
                                                                     123.456 / 1e3]}


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 3 * MAX_SAY_CHARS))
def test_say_text_is_capped_in_characters(n):
    doc = {"turns": [{"say": "a" * n}]}
    if n <= MAX_SAY_CHARS:
        assert load_script(doc)[0].say == "a" * n
    else:
        with pytest.raises(ScriptError, match=rf"turns\[0\]: say: is {n} characters; at most "
                                              rf"{MAX_SAY_CHARS}"):
            load_script(doc)


@pytest.mark.parametrize("key", ["heard", "reply"])
def test_an_expected_regex_that_is_not_text_is_refused(key):
    with pytest.raises(ScriptError, match=rf"expect.{key} must be a regex"):
        load_script({"turns": [{"say": "hi", "expect": {key: 5}}]})


@settings(max_examples=50, deadline=None)
@given(have=st.integers(0, 4), calls=st.integers(0, 8))
def test_calls_past_a_cost_files_list_are_counted_and_said_in_one_line(have, calls):
    costs = Costs({"stt": [0.25] * have, "vad": [0.001]}, source="c.json")
    for _ in range(calls):
        costs.charge("stt", 0.0)
    costs.charge("vad", 0.0)
    over = max(0, calls - have)
    assert costs.past_end == ({"stt": over} if over else {})
    line = costs.shortfall()
    if over:
        assert line == (f"c.json: too few costs for stt called {calls} times, {have} costs "
                        f"(the rest charged the median; --save-timing writes a file for this "
                        f"script)")
    else:
        assert line is None
    assert Costs().shortfall() is None        # measured: no file to run short of
