"""Replaying a recording, and arrival timelines for file inputs.

`remotemedia replay DIR [--manifest OTHER] [--output SPEC] [--realtime] [--compare OTHER]`
re-runs the input a `--record` run kept (record.py) through the graph:

- the same blocks, with the same seq and pts, released at their recorded arrival times, in
  simulated time by default (no sleeping: as fast as the graph runs) or, with `--realtime`,
  waiting for each arrival against a monotonic clock;
- the device's xruns and drops come back where they happened: before the block whose timeline
  row first shows them, the replay adds them to the session's counters (input_overflow,
  output_underflow, and a refused block as a frame in and a drop), so the replayed report and
  trace show the same discontinuities at the same blocks;
- the output and the events are collected and compared with the recording's output.wav and
  events.jsonl: with the same manifest and deterministic nodes they are identical, bit for bit
  (tests/streaming/test_record_replay.py proves it on a run recorded from the JACK server).

Arrival timelines (`--arrivals FILE` on `stream` for a non-device input, `ArrivalClock`): one
entry per line, `INDEX: MICROSECONDS`, blank lines and `#` comments ignored. `INDEX` is a sample
index (the upstream's `sample_index: arrival_us` form: the chunk starting at that sample arrived
then) or, written `bN`, a block index. A block is released when its last sample has arrived;
after the last entry blocks follow one period apart.
"""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path

import numpy as np

from .engine import strictjson
from .engine.data import NumpyData
from .engine.errors import UsageError
from .io.base import Sink, Source
from .io.clock import Clock
from .observers import Observer
from .recording import Recording

_LINE = re.compile(r"^\s*(b(?:lock)?\s*)?(\d+)\s*:\s*(\S+)\s*$")
#: blocks an arrivals file may cover: 16,777,216, 93 hours of 20 ms blocks (a 128 MiB array)
MAX_ARRIVAL_BLOCKS = 1 << 24


def _shown(digits: str) -> str:
    return digits if len(digits) <= 24 else f"{digits[:12]}... ({len(digits)} digits)"


def parse_arrivals(path, block_size: int, sample_rate: int) -> np.ndarray:
    """Arrival time in seconds of each block listed, from an arrivals file (module doc).
    UsageError (exit 2) naming the file and line for anything malformed, a time that is not
    finite or negative, or an arrival earlier than the one before."""
    from .engine.loader import read_text_file
    p = Path(path)
    text = read_text_file(p, "--arrivals")   # bounded: a FIFO or /dev/zero is refused
    entries = []   # (last block it completes at or after, arrival_s)
    blocks = []
    last_us = -math.inf
    for n, line in enumerate(text.splitlines(), 1):
        stripped = line.split("#", 1)[0].strip()
        if not stripped:
            continue
        m = _LINE.match(stripped)
        if m is None:
            raise UsageError(f"--arrivals: {p} line {n}: expected 'INDEX: MICROSECONDS' "
                             f"(or 'bN: MICROSECONDS' for a block), got '{stripped}'")
        is_block, index = m.group(1) is not None, int(m.group(2))
        limit = MAX_ARRIVAL_BLOCKS * (1 if is_block else block_size)
        if index >= limit:   # the timeline is one array entry per block up to the last
            raise UsageError(f"--arrivals: {p} line {n}: index {_shown(m.group(2))} is past "
                             f"the {MAX_ARRIVAL_BLOCKS:,} blocks a timeline may cover")
        try:
            us = float(m.group(3))
        except ValueError:
            us = math.nan
        if not math.isfinite(us) or us < 0:
            raise UsageError(f"--arrivals: {p} line {n}: arrival {m.group(3)} us is not a "
                             f"finite time >= 0")
        if us < last_us:
            raise UsageError(f"--arrivals: {p} line {n}: arrival {us:g} us is earlier than "
                             f"the line before ({last_us:g} us)")
        last_us = us
        if is_block:
            blocks.append((index, us / 1e6))
        else:
            entries.append((index, us / 1e6))
    if blocks and entries:
        raise UsageError(f"--arrivals: {p} mixes block (bN) and sample indexes; use one form")
    if not blocks and not entries:
        raise UsageError(f"--arrivals: {p} lists no arrivals")
    if blocks:
        indexes = [b for b, _ in blocks]
        if indexes != sorted(set(indexes)):
            raise UsageError(f"--arrivals: {p}: block indexes must increase")
        count = indexes[-1] + 1
        out = np.full(count, np.nan)
        for b, t in blocks:
            out[b] = t
        # blocks not listed arrive with the next one listed (they are complete by then)
        nxt = out[-1]
        for i in range(count - 1, -1, -1):
            if math.isnan(out[i]):
                out[i] = nxt
            nxt = out[i]
        return out
    samples = np.array([s for s, _ in entries], dtype=np.int64)
    times = np.array([t for _, t in entries])
    if np.any(np.diff(samples) <= 0):
        raise UsageError(f"--arrivals: {p}: sample indexes must increase")
    count = int(samples[-1] // block_size) + 1
    last_sample = (np.arange(count) + 1) * block_size - 1
    # the chunk holding a block's last sample: the last entry starting at or before it
    which = np.searchsorted(samples, last_sample, side="right") - 1
    which = np.clip(which, 0, len(samples) - 1)
    return times[which]


class ArrivalClock(Clock):
    """Releases block n at `arrivals_s[n]` (seconds since start); past the table, one period
    after the one before. Simulated by default (no sleeping: now() jumps to each arrival);
    `realtime=True` waits for each against time.monotonic(). wait_for_frame() returns how late
    block n is against its nominal time n x period (the jitter and drift the table holds)."""

    def __init__(self, arrivals_s, period_s: float, realtime: bool = False):
        super().__init__(period_s)
        self.arrivals = np.asarray(arrivals_s, dtype=np.float64)
        self.realtime = realtime
        self._now = 0.0
        self._t0 = 0.0

    def arrival(self, n: int) -> float:
        """When block `n` (0-based) arrives, in seconds since start: the table's entry, else one
        period_s after the previous block (n * period_s with an empty table)."""
        a = self.arrivals
        if n < a.size:
            return float(a[n])
        if a.size == 0:
            return n * self.period_s
        return float(a[-1]) + (n - a.size + 1) * self.period_s

    def start(self) -> None:
        """Starts the run: time 0 is now (time.monotonic() when realtime)."""
        self._t0 = time.monotonic()
        self._now = 0.0

    def now(self) -> float:
        """Seconds since start(): monotonic when realtime, else the simulated time (the last
        arrival waited for)."""
        return time.monotonic() - self._t0 if self.realtime else self._now

    def wait_for_frame(self, n: int) -> float:
        """Releases block `n` at its arrival: sleeps until then when realtime (on the runner
        thread), else moves simulated time there. Returns its lateness against n * period_s in
        seconds, >= 0."""
        due = self.arrival(n)
        if self.realtime:
            while True:
                remaining = due - self.now()
                if remaining <= 0:
                    break
                time.sleep(remaining - 0.0005 if remaining > 0.002 else remaining)
        else:
            self._now = max(self._now, due)
        return max(0.0, due - n * self.period_s)


class RecordingSource(Source):
    """The input a recording kept: its blocks in order, each as long as it was (a file's last
    block may be short). Puts the device's xruns and drops back into the session's counters
    before the block whose timeline row first shows them."""

    description = "recording"

    def __init__(self, recording: Recording, fmt):
        super().__init__(fmt)
        self.recording = recording
        self.description = f"recording {recording.path}"
        t = recording.timeline
        self._samples = t["samples"]
        self._seq = t["seq"]
        if self._seq.size:
            # a recording started mid-run (the TUI's R) keeps the run's numbering on replay
            self.first_seq, self.first_pts = int(self._seq[0]), int(t["pts"][0])
        self._steps = {}
        for name in ("input_overflow", "output_underflow", "device_drops"):
            col = t[name]
            self._steps[name] = np.diff(np.concatenate(([0], col))) if col.size else col
        self._file = None
        self._n = 0
        self._counters = None

    def attach(self, session) -> None:
        """Keeps the session's counters, into which read() puts the recorded xruns and drops
        back."""
        self._counters = session.counters

    def open(self) -> None:
        """Opens the recording's input.wav (soundfile, read front to back without seeking, as
        every input is: io/files.py SequentialSoundFile; its errors propagate)."""
        from .io.files import SequentialSoundFile
        self._file = SequentialSoundFile(str(self.recording.path / "input.wav"), "r")

    def read(self):
        """The next recorded block, float32 (samples,) or (samples, channels), as long as it was
        recorded, or None at the end. First adds the xruns and refused blocks the timeline shows
        before it to the counters (input_overflow, output_underflow, frames_in, drops)."""
        n = self._n
        if n >= self._samples.size:
            return None
        self._n = n + 1
        c = self._counters
        if c is not None:
            refused = int(self._steps["device_drops"][n])
            c.input_overflow += int(self._steps["input_overflow"][n])
            c.output_underflow += int(self._steps["output_underflow"][n])
            c.frames_in += refused
            c.drops += refused
        block = self._file.read(int(self._samples[n]), dtype="float32", always_2d=False)
        return block if block.shape[0] else None

    def close(self) -> None:
        """Closes input.wav; safe to call twice."""
        f, self._file = self._file, None
        if f is not None:
            f.close()


class TeeSink(Sink):
    """Keeps every output frame's samples (frames, channels) in order and passes the frames on to
    another sink, if any (a tee; the test harness's CollectingSink keeps frames only)."""

    description = "collected"

    def __init__(self, fmt, then: Sink | None = None):
        super().__init__(fmt)
        self.then = then
        self.chunks: list[np.ndarray] = []
        if then is not None:
            self.description = then.description
            self.realtime = then.realtime
            self.clocked = then.clocked

    def attach(self, session) -> None:
        """Passes the session on to the wrapped sink, if any."""
        if self.then is not None:
            self.then.attach(session)

    def open(self) -> None:
        """Opens the wrapped sink, if any."""
        if self.then is not None:
            self.then.open()

    def write(self, frame) -> None:
        """Keeps a float32 (samples, channels) copy of the frame's samples (one copy per
        block, not counted as io), then writes the frame to the wrapped sink."""
        a = frame.array
        self.chunks.append(np.array(a.reshape(a.shape[0], -1), dtype=np.float32))
        if self.then is not None:
            self.then.write(frame)

    def close(self) -> None:
        """Closes the wrapped sink, if any; the collected chunks stay."""
        if self.then is not None:
            self.then.close()

    def samples(self, channels: int) -> np.ndarray:
        """Everything written, float32 (samples, channels); an empty (0, channels) array if
        nothing was."""
        if not self.chunks:
            return np.zeros((0, channels), dtype=np.float32)
        return np.concatenate(self.chunks)


class EventCollector(Observer):
    """The graph's events as {"seq", "event"} records, as record.py writes them."""

    def __init__(self, sink: "TeeSink | None" = None):
        self.events: list = []
        self._seq = -1
        self._sink = sink
        #: output frames the sink held when the final push began (the blocks' own output,
        #: without what nodes release at the end); None until then
        self.frames_before_final: int | None = None

    def block_in(self, event) -> None:
        """Remembers the block's seq, to stamp the events that its push produces."""
        self._seq = event.seq

    def block_out(self, event) -> None:
        """Keeps every non-audio output as {"seq", "event"} passed through strict JSON, as
        record.py's events.jsonl holds it (seq None for the final push; end_of_stream left out)."""
        from .io.events import event_record, json_default as _json_default
        import json
        final = event.final
        if final and self._sink is not None:
            self.frames_before_final = sum(c.shape[0] for c in self._sink.chunks)
        for out in event.outputs:
            if type(out) is NumpyData:
                continue
            if final and out.kind == "control" and out.event == "end_of_stream":
                continue
            record = {"seq": None if final else self._seq, "event": event_record(out)}
            # through JSON, as the recording holds it
            self.events.append(json.loads(strictjson.dumps(record, default=_json_default)))


class ReplayResult:
    """One replay: `stats` (the report), `output` (float32 (frames, channels)), `rate`,
    `events`, `manifest` (the name of the one used), `seconds` (wall clock), `audio_seconds`,
    `frames_before_final` (output frames of the blocks themselves, before the end's flush),
    `blocks` (how many recorded blocks were replayed: fewer when it was stopped)."""

    def __init__(self, stats, output, rate, events, manifest, seconds, audio_seconds,
                 frames_before_final: int | None = None, blocks: int | None = None):
        self.blocks = blocks
        self.frames_before_final = output.shape[0] if frames_before_final is None \
            else frames_before_final
        self.stats = stats
        self.output = output
        self.rate = rate
        self.events = events
        self.manifest = manifest
        self.seconds = seconds
        self.audio_seconds = audio_seconds

    @property
    def speed(self) -> float:
        """Audio seconds replayed per wall-clock second (x real time)."""
        return self.audio_seconds / max(self.seconds, 1e-9)


def _recorded_fuse(rec: Recording, manifest) -> bool:
    """Whether to fuse linear chains as the recorded run did (`stream --no-fuse` changes the
    last bits of a fused chain's output): as versions.json says (written when the recording
    opens, so a killed run has it too); a recording without it was made before the engine
    fused anything. A replay through another manifest fuses, as any run does by default."""
    if manifest is not None:
        return True
    engine = rec.versions.get("engine")
    return bool(engine.get("fuse", False)) if isinstance(engine, dict) else False


def replay(recording: Recording | str | Path, *, manifest=None, output: str | None = None,
           realtime: bool = False, allow_import=(), tracer=None,
           on_runner=None) -> ReplayResult:
    """Run a recording through its manifest (or `manifest`: a path or a dict) and collect the
    output and events. `output`: an output SPEC to also send the audio to. `on_runner(runner)`
    is called with the StreamRunner before it runs (a signal handler may stop() it: the
    replay then ends after the current block, `output` finalized, `stop_reason` in the stats).
    Raises what the run raises (ManifestError, UsageError for a bad SPEC or a manifest whose
    audio format does not match the recording)."""
    from .engine.session import Pipeline
    from .io.spec import make_sink
    from .runner import StreamRunner

    rec = recording if isinstance(recording, Recording) else Recording(recording)
    recorded = rec.manifest.get("audio", {})
    # The recorded input is a file like any other: its rate and channels take their place in
    # the precedence (engine/precedence.py) for a manifest that does not pin them.
    own = {k: recorded.get(k) for k in ("sample_rate", "channels")} \
        if isinstance(recorded, dict) else None
    pipeline = Pipeline.from_manifest(rec.manifest if manifest is None else manifest,
                                      allow_import=allow_import, input_format=own)
    m = pipeline.manifest
    for key in ("sample_rate", "channels", "block_size"):
        ours = getattr(m.audio, key)
        if recorded.get(key) is not None and ours != recorded[key]:
            raise UsageError(f"manifest {m.name} runs at {key} {ours}, the recording in "
                             f"{rec.path} has {recorded[key]}")
    source = RecordingSource(rec, m.audio)
    then = make_sink(output, m.output_format) if output else None
    sink = TeeSink(m.output_format, then)
    arrivals = rec.timeline["arrival_us"] / 1e6
    if arrivals.size and np.isnan(arrivals).any():
        arrivals = np.where(np.isnan(arrivals), np.arange(arrivals.size) * m.audio.block_size
                            / m.audio.sample_rate, arrivals)
    period = m.audio.block_size / m.audio.sample_rate
    clock = ArrivalClock(arrivals, period, realtime=realtime)
    events = EventCollector(sink)
    runner = StreamRunner(pipeline, source, sink, realtime=True, clock=clock,
                          observers=[events], fuse=_recorded_fuse(rec, manifest))
    if tracer is not None:
        tracer.bind(runner)
    if on_runner is not None:
        on_runner(runner)
    t0 = time.perf_counter()
    stats = runner.run()
    seconds = time.perf_counter() - t0
    out = m.output_format
    channels = out.channels or 1
    audio_seconds = float(rec.timeline["samples"].sum()) / m.audio.sample_rate
    return ReplayResult(stats, sink.samples(channels), out.sample_rate or m.audio.sample_rate,
                        events.events, m.name, seconds, audio_seconds,
                        events.frames_before_final, source._n)


# -- comparing -------------------------------------------------------------------------------

def audio_difference(a: np.ndarray, b: np.ndarray) -> dict:
    """How two outputs (float32 (frames, channels)) differ: `identical` (bit for bit, same
    length), `frames` of each, `first_difference` (frame index, or None), `peak_difference`
    (full scale 1.0), `snr_db` of a against a - b over the common length (None when identical
    there, i.e. infinite)."""
    n = min(a.shape[0], b.shape[0])
    result = {"frames": [int(a.shape[0]), int(b.shape[0])], "first_difference": None,
              "peak_difference": 0.0, "snr_db": None,
              "identical": a.shape == b.shape and a.tobytes() == b.tobytes()}
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        result["channels"] = [int(a.shape[-1]), int(b.shape[-1])]
        return result
    x, y = a[:n].astype(np.float64), b[:n].astype(np.float64)
    diff = x - y
    differs = np.flatnonzero(np.any((a[:n] != b[:n]) & ~(np.isnan(a[:n]) & np.isnan(b[:n])),
                                    axis=1))
    if differs.size:
        result["first_difference"] = int(differs[0])
    elif a.shape[0] != b.shape[0]:
        result["first_difference"] = n
    finite = np.isfinite(diff)
    if finite.any():
        result["peak_difference"] = float(np.max(np.abs(diff[finite])))
    noise = float(np.sum(diff[finite] ** 2))
    signal = float(np.sum(x[np.isfinite(x)] ** 2))
    if noise > 0:
        result["snr_db"] = round(10 * math.log10(signal / noise), 3) if signal > 0 else -math.inf
        if not math.isfinite(result["snr_db"]):
            result["snr_db"] = None
    return result


def event_differences(a: list, b: list, limit: int = 10) -> dict:
    """Events that differ between two lists of {"seq", "event"} records, position by
    position: `count` of differing positions and the first `limit` of them."""
    diffs = []
    count = 0
    for i in range(max(len(a), len(b))):
        x = a[i] if i < len(a) else None
        y = b[i] if i < len(b) else None
        if x != y:
            count += 1
            if len(diffs) < limit:
                diffs.append({"index": i, "a": x, "b": y})
    return {"count": count, "events": [len(a), len(b)], "first": diffs}


def compare_results(a: ReplayResult, b: ReplayResult) -> dict:
    """Two replays side by side: counters, latency per node, events and output differences."""
    return {
        "manifests": [a.manifest, b.manifest],
        "counters": {k: [_counter(a.stats, k), _counter(b.stats, k)] for k in COUNTERS},
        "engine_latency_us": [a.stats["latency_us"]["engine"], b.stats["latency_us"]["engine"]],
        "nodes": {nid: [a.stats["nodes"].get(nid, {}).get("latency_us"),
                        b.stats["nodes"].get(nid, {}).get("latency_us")]
                  for nid in list(dict.fromkeys([*a.stats["nodes"], *b.stats["nodes"]]))},
        "events": event_differences(a.events, b.events),
        "output": (audio_difference(a.output, b.output) if a.rate == b.rate
                   else {"sample_rates": [a.rate, b.rate], "identical": False}),
    }


COUNTERS = ("frames_in", "frames_out", "events_out", "drops", "errors", "xruns.input_overflow",
            "xruns.output_underflow", "copies.engine", "copies.cow", "serialization_events")


def _counter(stats: dict, key: str):
    value = stats
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _tables(*tables) -> str:
    """Rich tables as plain text: no colour, no box, never wrapped (a pipe or a grep gets
    whole lines), trailing spaces cut."""
    import io

    from rich.console import Console
    buf = io.StringIO()
    console = Console(file=buf, width=100_000, color_system=None, highlight=False,
                      emoji=False, markup=False, soft_wrap=False)
    for i, table in enumerate(tables):
        if i:
            console.print()
        console.print(table)
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines())


def _table(*columns: str, title: str | None = None, left: int = 1):
    """A table whose first `left` columns are text (left-aligned), the rest numbers (right-
    aligned); its head underlined with ASCII dashes (a terminal without UTF-8 reads it)."""
    from rich.box import Box
    from rich.table import Table
    head = Box("    \n    \n -- \n    \n    \n    \n    \n    \n", ascii=True)
    table = Table(box=head, show_edge=False, pad_edge=False, title=title,
                  title_justify="left", title_style=None, header_style=None, safe_box=True)
    for i, name in enumerate(columns):
        table.add_column(name, justify="left" if i < left else "right", no_wrap=True)
    return table


def _value(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"), default=str)
    return str(v)


def _event_rows(diff: dict, base=None) -> list[tuple]:
    """One row per differing field of each differing event: (type, field, #, block, time (s),
    a, b); an event only one side has is one row with its fields as compact JSON on its side
    and "(none)" on the other."""
    from .media_time import event_kind, event_time
    rows = []
    for d in diff["first"]:
        a, b = d["a"], d["b"]
        some = a if a is not None else b
        event = some.get("event") if isinstance(some, dict) else some
        seq = some.get("seq") if isinstance(some, dict) else None
        when = "-"
        if base is not None:
            when = f"{event_time(event, seq, base)[0]:.3f}"
        elif isinstance(event, dict):
            for key in ("time_s", "start_s"):
                if isinstance(event.get(key), (int, float)):
                    when = f"{event[key]:.3f}"
                    break
        kind = event_kind(event)
        head = [str(d["index"]), "end" if seq is None else str(seq), when]
        if a is None or b is None:
            fields = {k: v for k, v in event.items() if k != "type"} \
                if isinstance(event, dict) else event
            rows.append((kind, "", *head, "(none)" if a is None else _value(fields),
                         "(none)" if b is None else _value(fields)))
            continue
        ea, eb = a.get("event"), b.get("event")
        fields = {"seq": (a.get("seq"), b.get("seq"))}
        if isinstance(ea, dict) and isinstance(eb, dict):
            for k in dict.fromkeys([*ea, *eb]):
                fields[k] = (ea.get(k), eb.get(k))
        else:
            fields["event"] = (ea, eb)
        first = True
        for k, (x, y) in fields.items():
            if x != y:
                rows.append((kind if first else "", k, *(head if first else [""] * 3),
                             _value(x), _value(y)))
                first = False
    return rows


def format_comparison(cmp: dict, base=None) -> str:
    """The comparison (compare_results) as aligned tables for people: counters, latency per
    node (p50/p99 us), the differing events field by field (their media time from `base`, a
    media_time.TimeBase, when given), and the output difference (frames, first differing
    sample, peak difference, SNR)."""
    a_name, b_name = cmp["manifests"]
    if a_name == b_name:
        a_name, b_name = f"{a_name} (A)", f"{b_name} (B)"
    counters = _table("counter", a_name, b_name, "")
    for key, (x, y) in cmp["counters"].items():
        counters.add_row(key, _value(x), _value(y), "" if x == y else "<- differs")

    def lat(d, pct):
        return "-" if not d or d.get(pct) is None else f"{d[pct]:.1f}"
    latency = _table("latency (us)", f"{a_name} p50", f"{a_name} p99", f"{b_name} p50",
                     f"{b_name} p99")
    ea, eb = cmp["engine_latency_us"]
    latency.add_row("engine", lat(ea, "p50"), lat(ea, "p99"), lat(eb, "p50"), lat(eb, "p99"))
    for nid, (x, y) in cmp["nodes"].items():
        latency.add_row(nid, lat(x, "p50"), lat(x, "p99"), lat(y, "p50"), lat(y, "p99"))
    ev = cmp["events"]
    shown = len(ev["first"])
    events = _table("type", "field", "#", "block", "time (s)", a_name, b_name, left=2,
                    title=f"events: {ev['events'][0]} vs {ev['events'][1]}, {ev['count']} "
                          f"differ" + (f" (the first {shown} shown)" if ev["count"] > shown
                                       else ""))
    for row in _event_rows(ev, base):
        events.add_row(*row)
    out = cmp["output"]
    output = _table("output", a_name, b_name)
    if "sample_rates" in out:
        output.add_row("sample rate (Hz)", *map(_value, out["sample_rates"]))
        output.add_row("compared", "no: the sample rates differ", "")
    elif "channels" in out:
        output.add_row("frames", *map(_value, out["frames"]))
        output.add_row("channels", *map(_value, out["channels"]))
    else:
        output.add_row("frames", *map(_value, out["frames"]))
        same = "yes, bit for bit" if out["identical"] else "no"
        output.add_row("identical", same, "")
        if not out["identical"]:
            snr = "inf" if out["snr_db"] is None else f"{out['snr_db']:.2f}"
            output.add_row("first differing sample", _value(out["first_difference"]), "")
            output.add_row("peak difference (full scale 1.0)",
                           f"{out['peak_difference']:.3g}", "")
            output.add_row("SNR, A vs A - B (dB)", snr, "")
    parts = [counters, latency] + ([events] if ev["count"] else []) + [output]
    text = _tables(*parts)
    if not ev["count"]:
        text += f"\nevents: {ev['events'][0]} vs {ev['events'][1]}, identical"
    return text

def mismatch(output: dict, events: dict, turns: dict | None = None,
             input: dict | None = None) -> str:
    """What differs between a replay and its recording, in one line ('' when nothing does):
    `output` as audio_difference() gives it, `events` as event_differences(), `turns` as a
    conversation replay's {"count", "first"}, `input` its {"identical"} (input.wav against
    the recorded digest)."""
    parts = []
    if input is not None and not input.get("identical"):
        parts.append("input.wav is not what was recorded")
    if not output.get("identical"):
        if "sample_rates" in output:
            parts.append(f"the output is at {output['sample_rates'][1]} Hz, the recording's "
                         f"at {output['sample_rates'][0]} Hz")
        elif "channels" in output:
            parts.append(f"the output has {output['channels'][1]} channel(s), the "
                         f"recording's {output['channels'][0]}")
        else:
            frames = output.get("frames") or ["?", "?"]
            parts.append(f"the output differs from frame {output.get('first_difference')} "
                         f"({frames[0]} recorded, {frames[1]} replayed)")
    if events.get("count"):
        parts.append(f"{events['count']} event(s) differ")
    if turns and turns.get("count"):
        first = turns["first"][0] if turns.get("first") else None
        where = f" (first: turn {first['turn']} {first['field']})" if first else ""
        parts.append(f"{turns['count']} turn field(s) differ{where}")
    return "; ".join(parts)


def describe_output(o: dict) -> str:
    """One indented line for people: how a replay's output compares with the recorded one.
    `o` is what audio_difference() returns, or {"sample_rates": [recorded, replayed],
    "identical": False} when the rates differ."""
    if o.get("identical"):
        return "  output: identical to the recorded output, bit for bit"
    if "sample_rates" in o:
        return (f"  output: at {o['sample_rates'][1]} Hz, the recording's at "
                f"{o['sample_rates'][0]} Hz")
    snr = "inf" if o.get("snr_db") is None else f"{o['snr_db']:.2f}"
    frames = o.get("frames") or ["?", "?"]
    return (f"  output: differs from the recorded output from frame {o.get('first_difference')} "
            f"(frames {frames[0]} recorded, {frames[1]} replayed; peak difference "
            f"{o.get('peak_difference', 0):.3g}, SNR {snr} dB)")
