"""With a device output the first reply sample out is the DAC time PortAudio gave for it: on
the JACK server the `output` stage of a turn holds the device's buffering (at least a period),
where a file or null output has none."""

from __future__ import annotations

import pytest

from remotemedia.io.spec import make_sink, make_source
from remotemedia.runner import StreamRunner
from remotemedia.turn_observer import TurnObserver

from ..unit.turn_nodes import FMT, PERIOD, REGISTRY, manifest, speech_wav
from .device_support import jack_device  # noqa: F401 (fixture)

import remotemedia as rm


def test_device_output_times_the_reply_at_the_dac(jack_device, tmp_path):  # noqa: F811
    wav = speech_wav(tmp_path / "in.wav", [(0.3, 0.9)], 2.5)
    pipeline = rm.Pipeline.from_manifest(manifest(heard_delay=1, reply_blocks=20),
                                         registry=REGISTRY)
    runner = StreamRunner(pipeline, make_source(wav, FMT),
                          make_sink(f"device:{jack_device.index}", FMT))
    assert runner.realtime
    observer = TurnObserver.attach(runner)
    stats = runner.run()
    section = stats["turns"]
    assert section["out_time"] == "dac" and section["replied"] == 1
    (row,) = section["turns"]
    parts = row["breakdown_ms"]
    # the block went to the device's queue at once; the DAC played it a period or more later
    # (the JACK dummy server's 960-frame period), and within a second on a busy machine
    assert PERIOD * 1e3 * 0.9 <= parts["output"] <= 1000.0
    assert row["voice_to_voice_ms"] == pytest.approx(sum(parts.values()), abs=0.01)
    assert observer.meter.turns[0].out_s > observer.meter.turns[0].reply_audio_s


def test_without_a_device_the_output_stage_is_the_timeline(tmp_path):
    wav = speech_wav(tmp_path / "in.wav", [(0.3, 0.9)], 2.5)
    pipeline = rm.Pipeline.from_manifest(manifest(heard_delay=1, reply_blocks=20),
                                         registry=REGISTRY)
    runner = StreamRunner(pipeline, make_source(wav, FMT), make_sink("null", FMT))
    TurnObserver.attach(runner)
    section = runner.run()["turns"]
    assert section["out_time"] == "timeline"
    assert section["turns"][0]["breakdown_ms"]["output"] == 0.0


def test_an_engine_barge_in_on_a_device_ends_the_reply_with_the_block_playing(jack_device,  # noqa: F811
                                                                             tmp_path):
    # the reply (2 s, queued on the device) is cut when the user speaks again at 2.2 s
    wav = speech_wav(tmp_path / "in.wav", [(0.3, 0.9), (2.2, 2.9)], 5.0)
    pipeline = rm.Pipeline.from_manifest(manifest(heard_delay=1, reply_blocks=100),
                                         registry=REGISTRY)
    runner = StreamRunner(pipeline, make_source(wav, FMT),
                          make_sink(f"device:{jack_device.index}", FMT))
    observer = TurnObserver.attach(runner)
    stats = runner.run()
    assert "barge_in" in stats, sorted(stats)    # a graph with a VAD and reply nodes
    assert stats["barge_in"]["interrupts"] == 1 == stats["turns"]["interruptions"]
    first = observer.meter.turns[0]
    # the rest of the 2 s reply was dropped: the bot stopped one block after the push that
    # interrupted it (its speech_start), not when the reply would have ended (~1.2 s later)
    assert first.decided_stop_ms() == pytest.approx(PERIOD * 1e3, abs=1.0)
    # measured from the user's speech start (2.2 s), the figure adds the time the detector
    # took to be sure: still far from the ~1.2 s the uncut reply would have played on
    assert first.decided_stop_ms() < first.barge_in_stop_ms() < 500
