"""Live audio through sounddevice (PortAudio): finding devices, and a Source and a Sink that
share one stream.

All sounddevice use in remotemedia is in this module, and sounddevice is imported only inside
functions: `import remotemedia` works on a machine without PortAudio. On one with JACK, the
server must already run when sounddevice is first imported (PortAudio enumerates devices once).

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

import contextlib
import gc
import os
import sys
import threading
import time
import weakref
from dataclasses import dataclass

import numpy as np

from ..engine.data import NumpyData
from ..engine.errors import DeviceError, UsageError
from ..engine.node import AudioFormat
from .base import Sink, Source
from .ring import InputRing, OutputQueue, Wakeup

MODES = ("queued", "callback")
DEFAULT_MODE = "queued"
#: ring slots (blocks): 32 x 20 ms = 640 ms of room before a block is refused
RING_BLOCKS = 32
#: output queue entries
OUTPUT_BLOCKS = 32
#: a device that delivers no callback for this long has stopped
STALL_S = 2.0
#: per-sequence tables (ADC time, capture and play callbacks) remember this many frames
_SEQ_TABLE = 4096
_SEQ_MASK = _SEQ_TABLE - 1
_E2E_RING = 4096
_HINT = "run `remotemedia devices` to see the devices there are"
_perf_ns = time.perf_counter_ns


# -- sounddevice, loaded on first use ----------------------------------------------------------------

_sd = None


def _sounddevice():
    """The sounddevice module; DeviceError when PortAudio is missing."""
    global _sd
    if _sd is None:
        _name_jack_client()
        try:
            with _quiet_stderr():
                import sounddevice
        except OSError as exc:
            raise DeviceError(f"cannot use sound devices: {exc} (install PortAudio: on Debian "
                              f"`apt-get install libportaudio2`)") from exc
        _sd = sounddevice
    return _sd


_jack_client_name = b""


def _name_jack_client() -> None:
    """Before PortAudio starts: call its JACK client "remotemedia" (REMOTEMEDIA_JACK_CLIENT
    overrides), not "PortAudio", so that JACK's patchbays and xrun messages name us. Only
    possible through PortAudio's own library before sounddevice initializes it; a PortAudio
    without JACK support, or none at all, is left to sounddevice's import to report."""
    global _jack_client_name
    if _jack_client_name:
        return  # once per process: PortAudio may still point at the bytes given before
    import ctypes
    import ctypes.util
    path = ctypes.util.find_library("portaudio")
    if path is None:
        return
    try:
        lib = ctypes.CDLL(path)
    except OSError:
        return
    set_name = getattr(lib, "PaJack_SetClientName", None)
    if set_name is None:
        return
    # PortAudio keeps the pointer, not a copy: the bytes live as long as the module.
    _jack_client_name = os.environ.get("REMOTEMEDIA_JACK_CLIENT", "remotemedia").encode()
    set_name.argtypes = [ctypes.c_char_p]
    set_name(_jack_client_name)


@contextlib.contextmanager
def _quiet_stderr():
    """libjack prints to fd 2 when no JACK server runs while PortAudio probes for one; that is
    not an error for a program that then uses another host API. REMOTEMEDIA_AUDIO_DEBUG=1
    keeps it."""
    if os.environ.get("REMOTEMEDIA_AUDIO_DEBUG"):
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no fd 2 to protect (embedded interpreter): nothing to hide
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def portaudio_available() -> bool:
    try:
        _sounddevice()
    except DeviceError:
        return False
    return True


# -- finding devices ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class DeviceInfo:
    index: int
    name: str
    host_api: str
    max_input_channels: int
    max_output_channels: int
    default_samplerate: float
    default_input: bool
    default_output: bool

    def channels(self, kind: str) -> int:
        return self.max_input_channels if kind == "input" else self.max_output_channels

    def label(self) -> str:
        return f"{self.index} '{self.name}' ({self.host_api})"

    def as_dict(self) -> dict:
        return {"index": self.index, "name": self.name, "host_api": self.host_api,
                "inputs": self.max_input_channels, "outputs": self.max_output_channels,
                "default_samplerate": self.default_samplerate,
                "default_input": self.default_input, "default_output": self.default_output}


def _translate(exc, what: str, hint: str = _HINT) -> DeviceError:
    return DeviceError(f"{what}: {exc}; {hint}")


def host_apis() -> list[dict]:
    sd = _sounddevice()
    try:
        return [dict(api) for api in sd.query_hostapis()]
    except sd.PortAudioError as exc:
        raise _translate(exc, "cannot list host APIs") from exc


def list_devices() -> list[DeviceInfo]:
    """Every device PortAudio knows, with the defaults marked."""
    sd = _sounddevice()
    try:
        apis = sd.query_hostapis()
        devices = sd.query_devices()
        default_in, default_out = sd.default.device
    except sd.PortAudioError as exc:
        raise _translate(exc, "cannot list devices") from exc
    if default_in is None or default_in < 0:
        default_in = _system_default("input")
    if default_out is None or default_out < 0:
        default_out = _system_default("output")
    return [DeviceInfo(i, d["name"], apis[d["hostapi"]]["name"], d["max_input_channels"],
                       d["max_output_channels"], float(d["default_samplerate"]),
                       i == default_in, i == default_out)
            for i, d in enumerate(devices)]


def _system_default(kind: str) -> int:
    """PortAudio's own default (sd.default.device is -1 until someone sets it)."""
    sd = _sounddevice()
    try:
        info = sd.query_devices(kind=kind)
    except sd.PortAudioError:
        return -1  # "no default input/output device": the caller reports none, not an error
    return int(info["index"])


def default_device(kind: str) -> tuple[int | None, str]:
    """(index, '') of the system default `kind` device, or (None, why there is none)."""
    try:
        devices = list_devices()
    except DeviceError as exc:
        return None, str(exc)
    for d in devices:
        if (d.default_input if kind == "input" else d.default_output) and d.channels(kind) > 0:
            return d.index, ""
    if not devices:
        return None, "PortAudio finds no sound device"
    return None, f"PortAudio finds no default {kind} device"


def resolve_device(spec, kind: str) -> DeviceInfo:
    """A device by index or by (a case-insensitive substring of) its name, that has `kind`
    channels. DeviceError with exit code 2, listing the devices, when there is no such one."""
    devices = list_devices()
    usable = [d for d in devices if d.channels(kind) > 0]
    text = str(spec).strip()
    if isinstance(spec, int) or text.lstrip("-").isdigit():
        index = int(text)
        for d in devices:
            if d.index == index:
                if d.channels(kind) == 0:
                    raise DeviceError(f"device {d.label()} has no {kind} channels; "
                                      f"{_listing(usable, kind)}", exit_code=2)
                return d
        raise DeviceError(f"no {kind} device with index {index}; {_listing(usable, kind)}",
                          exit_code=2)
    if not text:
        raise DeviceError(f"empty {kind} device name; {_listing(usable, kind)}", exit_code=2)
    wanted = text.lower()
    exact = [d for d in usable if d.name.lower() == wanted]
    if len(exact) == 1:
        return exact[0]
    matches = exact or [d for d in usable if wanted in d.name.lower()]
    if len(matches) == 1:
        return matches[0]
    if matches:
        names = ", ".join(d.label() for d in matches)
        raise DeviceError(f"{kind} device name '{text}' matches {len(matches)} devices "
                          f"({names}); give an index or a longer name", exit_code=2)
    raise DeviceError(f"no {kind} device matches '{text}'; {_listing(usable, kind)}",
                      exit_code=2)


def _listing(usable: list[DeviceInfo], kind: str) -> str:
    if not usable:
        return f"there are no {kind} devices ({_HINT.split(' to ')[0]} to check)"
    return f"{kind} devices: " + ", ".join(d.label() for d in usable)


def format_devices() -> str:
    """Host APIs and devices as `remotemedia devices` prints them."""
    apis = host_apis()
    devices = list_devices()
    lines = ["host APIs:"]
    for i, api in enumerate(apis):
        count = len(api["devices"])
        lines.append(f"  {i}  {api['name']}: {count} device{'s' if count != 1 else ''}")
    lines.append("devices:  (> default input, < default output, * both)")
    if not devices:
        lines.append("  none")
    for d in devices:
        mark = ("*" if d.default_input and d.default_output else
                ">" if d.default_input else "<" if d.default_output else " ")
        lines.append(f"{mark} {d.index:2d}  {d.name}  ({d.host_api}): {d.max_input_channels} in, "
                     f"{d.max_output_channels} out, {d.default_samplerate:g} Hz")
    return "\n".join(lines)


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
        self.seq_adc = np.zeros(_SEQ_TABLE, dtype=np.float64)
        self.seq_capture_tick = np.zeros(_SEQ_TABLE, dtype=np.int64)
        self.play_tag = np.full(_SEQ_TABLE, -1, dtype=np.int64)
        self.play_tick = np.zeros(_SEQ_TABLE, dtype=np.int64)
        self.play_offset = np.zeros(_SEQ_TABLE, dtype=np.int64)
        self.e2e_ns = np.zeros(_E2E_RING, dtype=np.int64)
        self.e2e_written = 0
        self._e2e_folded = 0
        # dac - adc of each callback: the latency PortAudio's timestamps give a direct
        # pass-through (duplex only)
        self.ts_latency = np.zeros(256, dtype=np.float64)
        # time spent in each callback (ours, from entry to return)
        self.callback_ns = np.zeros(_E2E_RING, dtype=np.int64)
        # written by the callback only
        self.ticks = 0
        self.last_tick_ns = 0
        self.input_overflow = 0
        self.output_underflow = 0
        self.starved = 0          # output queue empty once audio had started
        self.captured = 0         # blocks offered by the device while capturing (in + refused)
        self.played = 0           # output entries started
        self.copies_out = 0
        self.output_dropped = 0   # callback mode: an output that found the queue full
        self.odd_blocks = 0       # a callback with another frame count (refused)
        self.skipped = 0          # queued duplex: blocks skipped to win latency back (engine side)
        self.flagged = 0          # callbacks with a status flag, and the first few of them
        self.flagged_ticks = np.zeros(8, dtype=np.int64)
        self.started_playing = False
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
        # folding into session counters (engine side)
        self._folded = {}
        self._stream = None
        self._gc_frozen = False
        self.closed = False

    # -- lifecycle (engine side) ------------------------------------------------------------------
    def open(self) -> None:
        sd = _sounddevice()
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
        sd = _sounddevice()
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
        return time.monotonic_ns() - self.last_tick_ns > STALL_S * 1e9

    def stall_error(self) -> DeviceError:
        dev = self.input_device or self.output_device
        return DeviceError(f"{dev.label()}: no audio callback for {STALL_S:g} s: the stream "
                           f"stopped (is the audio server still running?)")

    def stop_capture(self) -> None:
        self.capturing = False

    def drain_output(self) -> int:
        """Wait until everything queued for output has been played; the number left over if the
        device stops playing first."""
        q = self.outq
        self.closing_output = True
        self.stop_capture()
        deadline = time.monotonic() + (q.pending + 3) * self.period_s + 1.0
        while q.pending > 0 and time.monotonic() < deadline and not self.stalled():
            self.wakeup.wait(self.period_s)
        left = q.pending
        return left

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.capturing = False
        self.driving = False
        sd = _sounddevice()
        stream, self._stream = self._stream, None
        try:
            if stream is not None:
                try:
                    if stream.active:
                        stream.stop()  # lets the last buffers play
                finally:
                    stream.close()
        except sd.PortAudioError as exc:
            raise _translate(exc, "cannot stop the audio stream") from exc
        finally:
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

    def _play(self, outdata, frames, dac, tick):
        q = self.outq
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
                    self.play_tag[k] = seq
                    self.play_tick[k] = tick
                    self.play_offset[k] = pos
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
        if pos < frames:
            outdata[pos:].fill(0)
            # A gap while audio is still coming is a glitch; after the input ended it is not.
            if not self.closing_output and (self.capturing or not self.has_input):
                self.starved += 1

    def _run_schedule(self):
        """Callback mode: push the block just captured through the graph, on this thread."""
        self.busy = True
        if not self.driving:  # the engine thread stopped us between the two checks
            self.busy = False
            return
        got = self.ring.get()
        block, slot = got
        seq = self.pushed
        k = seq & _SEQ_MASK
        self.seq_adc[k] = self.ring.adc_time[slot]
        self.seq_capture_tick[k] = self.ring.tick[slot]
        self.seq_tag[k] = seq
        frame = NumpyData(block, sample_rate=self.rate, pts=seq * self.block_size, seq=seq)
        del block
        try:
            outputs = self.session.push(frame, transfer=True)
        except BaseException as exc:  # handed to the engine thread, which raises it
            self.error = exc
            self.driving = False
            self.busy = False
            return
        self.pushed = seq + 1
        for out in outputs:
            if self.deliver_audio_here and type(out) is NumpyData:
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
        k = seq & _SEQ_MASK
        self.seq_adc[k] = self.ring.adc_time[slot]
        self.seq_capture_tick[k] = self.ring.tick[slot]
        self.seq_tag[k] = seq

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
            "output_underflow": self.output_underflow + self.starved,
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
        ring = self.ring
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
            "output_starved": self.starved,
            # which callbacks PortAudio flagged (xruns): at the start, the end, or in between
            "flagged_callbacks": [int(t) for t in
                                  self.flagged_ticks[:min(self.flagged, self.flagged_ticks.size)]],
            "output_dropped": self.output_dropped,
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


# -- the Source and the Sink ------------------------------------------------------------------------

class _DeviceEnd:
    clocked = True
    realtime = True

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
            raise DeviceError(f"{kind} device {self.device.label()} has "
                              f"{self.device.channels(kind)} {kind} channel(s); the manifest "
                              f"asks for {self.channels}", exit_code=2)
        self.description = f"device {self.device.name} ({self.device.host_api})"
        self.session = None
        self.stream: DeviceStream | None = None
        self._closed = False
        self._opened = False

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

    def extend_report(self, report: dict) -> None:
        """Runner hook: add `in_flight` and the `device` section to a stats report."""
        stream = self.stream
        if stream is None:
            return
        report["device"] = stream.report()
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

    @property
    def runs_schedule(self) -> bool:
        """Runner hook: True in callback mode (the schedule runs in the audio callback)."""
        return self.mode == "callback"

    def open(self) -> None:
        if self._opened:
            return
        self._open_stream()
        self._opened = True

    def limit_frames(self, n: int) -> None:
        """Runner hook: capture exactly `n` blocks (the run's duration), so that none is left
        unread when it ends."""
        self.stream.capture_limit = n

    def interrupt(self) -> None:
        """Runner hook (stop()): wake a read() that waits for the device."""
        self._interrupted = True
        if self.stream is not None:
            self.stream.wakeup.ring()

    def read(self) -> np.ndarray | None:
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
                if outq is None or not stream.started_playing:
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
                return None
            if not stream.wakeup.wait(stream.period_s * 2) and stream.stalled():
                raise stream.stall_error()
        block, slot = got
        seq = self._reads
        self._reads = seq + 1
        stream.note_read(seq, slot)
        stream.fold(self.session)
        return block

    def run_schedule(self, session, deliver, stop: threading.Event, max_frames: int | None,
                     progress=None) -> str:
        """Runner hook for callback mode: the audio callback pushes each captured block through
        `session`; this (engine) thread hands the outputs the callback could not play itself to
        `deliver`, raises what the graph raised, and ends the run. Returns the stop reason."""
        stream = self.stream
        stream.session = session
        stream.drive_limit = max_frames
        stream.capture_limit = max_frames
        stream.driving = True
        stream.capturing = True
        reason = "stopped"
        try:
            while True:
                stream.wakeup.wait(stream.period_s * 2)
                if stream.error is not None:
                    raise stream.error
                events = stream.take_events()
                if events:
                    deliver(events)
                stream.fold(session)
                if progress is not None:
                    progress(stream.pushed)
                if stop.is_set() or self._interrupted:
                    break
                if not stream.driving:
                    reason = "duration"
                    break
                if stream.stalled():
                    raise stream.stall_error()
        finally:
            stream.driving = False
            while stream.busy:  # the callback is inside push(): let it finish
                time.sleep(stream.period_s / 20)
            stream.capturing = False
        if stream.error is not None:
            raise stream.error
        events = stream.take_events()
        if events:
            deliver(events)
        if progress is not None:
            progress(stream.pushed)
        stream.fold(session, final=True)
        return reason

    def in_flight(self) -> int:
        stream = self.stream
        return self._unread_at_stop if self._closed else (stream.ring.queued if stream else 0)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        stream = self.stream
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

    def __init__(self, fmt: AudioFormat, device):
        _DeviceEnd.__init__(self, "output", fmt, device, None)
        self._unplayed = 0
        self.non_finite = self.clipped = 0    # Sink's repair counters (its __init__ is not run)

    def open(self) -> None:
        if self._opened:
            return
        self._open_stream()
        self._opened = True

    def write(self, frame) -> None:
        stream = self.stream
        if stream is None:
            raise DeviceError(f"{self.device.label()}: write() before open()")
        array = _as_frames(frame.array, self.channels)
        q = stream.outq
        while not q.put(array, frame.seq):
            if not stream.wakeup.wait(stream.period_s) and stream.stalled():
                raise stream.stall_error()
        if stream.ring is None or stream.mode == "queued":
            stream.fold(self.session)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        stream = self.stream
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
        super().extend_report(report)
        if "device" in report:
            report["device"]["unplayed_at_stop"] = self._unplayed
