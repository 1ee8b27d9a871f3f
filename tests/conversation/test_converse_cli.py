"""`remotemedia converse` as a user runs it: bad input is one line, exit 2, nothing written;
a signal ends the run with the turns so far; -q; `--script -`."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remotemedia.cli.common import MAX_BLOCK_SIZE, parse_block_size, parse_rate, parse_seed
from remotemedia.conversation import ConversationRun
from tests.signal_support import CliRun, each_signal, handler_installed

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MANIFESTS = os.path.join(ROOT, "manifests")
ASSISTANT = os.path.join(MANIFESTS, "assistant.yaml")
HELLO = "turns:\n  - say: \"Hello there.\"\n    expect: {heard: hello}\n"


def _run(*args, cwd, stdin=None):
    return subprocess.run([sys.executable, "-m", "remotemedia", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300, input=stdin)


def _one_line_exit_2(r, *says) -> bool:
    """True for a refusal: exit 2, one line on stderr saying each of `says`, nothing on
    stdout (an AssertionError naming what differs otherwise)."""
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    for s in says:
        assert s in r.stderr, r.stderr
    assert r.stdout == ""
    return True


@pytest.mark.parametrize("option, value", [("--seed", "-1"), ("--seed", "x"),
                                           ("--seed", "1.5")])
def test_converse_numeric_options_are_checked_by_argparse(tmp_path, option, value):
    (tmp_path / "s.yaml").write_text(HELLO)
    r = _run("converse", "-m", ASSISTANT, "-s", "s.yaml", option, value, cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"argument {option}: expected a whole number >= 0" in r.stderr


@pytest.mark.parametrize("option, value, says", [
    ("--seed", "-1", "expected a whole number >= 0"),
    ("--rate", "0", "expected a sample rate"), ("--rate", "-48000", "expected a sample rate"),
    ("--block-size", "-5", "expected a positive whole number of samples"),
    ("--block-size", "100000000000", "up to 1048576"),
    ("--duration", "1e300", "longer than a click train may be (600 s)")])
def test_latency_numeric_options_are_checked_before_any_device_opens(tmp_path, option, value,
                                                                    says):
    r = _run("latency", option, value, cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr and says in r.stderr, r.stderr


def test_stream_block_size_out_of_range_is_refused_not_allocated(tmp_path):
    r = _run("stream", "-m", os.path.join(MANIFESTS, "gain.yaml"), "-i", "sine", "-o", "null",
             "-d", "1", "--block-size", "100000000000", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "up to 1048576" in r.stderr


@settings(max_examples=300, deadline=None)
@given(value=st.one_of(st.integers(min_value=-2**70, max_value=2**70),
                       st.text(max_size=6)))
def test_the_integer_option_parsers_refuse_what_numpy_or_a_device_cannot_take(value):
    text = str(value)
    for parse, ok in ((parse_seed, lambda v: v >= 0),
                      (parse_rate, lambda v: 1 <= v <= 768000),
                      (parse_block_size, lambda v: 1 <= v <= MAX_BLOCK_SIZE)):
        try:
            expected = int(text)
        except ValueError:
            expected = None
        try:
            got = parse(text)
        except argparse.ArgumentTypeError as exc:
            assert expected is None or not ok(expected), exc
            assert repr(text)[1:-1] in str(exc) or text in str(exc)
        else:
            assert got == expected and ok(got)
            if parse is parse_seed:
                np.random.default_rng(got)          # numpy takes every seed let through


@pytest.mark.parametrize("target", ["s.yaml", "m.yaml", "c.json", "a.wav"])
def test_save_timing_never_writes_over_a_file_the_run_reads(tmp_path, target):
    import numpy as np
    import soundfile
    soundfile.write(str(tmp_path / "a.wav"), np.zeros(1600, np.float32), 16000)
    (tmp_path / "s.yaml").write_text("turns:\n  - say: hi\n  - play: a.wav\n")
    (tmp_path / "m.yaml").write_bytes(open(ASSISTANT, "rb").read())
    (tmp_path / "c.json").write_text(json.dumps(
        {"version": 1, "nodes": {k: [1.0] for k in ("resample", "vad", "stt", "llm", "tts")}}))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    r = _run("converse", "-m", "m.yaml", "-s", "s.yaml", "--timing", "c.json",
             "--save-timing", target, cwd=tmp_path)
    assert _one_line_exit_2(r, f"--save-timing {target} is the same file as")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_convert_manifest_never_rewrites_its_own_input(tmp_path):
    src = tmp_path / "g.yaml"
    src.write_bytes(open(os.path.join(MANIFESTS, "gain.yaml"), "rb").read())
    before = src.read_bytes()
    os.link(src, tmp_path / "hard.yaml")
    for out in ("g.yaml", "./g.yaml", "hard.yaml"):
        r = _run("convert-manifest", "g.yaml", "-o", out, cwd=tmp_path)
        assert _one_line_exit_2(r, "is the same file as FILE g.yaml")
        assert src.read_bytes() == before
    r = _run("convert-manifest", "g.yaml", "-o", "native.yaml", cwd=tmp_path)
    assert r.returncode == 0 and (tmp_path / "native.yaml").exists(), r.stderr


def test_replay_never_writes_over_the_recording_it_reads(tmp_path):
    r = _run("stream", "-m", os.path.join(MANIFESTS, "gain.yaml"), "-i", "sine", "-o", "null",
             "-d", "0.5", "--fast", "-q", "--record", "rec", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    before = {p.name: p.read_bytes() for p in (tmp_path / "rec").iterdir()}
    for args in (["--output", "file:rec/input.wav"], ["--trace", "rec/report.json"],
                 ["--output", "rec/output.wav"]):
        r = _run("replay", "rec", *args, cwd=tmp_path)
        assert _one_line_exit_2(r, "is the same file as the recording's")
    assert {p.name: p.read_bytes() for p in (tmp_path / "rec").iterdir()} == before


@pytest.mark.parametrize("name", ["passthrough.yaml", "speak.yaml", "transcribe.yaml"])
def test_a_manifest_that_cannot_hold_a_conversation_is_refused(tmp_path, name):
    (tmp_path / "s.yaml").write_text(HELLO)
    r = _run("converse", "-m", os.path.join(MANIFESTS, name), "-s", "s.yaml", "--json",
             "--save-timing", "c.json", cwd=tmp_path)
    assert _one_line_exit_2(r, "cannot hold a conversation", "Speak")
    assert not (tmp_path / "c.json").exists()


def test_a_cost_file_for_another_manifest_is_refused_naming_the_nodes(tmp_path):
    (tmp_path / "s.yaml").write_text(HELLO)
    (tmp_path / "c.json").write_text(json.dumps(
        {"version": 1, "nodes": {"resample": [1.0], "vad": [1.0], "whisper": [1.0]}}))
    r = _run("converse", "-m", ASSISTANT, "-s", "s.yaml", "--timing", "c.json", cwd=tmp_path)
    assert _one_line_exit_2(r, "c.json", "no costs for node(s) llm, stt, tts",
                     "costs for node(s) whisper the manifest does not have")


def test_bad_script_from_stdin_is_named_stdin(tmp_path):
    r = _run("converse", "-m", ASSISTANT, "-s", "-", cwd=tmp_path,
             stdin="turns:\n  - {say: a, after_ms: 1e12}\n")
    assert _one_line_exit_2(r, "<stdin>: turns[0]: after_ms must be a number of ms from 0 to 60000")


@pytest.mark.slow
@each_signal
def test_a_signal_ends_the_run_with_its_report_and_exit_code(tmp_path, sig, code, reason):
    # Minutes of simulated silence: the signal arrives while the run goes on.
    (tmp_path / "s.yaml").write_text(HELLO + "".join(
        f"  - {{say: \"turn {i}\", after_ms: 60000}}\n" for i in range(30)))
    with CliRun(["converse", "-m", ASSISTANT, "-s", "s.yaml", "--json"], cwd=tmp_path) as run:
        # SIGTERM's handler is converse's own (Python has none): the run is under way
        run.wait_ready(lambda: handler_installed(run.proc.pid), "converse's stop handler")
        done = run.stop(sig, timeout=300)
    done.assert_clean_stop(sig)
    assert f"stopped ({reason})" in done.stderr, done.stderr
    report = done.report()
    assert report["stop_reason"] == reason and report["passed"] is False
    assert len(report["turns"]) < 31


class _StopsBeforeTurn2(ConversationRun):
    def _starts(self, i, t, spans, sim, idle_since):
        if i == 1 and idle_since is not None and self._answered(sim, spans[-1][1]):
            self.stop("interrupted")       # as the signal handler does, once turn 1 is over
            return False
        return super()._starts(i, t, spans, sim, idle_since)


@pytest.mark.slow
def test_a_stopped_run_reports_the_turns_it_finished():
    run = _StopsBeforeTurn2(ASSISTANT, {"turns": [
        {"say": "Hello there.", "expect": {"heard": "hello"}},
        {"say": "What time is it?", "after_ms": 400}]})
    report = run.run()
    assert report["stop_reason"] == "interrupted" and report["passed"] is False
    assert [t["user"] for t in report["turns"]] == ["Hello there."]
    assert "hello" in report["turns"][0]["heard"].lower()
    assert report["turns"][0]["reply"]


@pytest.mark.slow
def test_quiet_says_nothing_and_script_from_stdin_runs(tmp_path):
    r = _run("converse", "-q", "-m", ASSISTANT, "-s", "-", "--json", cwd=tmp_path, stdin=HELLO)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert report["script"] == "-" and report["passed"] is True
    assert "stop_reason" not in report


@pytest.mark.slow
def test_quiet_silences_the_recorded_line_too(tmp_path):
    r = _run("-q", "converse", "-m", ASSISTANT, "-s", "-", "--record", "rec", cwd=tmp_path,
             stdin=HELLO)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert (tmp_path / "rec" / "conversation.json").is_file()


def test_a_room_with_realtime_is_refused_before_any_device_opens(tmp_path):
    (tmp_path / "s.yaml").write_text("room: {echo_delay_ms: 100}\n" + HELLO)
    r = _run("converse", "--realtime", "-m", ASSISTANT, "-s", "s.yaml", "--input",
             "device:nosuch", "--output", "device:nosuch", cwd=tmp_path)
    assert _one_line_exit_2(r, "s.yaml: room: is simulated; live, use --loopback")


@pytest.mark.parametrize("option", ["--input", "--output"])
def test_realtime_with_a_file_says_it_must_be_a_device_before_reading_it(tmp_path, option):
    import soundfile
    soundfile.write(tmp_path / "x.wav", np.zeros(2205, dtype=np.float32), 22050)
    (tmp_path / "s.yaml").write_text(HELLO)
    ends = {"--input": "device:nosuch", "--output": "device:nosuch", option: "file:x.wav"}
    r = _run("converse", "--realtime", "-m", ASSISTANT, "-s", "s.yaml", *[
        x for kv in ends.items() for x in kv], cwd=tmp_path)
    assert _one_line_exit_2(r, f"{option} file:x.wav must be a device (device:NAME_OR_INDEX)")
    assert "22050" not in r.stderr


@pytest.mark.slow
def test_a_cost_file_with_too_few_costs_for_a_node_says_so_in_one_line(tmp_path):
    (tmp_path / "s.yaml").write_text(HELLO)
    r = _run("converse", "-m", ASSISTANT, "-s", "s.yaml", "--save-timing", "c.json",
             cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "c.json").read_text())
    node = max(doc["nodes"], key=lambda k: len(doc["nodes"][k]))
    calls = len(doc["nodes"][node])
    assert calls > 1
    doc["nodes"][node] = doc["nodes"][node][:1]
    (tmp_path / "short.json").write_text(json.dumps(doc))
    r = _run("converse", "-m", ASSISTANT, "-s", "s.yaml", "--timing", "short.json",
             cwd=tmp_path)
    notes = [x for x in r.stderr.splitlines() if x.startswith("remotemedia: note:")]
    # (the call count may move: the median is not what each call cost)
    assert len(notes) == 1 and re.fullmatch(
        rf"remotemedia: note: short\.json: too few costs for {node} called \d+ times, 1 "
        rf"costs \(the rest charged the median; --save-timing writes a file for this "
        rf"script\)", notes[0]), r.stderr
