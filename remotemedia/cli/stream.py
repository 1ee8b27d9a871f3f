"""`remotemedia stream`: one manifest from an input to an output, headless, with a live status
line on a terminal, events as JSON lines and the stats report.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import traceback

from ..engine import strictjson
from ..engine.errors import OutputClosed, RemoteMediaError, UsageError
from ..io.events import event_record, json_default as _json_default
from . import common
from .common import (EXIT_FAILED, EXIT_OK, EXIT_SIGNAL, PROG, STOP_REASON, _error, _note,
                     _print_stdout, quiet_stdout, resolve_manifest)
from ..io.safefile import check_output, open_output
from ..stop_signals import StopSignals
from .observe import (_arrivals_clock, _finish_observers, _observers, check_observers,
                      start_observers)
from .paths import _named, _recording_files, check_paths, manifest_reads


STATUS_INTERVAL_S = 0.25


def cmd_stream(args) -> int:
    """`remotemedia stream`: build the pipeline from --manifest, the source and sink from
    --input/--output, and run it on this thread until the input ends, --duration passes or a
    signal asks it to stop. Events go to stdout (or --events) as JSON lines; the start line,
    the live status (on a terminal) and the summary go to stderr; with --json the stats
    report is the last line of stdout. --record, --trace, --monitor and --metrics-port are
    finished after the run. Returns 0, 1 for a failure while running (the error on one line;
    REMOTEMEDIA_DEBUG=1 adds the traceback), 130/143 after SIGINT/SIGTERM; bad arguments,
    SPECs, manifests or clashing paths raise UsageError/ManifestError (exit 2) before
    anything is opened for writing."""
    from ..engine.session import Pipeline
    from ..io.spec import make_sink, make_source
    from ..io.transcripts import check_output as check_text_output
    from ..runner import StreamRunner

    if args.json and args.output.strip() == "raw:-":
        raise UsageError("--json prints the report on stdout, which --output raw:- uses for "
                         "audio; drop one of them")
    from ..engine.manifest import read_manifest_document, validate_manifest
    from ..io.files import carry_input_facts, graph_keeps_samples
    from ..io.spec import file_input

    _stdout_users(args)
    resolve_manifest(args)
    block = {"block_size": args.block_size} if args.block_size else None
    # The manifest is parsed first (bounded: a bomb is refused before any input is touched),
    # then a file input is opened once (a FIFO has one reader, and its header is read once),
    # and its own format takes its place in the precedence (engine/precedence.py) before the
    # manifest is validated.
    document, name = read_manifest_document(args.manifest)
    source = file_input(args.input)
    own = None if source is None else {"sample_rate": source.samplerate,
                                       "channels": source.channels}
    pipeline = Pipeline(validate_manifest(document, source=name,
                                          allow_import=args.allow_import, audio_overrides=block,
                                          input_format=own))
    manifest = pipeline.manifest
    input_spec, output_spec = args.input, args.output
    if args.realtime is False:
        # --fast is simulated time, which only the virtual device can keep: `default` is it.
        input_spec = "virtual" if input_spec.strip() == "default" else input_spec
        output_spec = "virtual" if output_spec.strip() == "default" else output_spec
    if source is not None:
        # a file at another rate or channel count is converted at the boundary (io/convert.py)
        # unless --exact-format asks for the refusal; said once, here
        source.conform(manifest.audio, exact=getattr(args, "exact_format", False))
        notes = source.new_notes()   # the decoder's own words (mpg123), kept off stderr
        if notes:
            _note(notes)
        if source.conversion:
            _note(f"{source.path}: converted {source.conversion} to the manifest's "
                  f"format (--exact-format refuses such a file instead)")
    else:
        source = make_source(input_spec, manifest.audio, mode=args.mode)
    if args.mode == "callback" and not source.runs_schedule:
        raise UsageError(f"--mode callback runs the graph in the input device's audio "
                         f"callback; the input here is {source.description}, not a device")
    sink = make_sink(output_spec, manifest.output_format)
    check_text_output(manifest, sink)   # a WAV output of a graph that only emits text: exit 2
    out = manifest.output_format
    carry_input_facts(source, sink, unchanged=(out.sample_rate, out.channels)
                      == (manifest.audio.sample_rate, manifest.audio.channels),
                      samples_unchanged=graph_keeps_samples(manifest))
    if args.realtime is False and (source.clocked or sink.clocked):
        raise UsageError("--fast cannot hurry a sound device, which plays and records in real "
                         "time; use a file, a generator or the virtual device")
    check_paths(reads=manifest_reads(args.manifest, args.allow_import) + source.reads()
                + _named("--arrivals", args.arrivals),
                writes=sink.writes() + _named("--events", args.events)
                + _named("--trace", args.trace) + _recording_files(args.record))
    check_observers(args)
    _watch_devices(source, sink, args.reconnect)
    # Everything that can refuse the run is checked before anything is opened for writing:
    # the paths above, --events/--record/--trace here (checked, not created), the monitor
    # socket and metrics port next, then the session and the ends (the runner opens them);
    # the events file and the recording are created only once those all stand (on_open).
    if args.events is not None:
        check_output(args.events, "--events")
    events = _EventWriter(None if sink.uses_stdout or args.events else sys.stdout,
                          owns=False, path=args.events)
    if args.event_format == "health":
        events.health_start_s = time.time()  # the run's start on the wall clock, read once
    clock = _arrivals_clock(args, source, manifest)
    runner = StreamRunner(pipeline, source, sink,
                          realtime=True if clock is not None else args.realtime, clock=clock,
                          duration=args.duration, strict=args.strict, on_event=events,
                          fuse=args.fuse)
    events.flush_each = runner.realtime
    recorder, tracer = _observers(args, runner, source)
    observers = start_observers(args, runner, input_spec, output_spec)

    opened: list[bool] = []

    def on_open() -> None:   # the runner's thread, the session and both ends open
        events.open()
        if recorder is not None:
            recorder.open()
        if tracer is not None:
            tracer.open(args.trace)
        opened.append(True)
        # Said only now: a run its ends refuse (an output that cannot be made, a device that
        # will not open) prints the error line alone.
        _note(_start_line(manifest, source, sink, runner, args.duration)
              + (f", arrivals from {args.arrivals}" if clock is not None else ""))
        if not runner.realtime and args.duration is None and source.endless:
            _note("the input never ends and the run is not paced: stop it with Ctrl-C, or "
                  "give --duration")
        if status is not None:
            status.start()
    runner.on_open = on_open
    if observers.monitor is not None:
        runner.on_event = observers.monitor.tee(events)
        observers.serve_record(args.manifest)
    # SIGINT/SIGTERM ask the runner to stop after the current frame; the loop then closes the
    # session, the source and the sink (finalizing files) and the report prints. A second
    # signal stops waiting for that (KeyboardInterrupt), though the runner still closes what
    # it opened.
    signals = StopSignals(lambda signum: runner.stop(STOP_REASON[signum]))
    status = (_StatusLine(runner, sys.stderr) if sys.stderr.isatty() and not common.QUIET
              else None)
    failure: BaseException | None = None
    signals.install()  # before anything is said: from here on a signal means a clean stop
    try:
        runner.run()
    except (KeyboardInterrupt, Exception) as exc:
        # The runner has closed the session, the source and the sink (finalizing files) on
        # its way out; what is left is to report. KeyboardInterrupt is a second signal.
        failure = exc
    finally:
        if status is not None:
            status.stop()
        signals.restore()
        events.close()

    stats = runner.stats() if runner.session is not None else None
    if not opened and isinstance(failure, RemoteMediaError):
        stats = None      # refused while opening its ends: the error line alone, no summary
    if stats is not None and signals.received is not None:
        stats["stop_reason"] = STOP_REASON[signals.received]
    if not opened:          # refused before the run stood: nothing ran to record or trace
        recorder = tracer = None
    failure = _finish_observers(stats, recorder, tracer, args) or failure
    observers.close(stats)
    later = source.new_notes() if hasattr(source, "new_notes") else None
    if later:
        _note(later)                # what the decoder said when the file was opened again
    if getattr(source, "shortfall", None):
        _note(source.shortfall)     # the input ended short of its header: said once, here
    if stats is not None:
        if not common.QUIET:
            print(format_summary(stats, manifest.name), file=sys.stderr)
        if args.json:
            _print_stdout(strictjson.dumps(stats))
    if signals.received is not None:
        return EXIT_SIGNAL[signals.received]
    if failure is None:
        return EXIT_OK
    if isinstance(failure, KeyboardInterrupt):
        return EXIT_SIGNAL[signal.SIGINT]
    if isinstance(failure, OutputClosed):
        quiet_stdout()        # as any Unix tool whose reader went away: no message
        return failure.exit_code
    if isinstance(failure, RemoteMediaError):
        _error(str(failure))
        return failure.exit_code
    _error(f"{type(failure).__name__}: {failure} (-v shows the traceback)")
    if common.VERBOSE or os.environ.get("REMOTEMEDIA_DEBUG"):
        traceback.print_exception(failure)
    return EXIT_FAILED


def _watch_devices(source, sink, reconnect: bool) -> None:
    """Device ends say at once when their device is lost or back (one line on stderr), and with
    --reconnect wait for a lost device instead of failing."""
    for end in (source, sink):
        if end.supports_reconnect:
            end.reconnect = reconnect
            end.on_notice = _note


def _stdout_users(args) -> None:
    """`-` names stdout, as in every Unix tool: `--events -` is stdout (the default), and
    `--trace -` writes the trace there after the run, which needs stdout to carry nothing
    else. UsageError (exit 2) when two things would share it."""
    raw_out = args.output.strip() == "raw:-"
    if args.events == "-":
        if raw_out:
            raise UsageError("--events - and --output raw:- both want stdout; give --events "
                             "FILE")
        args.events = None
    if args.trace == "-":
        users = [name for name, used in (("--output raw:-", raw_out), ("--json", args.json),
                                         ("events (give --events FILE)", args.events is None))
                 if used]
        if users:
            raise UsageError(f"--trace - writes the trace on stdout, which {users[0]} uses "
                             f"too")


def _start_line(manifest, source, sink, runner, duration) -> str:
    a = manifest.audio
    pace = "real time" if runner.realtime else "as fast as possible"
    until = f", for {duration:g} s" if duration is not None else ""
    return (f"{manifest.name}: {source.description} -> {sink.description}, {a.sample_rate} Hz, "
            f"{a.channels} ch, {a.block_size}-sample blocks, {pace}{until}")


class _EventWriter:
    """Non-audio outputs as JSON lines. A dict value (a meter's reading) is written as it is;
    anything else is wrapped with its kind."""

    def __init__(self, stream, owns: bool, path: str | None = None):
        self.stream = stream
        self.owns = owns
        #: --events FILE, created by open() (io/safefile.py: never through a planted link)
        self.path = path
        self.flush_each = False
        #: set (to the run's start, epoch seconds) to write HealthEvent lines instead
        self.health_start_s: float | None = None
        self.count = 0
        self._warned = False

    def open(self) -> None:
        """Create --events FILE, if one was named (UsageError, exit 2, when refused)."""
        if self.path is not None and self.stream is None:
            self.stream = open_output(self.path, "--events")
            self.owns = True

    def __call__(self, data) -> None:
        self.count += 1
        if self.stream is None:
            if self.path is not None:
                return   # not open: the run was refused before it started
            if not self._warned:
                self._warned = True
                _note("events are not written: stdout carries raw audio (use --events FILE)")
            return
        if self.health_start_s is not None:
            lines = health_lines(data, self.health_start_s)
            if not lines:
                return
            line = "\n".join(strictjson.dumps(r) for r in lines)
        else:
            line = strictjson.dumps(event_record(data), default=_json_default)
        try:
            self.stream.write(line + "\n")
            if self.flush_each:
                self.stream.flush()
        except BrokenPipeError as exc:
            self.stream = None
            raise OutputClosed("events: the reader of stdout went away") from exc
        except OSError as exc:
            raise RemoteMediaError(f"events: cannot write: {exc.strerror}") from exc

    def close(self) -> None:
        if self.stream is None:
            return
        try:
            if self.owns:
                self.stream.close()
            else:
                self.stream.flush()
        except BrokenPipeError:
            quiet_stdout()


def health_lines(data, start_epoch_s: float) -> list[dict]:
    """An output as the upstream stream-health tools' HealthEvent lines (the README's
    "Manifests written for the upstream"):
    `type`, `ts` (the run's start plus the event's media time, RFC 3339), the variant's fields,
    `stream_id` when known. Outputs that report nothing wrong give none."""
    if data.kind != "json":
        return []
    from ..nodes.upstream.events import health_event_lines
    value = data.value
    media = value.get("timestamp_us") if isinstance(value, dict) else None
    return health_event_lines(value, start_epoch_s=start_epoch_s,
                              media_us=media if isinstance(media, int) else None)


class _StatusLine:
    """A live one-line status on a terminal, redrawn a few times a second from its own thread,
    so the audio loop does no formatting or I/O for it."""

    def __init__(self, runner, stream):
        self.runner = runner
        self.stream = stream
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="remotemedia-status",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join(1.0)
        self.stream.write("\r\x1b[K")
        self.stream.flush()

    def _loop(self) -> None:
        while not self._done.wait(STATUS_INTERVAL_S):
            line = self.render()
            if line:
                self.stream.write("\r" + line + "\x1b[K")
                self.stream.flush()

    def render(self) -> str | None:
        session = self.runner.session
        if session is None:
            return None
        c = session.counters
        latency = session.engine_latency.summary_us()
        p50, p99 = (latency.p50, latency.p99) if latency else (0.0, 0.0)
        elapsed = self.runner.frames_released * self.runner.period_s
        return (f"{c.frames_in} frames  ser {session.serialization.events}  copies "
                f"e{c.engine_copies}/cow{c.cow}/io{c.io}  drops {c.drops}  engine p50 "
                f"{p50:.1f}us p99 {p99:.1f}us  {elapsed:.1f}s")


def format_summary(stats: dict, name: str) -> str:
    """The short human summary for stderr."""
    lat = stats["latency_us"]["engine"]
    copies = stats["copies"]
    xruns = stats["xruns"]
    lines = [
        f"{PROG}: {name}: {stats['frames_in']} frames in, {stats['frames_out']} out, "
        f"{stats.get('events_out', 0)} events in {stats['duration_s']:.2f} s "
        f"({stats['realtime_factor']:g}x real time), ended: {stats.get('stop_reason')}",
        f"  serialization events {stats['serialization_events']}, copies engine "
        f"{copies['engine']} cow {copies['cow']} io {copies['io']}, drops {stats['drops']}, "
        f"errors {stats['errors']}, xruns in {xruns['input_overflow']} out "
        f"{xruns['output_underflow']}",
        f"  engine latency p50 {lat['p50']:.1f} us, p99 {lat['p99']:.1f} us, "
        f"max {lat['max']:.1f} us",
    ]
    e2e = stats["latency_us"].get("end_to_end")
    if e2e:
        lines.append(f"  end-to-end latency p50 {e2e['p50'] / 1000:.2f} ms, "
                     f"p99 {e2e['p99'] / 1000:.2f} ms")
    device = stats.get("device")
    if device:
        reported = device.get("timestamp_latency_us")
        lines.append(f"  device {device['host_api']}, {device['mode']}"
                     + (f", reported latency {reported / 1000:.2f} ms" if reported else "")
                     + f", in flight at stop {stats.get('in_flight', 0)}")
        gaps = device.get("discontinuities") or []
        if gaps:
            lost = sum(g["blocks_lost"] for g in gaps)
            seconds = sum(g["duration_s"] for g in gaps)
            lines.append(f"  device lost and reconnected {len(gaps)} time(s): {lost} blocks "
                         f"({seconds:.2f} s) missing")
    return "\n".join(lines)
