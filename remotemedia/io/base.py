"""The one small interface every source and sink implements.

A Source hands out blocks of `block_size` samples, shaped (samples,) for mono or
(samples, channels), as ndarrays that it gives up (the engine may write them in place). The
last block may be shorter; `read()` returns None at the end of input. A source that is
`clocked` paces itself (a device waits for its hardware); any other source returns at once
and the runner's clock paces the stream.

A Sink takes frames that reached `output`. A `clocked` sink consumes at its own pace.

Both are context managers; `close()` is safe to call twice and must keep what was written
(a WAV file is finalized on close).
"""

from __future__ import annotations

import numpy as np

from ..engine.node import AudioFormat


class Source:
    """Base class: set `format`, override `read()`."""

    #: paces itself in real time (a live device); the runner then adds no clock of its own
    clocked: bool = False
    #: stands in for an audio device, so the stream runs in real time by default
    realtime: bool = False
    #: a short description for status lines and the TUI
    description: str = "source"

    def __init__(self, fmt: AudioFormat):
        self.format = fmt

    def attach(self, session) -> None:
        """Called with the running Session before open(), for sources that record io copies,
        xruns or end-to-end latency into its counters."""

    def open(self) -> None:
        """Acquire resources (files, streams). Called once before the first read."""

    def read(self) -> np.ndarray | None:
        raise NotImplementedError

    def close(self) -> None:
        """Release resources. Safe to call twice."""

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc):
        self.close()


class Sink:
    """Base class: override `write()`."""

    clocked: bool = False
    realtime: bool = False
    description: str = "sink"

    def __init__(self, fmt: AudioFormat):
        self.format = fmt

    def attach(self, session) -> None:
        """Called with the running Session before open() (see Source.attach)."""

    def open(self) -> None:
        """Acquire resources. Called once before the first write."""

    def write(self, frame) -> None:
        """Consume one RuntimeData.Numpy frame that reached the graph's output."""
        raise NotImplementedError

    def close(self) -> None:
        """Flush and release. Safe to call twice; keeps everything written so far."""

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc):
        self.close()
