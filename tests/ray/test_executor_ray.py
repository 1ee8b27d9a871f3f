"""A node on `executor: ray` behaves like the same node inline, on a real Ray cluster; its
serialization is counted, its round trip reported, and its failures handled by policy."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from remotemedia import NodeError, Pipeline, RuntimeData
from remotemedia.engine.data import NumpyData
from remotemedia.engine.errors import SerializationError
from remotemedia.ray import RayNode

from .conftest import inline, manifest

pytestmark = pytest.mark.usefixtures("ray_cluster")

ALLOW = ["tests.ray.nodes"]


def _frames(n: int, dtype=np.float32) -> list[NumpyData]:
    rng = np.random.default_rng(3)
    return [RuntimeData.Numpy((rng.standard_normal(960) * 100).astype(dtype),
                              sample_rate=48000, pts=i * 960, seq=i, metadata={"i": i})
            for i in range(n)]


def _frame(i: int) -> NumpyData:
    return RuntimeData.Numpy(np.full(960, i, dtype=np.float32), sample_rate=48000, seq=i)


def _run(m: dict, frames: list, **session_kw) -> tuple[list, dict]:
    with Pipeline.from_manifest(m, allow_import=ALLOW).session(**session_kw) as session:
        outputs = []
        for frame in frames:
            outputs += session.push(frame)
        outputs += session.end_of_stream()
        stats = session.stats()
    return outputs, stats


def _same(got: list, want: list) -> None:
    assert [o.kind for o in got] == [o.kind for o in want]
    for g, w in zip(got, want):
        if g.kind == "numpy":
            assert g.array.dtype == w.array.dtype and g.array.shape == w.array.shape
            np.testing.assert_array_equal(g.array, w.array)
            assert (g.sample_rate, g.pts, g.seq) == (w.sample_rate, w.pts, w.seq)
            assert dict(g.metadata) == dict(w.metadata)
        else:
            assert g.payload == w.payload and g.pts == w.pts


@pytest.mark.parametrize("dtype", [np.float32, np.int16])
def test_outputs_equal_inline_outputs_and_serialization_is_counted_at_the_node(dtype):
    frames = _frames(200, dtype)
    m = manifest("tests.ray.nodes:Affine")
    got, stats = _run(m, frames)
    want, inline_stats = _run(inline(m), frames)
    # every frame: the frame, a Json event; at the end the node's Text, then end_of_stream
    assert len(got) == 2 * len(frames) + 2
    _same(got, want)
    assert inline_stats["serialization_events"] == 0
    # one pickle of each frame sent, one of each array the actor sends back
    assert stats["serialization_events"] == 2 * len(frames)
    assert stats["copies"]["io"] == 4 * len(frames)
    assert stats["copies"]["engine"] == 0 and stats["drops"] == 0 and stats["errors"] == 0
    node = stats["nodes"]["remote"]
    assert node["executor"] == "ray" and node["calls"] == len(frames)
    assert 0 < node["round_trip_us"]["p50"] <= node["round_trip_us"]["max"]
    assert node["restarts"] == 0


def test_a_ray_node_in_a_chain_leaves_the_rest_of_the_graph_uncounted():
    m = {"version": "v1", "audio": {"sample_rate": 48000, "block_size": 960, "channels": 1},
         "nodes": [{"id": "gain", "node_type": "Gain", "params": {"db": -6}},
                   {"id": "remote", "node_type": "LevelMeter", "executor": "ray"},
                   {"id": "after", "node_type": "PassThrough"}],
         "connections": [{"from": "input", "to": "gain"}, {"from": "gain", "to": "remote"},
                         {"from": "remote", "to": "after"}, {"from": "after", "to": "output"}]}
    frames = _frames(50)
    got, stats = _run(m, frames)
    want, _ = _run(inline(m), frames)
    _same(got, want)
    assert stats["serialization_events"] == 2 * len(frames)   # at the Ray node only
    assert stats["nodes"]["gain"].get("executor") is None


def test_strict_mode_refuses_the_first_frame_sent_to_an_actor():
    session = Pipeline.from_manifest(manifest("PassThrough"), allow_import=ALLOW).session(
        strict_serialization=True)
    with session:
        with pytest.raises((NodeError, SerializationError), match="strict serialization"):
            session.push(_frame(0))


def _process_exits(pid: int, within_s: float) -> bool:
    give_up = time.monotonic() + within_s
    while time.monotonic() < give_up:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)   # polling for a condition, bounded by within_s
    return False


def test_the_actor_runs_in_another_process_and_is_gone_after_close():
    session = Pipeline.from_manifest(manifest("tests.ray.nodes:Where"),
                                     allow_import=ALLOW).session()
    with session:
        node = session.node("remote")
        assert isinstance(node, RayNode)
        out = session.push(_frame(0))
        pid = node.pid
        assert out[0].value["pid"] == pid != os.getpid()
    assert node.actor is None and node.pid is None
    assert _process_exits(pid, 30), f"actor process {pid} still running after close"


def test_killing_the_actor_under_restart_starts_a_new_one_and_counts_the_loss():
    session = Pipeline.from_manifest(manifest("PassThrough", on_error="restart"),
                                     allow_import=ALLOW).session()
    with session:
        node = session.node("remote")
        outputs = []
        for i in range(10):
            outputs += session.push(_frame(i))
        first_pid = node.pid
        os.kill(first_pid, signal.SIGKILL)
        for i in range(10, 20):
            outputs += session.push(_frame(i))
        outputs += session.end_of_stream()
        stats = session.stats()
    assert node.restarts == 1 and node.pid is None
    assert stats["nodes"]["remote"]["restarts"] == 1
    assert stats["errors"] == 1 and stats["nodes"]["remote"]["errors"] == 1
    frames_out = [o for o in outputs if o.kind == "numpy"]
    assert stats["frames_in"] == 20 == stats["frames_out"] + stats["drops"]
    # the frames sent to the dead actor before its death was noticed: at least the first, at
    # most a queue's worth
    assert 1 <= stats["drops"] <= 8
    seqs = [o.seq for o in frames_out]
    assert seqs[:10] == list(range(10)) and seqs == sorted(seqs) and seqs[-1] == 19


def test_killing_the_actor_under_fail_breaks_the_session_naming_the_node():
    session = Pipeline.from_manifest(manifest("PassThrough"), allow_import=ALLOW).session()
    with session:
        session.push(_frame(0))
        os.kill(session.node("remote").pid, signal.SIGKILL)
        with pytest.raises(NodeError, match="'remote'.*died"):
            for i in range(1, 5):
                session.push(_frame(i))
        assert session.broken is not None


def test_a_node_error_in_the_actor_fails_the_session_naming_the_node():
    session = Pipeline.from_manifest(manifest("tests.ray.nodes:Raiser", params={"at": 2}),
                                     allow_import=ALLOW).session()
    with session:
        session.push(_frame(0))
        session.push(_frame(1))
        with pytest.raises(NodeError, match="'remote'.*ValueError: refusing frame 2"):
            session.push(_frame(2))


def test_a_node_error_in_the_actor_drops_one_frame_under_skip():
    outputs, stats = _run(manifest("tests.ray.nodes:Raiser", params={"at": 2},
                                   on_error="skip"), [_frame(i) for i in range(5)])
    assert [o.seq for o in outputs if o.kind == "numpy"] == [0, 1, 3, 4]
    assert stats["errors"] == 1 and stats["drops"] == 1


def test_a_hung_actor_past_the_deadline_is_killed_and_restarted(monkeypatch):
    monkeypatch.setenv("REMOTEMEDIA_RAY_DEADLINE_MS", "500")
    session = Pipeline.from_manifest(manifest("tests.ray.nodes:Sleepy", params={"hang_at": 1},
                                              on_error="restart"),
                                     allow_import=ALLOW).session()
    with session:
        node = session.node("remote")
        session.push(_frame(0))
        hung_pid = node.pid
        outputs = session.push(_frame(1))           # hangs: written off after the deadline
        outputs += session.end_of_stream()          # the new actor answers
        stats = session.stats()
    assert node.restarts == 1
    assert stats["errors"] == 1 and stats["drops"] == 1
    assert hung_pid is not None


@pytest.fixture
def no_reply_wait(monkeypatch):
    # process() returns right after sending, so frames stay in flight.
    monkeypatch.setenv("REMOTEMEDIA_RAY_REPLY_WAIT_MS", "0")


def _policy_run(policy: str) -> tuple[list[int], dict]:
    m = manifest("tests.ray.nodes:Sleepy", params={"delay_ms": 100}, queue_size=2,
                 queue_policy=policy)
    outputs, stats = _run(m, [_frame(i) for i in range(6)])
    return [o.seq for o in outputs if o.kind == "numpy"], stats


def test_queue_policy_block_waits_and_loses_nothing(no_reply_wait):
    seqs, stats = _policy_run("block")
    assert seqs == list(range(6)) and stats["drops"] == 0


def test_queue_policy_drop_newest_keeps_the_first_frames(no_reply_wait):
    seqs, stats = _policy_run("drop_newest")
    assert seqs == [0, 1] and stats["drops"] == 4


def test_queue_policy_drop_oldest_keeps_the_latest_frames(no_reply_wait):
    seqs, stats = _policy_run("drop_oldest")
    assert seqs == [4, 5] and stats["drops"] == 4


def test_frames_in_flight_at_close_count_as_drops(no_reply_wait):
    session = Pipeline.from_manifest(manifest("tests.ray.nodes:Sleepy",
                                              params={"delay_ms": 300}, queue_size=4),
                                     allow_import=ALLOW).session()
    for i in range(3):
        session.push(_frame(i))
    session.close()
    assert session.stats()["drops"] == 3


def test_resources_the_cluster_lacks_fail_at_start_with_a_reason(monkeypatch):
    monkeypatch.setenv("REMOTEMEDIA_RAY_START_TIMEOUT_MS", "1500")
    m = manifest("PassThrough", resources={"num_gpus": 1})
    with pytest.raises(Exception, match="not ready within 1.5 s.*num_gpus"):
        Pipeline.from_manifest(m).session()
