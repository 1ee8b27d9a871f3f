"""check_source and check_sink (remotemedia.testing): every built-in source and sink passes,
and an end broken in one way fails the rule about that way."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from remotemedia.engine.errors import RemoteMediaError
from remotemedia.engine.node import AudioFormat
from remotemedia.io.base import Sink, Source
from remotemedia.testing import check_sink, check_source
from remotemedia.testing.check_ends import SINK_RULES, SOURCE_RULES

FMT = AudioFormat(48000, 1, 960)
STEREO = AudioFormat(48000, 2, 480)


@pytest.fixture
def inputs(tmp_path):
    """A float WAV and a raw f32le file, each 2.5 blocks long (mono) or 5 (stereo)."""
    signal = (np.arange(2400, dtype=np.float32) / 4800)
    sf.write(tmp_path / "in.wav", signal, 48000, subtype="FLOAT")
    sf.write(tmp_path / "in2.wav", np.stack([signal, -signal], axis=1), 48000, subtype="FLOAT")
    signal.astype("<f4").tofile(tmp_path / "in.f32")
    return tmp_path


@pytest.mark.parametrize("spec", ["sine", "sine:1000:0.1", "chirp", "noise", "silence",
                                  "virtual", "virtual:noise", "file:{}/in.wav",
                                  "raw:{}/in.f32"])
@pytest.mark.parametrize("fmt", [FMT, STEREO], ids=["mono", "stereo"])
def test_every_built_in_source_passes(spec, fmt, inputs):
    if "{}" in spec:
        if fmt.channels == 2:
            spec = spec.replace("in.wav", "in2.wav")
        spec = spec.format(inputs)
    report = check_source(spec, fmt=fmt)
    assert report.ok and report.passed == list(SOURCE_RULES)


def _read_wav(path):
    return lambda: sf.read(path, dtype="float32")[0]


@pytest.mark.parametrize("name,atol", [("null", None), ("virtual", None), ("out.wav", 1e-7),
                                       ("out.wav:PCM_16", 1 / 16384), ("out.wav:PCM_24", 1e-6),
                                       ("out.f32", 0.0)])
@pytest.mark.parametrize("fmt", [FMT, STEREO], ids=["mono", "stereo"])
def test_every_built_in_sink_passes(name, atol, fmt, tmp_path):
    path = tmp_path / name.split(":")[0]
    if name.endswith(".f32"):
        spec = f"raw:{path}"
        read_back = lambda: np.fromfile(path, "<f4").reshape(-1, fmt.channels)  # noqa: E731
    elif atol is None:
        spec, read_back = name, None
    else:
        spec, read_back = f"file:{tmp_path}/{name}", _read_wav(path)
    report = check_sink(spec, fmt=fmt, read_back=read_back, atol=atol or 0.0)
    assert report.ok and report.passed == list(SINK_RULES)


# -- broken sources --------------------------------------------------------------------------------

class GoodSource(Source):
    """Five fresh blocks of its number, then None for ever."""

    description = "good"

    def __init__(self, fmt=FMT):
        super().__init__(fmt)
        self.n = 0
        self.closed = False

    def block(self, n):
        return np.full(self.format.block_size, n, np.float32)

    def read(self):
        if self.closed:
            raise RemoteMediaError("closed")
        if self.n >= 5:
            return None
        self.n += 1
        return self.block(self.n)

    def close(self):
        self.closed = True


class NoRate(GoodSource):
    def __init__(self):
        super().__init__(AudioFormat(None, 1, 960))


class Nameless(GoodSource):
    description = ""


class CloseBeforeOpenFails(GoodSource):
    def open(self):
        self.opened = True

    def close(self):
        if not getattr(self, "opened", False):
            raise RemoteMediaError("never opened")
        super().close()


class TooLong(GoodSource):
    def block(self, n):
        return np.zeros(2 * self.format.block_size, np.float32)


class ShortInTheMiddle(GoodSource):
    def block(self, n):
        return np.zeros(self.format.block_size // (2 if n == 2 else 1), np.float32)


class OneBuffer(GoodSource):
    buffer = np.zeros(960, np.float32)

    def block(self, n):
        self.buffer[:] = n
        return self.buffer


class ComesBack(GoodSource):
    def read(self):
        block = super().read()
        if block is None:
            self.n = 0                       # starts over after saying it ended
        return block


class NeverEnds(GoodSource):
    def read(self):
        return self.block(1)


class ForeignAfterClose(GoodSource):
    def read(self):
        if self.closed:
            raise ValueError("I/O operation on closed file")
        return super().read()


class BadPaths(GoodSource):
    def reads(self):
        return ["in.wav"]


class BadReport(GoodSource):
    def extend_report(self, report):
        raise RemoteMediaError("no report")


@pytest.mark.parametrize("cls,rule", [
    (NoRate, "format"), (Nameless, "description"), (CloseBeforeOpenFails, "lifecycle"),
    (TooLong, "blocks"), (ShortInTheMiddle, "continuity"), (OneBuffer, "handed_over"),
    (ComesBack, "end_of_input"), (NeverEnds, "end_of_input"), (ForeignAfterClose, "errors"),
    (BadPaths, "paths"), (BadReport, "report")])
def test_a_broken_source_fails_its_rule(cls, rule):
    assert check_source(GoodSource).ok
    report = check_source(cls, max_blocks=50, raise_on_failure=False)
    assert rule in {f.split(":")[0] for f in report.failures}, report.failures
    assert rule not in report.passed
    with pytest.raises(AssertionError, match=rf"breaks \d rule\(s\):\n  .*{rule}: "):
        check_source(cls, max_blocks=50)


# -- broken sinks ----------------------------------------------------------------------------------

class GoodSink(Sink):
    """Keeps every repaired frame in memory; `kept()` is what it wrote (all sinks of a class
    write to the same list, as sinks of one path write the same file)."""

    description = "good"
    written: list = []

    def __init__(self, fmt=FMT):
        super().__init__(fmt)
        self.closed = False
        type(self).written = []

    def write(self, frame):
        if self.closed:
            raise RemoteMediaError("closed")
        array = frame.array
        if (array.shape[1] if array.ndim == 2 else 1) != self.format.channels:
            raise RemoteMediaError("wrong channel count")
        self.keep(self.repair(array))

    def keep(self, array):
        type(self).written.append(array.copy())

    def close(self):
        self.closed = True

    @classmethod
    def kept(cls):
        return np.concatenate(cls.written) if cls.written else np.zeros(0, np.float32)


class NoBlocks(GoodSink):
    def __init__(self):
        super().__init__(AudioFormat(48000, 1, 0))


class Touches(GoodSink):
    path = None

    def __init__(self):
        super().__init__()
        self.path.write_text("")              # created before open(): the wrong moment

    def writes(self):
        return [("--output", self.path)]


class RefusesShortBlocks(GoodSink):
    def write(self, frame):
        if frame.array.shape[0] < self.format.block_size:
            raise RemoteMediaError("short block")
        super().write(frame)


class NoRepair(GoodSink):
    def repair(self, array):
        return array                          # NaN and Inf go through as they are


class LosesTheLast(GoodSink):
    def close(self):
        if not self.closed and type(self).written:
            type(self).written.pop()
        super().close()


class ForeignOnWrongChannels(GoodSink):
    def write(self, frame):
        if frame.array.ndim == 2:
            raise IndexError("tuple index out of range")
        super().write(frame)


class SecondCloseFails(GoodSink):
    def close(self):
        if self.closed:
            raise RemoteMediaError("already closed")
        super().close()


class BadWrites(GoodSink):
    def writes(self):
        return [("--output", "a", "b")]


class BadSinkReport(GoodSink):
    def extend_report(self, report):
        raise RemoteMediaError("no report")


class Unnamed(GoodSink):
    description = None


@pytest.mark.parametrize("cls,rule", [
    (NoBlocks, "format"), (Unnamed, "description"), (Touches, "untouched"),
    (RefusesShortBlocks, "writes"), (NoRepair, "repair"), (NoRepair, "kept"),
    (LosesTheLast, "kept"), (ForeignOnWrongChannels, "errors"), (SecondCloseFails, "lifecycle"),
    (BadWrites, "paths"), (BadSinkReport, "report")])
def test_a_broken_sink_fails_its_rule(cls, rule, tmp_path):
    Touches.path = tmp_path / "touched.txt"
    assert check_sink(GoodSink, read_back=GoodSink.kept).ok
    report = check_sink(cls, read_back=cls.kept, raise_on_failure=False)
    assert rule in {f.split(":")[0] for f in report.failures}, report.failures
    assert rule not in report.passed
