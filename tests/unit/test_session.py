"""Sessions: direct calls, copy-on-write counting, engine copies, errors, the stats contract."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

import remotemedia as rm
from remotemedia.testing import chain, manifest
from remotemedia import Node, NodeError, PipelineBroken, PipelineClosed, RuntimeData, node_function


@node_function("Boom", description="test node: raises on every frame")
def boom(frame):
    raise RuntimeError("kaboom")


@node_function("Scale", description="test node: writes its input through writable()")
def scale(frame, factor: float = 2.0):
    out = frame.writable()
    out *= factor
    return frame.with_array(out)


@node_function("Tap", description="test node: reads only")
def tap(frame):
    return frame


def test_passthrough_returns_the_same_memory_and_no_threads_are_started():
    threads_before = threading.active_count()
    frame = np.arange(960, dtype=np.float32)
    with rm.Pipeline.from_manifest(chain({"id": "p", "node_type": "PassThrough"})).session() as s:
        (out,) = s.push(frame)
        assert threading.active_count() == threads_before
    assert out.array.__array_interface__["data"][0] == frame.__array_interface__["data"][0]
    assert s.stats()["copies"] == {"engine": 0, "cow": 0, "io": 0}


def test_two_readers_and_one_writer_force_exactly_one_cow_copy():
    # input fans out to a writer and a reader: the writer must not change what the reader sees.
    p = rm.Pipeline.from_manifest(manifest(
        [{"id": "w", "node_type": "Scale"}, {"id": "r", "node_type": "Tap"}],
        connections=[{"from": "input", "to": "w"}, {"from": "input", "to": "r"},
                     {"from": "w", "to": "output"}, {"from": "r", "to": "output"}]))
    data = np.ones(960, np.float32)
    with p.session() as s:
        scaled, untouched = s.push(data, transfer=True)
        assert s.stats()["copies"]["cow"] == 1
    assert scaled.array[0] == 2.0 and untouched.array[0] == 1.0
    assert np.shares_memory(untouched.array, data)
    assert not np.shares_memory(scaled.array, data)


def test_a_lone_writer_on_an_owned_buffer_writes_in_place():
    data = np.ones(960, np.float32)
    with rm.Pipeline.from_manifest(chain({"id": "w", "node_type": "Scale"})).session() as s:
        (out,) = s.push(data, transfer=True)
        assert s.stats()["copies"]["cow"] == 0
    assert np.shares_memory(out.array, data) and data[0] == 2.0


def test_a_pushed_array_that_is_not_transferred_is_never_written():
    data = np.ones(960, np.float32)
    p = rm.Pipeline.from_manifest(chain(("w", "Scale"), ("w2", "Scale")))
    with p.session() as s:
        (out,) = s.push(data)
        # one copy for the first writer (the caller still reads `data`); the second writes
        # that copy in place, since the engine owns it and nobody else reads it
        assert s.stats()["copies"]["cow"] == 1
    assert data[0] == 1.0 and out.array[0] == 4.0


def test_a_reader_downstream_of_an_in_place_writer_sees_its_own_input_unchanged():
    p = rm.Pipeline.from_manifest(manifest(
        [{"id": "pass", "node_type": "PassThrough"}, {"id": "w", "node_type": "Scale"},
         {"id": "r", "node_type": "Tap"}],
        connections=[{"from": "input", "to": "pass"}, {"from": "pass", "to": "w"},
                     {"from": "input", "to": "r"}, {"from": "w", "to": "output"},
                     {"from": "r", "to": "output"}]))
    with p.session() as s:
        scaled, original = s.push(np.ones(4, np.float32), transfer=True)
        assert s.stats()["copies"]["cow"] == 1
    assert scaled.array[0] == 2.0 and original.array[0] == 1.0


def test_engine_copy_fires_only_for_a_declared_requirement():
    with rm.Pipeline.from_manifest("manifests/gain.yaml").session() as s:
        (out,) = s.push(np.full(960, 1000, np.int16))     # Gain needs float samples
        (out2,) = s.push(np.ones(960, np.float32))
        st = s.stats()
    assert st["copies"]["engine"] == 1
    assert out.array.dtype == np.float32
    # Scaled to full scale on the way in: int16 1000 is 1000/32768 of full scale.
    np.testing.assert_allclose(out.array, 1000 / 32768 * 10 ** (-6 / 20), rtol=1e-6)
    assert out2.array.dtype == np.float32


def test_fan_out_shares_one_read_only_view():
    seen = []

    @node_function("Collect", description="test node: remembers what it saw")
    def collect(frame):
        seen.append(frame.array)
        return frame

    p = rm.Pipeline.from_manifest(manifest(
        [{"id": "a", "node_type": "Collect"}, {"id": "b", "node_type": "Collect"}],
        connections=[{"from": "input", "to": "a"}, {"from": "input", "to": "b"},
                     {"from": "a", "to": "output"}]))
    with p.session() as s:
        s.push(np.zeros(960, np.float32))
    assert seen[0] is seen[1] and not seen[0].flags.writeable


def test_node_error_reaches_the_caller_with_the_node_id_and_breaks_the_session():
    p = rm.Pipeline.from_manifest(chain(("pass", "PassThrough"), ("bad", "Boom")))
    with p.session() as s:
        with pytest.raises(NodeError, match="node 'bad' failed: RuntimeError: kaboom") as info:
            s.push(np.zeros(960, np.float32))
        assert isinstance(info.value.__cause__, RuntimeError)
        with pytest.raises(PipelineBroken, match="node 'bad'"):
            s.push(np.zeros(960, np.float32))
        st = s.stats()
    assert st["errors"] == 1 and st["nodes"]["bad"]["errors"] == 1
    assert st["nodes"]["bad"]["calls"] == 1 and st["nodes"]["pass"]["calls"] == 1


def test_on_error_skip_drops_the_frame_and_counts():
    p = rm.Pipeline.from_manifest(chain({"id": "bad", "node_type": "Boom", "on_error": "skip"}))
    with p.session() as s:
        for _ in range(3):
            assert s.push(np.zeros(960, np.float32)) == []
        st = s.stats()
    assert st["errors"] == 3 and st["drops"] == 3 and st["frames_out"] == 0


def test_manifest_level_on_error_applies_to_every_node():
    p = rm.Pipeline.from_manifest(chain({"id": "bad", "node_type": "Boom"}, on_error="skip"))
    with p.session() as s:
        assert s.push(np.zeros(4, np.float32)) == []


def test_closed_session_refuses_frames_and_close_is_idempotent():
    s = rm.Pipeline.from_manifest(chain({"id": "p", "node_type": "PassThrough"})).session()
    s.close()
    s.close()
    with pytest.raises(PipelineClosed):
        s.push(np.zeros(4))


def test_setup_and_teardown_run_once_each():
    calls = []

    class Life(Node):
        node_type = "Life"

        def setup(self):
            calls.append("setup")

        def teardown(self):
            calls.append("teardown")

        def process(self, frame):
            return frame

    rm.registry.register(Life)
    with rm.Pipeline.from_manifest(chain({"id": "l", "node_type": "Life"})).session() as s:
        s.push(np.zeros(4))
        s.push(np.zeros(4))
    assert calls == ["setup", "teardown"]


def test_stats_follow_the_contract():
    with rm.Pipeline.from_manifest("manifests/meter.yaml").session() as s:
        for i in range(20):
            s.push(RuntimeData.Numpy(np.full(960, 0.1, np.float32), sample_rate=48000,
                                     pts=960 * i, seq=i))
        st = s.stats()
    assert set(st) >= {"frames_in", "frames_out", "duration_s", "realtime_factor",
                       "serialization_events", "copies", "drops", "errors", "xruns",
                       "latency_us", "nodes"}
    assert st["frames_in"] == st["frames_out"] == 20
    assert set(st["copies"]) == {"engine", "cow", "io"}
    assert set(st["xruns"]) == {"input_overflow", "output_underflow"}
    eng = st["latency_us"]["engine"]
    assert 0 < eng["p50"] <= eng["p95"] <= eng["p99"] <= eng["max"]
    assert st["latency_us"]["end_to_end"] is None
    assert list(st["nodes"]) == ["gain", "meter"]
    assert st["nodes"]["meter"]["calls"] == 20
    assert st["realtime_factor"] > 0 and st["duration_s"] > 0


def test_reset_stats_zeroes_counters():
    with rm.Pipeline.from_manifest("manifests/gain.yaml").session() as s:
        s.push(np.zeros(960, np.float32))
        s.reset_stats()
        st = s.stats()
    assert st["frames_in"] == 0 and st["copies"]["cow"] == 0
    assert st["nodes"]["gain"]["calls"] == 0


def test_non_audio_outputs_are_events_not_frames():
    p = rm.Pipeline.from_manifest(chain({"id": "meter", "node_type": "LevelMeter"}))
    with p.session() as s:
        outs = s.push(np.full(960, 0.5, np.float32))
        st = s.stats()
    kinds = [o.kind for o in outs]
    assert kinds == ["numpy", "json"]
    assert st["frames_out"] == 1 and st["events_out"] == 1


def test_data_a_node_does_not_accept_flows_past_it():
    p = rm.Pipeline.from_manifest(chain({"id": "meter", "node_type": "LevelMeter"},
                                        {"id": "gain", "node_type": "Gain",
                                         "params": {"db": -6}}))
    with p.session() as s:
        outs = s.push(np.full(960, 0.5, np.float32))
        text = s.push(RuntimeData.Text("hello"))
    assert [o.kind for o in outs] == ["numpy", "json"]     # the meter's reading passed Gain
    assert text == [RuntimeData.Text("hello")]


async def test_stream_serves_asyncio_callers():
    async def frames():
        for i in range(5):
            await asyncio.sleep(0)
            yield np.full(960, i, np.float32)

    with rm.Pipeline.from_manifest("manifests/passthrough.yaml").session() as s:
        got = [out async for out in s.stream(frames())]
    assert [float(o.array[0]) for o in got] == [0, 1, 2, 3, 4]


def test_fan_in_waits_for_every_input():
    with rm.Pipeline.from_manifest("manifests/mix.yaml").session() as s:
        (out,) = s.push(np.ones(960, np.float32))
    expected = 10 ** (-6 / 20) + 10 ** (-12 / 20)
    np.testing.assert_allclose(out.array, expected, rtol=1e-6)


def test_a_node_that_keeps_input_views_is_never_written_under():
    # Reframe holds partial blocks as views of its inputs; a writer on a sibling branch must
    # copy rather than change samples Reframe has not emitted yet.
    p = rm.Pipeline.from_manifest(manifest(
        [{"id": "reframe", "node_type": "Reframe", "params": {"size": 1500}},
         {"id": "w", "node_type": "Scale", "params": {"factor": -1.0}}],
        connections=[{"from": "input", "to": "reframe"}, {"from": "input", "to": "w"},
                     {"from": "reframe", "to": "output"}, {"from": "w", "to": "output"}]))
    signal = np.arange(1920, dtype=np.float32)
    with p.session() as s:
        outs = s.push(signal[:960].copy(), transfer=True)
        outs += s.push(signal[960:].copy(), transfer=True)
        cow = s.stats()["copies"]["cow"]
    reframed = [o for o in outs if o.array.shape[0] == 1500]
    assert len(reframed) == 1
    np.testing.assert_array_equal(reframed[0].array, signal[:1500])
    assert cow == 2


def test_a_node_that_fails_setup_is_named_and_the_others_are_torn_down():
    torn = []

    class Fine(Node):
        node_type = "FineNode"

        def process(self, frame):
            return frame

        def teardown(self):
            torn.append(self.node_id)

    class NoModel(Node):
        node_type = "NoModel"

        def setup(self):
            raise FileNotFoundError("model.onnx")

        def process(self, frame):
            return frame

    rm.registry.register(Fine)
    rm.registry.register(NoModel)
    p = rm.Pipeline.from_manifest(chain(("first", "FineNode"), ("vad", "NoModel")))
    with pytest.raises(NodeError, match="node 'vad' failed in setup: FileNotFoundError: model.onnx"):
        p.session()
    assert torn == ["first"]


def test_nodes_see_their_validated_input_format():
    with rm.Pipeline.from_manifest("manifests/mix.yaml").session() as s:
        mix = s.node("mix").format
    assert (mix.sample_rate, mix.channels, mix.block_size) == (48000, 1, 960)
