"""The clocked virtual device: what `default` means when there is no sound card.

It stands in for an audio interface: its input delivers silence (or any generated signal it is
given) and its output consumes frames and discards them (as `null` does), both at the pace of
the stream's clock.
Both ends are `realtime`, so a stream using either runs in real time by default, paced by the
runner's clock: frame N is released at start + N x block duration against a monotonic clock,
so it does not drift. Give the runner a SimulatedClock and the same device runs in simulated
time, minutes of audio in seconds, deterministically; `--fast` does the same from the CLI.

It is not `clocked` in the Source/Sink sense (it does not wait by itself): one clock, the
runner's, paces the whole stream, so there is no second timeline to drift against.
"""

from __future__ import annotations

import numpy as np

from ..engine.node import AudioFormat
from .base import Sink, Source
from .synth import SilenceSource


class VirtualSource(Source):
    """The virtual device's input: silence, unless given another source to play."""

    realtime = True
    clocked = False
    endless = True

    def __init__(self, fmt: AudioFormat, signal: Source | None = None):
        super().__init__(fmt)
        self.signal = signal if signal is not None else SilenceSource(fmt)
        self.description = f"virtual device ({self.signal.description})"

    def open(self) -> None:
        """Open the generator it plays, if any."""
        self.signal.open()

    def read(self) -> np.ndarray | None:
        """The next block of its generator, or silence: float32 (block_size,) or (block_size,
        channels); never ends."""
        return self.signal.read()

    def interrupt(self) -> None:
        """Pass a stop on to the generator."""
        interrupt = getattr(self.signal, "interrupt", None)
        if interrupt is not None:
            interrupt()

    def close(self) -> None:
        """Close the generator. Safe twice."""
        self.signal.close()


class NullSink(Sink):
    """`null`: consumes every frame as fast as it comes and keeps only counts."""

    description = "null"

    def __init__(self, fmt: AudioFormat):
        super().__init__(fmt)
        self.frames = 0
        self.samples = 0

    def write(self, frame) -> None:
        """Count the frame and its samples; keep nothing."""
        self.frames += 1
        self.samples += frame.array.shape[0] if frame.array.ndim else 1


class VirtualSink(NullSink):
    """The virtual device's output: discards like `null`, but it is a device, so a stream
    that plays to it runs in real time."""

    realtime = True
    description = "virtual device"
    # A device's converter clips: count what a real one would have had to repair.
    clips_to_full_scale = True

    def write(self, frame) -> None:
        """Count what a device's converter would have had to repair (NaN, over full scale), then
        discard like null."""
        self.repair(frame.array)
        super().write(frame)
