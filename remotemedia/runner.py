"""StreamRunner: drives one session from a source to a sink, paced by a clock.

The CLI's `stream` and the TUI both run pipelines through this. One loop, on one thread:

    wait until frame n is due (real time) or not at all (simulated time / a clocked source)
    block = source.read()              # None at end of input
    outputs = session.push(block)      # direct calls; the block is handed over to the engine
    audio -> sink.write(), anything else -> on_event()

It ends at `duration`, at end of input, on `stop()` (thread- and signal-safe) or on an error,
and on every path closes the session, the source and the sink, so files are finalized.

Text. A text source (io/text.py) returns RuntimeData.Text instead of a block; it is pushed as
it is, followed by a flush, which waits for nodes on executors to answer (the flush event itself
is not delivered). Text has no clock of its own, so a paced run paces the audio the text became: the next
piece is read when the audio delivered so far is due to have played, less TEXT_LEAD_S for
synthesizing it (a device sink also waits while its queue is full). Unpaced, it goes as fast as
the graph speaks.

Arrival time. When a node of the manifest declares `uses_arrival_time = True` (the timing nodes
TimingDriftNode and HealthEmitterNode), each block carries `metadata["arrival_us"]`: when the
block arrived, in microseconds on the run's clock since the run started. In real time (a device
or --realtime) that is the pacing clock (or the monotonic clock for a device that paces itself)
read as the block is released; a test's MockClock gives its simulated time; in simulated time
(files, generators, --fast) it is the block's media time, pts / sample_rate, so a file read
faster than real time shows no drift and every simulated run is deterministic. Nodes never read
the wall clock themselves. (A device input in callback mode pushes blocks from its own callback
and does not stamp them yet: there, timing nodes see no drift.)
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .engine.data import NumpyData, RuntimeData
from .engine.errors import RemoteMediaError, one_line
from .engine.session import Pipeline, Session
from .io.base import POLL, Sink, Source
from .io.clock import Clock, RealtimeClock, SimulatedClock
from .observers import BlockIn, BlockOut, ObserverList, RunEnded, RunStarted
from .engine.levels import SILENCE_DBFS, measure, to_dbfs

# a named tuple made without its Python-level __new__: half the cost, on the block path
_new_event = tuple.__new__

#: the metadata key of a block's arrival time (us on the run's clock); see the module docstring
ARRIVAL_KEY = "arrival_us"

#: how far ahead of real time a paced run from a text input synthesizes (seconds of audio)
TEXT_LEAD_S = 1.0

IDLE, RUNNING, STOPPED, FINISHED, FAILED = "idle", "running", "stopped", "finished", "failed"

_REASONS = {"stopped": "stopped by user", "end_of_input": "end of input",
            "duration": "duration reached"}


def describe_reason(runner: "StreamRunner") -> str | None:
    """One line on how a run stands, as the TUI's state line and the monitor say it: the
    error of a failed run, or why it ended ("end of input", "duration reached", ...); None
    while it runs."""
    if runner.state == FAILED and runner.error is not None:
        return one_line(runner.error)
    reason = runner.stop_reason
    return _REASONS.get(reason, reason) if reason else None


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
    #: blocks metered at each end (callback mode meters in the audio callback, as queued mode
    #: does on the runner's thread)
    input_blocks: int = 0
    output_blocks: int = 0


#: Levels' fields per end, in _measure's order: blocks, rms, peak, clipped, peak max, clips
_LEVEL_FIELDS = {end: tuple(f"{end}_{name}" for name in ("blocks", "rms_dbfs", "peak_dbfs",
                                                         "clipped", "peak_max_dbfs", "clips"))
                 for end in ("input", "output")}


def _output_for_barge_in(schedule, sink) -> None:
    """For a voice loop (a graph with barge-in, engine/bargein.py) on a sink with a queue of its
    own (a device): the sink tells the schedule when reply audio is still queued and drops it on
    a barge-in; when only the reply reaches the output, audio made ahead (Speak on its thread)
    is taken only as it plays, so what is not yet playing can still be dropped."""
    if schedule is None or schedule.barge_in is None or not hasattr(sink, "drop_queued"):
        return
    schedule.output_busy = lambda: sink.queued() > 0
    schedule.output_drop = sink.drop_queued
    replies = {step.node_id for step in schedule.reply_steps}
    speakers = schedule.output_sources
    if speakers and speakers <= replies:
        # Only the reply speaks: it is taken as it plays (a graph that also passes audio
        # through keeps taking every answer at once, so a late node catches up).
        schedule.poll_room = sink.room
        sink.speaks_in_bursts()


def _answers_between_blocks(schedule, source) -> None:
    """Nodes on an executor that answer between blocks (a voice loop's Transcribe, Respond,
    Speak on their threads) wake a source that can be woken (a device in queued mode), so
    their answers go on through the graph then, not at the next block: each hop waited up to
    a block period (20 ms) before."""
    wake = source.wake_for_poll
    if wake is None or source.runs_schedule:
        return
    polled = {node_id for node_id, _, _ in schedule.pollers}
    for step in schedule.steps:
        if step.node_id in polled:
            step.node.on_ready = wake


class BlockPath:
    """The one way a block goes from a source into the session and its outputs out, used by
    the runner's loop and, in callback mode, by the device's audio callback alike.

    - `take(block, seq, pts, lateness_s)`: build the frame (`seq`, `pts` in samples, the
      arrival time in its metadata when a node asks for it), meter the input level, tell the
      observers (BlockIn), push it (handed over: transfer=True); returns the outputs. Runs on
      the thread that pushes: the runner's, or the audio callback's.
    - `deliver(outputs, final)`: tell the observers (BlockOut), audio to the sink (metering
      its level), everything else to `on_event`; the runner's thread only (sinks and event
      writers do I/O).
    - `meter(array, "input" | "output")`: the level meter, for audio a device callback plays
      itself without going through deliver().
    `arrival(pts) -> seconds` is set by the runner before the first block."""

    def __init__(self, runner: "StreamRunner", session: Session):
        self.runner = runner
        self.session = session
        self.rate = runner.sample_rate
        #: a node reads the block's arrival time (TimingDriftNode, HealthEmitterNode)
        self.stamp = any(spec.node_class.uses_arrival_time
                         for spec in runner.pipeline.manifest.nodes)
        self.arrival: Callable[[int], float] = lambda pts: pts / self.rate
        #: the sink's `write_event(data)` when it takes events too (io/transcripts.py)
        self.sink_events = getattr(runner.sink, "write_event", None)

    def take(self, block: np.ndarray, seq: int, pts: int, lateness_s: float = 0.0) -> list:
        """Build the frame for `block` (ndarray (samples,) or (samples, channels)), meter it,
        tell the observers, push it; returns the outputs (RuntimeData list). Raises what the
        graph raises (NodeError) or an observer raises."""
        runner = self.runner
        tell = runner.tell_block_in  # per block: the TUI joins one mid-run
        if self.stamp or tell is not None:
            arrival = self.arrival(pts)
        if self.stamp:
            frame = NumpyData(block, sample_rate=self.rate, pts=pts, seq=seq,
                              metadata={ARRIVAL_KEY: int(arrival * 1e6)})
        else:
            frame = NumpyData(block, sample_rate=self.rate, pts=pts, seq=seq)
        runner.frames_released = seq + 1
        if runner.measure_levels:
            runner._measure(block, "input")
        if tell is not None:
            # before the push: a node may write the block in place once it is handed over;
            # one event for every member, and none at all without members
            tell(_new_event(BlockIn, (seq, pts, block, arrival, lateness_s)))
        return self.session.push(frame, transfer=True)

    def meter(self, array: np.ndarray, end: str) -> None:
        """Meter `array` at `end` ('input' or 'output') when the run measures levels."""
        if self.runner.measure_levels:
            self.runner._measure(array, end)

    def deliver(self, outputs: list, final: bool = False) -> None:
        """Route outputs: audio to the sink, events to on_event (the runner's own end_of_stream
        excepted when `final`). Runner's thread."""
        runner = self.runner
        tell = runner.tell_block_out
        if tell is not None:
            tell(_new_event(BlockOut, (outputs, final)))
        sink, on_event, measure = runner.sink, runner.on_event, runner.measure_levels
        for out in outputs:
            if type(out) is NumpyData:
                if measure:
                    runner._measure(out.array, "output")
                sink.write(out)
            elif final and out.kind == "control" and out.event == "end_of_stream":
                pass  # our own end_of_stream coming back out: not an output of the graph
            else:
                if self.sink_events is not None:
                    self.sink_events(out)   # a sink that writes events (transcript files)
                if on_event is not None:
                    on_event(out)


def give_play_clock(session: Session, sink) -> object | None:
    """Hand `sink.play_clock()` (engine/playclock.py: when each output frame played, on the
    input's pts axis; a device sink sharing a duplex stream with the input has one) to every
    node of `session` that declares `uses_play_clock` (EchoCancel), once the session and both
    ends are open, before the first block. Returns the clock, or None when the sink has none
    (a duck-typed sink may lack the method)."""
    give = getattr(sink, "play_clock", None)
    clock = give() if give is not None else None
    if clock is not None:
        for step in session.schedule.steps:
            if getattr(step.node, "uses_play_clock", False):
                step.node.play_clock = clock
    return clock


class StreamRunner:
    """Drives one session from a source to a sink, paced by a clock (the module docstring says
    how). `realtime` None means real time when either end is (or stands in for) a device;
    `duration` in seconds is exact in samples; `on_event` gets every non-audio output on the
    runner's thread; `measure_levels` keeps `levels` up to date for a UI; `observers` join
    `self.observers` (observers.py), which anyone may join or leave during the run too."""
    def __init__(self, pipeline: Pipeline, source: Source, sink: Sink, *,
                 realtime: bool | None = None, clock: Clock | None = None,
                 duration: float | None = None, strict: bool = False,
                 on_event: Callable[[RuntimeData], None] | None = None,
                 measure_levels: bool = False, observers=(), trace=None, fuse: bool = True):
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
        # --duration S means exactly round(S x rate) samples: the last block is cut short
        # (a view, no copy) rather than the run rounding up to whole blocks.
        self.max_samples = None if duration is None else max(1, round(
            duration * audio.sample_rate))
        self.max_frames = None if duration is None else math.ceil(
            self.max_samples / audio.block_size)
        self.strict = strict
        self.on_event = on_event
        self.measure_levels = measure_levels
        #: called once the session and both ends are open, before the first block: a command
        #: creates its output files here, after everything that can refuse the run
        self.on_open = None
        #: the observers' tellers (observers.ObserverList), kept here by the list itself
        self.tell_block_in = self.tell_block_out = None
        #: who watches the run (a recorder, a tracer, ...): join and leave at any time
        self.observers = ObserverList(observers, on_change=self._retell)
        #: optional `trace(node_id, process) -> process`, compiled into the session's schedule
        self.trace = trace
        #: {node_id: tap(data)}: who sees a node's outputs as it makes them (Session's `taps`);
        #: set before run(), as the turn observer does (turn_observer.py)
        self.taps: dict = {}
        #: fuse chains of linear nodes (Session's `fuse`)
        self.fuse = fuse
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
        self.path: BlockPath | None = None

    def _retell(self, tell_block_in, tell_block_out) -> None:
        self.tell_block_in, self.tell_block_out = tell_block_in, tell_block_out

    # -- control -----------------------------------------------------------------------------------
    def stop(self, reason: str = "stopped") -> None:
        """Ask the loop to end after the current frame. Safe from any thread or signal handler."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self._stop.set()
        # A source blocked waiting for input (stdin) returns early instead of hanging the stop,
        # and so does an end waiting for a lost device to come back.
        self.source.interrupt()
        self.sink.interrupt()

    def start(self) -> threading.Thread:
        """Run in a background thread (for the TUI); `join()` or `stop()` it."""
        self._thread = threading.Thread(target=self._run_quietly, name="remotemedia-runner",
                                        daemon=True)
        self._thread.start()
        return self._thread

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the background run (start()) to end; True when it has. `timeout` in seconds."""
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
            self.session = self.pipeline.session(strict_serialization=self.strict,
                                                 trace=self.trace,
                                                 clock=lambda: self.clock.now(),
                                                 fuse=self.fuse, taps=self.taps or None)
            self.source.attach(self.session)
            self.sink.attach(self.session)
            with self.session, self.source, self.sink:
                give_play_clock(self.session, self.sink)
                _output_for_barge_in(self.session.schedule, self.sink)
                _answers_between_blocks(self.session.schedule, self.source)
                if self.on_open is not None:
                    self.on_open()   # what may be created only once the run stands
                self._tell(RunStarted(self), "run_started")
                self._loop(self.session)
        except BaseException as exc:
            self.error = exc
            self.state = FAILED
            if self.stop_reason is None:
                # an error may name its own reason (a lost device: "device_lost")
                self.stop_reason = (exc.stop_reason if isinstance(exc, RemoteMediaError)
                                    else "error")
            raise
        finally:
            if self.session is not None:
                self._final_stats = self.stats()
            if self.error is None:
                self.state = STOPPED if self._stop.is_set() else FINISHED
            self._tell(RunEnded(self, self._final_stats, self.error), "run_ended")
        return self._final_stats

    def _tell(self, event, hook: str) -> None:
        # once per run each (start, end): no need to spare the event when nobody listens
        for observer in self.observers.members:
            getattr(observer, hook)(event)

    def _loop(self, session: Session) -> None:
        source, clock = self.source, self.clock
        pace = self.realtime and not source.clocked
        stop = self._stop
        max_frames = self.max_frames
        path = self.path = BlockPath(self, session)
        # Arrival time on the run's clock (timing nodes, recordings, traces): a source that
        # paces itself (a device) is on real time, which the runner's clock does not keep for
        # it; a paced run is on its pacing clock (real, a replay's recorded timeline, a test's
        # MockClock); an unpaced run on simulated time is media time, pts / rate.
        clock.start()
        if source.clocked:
            t_origin = time.monotonic()
            path.arrival = lambda pts: time.monotonic() - t_origin
        elif pace:
            path.arrival = lambda pts: clock.now()
        else:
            rate = self.sample_rate
            path.arrival = lambda pts: pts / rate
        if source.runs_schedule:
            # A device source in callback mode pushes each block through the same path inside
            # its audio callback; this thread delivers what it hands over (io/devices.py).
            reason = source.run_schedule(path, stop, max_frames)
            self.stop_reason = self.stop_reason or reason
            path.deliver(session.end_of_stream(), final=True)
            return
        if max_frames is not None:
            source.limit_frames(max_frames)  # a device captures exactly what the run reads
        take, deliver = path.take, path.deliver
        spoken, text_lead = 0, max(1, round(TEXT_LEAD_S / self.period_s))
        pts = 0
        n = 0
        seq0, pts0 = source.first_seq, source.first_pts
        late = 0.0
        while not stop.is_set():
            if max_frames is not None and n >= max_frames:
                self.stop_reason = self.stop_reason or "duration"
                break
            if pace:
                late = clock.wait_for_frame(n)
                if late > self.max_lateness_s:
                    self.max_lateness_s = late
            block = source.read()
            if block is POLL:      # an executor's answer is in: on through the graph now
                deliver(session.poll())
                continue
            if block is None:
                self.stop_reason = self.stop_reason or source.end_reason
                break
            if type(block) is not np.ndarray:
                # A text source's RuntimeData (io/text.py): no samples, so no pts or level.
                # A node on an executor (Speak on its thread) answers a push later: flush
                # waits for this piece's audio, so each piece is delivered before the next
                # is read (one piece held at a time, and pacing below sees the audio).
                outputs = session.push(block)
                outputs += [o for o in session.flush()
                            if not (o.kind == "control" and o.event == "flush")]
                deliver(outputs)
                n += 1
                if pace:
                    # Text has no clock: a paced run paces the audio it became, reading the
                    # next piece when what was said so far is due, less a second for synthesis.
                    spoken += sum(type(o) is NumpyData for o in outputs)
                    clock.wait_for_frame(spoken - text_lead)
                continue
            if max_frames is not None and n == max_frames - 1 and block.ndim:
                block = block[:self.max_samples - pts]
            deliver(take(block, seq0 + n, pts0 + pts, late))
            pts += block.shape[0] if block.ndim else 1
            n += 1
        # Let buffering nodes release what they hold, on every clean path. The end_of_stream
        # event itself comes back out of `output`; it is ours, not news for on_event.
        deliver(session.end_of_stream(), final=True)

    def _measure(self, array: np.ndarray, end: str) -> None:
        # one body for both ends: the Levels fields of `end` by name (constant strings)
        blocks, rms_f, peak_f, clipped_f, max_f, clips_f = _LEVEL_FIELDS[end]
        rms, peak, _ = measure(array)
        levels = self.levels
        peak_dbfs = to_dbfs(peak)
        setattr(levels, blocks, getattr(levels, blocks) + 1)
        setattr(levels, rms_f, to_dbfs(rms))
        setattr(levels, peak_f, peak_dbfs)
        setattr(levels, clipped_f, peak >= 1.0)
        if peak_dbfs > getattr(levels, max_f):
            setattr(levels, max_f, peak_dbfs)
        if peak >= 1.0:
            setattr(levels, clips_f, getattr(levels, clips_f) + 1)

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
        # What the output boundary had to repair (NaN, Inf, beyond full scale), per sink.
        report["sinks"] = {self.sink.description: self.sink.repair_report()}
        self.source.extend_report(report)
        self.sink.extend_report(report)
        for observer in self.observers.members:
            extend = getattr(observer, "extend_report", None)   # a duck-typed one may lack it
            if extend is not None:
                extend(report)   # sections of their own (turn_observer.py's `turns`)
        return report

