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

Every file is created new (O_EXCL | O_NOFOLLOW) in DIR, which the recorder makes or checks on
its open descriptor: owned by this user, not writable by group or others (io/safefile.py). A
DIR that belongs to someone else, that others can write, or that already holds a recording is
refused (UsageError, exit 2) before anything is written.

Time to disk
------------
Whatever ends the run (SIGKILL, a crash, a full disk, a file-size limit), what was recorded up
to WRITER_PERIOD_S (50 ms) before it is in the files, plus HOLDBACK_ROWS blocks while a device
plays; the bound we state is 1 s. The writer hands everything to the kernel with os.write at
each tick and rewrites both WAV headers (SFC_UPDATE_HEADER_NOW), in an order that keeps a cut
recording consistent: a block's events and output first, then its input, then its timeline row.
A failed write ends the recording with one line naming the file and the OS's reason (ENOSPC,
EFBIG); the WAVs are cut to the whole blocks written and finalized. `recording.Recording` reads
a cut recording as far as it goes, and `replay` says where it was cut.

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
import contextlib
import csv
import errno
import io
import json
import math
import os
import threading
import time
from pathlib import Path

import numpy as np

from .engine import strictjson
from .engine.data import NumpyData
from .engine.errors import RemoteMediaError, UsageError, one_line
from .observers import Observer
from .record_files import (_write_all, open_float_wav, resolved_manifest, update_wav_header,
                           versions)
from .record_window import snapshot, window
from .recording import TIMELINE_COLUMNS, Recording  # reading a recording back

#: blocks of room between the runner and the writer thread (5.12 s at 960 samples / 48 kHz)
RING_BLOCKS = 256
#: rows the writer holds back so that a block has been played (its DAC time known) when written
HOLDBACK_ROWS = 8
#: how often the writer hands what it holds to the kernel (time to disk: module doc)
WRITER_PERIOD_S = 0.05
_SEQ_MASK = 4096 - 1   # io/devices.py's _SEQ_TABLE - 1

FILES = ("input.wav", "output.wav", "timeline.csv", "events.jsonl", "report.json",
         "manifest.json", "versions.json")
_clock = time.perf_counter
_copyto = np.copyto
_PLACES = tuple(7 if c in ("adc_time", "dac_time") else 1 for c in TIMELINE_COLUMNS)  # s, us


def prepare_directory(directory) -> Path:
    """Check that DIR can take a recording, creating nothing: a new folder, or an empty-of-
    recording folder owned by this user that group and others cannot write (io/safefile.py).
    UsageError (exit 2) with one line otherwise. `Recorder.open()` makes and checks it again on
    its open descriptor."""
    from .io.safefile import check_dir
    path = Path(directory)
    check_dir(path, "--record")
    if path.is_dir() and any(os.path.lexists(path / name) for name in FILES):
        raise UsageError(f"--record: {path} already holds a recording; give a new directory")
    return path


class Recorder(Observer):
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
        self._in_flight = False   # between a taken block's block() and its outputs()
        self._done = 0            # rows whose outputs() has run: their events are queued
        self._dir = None
        self._in_file = self._out_file = None
        self._timeline_fd = self._events_fd = -1
        self._in_frames = 0       # frames in input.wav / output.wav, for a cut after a failure
        self._out_frames = 0
        # its own window of a run it may join mid-way (TUI R, monitor `record`): record_window.py
        self._first = None
        self._out_pts0 = None
        self._base = None
        self._end = None
        self._stopped = False

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
        """Make (or check) the directory and create the files in it, each new (O_EXCL, never
        through a link: io/safefile.py), then start the writer thread; from here `block()`
        records. UsageError (exit 2) when the directory cannot take the recording."""
        if self.runner is None:
            raise RemoteMediaError("Recorder.open() before bind(runner)")
        from .io.safefile import SafeDir
        folder = self._dir = SafeDir.make(self.path, "--record")
        try:
            if any(folder.exists(name) for name in FILES):
                raise UsageError(f"--record: {self.path} already holds a recording; give a "
                                 f"new directory")
            try:
                folder.write("manifest.json", strictjson.dumps(
                    resolved_manifest(self.manifest, self.manifest_document), indent=2,
                    default=str) + "\n", replace=False)
                # with how the engine ran, which a replay must repeat (a fused chain's last bits)
                doc = {**versions(), "engine": {"fuse": bool(getattr(self.runner, "fuse",
                                                                     True))}}
                folder.write("versions.json", json.dumps(doc, indent=2) + "\n", replace=False)
                self._in_file = open_float_wav(folder.create_fd("input.wav"), self.sample_rate,
                                               self.channels)
                self._out_file = open_float_wav(folder.create_fd("output.wav"), self.out_rate,
                                                self.out_channels)
                self._timeline_fd = folder.create_fd("timeline.csv")
                self._events_fd = folder.create_fd("events.jsonl")
            except OSError as exc:
                raise UsageError(f"--record: cannot create the recording in {self.path}: "
                                 f"{exc.strerror or exc}") from None
            except RuntimeError as exc:   # libsndfile
                raise UsageError(f"--record: cannot create the recording in {self.path}: "
                                 f"{exc}") from None
            header = io.StringIO()
            csv.writer(header).writerow(TIMELINE_COLUMNS + tuple(f"node_{i}_us"
                                                                 for i in self._node_ids()))
            _write_all(self._timeline_fd, header.getvalue().encode("utf-8"))
        except BaseException:
            self._close_files()
            raise
        self.accepting = True
        self._thread = threading.Thread(target=self._writer, name="remotemedia-recorder",
                                        daemon=True)
        self._thread.start()

    def _node_ids(self) -> list[str]:
        return list(self.manifest.order)

    # -- the runner's thread: copy and note, nothing else -----------------------------------------
    def block_in(self, event) -> None:
        """Observer hook (observers.BlockIn): block() with the event's fields."""
        self.block(event.seq, event.pts, event.block, event.arrival_s, event.lateness_s)

    def block_out(self, event) -> None:
        """Observer hook (observers.BlockOut): outputs() with the event's fields."""
        self.outputs(event.outputs, event.final)

    def block(self, seq, pts, block, arrival_s, lateness_s) -> None:
        """Copies the input block into the ring for the writer thread and starts its timeline row.
        Runs on the runner thread (or the audio callback); never blocks in a realtime run: a full
        ring counts blocks_dropped."""
        # first: close() sets accepting False, then waits while a block is in flight; a block
        # that starts after that sees accepting False, one that started before is waited for
        self._in_flight = True
        t0 = _clock()
        self._t_block = t0
        self._seq = seq
        self._row_index = -1
        if not self.accepting:
            self._in_flight = False
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
            self._first = (seq, pts)
            self._base = snapshot(c)   # before this block's push: the window starts here
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
        # A block's outputs belong to the recording exactly when its input does: not those of
        # the block in flight when the recording joined, and those of the block in flight
        # when it stopped (its input was taken); otherwise output.wav and input.wav would be
        # a block apart and the recording would not replay to itself.
        if final:
            if not self.accepting:
                return
        elif self._row_index < 0 or self.closed:
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
            self._done = self._w   # its events are queued: the writer may write the row
        if not final:
            n = self._cost_n   # one value per block: its block() and its outputs() together
            self._cost[n & 0xFFFF] = self._cost_block + (_clock() - t0)
            self._cost_block = 0.0
            self._cost_n = n + 1
            self._row_index = -1   # this block's outputs are in: nothing more belongs to it
            self._in_flight = False
            if self._stopped and self._end is None and self._counters is not None:
                self._end = snapshot(self._counters)   # the window ends after this block

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
        if self._ow == 0:
            self._out_pts0 = out.pts   # where output.wav starts (until a frame is kept)
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
    # Time to disk: every WRITER_PERIOD_S the writer hands all it holds to the kernel with
    # os.write (no buffer of ours stays behind) and rewrites both WAV headers, so SIGKILL, a
    # crash or a full disk loses at most the last tick (plus HOLDBACK_ROWS with a device). The
    # order keeps a killed recording consistent: a block's events and output are written before
    # its input samples, the input header before its timeline row, so every row in
    # timeline.csv has its input, events and output on disk.
    def _writer(self) -> None:
        try:
            while True:
                self._kick.wait(WRITER_PERIOD_S)
                self._kick.clear()
                stopping = self._closing
                self._drain(final=stopping)
                self._room.set()
                if stopping:
                    return
        except BaseException as exc:   # reported by close(); the audio path never waits on it
            self.accepting = False
            self.error = exc
            self._room.set()

    def _drain(self, final: bool) -> None:
        cap = self.capacity
        stream = self._stream()
        # hold a few rows back while a device plays (their DAC time comes a block or two later)
        hold = min(HOLDBACK_ROWS, cap // 2) if stream is not None and stream.outq is not None \
            else 0
        end = self._w if final else min(self._done, self._w - hold)
        # 1. events (all queued: those of the rows written below and perhaps of the next)
        if self._events:
            from .io.events import event_record, json_default as _json_default
            lines = []
            while self._events:
                seq, data = self._events.popleft()
                lines.append(strictjson.dumps({"seq": seq, "event": event_record(data)},
                                              default=_json_default) + "\n")
            with _naming(self, "events.jsonl"):
                _write_all(self._events_fd, "".join(lines).encode("utf-8"))
        # 2. output audio published so far
        entries = self._oentries
        wrote_out = False
        while self._oer < self._oew:
            n = entries[self._oer % len(entries)]
            start = self._or % self._ocap
            first = min(n, self._ocap - start)
            with _naming(self, "output.wav"):
                self._out_file.write(self._obuf[start:start + first])
                if n > first:
                    self._out_file.write(self._obuf[:n - first])
            self._out_frames += n
            self._or += n
            self._oer += 1
            self.outputs_recorded += 1
            wrote_out = True
        if wrote_out:
            with _naming(self, "output.wav"):
                update_wav_header(self._out_file)
        # 3. input audio, then the timeline rows that index it
        r = self._r
        if r >= end:
            return
        text = io.StringIO()
        writer = csv.writer(text)
        first_row = r
        try:
            while r < end:
                i = r % cap
                row = self._rows[i]
                n = row[2]
                with _naming(self, "input.wav"):
                    self._in_file.write(self._slots[i][:n])
                self._in_frames += n
                if stream is not None and stream.outq is not None:
                    k = row[0] & _SEQ_MASK
                    if stream.play_tag[k] == row[0]:
                        row[7] = float(stream.play_dac[k])
                nodes = self._node_latencies(row[17])
                writer.writerow([*map(_cell, row[:17], _PLACES), *map(_cell, nodes)])
                self._rows[i] = None
                r += 1
                self._r = r   # the slot is free again
            with _naming(self, "input.wav"):
                update_wav_header(self._in_file)
        finally:
            # the rows whose input is written, even when a later one failed (close() then
            # finalizes input.wav at exactly those samples)
            if r > first_row:
                with _naming(self, "timeline.csv"):
                    _write_all(self._timeline_fd, text.getvalue().encode("utf-8"))
                self.blocks_recorded += r - first_row

    # -- the end -----------------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop taking blocks (the TUI's record key, the monitor's `record stop`); close()
        writes what was taken. The recording's window ends here: its counts are the session's
        counters now minus those before its first block."""
        self.accepting = False
        self._stopped = True
        # a block in flight is the recording's (its input was taken): its outputs are counted
        # when they come (outputs()), so the window's counts hold the events it records
        if self._counters is not None and self._end is None and not self._in_flight:
            self._end = snapshot(self._counters)

    def _close_files(self) -> list[str]:
        """Close every file, finalizing the WAV headers (after a failed write, cut to the frames
        written whole first); the problems met, one line each."""
        problems = []
        failed = self.error is not None
        for name, attr, frames in (("input.wav", "_in_file", self._in_frames),
                                   ("output.wav", "_out_file", self._out_frames)):
            f = getattr(self, attr)
            setattr(self, attr, None)
            if f is None:
                continue
            try:
                if failed:
                    f.truncate(frames)
                f.close()
            except (RuntimeError, OSError) as exc:
                problems.append(f"finalizing {name}: {_reason(exc)}")
        for attr in ("_timeline_fd", "_events_fd"):
            fd = getattr(self, attr)
            setattr(self, attr, -1)
            if fd >= 0:
                os.close(fd)
        return problems

    def close(self, stats: dict | None = None) -> dict:
        """Write everything taken, the final report (`stats` plus a `recording` section) and
        close the files. Safe to call twice. Returns the recording summary. Raises
        RemoteMediaError (one line: the file, the OS's reason, what was kept) when a write
        failed (a full disk, a file-size limit): everything written before it is kept."""
        if self.closed:
            return self.summary()
        self.accepting = False
        # the block in flight when the recording stopped: wait (bounded: the run may have
        # died) for its outputs, so output.wav ends where input.wav does
        deadline = time.monotonic() + 1.0
        while self._in_flight and time.monotonic() < deadline:
            time.sleep(0.001)
        self.closed = True
        if self._thread is not None:
            self._closing = True
            self._kick.set()
            self._thread.join()
        problems = self._close_files()
        if self._end is None and self._counters is not None:
            self._end = snapshot(self._counters)
        summary = self.summary()
        summary.update(window(self, stats))
        if self.error is not None:
            summary["failed"] = one_line(str(self.error))   # a replay says where it was cut
        if self._dir is not None:   # always: its absence marks a recording that was cut
            report = dict(stats or {})
            report["recording"] = summary
            try:
                self._dir.write("report.json", strictjson.dumps(report, indent=2) + "\n",
                                replace=False)
            except OSError as exc:
                problems.append(f"writing report.json: {_reason(exc)}")
        if self._dir is not None:
            self._dir.close()
        if self.error is not None or problems:
            seconds = self._in_frames / (self.sample_rate or 1)
            what = str(self.error) if isinstance(self.error, _WriteFailed) else \
                (problems.pop(0) if self.error is None else
                 f"{type(self.error).__name__}: {self.error}")
            raise RemoteMediaError(
                f"--record: {self.path}: {what}; kept the {self.blocks_recorded} blocks "
                f"({seconds:.2f} s) written before") from self.error
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


class _WriteFailed(RemoteMediaError):
    """A recording file could not be written: the file's name and the OS's reason."""


@contextlib.contextmanager
def _naming(recorder, name: str):
    """Turns a failed write into _WriteFailed naming the file and the OS's reason."""
    try:
        yield
    except (OSError, RuntimeError, AssertionError) as exc:   # soundfile asserts a short write
        if isinstance(exc, _WriteFailed):
            raise
        raise _WriteFailed(f"writing {name} failed: {_reason(exc)}") from exc


def _reason(exc: BaseException) -> str:
    """The OS's reason for a failed write: errno's text and name. libsndfile says only
    "System error."; cffi keeps the errno of its failed write(2)."""
    code = getattr(exc, "errno", None)
    if not code and not isinstance(exc, OSError):
        try:
            import soundfile as sf
            code = sf._ffi.errno
        except (ImportError, AttributeError):
            code = None
    if code:
        return f"{os.strerror(code)} ({errno.errorcode.get(code, code)})"
    return one_line(str(exc)) if str(exc) else type(exc).__name__


def _cell(value, places: int = 1):
    # rounded to what it means (148.7 us, not 148.70000001110384); not measured (NaN): empty
    if not isinstance(value, float) or math.isnan(value):
        return "" if value is None or value != value else value
    text = f"{value:.{places}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


__all__ = ["FILES", "HOLDBACK_ROWS", "RING_BLOCKS", "TIMELINE_COLUMNS", "WRITER_PERIOD_S",
           "Recorder", "Recording", "open_float_wav", "prepare_directory", "resolved_manifest",
           "update_wav_header", "versions"]
