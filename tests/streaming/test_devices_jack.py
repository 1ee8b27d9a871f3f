"""Streams through PortAudio against the JACK dummy server, in real time, through the runner:
both modes, device selection, the errors a user sees, and every device counter made to fire.

Latency bounds here are generous (2 shared cores); the figures go to benchmarks/bench_devices.py.
"""

from __future__ import annotations

import time

import pytest

from remotemedia.engine.errors import DeviceError, NodeError
from remotemedia.engine.node import Node, Param, register_node
from remotemedia.engine.session import Pipeline
from remotemedia.io.virtual import NullSink
from remotemedia.runner import StreamRunner
from remotemedia.testing import one_node, wait_until
from tests.conftest import MANIFESTS
from tests.streaming.device_support import (JACK_PERIOD, assert_clean_under_load,  # noqa: F401
                                            jack_device, load_allowance)

pytestmark = pytest.mark.device

BLOCK_US = JACK_PERIOD / 48000 * 1e6  # 20 ms


@register_node
class SlowPassForDeviceTests(Node):
    """Passes frames on after sleeping `ms` milliseconds for frames with seq in [first, last)."""

    node_type = "SlowPassForDeviceTests"
    params = (Param("ms", float, 30.0), Param("first", int, 0), Param("last", int, 10 ** 9))

    def process(self, frame):
        if self.first <= (frame.seq or 0) < self.last:
            time.sleep(self.ms / 1000)
        return frame


@register_node
class FailAtForDeviceTests(Node):
    node_type = "FailAtForDeviceTests"
    params = (Param("seq", int, 5),)

    def process(self, frame):
        if frame.seq == self.seq:
            raise RuntimeError("boom at frame 5")
        return frame


def device_run(pipeline: Pipeline, device_in, device_out, *, mode="queued", duration=2.0,
               measure_levels=False):
    from remotemedia.io.devices import DeviceSink, DeviceSource
    m = pipeline.manifest
    source = DeviceSource(m.audio, device_in, mode=mode)
    sink = DeviceSink(m.output_format, device_out) if device_out is not None \
        else NullSink(m.output_format)
    runner = StreamRunner(pipeline, source, sink, duration=duration,
                          measure_levels=measure_levels)
    return runner, runner.run()


def assert_accounted(stats: dict) -> None:
    """Nothing lost silently."""
    assert stats["frames_in"] == stats["frames_out"] + stats["drops"] + stats["in_flight"]


@pytest.mark.parametrize("mode", ["queued", "callback"])
def test_five_nodes_both_modes_clean_and_measured(jack_device, mode):
    runner, stats = device_run(Pipeline.from_manifest(MANIFESTS / "five.yaml"),
                               jack_device.index, jack_device.index, mode=mode, duration=3.0,
                               measure_levels=True)
    frames = 150
    assert stats["stop_reason"] == "duration"
    assert_clean_under_load(stats, frames)
    # One path for every block: the level meters see every block in both modes (in callback
    # mode from the audio callback), as the TUI's meters do; a block skipped to catch up
    # (a counted drop, on a loaded machine) reaches neither.
    assert runner.levels.output_blocks == stats["frames_out"]
    assert stats["frames_out"] <= runner.levels.input_blocks <= frames
    assert stats["serialization_events"] == 0
    # one copy in per block captured, one copy out per block played; the graph copies nothing
    device = stats["device"]
    assert stats["copies"] == {"engine": 0, "cow": 0, "io": frames + device["played"]}
    assert device["mode"] == mode and device["host_api"].startswith("JACK")
    assert device["captured"] == frames and device["played"] == stats["frames_out"]
    assert device["unplayed_at_stop"] == 0
    assert device["round_trip_retaken"] == 0     # no canceller asked where a frame played
    e2e = stats["latency_us"]["end_to_end"]
    assert e2e is not None
    # callback mode plays a block in the callback that captured it; queued one callback later
    # (the typical block: the tail under load is benchmarks/bench_devices.py's to measure)
    hop_us = BLOCK_US if mode == "queued" else 0.0
    expected = device["timestamp_latency_us"] + hop_us
    assert abs(e2e["p50"] - expected) < BLOCK_US / 2, (e2e, expected)
    assert runner.frames_released == stats["frames_out"]


def test_select_input_by_name_and_output_by_index(jack_device):
    name_part = jack_device.name[: max(3, len(jack_device.name) - 1)].upper()
    runner, stats = device_run(Pipeline.from_manifest(MANIFESTS / "passthrough.yaml"),
                               name_part, jack_device.index, duration=0.5)
    assert runner.source.device == jack_device and runner.sink.device == jack_device
    assert_clean_under_load(stats, 25)
    assert stats["device"]["input"] == jack_device.name
    assert stats["device"]["output"] == jack_device.name


def test_input_only_stream_to_null(jack_device):
    runner, stats = device_run(Pipeline.from_manifest(MANIFESTS / "passthrough.yaml"),
                               str(jack_device.index), None, duration=0.5)
    assert_clean_under_load(stats, 25)
    assert stats["copies"]["io"] == 25  # copied in only
    assert stats["latency_us"]["end_to_end"] is None  # no output device: nothing to measure
    assert stats["device"]["output"] is None


def test_output_only_stream_plays_a_generated_chirp(jack_device):
    from remotemedia.io.devices import DeviceSink
    from remotemedia.io.synth import ChirpSource
    pipeline = Pipeline.from_manifest(MANIFESTS / "passthrough.yaml")
    m = pipeline.manifest
    sink = DeviceSink(m.output_format, jack_device.name)
    runner = StreamRunner(pipeline, ChirpSource(m.audio, 100.0, 4000.0, 1.0), sink,
                          duration=1.0)
    assert runner.realtime  # a device at either end runs in real time
    stats = runner.run()
    assert stats["frames_out"] == 50
    assert stats["device"]["played"] == 50 and stats["device"]["unplayed_at_stop"] == 0
    assert stats["device"]["input"] is None
    assert stats["copies"]["io"] == 50
    assert sum(stats["xruns"].values()) <= load_allowance(50)
    assert stats["latency_us"]["end_to_end"] is None


def test_a_bad_device_name_is_exit_2_listing_the_devices(jack_device):
    from remotemedia.io.devices import DeviceSource
    fmt = Pipeline.from_manifest(MANIFESTS / "passthrough.yaml").manifest.audio
    with pytest.raises(DeviceError) as err:
        DeviceSource(fmt, "no-such-soundcard")
    assert err.value.exit_code == 2
    msg = str(err.value)
    assert "no-such-soundcard" in msg and f"{jack_device.index} '{jack_device.name}'" in msg


def test_a_rate_the_server_does_not_run_is_one_clear_line(jack_device):
    pipeline = Pipeline.from_manifest({
        "version": "v1", "audio": {"sample_rate": 44100, "block_size": 882, "channels": 1},
        "nodes": [{"id": "p", "node_type": "PassThrough"}],
        "connections": [{"from": "input", "to": "p"}, {"from": "p", "to": "output"}]})
    with pytest.raises(DeviceError) as err:
        device_run(pipeline, jack_device.index, jack_device.index, duration=0.2)
    msg = str(err.value)
    assert "44100 Hz" in msg and "48000 Hz" in msg and "\n" not in msg
    assert err.value.__cause__ is not None  # PortAudioError, chained


def test_a_slow_graph_fills_the_ring_drops_are_counted_and_nothing_is_lost(jack_device):
    # Recording (no output device, so nothing to catch up with): 30 ms of work per 20 ms block.
    # The ring fills and blocks are refused (drop-newest); every frame is still accounted for.
    runner, stats = device_run(
        Pipeline.from_manifest(one_node("SlowPassForDeviceTests", ms=30.0)), jack_device.index,
        None, duration=3.0)
    device = stats["device"]
    assert stats["drops"] > 0
    assert device["refused"] == stats["drops"] and device["skipped_to_catch_up"] == 0
    assert stats["frames_in"] == 150  # every block the device delivered
    assert stats["frames_out"] == 150 - stats["drops"]
    assert_accounted(stats)
    # the device captured the run's whole duration; the refused blocks do not make it an
    # end of input
    assert stats["stop_reason"] == "duration"


def test_queued_mode_wins_latency_back_after_late_frames(jack_device):
    # Frames 20..23 take 30 ms each: the output runs dry (counted), the queue then holds frames
    # too many, and the worker skips captured blocks (counted drops) until latency is one
    # block again, instead of playing everything late for the rest of the run.
    runner, stats = device_run(
        Pipeline.from_manifest(one_node("SlowPassForDeviceTests", ms=30.0, first=20, last=24)),
        jack_device.index, jack_device.index, duration=3.0)
    device = stats["device"]
    assert stats["xruns"]["output_underflow"] >= device["output_queue_underflows"] >= 1
    assert device["skipped_to_catch_up"] >= 1
    assert stats["drops"] == device["skipped_to_catch_up"] + device["refused"]
    assert_accounted(stats)
    # skipped blocks leave the runner fewer reads than the duration's blocks: still "duration"
    assert stats["stop_reason"] == "duration"
    recent = runner.session.end_to_end_latency.recent_ns() / 1e3
    expected = device["timestamp_latency_us"] + BLOCK_US
    assert abs(recent[-1] - expected) < BLOCK_US / 2, (recent[-20:], expected)
    assert abs(stats["latency_us"]["end_to_end"]["p50"] - expected) < BLOCK_US / 2


def test_callback_mode_slow_node_makes_the_server_xrun_and_it_is_counted(jack_device):
    # A node too slow for the audio thread: JACK reports an xrun, which PortAudio passes on as
    # input overflow and output underflow. (Queued mode keeps the audio thread out of it.)
    runner, stats = device_run(
        Pipeline.from_manifest(one_node("SlowPassForDeviceTests", ms=30.0, first=10, last=14)),
        jack_device.index, jack_device.index, mode="callback", duration=1.0)
    assert stats["xruns"]["input_overflow"] > 0
    assert stats["xruns"]["output_underflow"] > 0
    assert_accounted(stats)


def test_callback_mode_node_error_stops_the_run_and_closes_the_stream(jack_device):
    from remotemedia.io.devices import DeviceSink, DeviceSource
    pipeline = Pipeline.from_manifest(one_node("FailAtForDeviceTests", seq=5))
    m = pipeline.manifest
    source = DeviceSource(m.audio, jack_device.index, mode="callback")
    sink = DeviceSink(m.output_format, jack_device.index)
    runner = StreamRunner(pipeline, source, sink, duration=2.0)
    with pytest.raises(NodeError, match="boom at frame 5"):
        runner.run()
    # it stopped at the error, not at the end of its 2 s (100 blocks)
    assert runner.stats()["frames_in"] < 50
    assert source.stream.closed
    assert runner.state == "failed"


@pytest.mark.parametrize("mode", ["queued", "callback"])
def test_stop_mid_run_accounts_for_every_frame(jack_device, mode):
    from remotemedia.io.devices import DeviceSink, DeviceSource
    pipeline = Pipeline.from_manifest({  # a meter whose readings reach `output` as events
        "version": "v1", "audio": {"sample_rate": 48000, "block_size": 960, "channels": 1},
        "nodes": [{"id": "meter", "node_type": "LevelMeter"}],
        "connections": [{"from": "input", "to": "meter"}, {"from": "meter", "to": "output"}]})
    m = pipeline.manifest
    events = []
    runner = StreamRunner(pipeline, DeviceSource(m.audio, jack_device.index, mode=mode),
                          DeviceSink(m.output_format, jack_device.index),
                          on_event=events.append)
    thread = runner.start()
    wait_until(lambda: runner.frames_released > 10, "ten blocks from the device")
    live = runner.stats()  # a live report while the audio runs
    assert "device" in live and "in_flight" in live
    runner.stop()
    assert runner.join(30.0)
    stats = runner.stats()
    assert not thread.is_alive() and runner.error is None
    assert stats["stop_reason"] == "stopped"
    assert_accounted(stats)
    assert stats["frames_out"] > 10
    assert stats["drops"] <= load_allowance(stats["frames_in"])   # late blocks skipped, counted
    # the meter's readings reached on_event on the runner's thread, one per frame, in order
    assert len(events) == stats["frames_out"] == stats["events_out"]
    assert [e.value["seq"] for e in events] == list(range(len(events)))


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["callback", "queued"])
def test_sixty_seconds_of_five_nodes(jack_device, mode):
    runner, stats = device_run(Pipeline.from_manifest(MANIFESTS / "five.yaml"),
                               jack_device.index, jack_device.index, mode=mode, duration=60.0)
    # Every block accounted; on a loaded machine a few are skipped to catch up (counted drops:
    # once 3,000 in and 2,999 out, the test's old exact count).
    assert stats["stop_reason"] == "duration"
    assert_clean_under_load(stats, 3000)
    assert stats["serialization_events"] == 0
    assert stats["copies"]["engine"] == stats["copies"]["cow"] == 0
    # at most one copy in and one out per block (exactly 6,000 when none is skipped)
    assert stats["copies"]["io"] <= 6000
    assert stats["drops"] > 0 or stats["copies"]["io"] == 6000
    e2e = stats["latency_us"]["end_to_end"]
    # The device's reported latency: ADC -> DAC of one callback on PortAudio's clock, i.e. what
    # a block that goes straight through takes. Queued adds its one block by design. (The
    # typical block: the tail under load is benchmarks/bench_devices.py's to measure.)
    reported = stats["device"]["timestamp_latency_us"]
    hop = BLOCK_US if mode == "queued" else 0.0
    assert e2e["p50"] < reported + hop + 5000, (e2e, reported, mode)


@pytest.mark.parametrize("mode", ["queued", "callback"])
def test_stereo_blocks_are_frames_by_channels_end_to_end(jack_device, mode):
    pipeline = Pipeline.from_manifest({
        "version": "v1", "audio": {"sample_rate": 48000, "block_size": 960, "channels": 2},
        "nodes": [{"id": "g", "node_type": "Gain", "params": {"db": -6.0}}],
        "connections": [{"from": "input", "to": "g"}, {"from": "g", "to": "output"}]})
    runner, stats = device_run(pipeline, jack_device.index, jack_device.index, mode=mode,
                               duration=1.0)
    assert_clean_under_load(stats, 50)
    # Gain writes in place into the ring slot the engine was handed: no copy anywhere else
    assert stats["copies"]["engine"] == stats["copies"]["cow"] == 0
    assert stats["copies"]["io"] <= 100
    assert stats["drops"] > 0 or stats["copies"]["io"] == 100
    assert runner.source.stream.ring.slots[0].shape == (960, 2)
    assert stats["latency_us"]["end_to_end"] is not None
