"""One PortAudio stream, shared by a session's device source and sink: the audio callback, the
rings between it and the engine thread, and the accounting.
What happens to one block (960 frames at 48 kHz: 20 ms)
-------------------------------------------------------

    PortAudio callback (audio thread)               engine thread (the runner's)
    indata --copy--> InputRing slot   (io copy)
                     queued:   ring the doorbell --> read() returns the slot itself
                                                     session.push(frame)  (no copy)
                                                     sink.write(out): a reference into the
                                                     OutputQueue (no copy)
                     callback: session.push(frame) right here, outputs into the OutputQueue
    OutputQueue head --copy--> outdata  (io copy)
    end_to_end = DAC time of the callback that plays a frame - ADC time of the block it came from

`copies.io` counts exactly those two copies: one per block copied into the ring, one per block
copied out of the output queue into PortAudio's buffer. The graph in between copies nothing.
There is at most one thread hop (queued) or none (callback).

Modes
-----
- ``queued`` (the default): the callback only copies, counts and rings a doorbell (one
  nonblocking eventfd write); the graph runs on the engine thread. The callback takes no lock,
  does no I/O, allocates no buffer and never waits, so a slow node, a garbage collection or a
  page fault in a node cannot stall the audio thread (under JACK a late client makes the whole
  server glitch, other applications included). The price is exactly one block of latency: the
  output for the block captured in callback k is ready for callback k+1.
- ``callback``: the compiled schedule runs inside the callback and its output is played in the
  same callback: one block less latency, for graphs whose nodes are all fast and allocate
  little. Nodes then run on the audio thread, with whatever they allocate.

The default is ``queued`` because it is the one that cannot make the audio device glitch for
reasons outside the device's control; choose ``callback`` when latency matters more.

Accounting (nothing is lost silently)
-------------------------------------
- A block the callback cannot place in the ring (every slot queued or still held) is refused:
  it counts as a frame in and as a drop (drop-newest: the callback cannot wait, older blocks are
  already promised to the engine).
- Queued, with both ends on one stream, latency is kept at one block: after a late frame the
  output queue holds a frame too many, and if it still does at the next read the worker skips
  that captured block (a drop) rather than play everything late from then on. (A recording to
  a file has no output queue and never skips.)
- With a duration, the source captures exactly the frames the run asks for; blocks captured
  but not yet read when a run stops otherwise are `in_flight` (and frames in).
- So at stop: frames_in == frames_out + drops + in_flight, for a graph that turns one input
  frame into one output frame; the report says so with `in_flight` and a `device` section.
- Input overflow and output underflow flags from PortAudio count as xruns, and so does a
  callback that finds the output queue empty once audio has started (the listener hears a gap
  either way).
- end_to_end latency uses PortAudio's own clock: inputBufferAdcTime of the captured block and
  outputBufferDacTime (plus the frame's offset in the buffer) of the callback that plays it.

The garbage collector
---------------------
The callback needs the GIL, and a full collection holds it for as long as it takes to walk every
object (45 ms for the 55k objects of a test process on these machines: two missed periods).
While a device stream runs, what existed before it started is frozen out of collection
(`gc.freeze()` after one collection), so a collection only walks what the run itself made;
closing the last stream unfreezes, unless the application had frozen its heap itself.
"""

from __future__ import annotations

import gc
import threading
import time
import weakref

import numpy as np

from ..engine.data import NumpyData
from ..engine.errors import DeviceError, UsageError
from ..engine.levels import repair_in_place
from ..engine.node import AudioFormat
from .portaudio import (_HINT, DeviceInfo, DeviceLost, _is_jack, _sounddevice, _translate,
                        abandon_portaudio, jack_server_running)
from .ring import InputRing, OutputQueue, Wakeup

MODES = ("queued", "callback")
DEFAULT_MODE = "queued"
#: ring slots (blocks): 32 x 20 ms = 640 ms of room before a block is refused
RING_BLOCKS = 32
#: output queue entries
OUTPUT_BLOCKS = 32
#: a device that delivers no callback for this long has stopped
STALL_S = 2.0
#: closing a healthy stream may take this long (it plays its last buffers) before it is left
#: to a daemon thread and its PortAudio instance abandoned
CLOSE_TIMEOUT_S = 2.0
#: closing a lost stream waits at most this many block periods: it usually never returns
LOST_CLOSE_PERIODS = 1
#: with reconnect, how often a lost device is looked for again
RECONNECT_POLL_S = 0.2
#: per-sequence tables (ADC time, capture and play callbacks) remember this many frames
_SEQ_TABLE = 4096
_SEQ_MASK = _SEQ_TABLE - 1
_E2E_RING = 4096
_perf_ns = time.perf_counter_ns


# -- one PortAudio stream, shared by a session's source and sink ----------------------------------------

# A session's device ends find each other here, so that an input and an output on the same host
# API share one duplex stream (one clock for end-to-end latency, one callback).
_ends_by_session: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


class _Ends:
    __slots__ = ("source", "sink", "stream")

    def __init__(self):
        self.source = None
        self.sink = None
        self.stream = None


class DeviceStream:
    """One PortAudio stream with an input end, an output end, or both, and everything its
    callback touches, preallocated. Made by whichever device end opens first."""

    def __init__(self, fmt: AudioFormat, *, input_device: DeviceInfo | None = None,
                 input_channels: int = 0, output_device: DeviceInfo | None = None,
                 output_channels: int = 0, mode: str = DEFAULT_MODE,
                 ring_blocks: int = RING_BLOCKS, output_blocks: int = OUTPUT_BLOCKS):
        if mode not in MODES:
            raise UsageError(f"unknown device mode '{mode}'; expected one of: "
                             f"{', '.join(MODES)}")
        self.fmt = fmt
        self.rate = fmt.sample_rate
        self.block_size = fmt.block_size
        self.period_s = fmt.block_size / fmt.sample_rate
        self.mode = mode
        self.input_device = input_device
        self.output_device = output_device
        self.input_channels = input_channels
        self.output_channels = output_channels
        self.has_input = input_device is not None
        self.has_output = output_device is not None
        self.ring = InputRing(ring_blocks, fmt.block_size, input_channels) if self.has_input \
            else None
        self.outq = OutputQueue(output_blocks) if self.has_output else None
        self.wakeup = Wakeup()
        # per frame seq: ADC time and callback index of its block, callback and offset it
        # started playing in
        self.seq_tag = np.full(_SEQ_TABLE, -1, dtype=np.int64)
        self.last_read = -1       # seq of the newest captured block handed to the engine
        self.seq_adc = np.zeros(_SEQ_TABLE, dtype=np.float64)
        self.seq_capture_tick = np.zeros(_SEQ_TABLE, dtype=np.int64)
        self.play_tag = np.full(_SEQ_TABLE, -1, dtype=np.int64)
        self.play_tick = np.zeros(_SEQ_TABLE, dtype=np.int64)
        self.play_offset = np.zeros(_SEQ_TABLE, dtype=np.int64)
        self.play_dac = np.zeros(_SEQ_TABLE, dtype=np.float64)   # DAC time of its first sample
        self.e2e_ns = np.zeros(_E2E_RING, dtype=np.int64)
        self.e2e_written = 0
        self._e2e_folded = 0
        # dac - adc of each callback: the latency PortAudio's timestamps give a direct
        # pass-through (duplex only)
        self.ts_latency = np.zeros(256, dtype=np.float64)
        # time spent in each callback (ours, from entry to return)
        self.callback_ns = np.zeros(_E2E_RING, dtype=np.int64)
        self.callback_start_ns = np.zeros(_E2E_RING, dtype=np.int64)  # perf_counter_ns at entry
        # written by the callback only
        self.ticks = 0
        self.last_tick_ns = 0
        self.input_overflow = 0
        self.output_underflow = 0
        self.queue_underflows = 0          # output queue empty once audio had started
        self.gap_callbacks = 0             # empty callbacks not yet followed by audio
        self.captured = 0         # blocks offered by the device while capturing (in + refused)
        self.played = 0           # output entries started
        self.copies_out = 0
        # What the output boundary repaired in the callback: NaN/Inf samples and samples beyond
        # full scale (the device's converter would clip or wrap them); shared with DeviceSink.
        self.out_non_finite = 0
        self.out_clipped = 0
        self.output_dropped = 0   # callback mode: an output that found the queue full
        self.odd_blocks = 0       # a callback with another frame count (refused)
        self.skipped = 0          # queued duplex: blocks skipped to win latency back (engine side)
        self.flagged = 0          # callbacks with a status flag, and the first few of them
        self.flagged_ticks = np.zeros(8, dtype=np.int64)
        # PortAudio's status flags of each flagged callback (paInputUnderflow 1, paInputOverflow
        # 2, paOutputUnderflow 4, paOutputOverflow 8, paPrimingOutput 16), by tick
        self.status_tick = np.full(_E2E_RING, -1, dtype=np.int64)
        self.status_flags = np.zeros(_E2E_RING, dtype=np.int64)
        self.started_playing = False
        # output only from a voice loop's reply (engine side): an empty queue is silence
        self.bursty_output = False
        self.silent_callbacks = 0
        # switched by the engine side
        self.capturing = False
        self.capture_limit: int | None = None
        self.closing_output = False
        self.prefill = 1
        # callback mode
        self.session = None
        self.driving = False
        self.busy = False
        self.error: BaseException | None = None
        self.pushed = 0
        self.drive_limit: int | None = None
        self.events: list = [None] * 256
        self.events_written = 0
        self.events_read = 0
        self.events_lost = 0
        self.deliver_audio_here = False
        self.path = None          # callback mode: the runner's BlockPath (Source.run_schedule)
        # folding into session counters (engine side)
        self._folded = {}
        self._stream = None
        self._sd = None           # the sounddevice module (PortAudio instance) of the stream
        self._gc_frozen = False
        self.closed = False
        # loss of the device (engine side): why, once found; whether its close came back
        self.lost_why: str | None = None
        self.abandoned = False

    # -- lifecycle (engine side) ------------------------------------------------------------------
    def open(self) -> None:
        """Open the PortAudio stream (callback attached, not started); DeviceError translated
        from PortAudioError."""
        sd = self._sd = _sounddevice()
        kwargs = dict(samplerate=self.rate, blocksize=self.block_size, dtype="float32",
                      latency="low")
        try:
            if self.has_input and self.has_output:
                self._stream = sd.Stream(
                    device=(self.input_device.index, self.output_device.index),
                    channels=(self.input_channels, self.output_channels),
                    callback=self._duplex_callback, **kwargs)
            elif self.has_input:
                self._stream = sd.InputStream(device=self.input_device.index,
                                              channels=self.input_channels,
                                              callback=self._input_callback, **kwargs)
            else:
                self._stream = sd.OutputStream(device=self.output_device.index,
                                               channels=self.output_channels,
                                               callback=self._output_callback, **kwargs)
        except sd.PortAudioError as exc:
            raise self._open_error(exc) from exc
        except ValueError as exc:  # sounddevice's own checks (channels, dtype)
            raise self._open_error(exc) from exc

    def _open_error(self, exc) -> DeviceError:
        parts = []
        if self.has_input:
            parts.append(f"input {self.input_device.label()}")
        if self.has_output:
            parts.append(f"output {self.output_device.label()}")
        what = (f"cannot open {' and '.join(parts)} at {self.rate} Hz in "
                f"{self.block_size}-frame blocks, {self.input_channels or self.output_channels}"
                f" channel(s)")
        dev = self.input_device or self.output_device
        msg = str(exc)
        if "sample rate" in msg.lower():
            hint = (f"the device runs at {dev.default_samplerate:g} Hz: set audio.sample_rate "
                    f"in the manifest to that, or resample in the graph")
        elif "channel" in msg.lower():
            hint = (f"it has {dev.max_input_channels} input and {dev.max_output_channels} "
                    f"output channels; set audio.channels in the manifest")
        else:
            hint = _HINT
        return _translate(exc, what, hint)

    def start(self) -> None:
        """Start the stream: callbacks begin; the GC heap is frozen while any stream runs."""
        sd = self._sd
        _freeze_gc()
        self._gc_frozen = True
        self.last_tick_ns = time.monotonic_ns()
        try:
            self._stream.start()
        except sd.PortAudioError as exc:
            raise _translate(exc, "cannot start the audio stream") from exc

    @property
    def latency(self) -> tuple[float, float]:
        """PortAudio's reported (input, output) latency of the stream, in seconds."""
        lat = self._stream.latency if self._stream is not None else (0.0, 0.0)
        if not isinstance(lat, tuple):
            lat = (lat, 0.0) if self.has_input else (0.0, lat)
        return float(lat[0]), float(lat[1])

    @property
    def timestamp_latency_s(self) -> float | None:
        """Median over recent callbacks of outputBufferDacTime - inputBufferAdcTime: what
        PortAudio's clock says a block that goes straight through takes (duplex only)."""
        n = min(self.ticks, self.ts_latency.size)
        if not (self.has_input and self.has_output) or n == 0:
            return None
        return float(np.median(self.ts_latency[:n]))

    def stalled(self) -> bool:
        """True when no callback came for STALL_S seconds (a device that stops without saying
        so)."""
        return time.monotonic_ns() - self.last_tick_ns > STALL_S * 1e9

    def lost(self) -> bool:
        """Engine side, after a wait in which no callback came: has the device gone away?

        Yes when PortAudio says the stream is no longer active although nobody stopped it (its
        JACK host API notices a dead server at once, through JACK's shutdown callback), or when
        no callback came for STALL_S (a host API that does not notice). One nonblocking
        Pa_IsStreamActive call; never in a callback."""
        if self.lost_why is not None:
            return True
        stream = self._stream
        if stream is None or self.closed:
            return False
        stalled = self.stalled()
        if not stalled:
            try:
                if stream.active:
                    return False
            except Exception:  # noqa: BLE001  (PortAudioError from a broken stream: lost)
                pass
        dev = self.input_device or self.output_device
        if _is_jack(dev.host_api) and self._jack_server_gone(stalled):
            self.lost_why = "the audio server went away"
        elif stalled:
            self.lost_why = f"no audio callback for {STALL_S:g} s"
        else:
            self.lost_why = "PortAudio stopped the stream"
        abandon_portaudio(self._sd)  # whatever PortAudio does next with it may never return
        return True

    def _jack_server_gone(self, stalled: bool) -> bool:
        """Is the JACK server gone? A killed server's process closes its client connections
        and its listening socket one after the other, so a client may hear of its death a
        moment before the socket refuses connections: a stream that stopped by itself gets up
        to two block periods for that (measured: one in five kills needed it)."""
        deadline = time.monotonic() + (0.0 if stalled else 2 * self.period_s)
        while True:
            running = jack_server_running()
            if running is not True:
                return running is False
            if time.monotonic() >= deadline:
                return False
            time.sleep(self.period_s / 8)

    def lost_error(self) -> DeviceLost:
        """The DeviceLost error for this stream: one line naming the device, host API and cause."""
        dev = self.input_device or self.output_device
        why = self.lost_why or f"no audio callback for {STALL_S:g} s"
        return DeviceLost(f"device '{dev.name}' ({dev.host_api}) stopped delivering audio: "
                          f"{why}")

    def stop_capture(self) -> None:
        """Stop taking input blocks (the run is over); the callback keeps playing what is
        queued."""
        self.capturing = False

    def drain_output(self) -> int:
        """Wait until everything queued for output has been played; the number left over if the
        device stops playing first."""
        q = self.outq
        self.closing_output = True
        self.stop_capture()
        deadline = time.monotonic() + (q.pending + 3) * self.period_s + 1.0
        while q.pending > 0 and time.monotonic() < deadline:
            if not self.wakeup.wait(self.period_s) and self.lost():
                break
        left = q.pending
        return left

    def close(self) -> None:
        """Stop and close the PortAudio stream, on a daemon thread with a bounded wait: a
        healthy stream gets CLOSE_TIMEOUT_S to play its last buffers, a lost one
        LOST_CLOSE_PERIODS block periods (its close usually never returns; see
        abandon_portaudio). A close that does not come back in time is left running on its
        thread, and its PortAudio instance is abandoned. Safe twice; the caller's thread stays
        responsive to signals meanwhile."""
        if self.closed:
            return
        self.closed = True
        self.capturing = False
        self.driving = False
        stream, self._stream = self._stream, None
        lost = self.lost_why is not None
        failure: list = []
        done = threading.Event()

        def close_it():
            try:
                if not lost and stream.active:
                    stream.stop()  # lets the last buffers play
            except Exception as exc:  # noqa: BLE001  (reported below, after close)
                failure.append(exc)
            finally:
                try:
                    stream.close()
                except Exception as exc:  # noqa: BLE001
                    failure.append(exc)
                done.set()

        try:
            if stream is not None:
                threading.Thread(target=close_it, name="remotemedia-device-close",
                                 daemon=True).start()
                timeout = self.period_s * LOST_CLOSE_PERIODS if lost else CLOSE_TIMEOUT_S
                if not done.wait(timeout):
                    self.abandoned = True
                    abandon_portaudio(self._sd)
                elif failure and not lost:
                    raise _translate(failure[0], "cannot stop the audio stream") \
                        from failure[0]
        finally:
            if not self.abandoned:
                # An abandoned stream may still call back: its doorbell stays open (one fd).
                self.wakeup.close()
            if self._gc_frozen:
                self._gc_frozen = False
                _unfreeze_gc()

    # -- the callback (audio thread) -----------------------------------------------------------------
    def _duplex_callback(self, indata, outdata, frames, t, status):
        self._process(indata, outdata, frames, t, status)

    def _input_callback(self, indata, frames, t, status):
        self._process(indata, None, frames, t, status)

    def _output_callback(self, outdata, frames, t, status):
        self._process(None, outdata, frames, t, status)

    def _process(self, indata, outdata, frames, t, status):
        t0 = _perf_ns()
        tick = self.ticks
        self.ticks = tick + 1
        self.last_tick_ns = time.monotonic_ns()
        if status:
            if status.input_overflow:
                self.input_overflow += 1
            if status.output_underflow:
                self.output_underflow += 1
            n = self.flagged
            if n < self.flagged_ticks.size:
                self.flagged_ticks[n] = tick
            k = tick & (_E2E_RING - 1)
            self.status_flags[k] = (status.input_underflow | status.input_overflow << 1
                                    | status.output_underflow << 2
                                    | status.output_overflow << 3 | status.priming_output << 4)
            self.status_tick[k] = tick
            self.flagged = n + 1
        if indata is not None:
            adc = t.inputBufferAdcTime
            if outdata is not None:
                self.ts_latency[tick & 255] = t.outputBufferDacTime - adc
            if self.capturing:
                limit = self.capture_limit
                if limit is not None and self.captured >= limit:
                    self.capturing = False
                else:
                    self.captured += 1
                    if frames != self.block_size:  # cannot happen with a fixed blocksize
                        self.odd_blocks += 1
                    elif self.ring.put(indata, adc, tick) and self.driving:
                        self._run_schedule()
        if outdata is not None:
            self._play(outdata, frames, t.outputBufferDacTime, tick)
        self.wakeup.ring()
        self.callback_ns[tick & (_E2E_RING - 1)] = _perf_ns() - t0
        self.callback_start_ns[tick & (_E2E_RING - 1)] = t0

    def _play(self, outdata, frames, dac, tick):
        q = self.outq
        q.consumer_drop()   # a barge-in's request, if any: the queued reply is not played
        if not self.started_playing:
            if q.written - q.consumed < self.prefill:
                outdata.fill(0)
                return
            self.started_playing = True
        cap = q.capacity
        pos = 0
        while pos < frames:
            c = q.consumed
            if c >= q.written:
                break
            i = c % cap
            item = q.items[i]
            off = q.offset
            n = item.shape[0] - off
            if off == 0:
                self.played += 1
                seq = int(q.seqs[i])
                if seq >= 0:
                    k = seq & _SEQ_MASK
                    self.play_tick[k] = tick
                    self.play_offset[k] = pos
                    self.play_dac[k] = dac + pos / self.rate
                    self.play_tag[k] = seq   # last: a reader that sees the tag sees the rest
                    if self.seq_tag[k] == seq:
                        w = self.e2e_written
                        self.e2e_ns[w & (_E2E_RING - 1)] = int(
                            (dac + pos / self.rate - self.seq_adc[k]) * 1e9)
                        self.e2e_written = w + 1
            if off == 0 and pos == 0 and n == frames:
                np.copyto(outdata, item, casting="unsafe")
                pos = frames
                q.consumed = c + 1
                self.copies_out += 1
                break
            if n > frames - pos:
                n = frames - pos
                np.copyto(outdata[pos:pos + n], item[off:off + n], casting="unsafe")
                q.offset = off + n
                pos += n
                break
            np.copyto(outdata[pos:pos + n], item[off:off + n], casting="unsafe")
            pos += n
            q.offset = 0
            q.consumed = c + 1
            self.copies_out += 1
        # Two reductions on clean audio; a repair (in PortAudio's own buffer) only when needed.
        if pos and not (float(outdata.max()) <= 1.0 and float(outdata.min()) >= -1.0):
            bad, clipped = repair_in_place(outdata[:pos])
            self.out_non_finite += bad
            self.out_clipped += clipped
        if pos and self.gap_callbacks:
            # audio came after a gap: the gap was a glitch in the middle of the stream
            self.queue_underflows += self.gap_callbacks
            self.gap_callbacks = 0
        if pos < frames:
            outdata[pos:].fill(0)
            # A gap counts once more audio follows it: silence after the stream's last block
            # (while a node finishes at end of stream, say a transcription) is no glitch.
            if self.bursty_output:   # silence between replies: no glitch, counted apart
                self.silent_callbacks += 1
            elif not self.closing_output and (self.capturing or not self.has_input):
                self.gap_callbacks += 1

    def _run_schedule(self):
        """Callback mode: push the block just captured through the graph, on this thread."""
        self.busy = True
        if not self.driving:  # the engine thread stopped us between the two checks
            self.busy = False
            return
        got = self.ring.get()
        block, slot = got
        seq = self.pushed
        self.note_read(seq, slot)   # ADC time and capture callback, as the engine side does
        path = self.path
        try:
            # The runner's own path (runner.BlockPath): frame, arrival, input level, push.
            outputs = path.take(block, seq, seq * self.block_size)
        except BaseException as exc:  # handed to the engine thread, which raises it
            self.error = exc
            self.driving = False
            self.busy = False
            return
        self.pushed = seq + 1
        for out in outputs:
            if self.deliver_audio_here and type(out) is NumpyData:
                path.meter(out.array, "output")
                if not self.outq.put(_as_frames(out.array, self.output_channels), out.seq):
                    self.output_dropped += 1
            else:
                w = self.events_written
                if w - self.events_read >= len(self.events):
                    self.events_lost += 1
                else:
                    self.events[w % len(self.events)] = out
                    self.events_written = w + 1
        limit = self.drive_limit
        if limit is not None and self.pushed >= limit:
            self.driving = False
            self.capturing = False
        self.busy = False

    # -- engine side ---------------------------------------------------------------------------------
    def note_read(self, seq: int, slot: int) -> None:
        """Remember block `seq`'s ADC time and capture callback from ring slot `slot`, for
        end-to-end latency and io/play_clock.py (engine thread; the callback in callback
        mode)."""
        k = seq & _SEQ_MASK
        self.seq_adc[k] = self.ring.adc_time[slot]
        self.seq_capture_tick[k] = self.ring.tick[slot]
        self.seq_tag[k] = seq
        self.last_read = seq

    def fold(self, session, final: bool = False) -> None:
        """Add what the callback counted since the last fold to the session's counters, and
        record end-to-end latencies. Engine side only; frames_in and drops (which the engine
        also counts on the thread that pushes) only when no callback is pushing."""
        if session is None:
            return
        c = session.counters
        f = self._folded
        ring = self.ring
        now = {
            "input_overflow": self.input_overflow,
            "output_underflow": self.output_underflow + self.queue_underflows,
        }
        if not self.driving or final:
            # Counters the engine also updates, on the thread that pushes: only while no
            # callback pushes.
            refused = (ring.refused if ring is not None else 0) + self.odd_blocks + self.skipped
            now["io"] = (ring.written if ring is not None else 0) + self.copies_out
            now["frames_in"] = refused
            now["drops"] = refused + self.output_dropped
        for name, value in now.items():
            delta = value - f.get(name, 0)
            if delta:
                setattr(c, name, getattr(c, name) + delta)
                f[name] = value
        w = self.e2e_written
        start = max(self._e2e_folded, w - _E2E_RING)
        for i in range(start, w):
            session.record_end_to_end_ns(int(self.e2e_ns[i & (_E2E_RING - 1)]))
        self._e2e_folded = w

    def take_events(self) -> list:
        """Callback mode: outputs the callback handed to the engine thread, in order."""
        out = []
        ev = self.events
        cap = len(ev)
        r, w = self.events_read, self.events_written
        while r < w:
            i = r % cap
            out.append(ev[i])
            ev[i] = None
            r += 1
        self.events_read = r
        return out

    def report(self) -> dict:
        """The report's `device` section: mode, host API, devices, reported and timestamp
        latency, callback timing, what was captured, played, refused, skipped and repaired."""
        ring, q = self.ring, self.outq
        ts = self.timestamp_latency_s
        lat_in, lat_out = self.latency if self._stream is not None else self._last_latency
        return {
            "mode": self.mode,
            "host_api": (self.input_device or self.output_device).host_api,
            "input": self.input_device.name if self.has_input else None,
            "output": self.output_device.name if self.has_output else None,
            "block_size": self.block_size,
            "latency_s": {"input": lat_in, "output": lat_out},
            "timestamp_latency_us": None if ts is None else round(ts * 1e6, 3),
            "callbacks": self.ticks,
            "captured": self.captured,
            "refused": (ring.refused if ring is not None else 0) + self.odd_blocks,
            "played": self.played,
            "skipped_to_catch_up": self.skipped,
            "output_queue_underflows": self.queue_underflows,
            "silent_callbacks": self.silent_callbacks,   # between a voice loop's replies
            # which callbacks PortAudio flagged (xruns): at the start, the end, or in between
            "flagged_callbacks": [int(t) for t in
                                  self.flagged_ticks[:min(self.flagged, self.flagged_ticks.size)]],
            "output_dropped": self.output_dropped,
            # barge-in: blocks (and their frames) queued for output and dropped unplayed
            "interrupt_dropped": {"blocks": q.dropped_blocks if q else 0,
                                  "samples": q.dropped_samples if q else 0},
            "events_lost": self.events_lost,
            "callback_us": self._callback_summary(),
        }

    def _callback_summary(self) -> dict | None:
        n = min(self.ticks, self.callback_ns.size)
        if n == 0:
            return None
        window = self.callback_ns[:n] / 1e3
        p50, p99 = np.percentile(window, (50, 99))
        return {"p50": round(float(p50), 3), "p99": round(float(p99), 3),
                "max": round(float(window.max()), 3)}

    _last_latency = (0.0, 0.0)


_gc_lock = threading.Lock()
_gc_streams = 0
_gc_ours = False  # True when nothing was frozen before the first stream froze it


def _freeze_gc() -> None:
    global _gc_streams, _gc_ours
    with _gc_lock:
        if _gc_streams == 0:
            _gc_ours = gc.get_freeze_count() == 0
            gc.collect()
            gc.freeze()
        _gc_streams += 1


def _unfreeze_gc() -> None:
    global _gc_streams
    with _gc_lock:
        _gc_streams -= 1
        if _gc_streams == 0 and _gc_ours:
            gc.unfreeze()  # an application that froze its heap itself (the TUI) keeps it so


def _as_frames(array: np.ndarray, channels: int) -> np.ndarray:
    """(samples,) -> (samples, 1) view; (samples, channels) as it is."""
    if array.ndim == 1:
        return array.reshape(array.shape[0], 1)
    if array.ndim == 2 and array.shape[1] == channels:
        return array
    raise DeviceError(f"an output frame shaped {array.shape} does not fit a {channels}-channel "
                      f"device stream")
