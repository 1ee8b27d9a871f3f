"""Raw f32 LE PCM: exact bytes in and out, short last block, interruptible reads."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from remotemedia.engine.data import NumpyData
from remotemedia.engine.errors import RemoteMediaError, UsageError
from remotemedia.engine.counters import Counters
from remotemedia.engine.node import AudioFormat
from remotemedia.io.raw import RawSink, RawSource

MONO = AudioFormat(48000, 1, 960)
STEREO = AudioFormat(48000, 2, 960)


class FakeSession:
    def __init__(self):
        self.counters = Counters()


def test_source_reads_a_file_in_blocks_with_a_short_tail(tmp_path):
    x = np.arange(2 * 960 * 2 + 10, dtype="<f4")            # stereo: 2 blocks + 5 frames
    path = tmp_path / "in.f32"
    path.write_bytes(x.tobytes())
    source = RawSource(str(path), STEREO)
    with source:
        blocks = []
        while (block := source.read()) is not None:
            blocks.append(block)
    assert [b.shape for b in blocks] == [(960, 2), (960, 2), (5, 2)]
    np.testing.assert_array_equal(np.concatenate(blocks).ravel(), x)
    assert blocks[0].flags.writeable


def test_source_drops_a_partial_sample_frame_and_says_so(tmp_path, capsys):
    path = tmp_path / "odd.f32"
    path.write_bytes(np.ones(3, "<f4").tobytes() + b"\x00\x01")
    source = RawSource(str(path), MONO)
    with source:
        block = source.read()
        assert source.read() is None
    assert block.shape == (3,)
    assert "dropped the last 2 byte" in capsys.readouterr().err


def test_interrupt_ends_a_read_blocked_on_a_pipe(monkeypatch):
    r, w = os.pipe()
    os.write(w, np.ones(100, "<f4").tobytes())              # less than one block
    with os.fdopen(r, "rb", buffering=0) as stdin:
        monkeypatch.setattr("sys.stdin", stdin)
        source = RawSource("-", MONO)
        source.open()
        threading.Timer(0.3, source.interrupt).start()
        t0 = time.monotonic()
        block = source.read()
        elapsed = time.monotonic() - t0
        source.close()
    os.close(w)
    assert block.shape == (100,)                            # what had arrived is kept
    assert elapsed < 5.0


def test_sink_writes_the_frames_own_bytes(tmp_path):
    path = tmp_path / "out.f32"
    x = np.linspace(-1, 1, 960, dtype="<f4")
    sink = RawSink(str(path), MONO)
    session = FakeSession()
    sink.attach(session)
    with sink:
        sink.write(NumpyData(x))
        sink.write(NumpyData(x.astype(np.float64)))          # converted once: an io copy
    assert path.read_bytes() == x.tobytes() * 2
    assert session.counters.io == 1


def test_sink_refuses_other_channel_counts(tmp_path):
    with RawSink(str(tmp_path / "o.f32"), MONO) as sink:
        with pytest.raises(RemoteMediaError, match="1 channel"):
            sink.write(NumpyData(np.zeros((960, 2), np.float32)))


def test_sink_reports_a_closed_pipe(monkeypatch):
    r, w = os.pipe()
    os.close(r)
    with os.fdopen(w, "wb", buffering=0) as stdout:
        monkeypatch.setattr("sys.stdout", stdout)
        sink = RawSink("-", MONO)
        sink.open()
        with pytest.raises(RemoteMediaError, match="closed the pipe"):
            sink.write(NumpyData(np.zeros(960, np.float32)))


def test_missing_raw_input_file(tmp_path):
    with pytest.raises(UsageError, match="not found"):
        RawSource(str(tmp_path / "none.f32"), MONO)
