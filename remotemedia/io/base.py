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

from ..engine.levels import repair_for_output
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

    def reads(self) -> list[tuple[str, object]]:
        """Files this end reads, as (what, path) pairs, so a run can refuse to write over
        them before anything is opened (cli.check_paths)."""
        return []

    def writes(self) -> list[tuple[str, object]]:
        """Files this end writes (truncates on open), as (what, path) pairs."""
        return []

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
    """Base class: override `write()`, and call `repair()` on each block before encoding it.

    The output boundary repairs what no encoding can hold, and counts it per sink (the stats
    report's `sinks` section): NaN as 0 and +-Inf as +-full scale always; samples beyond full
    scale clipped where `clips_to_full_scale` (integer and companded encodings, sound devices).
    A float file keeps finite over-range samples as they are."""

    description = "sink"
    #: the encoding cannot hold samples beyond +-1.0: clip them (and count)
    clips_to_full_scale: bool = False

    def __init__(self, fmt: AudioFormat):
        super().__init__(fmt)
        self.non_finite = 0         # NaN/Inf samples written as 0 / +-full scale
        self.clipped = 0            # finite samples beyond +-1.0 written as +-1.0
        self._counters = None

    def attach(self, session) -> None:
        self._counters = session.counters

    def count_io_copy(self) -> None:
        """Count one copy made at this boundary in the session's `copies.io`."""
        if self._counters is not None:
            self._counters.io += 1

    def repair(self, array: np.ndarray) -> np.ndarray:
        """`array` itself when it is clean (one or two reductions), else a repaired copy
        (counted as one io copy). Integer PCM is within full scale by construction."""
        out, bad, clipped = repair_for_output(array, self.clips_to_full_scale)
        if out is not array:
            self.non_finite += bad
            self.clipped += clipped
            self.count_io_copy()
        return out

    def repair_report(self) -> dict:
        """{"non_finite": int, "clipped": int}: samples this boundary had to repair."""
        return {"non_finite": self.non_finite, "clipped": self.clipped}

    def write(self, frame) -> None:
        """Consume one RuntimeData.Numpy frame that reached the graph's output."""
        raise NotImplementedError
