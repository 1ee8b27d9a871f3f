"""Every block a device run captured is accounted for at every stop, in both modes:
frames_in == frames_out + drops + in_flight, whether the run reaches its duration, is stopped
from another thread at any moment, or falls behind and skips blocks to catch up (the queued
mode's counted drops, which a loaded machine brings about: a 60 s run once ended 3,000 in,
2,999 out, one skipped). A run that captured its duration ends with stop_reason "duration",
even when it skipped some of those blocks on the way."""

from __future__ import annotations

import threading
import time

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from remotemedia.engine.node import Node, Param, register_node
from remotemedia.engine.session import Pipeline
from remotemedia.runner import StreamRunner
from remotemedia.testing import one_node
from tests.conftest import MANIFESTS
from tests.streaming.device_support import jack_device  # noqa: F401

pytestmark = pytest.mark.device


@register_node
class LateForAccountingTests(Node):
    """Passes frames on, sleeping `ms` for frames with seq in [first, last): the output falls
    behind, and queued mode skips a block to win the latency back."""

    node_type = "LateForAccountingTests"
    params = (Param("ms", float, 45.0), Param("first", int, 5), Param("last", int, 8))

    def process(self, frame):
        if self.first <= (frame.seq or 0) < self.last:
            time.sleep(self.ms / 1000)
        return frame


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mode=st.sampled_from(["queued", "callback"]),
       blocks=st.none() | st.integers(1, 60),
       stop_after_s=st.none() | st.floats(0.0, 1.2),
       late=st.booleans())
@example(mode="queued", blocks=40, stop_after_s=None, late=True)   # skips to catch up
def test_every_block_is_accounted_at_every_stop(jack_device, mode, blocks, stop_after_s,  # noqa: F811
                                                late):
    from remotemedia.io.devices import DeviceSink, DeviceSource
    if blocks is None and stop_after_s is None:
        stop_after_s = 0.5                        # a run needs an end
    pipeline = Pipeline.from_manifest(one_node("LateForAccountingTests") if late
                                      else MANIFESTS / "five.yaml")
    m = pipeline.manifest
    duration = None if blocks is None else blocks * m.audio.block_size / m.audio.sample_rate
    runner = StreamRunner(pipeline, DeviceSource(m.audio, jack_device.index, mode=mode),
                          DeviceSink(m.output_format, jack_device.index), duration=duration)
    timer = None
    if stop_after_s is not None:
        timer = threading.Timer(stop_after_s, runner.stop)
        timer.start()
    try:
        stats = runner.run()
    finally:
        if timer is not None:
            timer.cancel()
    assert stats["frames_in"] == stats["frames_out"] + stats["drops"] + stats["in_flight"], \
        stats
    assert stats["stop_reason"] in ("duration", "stopped"), stats
    if stats["stop_reason"] == "duration":
        assert stats["frames_in"] == blocks, stats     # every captured block, counted
