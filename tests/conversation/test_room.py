"""The room in a scripted conversation (remotemedia.conversation_room): the bot's voice comes
back into its microphone through EchoPath, in simulated time. Without an echo canceller the
bot interrupts itself; with manifests/assistant-aec.yaml it does not, a real barge-in still
stops it, and a sentence spoken over its reply is heard as well as alone. Bad `room:` keys are
one line naming the file and the key, exit 2."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from remotemedia.conversation_room import Playback, RoomMeter, RoomSpec, load_room, user_at
from remotemedia.converse import ScriptError

from ..echo.room_audio import needs_echo
from ..speech.speech_audio import needs_espeak, needs_model

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MANIFESTS = os.path.join(ROOT, "manifests")
#: the issue's room
ROOM = {"echo_delay_ms": 100, "echo_gain_db": -6, "rt60_ms": 300,
        "noise": {"kind": "babble", "snr_db": 20}, "seed": 7}
#: a reply long enough to barge into, and for the canceller to converge on
LONG = ("It is sunny today. Tomorrow there will be rain in the morning, and the sun comes "
        "back in the afternoon.")
TURNS = [{"say": "Hello there."},
         {"say": "What is the weather like today?", "after_ms": 400},
         {"say": "Tell me about the weather.", "after_ms": 400},
         # a sentence of 11 words: one word wrong is 9 points of WER
         {"say": "Please tell me what time it is in London right now.",
          "barge_in_after_ms": 1000}]
#: the conversation issue's bound on a barge-in: the last bot sample out after speech_start
BARGE_IN_STOP_MS = 150
#: assistant-aec.yaml's VAD min_speech_ms: barge_in_stop_ms counts from the user's speech start,
#: and the VAD cannot say speech started before hearing this much of it
MIN_SPEECH_MS = 250


def converse(manifest, script, cwd):
    r = subprocess.run([sys.executable, "-m", "remotemedia", "converse", "-m", manifest,
                        "-s", script, "--json"], capture_output=True, text=True, cwd=cwd,
                       timeout=900)
    return r, (json.loads(r.stdout.strip().splitlines()[-1]) if r.stdout.strip() else None)


# -- the script's room: key ------------------------------------------------------------------
@pytest.mark.parametrize("room, says", [
    ([1, 2], "room: is a mapping"),
    ({"echo_delay": 100}, "room: unknown key(s) echo_delay"),
    ({"echo_delay_ms": -1}, "room.echo_delay_ms must be a number from 0 to 2000"),
    ({"echo_gain_db": "loud"}, "room.echo_gain_db must be a number"),
    ({"rt60_ms": float("nan")}, "room.rt60_ms must be a number"),
    ({"echo_gain_db": True}, "room.echo_gain_db must be a number"),
    ({"seed": 1.5}, "room.seed must be an integer from 0 to 2**63 - 1"),
    ({"seed": -3}, "room.seed must be an integer from 0 to 2**63 - 1"),
    ({"noise": "babble"}, "room.noise is {kind:"),
    ({"noise": {"kind": "traffic"}}, "room.noise.kind must be one of none, white, pink"),
    ({"noise": {"kind": "white", "snr": 3}}, "room.noise is {kind:"),
    ({"noise": {"kind": "white", "snr_db": 200}}, "room.noise.snr_db must be a number"),
])
def test_bad_room_keys_are_refused_naming_the_file_and_the_key(room, says):
    with pytest.raises(ScriptError) as info:
        load_room(room, "talk.yaml")
    assert str(info.value).startswith("talk.yaml: ") and says in str(info.value)
    assert "\n" not in str(info.value)


def test_a_room_loads_with_defaults_for_what_it_leaves_out():
    spec = load_room({"echo_delay_ms": 80, "noise": {"kind": "pink"}}, "s")
    assert spec == RoomSpec(echo_delay_ms=80.0, noise_kind="pink")
    assert load_room(None, "s") is None


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["echo_delay_ms", "echo_gain_db", "rt60_ms", "seed",
                                        "noise", "other"]),
                       st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                                 st.floats(allow_nan=True, allow_infinity=True), st.text(),
                                 st.dictionaries(st.sampled_from(["kind", "snr_db", "x"]),
                                                 st.one_of(st.text(), st.floats(),
                                                           st.sampled_from(["white", "pink"])),
                                                 max_size=3)),
                       max_size=5))
def test_any_room_value_is_either_taken_within_its_limits_or_refused_in_one_line(room):
    try:
        spec = load_room(room, "s.yaml")
    except ScriptError as exc:
        assert str(exc).startswith("s.yaml: room") and "\n" not in str(exc)
        return
    assert 0 <= spec.echo_delay_ms <= 2000 and -120 <= spec.echo_gain_db <= 20
    assert 0 <= spec.rt60_ms <= 3000 and math.isfinite(spec.snr_db)
    assert isinstance(spec.seed, int) and spec.seed >= 0
    assert spec.noise_kind in ("none", "white", "pink", "babble")


def test_converse_refuses_a_bad_room_in_one_line_with_exit_2(tmp_path):
    script = tmp_path / "s.yaml"
    script.write_text(yaml.safe_dump({"room": {"rt60_ms": -5}, "turns": [{"say": "hi"}]}))
    r, _ = converse(os.path.join(MANIFESTS, "assistant.yaml"), str(script), tmp_path)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and f"{script}: room.rt60_ms must be a number" in r.stderr


def test_playback_places_each_block_at_the_time_it_started_and_forgets_what_was_read():
    pb = Playback(rate=1000, block=10)
    pb.add(0.015, np.ones(10, np.float32), 1000)        # samples 15..24
    pb.add(0.025, np.full(10, 2.0, np.float32), 1000)   # samples 25..34
    out = np.empty(10, np.float32)
    pb.read(1, out)
    assert out.tolist() == [0.0] * 5 + [1.0] * 5
    pb.read(2, out)
    assert out.tolist() == [1.0] * 5 + [2.0] * 5
    pb.read(1, out)
    assert not out.any()


def test_a_barge_in_is_the_users_when_their_audio_covers_its_start():
    spans = [[1.0, 2.0], [5.0, None]]
    # from a VAD window before the user's first sample to their last
    assert user_at(0.95, spans) and user_at(2.0, spans) and user_at(9.0, spans)
    assert not user_at(3.0, spans) and not user_at(0.4, spans)
    # speech that starts after the user stopped is not theirs: the bot's echo 0.4 s after the
    # user's last word (a fast reply's) counted as the user's with 0.5 s of slack after it
    assert not user_at(2.4, spans) and not user_at(2.01, spans)


@settings(max_examples=50, deadline=None)
@given(start=st.floats(0.0, 100.0), length=st.floats(0.1, 10.0), at=st.floats(0.0, 120.0))
def test_speech_that_starts_after_the_users_audio_ends_is_never_theirs(start, length, at):
    spans = [[start, start + length]]
    assert user_at(at, spans) == (start - 0.1 <= at <= start + length)


# -- the room, end to end ------------------------------------------------------------
def long_reply_manifest(name: str, folder) -> str:
    """manifests/NAME.yaml with the weather reply made long (a reply to barge into)."""
    with open(os.path.join(MANIFESTS, f"{name}.yaml")) as f:
        doc = yaml.safe_load(f)
    llm = next(n for n in doc["nodes"] if n["id"] == "llm")
    llm["params"]["rules"].insert(0, {"match": "weather", "reply": LONG})
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("room")
    (d / "talk.yaml").write_text(yaml.safe_dump({"room": ROOM, "turns": TURNS}))
    (d / "alone.yaml").write_text(yaml.safe_dump({"room": ROOM,
                                                  "turns": [{"say": TURNS[-1]["say"]}]}))
    out = {}
    for name in ("assistant", "assistant-aec"):
        manifest = long_reply_manifest(name, d)
        for script in ("talk", "alone"):
            if (name, script) == ("assistant", "alone"):
                continue
            r, report = converse(manifest, f"{script}.yaml", d)
            assert r.returncode == 0, r.stderr
            out[name, script] = report
    return out



@settings(max_examples=30, deadline=None)
@given(canceller=st.booleans(), converged_at=st.one_of(st.none(), st.floats(0.0, 0.4)),
       gain=st.floats(0.05, 1.0), blocks=st.integers(1, 40))
def test_room_erle_is_null_without_a_canceller_and_after_convergence_only_once_converged(
        canceller, converged_at, gain, blocks):
    # never -0.0 dB (a canceller that did nothing) where there is none; never an
    # after-convergence figure where nothing converged
    rate, block = 16000, 160
    meter = RoomMeter(rate, block, canceller)
    rng = np.random.default_rng(blocks)
    for k in range(blocks):
        echo = (gain * rng.standard_normal(block)).astype(np.float32)
        meter.heard(k, echo, echo, False, True)
    if canceller:
        from remotemedia.engine.data import JsonData, NumpyData
        for k in range(blocks):
            meter.canceller(k * block / rate, NumpyData(np.full(block, 1e-3, np.float32),
                                                        pts=k * block))
        meter.canceller(0.5, JsonData({"type": "echo", "converged_at_s": converged_at,
                                       "convergence_s": converged_at, "erle_db": 30.0,
                                       "time_s": 0.5}))
    room = meter.summary(RoomSpec(), [], [])
    turn = meter.turn_figures(0.0, None, [], [])
    assert room["canceller"] is canceller
    assert room["residual_echo_dbfs"] is not None
    if not canceller:
        assert room["erle_db"] is None and turn["erle_db"] is None
    else:
        assert room["erle_db"] is not None and room["erle_db"] > 20.0
    if not canceller or converged_at is None:
        assert room["erle_after_convergence_db"] is None
        assert room["echo_erle_after_convergence"] is None


@pytest.mark.slow
@needs_echo
@needs_model
@needs_espeak
def test_without_a_canceller_the_bot_interrupts_itself(runs):
    report = runs["assistant", "talk"]
    room = report["room"]
    assert room["canceller"] is False and room["self_interruptions"] > 0
    assert room["self_interruptions"] == sum(t["self_interruptions"] for t in report["turns"])
    # nothing removes the echo: the microphone's echo is all there; no ERLE without a canceller
    assert room["residual_echo_dbfs"] > -35.0
    assert room["erle_db"] is None and room["erle_after_convergence_db"] is None
    assert room["echo_erle_after_convergence"] is None and room["convergence_s"] is None
    assert all(t["erle_db"] is None for t in report["turns"])
    # a self-interruption is the room's figure, not a user's barge-in: the turns carry a
    # barge-in stop time for the user's barge-ins only (a loaded machine's late reply can be
    # barged into by a turn the script did not make barge in), and none is negative
    stops = [t["barge_in_stop_ms"] for t in report["turns"]]
    assert all(v is None or v >= 0 for v in stops), stops
    users = room["barge_ins"] - room["self_interruptions"]
    assert sum(v is not None for v in stops) <= users, (stops, room["barge_ins"],
                                                         room["self_interruptions"])


@pytest.mark.slow
@needs_echo
@needs_model
@needs_espeak
def test_with_the_canceller_no_self_interruption_and_a_real_barge_in_still_stops_the_bot(runs):
    report = runs["assistant-aec", "talk"]
    room, turns = report["room"], report["turns"]
    assert room["canceller"] is True
    assert room["self_interruptions"] == 0 and all(t["self_interruptions"] == 0 for t in turns)
    # the user's barge-in (turn 4, into the third reply) stopped the bot, within the bound
    assert room["barge_ins"] == 1 and turns[2]["interrupted"]
    assert MIN_SPEECH_MS <= turns[3]["barge_in_stop_ms"] <= MIN_SPEECH_MS + BARGE_IN_STOP_MS
    assert [t["reply"] for t in turns[1:]] == [LONG, LONG, "It is noon."]
    # the canceller took the echo out (the babble it passes bounds the figure) and said when
    assert room["erle_db"] >= 20.0 and room["residual_echo_dbfs"] < -45.0
    assert room["convergence_s"] is not None and room["converged_at_s"] is not None
    # the echo itself, the babble and the user's voice left out: >= 30 dB down
    assert room["echo_erle_after_convergence"]["erle_db"] >= 30.0
    assert all(t["erle_db"] is not None and t["erle_db"] >= 20.0 for t in turns)


@pytest.mark.slow
@needs_echo
@needs_model
@needs_espeak
def test_a_sentence_spoken_over_the_bot_is_heard_within_10_wer_points_of_it_alone(runs):
    over = runs["assistant-aec", "talk"]["turns"][3]
    alone = runs["assistant-aec", "alone"]["turns"][0]
    assert over["double_talk_s"] > 0.0 and alone["double_talk_s"] == 0.0
    assert over["interrupted"] is False and runs["assistant-aec", "talk"]["turns"][2][
        "interrupted"]
    assert over["wer"] <= alone["wer"] + 0.10, (over["heard"], alone["heard"])


@pytest.mark.slow
@needs_echo
@needs_model
@needs_espeak
def test_with_no_room_at_all_the_canceller_still_hears_the_barge_in(tmp_path):
    # conversations/hello.yaml has no room: nothing comes back, so there is no echo to cancel
    # and neither canceller's ERLE grows. Before the little-echo route AEC3's suppressor
    # turned the barge-in down for as long as the bot played: turn 3 was heard as '' or
    # 'time.' through assistant-aec.yaml, right through assistant.yaml
    script = os.path.join(ROOT, "conversations", "hello.yaml")
    heard = {}
    for name in ("assistant", "assistant-aec"):
        r, report = converse(os.path.join(MANIFESTS, f"{name}.yaml"), script, tmp_path)
        assert r.returncode == 0, r.stderr
        assert report["turns"][1]["interrupted"], name          # turn 3 barged in
        heard[name] = report["turns"][2]
    aec, plain = heard["assistant-aec"], heard["assistant"]
    assert aec["wer"] <= plain["wer"] + 0.10, (aec["heard"], plain["heard"])
