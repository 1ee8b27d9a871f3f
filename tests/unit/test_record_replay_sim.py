"""Recording and replay in simulated time: what a recording holds, that a replay gives back the
same output and events, that device xruns and drops come back where they happened, that the
recorder never waits on its writer (and counts what it could not keep), arrival timelines, and
--compare. The run recorded from the real JACK server is tests/streaming/test_record_replay.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from remotemedia.engine.errors import UsageError
from remotemedia.engine.node import AudioFormat
from remotemedia.engine.session import Pipeline
from remotemedia.io.base import Source
from remotemedia.io.spec import make_sink, make_source
from remotemedia.record import FILES, TIMELINE_COLUMNS, Recorder, Recording
from remotemedia.replay import (ArrivalClock, audio_difference, compare_results,
                                event_differences, parse_arrivals, replay)
from remotemedia.runner import StreamRunner
from tests.conftest import MANIFESTS

METERED = {
    "version": "v1", "metadata": {"name": "gain-meter-out"},
    "audio": {"sample_rate": 48000, "block_size": 960, "channels": 1},
    "nodes": [{"id": "gain", "node_type": "Gain", "params": {"db": -3.0}},
              {"id": "meter", "node_type": "LevelMeter", "params": {"every": 5}}],
    "connections": [{"from": "input", "to": "gain"}, {"from": "gain", "to": "meter"},
                    {"from": "meter", "to": "output"}],
}


def record(tmp_path, manifest=METERED, input_spec="noise", seconds=2.0, source=None,
           ring_blocks=None, name="rec"):
    pipeline = Pipeline.from_manifest(manifest)
    m = pipeline.manifest
    source = source or make_source(input_spec, m.audio)
    runner = StreamRunner(pipeline, source, make_sink("null", m.output_format),
                          duration=seconds)
    kwargs = {} if ring_blocks is None else {"ring_blocks": ring_blocks}
    rec = Recorder(tmp_path / name, manifest_document=manifest if isinstance(manifest, dict)
                   else None, **kwargs).bind(runner)
    runner.observers.join(rec)
    rec.open()
    stats = runner.run()
    summary = rec.close(stats)
    return tmp_path / name, stats, summary


def test_a_recording_holds_every_file_and_one_row_per_block(tmp_path):
    path, stats, summary = record(tmp_path)
    assert all((path / f).exists() for f in FILES)
    rec = Recording(path)
    assert rec.blocks == stats["frames_in"] == 100
    assert list(rec.timeline["seq"]) == list(range(100))
    assert list(rec.timeline["pts"]) == [960 * i for i in range(100)]
    # simulated time: one period per block
    assert np.allclose(rec.timeline["arrival_us"], np.arange(100) * 20000.0)
    assert np.isfinite(rec.timeline["engine_us"]).all()
    assert rec.node_ids == ["gain", "meter"]
    assert rec.timeline["events_out"].sum() == 20 == len(rec.events) == stats["events_out"]
    assert summary["blocks_recorded"] == 100 and summary["blocks_dropped"] == 0
    assert summary["events"] == 20 and summary["outputs_recorded"] == 100
    assert summary["cost_us"]["p50"] > 0
    report = json.loads((path / "report.json").read_text())
    assert report["recording"]["blocks_recorded"] == 100
    assert rec.manifest["audio"] == {"sample_rate": 48000, "block_size": 960, "channels": 1}
    assert rec.versions["remotemedia"] and rec.versions["libsndfile"]


def test_the_input_wav_is_the_input_bit_for_bit_and_rf64_capable(tmp_path):
    wav = tmp_path / "in.wav"
    x = np.random.default_rng(3).uniform(-1, 1, 48000 + 123).astype(np.float32)
    sf.write(wav, x, 48000, subtype="FLOAT")
    path, _, _ = record(tmp_path, input_spec=f"file:{wav}", seconds=10)
    data, rate = sf.read(path / "input.wav", dtype="float32")
    assert rate == 48000 and np.array_equal(data, x)
    info = sf.info(str(path / "input.wav"))
    assert info.subtype == "FLOAT"
    # written as RF64 with libsndfile's auto-downgrade: plain RIFF while it is small
    assert (path / "input.wav").read_bytes()[:4] == b"RIFF"
    assert Recording(path).timeline["samples"][-1] == 123


def test_replay_gives_back_the_same_output_and_events_bit_for_bit(tmp_path):
    path, stats, _ = record(tmp_path)
    result = replay(path)
    recorded, rate = Recording(path).output()
    assert rate == result.rate
    assert result.output.tobytes() == recorded.tobytes()
    assert result.events == Recording(path).events and len(result.events) == 20
    assert result.stats["frames_in"] == stats["frames_in"]
    assert result.speed > 1.0


class FakeDeviceStream:
    """The few io/devices.py DeviceStream attributes a recorder reads, for a source that
    plays a device with known xruns and drops (a unit test of the bookkeeping; the real
    device run is in tests/streaming)."""

    ring = None
    outq = None

    def __init__(self):
        self.skipped = 0
        self.output_dropped = 0
        self.odd_blocks = 0


class GlitchySource(Source):
    """Noise blocks; before block 10 the 'device' overflowed twice and refused a block, before
    block 30 the output underflowed once."""

    def __init__(self, fmt):
        super().__init__(fmt)
        self.stream = FakeDeviceStream()
        self.n = 0
        self.rng = np.random.default_rng(5)

    def attach(self, session):
        self.counters = session.counters

    def read(self):
        if self.n == 10:
            self.counters.input_overflow += 2
            self.stream.skipped += 1
            self.counters.drops += 1
            self.counters.frames_in += 1
        if self.n == 30:
            self.counters.output_underflow += 1
        self.n += 1
        return self.rng.uniform(-0.5, 0.5, 960).astype(np.float32)


def test_xruns_and_drops_come_back_where_they_happened(tmp_path):
    fmt = AudioFormat(48000, 960, 1)
    path, stats, _ = record(tmp_path, source=GlitchySource(fmt), seconds=1.0)
    assert stats["xruns"] == {"input_overflow": 2, "output_underflow": 1}
    assert stats["drops"] == 1
    rec = Recording(path)
    assert int(np.flatnonzero(np.diff(rec.timeline["input_overflow"]))[0]) + 1 == 10
    assert int(np.flatnonzero(np.diff(rec.timeline["device_drops"]))[0]) + 1 == 10
    from remotemedia.trace import Tracer
    tracer = Tracer()
    result = replay(path, tracer=tracer)
    assert result.stats["xruns"] == stats["xruns"]
    assert result.stats["drops"] == stats["drops"]
    assert result.stats["frames_in"] == stats["frames_in"]
    marks = {(name, args["seq"]) for _, name, _, _, args in tracer.instants}
    assert ("input_overflow", 10) in marks and ("drop", 10) in marks
    assert ("output_underflow", 30) in marks


def test_the_recorder_never_waits_for_its_writer_and_counts_what_it_could_not_keep(tmp_path):
    pipeline = Pipeline.from_manifest(MANIFESTS / "passthrough.yaml")
    m = pipeline.manifest
    runner = StreamRunner(pipeline, make_source("noise", m.audio),
                          make_sink("null", m.output_format), duration=0.4)  # 20 blocks
    rec = Recorder(tmp_path / "r", ring_blocks=4).bind(runner)
    rec.wait_when_full = False   # as in a real-time run, where a block cannot wait
    runner.observers.join(rec)
    rec.open()
    gate = threading.Event()
    write = rec._in_file.write

    def stuck_write(data):
        assert gate.wait(30), "the test never released the writer"
        return write(data)

    rec._in_file.write = stuck_write   # the disk is stuck: the writer cannot drain
    stats = runner.run()               # ... and the run still ends
    gate.set()
    summary = rec.close(stats)
    assert summary["blocks_recorded"] == 4 and summary["blocks_dropped"] == 16
    # a block is kept whole or not at all: the outputs of the 16 blocks whose input could not
    # be kept are not recorded either (they are counted once, in blocks_dropped), so
    # output.wav stays aligned with input.wav
    assert summary["outputs_recorded"] == 4 and summary["outputs_dropped"] == 0
    rec_read = Recording(tmp_path / "r")
    assert list(rec_read.timeline["seq"]) == [0, 1, 2, 3]
    assert rec_read.missing_blocks == 16
    cli = subprocess.run([sys.executable, "-m", "remotemedia", "replay", str(tmp_path / "r"),
                          "--json"], capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout.strip().splitlines()[-1])["missing_blocks"] == 16
    assert "misses 16 block(s)" in cli.stderr


def test_a_run_that_is_not_real_time_waits_for_the_writer_and_keeps_everything(tmp_path):
    pipeline = Pipeline.from_manifest(MANIFESTS / "passthrough.yaml")
    m = pipeline.manifest
    runner = StreamRunner(pipeline, make_source("noise", m.audio),
                          make_sink("null", m.output_format), duration=4.0)  # 200 blocks
    rec = Recorder(tmp_path / "r", ring_blocks=4).bind(runner)
    assert rec.wait_when_full and not runner.realtime
    runner.observers.join(rec)
    rec.open()
    summary = rec.close(runner.run())
    assert summary["blocks_recorded"] == 200 and summary["blocks_dropped"] == 0
    assert summary["outputs_recorded"] == 200 and summary["outputs_dropped"] == 0
    recorded = Recording(tmp_path / "r").output()[0]
    assert replay(tmp_path / "r").output.tobytes() == recorded.tobytes()


def test_outputs_of_another_channel_count_are_counted_not_written(tmp_path):
    pipeline = Pipeline.from_manifest(MANIFESTS / "passthrough.yaml")
    m = pipeline.manifest
    runner = StreamRunner(pipeline, make_source("noise", m.audio),
                          make_sink("null", m.output_format), duration=0.1)
    rec = Recorder(tmp_path / "r").bind(runner)
    rec.out_channels = 2   # as if the manifest's output format said stereo
    rec._obuf = np.zeros((rec._ocap, 2), np.float32)
    runner.observers.join(rec)
    rec.open()
    summary = rec.close(runner.run())
    assert summary["outputs_mismatched"] == 5 and summary["outputs_recorded"] == 0


def test_a_directory_that_holds_a_recording_is_refused(tmp_path):
    record(tmp_path)
    with pytest.raises(UsageError, match="already holds a recording"):
        Recorder(tmp_path / "rec")
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="not a directory"):
        Recorder(tmp_path / "file")
    with pytest.raises(UsageError, match="input.wav is missing"):
        Recording(tmp_path)


# -- arrivals ------------------------------------------------------------------------------

def test_arrivals_in_the_upstream_sample_index_form(tmp_path):
    f = tmp_path / "a.txt"
    # chunks of 480 samples: block k is complete with the chunk holding sample 960k + 959
    f.write_text("0: 1000\n480: 12000\n960: 25000\n1440: 41000\n# a comment\n\n")
    arr = parse_arrivals(f, 960, 48000)
    assert list(arr * 1e6) == pytest.approx([12000, 41000])


def test_arrivals_by_block_fill_in_unlisted_blocks(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("b0: 0\nb2: 45000\nb3: 61000\n")
    assert list(parse_arrivals(f, 960, 48000) * 1e6) == pytest.approx([0, 45000, 45000, 61000])


@pytest.mark.parametrize("text, message", [
    ("0 1000\n", "line 1: expected 'INDEX: MICROSECONDS'"),
    ("0: 1000\n960: 500\n", "line 2: arrival 500 us is earlier"),
    ("0: nan\n", "line 1: arrival nan us is not a finite time"),
    ("b0: 0\n960: 10\n", "mixes block"),
    ("# nothing\n", "lists no arrivals"),
])
def test_bad_arrivals_files_name_the_line(tmp_path, text, message):
    f = tmp_path / "a.txt"
    f.write_text(text)
    with pytest.raises(UsageError, match=message):
        parse_arrivals(f, 960, 48000)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 40000), min_size=1, max_size=30))
def test_arrival_clock_releases_each_block_at_its_time_and_reports_lateness(gaps):
    times = np.cumsum(gaps) / 1e6
    clock = ArrivalClock(times, 0.02)
    clock.start()
    for n, t in enumerate(times):
        late = clock.wait_for_frame(n)
        assert clock.now() == pytest.approx(max(times[:n + 1]))
        assert late == pytest.approx(max(0.0, t - n * 0.02))
    # past the table: one period after the last
    clock.wait_for_frame(len(times))
    assert clock.now() == pytest.approx(times[-1] + 0.02)


def test_stream_with_arrivals_records_them_as_the_timeline(tmp_path):
    wav = tmp_path / "in.wav"
    sf.write(wav, np.zeros(960 * 5, np.float32), 48000, subtype="FLOAT")
    arrivals = tmp_path / "arr.txt"
    arrivals.write_text("0: 0\n960: 30000\n1920: 35000\n2880: 90000\n3840: 95000\n")
    out = subprocess.run([sys.executable, "-m", "remotemedia", "stream", "-m",
                          str(MANIFESTS / "passthrough.yaml"), "-i", f"file:{wav}", "-o", "null",
                          "--arrivals", str(arrivals), "--record", str(tmp_path / "r")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    t = Recording(tmp_path / "r").timeline
    assert list(t["arrival_us"]) == pytest.approx([0, 30000, 35000, 90000, 95000])
    # lateness against n x 20 ms
    assert list(t["lateness_us"]) == pytest.approx([0, 10000, 0, 30000, 15000])


@pytest.mark.parametrize("args, message", [
    (["--arrivals", "/nonexistent/a.txt"], "--arrivals: cannot read"),
    (["--record", "/proc/version"], "--record: /proc/version exists and is not a directory"),
    (["--trace", "/nonexistent/dir/t.json"], "--trace: directory /nonexistent/dir does not"),
])
def test_bad_record_trace_arrivals_arguments_exit_2_with_one_line(args, message):
    out = subprocess.run([sys.executable, "-m", "remotemedia", "stream", "-m",
                          str(MANIFESTS / "passthrough.yaml"), "-i", "sine", "-o", "null",
                          "-d", "0.1", *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_replay_of_something_that_is_not_a_recording_exits_2(tmp_path):
    out = subprocess.run([sys.executable, "-m", "remotemedia", "replay", str(tmp_path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "not a recording" in out.stderr
    assert "Traceback" not in out.stderr


# -- compare -------------------------------------------------------------------------------

def test_compare_shows_counters_nodes_events_and_the_output_difference(tmp_path):
    path, _, _ = record(tmp_path)
    louder = json.loads(json.dumps(METERED))
    louder["nodes"][0]["params"]["db"] = 0.0
    a, b = replay(path), replay(path, manifest=louder)
    cmp = compare_results(a, b)
    assert cmp["counters"]["frames_out"] == [100, 100]
    assert set(cmp["nodes"]) == {"gain", "meter"}
    assert cmp["events"]["count"] == 20   # every level reading differs by 3 dB
    out = cmp["output"]
    assert not out["identical"] and out["first_difference"] == 0
    # b = a * 10^(3/20): the difference is a x (10^(3/20) - 1): SNR = -20 log10(0.4125...)
    assert out["snr_db"] == pytest.approx(-20 * np.log10(10 ** (3 / 20) - 1), abs=0.01)
    cli = subprocess.run([sys.executable, "-m", "remotemedia", "replay", str(path), "--compare",
                          str(MANIFESTS / "gain.yaml"), "--json"],
                         capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0, cli.stderr
    doc = json.loads(cli.stdout.strip().splitlines()[-1])
    assert doc["vs_recording"]["output"]["identical"] is True
    assert doc["vs_recording"]["events"]["count"] == 0
    assert doc["compare"]["events"]["events"] == [20, 0]
    assert "frames_out" in cli.stderr and "<- differs" in cli.stderr


def test_audio_difference_finds_the_first_differing_sample():
    a = np.zeros((100, 1), np.float32)
    b = a.copy()
    b[37, 0] = 0.25
    d = audio_difference(a, b)
    assert d["first_difference"] == 37 and d["peak_difference"] == 0.25
    assert not d["identical"]
    assert audio_difference(a, a.copy())["identical"]
    assert audio_difference(a, a[:50])["first_difference"] == 50
    assert event_differences([{"seq": 1}], [{"seq": 2}, {"seq": 3}])["count"] == 2


def test_timeline_columns_are_documented_in_order(tmp_path):
    path, _, _ = record(tmp_path, seconds=0.1)
    header = (path / "timeline.csv").read_text().splitlines()[0].split(",")
    assert tuple(header[:len(TIMELINE_COLUMNS)]) == TIMELINE_COLUMNS


def test_a_replay_through_a_manifest_of_another_block_size_is_refused(tmp_path):
    path, _, _ = record(tmp_path, seconds=0.1)
    other = json.loads(json.dumps(METERED))
    other["audio"]["block_size"] = 480
    with pytest.raises(UsageError, match="block_size 480, the recording"):
        replay(path, manifest=other)


def test_events_with_non_finite_values_are_recorded_as_strict_json(tmp_path):
    from remotemedia.engine.data import JsonData
    from remotemedia.engine.node import node_function

    @node_function("RecordTestNaNEvent")
    def nan_event(frame):
        return (frame, JsonData({"type": "odd", "value": float("nan")}, pts=frame.pts))

    manifest = {"version": "v1", "audio": METERED["audio"],
                "nodes": [{"id": "n", "node_type": "RecordTestNaNEvent"}],
                "connections": [{"from": "input", "to": "n"}, {"from": "n", "to": "output"}]}
    path, _, _ = record(tmp_path, manifest=manifest, seconds=0.1)
    lines = (path / "events.jsonl").read_text().splitlines()
    assert len(lines) == 5 and "NaN" not in lines[0]
    assert json.loads(lines[0])["event"] == {"type": "odd", "value": None,
                                             "non_finite": ["value"]}
    assert replay(path).events == Recording(path).events


def test_realtime_replay_waits_for_each_recorded_arrival(tmp_path):
    path, _, _ = record(tmp_path, seconds=0.3)       # 15 blocks, arrivals 0 .. 280 ms
    last_arrival = Recording(path).timeline["arrival_us"][-1] / 1e6
    result = replay(path, realtime=True)
    assert result.seconds >= last_arrival            # it cannot end before the last arrival
    assert result.output.tobytes() == Recording(path).output()[0].tobytes()
    assert (Recording(path).timeline["status"] == -1).all()   # no device: no flags


def test_the_manifest_is_kept_as_resolved_with_every_default(tmp_path):
    path, _, _ = record(tmp_path, manifest=MANIFESTS / "meter.yaml", seconds=0.1)
    doc = Recording(path).manifest
    nodes = {n["id"]: n for n in doc["nodes"]}
    assert nodes["meter"]["params"] == {"every": 5, "clip_dbfs": -0.01}
    assert nodes["gain"]["params"]["db"] == -6.0 and nodes["gain"]["on_error"] == "fail"
    assert doc["audio"]["block_size"] == 960
    assert replay(path).output.tobytes() == Recording(path).output()[0].tobytes()


@pytest.mark.parametrize("joined_at", [1, 37])
def test_a_recording_that_joined_mid_run_replays_with_the_runs_seq_and_pts(tmp_path, joined_at):
    """The TUI's R and the monitor's `record` join a run between blocks. The replay must number
    its blocks as the run did (the bug: the runner numbered them from 0, so every event's seq
    differed and `replay` exited 1 on a recording whose audio was bit-exact)."""
    from remotemedia.observers import Observer
    manifest = {**METERED, "nodes": [METERED["nodes"][0],
                                     {"id": "meter", "node_type": "LevelMeter",
                                      "params": {"every": 1}}]}
    pipeline = Pipeline.from_manifest(manifest)
    m = pipeline.manifest
    runner = StreamRunner(pipeline, make_source("noise", m.audio),
                          make_sink("null", m.output_format), duration=2.0)
    rec = Recorder(tmp_path / "rec", manifest_document=manifest).bind(runner)

    class JoinAt(Observer):
        def block_in(self, event):
            if event.seq == joined_at - 1 and rec not in runner.observers.members:
                rec.open()
                runner.observers.join(rec)           # told from the next block on

    runner.observers.join(JoinAt())
    stats = runner.run()
    rec.close(stats)
    recording = Recording(tmp_path / "rec")
    assert int(recording.timeline["seq"][0]) == joined_at
    assert int(recording.timeline["pts"][0]) == 960 * joined_at
    result = replay(tmp_path / "rec")
    assert [e["seq"] for e in result.events] == [e["seq"] for e in recording.events]
    assert event_differences(recording.events, result.events)["count"] == 0
    assert result.output.tobytes() == recording.output()[0].tobytes()
