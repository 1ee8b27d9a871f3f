"""`executor: thread` in live runs against the JACK dummy server, in both device modes: a node
that takes longer than a block (as inference does) costs no xrun, only the frames its queue
policy drops, each counted."""

from __future__ import annotations

import pytest

from remotemedia.engine.session import Pipeline
from remotemedia.testing import manifest
from tests.streaming.device_support import jack_device, load_allowance  # noqa: F401
from tests.streaming.test_devices_jack import assert_accounted, device_run

pytestmark = pytest.mark.device

ALLOW = ["remotemedia.testing.executor_checks"]


def slow(delay_ms: float, policy: str, queue_size: int = 4) -> Pipeline:
    node = {"id": "slow", "node_type": "remotemedia.testing.executor_checks:CheckSlow", "executor": "thread",
            "params": {"delay_ms": delay_ms}, "queue_size": queue_size, "queue_policy": policy}
    m = manifest([node, {"id": "gain", "node_type": "Gain", "params": {"db": -6}}],
                 [{"from": "input", "to": "slow"}, {"from": "slow", "to": "gain"},
                  {"from": "gain", "to": "output"}])
    return Pipeline.from_manifest(m, allow_import=ALLOW)


@pytest.mark.parametrize("mode", ["queued", "callback"])
@pytest.mark.parametrize("policy", ["drop_oldest", "drop_newest"])
def test_a_node_slower_than_a_block_costs_drops_not_xruns(jack_device, mode, policy):
    # 35 ms of "inference" per 20 ms block: the worker keeps up with about half the blocks.
    runner, stats = device_run(slow(35, policy), jack_device.index, None, mode=mode,
                               duration=2.0)
    # inline, every block would be late (about 50 underflows); on the thread the node's queue
    # drops instead. A busy machine may still cost the run an xrun or a skipped block.
    assert sum(stats["xruns"].values()) <= load_allowance(100) < 50, stats["xruns"]
    assert stats["stop_reason"] == "duration"
    node = stats["nodes"]["slow"]
    # the rest of the drops are the device's (a block skipped to catch up, a full ring)
    assert node["drops"] > 10 and 0 <= stats["drops"] - node["drops"] <= load_allowance(100)
    assert stats["frames_out"] > 10 and stats["errors"] == 0
    assert stats["serialization_events"] == 0 and stats["copies"]["engine"] == 0
    assert_accounted(stats)


@pytest.mark.parametrize("mode", ["queued", "callback"])
def test_a_node_that_keeps_up_loses_nothing_under_block(jack_device, mode):
    runner, stats = device_run(slow(5, "block"), jack_device.index, None, mode=mode,
                               duration=2.0)
    assert sum(stats["xruns"].values()) <= load_allowance(100), stats["xruns"]
    # the node's queue drops nothing; only the device may skip a block to catch up or refuse
    # one to a full ring on a loaded machine (counted drops)
    assert stats["nodes"]["slow"]["drops"] == 0 and stats["errors"] == 0
    assert stats["drops"] <= load_allowance(100)
    assert stats["frames_in"] == 100
    assert_accounted(stats)
