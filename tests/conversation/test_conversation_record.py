"""`converse --record DIR` and `replay DIR`: a conversation kept and re-run bit for bit
(remotemedia/conversation_record.py), with real Whisper tiny.en, espeak-ng and the VAD."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from hypothesis import given, settings
from hypothesis import strategies as st

from remotemedia.conversation import ConversationRun
from remotemedia.conversation_record import (RecordingSim, _mask_wall_clock, check_document,
                                             check_record_dir, played_audio,
                                             replay_conversation, write_recording)
from remotemedia.engine.errors import UsageError
from tests.signal_support import CliRun, each_signal, handler_installed

from .test_conversation import TWO_TURNS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ASSISTANT = os.path.join(ROOT, "manifests", "assistant.yaml")
ASSISTANT_AEC = os.path.join(ROOT, "manifests", "assistant-aec.yaml")

ROOM = """\
room: {echo_delay_ms: 100, echo_gain_db: -6, rt60_ms: 300, seed: 7}
turns:
  - say: "Hello there."
  - say: "What is the weather like today?"
    after_ms: 400
"""


def rm(*args, cwd):
    return subprocess.run([sys.executable, "-m", "remotemedia", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=600)


def replay_json(directory, cwd, code=0):
    """`replay DIR --json`: (the process, its result); exit `code` (0 identical, 1 not)."""
    r = rm("replay", str(directory), "--json", cwd=cwd)
    assert r.returncode == code, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    return r, json.loads(r.stdout.strip().splitlines()[-1])


def differs_line(r, directory, *says) -> str:
    """The one line on stderr saying why the replay of `directory` differs."""
    lines = [x for x in r.stderr.splitlines() if x.startswith("remotemedia: error:")]
    assert len(lines) == 1, r.stderr
    assert f"replay {directory}: differs from the recording: " in lines[0], lines
    for s in says:
        assert s in lines[0], lines
    return lines[0]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """The 2-turn script run once with --record (costs measured on this machine)."""
    d = tmp_path_factory.mktemp("convrec")
    (d / "s.yaml").write_text(TWO_TURNS)
    r = rm("converse", "-m", ASSISTANT, "-s", "s.yaml", "--json", "--record", "rec", cwd=d)
    assert r.returncode == 0, r.stderr
    return d, json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_recorded_conversation_replays_identical_block_for_block_and_event_for_event(
        recorded):
    d, report = recorded
    rec = d / "rec"
    assert sorted(os.listdir(rec)) == sorted(
        ["input.wav", "output.wav", "events.jsonl", "report.json", "manifest.json",
         "conversation.json", "versions.json"])
    blocks = report["recording"]["blocks_recorded"]
    mic, rate = soundfile.read(rec / "input.wav", dtype="float32")
    assert rate == 48000 and mic.shape[0] == blocks * 960
    out, out_rate = soundfile.read(rec / "output.wav", dtype="float32")
    assert out_rate == 48000 and np.abs(out).max() > 0.05         # the bot spoke
    saved = json.loads((rec / "report.json").read_text())
    assert [t["heard"] for t in saved["turns"]] == [t["heard"] for t in report["turns"]]
    assert saved["turns"][1]["reply"] == "It is sunny today."
    r, result = replay_json(rec, d)
    assert result["identical"] is True
    assert result["blocks"] == blocks
    assert result["output"]["identical"] and result["output"]["frames"] == [out.shape[0]] * 2
    assert result["events"]["count"] == 0
    assert result["events"]["events"][0] == report["recording"]["events"] > 0
    assert result["turns"] == {"count": 0, "turns": 2, "first": []}
    assert result["input"] == {"identical": True}
    # Respond's reply events carry wall-clock ms: masked, and said so
    assert result["events"]["wall_clock_masked"] >= 2
    text = rm("replay", str(rec), cwd=d)
    assert text.returncode == 0
    assert "output: identical to the recorded output, bit for bit" in text.stdout
    assert "events: identical to the recorded events" in text.stdout
    assert "identical: yes" in text.stdout


@pytest.mark.slow
def test_one_sample_changed_in_output_wav_is_reported_different(recorded, tmp_path):
    d, _ = recorded
    import shutil
    bad = tmp_path / "tampered"
    shutil.copytree(d / "rec", bad)
    out, rate = soundfile.read(bad / "output.wav", dtype="float32", always_2d=True)
    i = int(np.flatnonzero(out[:, 0])[50])
    out[i, 0] += np.float32(1e-4)
    soundfile.write(bad / "output.wav", out, rate, subtype="FLOAT")
    r, result = replay_json(bad, d, code=1)
    assert result["identical"] is False
    assert result["output"]["identical"] is False
    assert result["output"]["first_difference"] == i
    assert result["events"]["count"] == 0
    assert "identical: NO" in r.stderr
    differs_line(r, bad, f"the output differs from frame {i}")


def _copy(rec, to):
    import shutil
    shutil.copytree(rec, to)
    return to


@pytest.mark.slow
@pytest.mark.parametrize("sample", [10, -1], ids=["noise-floor", "middle"])
def test_one_byte_changed_in_input_wav_exits_1_with_one_line(recorded, tmp_path, sample):
    # A byte of a sample in the noise floor before the user speaks changes neither output nor
    # events: the recorded digest of the input tells. One in the middle changes more.
    d, _ = recorded
    bad = _copy(d / "rec", tmp_path / "tampered")
    data = bytearray((bad / "input.wav").read_bytes())
    n = soundfile.info(bad / "input.wav").frames
    at = data.find(b"data") + 8 + 4 * (n // 2 if sample < 0 else sample)
    data[at] ^= 0x01
    (bad / "input.wav").write_bytes(bytes(data))
    r, result = replay_json(bad, d, code=1)
    assert result["identical"] is False and result["input"] == {"identical": False}
    differs_line(r, bad, "input.wav is not what was recorded")
    assert "input: input.wav is not what was recorded" in r.stderr


@pytest.mark.slow
def test_a_node_param_changed_in_the_recorded_manifest_exits_1_with_one_line(recorded,
                                                                            tmp_path):
    d, _ = recorded
    bad = _copy(d / "rec", tmp_path / "tampered")
    doc = json.loads((bad / "manifest.json").read_text())
    llm = next(n for n in doc["nodes"] if n["id"] == "llm")
    rule = next(x for x in llm["params"]["rules"] if x["match"] == "weather")
    rule["reply"] = "It is raining."
    (bad / "manifest.json").write_text(json.dumps(doc))
    r, result = replay_json(bad, d, code=1)
    assert result["identical"] is False and result["input"] == {"identical": True}
    assert any(x["field"] == "reply" and x["replayed"] == "It is raining."
               for x in result["turns"]["first"]), result["turns"]
    differs_line(r, bad, "turn field(s) differ (first: turn 2 reply)")


@pytest.mark.slow
def test_the_replay_really_reruns_the_graph_with_the_recorded_costs(recorded, tmp_path):
    # Charge Whisper 0.5 s more per call: the replayed reply comes later, so the output, the
    # events' times and the turns' latencies differ from the recording.
    d, _ = recorded
    import shutil
    other = tmp_path / "costs"
    shutil.copytree(d / "rec", other)
    doc = json.loads((other / "conversation.json").read_text())
    doc["costs_s"]["stt"] = [c + 0.5 for c in doc["costs_s"]["stt"]]
    (other / "conversation.json").write_text(json.dumps(doc))
    r, result = replay_json(other, d, code=1)
    differs_line(r, other, "the output differs", "event(s) differ", "turn field(s) differ")
    assert result["identical"] is False
    assert not result["output"]["identical"]
    assert result["events"]["count"] > 0
    assert any(x["field"] == "voice_to_voice_ms" for x in result["turns"]["first"])


@pytest.mark.slow
def test_a_room_with_an_echo_canceller_fed_back_replays_identical(tmp_path):
    # The canceller's reference is a feedback connection: in simulated time it is fed what
    # the output played, which the replay plays again exactly.
    (tmp_path / "room.yaml").write_text(ROOM)
    r = rm("converse", "-m", ASSISTANT_AEC, "-s", "room.yaml", "--record", "rec",
           cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    _, result = replay_json(tmp_path / "rec", tmp_path)
    assert result["identical"] is True and result["output"]["identical"]
    assert any("room figures" in n for n in result["notes"])


def test_record_into_a_non_empty_dir_is_refused_in_one_line_before_anything_runs(tmp_path):
    (tmp_path / "s.yaml").write_text(TWO_TURNS)
    full = tmp_path / "full"
    full.mkdir()
    (full / "notes.txt").write_text("mine")
    r = rm("converse", "-m", ASSISTANT, "-s", "s.yaml", "--record", "full", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "remotemedia: error: --record: full is not empty; give a new directory"]
    assert os.listdir(full) == ["notes.txt"] and (full / "notes.txt").read_text() == "mine"


def test_record_with_realtime_is_refused_and_nothing_is_made(tmp_path):
    (tmp_path / "s.yaml").write_text(TWO_TURNS)
    r = rm("converse", "-m", ASSISTANT, "-s", "s.yaml", "--record", "new", "--realtime",
           "-i", "device:x", "-o", "device:y", cwd=tmp_path)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "--record" in r.stderr and not (tmp_path / "new").exists()


def test_check_record_dir_refuses_a_link_a_file_and_a_non_empty_dir(tmp_path):
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "link")
    (tmp_path / "file").write_text("x")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "a").write_text("")
    for name, says in (("link", "symbolic link"), ("file", "not a directory"),
                       ("busy", "not empty")):
        with pytest.raises(UsageError, match=says):
            check_record_dir(tmp_path / name)
    assert check_record_dir(tmp_path / "real") == tmp_path / "real"     # empty: taken
    assert check_record_dir(tmp_path / "new") == tmp_path / "new"       # made later
    assert not (tmp_path / "new").exists()


def test_played_audio_places_each_block_at_its_start_with_silence_between():
    a = np.full(4, 0.5, dtype=np.float32)
    b = np.full((2, 1), -0.25, dtype=np.float32)
    out = played_audio([(0.001, a), (0.005, b)], out_rate=1000, rate=1000, blocks=8,
                       channels=1)
    assert out.shape == (8, 1) and out.dtype == np.float32
    assert out[:, 0].tolist() == [0, 0.5, 0.5, 0.5, 0.5, -0.25, -0.25, 0]


def test_only_the_wall_clock_fields_of_reply_events_are_masked():
    recs = [{"seq": 1, "event": {"type": "reply", "reply": "hi", "total_ms": 0.1,
                                 "first_text_ms": 0.05}},
            {"seq": 2, "event": {"type": "speech_end", "total_ms": 3}}]
    masked, n = _mask_wall_clock(recs)
    assert n == 1
    assert masked[0]["event"] == {"type": "reply", "reply": "hi", "total_ms": None,
                                  "first_text_ms": None}
    assert masked[1] == recs[1] and recs[0]["event"]["total_ms"] == 0.1   # not changed


@pytest.mark.slow
@each_signal
def test_a_signal_stops_a_conversation_replay_with_exit_130_or_143(recorded, sig, code,
                                                                   reason):
    d, report = recorded
    with CliRun(["replay", d / "rec", "--json"], cwd=d) as run:
        # its handler is in place before the models load: the signal comes before the end
        run.wait_ready(lambda: handler_installed(run.proc.pid), "replay's stop handler")
        done = run.stop(sig)
    done.assert_clean_stop(sig)
    result = done.report()
    blocks = report["recording"]["blocks_recorded"]
    assert result["stop_reason"] == reason and "identical" not in result
    assert result["blocks"] == blocks and 0 <= result["blocks_replayed"] < blocks
    assert f"stopped ({reason}) after {result['blocks_replayed']} of {blocks} blocks" in \
        done.stderr


# -- conversation.json is input: every field checked as the live inputs are ---------------------
GOOD_DOC = {
    "version": 1, "blocks": 300, "block_size": 960, "sample_rate": 48000,
    "output_rate": 48000, "output_channels": 1, "seed": 0, "room": False,
    "played_feedback": False, "timing": "measured",
    "costs_s": {"vad": [0.001, 0.002], "stt": [0.5], "llm": [], "tts": [0.01]},
    "spans": [[0.5, 1.5], [5.54, 7.38]],
    "turns": [{"say": "Hello there.", "play": None, "after_ms": 500.0,
               "barge_in_after_ms": None, "expect": {"heard": "hello"}},
              {"say": "What time is it?", "play": None, "after_ms": 500.0,
               "barge_in_after_ms": 500.0, "expect": {"reply": "noon", "within_ms": 2000}}],
    "metadata": {"3": {"x": 1}}, "input_sha256": "ab" * 32,
    "manifest_name": "assistant.yaml", "script_name": "s.yaml", "stop_reason": None}
_ANY = st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30),
                 st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=4),
                 st.lists(st.one_of(st.integers(-2, 2), st.lists(st.integers(-2, 2),
                                                                 max_size=3)), max_size=3),
                 st.dictionaries(st.text(max_size=3), st.one_of(st.integers(-2, 2),
                                                                st.lists(st.floats()))))


def test_the_good_document_passes_and_gives_its_costs():
    assert check_document(GOOD_DOC, "R/conversation.json") == GOOD_DOC["costs_s"]


@settings(max_examples=400, deadline=None)
@given(key=st.sampled_from(sorted(GOOD_DOC)), value=_ANY)
def test_any_field_of_conversation_json_replaced_is_refused_in_one_line_or_valid(key, value):
    doc = {**GOOD_DOC, key: value}
    try:
        check_document(doc, "R/conversation.json")
    except UsageError as exc:
        msg = str(exc)
        assert "\n" not in msg and msg.startswith("R/conversation.json: ")
        assert key in msg, msg
    else:
        # accepted: a value of the field's own kind, in its range
        old = GOOD_DOC[key]
        if value is None:
            assert key in ("manifest_name", "script_name", "input_sha256", "stop_reason",
                           "spans"), key
        elif old is None:
            assert isinstance(value, str)
        elif isinstance(old, bool):
            assert isinstance(value, bool)
        elif isinstance(old, int):
            assert type(value) is int and value >= (0 if key in ("blocks", "seed") else 1) \
                and (key != "version" or value == 1)
        else:
            assert type(value) is type(old), (key, value)


@pytest.mark.parametrize("key, value, says", [
    ("blocks", True, "blocks must be a whole number >= 0"),
    ("turns", [{"say": "a" * 2001, "play": None, "after_ms": 500.0,
                "barge_in_after_ms": None, "expect": {}}], "say: is 2001 characters"),
    ("turns", [{"say": "a", "play": None, "after_ms": -5, "barge_in_after_ms": None,
                "expect": {}}], "turns[0].after_ms must be a number of ms"),
    ("turns", [GOOD_DOC["turns"][1]], "barge_in_after_ms on the first turn"),
    ("spans", [[2.0, 1.0]], "spans must be"),
    ("spans", [[0, 1]] * 3, "spans must be"),          # more turns begun than the script has
    ("metadata", {"300": {}}, "metadata must be"),      # a block that was not recorded
    ("input_sha256", "zz", "input_sha256 must be 64 hex digits"),
    ("costs_s", {"vad": [61.0]}, "costs_s.vad[0] must be a cost from 0 to 60 s"),
])
def test_fields_out_of_range_are_refused_naming_them(key, value, says):
    with pytest.raises(UsageError, match=re.escape(says)):
        check_document({**GOOD_DOC, key: value}, "R/conversation.json")


def _tamper(rec, to, **fields):
    bad = _copy(rec, to)
    doc = json.loads((bad / "conversation.json").read_text())
    doc.update(fields)
    (bad / "conversation.json").write_text(json.dumps(doc))
    return bad


@pytest.mark.slow
@pytest.mark.parametrize("field, value, says", [
    ("costs_s", {"vad": "x"}, "costs_s.vad must be a list of costs in s"),
    ("turns", None, "turns must be a list"),
    ("spans", [[1]], "spans must be"),
    ("costs_s", "nan", "costs_s.vad[0] must be a cost"),
    ("costs_s", "neg", "costs_s.vad[0] must be a cost"),
    ("room", {"echo_delay_ms": -5}, "room must be true or false"),
    ("seed", "x", "seed must be a whole number"),
    ("timing", 5, "timing must be text"),
    ("played_feedback", "zz", "played_feedback must be true or false"),
    ("played_feedback", True, "played_feedback True does not match the recorded manifest"),
    ("block_size", 0, "block_size must be a whole number >= 1"),
    ("block_size", 480, "block_size 480 is not the recorded manifest's (960"),
    ("sample_rate", "fast", "sample_rate must be a whole number >= 1"),
])
def test_a_tampered_conversation_json_is_refused_in_one_line_exit_2(recorded, tmp_path, field,
                                                                    value, says):
    d, _ = recorded
    doc = json.loads((d / "rec" / "conversation.json").read_text())
    if value in ("nan", "neg"):
        costs = doc["costs_s"]
        costs["vad"][0] = float("nan") if value == "nan" else -1
        value = costs
    bad = _tamper(d / "rec", tmp_path / "bad", **{field: value})
    r = rm("replay", str(bad), cwd=d)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert f"{bad / 'conversation.json'}: {says}" in r.stderr, r.stderr


# -- a recording of a stopped run replays to where it stopped ------------------------------------
def _stopped_run(script, after_blocks: int):
    """A recording ConversationRun whose stop() is called (as a signal handler does) once
    `after_blocks` microphone blocks were delivered (0: before it runs)."""
    box = []

    class Sim(RecordingSim):
        def deliver(self, t, source, items):
            super().deliver(t, source, items)
            if source == "input" and len(self.mic) >= after_blocks:
                box[0].stop("terminated")

    class Run(ConversationRun):
        sim_class = Sim

    box.append(Run(ASSISTANT, script))
    if after_blocks == 0:
        box[0].stop("terminated")
    return box[0]


@pytest.mark.slow
@pytest.mark.parametrize("after_blocks", [0, 200], ids=["before-any-block", "mid-turn-2"])
def test_a_recording_of_a_stopped_run_replays_identical_to_where_it_stopped(tmp_path,
                                                                            after_blocks):
    import yaml
    conv = _stopped_run(yaml.safe_load(TWO_TURNS), after_blocks)
    report = conv.run()
    assert report["stop_reason"] == "terminated"
    write_recording(tmp_path / "rec", conv, None)
    result = replay_conversation(tmp_path / "rec")
    assert result["blocks"] == after_blocks
    assert result["turns"]["count"] == 0, result["turns"]
    assert result["events"]["count"] == 0 and result["identical"] is True, result
    assert any("stopped (terminated)" in n for n in result["notes"])


@pytest.mark.slow
def test_a_conversation_recorded_until_sigterm_replays_identical(tmp_path):
    (tmp_path / "s.yaml").write_text(TWO_TURNS + "".join(
        f"  - {{say: \"turn {i}\", after_ms: 60000}}\n" for i in range(10)))
    with CliRun(["converse", "-m", ASSISTANT, "-s", "s.yaml", "--json", "--record", "rec"],
                cwd=tmp_path) as run:
        run.wait_ready(lambda: handler_installed(run.proc.pid), "converse's stop handler")
        done = run.stop(signal.SIGTERM, timeout=300)
    done.assert_clean_stop(signal.SIGTERM)
    r, result = replay_json(tmp_path / "rec", tmp_path, code=0)
    assert result["identical"] is True and "stopped (terminated)" in r.stderr


@pytest.mark.slow
@pytest.mark.parametrize("remove, says", [
    ("conversation.json", "is not a recording: neither conversation.json (converse --record) "
                          "nor timeline.csv (stream --record) is in it"),
    ("events.jsonl", "is not a readable conversation recording: events.jsonl missing")])
def test_a_recording_missing_a_file_names_it(recorded, tmp_path, remove, says):
    d, _ = recorded
    bad = _copy(d / "rec", tmp_path / "bad")
    (bad / remove).unlink()
    r = rm("replay", str(bad), cwd=d)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert says in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_replay_of_a_regular_file_says_it_is_not_a_directory(tmp_path):
    (tmp_path / "afile").write_text("x")
    r = rm("replay", "afile", cwd=tmp_path)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "afile is not a recording: not a directory" in r.stderr, r.stderr
