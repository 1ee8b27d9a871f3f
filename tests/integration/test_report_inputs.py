"""`remotemedia report` on what the commands print: a whole `stream --json` stdout (events,
then the report as the last line) and a `converse --json` report (its turns figure)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("matplotlib", reason="the report extra (matplotlib) is not installed")
pytest.importorskip("jinja2", reason="the report extra (jinja2) is not installed")

from tests.conftest import MANIFESTS  # noqa: E402

CONVERSE_TURNS = {
    "count": 1, "replied": 1, "interruptions": 0,
    "voice_to_voice_ms": {"p50": 994.0, "p90": 994.0, "max": 994.0},
    "barge_in_stop_ms": {"p50": None, "p90": None, "max": None},
    "turns": [{"end_s": 1.246, "endpoint_s": 1.6002, "voice_to_voice_ms": 994.0,
               "breakdown_ms": {"endpoint": 354.223, "stt": 613.669, "llm": 0.109,
                                "tts": 14.165, "output": 11.834},
               "barge_in_stop_ms": None, "barge_in_s": None, "heard": "Hello there.",
               "reply": "Hello! How can I help?"}]}


def _report(path, cwd):
    return subprocess.run([sys.executable, "-m", "remotemedia", "report", str(path)],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


def test_a_whole_stream_json_stdout_is_read_by_its_last_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "remotemedia", "stream", "-m",
                          str(MANIFESTS / "meter.yaml"), "-i", "sine", "-o", "null", "-d", "1",
                          "--fast", "--json"], capture_output=True, text=True, timeout=300,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.strip().splitlines()) > 1      # events, then the report
    (tmp_path / "run.json").write_text(out.stdout)
    r = _report(tmp_path / "run.json", tmp_path)
    assert r.returncode == 0, r.stderr
    assert {"report.html", "counters.png", "latency.png"} <= \
        {p.name for p in (tmp_path / "run-report").iterdir()}


def test_a_converse_report_draws_its_turns_figure(tmp_path):
    doc = {"manifest": "assistant.yaml", "script": "s.yaml", "timing": "measured", "seed": 0,
           "turns": [{"user": "Hello there.", "voice_to_voice_ms": 994.0}], "passed": True,
           "simulated_s": 5.5, "wall_s": 2.9,
           "stats": {"nodes": {"stt": {"calls": 3, "cost_ms": 600.0, "cost_max_ms": 300.0}},
                     "turns": CONVERSE_TURNS, "interrupts": 0, "bot_speech_s": 1.7}}
    (tmp_path / "conv.json").write_text("note\n" + json.dumps(doc) + "\n")
    r = _report(tmp_path / "conv.json", tmp_path)
    assert r.returncode == 0, r.stderr
    made = {p.name for p in (tmp_path / "conv-report").iterdir()}
    assert made == {"report.html", "turns.png"}
    assert "Hello there." in (tmp_path / "conv-report" / "report.html").read_text()


@pytest.mark.parametrize("text, says", [
    ('{"a": 1}\n', "is not a stats report"),
    ("not json\nnor this\n", "neither the file nor its last line is JSON"),
    ("", "cannot read"),
])
def test_what_is_no_report_is_one_line_exit_2_and_nothing_made(tmp_path, text, says):
    (tmp_path / "x.json").write_text(text)
    r = _report(tmp_path / "x.json", tmp_path)
    assert r.returncode == 2 and says in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x-report").exists()
