"""A source that plays a list of blocks and a sink that keeps what reaches it, for tests."""

from __future__ import annotations

from typing import Iterable

import numpy as np

from ..engine.node import DEFAULT_BLOCK_SIZE, DEFAULT_SAMPLE_RATE, AudioFormat
from ..io.base import Sink, Source


class ListSource(Source):
    """Hands out `blocks` (ndarrays shaped (samples,) or (samples, channels)) one `read()` at
    a time, then None. Each block is copied on the way out unless `transfer=True`, because the
    runner hands blocks over to the engine, which may write them in place; with `transfer` the
    caller promises not to read them again. `arrivals_s` (optional, one per block) are arrival
    times on the run's clock, for timing nodes; see `arrival_s()`."""

    description = "list"

    def __init__(self, blocks: Iterable[np.ndarray], fmt: AudioFormat | None = None, *,
                 transfer: bool = False, arrivals_s: Iterable[float] | None = None):
        self.blocks = [np.asarray(b) for b in blocks]
        if fmt is None:
            first = self.blocks[0] if self.blocks else np.zeros(DEFAULT_BLOCK_SIZE, np.float32)
            fmt = AudioFormat(DEFAULT_SAMPLE_RATE, 1 if first.ndim == 1 else first.shape[1], first.shape[0])
        super().__init__(fmt)
        self.transfer = transfer
        self.arrivals_s = None if arrivals_s is None else list(arrivals_s)
        self.position = 0

    def read(self) -> np.ndarray | None:
        """The next block (a copy unless transfer=True), or None after the last."""
        if self.position >= len(self.blocks):
            return None
        block = self.blocks[self.position]
        self.position += 1
        return block if self.transfer else block.copy()


class CollectingSink(Sink):
    """Keeps every audio frame that reached `output`: `frames` (RuntimeData.Numpy, in order)
    and `audio()`, their samples joined along axis 0. Repairs and counts like a float file
    sink (NaN as 0), so `repair_report()` says what a real sink would have repaired."""

    description = "collecting sink"

    def __init__(self, fmt: AudioFormat | None = None, *, repair: bool = False):
        super().__init__(fmt or AudioFormat())
        self.frames: list = []
        self.repairs = repair

    def write(self, frame) -> None:
        """Keeps the frame (with NaN/Inf repaired to 0 and counted first when repair=True)."""
        if self.repairs:
            frame = frame.with_array(self.repair(frame.array))
        self.frames.append(frame)

    def audio(self) -> np.ndarray:
        """Every collected sample, shape (samples,) or (samples, channels); empty float32 when
        nothing arrived."""
        arrays = [f.array for f in self.frames if f.array.size]
        if not arrays:
            return np.zeros(0, np.float32)
        return np.concatenate(arrays, axis=0)
