"""A graph of any depth that loads runs: a block goes depth first through direct calls, so a long
path is a deep stack, and the schedule makes room for its longest path (schedule._make_room).
Before, a chain of 200 ordinary nodes loaded and then died of RecursionError.

The kind, over depth: chains of ordinary nodes of every compiled case (one input taken as it
comes, a requirement checked by dtype, the general path, linear nodes fused or not) and
fan-out/fan-in diamonds, fused and unfused, traced and untraced, audio pushed shared and handed
over, and events (whose path through a node is the deepest: general path, on_control, emit),
on the calling thread and on another thread (the runner pushes from its own)."""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import remotemedia as rm
from remotemedia.engine.data import ControlData, NumpyData

# the schedule raises the recursion limit for a deep graph, which hypothesis then declines to
# put back: that is the point, not a problem
pytestmark = pytest.mark.filterwarnings("ignore:The recursion limit will not be reset")

# every case of a one-input step: taken as it comes (PassThrough), a requirement checked by
# dtype and a linear node (Gain), a node that buffers and releases on events (Delay 0 passes
# blocks and, at end of stream, has nothing to release)
KINDS = {
    "PassThrough": ({}, 1.0),
    "Gain": ({"linear": -1.0}, -1.0),         # exact: the polarity flips
    "Delay": ({"samples": 0}, 1.0),
}


def chain(types: list[str]) -> tuple[dict, float]:
    nodes = [{"id": f"n{i}", "node_type": t, "params": KINDS[t][0]} for i, t in enumerate(types)]
    ids = ["input"] + [n["id"] for n in nodes] + ["output"]
    factor = float(np.prod([KINDS[t][1] for t in types]))
    return ({"version": "v1", "nodes": nodes,
             "connections": [{"from": a, "to": b} for a, b in zip(ids, ids[1:])]}, factor)


def diamonds(stages: int) -> tuple[dict, float]:
    """Each stage fans out to a Gain and a PassThrough and mixes them back at half weight each."""
    nodes, conns, prev = [], [], "input"
    for i in range(stages):
        nodes += [{"id": f"g{i}", "node_type": "Gain", "params": {"linear": -1.0}},
                  {"id": f"p{i}", "node_type": "PassThrough"},
                  {"id": f"m{i}", "node_type": "Mix",
                   "params": {"weights": {"wet": 0.5, "dry": 0.5}}}]
        conns += [{"from": prev, "to": f"g{i}"}, {"from": prev, "to": f"p{i}"},
                  {"from": f"g{i}", "to": f"m{i}", "input": "wet"},
                  {"from": f"p{i}", "to": f"m{i}", "input": "dry"}]
        prev = f"m{i}"
    conns.append({"from": prev, "to": "output"})
    # -x/2 + x/2 = 0 at the first stage, and 0 after it
    return {"version": "v1", "nodes": nodes, "connections": conns}, 0.0


def run_blocks(manifest: dict, factor: float, fuse: bool, traced: bool) -> None:
    spans: dict[str, list] = {}
    trace = (lambda node_id: spans.setdefault(node_id, [])) if traced else None
    block = np.arange(960, dtype=np.float32)
    with rm.Pipeline.from_manifest(manifest).session(fuse=fuse, trace=trace) as s:
        shared = s.push(block)
        owned = s.push(block.copy(), transfer=True)
        framed = s.push(NumpyData(block, sample_rate=48000, pts=0, seq=0))
        events = s.push(ControlData("end_of_stream"))
        stats = s.stats()
    for out in (shared, owned, framed):
        assert len(out) == 1 and isinstance(out[0], NumpyData)
        np.testing.assert_array_equal(out[0].array, block * np.float32(factor))
    assert [type(o) for o in events] == [ControlData]
    assert stats["frames_in"] == stats["frames_out"] == 3
    assert stats["errors"] == 0 and stats["drops"] == 0
    if traced:
        assert spans and all(len(v) >= 1 for v in spans.values())


def on_a_thread(fn, *args) -> None:
    failure: list[BaseException] = []

    def run():
        try:
            fn(*args)
        except BaseException as exc:       # handed to the test's thread and raised there
            failure.append(exc)
    t = threading.Thread(target=run)
    t.start()
    t.join()
    if failure:
        raise failure[0]


# deep enough that an event's path alone (about four frames a node) passes the interpreter's
# default limit of 1000 frames several times over
DEPTH = st.integers(min_value=1, max_value=1500)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(depth=DEPTH, kinds=st.lists(st.sampled_from(sorted(KINDS)), min_size=1, max_size=3),
       fuse=st.booleans(), traced=st.booleans(), thread=st.booleans())
def test_a_chain_of_any_depth_runs(depth, kinds, fuse, traced, thread):
    manifest, factor = chain([kinds[i % len(kinds)] for i in range(depth)])
    assert len(manifest["nodes"]) == depth
    # run_blocks asserts every block's output, the events and the counters
    (on_a_thread if thread else lambda f, *a: f(*a))(run_blocks, manifest, factor, fuse, traced)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stages=st.integers(min_value=1, max_value=500), fuse=st.booleans(),
       traced=st.booleans(), thread=st.booleans())
def test_fan_out_and_fan_in_of_any_depth_run(stages, fuse, traced, thread):
    manifest, factor = diamonds(stages)
    assert len(manifest["nodes"]) >= stages
    # run_blocks asserts every block's output, the events and the counters
    (on_a_thread if thread else lambda f, *a: f(*a))(run_blocks, manifest, factor, fuse, traced)


def test_the_deepest_case_runs_and_the_limit_only_rises():
    # the two ends of the property, always: a chain far past the default limit, on a thread
    before = sys.getrecursionlimit()
    manifest, factor = chain(["PassThrough", "Delay", "Gain"] * 700)
    on_a_thread(run_blocks, manifest, factor, False, True)
    assert sys.getrecursionlimit() >= before


def test_the_command_line_streams_what_it_validates(tmp_path):
    # as a user meets it: `validate` accepts a deep chain and `stream` runs it on its runner
    # thread, events and trace included
    import json
    import subprocess
    import yaml
    manifest, _ = chain(["PassThrough", "Delay", "Gain"] * 400)
    path = tmp_path / "deep.yaml"
    path.write_text(yaml.safe_dump(manifest))
    cli = [sys.executable, "-m", "remotemedia"]
    checked = subprocess.run(cli + ["validate", str(path)], capture_output=True, text=True,
                             timeout=300)
    assert checked.returncode == 0, checked.stderr
    run = subprocess.run(cli + ["stream", "-m", str(path), "-i", "sine", "-o", "null", "-d", "0.2",
                                "--fast", "--json", "--no-fuse", "--trace",
                                str(tmp_path / "trace.json")],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["frames_in"] == report["frames_out"] == 10
