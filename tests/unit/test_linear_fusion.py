"""Linear elementwise nodes and their fusion (engine/schedule.py, "linear steps").

A chain of adjacent linear nodes (Gain, or any node declaring `linear_elementwise`) runs as one
multiply by the product of their gains. The properties here hold for any chain of gains, taps
and meters, any float or integer input, mono or stereo, shared or handed over: fused gives the
samples of the same nodes run one by one (to a rounding per gain), the same copies and counts,
and per-node statistics that say which nodes were fused and give each its share.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import remotemedia as rm
from remotemedia import Node, NodeError
from remotemedia.engine.data import ControlData, JsonData, NumpyData
from remotemedia.nodes.audio import FLOAT_INPUT, Gain
from remotemedia.engine.fusion import linear_chains
from remotemedia.testing import chain, check_node, manifest, registered, to_yaml
from remotemedia.io.spec import make_sink, make_source
from remotemedia.record import Recorder, Recording
from remotemedia.replay import replay
from remotemedia.runner import StreamRunner
from remotemedia.trace import Tracer, validate_trace

BLOCK = 960


class ProcessGain(Gain):
    """Gain as any node that declares nothing: the engine calls its process()."""

    node_type = "ProcessGain"
    linear_elementwise = False


def push_all(m: dict, blocks: list, *, fuse: bool, transfer: bool = False, registry=None):
    pipeline = rm.Pipeline.from_manifest(m, registry=registry)
    with pipeline.session(fuse=fuse) as s:
        outs = [s.push(b.copy() if transfer else b, transfer=transfer) for b in blocks]
        return outs, s.stats()


def factor_of(params: dict) -> float:
    if params.get("linear") is not None:
        return params["linear"]
    return 10.0 ** (params.get("db", 0.0) / 20.0)


def linear_runs(nodes: list) -> list[list]:
    """The maximal runs of two or more adjacent Gains in a chain: what must be fused."""
    runs, current = [], []
    for node in nodes:
        if node[1] == "Gain":
            current.append(node)
        else:
            runs.append(current)
            current = []
    runs.append(current)
    return [r for r in runs if len(r) >= 2]


def same_event(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_event(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-4) or (a == b)
    return a == b


node = st.one_of(
    st.tuples(st.just("Gain"), st.floats(-40, 20).map(lambda db: {"db": db})),
    st.tuples(st.just("Gain"), st.sampled_from([-1.0, 0.5, 1.0, 2.0, 0.0]).map(
        lambda f: {"linear": f})),
    st.tuples(st.just("PassThrough"), st.just({})),
    st.tuples(st.just("LevelMeter"), st.just({"every": 1})),
)


@st.composite
def blocks_of(draw, dtype: str, channels: int, count: int = 3) -> list:
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    shape = (BLOCK,) if channels == 1 else (BLOCK, channels)
    if dtype == "int16":
        return [rng.integers(-32768, 32767, shape, dtype=np.int16) for _ in range(count)]
    return [rng.uniform(-1.0, 1.0, shape).astype(dtype) for _ in range(count)]


@settings(max_examples=60, deadline=None)
@given(kinds=st.lists(node, min_size=1, max_size=7), dtype=st.sampled_from(
    ["float32", "float64", "int16"]), channels=st.sampled_from([1, 2]),
    transfer=st.booleans(), data=st.data())
def test_a_fused_chain_gives_the_samples_copies_and_counts_of_its_nodes_run_one_by_one(
        kinds, dtype, channels, transfer, data):
    nodes = [(f"n{i}", t, p) for i, (t, p) in enumerate(kinds)]
    m = chain(*nodes, audio={"channels": channels})
    blocks = data.draw(blocks_of(dtype, channels))
    fused, fs = push_all(m, blocks, fuse=True, transfer=transfer)
    alone, us = push_all(m, blocks, fuse=False, transfer=transfer)
    # and each Gain through its own process(), as a node that declares nothing runs
    with registered(ProcessGain) as reg:
        generic = chain(*[(i, "ProcessGain" if t == "Gain" else t, p) for i, t, p in nodes],
                        audio={"channels": channels})
        by_process, ps = push_all(generic, blocks, fuse=True, transfer=transfer, registry=reg)
    for got, want in zip(alone, by_process):
        assert [o.array.tobytes() if isinstance(o, NumpyData) else o for o in got] == \
            [o.array.tobytes() if isinstance(o, NumpyData) else o for o in want]
    assert us["copies"] == ps["copies"]
    assert us["frames_out"] == ps["frames_out"] and us["events_out"] == ps["events_out"]

    gains = sum(1 for n in nodes if n[1] == "Gain")
    for got, want in zip(fused, alone):
        assert [type(o) for o in got] == [type(o) for o in want]
        for a, b in zip(got, want):
            if isinstance(a, NumpyData):
                assert a.dtype == b.dtype and a.shape == b.shape
                if a.dtype.kind != "f":                # no gain ran: passed on as it came
                    assert a.array.tobytes() == b.array.tobytes()
                else:
                    eps = np.finfo(a.dtype).eps
                    np.testing.assert_allclose(a.array, b.array, rtol=(gains + 1) * eps,
                                               atol=1e-30)
                assert a.pts == b.pts and a.seq == b.seq
            else:
                assert same_event(a.value if isinstance(a, JsonData) else a,
                                  b.value if isinstance(b, JsonData) else b)
    for key in ("frames_in", "frames_out", "events_out", "drops", "errors",
                "serialization_events"):
        assert fs[key] == us[key], key
    assert fs["copies"]["engine"] == us["copies"]["engine"]
    # A run whose gains multiply to exactly 1.0 passes the block untouched when fused, where
    # its first gain alone would have copied it: fused never copies more, and otherwise the same.
    cancels = any(math.prod(factor_of(p) for _, _, p in run) == 1.0 for run in linear_runs(nodes))
    if cancels:
        assert fs["copies"]["cow"] <= us["copies"]["cow"]
    else:
        assert fs["copies"]["cow"] == us["copies"]["cow"]
    for node_id, record in fs["nodes"].items():
        assert record["calls"] == us["nodes"][node_id]["calls"]
        assert "fused" not in us["nodes"][node_id]
    # exactly the runs of adjacent gains are fused, each member naming its group and share
    marked = {i: r["fused"] for i, r in fs["nodes"].items() if "fused" in r}
    expected = {n[0]: [m[0] for m in run] for run in linear_runs(nodes) for n in run}
    assert {i: f["group"] for i, f in marked.items()} == expected
    for f in marked.values():
        assert f["share"] == pytest.approx(1 / len(f["group"]), abs=1e-6)


def test_one_gain_alone_is_bit_identical_to_its_own_process():
    rng = np.random.default_rng(3)
    for dtype in (np.float16, np.float32, np.float64):
        x = rng.uniform(-1, 1, BLOCK).astype(dtype)
        node = Gain("g", db=-7.3)
        node.setup()
        want = node.process(NumpyData(x.copy(), owned=True)).array
        ((got,),), _ = push_all(chain(("g", "Gain", {"db": -7.3})), [x], fuse=True)
        assert got.dtype == dtype and got.array.tobytes() == want.tobytes()


def test_a_fused_chain_writes_a_handed_over_block_in_place_and_copies_a_shared_one_once():
    m = chain(("a", "Gain", {"db": -6}), ("b", "Gain", {"db": 3}), ("c", "Gain", {"db": 1}))
    handed = np.ones(BLOCK, np.float32)
    with rm.Pipeline.from_manifest(m).session() as s:
        (out,) = s.push(handed, transfer=True)
        assert s.stats()["copies"] == {"engine": 0, "cow": 0, "io": 0}
    assert np.shares_memory(out.array, handed)
    assert handed[0] == pytest.approx(10 ** (-2 / 20), rel=1e-6)

    shared = np.ones(BLOCK, np.float32)
    with rm.Pipeline.from_manifest(m).session() as s:
        outs = [s.push(shared)[0] for _ in range(4)]
        assert s.stats()["copies"]["cow"] == 4        # one per block, for the whole group
    assert (shared == 1.0).all()
    assert not any(np.shares_memory(o.array, shared) for o in outs)


def test_a_reader_beside_the_chain_keeps_its_view_unwritten():
    # input fans out to a fused pair and to a tap: the pair must copy, the tap sees the input
    m = manifest([("a", "Gain", {"db": -6}), ("b", "Gain", {"db": -6}), ("t", "PassThrough")],
                 connections=[{"from": "input", "to": "a"}, {"from": "a", "to": "b"},
                              {"from": "b", "to": "output"}, {"from": "input", "to": "t"},
                              {"from": "t", "to": "output"}])
    data = np.ones(BLOCK, np.float32)
    with rm.Pipeline.from_manifest(m).session() as s:
        scaled, tapped = s.push(data, transfer=True)
        assert s.stats()["copies"]["cow"] == 1
        assert s.stats()["nodes"]["a"]["fused"]["group"] == ["a", "b"]
    assert tapped.array[0] == 1.0 and np.shares_memory(tapped.array, data)
    assert scaled.array[0] == pytest.approx(10 ** (-12 / 20), rel=1e-6)


@pytest.mark.parametrize("connections, fused", [
    # a gain whose output also goes elsewhere is a group's end: the other reader needs its block
    ([("input", "a"), ("a", "b"), ("a", "output"), ("b", "output")], set()),
    # a gain whose output is tapped on its way to the next gain: the tap is not linear
    ([("input", "a"), ("a", "t"), ("t", "b"), ("b", "output")], set()),
    ([("input", "a"), ("a", "b"), ("b", "c"), ("c", "output")], {"a", "b", "c"}),
    ([("input", "t"), ("t", "a"), ("a", "b"), ("b", "output")], {"a", "b"}),
])
def test_only_a_gain_whose_only_reader_is_the_next_gain_fuses_with_it(connections, fused):
    used = {t for _, t in connections} - {"output"}
    m = manifest([n for n in (("a", "Gain", {"db": -1}), ("b", "Gain", {"db": -2}),
                              ("c", "Gain", {"db": -3}), ("t", "PassThrough")) if n[0] in used],
                 connections=[{"from": f, "to": t} for f, t in connections])
    _, stats = push_all(m, [np.ones(BLOCK, np.float32)] * 2, fuse=True)
    assert {i for i, r in stats["nodes"].items() if "fused" in r} == fused


def test_each_fused_node_reports_every_call_and_an_equal_share_of_the_group_time():
    m = chain(*[(f"g{i}", "Gain", {"db": -0.5}) for i in range(4)])
    blocks = [np.ones(BLOCK, np.float32)] * 50
    _, stats = push_all(m, blocks, fuse=True)
    records = list(stats["nodes"].values())
    assert all(r["calls"] == 50 and r["errors"] == 0 for r in records)
    assert all(r["fused"] == {"group": ["g0", "g1", "g2", "g3"], "share": 0.25} for r in records)
    assert len({r["latency_us"]["p50"] for r in records}) == 1      # the same share each
    assert records[0]["latency_us"]["p50"] > 0
    _, alone = push_all(m, blocks, fuse=False)
    assert all("fused" not in r for r in alone["nodes"].values())


class Fader(Node):
    """A third-party linear node whose gain a controller moves between blocks."""

    node_type = "Fader"
    requires = FLOAT_INPUT
    linear_elementwise = True

    def setup(self):
        self.level = 1.0

    def linear_gain(self):
        return self.level

    def process(self, frame):
        out = frame.writable()
        out *= self.level
        return frame.with_array(out)


@pytest.mark.parametrize("fuse", [True, False])
def test_a_third_party_linear_node_fuses_and_a_gain_changed_between_blocks_applies_next_block(
        fuse):
    with registered(Fader) as reg:
        p = rm.Pipeline.from_manifest(chain(("f", "Fader"), ("g", "Gain", {"linear": 2.0})),
                                      registry=reg)
        with p.session(fuse=fuse) as s:
            first = s.push(np.ones(BLOCK, np.float32))[0].array[0]
            s.node("f").level = 0.25
            second = s.push(np.ones(BLOCK, np.float32))[0].array[0]
            stats = s.stats()
    assert (first, second) == (2.0, 0.5)
    assert ("fused" in stats["nodes"]["f"]) is fuse


class Broken(Fader):
    node_type = "BrokenFader"

    def linear_gain(self):
        raise RuntimeError("no level")


def test_a_linear_gain_that_raises_fails_its_own_node_with_its_own_policy():
    with registered(Broken) as reg:
        nodes = [("a", "Gain", {"db": -1}), {"id": "b", "node_type": "BrokenFader",
                                             "on_error": "skip"}, ("c", "Gain", {"db": -1})]
        p = rm.Pipeline.from_manifest(chain(*nodes), registry=reg)
        with p.session() as s:
            assert s.push(np.ones(BLOCK, np.float32)) == []
            stats = s.stats()
        assert stats["nodes"]["a"]["fused"]["group"] == ["a", "b", "c"]
        assert stats["nodes"]["b"]["errors"] == 1 and stats["nodes"]["a"]["errors"] == 0
        assert stats["drops"] == 1 and stats["errors"] == 1

        p = rm.Pipeline.from_manifest(chain(("a", "Gain", {"db": -1}), ("b", "BrokenFader")),
                                      registry=reg)
        with p.session() as s, pytest.raises(NodeError) as err:
            s.push(np.ones(BLOCK, np.float32))
        assert err.value.node_id == "b" and "no level" in str(err.value)


def test_events_pass_a_fused_chain_node_by_node():
    m = chain(("meter", "LevelMeter", {"every": 1}), ("a", "Gain", {"db": -6}),
              ("b", "Gain", {"db": -6}))
    with rm.Pipeline.from_manifest(m).session() as s:
        outs = s.push(np.full(BLOCK, 0.5, np.float32))
        assert sorted(o.kind for o in outs) == ["json", "numpy"]
        audio = next(o for o in outs if o.kind == "numpy")
        assert audio.array[0] == pytest.approx(0.5 * 10 ** (-12 / 20), rel=1e-6)
        flushed = s.push(ControlData("flush"))
        assert [o.kind for o in flushed] == ["control"]


def test_integer_pcm_into_a_fused_chain_is_converted_once_and_counted():
    m = chain(("a", "Gain", {"linear": 0.5}), ("b", "Gain", {"linear": 0.5}))
    pcm = np.full(BLOCK, 16384, np.int16)              # 0.5 of full scale
    with rm.Pipeline.from_manifest(m).session() as s:
        (out,) = s.push(pcm)
        (again,) = s.push(pcm)
        copies = s.stats()["copies"]
    assert out.dtype == np.float32 and out.array[0] == 0.125 and again.array[0] == 0.125
    assert copies == {"engine": 2, "cow": 0, "io": 0}


def test_a_traced_fused_chain_gives_each_node_its_share_of_the_span():
    m = chain(("a", "Gain", {"db": -1}), ("b", "Gain", {"db": -1}), ("c", "Gain", {"db": -1}))
    tracer = Tracer()
    with rm.Pipeline.from_manifest(m).session(trace=tracer.spans_for) as s:
        for _ in range(5):
            s.push(np.ones(BLOCK, np.float32))
        stats = s.stats()
    ends = [tracer.node_spans[i] for i in ("a", "b", "c")]
    assert [len(e) for e in ends] == [5, 5, 5]
    for block in range(5):
        assert ends[0][block] <= ends[1][block] <= ends[2][block]
    assert stats["nodes"]["b"]["fused"]["group"] == ["a", "b", "c"]


def test_a_run_with_a_fused_chain_writes_a_valid_trace(tmp_path):
    m = chain(("a", "Gain", {"db": -3}), ("b", "Gain", {"db": -3.3}),
              ("meter", "LevelMeter", {"every": 10}), ("c", "Gain", {"db": 1.7}))
    pipeline = rm.Pipeline.from_manifest(m)
    runner = StreamRunner(pipeline, make_source("noise", pipeline.manifest.audio),
                          make_sink("null", pipeline.manifest.output_format), duration=2.0)
    tracer = Tracer().bind(runner)
    stats = runner.run()
    tracer.write(tmp_path / "t.json")
    doc = json.loads((tmp_path / "t.json").read_text())
    assert validate_trace(doc) == []
    spans = Counter(e["name"] for e in doc["traceEvents"] if e.get("cat") == "node")
    assert spans == {"a": 100, "b": 100, "meter": 100, "c": 100}
    assert "fused" in stats["nodes"]["a"] and "fused" not in stats["nodes"]["c"]


class NotLinear(Gain):
    node_type = "Pretender"

    def linear_gain(self):
        return self.factor * 1.01          # says one gain, applies another


class IntegerLinear(Fader):
    node_type = "IntegerFader"
    requires = None


def test_check_node_catches_a_node_that_is_not_the_linear_node_it_declares():
    assert "linear" in check_node(Gain, {"db": -6}).passed
    report = check_node(NotLinear, {"db": -6}, raise_on_failure=False)
    assert [f for f in report.failures if f.startswith("linear:")], report.failures
    report = check_node(IntegerLinear, raise_on_failure=False)
    assert any("float dtype" in f for f in report.failures), report.failures


def test_a_node_declared_linear_without_a_float_requirement_runs_its_own_process():
    with registered(IntegerLinear) as reg:
        p = rm.Pipeline.from_manifest(chain(("f", "IntegerFader"), ("g", "IntegerFader")),
                                      registry=reg)
        with p.session() as s:
            s.push(np.ones(BLOCK, np.float32))
            assert all("fused" not in r for r in s.stats()["nodes"].values())


def test_mix_takes_timing_and_metadata_from_the_input_connected_first():
    @rm.node_function("TagA")
    def tag_a(frame):
        return frame.replace(metadata={"from": "a"}, pts=100)

    @rm.node_function("TagB")
    def tag_b(frame):
        return frame.replace(metadata={"from": "b"}, pts=200)

    for first, want in (("a", ("a", 100)), ("b", ("b", 200))):
        order = ["a", "b"] if first == "a" else ["b", "a"]
        m = manifest([("a", "TagA"), ("b", "TagB"), ("mix", "Mix")],
                     connections=[{"from": "input", "to": "a"}, {"from": "input", "to": "b"}]
                     + [{"from": x, "to": "mix"} for x in order]
                     + [{"from": "mix", "to": "output"}])
        with rm.Pipeline.from_manifest(m).session() as s:
            (out,) = s.push(np.ones(BLOCK, np.float32))
        assert (out.metadata["from"], out.pts) == want
        assert out.array[0] == 2.0


def test_with_array_of_the_frames_own_buffer_is_the_frame_itself():
    frame = NumpyData(np.ones(BLOCK, np.float32), sample_rate=48000, pts=5, owned=True)
    buf = frame.writable()
    assert frame.with_array(buf) is frame
    moved = frame.with_array(buf, pts=6)
    assert moved is not frame and moved.pts == 6 and moved.ownership is frame.ownership
    assert frame.shape == (BLOCK,) and frame.dtype == np.float32
    other = frame.with_array(buf.copy())
    assert other is not frame and other.ownership is not frame.ownership
    assert isinstance(frame.with_array(buf), NumpyData) and not isinstance(frame, JsonData)


def record_gains(path, fuse: bool) -> None:
    """A second of noise through three gains, recorded (fused or not) into `path`."""
    m = chain(("a", "Gain", {"db": -3.1}), ("b", "Gain", {"db": -2.9}), ("c", "Gain", {"db": 0.7}))
    pipeline = rm.Pipeline.from_manifest(m)
    runner = StreamRunner(pipeline, make_source("noise", pipeline.manifest.audio),
                          make_sink("null", pipeline.manifest.output_format), duration=1.0,
                          fuse=fuse)
    rec = Recorder(path, manifest_document=m).bind(runner)
    runner.observers.join(rec)
    rec.open()
    rec.close(runner.run())


@pytest.mark.parametrize("fuse", [True, False])
def test_a_recording_replays_bit_for_bit_fused_as_it_was_recorded(tmp_path, fuse):
    record_gains(tmp_path / "rec", fuse)
    result = replay(tmp_path / "rec")
    recorded, _ = Recording(tmp_path / "rec").output()
    assert result.output.tobytes() == recorded.tobytes()
    assert ("fused" in result.stats["nodes"]["a"]) is fuse


def test_validate_names_the_chains_the_engine_fuses(tmp_path):
    m = chain(("a", "Gain", {"db": -3}), ("b", "Gain", {"db": -3}), ("m", "LevelMeter"),
              ("c", "Gain", {"db": 1}), ("d", "Gain", {"db": 1}), ("e", "Gain", {"db": 1}))
    loaded = rm.load_manifest(m)
    assert linear_chains(loaded) == [("a", "b"), ("c", "d", "e")]
    assert linear_chains(loaded, fuse=False) == [("a",), ("b",), ("c",), ("d",), ("e",)]
    path = tmp_path / "m.yaml"
    path.write_text(to_yaml(m))
    out = subprocess.run([sys.executable, "-m", "remotemedia", "validate", str(path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "fused: a + b (" in out.stdout and "fused: c + d + e (" in out.stdout
    # a gain on another executor is not the engine's to fuse
    m["nodes"][1]["executor"] = "process"
    assert linear_chains(rm.load_manifest(m)) == [("a",), ("c", "d", "e")]


# -- what a newcomer's attempts to break it found ------------------------------------------------

class Flaky(Fader):
    """Raises from linear_gain() on every third call, then works again."""

    node_type = "Flaky"

    def setup(self):
        self.level, self.asked = 1.0, 0

    def linear_gain(self):
        self.asked += 1
        if self.asked % 3 == 0:
            raise RuntimeError("flaky")
        return 0.5


@pytest.mark.parametrize("fuse", [True, False])
def test_a_transient_failure_is_the_failing_nodes_own_with_its_own_policy(fuse):
    nodes = [("a", "Gain", {"db": -1}), {"id": "flaky", "node_type": "Flaky", "on_error": "skip"},
             ("c", "Gain", {"db": -1})]
    with registered(Flaky) as reg:
        outs, stats = push_all(chain(*nodes), [np.ones(BLOCK, np.float32)] * 9, fuse=fuse,
                               registry=reg)
    assert sum(1 for o in outs if not o) == 3 and stats["drops"] == 3
    assert stats["nodes"]["flaky"]["errors"] == 3 and stats["nodes"]["a"]["errors"] == 0
    # the same calls as each node run alone: the gain before it ran on the dropped blocks
    assert [stats["nodes"][i]["calls"] for i in ("a", "flaky", "c")] == [9, 9, 6]


class Constant(Fader):
    """A linear node whose gain is whatever GAIN holds."""

    node_type = "Constant"
    GAIN: object = 0.5

    def linear_gain(self):
        return Constant.GAIN


@pytest.mark.parametrize("gain", [None, "0.5", [0.5], np.array([0.5, 0.5]), 0.5 + 1j,
                                  float("nan"), float("inf"), np.float32("inf")],
                         ids=repr)
@pytest.mark.parametrize("fuse", [True, False])
def test_a_gain_that_is_not_a_finite_real_number_fails_its_node_fused_or_not(gain, fuse):
    Constant.GAIN = gain
    with registered(Constant) as reg:
        skip = chain(("a", "Gain", {"db": -1}),
                     {"id": "k", "node_type": "Constant", "on_error": "skip"})
        outs, stats = push_all(skip, [np.ones(BLOCK, np.float32)] * 2, fuse=fuse, registry=reg)
        assert outs == [[], []] and stats["drops"] == 2
        assert stats["nodes"]["k"]["errors"] == 2 and stats["nodes"]["a"]["errors"] == 0
        p = rm.Pipeline.from_manifest(chain(("k", "Constant")), registry=reg)
        with p.session(fuse=fuse) as s, pytest.raises(NodeError) as err:
            s.push(np.ones(BLOCK, np.float32))
        assert err.value.node_id == "k" and "linear_gain() returned" in str(err.value)


@pytest.mark.parametrize("gain", [np.float32(0.5), np.array(0.5), 1, True, np.int64(2)],
                         ids=repr)
def test_any_real_number_is_a_gain(gain):
    Constant.GAIN = gain
    with registered(Constant) as reg:
        for fuse in (True, False):
            ((out,),), _ = push_all(chain(("k", "Constant"), ("g", "Gain", {"linear": 2.0})),
                                    [np.ones(BLOCK, np.float32)], fuse=fuse, registry=reg)
            assert out.array[0] == float(gain) * 2.0


def test_a_changing_zero_d_array_gain_applies_at_the_next_block():
    level = np.array(0.5)
    Constant.GAIN = level
    with registered(Constant) as reg:
        with rm.Pipeline.from_manifest(chain(("k", "Constant")), registry=reg).session() as s:
            first = s.push(np.ones(BLOCK, np.float32))[0].array[0]
            level[...] = 0.25
            second = s.push(np.ones(BLOCK, np.float32))[0].array[0]
    assert (first, second) == (0.5, 0.25)


@pytest.mark.parametrize("dtype, nodes", [
    (np.float16, [("a", "Gain", {"linear": 300.0}), ("b", "Gain", {"linear": 300.0})]),
    (np.float32, [(f"g{i}", "Gain", {"db": 144.0}) for i in range(6)]),
    (np.float32, [(f"g{i}", "Gain", {"db": -144.0}) for i in range(6)]),
])
def test_a_product_the_dtype_cannot_hold_is_applied_gain_by_gain_as_unfused(dtype, nodes):
    x = np.array([0.0, 1e-30, 1e-3, 0.5, -0.25, 1e30][:BLOCK], dtype=np.float64)
    with np.errstate(over="ignore"):
        block = np.resize(x, BLOCK).astype(dtype)         # 1e30 is inf in float16
    with np.errstate(over="ignore"):                    # 0.5 x 144 dB x 6 is inf, either way
        (fused,), fs = push_all(chain(*nodes), [block], fuse=True)
        (alone,), _ = push_all(chain(*nodes), [block], fuse=False)
    assert fs["nodes"][nodes[0][0]]["fused"]["group"] == [n[0] for n in nodes]
    assert fused[0].array.tobytes() == alone[0].array.tobytes()
    assert not np.isnan(fused[0].array).any()           # silence stays silence


class Needs32(Fader):
    node_type = "Needs32"
    requires = rm.InputRequirement(dtype="float32")


class Needs64(Fader):
    node_type = "Needs64"
    requires = rm.InputRequirement(dtype="float64")


def test_linear_nodes_that_ask_for_other_dtypes_are_not_fused():
    with registered(Needs32, Needs64) as reg:
        m = chain(("a", "Needs32"), ("b", "Needs64"))
        half = np.ones(BLOCK, np.float16)
        (fused,), fs = push_all(m, [half], fuse=True, registry=reg)
        (alone,), us = push_all(m, [half], fuse=False, registry=reg)
    assert "fused" not in fs["nodes"]["a"]
    assert fused[0].dtype == alone[0].dtype == np.float64
    assert fs["copies"] == us["copies"] and fs["copies"]["engine"] == 2


def test_a_big_endian_float_block_needs_no_conversion():
    data = np.ones(BLOCK, ">f4")
    with rm.Pipeline.from_manifest(chain(("g", "Gain", {"linear": 0.5}))).session() as s:
        (out,) = s.push(data, transfer=True)
        assert s.stats()["copies"] == {"engine": 0, "cow": 0, "io": 0}
    assert np.shares_memory(out.array, data) and data[0] == 0.5
    m = manifest([("mix", "Mix")], connections=[
        {"from": "input", "to": "mix", "input": "x"}, {"from": "input", "to": "mix", "input": "y"},
        {"from": "mix", "to": "output"}])
    with rm.Pipeline.from_manifest(m).session() as s:
        (out,) = s.push(np.ones(BLOCK, ">f4"), transfer=True)
        assert s.stats()["copies"]["engine"] == 0 and out.array[0] == 2.0


class AlwaysFails(Fader):
    node_type = "AlwaysFails"

    def linear_gain(self):
        raise RuntimeError("no")


@pytest.mark.parametrize("fuse", [True, False])
def test_calls_match_unfused_when_a_member_drops_every_block(fuse):
    nodes = [("a", "Gain", {"db": -1}), {"id": "f", "node_type": "AlwaysFails",
                                         "on_error": "skip"}, ("c", "Gain", {"db": -1})]
    with registered(AlwaysFails) as reg:
        _, stats = push_all(chain(*nodes), [np.ones(BLOCK, np.float32)] * 5, fuse=fuse,
                            registry=reg)
        stats_after_reset = None
        p = rm.Pipeline.from_manifest(chain(*nodes), registry=reg)
        with p.session(fuse=fuse) as s:
            s.push(np.ones(BLOCK, np.float32))
            s.reset_stats()
            stats_after_reset = s.stats()
    assert [(stats["nodes"][i]["calls"], stats["nodes"][i]["errors"]) for i in "afc"] == \
        [(5, 0), (5, 5), (0, 0)]
    assert all(r["calls"] == 0 for r in stats_after_reset["nodes"].values())


def test_the_trace_callable_is_asked_once_per_node():
    asked = Counter()

    def spans_for(node_id):
        asked[node_id] += 1
        return []
    m = manifest([("a", "Gain", {"db": -1}), ("b", "Gain", {"db": -1}), ("mix", "Mix")],
                 connections=[{"from": "input", "to": "a"}, {"from": "a", "to": "b"},
                              {"from": "b", "to": "mix"}, {"from": "input", "to": "mix"},
                              {"from": "mix", "to": "output"}])
    with rm.Pipeline.from_manifest(m).session(trace=spans_for):
        pass
    assert asked == {"a": 1, "b": 1, "mix": 1}


def test_gain_process_on_integer_pcm_outside_a_session_scales_exactly():
    node = Gain("g", linear=0.5)
    node.setup()
    out = node.process(NumpyData(np.array([16384, -1000], np.int16), owned=True))
    assert out.array.tolist() == [8192, -500]
    node = Gain("g", linear=2.5)
    node.setup()
    assert node.process(NumpyData(np.array([1000], np.int16), owned=True)).array[0] == 2500


def test_a_killed_unfused_recording_replays_unfused(tmp_path):
    record_gains(tmp_path / "rec", fuse=False)
    (tmp_path / "rec" / "report.json").unlink()      # as a run killed before its report
    result = replay(tmp_path / "rec")
    recorded, _ = Recording(tmp_path / "rec").output()
    assert result.output.tobytes() == recorded.tobytes()
    assert "fused" not in result.stats["nodes"]["a"]


class UsesContext(Fader):
    node_type = "UsesContext"

    def setup(self):
        self.level = 1.0 / (self.context.format.channels or 1)


class NoGain(Fader):
    node_type = "NoGain"
    linear_gain = Node.linear_gain


class Float32Gain(Fader):
    node_type = "Float32Gain"

    def linear_gain(self):
        return np.float32(0.5)

    def process(self, frame):
        out = frame.writable()
        out *= np.float32(0.5)
        return frame.with_array(out)


class Repairs(Fader):
    node_type = "Repairs"

    def process(self, frame):
        out = frame.writable()
        np.nan_to_num(out, copy=False, posinf=0.0, neginf=0.0)
        out *= self.level
        return frame.with_array(out)


class DropsMetadata(Fader):
    node_type = "DropsMetadata"

    def process(self, frame):
        return frame.replace(metadata={})


class FirstChannelOnly(Fader):
    node_type = "FirstChannelOnly"

    def setup(self):
        self.level = 0.5

    def process(self, frame):
        out = frame.writable()
        if out.ndim == 2:
            out[:, 0] *= self.level
        else:
            out *= self.level
        return frame.with_array(out)


class Ramp(Fader):
    node_type = "Ramp"

    def process(self, frame):
        out = super().process(frame)
        self.level *= 0.9        # an automation that advances in process(): never, in a session
        return out


class Holds(Fader):
    node_type = "Holds"

    def on_control(self, event):
        return [NumpyData(np.zeros(4, np.float32), pts=0)]


@pytest.mark.parametrize("cls, verdict", [
    (UsesContext, None), (Float32Gain, None),
    (NoGain, "does not implement linear_gain()"),
    (Repairs, "differs from the input x linear_gain()"),
    (DropsMetadata, "metadata"),
    (FirstChannelOnly, "(in 2 channels)"),
    (Ramp, "keeps no state"),
    (Holds, "releases frames"),
], ids=lambda v: v.__name__ if isinstance(v, type) else str(v))
def test_check_node_holds_a_linear_node_to_what_the_engine_does_in_its_place(cls, verdict):
    report = check_node(cls, raise_on_failure=False)
    linear = [f for f in report.failures if f.startswith("linear:")]
    if verdict is None:
        assert "linear" in report.passed and not linear, report.failures
    else:
        assert linear and verdict in linear[0], report.failures
