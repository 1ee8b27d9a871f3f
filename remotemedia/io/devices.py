"""Sound devices as a Source and a Sink (DeviceSource, DeviceSink), sharing one DeviceStream.

When the device goes away
-------------------------
The engine side notices after a wait in which no callback came (two block periods): PortAudio's
JACK host API marks the stream inactive as soon as JACK's shutdown callback fires, and any host
API stops calling back (STALL_S, 2 s, catches one that does not say so). The run then raises
DeviceLost, one line naming device, host API and cause ("the audio server went away" when the
JACK server's socket refuses connections), whose stop reason is `device_lost` (exit code 1).
What was captured before is read first, so files get every block. The dead stream is closed on
a daemon thread that is not waited for beyond one block period (PortAudio 19.6 on a dead JACK
server never returns from Pa_CloseStream), and its PortAudio instance is abandoned: never
called again, not even by sounddevice's Pa_Terminate at exit, which would abort the process
(pa_jack.c asserts that closing its dead JACK client succeeds). With `reconnect`, a device end
waits instead for the server to accept connections again and opens a new stream on a fresh
PortAudio instance (the only way PortAudio sees a JACK server that started after it did); the
gap goes into the report as a discontinuity, and seq and pts go on without a jump.

Loading PortAudio, finding devices and error translation are in portaudio.py; the stream, its
callback and rings in device_stream.py. The names below are re-exported from them, so
`remotemedia.io.devices` stays the one import for device users.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from ..engine.errors import DeviceError, DeviceNotFound, UsageError
from ..engine.node import AudioFormat
from .base import POLL, Sink, Source
from .device_stream import (DEFAULT_MODE, MODES, RECONNECT_POLL_S, DeviceStream, _as_frames,
                            _ends_by_session, _Ends)
from .play_clock import SteadyPlayClock, lead_samples
from .portaudio import (DeviceInfo, DeviceLost, _is_jack, _sounddevice, abandon_portaudio,
                        default_device, format_devices, host_apis, jack_server_name,
                        jack_server_running, list_devices, portaudio_available, resolve_device)

__all__ = ["DEFAULT_MODE", "MODES", "DeviceInfo", "DeviceLost", "DeviceSink", "DeviceSource",
           "DeviceStream", "default_device", "format_devices", "host_apis", "jack_server_name",
           "jack_server_running", "list_devices", "portaudio_available", "resolve_device"]


# -- the Source and the Sink ------------------------------------------------------------------------

class _DeviceEnd:
    clocked = True
    realtime = True
    supports_reconnect = True

    def __init__(self, kind: str, fmt: AudioFormat, device, mode: str | None):
        self.kind = kind
        self.format = fmt
        self.mode = mode or DEFAULT_MODE
        if self.mode not in MODES:
            raise UsageError(f"unknown device mode '{self.mode}'; expected one of: "
                             f"{', '.join(MODES)}")
        self.device = device if isinstance(device, DeviceInfo) else resolve_device(device, kind)
        self.channels = fmt.channels or 1
        if self.device.channels(kind) < self.channels:
            raise DeviceNotFound(f"{kind} device {self.device.label()} has "
                                 f"{self.device.channels(kind)} {kind} channel(s); the manifest "
                                 f"asks for {self.channels}")
        self.description = f"device {self.device.name} ({self.device.host_api})"
        self.session = None
        self.stream: DeviceStream | None = None
        self._closed = False
        self._opened = False
        #: re-open the device when it comes back after a loss, instead of raising DeviceLost
        self.reconnect = False
        #: called (on the runner's thread) with one line when the device is lost or back
        self.on_notice = None
        #: while the device is lost and awaited: one line saying so (the TUI shows it)
        self.problem: str | None = None
        #: each gap a reconnect bridged: at_frame, blocks_lost, duration_s, reason
        self.discontinuities: list[dict] = []
        self._wake = threading.Event()
        self._interrupted = False

    def attach(self, session) -> None:
        self.session = session
        ends = _ends_by_session.get(session)
        if ends is None:
            ends = _Ends()
            _ends_by_session[session] = ends
        setattr(ends, "source" if self.kind == "input" else "sink", self)

    def _open_stream(self) -> None:
        ends = _ends_by_session.get(self.session) if self.session is not None else None
        if ends is not None and ends.stream is not None and not ends.stream.closed:
            self.stream = ends.stream
            return
        source = ends.source if ends is not None else (self if self.kind == "input" else None)
        sink = ends.sink if ends is not None else (self if self.kind == "output" else None)
        if source is not None and sink is not None \
                and source.device.host_api != sink.device.host_api:
            # Two host APIs cannot share a stream: each end gets its own, without end-to-end
            # latency (their clocks are not one).
            source, sink = (self, None) if self.kind == "input" else (None, self)
        mode = source.mode if source is not None else DEFAULT_MODE
        stream = DeviceStream(
            self.format if source is None else source.format,
            input_device=source.device if source else None,
            input_channels=source.channels if source else 0,
            output_device=sink.device if sink else None,
            output_channels=sink.channels if sink else 0,
            mode=mode)
        if source is None:
            stream.prefill = 2  # paced by another clock: keep one block of margin
        stream.session = self.session
        stream.deliver_audio_here = sink is not None
        stream.open()
        try:
            stream.start()
        except BaseException:
            stream.close()  # this end never opened: nobody else would close it
            raise
        if source is not None and sink is not None and ends is not None:
            ends.stream = stream
        self.stream = stream

    def _begin_close(self):
        """Mark this end closed; the stream it should now let go of, or None when it was closed
        already or never had one (close() is safe twice)."""
        if self._closed:
            return None
        self._closed = True
        return self.stream

    def _release_stream(self) -> None:
        stream = self.stream
        if stream is None:
            return
        ends = _ends_by_session.get(self.session) if self.session is not None else None
        other = None
        if ends is not None and ends.stream is stream:
            other = ends.sink if self.kind == "input" else ends.source
        if other is not None and not other._closed and other._opened:
            return  # the other end closes the stream
        stream._last_latency = stream.latency if stream._stream is not None else (0.0, 0.0)
        try:
            stream.close()
        finally:
            # No callback runs any more: what is left in the ring is exact.
            source = self if self.kind == "input" else other
            if source is not None:
                source._count_unread()
            stream.fold(self.session, final=True)

    def interrupt(self) -> None:
        """Runner hook (stop()): wake a read() or write() that waits for the device (or for it
        to come back)."""
        self._interrupted = True
        self._wake.set()
        if self.stream is not None:
            self.stream.wakeup.ring()

    def _stopping(self) -> bool:
        return self._interrupted or self._closed

    def _recover(self, old: DeviceStream, at_frame: int) -> bool:
        """Reconnect after `old` was lost: close it (bounded), wait for its device to come back,
        open a new stream for this end and the other end that shared `old`, on a fresh
        PortAudio instance, and record the gap. False when the run stops while waiting."""
        error = old.lost_error()
        self.problem = f"{error}; waiting for it to come back"
        self._notice(self.problem)
        lost_at_ns = old.last_tick_ns
        ends = _ends_by_session.get(self.session) if self.session is not None else None
        sharing = [e for e in ((ends.source, ends.sink) if ends is not None else (self,))
                   if e is not None and e.stream is old] or [self]
        try:
            old.close()
        except DeviceError:
            pass  # a lost stream's close has nothing to report
        old.fold(self.session, final=True)
        for end in sharing:
            if isinstance(end, DeviceSink):
                end._repaired_before[0] += old.out_non_finite
                end._repaired_before[1] += old.out_clipped
        dev = old.input_device or old.output_device
        jack = _is_jack(dev.host_api)
        # Without JACK's socket to watch, every look loads another PortAudio instance (a few
        # hundred kB that are never given back): look less often.
        poll_s = RECONNECT_POLL_S if jack else RECONNECT_POLL_S * 10
        while True:
            if self._stopping():
                return False
            if not jack or jack_server_running() is not False:
                try:
                    new = self._open_again(old, sharing)
                except DeviceError:
                    pass
                else:
                    break
            self._wake.wait(poll_s)
            self._wake.clear()
        # from the last callback before the loss to the start of the new stream, whose first
        # callback comes one period later: the blocks that were never captured
        gap_s = max(0.0, (new.last_tick_ns - lost_at_ns) / 1e9)
        blocks = round(gap_s / old.period_s)
        gap = {"at_frame": at_frame, "blocks_lost": blocks, "duration_s": round(gap_s, 3),
               "reason": old.lost_why}
        for end in sharing:  # either end's report (the last one written wins) shows it
            end.discontinuities.append(gap)
        self.problem = None
        self._notice(f"device '{dev.name}' ({dev.host_api}) is back: the run goes on after a "
                     f"gap of {gap_s:.2f} s ({blocks} blocks lost)")
        return True

    def _open_again(self, old: DeviceStream, sharing: list) -> DeviceStream:
        """A new stream over the same devices (found again by name: indexes may change)."""
        sd = _sounddevice()   # a fresh PortAudio instance: the old one is abandoned
        try:
            devices = {end: resolve_device(end.device.name, end.kind) for end in sharing}
        except DeviceError:
            abandon_portaudio(sd)  # it has not found the device: the next try loads anew
            raise
        ends = _ends_by_session.get(self.session) if self.session is not None else None
        if ends is not None and ends.stream is old:
            ends.stream = None
        for end, device in devices.items():
            end.device = device
            end.stream = None
        try:
            self._open_stream()
        except DeviceError:
            abandon_portaudio(sd)
            raise
        new = self.stream
        for end in sharing:
            end.stream = new
        return new

    def _notice(self, line: str) -> None:
        if self.on_notice is not None:
            self.on_notice(line)

    def extend_report(self, report: dict) -> None:
        """Runner hook: add `in_flight` and the `device` section to a stats report. After a
        reconnect the section describes the stream in use, and `discontinuities` lists each
        gap (frame index where it fell, blocks lost, duration in seconds, why)."""
        stream = self.stream
        if stream is None:
            return
        report["device"] = stream.report()
        report["device"]["discontinuities"] = list(self.discontinuities)
        report["in_flight"] = report.get("in_flight", 0) + self.in_flight()

    def in_flight(self) -> int:
        return 0

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc):
        self.close()


class DeviceSource(_DeviceEnd, Source):
    """Blocks from a PortAudio input device. `device`: index, name (substring) or DeviceInfo.
    `mode`: 'queued' (default) or 'callback' (see the module doc)."""

    def __init__(self, fmt: AudioFormat, device, mode: str | None = None):
        _DeviceEnd.__init__(self, "input", fmt, device, mode)
        self._reads = 0
        self._behind = 0
        self._interrupted = False
        self._unread_at_stop = 0
        self._counted_unread = False
        self._poll_due = False
        if self.mode != "callback":      # callback mode polls in the audio callback
            self.wake_for_poll = self._wake_for_poll

    def _wake_for_poll(self) -> None:
        """Any thread (an executor's worker): read() returns POLL as soon as no captured
        block is waiting, so the run hands on an executor's answer between blocks."""
        self._poll_due = True
        stream = self.stream
        if stream is not None:
            stream.wakeup.ring()

    @property
    def runs_schedule(self) -> bool:
        """True in callback mode (the schedule runs in the audio callback)."""
        return self.mode == "callback"

    def open(self) -> None:
        """Open (or join) the session's device stream and start capturing; DeviceError (exit 2
        for a device named wrongly, 1 when PortAudio fails)."""
        if self._opened:
            return
        self._open_stream()
        self._opened = True

    def limit_frames(self, n: int) -> None:
        """Runner hook: capture exactly `n` blocks (the run's duration), so that none is left
        unread when it ends."""
        self.stream.capture_limit = n

    def read(self) -> np.ndarray | None:
        """Queued mode: wait for the next captured block and return the ring slot itself (no
        copy), shape (block_size,) or (block_size, channels) float32; None when the run's
        limit is reached or the run is interrupted. Raises DeviceLost when the device goes
        away (unless reconnecting). Runner's thread."""
        stream = self.stream
        if stream is None:
            raise DeviceError(f"{self.device.label()}: read() before open()")
        ring = stream.ring
        if not stream.capturing and stream.captured == 0:
            stream.capturing = True  # start at the first read: no stale blocks queue up
        outq = stream.outq if stream.deliver_audio_here else None
        while True:
            got = ring.get()
            if got is not None:
                if outq is None or not stream.started_playing or stream.bursty_output:
                    # (a voice loop's output runs ahead of its input by design: no catching
                    # up, which would skip the user's audio)
                    break
                # Catching up: normally the output queue is empty when a block is read (the
                # callback that captured it played the previous frame). After a late frame it
                # holds one: if it still does at the next read, this block is skipped (a
                # counted drop) so that latency returns to one block instead of staying higher.
                if outq.pending == 0:
                    self._behind = 0
                    break
                self._behind += 1
                if self._behind < 2:
                    break
                self._behind = 0
                stream.skipped += 1
                got = None  # the slot is free again
                continue
            if self._interrupted or self._closed:
                return None
            limit = stream.capture_limit
            if not stream.capturing and (limit is None or stream.captured >= limit):
                if limit is not None:
                    self.end_reason = "duration"
                return None
            if self._poll_due:
                self._poll_due = False
                return POLL
            if not stream.wakeup.wait(stream.period_s * 2) and stream.lost():
                if not self.reconnect:
                    raise stream.lost_error()
                remaining = None if limit is None else limit - stream.captured
                if not self._recover(stream, self._reads):
                    return None
                stream = self.stream
                stream.capture_limit = remaining
                stream.capturing = True
                ring = stream.ring
                outq = stream.outq if stream.deliver_audio_here else None
        block, slot = got
        seq = self._reads
        self._reads = seq + 1
        stream.note_read(seq, slot)
        stream.fold(self.session)
        return block

    def run_schedule(self, path, stop: threading.Event, max_frames: int | None) -> str:
        """Callback mode (Source.run_schedule): the audio callback takes each captured block
        through `path` (the runner's BlockPath: the same frame building, metering and push as
        the runner's own loop); this (engine) thread hands the outputs the callback could not
        play itself to `path.deliver`, raises what the graph raised, and ends the run. Returns
        the stop reason."""
        session = path.session
        deliver = path.deliver
        stream = self.stream
        stream.session = session
        stream.path = path
        stream.drive_limit = max_frames
        stream.capture_limit = max_frames
        stream.driving = True
        stream.capturing = True
        reason = "stopped"
        try:
            while True:
                rung = stream.wakeup.wait(stream.period_s * 2)
                if stream.error is not None:
                    raise stream.error
                events = stream.take_events()
                if events:
                    deliver(events)
                stream.fold(session)
                if stop.is_set() or self._interrupted:
                    break
                if not stream.driving:
                    reason = "duration"
                    break
                if not rung and stream.lost():
                    # What the callback pushed before the loss is delivered above; a block
                    # inside push() when the server died cannot finish (its callback is gone).
                    stream.driving = False
                    if not self.reconnect:
                        raise stream.lost_error()
                    pushed = stream.pushed
                    if not self._recover(stream, pushed):
                        break
                    stream = self.stream
                    stream.session = session
                    stream.path = path
                    stream.pushed = pushed   # seq and pts go on from where they were
                    stream.drive_limit = max_frames
                    stream.capture_limit = None if max_frames is None else max_frames - pushed
                    stream.driving = True
                    stream.capturing = True
        finally:
            stream.driving = False
            # the callback is inside push(): let it finish (a lost one never will)
            while stream.busy and stream.lost_why is None:
                time.sleep(stream.period_s / 20)
            stream.capturing = False
        if stream.error is not None:
            raise stream.error
        events = stream.take_events()
        if events:
            deliver(events)
        stream.fold(session, final=True)
        return reason

    def in_flight(self) -> int:
        """Blocks captured but not yet read (counted in the report's in_flight at stop)."""
        stream = self.stream
        return self._unread_at_stop if self._closed else (stream.ring.queued if stream else 0)

    def close(self) -> None:
        """Stop capturing and release the stream (the other end may still hold it); blocks left
        unread are counted. Safe twice; bounded even when the device is dead."""
        stream = self._begin_close()
        if stream is None:
            return
        stream.stop_capture()
        if self._opened:
            self._release_stream()

    def _count_unread(self) -> None:
        # Blocks captured but never read: frames in that are still in flight at stop.
        if self._counted_unread:
            return
        self._counted_unread = True
        stream = self.stream
        if stream is None or stream.ring is None:
            return
        self._unread_at_stop = stream.ring.queued
        if self.session is not None and self._unread_at_stop:
            self.session.counters.frames_in += self._unread_at_stop


class DeviceSink(_DeviceEnd, Sink):
    """Frames to a PortAudio output device. `device`: index, name (substring) or DeviceInfo."""

    # A device's converter clips (or wraps) beyond full scale: the callback repairs first.
    clips_to_full_scale = True

    def __init__(self, fmt: AudioFormat, device):
        _DeviceEnd.__init__(self, "output", fmt, device, None)
        self._unplayed = 0
        # Repairs of streams lost before the current one (added by _recover); the callback of
        # the current stream counts its own (DeviceStream.out_non_finite / out_clipped).
        self._repaired_before = [0, 0]
        self._lead_of = None       # the stream whose lead_samples() is _lead
        self._lead = 0.0
        self._placement = SteadyPlayClock()    # played_at without the timestamps' jitter

    def repair_report(self) -> dict:
        """{"non_finite", "clipped"}: samples the output callback repaired, over every stream
        this sink played through."""
        stream = self.stream
        now = (stream.out_non_finite, stream.out_clipped) if stream is not None else (0, 0)
        return {"non_finite": self._repaired_before[0] + now[0],
                "clipped": self._repaired_before[1] + now[1]}

    def open(self) -> None:
        """Open (or join) the session's device stream and start playing."""
        if self._opened:
            return
        self._open_stream()
        self._opened = True

    def write(self, frame) -> None:
        """Queue one frame for the output callback (a reference, no copy); waits while the queue
        is full. Raises DeviceLost when the device goes away (unless reconnecting, then the
        frame goes to the new stream). Runner's thread."""
        stream = self.stream
        if stream is None:
            raise DeviceError(f"{self.device.label()}: write() before open()")
        array = _as_frames(frame.array, self.channels)
        while True:
            if stream.outq.put(array, frame.seq):
                # One clock read per block: a device that has not called back for two periods
                # is asked whether it is gone (not only once the queue is full, 32 blocks on).
                if time.monotonic_ns() - stream.last_tick_ns < stream.period_s * 2e9 \
                        or not stream.lost():
                    break
            elif stream.wakeup.wait(stream.period_s) or not stream.lost():
                continue
            if not self.reconnect:
                raise stream.lost_error()
            # What the lost stream still held for playing is never played; the frame at hand
            # goes to the new stream.
            if not self._recover(stream, frame.seq or 0):
                return  # the run stopped while the device was away
            stream = self.stream
        if stream.ring is None or stream.mode == "queued":
            stream.fold(self.session)

    def play_clock(self):
        """Sink.play_clock: this sink itself when it shares a duplex stream with the session's
        device input (one clock for DAC and ADC times), else None."""
        stream = self.stream
        if stream is None or not (stream.has_input and stream.has_output):
            return None
        return self

    def played_at(self, seq: int) -> float | None:
        """PlayClock.played_at through the current stream (io/play_clock.py,
        SteadyPlayClock: counted in callbacks, the round trip from the timestamps held through
        their jitter; after a reconnect, the new stream's)."""
        stream = self.stream
        if stream is None or stream.last_read < 0:
            return None
        if self._lead_of is not stream:    # once per stream (a reconnect opens another)
            self._lead_of, self._lead = stream, lead_samples(stream)
            self._placement.reset()
        return self._placement.played_at(stream, seq, self._lead)

    def close(self) -> None:
        """Let the queued frames play (what is left is counted as unplayed), then release the
        stream. Safe twice; bounded even when the device is dead."""
        stream = self._begin_close()
        if stream is None:
            return
        ends = _ends_by_session.get(self.session) if self.session is not None else None
        if ends is not None and ends.stream is stream and ends.source is not None:
            stream.stop_capture()   # the run is over: no more blocks come in while we drain
        self._unplayed = stream.drain_output()
        stream.outq.release_consumed()
        if self._opened:
            self._release_stream()

    def extend_report(self, report: dict) -> None:
        """The device section, plus `unplayed_at_stop`: frames queued but never played, and
        `round_trip_retaken`: times the round trip that places played frames for an echo
        canceller was taken anew after its first reading, the timestamps having moved beyond
        their jitter (SteadyPlayClock; 0 when nothing asked where a frame played); the reply
        audio its queue dropped on a barge-in adds to the `barge_in` section."""
        super().extend_report(report)
        if "device" in report:
            report["device"]["unplayed_at_stop"] = self._unplayed
            report["device"]["round_trip_retaken"] = self._placement.retaken
            dropped = report["device"].get("interrupt_dropped")
            if dropped and "barge_in" in report:
                report["barge_in"]["dropped_blocks"] += dropped["blocks"]
                report["barge_in"]["dropped_samples"] += dropped["samples"]

    # -- barge-in (engine/bargein.py): the runner hands these to the schedule ---------------------
    def queued(self) -> int:
        """Blocks queued for the output callback and not yet played."""
        stream = self.stream
        return stream.outq.pending if stream is not None and stream.outq is not None else 0

    def room(self) -> int:
        """Blocks the output takes now without adding latency: one ahead of the callback.
        Audio a node on an executor made ahead (Speak) waits there, where a barge-in drops it,
        and queued duplex runs keep one block of latency (read() never skips to catch up)."""
        stream = self.stream
        if stream is None or stream.outq is None:
            return 0
        return max(0, 1 - stream.outq.pending)

    def speaks_in_bursts(self) -> None:
        """The graph's output only speaks now and then (a voice loop's replies): the
        callback counts an empty queue as silence (`silent_callbacks`), not an underflow."""
        stream = self.stream
        if stream is not None:
            stream.bursty_output = True

    def drop_queued(self) -> tuple[int, int]:
        """Barge-in: the callback drops every block queued so far at its next call (counted
        there, in the device section's `interrupt_dropped`). Returns (0, 0): nothing is
        dropped on this thread."""
        stream = self.stream
        if stream is not None and stream.outq is not None:
            stream.outq.drop_queued()
        return 0, 0
