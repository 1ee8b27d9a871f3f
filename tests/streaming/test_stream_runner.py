"""StreamRunner behaviour the CLI relies on: stopping, pacing choice, events, errors."""

from __future__ import annotations

import os
import time

import pytest

from remotemedia.engine.data import ControlData, JsonData
from remotemedia.engine.errors import NodeError
from remotemedia.engine.node import Node
from remotemedia.engine.session import Pipeline
from remotemedia.io.clock import RealtimeClock, SimulatedClock
from remotemedia.io.raw import RawSource
from remotemedia.io.synth import SilenceSource, SineSource
from remotemedia.io.virtual import NullSink, VirtualSink, VirtualSource
from remotemedia.testing import one_node, registered, wait_until
from remotemedia.runner import FAILED, FINISHED, STOPPED, StreamRunner


def one_node_pipeline(cls: type[Node]) -> Pipeline:
    """input -> cls -> output, with cls in an isolated registry (not the global one)."""
    with registered(cls) as types:
        return Pipeline.from_manifest(one_node(cls.node_type), registry=types)


@pytest.fixture
def passthrough(manifests_dir):
    return Pipeline.from_manifest(manifests_dir / "passthrough.yaml")


def test_pacing_follows_the_ends(passthrough):
    fmt = passthrough.manifest.audio
    assert StreamRunner(passthrough, VirtualSource(fmt), NullSink(fmt)).realtime
    assert StreamRunner(passthrough, SineSource(fmt), VirtualSink(fmt)).realtime
    fast = StreamRunner(passthrough, SineSource(fmt), NullSink(fmt))
    assert not fast.realtime and isinstance(fast.clock, SimulatedClock)
    forced = StreamRunner(passthrough, VirtualSource(fmt), VirtualSink(fmt), realtime=False)
    assert not forced.realtime
    assert isinstance(StreamRunner(passthrough, SineSource(fmt), NullSink(fmt),
                                   realtime=True).clock, RealtimeClock)


def test_stop_from_another_thread_ends_a_realtime_run(passthrough):
    fmt = passthrough.manifest.audio
    sink = NullSink(fmt)
    runner = StreamRunner(passthrough, VirtualSource(fmt), sink)
    runner.start()
    wait_until(lambda: runner.frames_released >= 10, "ten blocks released")
    runner.stop()
    assert runner.join(30.0)
    stats = runner.stats()
    assert runner.state == STOPPED and stats["stop_reason"] == "stopped"
    assert stats["frames_out"] == sink.frames == runner.frames_released >= 10


def test_stop_interrupts_a_source_waiting_for_input(passthrough, monkeypatch):
    fmt = passthrough.manifest.audio
    r, w = os.pipe()
    with os.fdopen(r, "rb", buffering=0) as stdin:
        monkeypatch.setattr("sys.stdin", stdin)
        runner = StreamRunner(passthrough, RawSource("-", fmt), NullSink(fmt))
        runner.start()
        wait_until(lambda: runner.session is not None, "the runner to open its session")
        runner.stop("interrupted")
        finished = runner.join(30.0)
    os.close(w)
    assert finished, "stop() did not end a read blocked on an open pipe"
    assert runner.stats()["stop_reason"] == "interrupted"


def test_events_reach_on_event_but_not_the_runners_own_end_of_stream():
    class EveryOther(Node):
        node_type = "TestEveryOtherEvent"
        accepts = frozenset({"numpy"})

        def process(self, frame):
            if frame.seq % 2:
                return (frame, JsonData({"type": "odd", "seq": frame.seq}),
                        ControlData("discontinuity"))
            return frame

    pipeline = one_node_pipeline(EveryOther)
    fmt = pipeline.manifest.audio
    events = []
    stats = StreamRunner(pipeline, SilenceSource(fmt), NullSink(fmt), duration=0.1,
                         on_event=events.append).run()
    kinds = [(e.kind, getattr(e, "value", getattr(e, "event", None))) for e in events]
    assert kinds == [("json", {"type": "odd", "seq": 1}), ("control", "discontinuity"),
                     ("json", {"type": "odd", "seq": 3}), ("control", "discontinuity")]
    assert stats["events_out"] == 4


def test_an_error_closes_everything_and_keeps_the_stats(passthrough):
    class FailSecond(Node):
        node_type = "TestFailSecond"

        def process(self, frame):
            if frame.seq == 1:
                raise ValueError("no")
            return frame

    pipeline = one_node_pipeline(FailSecond)
    fmt = pipeline.manifest.audio

    class ClosingSink(NullSink):
        closed = 0

        def close(self):
            ClosingSink.closed += 1

    runner = StreamRunner(pipeline, SilenceSource(fmt), ClosingSink(fmt), duration=1.0)
    with pytest.raises(NodeError, match="node 'n' failed"):
        runner.run()
    assert runner.state == FAILED and ClosingSink.closed == 1
    assert runner.stats()["frames_out"] == 1 and runner.stats()["stop_reason"] == "error"


def test_simulated_clock_runs_a_device_stream_instantly(passthrough):
    fmt = passthrough.manifest.audio
    runner = StreamRunner(passthrough, VirtualSource(fmt), VirtualSink(fmt), duration=60.0,
                          clock=SimulatedClock(0.02))
    t0 = time.monotonic()
    stats = runner.run()
    assert stats["frames_out"] == 3000 and runner.state == FINISHED
    assert time.monotonic() - t0 < 30.0
    assert runner.max_lateness_s == 0.0
