"""The trace: Chrome trace-event JSON with a span per node per block inside the block's span,
events and xruns as instants, strict JSON; the validator catches what a broken trace does; an
untraced session carries no trace code at all."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remotemedia.engine.session import Pipeline
from remotemedia.io.spec import make_sink, make_source
from remotemedia.runner import StreamRunner
from remotemedia.trace import DEVICE_TID, ENGINE_TID, Tracer, validate_trace
from tests.conftest import MANIFESTS


def traced_run(manifest, seconds=1.0, input_spec="noise"):
    pipeline = Pipeline.from_manifest(manifest)
    m = pipeline.manifest
    runner = StreamRunner(pipeline, make_source(input_spec, m.audio),
                          make_sink("null", m.output_format), duration=seconds)
    tracer = Tracer().bind(runner)
    stats = runner.run()
    return tracer, stats


def test_five_node_chain_has_one_span_per_node_per_block_nested_in_its_block(tmp_path):
    tracer, stats = traced_run(MANIFESTS / "five.yaml")
    path = tmp_path / "t.json"
    tracer.write(path)
    doc = json.loads(path.read_text())
    assert validate_trace(doc) == []
    spans = [e for e in doc["traceEvents"] if e["ph"] == "X"]
    names = Counter(e["name"] for e in spans if e["cat"] == "node")
    assert names == {n: 50 for n in "abcde"}
    blocks = [e for e in spans if e["cat"] == "block"]
    assert len(blocks) == stats["frames_in"] == 50
    # each node span lies inside the span of the block it belongs to, in schedule order
    nodes = [e for e in spans if e["cat"] == "node"]
    for i, b in enumerate(blocks):
        inside = [e for e in nodes if b["ts"] <= e["ts"] and e["ts"] + e["dur"] <= b["ts"] +
                  b["dur"] + 1e-6]
        assert [e["name"] for e in inside] == list("abcde"), f"block {i}"
    assert all(e["tid"] == ENGINE_TID for e in spans)
    tracks = {e["args"]["name"] for e in doc["traceEvents"] if e["name"] == "thread_name"}
    assert tracks == {"engine", "audio callback"}


def test_events_and_errors_are_instants(tmp_path):
    manifest = {"version": "v1", "audio": {"sample_rate": 48000, "block_size": 960,
                                           "channels": 1},
                "nodes": [{"id": "meter", "node_type": "LevelMeter", "params": {"every": 10}}],
                "connections": [{"from": "input", "to": "meter"},
                                {"from": "meter", "to": "output"}]}
    tracer, stats = traced_run(manifest)
    instants = [i for i in tracer.events() if i["ph"] == "i"]
    assert [i["name"] for i in instants] == ["level"] * 5 == ["level"] * stats["events_out"]
    assert [i["args"]["seq"] for i in instants] == [9, 19, 29, 39, 49]


def test_a_node_that_raises_still_closes_its_span_and_marks_the_error():
    from remotemedia.engine.node import node_function

    @node_function("TraceTestFailsOnOdd")
    def fails_on_odd(frame):
        if frame.seq % 2:
            raise ValueError("odd")
        return frame

    manifest = {"version": "v1", "audio": {"sample_rate": 48000, "block_size": 960,
                                           "channels": 1},
                "nodes": [{"id": "f", "node_type": "TraceTestFailsOnOdd", "on_error": "skip"}],
                "connections": [{"from": "input", "to": "f"}, {"from": "f", "to": "output"}]}
    tracer, stats = traced_run(manifest, seconds=0.2)
    doc = {"traceEvents": tracer.events()}
    assert validate_trace(doc) == []
    assert sum(e["name"] == "f" for e in doc["traceEvents"]) == 10
    errors = [e for e in doc["traceEvents"] if e["ph"] == "i" and e["name"] == "error"]
    assert [e["args"]["seq"] for e in errors] == [1, 3, 5, 7, 9] and stats["errors"] == 5


def test_cli_trace_is_strict_json_that_validates(tmp_path):
    path = tmp_path / "t.json"
    out = subprocess.run([sys.executable, "-m", "remotemedia", "stream", "-m",
                          str(MANIFESTS / "mix.yaml"), "-i", "sine", "-o", "null", "-d", "0.5",
                          "--trace", str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    text = path.read_text()
    doc = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in the trace"))
    assert validate_trace(doc) == []
    assert sum(e["ph"] == "X" and e["cat"] == "block" for e in doc["traceEvents"]) == 25


def test_an_untraced_session_compiles_no_trace_code():
    pipeline = Pipeline.from_manifest(MANIFESTS / "five.yaml")
    with pipeline.session() as plain:
        for step in plain.schedule.steps:
            receive = step.receive_numpy if not step.fan_in else next(iter(step.inputs.values()))[1]
            assert "TRACE=False" in receive.__code__.co_filename
            assert "trace_end" not in receive.__code__.co_freevars
    tracer = Tracer()
    with pipeline.session(trace=tracer.spans_for) as traced:
        step = traced.schedule.steps[0]
        assert "TRACE=True" in step.receive.__code__.co_filename
        assert "trace_end" in step.receive_numpy.__code__.co_freevars
        traced.push(np.zeros(960, np.float32))
    assert {k: len(v) for k, v in tracer.node_spans.items()} == {n: 1 for n in "abcde"}


def test_no_case_of_the_step_template_has_trace_code_untraced():
    # every case the template generates, untraced: not one line of tracing in its source
    import itertools
    from remotemedia.engine.template import TEMPLATE, expand
    bools = (False, True)
    for kind in ("one", "fan_in", "linear"):
        for values in itertools.product(bools, repeat=7):
            flags = dict(zip(("SINGLE", "RETAINS", "READERS_ONE", "FAST", "CHECK", "REQUIRES",
                              "ONE_GAIN"), values), KIND=kind)
            untraced = expand(TEMPLATE, {**flags, "TRACE": False})
            traced = expand(TEMPLATE, {**flags, "TRACE": True})
            assert "trace_end" not in untraced
            assert "trace_end" in traced


# -- the validator catches broken traces -------------------------------------------------

def X(name, ts, dur, tid=1):
    return {"name": name, "ph": "X", "pid": 1, "tid": tid, "ts": ts, "dur": dur}


@pytest.mark.parametrize("events, problem", [
    ([X("a", 0, 10), X("b", 5, 10)], "overlaps the end of its enclosing span"),
    ([X("a", 10, 1), X("b", 5, 1)], "goes back in time"),
    ([X("a", 0, -1)], "is not a finite number >= 0"),
    ([{"name": "a", "ph": "B", "pid": 1, "tid": 1, "ts": 0}], "never ended"),
    ([{"name": "a", "ph": "E", "pid": 1, "tid": 1, "ts": 0}], "E without a B"),
    ([{"name": "a", "ph": "Q", "pid": 1, "tid": 1, "ts": 0}], "unknown ph"),
    ([{"name": "a", "ph": "i", "pid": 1, "tid": 1}], "is not a finite number"),
])
def test_validator_catches(events, problem):
    problems = validate_trace({"traceEvents": events})
    assert any(problem in p for p in problems), problems


def test_validator_accepts_nesting_and_separate_tracks():
    events = [X("block", 0, 10), X("a", 1, 2), X("b", 4, 6), X("cb", 5, 20, tid=DEVICE_TID)]
    assert validate_trace({"traceEvents": events}) == []


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 50), st.integers(1, 30)),
                min_size=1, max_size=20))
def test_tracer_output_always_validates(calls):
    """Whatever order and length node calls come in, the events a Tracer makes of them are
    sorted, nested and closed."""
    tracer = Tracer()
    t = 0
    for seq, (node, gap, dur) in enumerate(calls):
        t += gap
        tracer.blocks += (seq, t, t + dur + 2)
        tracer.node_spans.setdefault(node, []).append(t + 1 + dur)
        t += dur + 2
    assert validate_trace({"traceEvents": tracer.events()}) == []
