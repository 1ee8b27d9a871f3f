"""Chrome trace-event JSON of a run: what ran when, per block and per node.

`remotemedia stream ... --trace FILE` writes a file that ui.perfetto.dev and chrome://tracing
open. Format: the Trace Event Format (Google, "Trace Event Format" document, the JSON Object
Format with a `traceEvents` array): complete events (`"ph": "X"`, `ts` and `dur` in
microseconds), instant events (`"ph": "i"`) and thread-name metadata (`"ph": "M"`).

Tracks (one pid, one tid each):

    1 engine         a "block N" span per pushed block (from just before the push to its
                     outputs), and inside it one span per node per block (its process() call),
                     named by node id; xruns, drops, errors and the graph's events as instants
    2 audio callback one span per PortAudio callback (io/devices.py's callback_start_ns and
                     callback_ns), when a device is involved
    3 turns          a run with a VAD (the report's `turns` section, turn_observer.py): a
                     "turn N" span from the user's speech end to the first reply sample out,
                     holding one span per stage of its breakdown (endpoint, each node,
                     output), and a "barge-in" span from the user's speech over the reply to
                     the bot's last sample; a turn that overlaps the one before goes on a
                     further track (4, 5, ...). Turn tracks keep media time (anchored at
                     the first push, one media second per trace second), so each span's
                     dur is exactly its figure (a stage's breakdown_ms); a file run read
                     faster than real time shows them later than the engine's spans

Zero cost when off: the session compiles traced variants of its per-node closures only when a
tracer is given (`Session(trace=...)`; engine/template.py generates each step with or without
tracing); without one the steps carry no trace code and no per-node check exists. When on, a node call costs one list
append (its end: the timestamp the engine takes anyway; it started at the previous one), and
each block two clock reads and a few appends (benchmarks/bench_record.py measures it per block).

Memory: one float per node per block (about 32 bytes with its list slot): a five-node chain
traced for an hour (180,000 blocks) keeps about 30 MB. Trace runs, not days.
"""

from __future__ import annotations

import json
import sys
import math
import time
from pathlib import Path

from .engine.data import NumpyData
from .engine.errors import UsageError
from .observers import Observer

ENGINE_TID = 1
DEVICE_TID = 2
TURNS_TID = 3
PID = 1
_now = time.perf_counter
_TICK_MASK = 4096 - 1   # io/devices.py's _E2E_RING - 1


class Tracer(Observer):
    """Collects spans and instants during a run; `write(path)` makes the trace file.

    Use: `tracer.bind(runner)` (sets `runner.trace = tracer.spans_for` and adds the tracer to
    `runner.observers`), or `Session(trace=tracer.spans_for)` and call block()/outputs() around
    each push yourself. Times are time.perf_counter() seconds, the clock the engine times nodes
    with and io/devices.py stamps its callbacks with (perf_counter_ns)."""

    def __init__(self):
        self.node_spans: dict[str, list] = {}   # node id -> [end, end, ...] seconds
        self.blocks: list = []                   # [seq, t0, t1, ...]
        self.instants: list = []                 # (seconds, name, category, tid, args)
        self.device_spans: list = []             # [t0 ns, dur ns, ...]
        self.runner = None
        self._block_t0 = 0.0
        self._seq = -1
        self._counters = None
        self._total = 0
        self._counts = (0, 0, 0, 0)
        self._stream = None
        self._stream_checked = False
        self._tick = 0
        self._origin = _now()
        self._append_block = self.blocks.append

    def bind(self, runner) -> "Tracer":
        """Hooks into `runner` before its run: the session's node spans come to spans_for, and the
        tracer joins runner.observers. Returns self."""
        self.runner = runner
        runner.trace = self.spans_for
        runner.observers.join(self)
        return self

    # -- compiled into the schedule ----------------------------------------------------------------
    def spans_for(self, node_id: str) -> list:
        """The list the session's traced schedule appends `node_id`'s call spans to."""
        return self.node_spans.setdefault(node_id, [])

    # -- per block -------------------------------------------------------------------------------
    def block_in(self, event) -> None:
        """Observer hook (observers.BlockIn): block() with the event's fields."""
        self.block(event.seq, event.pts, event.block, event.arrival_s, event.lateness_s)

    def block_out(self, event) -> None:
        """Observer hook (observers.BlockOut): outputs() with the event's fields."""
        self.outputs(event.outputs, event.final)

    def block(self, seq, pts, block, arrival_s, lateness_s) -> None:
        """Notes the start of block `seq` (perf_counter seconds) and collects the device callback
        times the stream stamped since the last block. Runner thread; no allocation beyond the
        span lists."""
        self._seq = seq
        if not self._stream_checked:
            self._find_stream()
        if self._stream is not None:
            self._drain_device()
        self._block_t0 = _now()

    def outputs(self, outputs, final) -> None:
        """Closes the block's span, adds an instant for each event that came out, and one when a
        counter (xruns, drops, errors) moved. Runner thread."""
        t1 = _now()
        if not final and self._block_t0:
            append = self._append_block
            append(self._seq)
            append(self._block_t0)
            append(t1)
            self._block_t0 = 0.0
        if len(outputs) != 1 or type(outputs[0]) is not NumpyData:
            self._note_events(outputs, final, t1)
        c = self._counters
        if c is None:
            session = self.runner.session if self.runner is not None else None
            if session is None:
                return
            c = self._counters = session.counters
        if c.input_overflow + c.output_underflow + c.drops + c.errors != self._total:
            self._note_counters(c, t1)

    def _note_events(self, outputs, final, t1) -> None:
        for out in outputs:
            if type(out) is NumpyData:
                continue
            if final and out.kind == "control" and out.event == "end_of_stream":
                continue
            name = getattr(out, "event", None) if out.kind == "control" else None
            value = getattr(out, "value", None)
            if name is None and isinstance(value, dict):
                name = value.get("type") or value.get("event")
            self.instants.append((t1, str(name or out.kind), "event", ENGINE_TID,
                                  {"seq": self._seq}))

    def _note_counters(self, c, t: float) -> None:
        now = (c.input_overflow, c.output_underflow, c.drops, c.errors)
        for name, before, after in zip(("input_overflow", "output_underflow", "drop", "error"),
                                       self._counts, now):
            if after > before:
                self.instants.append((t, name, "xrun" if "flow" in name else name, ENGINE_TID,
                                      {"count": after - before, "seq": self._seq}))
        self._counts = now
        self._total = sum(now)

    def _find_stream(self) -> None:
        self._stream_checked = True
        runner = self.runner
        if runner is None:
            return
        for end in (runner.source, runner.sink):
            stream = getattr(end, "stream", None)
            if stream is not None and hasattr(stream, "callback_start_ns"):
                self._stream = stream
                return

    def _drain_device(self, final: bool = False) -> None:
        stream = self._stream
        # The newest callback may still be running (its duration not yet stored).
        end = stream.ticks if final else stream.ticks - 1
        start = max(self._tick, end - _TICK_MASK)
        starts, durs = stream.callback_start_ns, stream.callback_ns
        for tick in range(start, end):
            i = tick & _TICK_MASK
            self.device_spans += (int(starts[i]), int(durs[i]))
        self._tick = max(self._tick, end)

    def _node_spans(self) -> list:
        """Node calls as (tid, start, duration, name, None). The schedule keeps only each
        call's end; a call started at the previous timestamp of its push: the end of the call
        before it in the same block, or the block's start. Calls after the last block (the
        end_of_stream push) start where the call before them ended; calls with no block at all
        (callback mode pushes in the audio callback) are marks of no duration."""
        ends = sorted((t, node_id) for node_id, ts in self.node_spans.items() for t in ts)
        b = self.blocks
        blocks = [(b[i + 1], b[i + 2]) for i in range(0, len(b) - 2, 3)]
        out = []
        k = 0
        prev = None
        last_end = blocks[-1][1] if blocks else None
        for t, node_id in ends:
            while k < len(blocks) and blocks[k][1] < t:
                k += 1
                prev = None
            if k < len(blocks) and blocks[k][0] <= t:
                start = blocks[k][0] if prev is None else prev
            elif last_end is not None and t > last_end:
                start = last_end if prev is None else prev
            else:
                start = t
            out.append((ENGINE_TID, start, t - start, node_id, None))
            prev = t
        return out

    def _turn_spans(self) -> list:
        """The turns tracks' spans (tid, start s, duration s, name, args) and instants (s,
        name, category, tid, args) from the runner's report (its `turns` section), on the
        perf_counter clock (the module docstring)."""
        runner = self.runner
        if runner is None or runner.session is None:
            return [], []
        rows = ((runner.stats().get("turns") or {}).get("turns")) or []
        b = self.blocks
        if not rows or len(b) < 3:
            return [], []
        # The turns' figures are media time: the tracks keep that timeline (anchored at the
        # first push, one media second per trace second), so every span is exactly its
        # figure: a stage's dur is its breakdown_ms, a turn's its voice_to_voice_ms. Mapping
        # each time onto the pushes' wall clock would stretch or squeeze them (a file run goes
        # faster than real time), and only the sums would match.
        origin = b[2] - (b[0] + 1) * runner.period_s

        def at(t: float) -> float:
            return origin + t

        out, instants, track_ends = [], [], []
        placed: list[tuple[int, float]] = []    # each row's (tid, media end of its span)
        for n, row in enumerate(rows, 1):
            start = float(row["end_s"])
            marks = [(start, None)]
            t = start
            for stage, ms in (row.get("breakdown_ms") or {}).items():
                t += ms / 1e3
                marks.append((t, stage))
            end = marks[-1][0]
            # a barge-in belongs to this (the barging) turn, but it cut the reply of the turn
            # before: drawn on that turn's track, after that turn's span
            stop, barge = row.get("barge_in_stop_ms"), row.get("barge_in_s")
            if barge is not None and placed:
                cut_tid, cut_end = placed[-1]
                if stop is not None and barge >= cut_end:
                    out.append((cut_tid, at(barge), stop / 1e3, "barge-in",
                                {"barge_in_stop_ms": stop, "turn": n}))
                    k = cut_tid - TURNS_TID
                    track_ends[k] = max(track_ends[k], barge + stop / 1e3)
                else:     # before the reply's first sample: a mark, no span
                    instants.append((at(barge), "barge-in", "turn", cut_tid,
                                     {"barge_in_stop_ms": stop, "turn": n}))
            tid = next((TURNS_TID + k for k, e in enumerate(track_ends) if e <= start), None)
            if tid is None:
                tid = TURNS_TID + len(track_ends)
                track_ends.append(end)
            track_ends[tid - TURNS_TID] = end
            placed.append((tid, end))
            out.append((tid, at(start), end - start, f"turn {n}",
                        {"turn": n, "voice_to_voice_ms": row.get("voice_to_voice_ms"),
                         "heard": row.get("heard"), "reply": row.get("reply")}))
            for (a, _), (z, stage) in zip(marks, marks[1:]):
                out.append((tid, at(a), z - a, stage,
                            {"ms": (row["breakdown_ms"] or {}).get(stage)}))
        return out, instants

    # -- the file --------------------------------------------------------------------------------
    def events(self) -> list[dict]:
        """The trace events: metadata first, then each track's events in time order."""
        if self._stream is not None:
            self._drain_device(final=True)
        spans = []   # (tid, t0 s, dur s, name, args)
        b = self.blocks
        for i in range(0, len(b) - 2, 3):
            spans.append((ENGINE_TID, b[i + 1], b[i + 2] - b[i + 1], f"block {b[i]}",
                          {"seq": b[i]}))
        spans += self._node_spans()
        d = self.device_spans
        for i in range(0, len(d) - 1, 2):
            if d[i]:
                spans.append((DEVICE_TID, d[i] / 1e9, d[i + 1] / 1e9, "callback", None))
        turn_spans, turn_marks = self._turn_spans()
        spans += turn_spans
        instants = self.instants + turn_marks
        origin = min([s[1] for s in spans] + [e[0] for e in instants] + [self._origin])
        out = [{"name": "process_name", "ph": "M", "pid": PID, "tid": ENGINE_TID,
                "args": {"name": "remotemedia"}},
               {"name": "thread_name", "ph": "M", "pid": PID, "tid": ENGINE_TID,
                "args": {"name": "engine"}},
               {"name": "thread_name", "ph": "M", "pid": PID, "tid": DEVICE_TID,
                "args": {"name": "audio callback"}}]
        for tid in sorted({s[0] for s in turn_spans}):
            out.append({"name": "thread_name", "ph": "M", "pid": PID, "tid": tid,
                        "args": {"name": "turns" if tid == TURNS_TID else
                                 f"turns {tid - TURNS_TID + 1}"}})
        timed = []
        for tid, t0, dur, name, args in spans:
            # microseconds, to the nanosecond; the enclosing (longer) span first at one start.
            # The end is rounded, not the duration: a span that starts where another ends must
            # not start a nanosecond inside it after rounding (a fused group's shares fall
            # between nanoseconds).
            ts = round((t0 - origin) * 1e6, 3)
            d_us = round(max(round((t0 + max(dur, 0.0) - origin) * 1e6, 3) - ts, 0.0), 3)
            ev = {"name": name, "cat": "device" if tid == DEVICE_TID else
                  "turn" if tid >= TURNS_TID else "block" if args else "node", "ph": "X",
                  "pid": PID, "tid": tid, "ts": ts, "dur": d_us}
            if args:
                ev["args"] = args
            timed.append((tid, ts, 0, -d_us, ev))
        for t, name, cat, tid, args in instants:
            ts = round((t - origin) * 1e6, 3)
            timed.append((tid, ts, 1, 0, {"name": name, "cat": cat, "ph": "i", "s": "t",
                                          "pid": PID, "tid": tid, "ts": ts, "args": args}))
        timed.sort(key=lambda e: e[:4])
        out += [e[4] for e in timed]
        return out

    _file = None       # the trace file opened before the run (open()), written at write()

    def open(self, path) -> None:
        """Create the trace file `path` now, by io/safefile.py's rules (UsageError naming it
        when refused or when the OS refuses), so a run whose trace cannot be written is
        refused before it runs rather than after; `write` fills it. `-` (stdout) opens
        nothing."""
        if str(path) != "-" and self._file is None:
            from .io.safefile import open_output
            self._file = open_output(path, "--trace", binary=True)

    def write(self, path) -> int:
        """Write the trace as JSON (strict RFC 8259) to `path` (the file `open` made, else
        created now by io/safefile.py's rules: never through a link this run did not make,
        UsageError); the number of events written. OSError when the write fails."""
        events = self.events()
        doc = {"traceEvents": events, "displayTimeUnit": "ms",
               "otherData": {"producer": "remotemedia", "clock": "perf_counter"}}
        text = json.dumps(doc, allow_nan=False, separators=(",", ":"))
        if str(path) == "-":                 # stdout, as the CLI's `--trace -`
            sys.stdout.write(text + "\n")
            sys.stdout.flush()
        elif self._file is not None:
            f, self._file = self._file, None
            with f:
                f.write(text.encode("utf-8"))
        else:
            from .io.safefile import write_output
            write_output(path, "--trace", text)
        return len(events)


def check_trace_path(path: str) -> Path:
    """--trace FILE: UsageError (exit 2) before the run when it cannot be written; creates
    nothing (io/safefile.py decides, as `write` will). `-` is stdout."""
    from .io.safefile import check_output
    p = Path(path)
    if path == "-":
        return p
    if p.is_dir():
        raise UsageError(f"--trace: {p} is a directory; give a file name")
    if not p.parent.is_dir():
        raise UsageError(f"--trace: directory {p.parent} does not exist")
    check_output(p, "--trace")
    return p


_PHASES = {"X", "B", "E", "i", "I", "M", "C"}
#: microseconds as floats: ts + dur may land a rounding error (1e-15 s) past the next start
_EPS_US = 1e-6


def validate_trace(doc) -> list[str]:
    """Problems with a trace-event document, as strings (empty when it is well formed):
    a `traceEvents` list; every event with a known `ph`, `pid`, `tid`, `name` and a finite
    `ts`; complete events with a finite `dur` >= 0; B/E pairs matched per track; timestamps
    non-decreasing per track in file order; spans on a track nested (never overlapping
    partially)."""
    problems: list[str] = []
    if not isinstance(doc, dict) or not isinstance(doc.get("traceEvents"), list):
        return ["no traceEvents array"]
    last_ts: dict = {}
    open_b: dict = {}
    stacks: dict = {}
    for n, ev in enumerate(doc["traceEvents"]):
        where = f"event {n}"
        if not isinstance(ev, dict):
            problems.append(f"{where}: not an object")
            continue
        ph = ev.get("ph")
        if ph not in _PHASES:
            problems.append(f"{where}: unknown ph {ph!r}")
            continue
        for key in ("name", "pid", "tid"):
            if key not in ev:
                problems.append(f"{where}: no {key}")
        if ph == "M":
            continue
        ts = ev.get("ts")
        if not isinstance(ts, (int, float)) or not math.isfinite(ts):
            problems.append(f"{where}: ts {ts!r} is not a finite number")
            continue
        track = (ev.get("pid"), ev.get("tid"))
        if ts < last_ts.get(track, -math.inf):
            problems.append(f"{where}: ts {ts} goes back in time on track {track}")
        last_ts[track] = ts
        if ph == "X":
            dur = ev.get("dur")
            if not isinstance(dur, (int, float)) or not math.isfinite(dur) or dur < 0:
                problems.append(f"{where}: dur {dur!r} is not a finite number >= 0")
                continue
            stack = stacks.setdefault(track, [])
            while stack and stack[-1] <= ts + _EPS_US:
                stack.pop()
            end = ts + dur
            if stack and end > stack[-1] + _EPS_US:
                problems.append(f"{where}: span '{ev['name']}' [{ts}, {end}] overlaps the end "
                                f"of its enclosing span ({stack[-1]}) on track {track}")
            stack.append(end)
        elif ph == "B":
            open_b.setdefault(track, []).append((ev.get("name"), n))
        elif ph == "E":
            opened = open_b.get(track)
            if not opened:
                problems.append(f"{where}: E without a B on track {track}")
            else:
                opened.pop()
    for track, opened in open_b.items():
        for name, n in opened:
            problems.append(f"event {n}: span '{name}' begun and never ended on track {track}")
    return problems
