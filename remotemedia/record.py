"""Recording a live run: what entered the graph, when, and what came out.

`remotemedia stream ... --record DIR` (and the TUI's record key) attach a `Recorder` to the
runner as its block observer. A recording directory holds:

    input.wav       the input blocks exactly as they entered the graph: 32-bit float, RF64
                    (a WAV that stays readable past 4 GiB; libsndfile writes a plain RIFF
                    header while the file is small: SFC_RF64_AUTO_DOWNGRADE)
    output.wav      the audio frames that reached `output`, 32-bit float RF64, in the
                    manifest's output format
    timeline.csv    one row per block: see TIMELINE_COLUMNS
    events.jsonl    the non-audio outputs, one {"seq": block, "event": {...}} per line
    report.json     the run's final stats report, with a `recording` section
    manifest.json   the manifest as resolved (audio format filled in)
    versions.json   remotemedia, Python, numpy, soundfile/libsndfile, sounddevice/PortAudio,
                    and the engine's settings ({"engine": {"fuse": ...}})

Never blocking the audio path
-----------------------------
The runner calls `block()` before each push and `outputs()` after it, on its own thread. Both
only copy into preallocated rings (one copy of each input block, one of each output frame) and
store a row tuple; a writer thread of the recorder's own drains the rings to disk, like a device
end's ring drained by the engine thread, single producer and single consumer, no lock. In a real
time run (a device, the virtual device, --realtime), when the writer falls behind by a whole
ring (RING_BLOCKS blocks, 5 s at 20 ms) the block is not recorded and counted
(`recording.blocks_dropped`, `recording.outputs_dropped`), never waited for. A run that is not
real time (a file as fast as it goes) has no deadline to miss: there the recorder waits for its
writer instead, so nothing is lost. Each block's cost (block() + outputs()) is measured
(`recording.cost_us`).

Sources for the device columns: io/devices.py's per-sequence tables (`seq_adc`,
`seq_capture_tick`, `play_dac`), which the device callback writes from PortAudio's
`inputBufferAdcTime` and `outputBufferDacTime` (plus the frame's offset in the buffer).
"""

from __future__ import annotations

import collections
import csv
import json
import math
import os
import platform
import sys
import threading
import time
from pathlib import Path

import numpy as np

from .engine import strictjson
from .engine.data import NumpyData
from .engine.errors import RemoteMediaError, UsageError
from .runner import BlockObserver

#: blocks of room between the runner and the writer thread (5.12 s at 960 samples / 48 kHz)
RING_BLOCKS = 256
#: rows the writer holds back so that a block has been played (its DAC time known) when written
HOLDBACK_ROWS = 8
_SEQ_MASK = 4096 - 1   # io/devices.py's _SEQ_TABLE - 1

#: timeline.csv columns, in order. Times on the run's clock are microseconds since the run
#: started; adc_time/dac_time are PortAudio's stream clock in seconds (empty without a device);
#: the counters are the session's running totals after the block was read; device_drops is
#: the device end's own part of drops (blocks refused by its ring, skipped to catch up, outputs
#: it could not queue), which a replay puts back where it happened; status is PortAudio's
#: callback flags of the callback that captured the block (paInputUnderflow 1, paInputOverflow 2,
#: paOutputUnderflow 4, paOutputOverflow 8, paPrimingOutput 16; 0 when none, -1 without a
#: device input).
TIMELINE_COLUMNS = ("seq", "pts", "samples", "arrival_us", "lateness_us", "engine_us",
                    "adc_time", "dac_time", "capture_tick", "status", "input_overflow",
                    "output_underflow", "drops", "device_drops", "errors", "audio_out",
                    "events_out")

FILES = ("input.wav", "output.wav", "timeline.csv", "events.jsonl", "report.json",
         "manifest.json", "versions.json")
_SFC_RF64_AUTO_DOWNGRADE = 0x1210   # sndfile.h
_clock = time.perf_counter
_copyto = np.copyto


def open_float_wav(path: Path, sample_rate: int, channels: int):
    """A soundfile.SoundFile for writing 32-bit float, RF64 with auto-downgrade: a plain RIFF
    WAV while it is under 4 GiB, RF64 beyond (libsndfile's SFC_RF64_AUTO_DOWNGRADE)."""
    import soundfile as sf
    f = sf.SoundFile(str(path), "w", samplerate=sample_rate, channels=channels,
                     subtype="FLOAT", format="RF64")
    sf._snd.sf_command(f._file, _SFC_RF64_AUTO_DOWNGRADE, sf._ffi.NULL, 1)
    return f


def versions() -> dict:
    """remotemedia and its audio libraries, as strings (None where one is not installed)."""
    from importlib import metadata

    from . import __version__

    def dist(name):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    out = {"remotemedia": __version__, "python": platform.python_version(),
           "platform": platform.platform(), "numpy": np.__version__,
           "soundfile": dist("soundfile"), "sounddevice": dist("sounddevice"),
           "soxr": dist("soxr"), "onnxruntime": dist("onnxruntime"),
           "libsndfile": None, "portaudio": None}
    try:
        import soundfile
        out["libsndfile"] = soundfile.__libsndfile_version__
    except (ImportError, OSError):
        pass
    sd = sys.modules.get("sounddevice")  # never imported here: it must not start PortAudio
    if sd is not None:
        out["portaudio"] = sd.get_portaudio_version()[1]
    return out


def resolved_manifest(manifest, document: dict | None = None) -> dict:
    """The manifest as it ran: the document (or one rebuilt from the validated specs) with the
    audio format and every node's parameters (defaults included) and error policy resolved."""
    a = manifest.audio
    if document is None:
        document = {
            "version": manifest.version, "metadata": dict(manifest.metadata),
            "nodes": [{"id": s.id, "node_type": s.node_type, "params": dict(s.params),
                       "executor": s.executor, "on_error": s.on_error}
                      for s in manifest.nodes],
            "connections": [{"from": c.source, "to": c.target, "input": c.input}
                            for c in manifest.connections]}
    doc = dict(document)
    doc["audio"] = {"sample_rate": a.sample_rate, "block_size": a.block_size,
                    "channels": a.channels}
    # every parameter as it ran, defaults included: a later version's defaults cannot change
    # what a replay of this recording does
    specs = {spec.id: spec for spec in manifest.nodes}
    nodes = []
    for node in doc.get("nodes") or []:
        node = dict(node)
        spec = specs.get(node.get("id"))
        if spec is not None:
            node["params"] = dict(spec.params)
            node["on_error"] = spec.on_error
        nodes.append(node)
    doc["nodes"] = nodes
    return doc


def prepare_directory(directory) -> Path:
    """Make DIR for a recording; UsageError (exit 2) if it is a file or already holds one."""
    path = Path(directory)
    if path.exists() and not path.is_dir():
        raise UsageError(f"--record: {path} exists and is not a directory")
    if path.is_dir() and any((path / name).exists() for name in FILES):
        raise UsageError(f"--record: {path} already holds a recording; give a new directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--record: cannot create {path}: {exc.strerror}") from None
    if not os.access(path, os.W_OK):
        raise UsageError(f"--record: {path} is not writable")
    return path


class Recorder(BlockObserver):
    """Records a run into `directory` (see the module doc). `bind(runner)` before the run,
    `open()`, then `close(stats)` after it. `manifest_document`: the raw manifest mapping,
    written resolved into manifest.json.

    Counters (`summary()`): blocks_recorded, blocks_dropped (the writer was a whole ring
    behind), outputs_recorded, outputs_dropped, outputs_mismatched (a frame whose channel count
    is not the output format's), events, cost_us (p50/p99/max of block() + outputs())."""

    def __init__(self, directory, *, manifest_document: dict | None = None,
                 ring_blocks: int = RING_BLOCKS):
        self.path = prepare_directory(directory)
        self.manifest_document = manifest_document
        self.capacity = ring_blocks
        self.runner = None
        self.blocks_recorded = 0
        self.blocks_dropped = 0
        self.outputs_recorded = 0
        self.outputs_dropped = 0
        self.outputs_mismatched = 0
        self.events = 0
        self.accepting = False
        self.closed = False
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._kick = threading.Event()    # wakes the writer early
        self._room = threading.Event()    # the writer made room
        self._closing = False
        #: wait for the writer when the ring is full instead of dropping the block; bind()
        #: sets it for runs that are not real time (nothing but the disk waits for them)
        self.wait_when_full = False
        self._cost = np.zeros(1 << 16, dtype=np.float64)
        self._cost_n = 0
        self._t_block = 0.0
        self._cost_block = 0.0
        self._seq = -1
        self._row_index = -1

    # -- set up (before the run) -----------------------------------------------------------------
    def bind(self, runner) -> "Recorder":
        """Takes the run's formats (rate in Hz, channels, block size in samples, the output's
        format) from `runner` and sizes the rings; waits for the writer when full only when the
        run is not realtime (a file run), else drops and counts. Returns self."""
        self.runner = runner
        self.wait_when_full = not runner.realtime
        manifest = runner.pipeline.manifest
        audio = manifest.audio
        self.sample_rate = audio.sample_rate
        self.block_size = audio.block_size
        self.channels = audio.channels or 1
        out = manifest.output_format
        self.out_rate = out.sample_rate or audio.sample_rate
        self.out_channels = out.channels or 1
        self.manifest = manifest
        cap = self.capacity
        shape = (cap, self.block_size, self.channels)
        self._slots = np.zeros(shape, dtype=np.float32)
        # what a whole block is copied into: the block's own shape, (samples,) for mono
        self._in_views = [slot.reshape(self.block_size) if self.channels == 1 else slot
                          for slot in self._slots]
        self._counters = None
        self._device = None
        self._probes = None
        self._node_values = None
        self._writer_counts = None
        self._rows: list = [None] * cap
        self._w = 0   # rows published (producer)
        self._r = 0   # rows written to disk (writer)
        out_cap = cap * self.block_size * 2
        self._obuf = np.zeros((out_cap, self.out_channels), dtype=np.float32)
        self._ocap = out_cap
        self._ow = 0   # output samples published
        self._or = 0   # output samples written
        self._oentries: list = [None] * (cap * 4)
        self._oew = 0
        self._oer = 0
        self._events: collections.deque = collections.deque()
        return self

    def open(self) -> None:
        """Create the files and start the writer thread; from here `block()` records."""
        if self.runner is None:
            raise RemoteMediaError("Recorder.open() before bind(runner)")
        p = self.path
        (p / "manifest.json").write_text(strictjson.dumps(
            resolved_manifest(self.manifest, self.manifest_document), indent=2,
            default=str) + "\n")
        # with how the engine ran, which a replay must repeat (a fused chain's last bits)
        doc = {**versions(), "engine": {"fuse": bool(getattr(self.runner, "fuse", True))}}
        (p / "versions.json").write_text(json.dumps(doc, indent=2) + "\n")
        self._in_file = open_float_wav(p / "input.wav", self.sample_rate, self.channels)
        self._out_file = open_float_wav(p / "output.wav", self.out_rate, self.out_channels)
        self._timeline = open(p / "timeline.csv", "w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._timeline)
        self._csv.writerow(TIMELINE_COLUMNS + tuple(f"node_{i}_us" for i in self._node_ids()))
        self._events_file = open(p / "events.jsonl", "w", encoding="utf-8")
        self.accepting = True
        self._thread = threading.Thread(target=self._writer, name="remotemedia-recorder",
                                        daemon=True)
        self._thread.start()

    def _node_ids(self) -> list[str]:
        return list(self.manifest.order)

    # -- the runner's thread: copy and note, nothing else -----------------------------------------
    def block(self, seq, pts, block, arrival_s, lateness_s) -> None:
        """Copies the input block into the ring for the writer thread and starts its timeline row.
        Runs on the runner thread (or the audio callback); never blocks in a realtime run: a full
        ring counts blocks_dropped."""
        t0 = _clock()
        self._t_block = t0
        self._seq = seq
        self._row_index = -1
        if not self.accepting:
            return
        w = self._w
        if w - self._r >= self.capacity:
            if not self.wait_when_full:
                self.blocks_dropped += 1
                return
            self._wait_for_room()
        elif self.wait_when_full and w - self._r >= self.capacity // 2:
            self._kick.set()   # not a real-time run: have the writer catch up now
        i = w % self.capacity
        n = block.shape[0]
        view = self._in_views[i]
        if block.shape == view.shape:
            _copyto(view, block)
        else:
            _copyto(self._slots[i][:n], block.reshape(n, -1))
        c = self._counters
        if c is None:
            c = self._counters = self.runner.session.counters
            self._device = self._stream()
        adc, tick, device_drops, flags = math.nan, -1, 0, -1
        stream = self._device
        if stream is not None:
            device_drops = stream.skipped + stream.output_dropped + stream.odd_blocks
            if stream.ring is not None:
                device_drops += stream.ring.refused
                k = seq & _SEQ_MASK
                if stream.seq_tag[k] == seq:
                    adc, tick = float(stream.seq_adc[k]), int(stream.seq_capture_tick[k])
                    j = tick & 4095
                    flags = int(stream.status_flags[j]) if stream.status_tick[j] == tick else 0
        # the rest of the row (engine time, outputs, node times) is filled by outputs()
        self._rows[i] = [seq, pts, n, arrival_s * 1e6, lateness_s * 1e6, math.nan, adc,
                         math.nan, tick, flags, c.input_overflow, c.output_underflow, c.drops,
                         device_drops, c.errors, 0, 0, None]
        self._row_index = i
        self._w = w + 1   # publish after the data is in place
        self._cost_block = _clock() - t0

    def outputs(self, outputs, final) -> None:
        """Copies output audio into the output ring and keeps events for events.jsonl, completing
        the block's timeline row. Same thread and rules as block(); a frame whose channel count is
        not the output format's counts outputs_mismatched."""
        t0 = _clock()
        if not self.accepting:
            return
        row = self._rows[self._row_index] if self._row_index >= 0 and not final else None
        audio = events = 0
        for out in outputs:
            if type(out) is NumpyData:
                audio += 1
                self._put_output(out)
            elif final and out.kind == "control" and out.event == "end_of_stream":
                continue
            else:
                events += 1
                self.events += 1
                self._events.append((self._seq if not final else None, out))
        if row is not None:
            row[5] = (t0 - self._t_block) * 1e6
            row[15] = audio
            row[16] = events
            row[17] = self._node_times()
        if not final:
            n = self._cost_n   # one value per block: its block() and its outputs() together
            self._cost[n & 0xFFFF] = self._cost_block + (_clock() - t0)
            self._cost_block = 0.0
            self._cost_n = n + 1

    def _node_times(self) -> list:
        # Each node's call count now; the writer turns a count that moved into that call's
        # latency (the ring keeps 4096 values, the writer is at most a ring of ours behind).
        states = self._probes
        if states is None:
            steps = self.runner.session.schedule.steps
            states = self._probes = [s.latency_state for s in steps]
            self._node_values = [s.latency_values for s in steps]
            # a fused node's ring is its group's; its latency is its share of each value
            self._node_scale = [s.share * 1e6 for s in steps]
        return [state()[0] for state in states]

    def _node_latencies(self, counts: list | None) -> list:
        """Writer thread: per node, the latency (us) of its call for this row's block, or NaN
        when it did not run for it."""
        last = self._writer_counts
        if counts is None or self._node_values is None:
            return [math.nan] * len(self.manifest.order)
        if last is None:
            last = self._writer_counts = [0] * len(counts)
        out = []
        for j, count in enumerate(counts):
            if count != last[j]:
                out.append(self._node_values[j][(count - 1) & 4095] * self._node_scale[j])
                last[j] = count
            else:
                out.append(math.nan)
        return out

    def _put_output(self, out) -> None:
        array = out.array
        n = array.shape[0] if array.ndim else 1
        ch = array.shape[1] if array.ndim == 2 else 1
        if ch != self.out_channels or array.ndim > 2:
            self.outputs_mismatched += 1
            return
        start = self._ow % self._ocap
        if start + n <= self._ocap and self._ow + n - self._or <= self._ocap and \
                self._oew - self._oer < len(self._oentries):
            # the common case: it fits in one piece
            _copyto(self._obuf[start:start + n], array.reshape(n, ch))
            self._oentries[self._oew % len(self._oentries)] = n
            self._oew += 1
            self._ow += n
            return
        while self._ow + n - self._or > self._ocap or \
                self._oew - self._oer >= len(self._oentries):
            if not self.wait_when_full or n > self._ocap or not self._thread.is_alive():
                self.outputs_dropped += 1
                return
            self._kick.set()
            self._room.wait(0.05)
            self._room.clear()
        frames = array.reshape(n, ch)
        start = self._ow % self._ocap
        first = min(n, self._ocap - start)
        np.copyto(self._obuf[start:start + first], frames[:first])
        if n > first:
            np.copyto(self._obuf[:n - first], frames[first:])
        self._oentries[self._oew % len(self._oentries)] = n
        self._oew += 1
        self._ow += n

    def _wait_for_room(self) -> None:
        # Only in runs that are not real time (a file as fast as it goes): nothing is waiting
        # for this block but the disk, so wait for the writer rather than lose it.
        while self._w - self._r >= self.capacity and self._thread.is_alive():
            self._kick.set()
            self._room.wait(0.05)
            self._room.clear()

    def _stream(self):
        runner = self.runner
        for end in (runner.source, runner.sink):
            stream = getattr(end, "stream", None)
            if stream is not None:
                return stream
        return None

    # -- the writer thread -----------------------------------------------------------------------
    def _writer(self) -> None:
        try:
            while True:
                self._kick.wait(0.05)
                self._kick.clear()
                stopping = self._closing
                self._drain(final=stopping)
                self._room.set()
                if stopping:
                    return
        except BaseException as exc:  # reported by close(); the audio path never waits on it
            self.error = exc
            self.accepting = False

    def _drain(self, final: bool) -> None:
        cap = self.capacity
        stream = self._stream()
        # hold a few rows back while a device plays (their DAC time comes a block or two later)
        hold = min(HOLDBACK_ROWS, cap // 2) if stream is not None and stream.outq is not None \
            else 0
        end = self._w if final else self._w - hold
        r = self._r
        while r < end:
            i = r % cap
            row = self._rows[i]
            n = row[2]
            self._in_file.write(self._slots[i][:n])
            if stream is not None and stream.outq is not None:
                k = row[0] & _SEQ_MASK
                if stream.play_tag[k] == row[0]:
                    row[7] = float(stream.play_dac[k])
            nodes = self._node_latencies(row[17])
            self._csv.writerow([_cell(v) for v in row[:17]] + [_cell(v) for v in nodes])
            self._rows[i] = None
            self.blocks_recorded += 1
            r += 1
            self._r = r   # the slot is free again
        entries = self._oentries
        while self._oer < self._oew:
            n = entries[self._oer % len(entries)]
            start = self._or % self._ocap
            first = min(n, self._ocap - start)
            self._out_file.write(self._obuf[start:start + first])
            if n > first:
                self._out_file.write(self._obuf[:n - first])
            self._or += n
            self._oer += 1
            self.outputs_recorded += 1
        if self._events:
            from .io.events import event_record, json_default as _json_default
            while self._events:
                seq, data = self._events.popleft()
                self._events_file.write(strictjson.dumps(
                    {"seq": seq, "event": event_record(data)}, default=_json_default) + "\n")

    # -- the end -----------------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop taking blocks (the TUI's record key); close() writes what was taken."""
        self.accepting = False

    def close(self, stats: dict | None = None) -> dict:
        """Write everything taken, the final report (`stats` plus a `recording` section) and
        close the files. Safe to call twice. Returns the recording summary."""
        if self.closed:
            return self.summary()
        self.closed = True
        self.accepting = False
        if self._thread is not None:
            self._closing = True
            self._kick.set()
            self._thread.join()
        for f in (self._in_file, self._out_file, self._timeline, self._events_file):
            f.close()
        summary = self.summary()
        if stats is not None:
            report = dict(stats)
            report["recording"] = summary
            (self.path / "report.json").write_text(strictjson.dumps(report, indent=2) + "\n")
        if self.error is not None:
            raise RemoteMediaError(f"recording to {self.path} failed: {self.error}") \
                from self.error
        return summary

    def summary(self) -> dict:
        """The recorder's counters for the report: directory, blocks and outputs recorded and
        dropped, outputs_mismatched, events, and cost_us {p50, p99, max} of its own calls."""
        n = min(self._cost_n, self._cost.size)
        cost = None
        if n:
            us = self._cost[:n] * 1e6
            p50, p99 = np.percentile(us, (50, 99))
            cost = {"p50": round(float(p50), 3), "p99": round(float(p99), 3),
                    "max": round(float(us.max()), 3)}
        return {"directory": str(self.path), "blocks_recorded": self.blocks_recorded,
                "blocks_dropped": self.blocks_dropped, "outputs_recorded": self.outputs_recorded,
                "outputs_dropped": self.outputs_dropped,
                "outputs_mismatched": self.outputs_mismatched, "events": self.events,
                "cost_us": cost}


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return value


class Observers(BlockObserver):
    """Several observers as one (a recorder and a tracer), called in order."""

    def __init__(self, *observers):
        self.observers = [o for o in observers if o is not None]

    def block(self, seq, pts, block, arrival_s, lateness_s) -> None:
        """Calls block() of each observer in order."""
        for o in self.observers:
            o.block(seq, pts, block, arrival_s, lateness_s)

    def outputs(self, outputs, final) -> None:
        """Calls outputs() of each observer in order."""
        for o in self.observers:
            o.outputs(outputs, final)


def combine(*observers):
    """None, the one observer given, or an `Observers` of several."""
    present = [o for o in observers if o is not None]
    if not present:
        return None
    return present[0] if len(present) == 1 else Observers(*present)


# -- reading a recording back ----------------------------------------------------------------------

class Recording:
    """A recording directory, read: `timeline` (column name -> ndarray; float64 with NaN for
    empty cells, int64 for the integer columns), `node_ids` (the node_<id>_us columns),
    `manifest` (dict), `report` (dict or None when the run did not finish), `events` (list of
    {"seq", "event"}), `versions` (dict), `path`. UsageError (exit 2) naming the file when
    something is missing or unreadable."""

    INT_COLUMNS = {"seq", "pts", "samples", "capture_tick", "status", "input_overflow",
                   "output_underflow",
                   "drops", "device_drops", "errors", "audio_out", "events_out"}

    def __init__(self, directory):
        path = Path(directory)
        if not path.is_dir():
            raise UsageError(f"{path} is not a recording directory (no such directory)")
        for name in ("input.wav", "timeline.csv", "manifest.json"):
            if not (path / name).exists():
                raise UsageError(f"{path} is not a recording: {name} is missing")
        self.path = path
        from .engine.manifest import read_manifest_document
        # a manifest like any other: through the bounded loader (size, depth, aliases)
        self.manifest, _ = read_manifest_document(path / "manifest.json")
        self.report = _read_json(path / "report.json") if (path / "report.json").exists() \
            else None
        self.versions = _read_json(path / "versions.json") \
            if (path / "versions.json").exists() else {}
        self.events = []
        if (path / "events.jsonl").exists():
            with open(path / "events.jsonl", encoding="utf-8") as f:
                for n, line in enumerate(f, 1):
                    if line.strip():
                        try:
                            self.events.append(json.loads(line))
                        except ValueError as exc:
                            raise UsageError(f"{path / 'events.jsonl'} line {n}: not JSON "
                                             f"({exc})") from None
        self.timeline, self.node_ids = _read_timeline(path / "timeline.csv")

    @property
    def blocks(self) -> int:
        """Rows in the timeline: blocks recorded."""
        return int(self.timeline["seq"].size)

    @property
    def missing_blocks(self) -> int:
        """Blocks the run pushed that the recorder could not keep (its writer fell a whole ring
        behind): from report.json, else from gaps in the timeline's seq."""
        recording = (self.report or {}).get("recording") or {}
        if "blocks_dropped" in recording:
            return int(recording["blocks_dropped"])
        seq = self.timeline["seq"]
        return int(seq[-1] - seq[0] + 1 - seq.size) if seq.size else 0

    def output(self):
        """(samples as float32 (frames, channels), sample rate) of output.wav, or None."""
        import soundfile as sf
        p = self.path / "output.wav"
        if not p.exists():
            return None
        data, rate = sf.read(str(p), dtype="float32", always_2d=True)
        return data, rate


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None


def _read_timeline(path: Path):
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            raise UsageError(f"{path} is empty") from None
        missing = [c for c in TIMELINE_COLUMNS if c not in header]
        if missing:
            raise UsageError(f"{path}: not a timeline (no column {missing[0]})")
        rows = list(reader)
    cols = {}
    for j, name in enumerate(header):
        values = [r[j] if j < len(r) else "" for r in rows]
        try:
            if name in Recording.INT_COLUMNS:
                cols[name] = np.array([int(v) if v else -1 for v in values], dtype=np.int64)
            else:
                cols[name] = np.array([float(v) if v else math.nan for v in values],
                                      dtype=np.float64)
        except ValueError as exc:
            raise UsageError(f"{path}: column {name}: {exc}") from None
    node_ids = [h[len("node_"):-len("_us")] for h in header
                if h.startswith("node_") and h.endswith("_us")]
    return cols, node_ids
