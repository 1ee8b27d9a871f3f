"""A simulated run made like a live one: charged a live run's own model costs (Costs'
model_runs) and heard through an output device's latency (ConversationRun's
output_latency_ms), so the two differ by the loop alone (benchmarks/bench_conversation.py)."""

from __future__ import annotations

import json
import math

import pytest

from remotemedia.conversation import ConversationRun
from remotemedia.converse import Costs, ScriptError

from .test_conversation import ASSISTANT

pytestmark = pytest.mark.slow
ONE_TURN = {"turns": [{"say": "Hello there.", "after_ms": 300}]}


def test_a_live_runs_model_costs_are_charged_in_place_of_the_measured_ones():
    # Whisper's runs charged 2 s each (what a slow live run might have paid): every run is
    # charged exactly that, and the turn waits for it; the rest of each call is measured
    costs = Costs(model_runs={"stt": [2000.0]})
    run = ConversationRun(ASSISTANT, ONE_TURN, timing=costs)
    report = run.run()
    runs = run.sim.nodes["stt"].runs
    assert runs >= 1
    # the first from the list, the rest its median (the same here)
    assert costs.model_charged["stt"] == [2.0] * runs
    charged = costs.charged["stt"]
    assert sum(c >= 2.0 for c in charged) == runs, charged
    (turn,) = report["turns"]
    # (Whisper starts speculatively at the first silent window, while the endpoint is
    # decided: its run spans both parts)
    parts = turn["breakdown_ms"]
    assert parts["endpoint"] + parts["stt"] >= 2000.0, turn
    assert turn["voice_to_voice_ms"] > 2000.0 and "hello" in turn["heard"].lower(), turn


def test_model_runs_are_checked_and_go_with_measured_costs():
    with pytest.raises(ScriptError, match=r"model_runs\.stt\[0\]"):
        Costs(model_runs={"stt": [-1.0]})
    with pytest.raises(ValueError, match="measured"):
        Costs({"stt": [1.0]}, model_runs={"stt": [1.0]})
    with pytest.raises(ScriptError, match="'tts'.*time their model runs"):
        ConversationRun(ASSISTANT, ONE_TURN, timing=Costs(model_runs={"tts": [1.0]})).run()


def test_an_output_latency_delays_what_the_user_hears_by_exactly_that(tmp_path):
    first = ConversationRun(ASSISTANT, ONE_TURN)
    first.run()
    path = str(tmp_path / "costs.json")
    first.costs.save(path)
    plain = ConversationRun(ASSISTANT, ONE_TURN, timing=path)
    plain_report = plain.run()
    late = ConversationRun(ASSISTANT, ONE_TURN, timing=path, output_latency_ms=60.0)
    late_report = late.run()
    # the same costs, the same loop: the reply heard 60 ms later, from the audio and from the
    # VAD's edge (its `output` part), and said in the report
    (a,), (b,) = plain.audio_voice_to_voice(), late.audio_voice_to_voice()
    assert b - a == pytest.approx(60.0, abs=0.01)
    (pa,), (pb,) = plain_report["turns"], late_report["turns"]
    assert pb["voice_to_voice_ms"] - pa["voice_to_voice_ms"] == pytest.approx(60.0, abs=0.01)
    assert pb["breakdown_ms"]["output"] - pa["breakdown_ms"]["output"] == pytest.approx(60.0,
                                                                                      abs=0.01)
    assert late_report["output_latency_ms"] == 60.0 and "output_latency_ms" not in plain_report
    assert [p[0] for p in late.sim.played] == pytest.approx(
        [p[0] + 0.06 for p in plain.sim.played])
    json.dumps(late_report, allow_nan=False)


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf, True, "60"])
def test_an_output_latency_that_is_not_a_number_of_ms_is_refused(bad):
    with pytest.raises(ValueError, match="output_latency_ms"):
        ConversationRun(ASSISTANT, ONE_TURN, output_latency_ms=bad)


def _live_file(tmp_path, doc) -> str:
    path = tmp_path / "live.json"
    path.write_text(json.dumps(doc))
    return str(path)


def test_model_runs_per_user_turn_are_charged_in_their_turn():
    # turn 0 had two runs live, turn 1 one: a third run in turn 0 pays turn 0's median, and
    # turn 1's first run still pays turn 1's (a run more in one turn shifts no other's)
    costs = Costs(model_runs={"stt": [[100.0, 300.0], [50.0]]})
    got = [costs.charge("stt", 1.0, [1.0], turn) for turn in (0, 0, 0, 1, 1, 2)]
    assert got == pytest.approx([0.1, 0.3, 0.2, 0.05, 0.05, 0.1])   # turn 2: all runs' median
    assert costs.model_past_end == {"stt": 3}      # turn 0's third, turn 1's second, turn 2's
    # a flat list is charged in order, whatever the turn
    flat = Costs(model_runs={"stt": [100.0, 300.0]})
    assert [flat.charge("stt", 1.0, [1.0], t) for t in (5, 0, 3)] == pytest.approx(
        [0.1, 0.3, 0.2])


def test_a_live_runs_cost_file_gives_its_model_runs_and_device_path(tmp_path):
    path = str(tmp_path / "live.json")
    Costs.save_live(path, {"stt": [[512.25], [480.0, 300.0]]}, 60.0)
    costs = Costs.load(path)
    assert costs.measured and costs.source == path
    assert costs.model_runs == {"stt": [[0.51225], [0.48, 0.3]]}
    assert costs.device_latency_ms == 60.0
    run = ConversationRun(ASSISTANT, ONE_TURN, timing=path)
    assert run.output_latency_ms == 60.0            # the file's, unless one is given
    assert ConversationRun(ASSISTANT, ONE_TURN, timing=path,
                           output_latency_ms=20.0).output_latency_ms == 20.0


@pytest.mark.parametrize("doc, says", [
    ({"version": 1, "model_runs": {"stt": [-5]}, "device_latency_ms": 60},
     r"model_runs\.stt\[0\]"),
    ({"version": 1, "model_runs": {"stt": [[5], [1, "x"]]}, "device_latency_ms": 60},
     r"model_runs\.stt\[1\]\[1\]"),
    ({"version": 1, "model_runs": {"stt": [5]}}, "device_latency_ms"),
    ({"version": 1, "model_runs": {"stt": [5]}, "device_latency_ms": True}, "device_latency_ms"),
    ({"version": 1, "model_runs": {"stt": [5]}, "device_latency_ms": 60, "nodes": {}},
     "device_latency_ms"),
])
def test_a_bad_live_cost_file_is_refused_naming_it(tmp_path, doc, says):
    path = _live_file(tmp_path, doc)
    with pytest.raises(ScriptError, match=says) as err:
        Costs.load(path)
    assert path in str(err.value)


def test_a_live_cost_file_for_a_node_without_model_runs_is_refused_naming_it(tmp_path):
    path = _live_file(tmp_path, {"version": 1, "model_runs": {"tts": [5]},
                                 "device_latency_ms": 60})
    with pytest.raises(ScriptError, match="'tts'.*time their model runs") as err:
        ConversationRun(ASSISTANT, ONE_TURN, timing=path).run()
    assert path in str(err.value)


def test_realtime_refuses_timing_in_one_line(tmp_path):
    import subprocess
    import sys
    (tmp_path / "s.yaml").write_text("turns: [{say: hi}]\n")
    (tmp_path / "c.json").write_text("{}")
    r = subprocess.run([sys.executable, "-m", "remotemedia", "converse", "-m", ASSISTANT,
                        "-s", "s.yaml", "--realtime", "-i", "device:x", "-o", "device:x",
                        "--timing", "c.json"], capture_output=True, text=True, cwd=tmp_path,
                       timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "--timing is for simulated time" in \
        r.stderr, r.stderr


def test_realtime_save_timing_never_writes_over_a_file_the_run_reads(tmp_path):
    # refused before any device is opened (device:x names none)
    import subprocess
    import sys
    (tmp_path / "s.yaml").write_text("turns: [{say: hi}]\n")
    r = subprocess.run([sys.executable, "-m", "remotemedia", "converse", "-m", ASSISTANT,
                        "-s", "s.yaml", "--realtime", "-i", "device:x", "-o", "device:x",
                        "--save-timing", "s.yaml"], capture_output=True, text=True,
                       cwd=tmp_path, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "--save-timing s.yaml" in r.stderr, \
        r.stderr
    assert (tmp_path / "s.yaml").read_text() == "turns: [{say: hi}]\n"
