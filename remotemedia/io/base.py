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


class _Endpoint:
    """What sources and sinks share: a format, how they are paced, and their lifecycle."""

    #: paces itself in real time (a live device); the runner then adds no clock of its own
    clocked: bool = False
    #: stands in for an audio device, so the stream runs in real time by default
    realtime: bool = False
    #: a short description for status lines and the TUI
    description: str = ""

    def __init__(self, fmt: AudioFormat):
        self.format = fmt

    def attach(self, session) -> None:
        """Called with the running Session before open(), for ends that record io copies,
        xruns or end-to-end latency into its counters."""

    def open(self) -> None:
        """Acquire resources (files, streams). Called once before the first read or write."""

    def close(self) -> None:
        """Release resources. Safe to call twice; a sink keeps everything written so far."""

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc):
        self.close()


class Source(_Endpoint):
    """Base class: set `format`, override `read()`."""

    description = "source"

    def read(self) -> np.ndarray | None:
        raise NotImplementedError


class Sink(_Endpoint):
    """Base class: override `write()`."""

    description = "sink"

    def write(self, frame) -> None:
        """Consume one RuntimeData.Numpy frame that reached the graph's output."""
        raise NotImplementedError
