"""StreamRunner: drives one session from a source to a sink, paced by a clock.

The CLI's `stream` and the TUI both run pipelines through this. One loop, on one thread:

    wait until frame n is due (real time) or not at all (simulated time / a clocked source)
    block = source.read()              # None at end of input
    outputs = session.push(block)      # direct calls; the block is handed over to the engine
    audio -> sink.write(), anything else -> on_event()

It ends at `duration`, at end of input, on `stop()` (thread- and signal-safe) or on an error,
and on every path closes the session, the source and the sink, so files are finalized.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .engine.data import NumpyData, RuntimeData
from .engine.errors import RemoteMediaError
from .engine.session import Pipeline, Session
from .io.base import Sink, Source
from .io.clock import Clock, RealtimeClock, SimulatedClock
from .nodes.analysis import SILENCE_DBFS, rms_and_peak, to_dbfs

IDLE, RUNNING, STOPPED, FINISHED, FAILED = "idle", "running", "stopped", "finished", "failed"


@dataclass
class Levels:
    """Most recent block levels at the two ends of the graph, in dBFS.

    A reader that polls slower than blocks arrive (the TUI) would miss a single loud block, so
    the highest peak since the reader last reset `*_peak_max_dbfs` is kept too, and clipped
    blocks are counted (`*_clips` only grows)."""

    input_rms_dbfs: float = SILENCE_DBFS
    input_peak_dbfs: float = SILENCE_DBFS
    output_rms_dbfs: float = SILENCE_DBFS
    output_peak_dbfs: float = SILENCE_DBFS
    input_clipped: bool = False
    output_clipped: bool = False
    input_peak_max_dbfs: float = SILENCE_DBFS
    output_peak_max_dbfs: float = SILENCE_DBFS
    input_clips: int = 0
    output_clips: int = 0


class StreamRunner:
    def __init__(self, pipeline: Pipeline, source: Source, sink: Sink, *,
                 realtime: bool | None = None, clock: Clock | None = None,
                 duration: float | None = None, strict: bool = False,
                 on_event: Callable[[RuntimeData], None] | None = None,
                 measure_levels: bool = False):
        audio = pipeline.manifest.audio
        self.pipeline = pipeline
        self.source = source
        self.sink = sink
        self.sample_rate = audio.sample_rate
        self.block_size = audio.block_size
        self.period_s = audio.block_size / audio.sample_rate
        if realtime is None:
            realtime = source.realtime or sink.realtime
        self.realtime = realtime
        if clock is None:
            clock = RealtimeClock(self.period_s) if realtime and not source.clocked \
                else SimulatedClock(self.period_s)
        self.clock = clock
        self.duration = duration
        self.max_frames = None if duration is None else math.ceil(
            duration * audio.sample_rate / audio.block_size - 1e-9)
        self.strict = strict
        self.on_event = on_event
        self.measure_levels = measure_levels
        self.levels = Levels()
        self.state = IDLE
        self.stop_reason: str | None = None
        self.error: BaseException | None = None
        self.session: Session | None = None
        self.frames_released = 0
        self.max_lateness_s = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._final_stats: dict | None = None

    # -- control -----------------------------------------------------------------------------------
    def stop(self, reason: str = "stopped") -> None:
        """Ask the loop to end after the current frame. Safe from any thread or signal handler."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self._stop.set()
        # A source blocked waiting for input (stdin) returns early instead of hanging the stop,
        # and so does an end waiting for a lost device to come back.
        for end in (self.source, self.sink):
            interrupt = getattr(end, "interrupt", None)
            if interrupt is not None:
                interrupt()

    def start(self) -> threading.Thread:
        """Run in a background thread (for the TUI); `join()` or `stop()` it."""
        self._thread = threading.Thread(target=self._run_quietly, name="remotemedia-runner",
                                        daemon=True)
        self._thread.start()
        return self._thread

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def _run_quietly(self) -> None:
        try:
            self.run()
        except BaseException:  # recorded in self.error and self.state for the UI
            pass

    # -- the loop ------------------------------------------------------------------------------------
    def run(self) -> dict:
        """Run to the end; return the stats report. Raises the error that stopped it, after
        closing everything."""
        self.state = RUNNING
        try:
            self.session = self.pipeline.session(strict_serialization=self.strict)
            self.source.attach(self.session)
            self.sink.attach(self.session)
            with self.session, self.source, self.sink:
                self._loop(self.session)
        except BaseException as exc:
            self.error = exc
            self.state = FAILED
            if self.stop_reason is None:
                # an error may name its own reason (a lost device: "device_lost")
                self.stop_reason = getattr(exc, "stop_reason", None) or "error"
            raise
        finally:
            if self.session is not None:
                self._final_stats = self.stats()
        self.state = STOPPED if self._stop.is_set() else FINISHED
        return self._final_stats

    def _loop(self, session: Session) -> None:
        source, clock = self.source, self.clock
        pace = self.realtime and not source.clocked
        rate = self.sample_rate
        stop = self._stop
        max_frames = self.max_frames
        pts = 0
        n = 0
        if getattr(source, "runs_schedule", False):
            # A device source in callback mode pushes each block through the session inside its
            # audio callback; this thread delivers what it hands back (io/devices.py).
            reason = source.run_schedule(session, self._deliver, stop, max_frames,
                                         lambda pushed: setattr(self, "frames_released", pushed))
            self.stop_reason = self.stop_reason or reason
            self._deliver(session.end_of_stream(), final=True)
            return
        if max_frames is not None and hasattr(source, "limit_frames"):
            source.limit_frames(max_frames)  # a device captures exactly what the run reads
        clock.start()
        while not stop.is_set():
            if max_frames is not None and n >= max_frames:
                self.stop_reason = self.stop_reason or "duration"
                break
            if pace:
                late = clock.wait_for_frame(n)
                if late > self.max_lateness_s:
                    self.max_lateness_s = late
            block = source.read()
            if block is None:
                self.stop_reason = self.stop_reason or "end_of_input"
                break
            frame = NumpyData(block, sample_rate=rate, pts=pts, seq=n)
            self.frames_released = n + 1
            if self.measure_levels:
                self._measure(block, "input")
            self._deliver(session.push(frame, transfer=True))
            pts += block.shape[0] if block.ndim else 1
            n += 1
        # Let buffering nodes release what they hold, on every clean path. The end_of_stream
        # event itself comes back out of `output`; it is ours, not news for on_event.
        self._deliver(session.end_of_stream(), final=True)

    def _deliver(self, outputs: list, final: bool = False) -> None:
        for out in outputs:
            if type(out) is NumpyData:
                if self.measure_levels:
                    self._measure(out.array, "output")
                self.sink.write(out)
            elif final and out.kind == "control" and out.event == "end_of_stream":
                pass  # our own end_of_stream coming back out: not an output of the graph
            elif self.on_event is not None:
                self.on_event(out)

    def _measure(self, array: np.ndarray, end: str) -> None:
        rms, peak = rms_and_peak(array)
        levels = self.levels
        peak_dbfs = to_dbfs(peak)
        if end == "input":
            levels.input_rms_dbfs, levels.input_peak_dbfs = to_dbfs(rms), peak_dbfs
            levels.input_clipped = peak >= 1.0
            if peak_dbfs > levels.input_peak_max_dbfs:
                levels.input_peak_max_dbfs = peak_dbfs
            if peak >= 1.0:
                levels.input_clips += 1
        else:
            levels.output_rms_dbfs, levels.output_peak_dbfs = to_dbfs(rms), peak_dbfs
            levels.output_clipped = peak >= 1.0
            if peak_dbfs > levels.output_peak_max_dbfs:
                levels.output_peak_max_dbfs = peak_dbfs
            if peak >= 1.0:
                levels.output_clips += 1

    # -- observing -----------------------------------------------------------------------------------
    def stats(self) -> dict:
        """The stats report; after the run, the final one."""
        if self._final_stats is not None:
            return self._final_stats
        if self.session is None:
            raise RemoteMediaError("the runner has not started")
        report = self.session.stats()
        report["stop_reason"] = self.stop_reason
        # Frames inside an io end (a device's ring) at stop: frames_in == frames_out + drops +
        # in_flight. Device ends add their count and a `device` section.
        report["in_flight"] = 0
        for end in (self.source, self.sink):
            extend = getattr(end, "extend_report", None)
            if extend is not None:
                extend(report)
        return report
