"""The one interface every source and sink implements, every hook declared here.

A Source hands out blocks of `block_size` samples, shaped (samples,) for mono or
(samples, channels), as ndarrays that it gives up (the engine may write them in place). The
last block may be shorter; `read()` returns None at the end of input. A source that is
`clocked` paces itself (a device waits for its hardware); any other source returns at once
and the runner's clock paces the stream.

A Sink takes frames that reached `output`. A `clocked` sink consumes at its own pace.

Both are context managers; `close()` is safe to call twice and must keep what was written
(a WAV file is finalized on close).

The life of an end, and who calls what on which thread (the runner is remotemedia/runner.py):

    construction          the caller's thread: check the SPEC (UsageError, exit 2); no I/O
    reads() / writes()    the caller's thread, before anything is opened: paths for the check
                          that no run writes over what it reads (cli.check_paths)
    attach(session)       the runner's thread, before open(): where to count io copies, xruns
    limit_frames(n)       the runner's thread, before the first read(): a source that captures
                          ahead (a device) stops after exactly n blocks
    open()                the runner's thread
    read() / write()      the runner's thread, once per block
    run_schedule(...)     instead of read(), for a source that `runs_schedule` (a device in
                          callback mode): it pushes blocks from its own thread
    interrupt()           any thread or a signal handler: wake a read() or write() that waits
    extend_report(r)      the runner's (or a reader's) thread: add sections to the report
    close()               the runner's thread, on every path out of the run
"""

from __future__ import annotations

import numpy as np

from ..engine.errors import PipelineClosed, RemoteMediaError
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
    #: the end can wait for a lost device and carry on (`reconnect`); see io/devices.py
    supports_reconnect: bool = False
    #: with supports_reconnect: wait for a lost device instead of failing the run
    reconnect: bool = False
    #: gaps a reconnect bridged, each {"at_frame", "blocks_lost", "duration_s", "reason"}
    discontinuities: tuple | list = ()

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

    def interrupt(self) -> None:
        """Wake a read() or write() that is waiting (for stdin, for a lost device), so a stop
        is not held up. Safe from any thread and from a signal handler."""

    def extend_report(self, report: dict) -> None:
        """Add this end's sections to the stats report (a device's `device` section and its
        `in_flight` blocks). Called by StreamRunner.stats()."""

    def close(self) -> None:
        """Release resources. Safe to call twice; a sink keeps everything written so far."""

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc):
        self.close()


class _Poll:
    """read()'s answer when the run asked it to wake between blocks (Source.wake_for_poll)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "POLL"


#: what read() returns, instead of a block, after wake_for_poll(): an executor's answer is in
POLL = _Poll()


class Source(_Endpoint):
    """Base class: set `format`, override `read()`."""

    description = "source"
    #: never ends by itself (a generator, the virtual device): a run needs a duration or a stop
    endless: bool = False
    #: pushes blocks itself, from its own thread (a device in callback mode): the runner calls
    #: run_schedule() instead of read()
    runs_schedule: bool = False
    #: the stop reason when read() returns None: a device that captured the run's duration
    #: (limit_frames) ends for that reason, even when it skipped a block to catch up
    end_reason: str = "end_of_input"
    #: the seq and pts (samples) of the first block read(): 0 for a new run; a recording that
    #: joined a run mid-way replays with the numbering it recorded (replay.RecordingSource)
    first_seq: int = 0
    first_pts: int = 0
    #: a source whose read() waits for its input can be woken between blocks to return POLL
    #: (a device in queued mode): a callable safe from any thread, or None when it cannot be
    wake_for_poll = None

    def read(self) -> np.ndarray | None:
        """The next block, shape (block_size,) or (block_size, channels), given up to the
        engine; shorter at the end; None after the last. A source of something other than
        audio (io/text.py) returns RuntimeData instead, which the runner pushes as it is.
        Raises RemoteMediaError (one line) when the input fails."""
        raise NotImplementedError

    def limit_frames(self, n: int) -> None:
        """A source that captures ahead of read() (a device) captures exactly `n` blocks."""

    def run_schedule(self, path, stop, max_frames: int | None) -> str:
        """For a source that `runs_schedule`: push each block through `path.take()` on the
        source's own thread until `stop` (a threading.Event) is set, `max_frames` blocks are
        pushed or the input ends, handing outputs for the runner's thread to
        `path.deliver()` on the calling (runner's) thread. Returns the stop reason. `path` is
        the runner's BlockPath (runner.py)."""
        raise NotImplementedError(f"{type(self).__name__} does not run the schedule itself")


class Sink(_Endpoint):
    """Base class: override `write()`, and call `repair()` on each block before encoding it.

    The output boundary repairs what no encoding can hold, and counts it per sink (the stats
    report's `sinks` section): NaN as 0 and +-Inf as +-full scale always; samples beyond full
    scale clipped where `clips_to_full_scale` (integer and companded encodings, sound devices).
    A float file keeps finite over-range samples as they are."""

    description = "sink"
    #: writes to stdout, which then carries audio and no events or report
    uses_stdout: bool = False
    #: the encoding cannot hold samples beyond +-1.0: clip them (and count)
    clips_to_full_scale: bool = False

    def __init__(self, fmt: AudioFormat):
        super().__init__(fmt)
        self.non_finite = 0         # NaN/Inf samples written as 0 / +-full scale
        self.clipped = 0            # finite samples beyond +-1.0 written as +-1.0
        self._counters = None

    def attach(self, session) -> None:
        """Keep the session's counters, where this sink counts its io copies."""
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

    def checked_array(self, frame, closed: bool, target: str) -> np.ndarray:
        """`frame.array` after the checks a sink that encodes samples makes first:
        PipelineClosed when `closed` (a write after close()), RemoteMediaError when it is not
        (samples,) for one channel or (samples, channels) for this sink's count. `target`
        names what was opened, for the messages."""
        if closed:
            raise PipelineClosed(f"{target} is closed")
        array = frame.array
        want = self.format.channels or 1
        if array.ndim > 2 or (array.shape[1] if array.ndim == 2 else 1) != want:
            raise RemoteMediaError(f"a frame of shape {array.shape} reached output, but "
                                   f"{target} was opened for {want} channel(s)")
        return array

    def write(self, frame) -> None:
        """Consume one RuntimeData.Numpy frame that reached the graph's output."""
        raise NotImplementedError

    def play_clock(self):
        """When each written frame played, on the input's pts axis (engine/playclock.py
        PlayClock), for a sink that knows it (a device sharing a duplex stream with the
        input); None here. Called once the session and both ends are open."""
        return None
