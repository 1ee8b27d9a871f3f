"""A node on `executor: process` behaves like the same node in the engine's process."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from remotemedia import Pipeline, RuntimeData
from remotemedia.engine.data import NumpyData
from remotemedia.engine.data import JsonData, TextData  # noqa: E402
from remotemedia.ipc import ProcessNode, WorkerStartError, channel

from .conftest import inline, manifest

ALLOW = ["tests.ipc.nodes"]
MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"


def _frames(kind: str, n: int = 1000) -> list:
    rng = np.random.default_rng(1)
    frames = []
    for i in range(n):
        if kind == "float32 mono":
            a = rng.standard_normal(960).astype(np.float32)
        elif kind == "float32 (960, 2)":
            a = rng.standard_normal((960, 2)).astype(np.float32)
        elif kind == "int16":
            a = rng.integers(-32768, 32767, 960, dtype=np.int16)
        else:  # a non-contiguous view: the right channel of an interleaved block
            a = rng.standard_normal((960, 2)).astype(np.float32)[:, 1]
            assert not a.flags.c_contiguous
        frames.append(RuntimeData.Numpy(a, sample_rate=48000, pts=i * 960, seq=i,
                                        metadata={"i": i}))
    return frames


def _run(m: dict, frames: list, **session_kw) -> tuple[list, dict]:
    with Pipeline.from_manifest(m, allow_import=ALLOW).session(**session_kw) as session:
        outputs = []
        for frame in frames:
            outputs += session.push(frame)
        outputs += session.end_of_stream()
        stats = session.stats()
    return outputs, stats


@pytest.mark.parametrize("kind", ["float32 mono", "float32 (960, 2)", "int16",
                                  "non-contiguous view"])
@pytest.mark.parametrize("node_type", ["PassThrough", "tests.ipc.nodes:Affine"])
def test_outputs_equal_in_process_outputs(kind, node_type):
    frames = _frames(kind)
    m = manifest(node_type)
    got, stats = _run(m, frames)
    want, _ = _run(inline(m), frames)
    assert len(got) == len(want) == len(frames) + 1          # + the end_of_stream event
    for g, w in zip(got[:-1], want[:-1]):
        assert g.array.dtype == w.array.dtype and g.array.shape == w.array.shape
        np.testing.assert_array_equal(g.array, w.array)
        assert (g.sample_rate, g.pts, g.seq) == (w.sample_rate, w.pts, w.seq)
        assert dict(g.metadata) == dict(w.metadata)
        if node_type == "PassThrough":
            assert g.array.strides == w.array.strides        # the view's strides, exactly
    assert got[-1] == RuntimeData.Control("end_of_stream")
    assert stats["serialization_events"] == 0 and stats["drops"] == 0
    assert stats["frames_out"] == len(frames)


def test_ten_thousand_frames_no_serialization_and_two_io_copies_each():
    frame = np.linspace(-1, 1, 960, dtype=np.float32)
    with Pipeline.from_manifest(manifest("PassThrough")).session(
            strict_serialization=True) as session:
        received = 0   # outputs are dropped as they arrive, so none is held in shared memory
        for i in range(10_000):
            for out in session.push(RuntimeData.Numpy(frame, seq=i)):
                assert out.seq == received      # in order, none lost
                received += 1
        received += sum(1 for o in session.flush() if isinstance(o, NumpyData))
        stats = session.stats()
    assert received == 10_000
    assert stats["serialization_events"] == 0
    assert stats["copies"]["io"] == 2 * 10_000
    assert stats["copies"]["engine"] == 0 and stats["copies"]["cow"] == 0
    assert stats["drops"] == 0 and stats["errors"] == 0
    assert stats["frames_in"] == stats["frames_out"] == 10_000


def test_serialization_inside_the_worker_is_counted():
    frames = _frames("float32 mono", 5)
    _, stats = _run(manifest("tests.ipc.nodes:Pickler"), frames)
    assert stats["serialization_events"] == 5


def test_both_sides_see_read_only_views_onto_shared_memory():
    frame = RuntimeData.Numpy(np.arange(1920, dtype=np.float32)[::2], seq=0,
                              metadata={"who": "engine"})
    with Pipeline.from_manifest(manifest("tests.ipc.nodes:Inspect"),
                                allow_import=ALLOW).session() as session:
        worker_pid = session.node("proc").pid
        report, out = session.push(frame)
        text, json_out = session.push(RuntimeData.Json({"x": 1}))
    # Inside the worker: a read-only view whose memory is the request sample, same strides.
    seen = dict(report.value)
    assert seen.pop("base").startswith("c_ubyte_Array_")    # the sample's own bytes
    assert seen == {"pid": worker_pid, "writeable": False, "strides": [8],
                    "metadata": {"who": "engine"}}
    assert worker_pid != os.getpid()
    # Back in the engine: a read-only view onto the worker's reply sample, no further copy.
    assert not out.array.flags.writeable
    assert type(out.array.base.base).__name__.startswith("c_ubyte_Array")
    np.testing.assert_array_equal(out.array, frame.array)
    # A writer gets its own copy: shared memory is never written.
    assert not np.shares_memory(out.writable(), out.array)
    assert text == TextData("saw json") and json_out == JsonData({"x": 1})


def test_multiple_outputs_and_flush_cross_like_in_process():
    frames = _frames("float32 (960, 2)", 50)
    m = manifest("Reframe", params={"size": 400})
    got, stats = _run(m, frames)
    want, _ = _run(inline(m), frames)
    assert len(got) == len(want) == 121          # 48000 samples in 400s, the rest, and eos
    for g, w in zip(got[:-1], want[:-1]):
        np.testing.assert_array_equal(g.array, w.array)
        assert (g.pts, g.seq) == (w.pts, w.seq)
    assert stats["serialization_events"] == 0


def test_json_events_cross_like_in_process():
    frames = _frames("float32 mono", 20)
    m = manifest("LevelMeter", params={"every": 2})
    got, _ = _run(m, frames)
    want, _ = _run(inline(m), frames)
    assert [type(o) for o in got] == [type(o) for o in want]
    readings = [o.value for o in got if isinstance(o, JsonData)]
    assert readings == [o.value for o in want if isinstance(o, JsonData)] and len(readings) == 10


def test_a_node_that_keeps_its_inputs_gets_copies_counted():
    frames = _frames("float32 mono", 30)
    m = manifest("tests.ipc.nodes:Hold")
    got, stats = _run(m, frames)
    assert [o.seq for o in got[:-1]] == list(range(30))   # all released by end_of_stream
    for g, f in zip(got, frames):
        np.testing.assert_array_equal(g.array, f.array)
    # Engine -> worker, worker's own copy (it keeps the frame), worker -> engine.
    assert stats["copies"]["io"] == 3 * 30


def test_worker_is_ready_before_the_first_frame_and_gone_after_close():
    with Pipeline.from_manifest(manifest("PassThrough")).session() as session:
        node = session.node("proc")
        assert isinstance(node, ProcessNode) and type(node).node_type == "PassThrough"
        pid = node.pid
        assert Path(f"/proc/{pid}").exists()
        # Ready means answered: the first frame comes back in the same push.
        out = session.push(np.ones(960, dtype=np.float32))
        assert len(out) == 1
        prefix = node.worker.prefix
        files = channel.domain_files(prefix)
        assert files
        for path in files:
            if path.is_file():   # readable by this user only
                assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
    assert node.pid is None and not Path(f"/proc/{pid}").exists()
    assert channel.domain_files(prefix) == []


def test_service_names_are_unguessable_and_per_worker():
    with Pipeline.from_manifest(manifest("PassThrough")).session() as a, \
            Pipeline.from_manifest(manifest("PassThrough")).session() as b:
        pa, pb = a.node("proc").worker.prefix, b.node("proc").worker.prefix
        assert pa != pb
        token = a.node("proc").worker.token
    assert len(token) == 32 and int(token, 16) >= 0    # 128 random bits name the services
    assert pa.startswith(f"rmx{os.getpid()}x{token[:16]}_")
    names = channel.service_names(token, "proc")
    assert all(token in name for name in names.values())


def test_the_process_manifest_runs(manifests_dir):
    pipeline = Pipeline.from_manifest(manifests_dir / "process.yaml")
    assert any(spec.executor == "process" for spec in pipeline.manifest.nodes)
    frames = _frames("float32 mono", 100)
    with pipeline.session() as session:
        outs = [o for f in frames for o in session.push(f)] + session.end_of_stream()
        stats = session.stats()
    audio = [o for o in outs if isinstance(o, NumpyData)]
    assert len(audio) == 100 and stats["serialization_events"] == 0


def test_a_node_whose_setup_fails_names_itself_and_leaves_nothing():
    with pytest.raises(Exception) as info:
        Pipeline.from_manifest(manifest("tests.ipc.nodes:BadSetup"), allow_import=ALLOW
                               ).session()
    text = str(info.value)
    assert "RuntimeError: no model file here" in text
    assert isinstance(info.value, WorkerStartError) or isinstance(info.value.__cause__,
                                                                  WorkerStartError)


def test_outputs_kept_beyond_the_borrow_limit_stay_intact_and_their_copies_count():
    n = 100
    frames = [RuntimeData.Numpy(np.full(960, i, dtype=np.float32), seq=i) for i in range(n)]
    with Pipeline.from_manifest(manifest("PassThrough")).session() as session:
        kept = [o for f in frames for o in session.push(f)]   # all held: none is let go
        stats = session.stats()
    assert [o.seq for o in kept] == list(range(n))
    for i, out in enumerate(kept):      # no sample was reused under a view still held
        assert np.all(out.array == i)
    held_as_views = channel.REP_BORROW - 1
    assert stats["copies"]["io"] == 2 * n + (n - held_as_views)


def test_frames_larger_than_the_pool_was_sized_for_still_cross():
    # The pools are sized for the manifest's block; a bigger frame grows them (power of two).
    frames = [RuntimeData.Numpy(np.random.default_rng(i).standard_normal((48000, 2)), seq=i)
              for i in range(3)] + [RuntimeData.Numpy(np.ones(960, dtype=np.float32), seq=3)]
    with Pipeline.from_manifest(manifest("PassThrough")).session() as session:
        for frame in frames:
            (out,) = session.push(frame)
            np.testing.assert_array_equal(out.array, frame.array)
            assert out.array.dtype == frame.array.dtype


def test_without_busy_polling_every_answer_still_arrives(monkeypatch):
    monkeypatch.setenv("REMOTEMEDIA_IPC_SPIN_US", "0")     # event listeners only
    with Pipeline.from_manifest(manifest("PassThrough")).session() as session:
        seqs = [o.seq for i in range(300)
                for o in session.push(RuntimeData.Numpy(np.zeros(960, np.float32), seq=i))]
        seqs += [o.seq for o in session.flush() if isinstance(o, NumpyData)]
    assert seqs == list(range(300))
