"""`executor: thread`: order, zero copies, copy-on-write across the hop, queue and failure
policies, setup and teardown on the worker, simulated time, and the per-class default."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from remotemedia import ManifestError, NodeError, Pipeline, RuntimeData
from remotemedia.engine.data import NumpyData
from remotemedia.engine.errors import ExecutorCrashed, ExecutorStartError, RemoteNodeError
from remotemedia.testing import MockClock, manifest, run_blocks, wait_until

ALLOW = ["tests.executors.nodes", "tests.ipc.nodes", "remotemedia.testing.executor_checks"]
CHECKS = "remotemedia.testing.executor_checks:"
# The shipped check nodes: a slow one and a failing one (raise, or exit the worker).
SHIPPED = {"Slow": "CheckSlow", "Raiser": "CheckFails", "Exits": "CheckFails"}


def node(node_type: str, node_id: str = "t", params=None, **keys) -> dict:
    if node_type in SHIPPED:
        params = {**(params or {}), **({"how": "exit"} if node_type == "Exits" else {})}
        path = CHECKS + SHIPPED[node_type]
    else:
        path = "tests.executors.nodes:" + node_type
    spec = {"id": node_id, "node_type": path, "executor": "thread", **keys}
    if params:
        spec["params"] = params
    return spec


def one(node_type: str, params=None, **keys) -> dict:
    return manifest([node(node_type, params=params, **keys)],
                    [{"from": "input", "to": "t"}, {"from": "t", "to": "output"}])


def session(m):
    return Pipeline.from_manifest(m, allow_import=ALLOW).session()


def frame(i: int, value=None) -> NumpyData:
    return RuntimeData.Numpy(np.full(960, i if value is None else value, np.float32),
                             sample_rate=48000, pts=i * 960, seq=i, metadata={"i": i})


def audio(outs) -> list:
    return [o for o in outs if isinstance(o, NumpyData)]


def test_frames_cross_by_reference_in_order_with_no_copy_and_no_serialization():
    frames = [frame(i) for i in range(30)]
    with session(one("Slow", {"delay_ms": 1})) as s:
        outs = [o for f in frames for o in s.push(f)] + s.end_of_stream()
        stats = s.stats()
    got = audio(outs)
    assert [o.seq for o in got] == list(range(30))
    assert [o.pts for o in got] == [i * 960 for i in range(30)]
    assert all(o is f for o, f in zip(got, frames))           # the very frame, not a copy
    assert stats["serialization_events"] == 0
    assert stats["copies"] == {"engine": 0, "cow": 0, "io": 0}
    assert stats["frames_out"] == 30 and stats["drops"] == 0 and stats["errors"] == 0
    node = stats["nodes"]["t"]
    assert node["executor"] == "thread" and node["queue"] == {"size": 8, "policy": "block"}
    assert node["calls"] == 30 and node["round_trip_us"]["max"] > 0


def test_the_node_runs_on_its_worker_thread_and_the_push_does_not_wait_for_it():
    with session(one("Inference")) as s:
        first = s.push(frame(0))
        outs = first + s.end_of_stream()
    names = [o.value["thread"] for o in outs if o.kind == "json"]
    assert first == [] or names                       # reply wait 0: usually nothing yet
    assert names and all(n.startswith("remotemedia-t-") for n in names)
    assert threading.current_thread().name not in names


def test_a_writer_on_the_thread_writes_in_place_only_as_the_sole_reader():
    # input -> writer (thread) -> output, and input -> reader (inline) -> output: the block has
    # two readers, so the writer gets a counted copy and the inline reader sees the original.
    m = manifest([node("Writer", "w"), {"id": "r", "node_type": "PassThrough"}],
                 [{"from": "input", "to": "w"}, {"from": "input", "to": "r"},
                  {"from": "w", "to": "output"}, {"from": "r", "to": "output"}])
    with session(m) as s:
        a = np.ones(960, np.float32)
        outs = s.push(a, transfer=True) + s.end_of_stream()
        stats = s.stats()
    values = sorted(float(o.array[0]) for o in audio(outs))
    assert values == [-1.0, 1.0] and stats["copies"]["cow"] == 1
    # Alone, a transferred block has one reader: the writer on the thread writes in place.
    with session(one("Writer")) as s:
        a = np.ones(960, np.float32)
        outs = s.push(a, transfer=True) + s.end_of_stream()
        stats = s.stats()
    (out,) = audio(outs)
    assert np.shares_memory(out.array, a) and out.array[0] == -1.0
    assert stats["copies"]["cow"] == 0


def test_reader_slots_come_back_when_requests_end():
    frames = [frame(i) for i in range(5)]
    with session(one("Slow", {"delay_ms": 2})) as s:
        outs = [o for f in frames for o in s.push(f)]
        outs += s.end_of_stream()
    # Each block still has one reader per output viewing it (the caller's), nothing more.
    for f in frames:
        assert f._ownership.readers == sum(1 for o in audio(outs) if o is f)


def _run_policy(policy: str, n: int = 10) -> tuple[list[int], dict]:
    with session(one("Slow", {"delay_ms": 60}, queue_size=2, queue_policy=policy)) as s:
        outs = [o for i in range(n) for o in s.push(frame(i))] + s.end_of_stream()
        stats = s.stats()
    return [o.seq for o in audio(outs)], stats


def test_queue_policy_block_waits_and_loses_nothing():
    seqs, stats = _run_policy("block")
    assert seqs == list(range(10)) and stats["drops"] == 0


def test_queue_policy_drop_newest_keeps_the_first_frames():
    seqs, stats = _run_policy("drop_newest")
    assert seqs[:2] == [0, 1] and stats["drops"] >= 1
    assert len(seqs) + stats["drops"] == 10 and seqs == sorted(seqs)
    assert stats["nodes"]["t"]["drops"] == stats["drops"]


def test_queue_policy_drop_oldest_keeps_the_latest_and_never_runs_the_dropped():
    seqs, stats = _run_policy("drop_oldest")
    assert seqs[-1] == 9 and stats["drops"] >= 1
    assert len(seqs) + stats["drops"] == 10 and seqs == sorted(seqs)
    # Frames dropped before the worker took them are withdrawn: the node never sees them.
    assert stats["nodes"]["t"]["drops"] == stats["drops"]


@pytest.mark.parametrize("node_type, at, cause_type, says", [
    ("Raiser", 3, RemoteNodeError, "ValueError: refusing frame 3"),
    ("Exits", 1, ExecutorCrashed, "SystemExit: exiting at frame 1"),
], ids=["node raised", "worker ended"])
def test_under_fail_the_session_fails_naming_the_node_and_the_cause(node_type, at, cause_type,
                                                                    says):
    with session(one(node_type, {"at": at})) as s:
        with pytest.raises(NodeError) as info:
            for i in range(10):
                s.push(frame(i))
            s.end_of_stream()
    assert "'t'" in str(info.value) and says in str(info.value)
    assert isinstance(info.value.__cause__, cause_type)
    if cause_type is RemoteNodeError:   # the node's own exception, chained
        assert isinstance(info.value.__cause__.__cause__, ValueError)


@pytest.mark.parametrize("policy", ["skip", "restart"])
def test_a_node_error_drops_that_frame_only_under_skip_and_restart(policy):
    with session(one("Raiser", {"at": 3}, on_error=policy)) as s:
        outs = [o for i in range(8) for o in s.push(frame(i))] + s.end_of_stream()
        stats = s.stats()
        assert s.node("t").restarts == 0
    assert [o.seq for o in audio(outs)] == [0, 1, 2, 4, 5, 6, 7]
    assert stats["drops"] == 1 and stats["errors"] == 1
    assert stats["nodes"]["t"]["errors"] == 1


def test_a_worker_that_ends_is_a_crash_restarted_under_restart():
    with session(one("Exits", {"at": 3}, on_error="restart")) as s:
        outs = [o for i in range(8) for o in s.push(frame(i))] + s.end_of_stream()
        stats = s.stats()
        assert s.node("t").restarts == 1
    seqs = [o.seq for o in audio(outs)]
    lost = sorted(set(range(8)) - set(seqs))
    assert seqs == sorted(seqs) and lost[0] == 3
    assert stats["drops"] == len(lost) and stats["errors"] == 1


def test_a_hung_worker_is_abandoned_past_the_deadline_and_replaced(monkeypatch):
    monkeypatch.setenv("REMOTEMEDIA_THREAD_DEADLINE_MS", "300")
    with session(one("Hangs", {"at": 2, "hang_s": 5.0}, on_error="restart")) as s:
        outs = [o for i in range(5) for o in s.push(frame(i))] + s.end_of_stream()
        stats = s.stats()
        assert s.node("t").restarts == 1
    seqs = [o.seq for o in audio(outs)]
    assert seqs[:2] == [0, 1] and 2 not in seqs
    assert stats["drops"] == 5 - len(seqs) and stats["errors"] == 1


def test_setup_failing_on_the_worker_is_a_start_error_naming_the_node():
    with pytest.raises(NodeError) as info:
        session(one("BadSetup"))
    assert "'t'" in str(info.value) and "OSError: model file missing" in str(info.value)
    assert isinstance(info.value.__cause__, ExecutorStartError)


def test_frames_in_flight_at_close_count_as_drops():
    s = session(one("Slow", {"delay_ms": 200}, queue_size=4))
    for i in range(3):
        s.push(frame(i))
    s.close()
    assert s.stats()["drops"] >= 2    # the first may be done before close


def test_a_node_class_defaults_to_the_thread_and_the_manifest_overrides_it():
    m = one("Inference")
    del m["nodes"][0]["executor"]
    p = Pipeline.from_manifest(m, allow_import=ALLOW)
    assert p.manifest.nodes[0].executor == "thread"
    m["nodes"][0]["executor"] = "inline"
    p = Pipeline.from_manifest(m, allow_import=ALLOW)
    assert p.manifest.nodes[0].executor == "inline"
    with p.session() as s:
        outs = s.push(frame(0))
    assert outs[0].value["thread"] == threading.current_thread().name


def test_restart_is_refused_inline_and_taken_on_a_thread():
    m = one("Slow", on_error="restart")
    assert Pipeline.from_manifest(m, allow_import=ALLOW).manifest.nodes[0].on_error == "restart"
    m["nodes"][0]["executor"] = "inline"
    with pytest.raises(ManifestError, match="needs 'executor: thread'"):
        Pipeline.from_manifest(m, allow_import=ALLOW)


def test_simulated_time_is_deterministic_on_the_thread():
    m = one("Clocked", queue_size=4)
    signal = np.zeros(960 * 20, np.float32)
    results = [run_blocks(m, signal, allow_import=ALLOW, clock=MockClock(0.02))
               for _ in range(2)]
    for r in results:
        assert r.stats["frames_out"] == 20 and r.stats["drops"] == 0
        assert [e["seq"] for e in r.event_values("clock")] == list(range(20))
    # The node reads each block's arrival time, not whenever the worker got to it.
    times = [e["t"] for e in results[0].event_values("clock")]
    assert times == [e["t"] for e in results[1].event_values("clock")]
    assert times == sorted(times) and times[1] - times[0] == pytest.approx(0.02)


def test_setup_and_teardown_run_on_the_worker_and_close_is_safe_twice():
    from tests.executors.nodes import Lifecycle
    Lifecycle.seen.clear()
    s = session(one("Lifecycle"))
    node = s.node("t")
    thread = node.transport.thread
    s.push(frame(0))
    s.close()
    wait_until(lambda: not thread.is_alive(), "the worker thread to end", timeout=5)
    node.teardown()
    s.close()
    assert node.transport is None
    assert Lifecycle.seen == [("setup", thread.name), ("teardown", thread.name)]


def test_a_node_that_keeps_its_input_keeps_its_reader_slot_as_inline():
    readers = {}
    for executor in ("inline", "thread"):
        frames = [frame(i) for i in range(3)]
        m = one("Hold")
        m["nodes"][0].update(executor=executor, node_type="tests.ipc.nodes:Hold")
        with session(m) as s:
            outs = [o for f in frames for o in s.push(f)] + s.end_of_stream()
        assert [o for o in audio(outs)] == frames      # released at the end, the same frames
        readers[executor] = [f._ownership.readers for f in frames]
    assert readers["thread"] == readers["inline"]


def test_a_slow_node_in_simulated_time_loses_nothing_under_block_and_copies_nothing():
    m = one("Slow", {"delay_ms": 5}, queue_size=2)
    result = run_blocks(m, np.arange(960 * 25, dtype=np.float32), allow_import=ALLOW)
    stats = result.stats
    assert stats["frames_in"] == stats["frames_out"] == 25 and stats["drops"] == 0
    assert [f.seq for f in result.frames] == list(range(25))
    np.testing.assert_array_equal(result.audio, np.arange(960 * 25, dtype=np.float32))
    assert stats["serialization_events"] == 0 and stats["copies"]["engine"] == 0


class _WakingSource:
    """A source shaped like a device in queued mode (io/devices.py): read() gives block 0,
    then waits until the run wakes it for an executor's answer and returns POLL, then gives
    block 1. `delivered_at_poll` holds what the sink had when block 1 was read."""

    def __new__(cls, fmt):
        from remotemedia.io.base import POLL, Source

        class Waking(Source):
            clocked = True
            realtime = True

            def __init__(self):
                super().__init__(fmt)
                self.woken = threading.Event()
                self.wake_for_poll = self.woken.set
                self.reads = 0
                self.sink = None
                self.delivered_at_poll = None

            def read(self):
                self.reads += 1
                if self.reads == 1:
                    return np.full(fmt.block_size, 0.5, dtype=np.float32)
                if self.reads == 2:
                    assert self.woken.wait(30), "the executor's answer never woke the run"
                    return POLL
                if self.reads == 3:
                    self.delivered_at_poll = len(self.sink.frames)
                    return np.full(fmt.block_size, 0.25, dtype=np.float32)
                return None
        return Waking()


def test_an_executors_answer_between_blocks_goes_on_when_it_is_in_not_at_the_next_block():
    """A voice loop's Transcribe/Respond/Speak answer between blocks: the worker wakes a source
    that can be woken (a device in queued mode) and the run takes the answer through the rest
    of the graph then. Before, it waited for the next block: up to 20 ms per hop."""
    from remotemedia.io.base import Sink
    from remotemedia.runner import StreamRunner
    m = manifest([node("Slow", params={"delay_ms": 30}),
                  {"id": "gain", "node_type": "Gain", "params": {"db": -6}}],
                 [{"from": "input", "to": "t"}, {"from": "t", "to": "gain"},
                  {"from": "gain", "to": "output"}])
    pipeline = Pipeline.from_manifest(m, allow_import=ALLOW)

    class Keep(Sink):
        def __init__(self, fmt):
            super().__init__(fmt)
            self.frames = []

        def write(self, frame):
            self.frames.append(frame.array.copy())

    source = _WakingSource(pipeline.manifest.audio)
    sink = source.sink = Keep(pipeline.manifest.output_format)
    stats = StreamRunner(pipeline, source, sink).run()
    # block 0's answer, through the gain after the executor, was out before block 1 was read
    assert source.delivered_at_poll == 1
    assert np.allclose(sink.frames[0], 0.5 * 10 ** (-6 / 20))
    assert len(sink.frames) == 2 and stats["frames_out"] == 2 and stats["frames_in"] == 2
