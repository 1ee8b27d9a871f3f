"""The serialization counter fires for every pickler and for the project's own codecs."""

from __future__ import annotations

import copyreg
import pickle
from multiprocessing.reduction import ForkingPickler

import cloudpickle
import numpy as np
import pytest

import remotemedia as rm
from remotemedia import SerializationError, node_function
from remotemedia.engine.serialization import record_encode


@node_function("PickleIt", description="test node: pickles its input, as a careless node might")
def pickle_it(frame):
    pickle.dumps(frame.array)
    return frame


def pipeline(node_type: str = "PickleIt") -> rm.Pipeline:
    return rm.Pipeline.from_manifest({
        "version": "v1",
        "nodes": [{"id": "n", "node_type": node_type}],
        "connections": [{"from": "input", "to": "n"}, {"from": "n", "to": "output"}],
    })


def test_a_node_that_pickles_makes_exactly_one_event():
    with pipeline().session() as session:
        session.push(np.zeros(960, np.float32))
        assert session.stats()["serialization_events"] == 1
        session.push(np.zeros(960, np.float32))
        assert session.stats()["serialization_events"] == 2


def test_a_clean_pipeline_makes_none():
    with pipeline("PassThrough").session() as session:
        for _ in range(50):
            session.push(np.zeros(960, np.float32))
        assert session.stats()["serialization_events"] == 0


def test_strict_mode_raises_at_the_first_event_naming_the_node():
    with pipeline().session(strict_serialization=True) as session:
        with pytest.raises(rm.NodeError, match="node 'n' failed: SerializationError") as info:
            session.push(np.zeros(960, np.float32))
        assert isinstance(info.value.__cause__, SerializationError)
        with pytest.raises(rm.PipelineBroken):
            session.push(np.zeros(960, np.float32))


@pytest.mark.parametrize("dump", [
    lambda a: pickle.dumps(a, protocol=2),
    lambda a: pickle.dumps(a, protocol=5),
    lambda a: ForkingPickler.dumps(a),
    lambda a: cloudpickle.dumps(a),
    lambda a: pickle.dumps({"nested": [a]}),
], ids=["pickle-2", "pickle-5", "multiprocessing", "cloudpickle", "nested"])
def test_every_pickler_is_seen_and_round_trips(dump):
    arr = np.arange(10, dtype=np.int16)
    with pipeline("PassThrough").session() as session:
        blob = dump(arr)
        assert session.stats()["serialization_events"] == 1
    restored = pickle.loads(blob)
    if isinstance(restored, dict):
        restored = restored["nested"][0]
    np.testing.assert_array_equal(restored, arr)
    assert restored.dtype == arr.dtype


def test_the_watch_is_removed_when_the_last_session_closes():
    assert np.ndarray not in copyreg.dispatch_table
    outer = pipeline("PassThrough").session()
    inner = pipeline("PassThrough").session()
    pickle.dumps(np.zeros(3))
    inner.close()
    pickle.dumps(np.zeros(3))           # outer still open: counted there only
    outer.close()
    assert np.ndarray not in copyreg.dispatch_table
    assert inner.stats()["serialization_events"] == 1
    assert outer.stats()["serialization_events"] == 2
    pickle.dumps(np.zeros(3))           # nothing open: nobody counts
    assert outer.stats()["serialization_events"] == 2


def test_project_codecs_count_their_encodes():
    with pipeline("PassThrough").session() as session:
        record_encode(np.zeros(4), "json")
        assert session.stats()["serialization_events"] == 1
    with pipeline("PassThrough").session(strict_serialization=True):
        with pytest.raises(SerializationError, match="encoded by the ipc codec"):
            record_encode(np.zeros(4), "ipc")


def test_pickling_a_frame_counts_its_array():
    frame = rm.RuntimeData.Numpy(np.ones(4, np.float32), sample_rate=48000, pts=7)
    with pipeline("PassThrough").session() as session:
        back = pickle.loads(pickle.dumps(frame))
        assert session.stats()["serialization_events"] == 1
    assert back.pts == 7 and back.sample_rate == 48000
    np.testing.assert_array_equal(back.array, frame.array)
